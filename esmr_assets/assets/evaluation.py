"""Evaluation assets: closed-loop rollouts of every registered policy on the held-out users,
and the paper's metrics computed from them. Thin wrappers over
`policy.rollouts.run_rollouts` and `evaluation.comparison`."""

import dagster as dg
import polars as pl

from ..core.rng import stream
from ..emotion.estimators import EmotionModel
from ..evaluation.actions import RANKER, action_shares
from ..evaluation.comparison import (
    evaluation_table,
    representative_user,
    rl_days,
    styles_of,
)
from ..evaluation.effects import (
    paired_effects,
    pool_replicates,
    replicate_spread,
    user_metrics,
)
from ..evaluation.groups import effects_by_style, style_user_values
from ..evaluation.plots.evaluation import (
    effects_forest,
    policy_comparison,
    policy_trajectories,
    reward_fairness,
    style_shares_plot,
)
from ..evaluation.plots.simulation import daily_emotion_mix
from ..orchestration.metadata import markdown_table, plot_metadata
from ..orchestration.model_io import ON_CPU
from ..orchestration.partitions import cell_partitions
from ..orchestration.resources import EsmrConfig, parallel_jobs, reads
from ..policy.learners.ranker import EngagementRanker
from ..policy.loop.inputs import LoopInputs
from ..policy.loop.rollouts import run_rollouts
from ..policy.training.models import AgentSet, BanditLearners, DeepAgents
from .policy import AGENT_LEARNING_SETTINGS, RANKER_SETTINGS, policy_reads

GROUP = "evaluation"
#: the policy settings the rollouts read themselves: not those their trained inputs carry
ROLLOUT_POLICY_READS = policy_reads(without=(*RANKER_SETTINGS, *AGENT_LEARNING_SETTINGS, "deep_budget"))
#: the comparison columns `esmr run` prints and the metadata previews
HEADLINE = ("negative_days", "happy_at_least_once", "final_dominant_happy", "full_recovery", "volatility",
            "bounce_rate", "engagement_reward", "mean_latent_valence", "recovery_time")


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, ins={"emotion_model": ON_CPU}, kinds={"numpy", "parquet"},
          op_tags=parallel_jobs("esmr_assets.policy.loop.rollouts"),
          metadata=reads("simulation", *ROLLOUT_POLICY_READS, "evaluation.oracle_draws", "evaluation.planner_horizon"))
def policy_rollouts(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.LazyFrame,
    engagement_ranker: EngagementRanker,
    emotion_model: EmotionModel,
    q_agents: AgentSet,
    bandit_learners: BanditLearners,
    heuristic_buckets: pl.DataFrame,
    deep_agents: DeepAgents,
):
    """The held-out users over the whole horizon under each policy of the registry
    (`policy.registry.POLICIES`) with common random numbers: one row per policy, user and
    day with whether RL acted, the served bucket and top video, the engagement reward, the
    predicted and the latent true emotion, the latent valence and satisfaction, and the
    bandits' rounds."""
    settings, seed = esmr.settings_for(context), esmr.seed(context)
    rollouts = run_rollouts(
        LoopInputs(videos, users, impressions, engagement_ranker, emotion_model, settings, seed), q_agents,
        log=context.log.info, learners=bandit_learners,
        heuristic_buckets=dict(heuristic_buckets.filter(pl.col("chosen")).select("policy", "bucket").iter_rows()),
        deep_agents=deep_agents,
    )
    user = representative_user(rollouts)
    return dg.MaterializeResult(
        value=rollouts,
        metadata={
            "rl_days": markdown_table(rl_days(rollouts)),
            "representative_user": user,
            **plot_metadata(context, esmr, "trajectories", policy_trajectories(rollouts, user)),
            **plot_metadata(
                context, esmr, "esmr_true_emotion_mix",
                daily_emotion_mix(rollouts.filter(pl.col("policy") == "esmr"), "true_emotion", "esmr: latent emotion by day"),
            ),
        },
    )


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"parquet"}, metadata=reads())
def evaluation_metrics(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, policy_rollouts: pl.DataFrame, users: pl.DataFrame
):
    """Every metric of docs/design.md §7 per policy and label source (the emotion model's predicted
    labels, and the simulator's latent truth), with the change relative to lightgbm and
    the paper's figures in separate columns; then the latent satisfaction of what each
    policy served, overall and per communication style, and the decoded rewards' accuracy."""
    table = evaluation_table(policy_rollouts, users)
    preview = table.filter(pl.col("label_source") == "true").select("policy", "oracle", *HEADLINE)
    return dg.MaterializeResult(
        value=table,
        metadata={
            "latent_truth": markdown_table(preview),
            "predicted_labels": markdown_table(
                table.filter(pl.col("label_source") == "predicted").select("policy", "oracle", *HEADLINE)
            ),
            **plot_metadata(context, esmr, "policy_comparison", policy_comparison(table)),
            "reward_fairness": markdown_table(
                table.filter(pl.col("label_source") == "true").select(
                    "policy", "oracle", "positive_share", "negative_share", "decoded_accuracy",
                    *(f"{sign}_share_{style}" for style in styles_of(users) for sign in ("positive", "negative")),
                )
            ),
            **plot_metadata(context, esmr, "reward_fairness", reward_fairness(table, styles_of(users))),
        },
    )


