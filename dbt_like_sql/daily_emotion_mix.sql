-- Share of each emotion per day and policy, over the evaluation users of every seed, on the
-- predicted and on the latent true labels; `oracle` marks the diagnostic policies.
with labels as (
    select seed, policy, oracle, day, 'predicted' as label_source, predicted_label as emotion from policy_rollouts
    union all
    select seed, policy, oracle, day, 'true' as label_source, true_emotion as emotion from policy_rollouts
)
select
    seed,
    policy,
    bool_or(oracle) as oracle,
    label_source,
    day,
    emotion,
    count(*) / sum(count(*)) over (partition by seed, policy, label_source, day) as share
from labels
group by seed, policy, label_source, day, emotion
order by seed, policy, label_source, day, emotion
