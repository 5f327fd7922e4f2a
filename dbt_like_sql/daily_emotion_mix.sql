-- Share of each emotion per day and policy, over the evaluation users of every seed, on the
-- predicted and on the latent true labels; `oracle` marks the diagnostic policies.
with labels as (
    select seed, policy, day, 'predicted' as label_source, predicted_label as emotion from policy_rollouts
    union all
    select seed, policy, day, 'true' as label_source, true_emotion as emotion from policy_rollouts
)
select
    seed,
    labels.policy,
    coalesce(bool_or(r.reads_latent), false) as oracle,
    label_source,
    day,
    emotion,
    count(*) / sum(count(*)) over (partition by seed, labels.policy, label_source, day) as share
from labels
left join policy_registry as r on r.policy = split_part(labels.policy, '@', 1)
group by seed, labels.policy, label_source, day, emotion
order by seed, labels.policy, label_source, day, emotion