@dg.asset(name="user_metrics", group_name=GROUP, partitions_def=cell_partitions, kinds={"parquet"}, metadata=reads())
def user_metrics_asset(policy_rollouts: pl.DataFrame) -> pl.DataFrame:
    """One row per policy, label source (the emotion model's predictions, the latent truth)
    and evaluation user, one column per metric defined per user: negative days, happy at
    least once, final dominant happy, full-recovery eligibility and outcome (null when not
    eligible), volatility, bounced, engagement reward, mean valence score, mean latent
    valence, recovery time (null where undefined). The paired effects are built from it;
    SQL users can run their own statistics on it."""
    return user_metrics(policy_rollouts)


@dg.asset(name="action_shares", group_name=GROUP, partitions_def=cell_partitions, kinds={"parquet"},
          metadata=reads())
def action_shares_asset(policy_rollouts: pl.DataFrame) -> dg.MaterializeResult:
    """What each policy served in which predicted state: per policy, yesterday's predicted
    label and the bucket that led the feed (`ranker`: none), the user-days from day 1 on and
    their share in that state and overall. Small enough to archive with a study's cells."""
    table = action_shares(policy_rollouts)
    acting = table.filter(pl.col("action") != RANKER).group_by("policy", maintain_order=True).agg(
        pl.col("share_of_days").sum().round(3).alias("share_of_days_a_bucket_led"))
    return dg.MaterializeResult(value=table, metadata={"bucket_days": markdown_table(acting)})


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"numpy", "parquet"},
          metadata=reads("evaluation.reference_policy", "evaluation.bootstrap_resamples"))
def policy_effects(context: dg.AssetExecutionContext, esmr: EsmrConfig, user_metrics: pl.DataFrame):
    """For each policy other than the reference (`evaluation.reference_policy`, default
    lightgbm), label source and metric: the mean paired per-user difference over the users
    where both are defined, its 95 % per-user bootstrap interval (the seed's own stream),
    the relative change against the reference's mean, the share of oracle_best_feed's
    effect it achieves, and n. Oracle rows are diagnostics (`oracle` column). With training
    replicates, each replicate has its rows (`esmr@1`, ...) and `esmr@all` pools them, with
    the replicates' count and the SD of their effects (`replicates`, `replicate_sd`)."""
    settings, seed = esmr.settings_for(context).evaluation, esmr.seed(context)
    effects = replicate_spread(paired_effects(
        pool_replicates(user_metrics), settings.reference_policy, settings.bootstrap_resamples,
        stream(seed, "evaluation"), ceiling="oracle_best_feed",
    ))
    headline = effects.filter((pl.col("label_source") == "true") & pl.col("metric").is_in(list(HEADLINE)))
    return dg.MaterializeResult(
        value=effects,
        metadata={
            "reference": settings.reference_policy,
            "resamples": settings.bootstrap_resamples,
            "latent_truth": markdown_table(
                headline.select("policy", "oracle", "metric", "n", "effect", "ci95_low", "ci95_high", "share_of_ceiling")
            ),
            **plot_metadata(context, esmr, "effects_forest", effects_forest(effects)),
        },
    )


#: the key of the per-style bootstrap's stream, beside `policy_effects`' unkeyed one
STYLE_RESAMPLES = 1


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"numpy", "parquet"}, code_version="2",
          metadata=reads("evaluation.reference_policy", "evaluation.bootstrap_resamples"))
def style_effects(context: dg.AssetExecutionContext, esmr: EsmrConfig, policy_rollouts: pl.DataFrame,
                  user_metrics: pl.DataFrame, users: pl.DataFrame):
    """Results per communication style (IGL-P's Fig. 4, with intervals): per style, policy and
    metric (the shares of served impressions with latent r = +1 and r = -1, the learners'
    decoded-reward sign accuracy, negative days, mean latent valence and engagement reward
    on the latent labels), the value with its per-user bootstrap interval within the style, and the paired
    effect against the reference policy with its interval. Intervals across seeds:
    `style_effects_across_seeds`; the worst-served style per policy: `reward_fairness_by_group`."""
    settings, seed = esmr.settings_for(context).evaluation, esmr.seed(context)
    effects = effects_by_style(style_user_values(policy_rollouts, user_metrics, users), settings.reference_policy,
                            settings.bootstrap_resamples, stream(seed, "evaluation", STYLE_RESAMPLES))
    shares = effects.filter(pl.col("metric").is_in(["negative_share", "positive_share"]))
    return dg.MaterializeResult(
        value=effects,
        metadata={
            "reference": settings.reference_policy,
            "styles": dg.MetadataValue.json(effects["feedback_style"].unique(maintain_order=True).to_list()),
            "shares": markdown_table(shares.select("feedback_style", "policy", "oracle", "metric", "value",
                                                   "value_ci95_low", "value_ci95_high")),
            **plot_metadata(context, esmr, "style_shares", style_shares_plot(effects)),
        },
    )
