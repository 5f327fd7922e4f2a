-- How often each parent of an emotional target is found across the seeds of each scenario: the share of seeds in
-- which it is a parent at all and in the top 3, its mean share of users and median weight,
-- and whether the simulator's true graph has the edge.
with seeds as (select scenario, count(distinct seed) as n from causal_parents group by scenario)
select
    c.scenario,
    target,
    parent,
    count(distinct seed) / any_value(seeds.n) as seed_share,
    count(distinct seed) filter (where rank <= 3) / any_value(seeds.n) as top3_seed_share,
    avg(user_share) as mean_user_share,
    median(median_weight) as median_weight,
    bool_or(in_true_graph) as in_true_graph
from causal_parents as c join seeds on seeds.scenario = c.scenario
group by c.scenario, target, parent
order by c.scenario, target, top3_seed_share desc, mean_user_share desc, parent
