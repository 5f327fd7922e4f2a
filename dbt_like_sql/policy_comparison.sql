-- Mean of each metric per scenario, policy and label source across its materialized seeds, with a
-- 95 % t interval (mean +- t(0.975, n - 1) * sd / sqrt(n), the exact t quantile for any
-- number of seeds; null with fewer than two seeds). `oracle` marks the diagnostic policies.
with per_metric as (
    select
        scenario,
        policy,
        bool_or(oracle) as oracle,
        label_source,
        metric,
        count(value) as seeds,
        avg(value) as mean,
        stddev_samp(value) as sd
    from policy_comparison_by_seed
    where isfinite(value)  -- NaN (undefined for this seed, e.g. nobody eligible) and null are left out
    group by scenario, policy, label_source, metric
)
select
    scenario,
    policy,
    oracle,
    label_source,
    metric,
    seeds,
    mean,
    sd,
    mean - t_half_width(sd, seeds) as ci95_low,
    mean + t_half_width(sd, seeds) as ci95_high
from per_metric
order by scenario, policy, label_source, metric
