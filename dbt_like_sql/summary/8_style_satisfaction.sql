-- latent satisfaction of what each policy served, per communication style (share of impressions
-- with r = +1 / r = -1; IGL-P's Fig. 4 view) and the decoded rewards' sign accuracy
select scenario, seed, s.policy, s.oracle, feedback_style as style, round(max(value) filter (where metric = 'positive_share'), 3) as "r=+1", round(max(value) filter (where metric = 'negative_share'), 3) as "r=-1", round(max(value) filter (where metric = 'decoded_accuracy'), 3) as decoded_accuracy
from style_effects as s
left join policy_registry as r on r.policy = split_part(s.policy, '@', 1)
group by scenario, seed, s.policy, s.oracle, feedback_style, r.position
order by seed, coalesce(r.position, 1000000), length(s.policy), s.policy, style
