-- Paired per-user effects against the reference policy across the materialized seeds of each
-- scenario: per policy, label source and metric, the mean of the per-seed effects with a 95 % t interval
-- across seeds (exact t quantile for any number of seeds; null with fewer than two), how many
-- seeds' own bootstrap intervals lie wholly above zero and wholly below, and the mean effect as
-- a share of oracle_best_feed's mean effect (how much of the gap between the reference and
-- the best achievable it closes). `oracle` marks the diagnostic policies. A pooled row of
-- training replicates (esmr@all) carries the mean over seeds of the SD between its replicates'
-- effects (`replicate_sd`: retraining's share of the spread; null on every other row).
with per_metric as (
    select
        e.scenario,
        e.policy,
        label_source,
        metric,
        reference,
        bool_or(e.oracle) as oracle,
        count(effect) as seeds,
        avg(effect) as effect,
        stddev_samp(effect) as sd,
        count(*) filter (where ci95_low > 0) as seeds_above_zero,
        count(*) filter (where ci95_high < 0) as seeds_below_zero,
        avg(relative_effect) as relative_effect,
        avg(n) as users,
        avg(replicate_sd) as replicate_sd
    from policy_effects as e
    where isfinite(effect)  -- a metric nobody has in a seed (no eligible user) is left out
    group by e.scenario, e.policy, label_source, metric, reference
),
ceiling as (
    select scenario, label_source, metric, effect as ceiling_effect from per_metric where policy = 'oracle_best_feed'
)
select
    per_metric.scenario,
    policy,
    oracle,
    per_metric.label_source,
    per_metric.metric,
    reference,
    seeds,
    users,
    effect,
    sd,
    effect - t_half_width(sd, seeds) as ci95_low,
    effect + t_half_width(sd, seeds) as ci95_high,
    seeds_above_zero,
    seeds_below_zero,
    relative_effect,
    replicate_sd,
    case when ceiling_effect <> 0 then effect / ceiling_effect end as share_of_ceiling
from per_metric
left join ceiling on ceiling.scenario = per_metric.scenario and ceiling.label_source = per_metric.label_source and ceiling.metric = per_metric.metric
order by per_metric.scenario, policy, per_metric.label_source, per_metric.metric
