-- Mean of each metric per policy and label source across all materialized seeds, with a
-- 95 % t interval (mean +- t(0.975, n - 1) * sd / sqrt(n); null with fewer than two seeds).
with t_quantiles (df, t) as (
    values (1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (5, 2.5706), (6, 2.4469),
           (7, 2.3646), (8, 2.3060), (9, 2.2622), (10, 2.2281), (11, 2.2010), (12, 2.1788),
           (13, 2.1604), (14, 2.1448), (15, 2.1314), (16, 2.1199), (17, 2.1098), (18, 2.1009),
           (19, 2.0930), (20, 2.0860), (21, 2.0796), (22, 2.0739), (23, 2.0687), (24, 2.0639),
           (25, 2.0595), (26, 2.0555), (27, 2.0518), (28, 2.0484), (29, 2.0452), (30, 2.0423)
),
per_metric as (
    select
        policy,
        label_source,
        metric,
        count(value) as seeds,
        avg(value) as mean,
        stddev_samp(value) as sd
    from policy_comparison_by_seed
    where isfinite(value)  -- NaN (undefined for this seed, e.g. nobody eligible) and null are left out
    group by policy, label_source, metric
)
select
    policy,
    label_source,
    metric,
    seeds,
    mean,
    sd,
    mean - coalesce(t, 1.96) * sd / sqrt(seeds) as ci95_low,
    mean + coalesce(t, 1.96) * sd / sqrt(seeds) as ci95_high
from per_metric
left join t_quantiles on t_quantiles.df = per_metric.seeds - 1
order by policy, label_source, metric
