-- Paired per-user effects against the reference policy across all materialized seeds: per
-- policy, label source and metric, the mean of the per-seed effects with a 95 % t interval
-- across seeds (exact t quantile for any number of seeds; null with fewer than two), and how
-- many seeds' own bootstrap intervals lie wholly above zero and wholly below. `oracle` marks
-- the diagnostic policies that read the latent state.
with per_metric as (
    select
        policy,
        label_source,
        metric,
        reference,
        bool_or(oracle) as oracle,
        count(effect) as seeds,
        avg(effect) as effect,
        stddev_samp(effect) as sd,
        count(*) filter (where ci95_low > 0) as seeds_above_zero,
        count(*) filter (where ci95_high < 0) as seeds_below_zero,
        avg(relative_effect) as relative_effect,
        avg(share_of_ceiling) as share_of_ceiling,
        avg(n) as users
    from policy_effects
    where isfinite(effect)  -- a metric nobody has in a seed (no eligible user) is left out
    group by policy, label_source, metric, reference
)
select
    policy,
    oracle,
    label_source,
    metric,
    reference,
    seeds,
    users,
    effect,
    sd,
    effect - t_quantile(0.975, seeds - 1) * sd / sqrt(seeds) as ci95_low,
    effect + t_quantile(0.975, seeds - 1) * sd / sqrt(seeds) as ci95_high,
    seeds_above_zero,
    seeds_below_zero,
    relative_effect,
    share_of_ceiling
from per_metric
order by policy, label_source, metric
