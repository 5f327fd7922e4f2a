-- IGL-P's fairness view (its Fig. 4) over the materialized seeds of each scenario: per policy and
-- communication style (whichever styles the scenario's population has), the share of served
-- impressions whose latent satisfaction was r = +1 and r = -1, averaged across seeds, with the
-- spread between seeds (t intervals: style_effects_across_seeds), and per policy the
-- worst-served style's shares: the highest r = -1 share of any style and the lowest r = +1
-- share (`worst_negative_share`, `worst_positive_share`, repeated on each of the policy's rows;
-- ties go to the first style by name).
-- `oracle` marks the diagnostic policies that read the latent state.
with per_style as (
    select
        scenario,
        policy,
        bool_or(oracle) as oracle,
        feedback_style,
        count(value) filter (where metric = 'negative_share') as seeds,
        avg(value) filter (where metric = 'positive_share') as positive_share,
        stddev_samp(value) filter (where metric = 'positive_share') as positive_share_sd,
        avg(value) filter (where metric = 'negative_share') as negative_share,
        stddev_samp(value) filter (where metric = 'negative_share') as negative_share_sd
    from style_effects
    group by scenario, policy, feedback_style
)
select
    *,
    max(negative_share) over (partition by scenario, policy) as worst_negative_share,
    first_value(feedback_style) over (
        partition by scenario, policy order by negative_share desc nulls last, feedback_style
        rows between unbounded preceding and unbounded following
    ) as worst_negative_style,
    min(positive_share) over (partition by scenario, policy) as worst_positive_share,
    first_value(feedback_style) over (
        partition by scenario, policy order by positive_share asc nulls last, feedback_style
        rows between unbounded preceding and unbounded following
    ) as worst_positive_style
from per_style
order by scenario, policy, feedback_style
