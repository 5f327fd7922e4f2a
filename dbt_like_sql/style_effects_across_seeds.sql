-- Results per communication style across the materialized seeds of each scenario (IGL-P's Fig. 4
-- view, with intervals): per policy, style and metric of `style_effects`, the mean over seeds of
-- the value and of the paired effect against the reference policy, each with a 95 % t interval
-- across seeds (exact t quantile; null with fewer than two seeds), and how many seeds' own
-- bootstrap intervals of the effect lie wholly above zero and wholly below. `oracle` marks the
-- diagnostic policies.
with per_metric as (
    select
        scenario,
        policy,
        bool_or(oracle) as oracle,
        feedback_style,
        metric,
        reference,
        count(value) as seeds,
        avg(users) as users,
        avg(value) as value,
        stddev_samp(value) as value_sd,
        count(effect) as effect_seeds,
        avg(effect) as effect,
        stddev_samp(effect) as effect_sd,
        count(*) filter (where ci95_low > 0) as seeds_above_zero,
        count(*) filter (where ci95_high < 0) as seeds_below_zero
    from style_effects
    group by scenario, policy, feedback_style, metric, reference
)
select
    scenario,
    policy,
    oracle,
    feedback_style,
    metric,
    reference,
    seeds,
    users,
    value,
    value - t_half_width(value_sd, seeds) as value_ci95_low,
    value + t_half_width(value_sd, seeds) as value_ci95_high,
    effect,
    effect - t_half_width(effect_sd, effect_seeds) as ci95_low,
    effect + t_half_width(effect_sd, effect_seeds) as ci95_high,
    seeds_above_zero,
    seeds_below_zero
from per_metric
order by scenario, policy, feedback_style, metric
