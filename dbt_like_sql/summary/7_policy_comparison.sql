-- policy comparison on the latent true emotions (paper's ESMR / LightGBM figures beside ours;
-- change = relative to lightgbm)
select scenario, seed, e.policy, e.oracle, round(negative_days, 2) as neg_days, paper_negative_days as "(paper)", round(happy_at_least_once, 3) as happy_once, paper_happy_at_least_once as "(paper) ", round(final_dominant_happy, 3) as final_happy, paper_final_dominant_happy as "(paper)  ", round(full_recovery, 3) as recovery, paper_full_recovery as "(paper)   ", round(change_volatility, 3) as volatility_change, paper_change_volatility as "(paper)    ", round(bounce_rate, 3) as bounce, paper_bounce_rate as "(paper)     ", round(engagement_reward, 1) as r_eng, paper_engagement_reward as "(paper)      ", round(mean_latent_valence, 3) as valence, round(recovery_time, 2) as recovery_days
from evaluation_metrics as e
left join policy_registry as r on r.policy = split_part(e.policy, '@', 1)
where label_source = 'true'
order by seed, coalesce(r.position, 1000000), length(e.policy), e.policy
