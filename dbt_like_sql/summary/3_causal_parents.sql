-- causal parents of the emotional targets (top 3 by share of users; paper Table 2)
select scenario, seed, target, rank, parent, sign, round(median_weight, 3) as median_weight, round(user_share, 3) as user_share, in_true_graph
from causal_parents
where rank <= 3
order by seed, target, rank
