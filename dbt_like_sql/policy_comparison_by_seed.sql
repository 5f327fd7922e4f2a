-- Every metric of evaluation_metrics in long form: one row per cell (scenario, seed), policy, label source and metric;
-- `oracle` marks the diagnostic policies that read the latent state (the rollouts' mark).
select
    e.scenario,
    e.seed,
    e.policy,
    e.oracle,
    e.label_source,
    m.metric,
    m.value
from evaluation_metrics as e
cross join lateral (
    values
        ('negative_days', e.negative_days),
        ('happy_at_least_once', e.happy_at_least_once),
        ('final_dominant_happy', e.final_dominant_happy),
        ('full_recovery', e.full_recovery),
        ('volatility', e.volatility),
        ('bounce_rate', e.bounce_rate),
        ('engagement_reward', e.engagement_reward),
        ('mean_valence', e.mean_valence),
        ('mean_latent_valence', e.mean_latent_valence),
        ('recovery_time', e.recovery_time),
        ('positive_share', e.positive_share),
        ('negative_share', e.negative_share),
        ('decoded_accuracy', e.decoded_accuracy),
        ('rl_active_share', e.rl_active_share)
) as m (metric, value)
order by e.scenario, e.seed, e.policy, e.label_source, m.metric
