-- engagement ranker (test AUC in the engagement_ranker metadata; paper 0.81): top features by gain
select scenario, seed, rank, feature, round(gain_share, 3) as gain_share
from ranker_feature_importance
where rank <= 5
order by seed, rank
