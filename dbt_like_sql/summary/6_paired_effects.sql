-- paired per-user effects against the reference policy on the latent truth (95 % per-user bootstrap
-- interval; oracle_* read the latent state: diagnostics; share = of oracle_best_feed's effect)
select scenario, seed, metric, e.policy, oracle, n, round(effect, 3) as effect, round(ci95_low, 3) as ci95_low, round(ci95_high, 3) as ci95_high, round(share_of_ceiling, 2) as share, round(replicate_sd, 3) as replicate_sd
from policy_effects as e
left join policy_registry as r on r.policy = split_part(e.policy, '@', 1)
where label_source = 'true' and metric in ('negative_days', 'mean_latent_valence', 'engagement_reward')
order by seed, metric, coalesce(r.position, 1000000), length(e.policy), e.policy
