-- Share of each emotion per day and policy, over the evaluation users of every cell (scenario, seed), on the
-- predicted and on the latent true labels; `oracle` marks the diagnostic policies.
with labels as (
    select scenario, seed, policy, oracle, day, 'predicted' as label_source, predicted_label as emotion from policy_rollouts
    union all
    select scenario, seed, policy, oracle, day, 'true' as label_source, true_emotion as emotion from policy_rollouts
)
select
    scenario,
    seed,
    policy,
    bool_or(oracle) as oracle,
    label_source,
    day,
    emotion,
    count(*) / sum(count(*)) over (partition by scenario, seed, policy, label_source, day) as share
from labels
group by scenario, seed, policy, label_source, day, emotion
order by scenario, seed, policy, label_source, day, emotion
