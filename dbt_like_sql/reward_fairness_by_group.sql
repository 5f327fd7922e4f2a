-- IGL-P's fairness view (its Fig. 4) over the materialized seeds of each scenario: per policy and
-- communication style, the share of served impressions whose latent satisfaction was
-- r = +1 and r = -1, averaged across seeds, with the spread between seeds. `oracle` marks the
-- diagnostic policies that read the latent state.
with per_seed as (
    select e.scenario, e.seed, e.policy, e.oracle, g.feedback_style, g.positive_share, g.negative_share
    from evaluation_metrics as e
    cross join lateral (
        values
            ('expressive', e.positive_share_expressive, e.negative_share_expressive),
            ('critical', e.positive_share_critical, e.negative_share_critical),
            ('passive', e.positive_share_passive, e.negative_share_passive)
    ) as g (feedback_style, positive_share, negative_share)
    where e.label_source = 'true'  -- the shares do not depend on the label source
)
select
    per_seed.scenario,
    per_seed.policy,
    bool_or(per_seed.oracle) as oracle,
    feedback_style,
    count(*) as seeds,
    avg(positive_share) as positive_share,
    stddev_samp(positive_share) as positive_share_sd,
    avg(negative_share) as negative_share,
    stddev_samp(negative_share) as negative_share_sd
from per_seed
group by per_seed.scenario, per_seed.policy, feedback_style
order by per_seed.scenario, per_seed.policy, feedback_style
