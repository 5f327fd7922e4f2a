"""Phase III assets: the LightGBM engagement ranker, the bandits' learners and the Q-learning
agents of the hybrid policies, each a model stored by the model IO manager, beside the
tables that report on them. Thin wrappers over `esmr_assets.policy.training.stage`."""

import dagster as dg
import polars as pl

from ..core.settings import PolicySettings
from ..emotion.estimators import EmotionModel
from ..evaluation.plots.policy import bandit_training as bandit_training_plot
from ..evaluation.plots.policy import deep_learning_curve as deep_learning_curve_plot
from ..evaluation.plots.policy import feature_importance, greedy_actions, q_learning_curve
from ..orchestration.metadata import markdown_table, plot_metadata
from ..orchestration.model_io import MODEL_IO, ON_CPU
from ..orchestration.partitions import cell_partitions
from ..orchestration.resources import EsmrConfig, parallel_jobs, reads
from ..policy.learners.ranker import EngagementRanker
from ..policy.loop.inputs import LoopInputs
from ..policy.training.deep import fit_deep_agents
from ..policy.training.models import BanditLearners
from ..policy.training.stage import (
    bandit_table,
    choose_heuristic_buckets,
    fit_agents,
    fit_bandits,
    fit_ranker,
)

GROUP = "policy"
#: the closed-loop stages' jobs (`core.parallel`)
STAGE_JOBS = parallel_jobs("esmr_assets.policy.training.stage")
#: who trains and who is evaluated (`users.policy_split`)
SPLIT_READS = ("policy.evaluation_share", "policy.max_evaluation_users", "policy.training_users")
#: the ranker's settings, which `engagement_ranker` (an input) reads for the stages after it
RANKER_SETTINGS = ("ranker_learning_rate", "ranker_num_leaves", "ranker_max_trees", "ranker_early_stopping_rounds",
                   "ranker_max_users")
#: the deep learners' settings, which `deep_agent_training` reads and the tabular agents do not
DEEP_SETTINGS = ("deep_learners", "deep_budget")
#: how the tabular agents learn, which `q_agents` (an input) carries for the stages after it
AGENT_LEARNING_SETTINGS = ("epochs", "learning_rate", "learning_rate_decay", "replay_size", "replay_batch",
                           "temperature", "temperature_decay", "min_temperature")


def policy_reads(*, without: tuple[str, ...]) -> tuple[str, ...]:
    """Every policy setting but `without`: a stage whose inputs already carry those settings
    (in their reuse keys) declares the rest, so changing them does not recompute it."""
    return tuple(f"policy.{name}" for name in PolicySettings.model_fields if name not in without)


RANKER_READS = reads(*(f"policy.{name}" for name in RANKER_SETTINGS))
BANDIT_READS = reads(*SPLIT_READS, "simulation", "policy.candidates", "policy.bandit_epsilon", "policy.igl_alpha",
                     "policy.igl_learning_rate", "policy.igl_epochs", "policy.bandit_context")
AGENT_READS = reads("simulation", *policy_reads(without=(*RANKER_SETTINGS, *DEEP_SETTINGS, "plugins")), "causal.method")
DEEP_READS = reads(*SPLIT_READS, "simulation", "policy.candidates", "policy.deep_learners", "policy.deep_budget",
                   "policy.epochs", "policy.discount", "policy.alpha", "policy.beta", "policy.eta",
                   "policy.causal_amplification", "causal.method")
PAPER_AUC = 0.81  # §3.3.1: early stopping "stops on 0.81"


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    outs={
        "engagement_ranker": dg.AssetOut(io_manager_key=MODEL_IO, kinds={"lightgbm"}, metadata=RANKER_READS, description=(
            "LightGBM P(watched) (paper §3.3.1), stored as LightGBM text; test AUC and trees in metadata."
        )),
        "ranker_feature_importance": dg.AssetOut(kinds={"parquet"}, metadata=RANKER_READS, description=(
            "The engagement ranker's features by gain, with each feature's share of the total and its rank."
        )),
    },
)
def ranker_training(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    user_day_logs: pl.DataFrame,
    impressions: pl.LazyFrame,
    emotion_predictions: pl.DataFrame,
):
    """LightGBM P(watched) on the logged impressions joined with the user's previous-day
    behaviour, previous-day predicted emotion, profile and the video's attributes; split by
    user, early-stopped on validation AUC."""
    settings, seed = esmr.settings_for(context), esmr.seed(context)
    ranker = fit_ranker(impressions, user_day_logs, emotion_predictions, videos, users, settings, seed)
    total = sum(ranker.feature_importance_.values()) or 1.0
    importance = (
        pl.DataFrame(
            {
                "feature": list(ranker.feature_importance_),
                "gain": [float(v) for v in ranker.feature_importance_.values()],
            }
        )
        .with_columns((pl.col("gain") / total).alias("gain_share"))
        .sort(["gain", "feature"], descending=[True, False])
        .with_row_index("rank", offset=1)
    )
    context.log.info(f"ranker test AUC {ranker.auc_:.3f} (paper {PAPER_AUC}) after {ranker.best_iteration_} trees")
    yield dg.Output(
        ranker,
        output_name="engagement_ranker",
        metadata={
            "test_auc": ranker.auc_,
            "paper_auc": PAPER_AUC,
            "trees": ranker.best_iteration_,
            "users_fitted": ranker.n_users_,
            **plot_metadata(context, esmr, "feature_importance", feature_importance(ranker.feature_importance_),
                            output="engagement_ranker"),
        },
    )
    yield dg.Output(importance, output_name="ranker_feature_importance",
                    metadata={"top_features": markdown_table(importance.head(10))})


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    ins={"emotion_model": ON_CPU},
    op_tags=STAGE_JOBS,
    outs={
        "bandit_learners": dg.AssetOut(io_manager_key=MODEL_IO, kinds={"torch"}, metadata=BANDIT_READS, description=(
            "The feedback-learning bandits' learners (IGL-P with three and two latent states, the like and comment "
            "bandits), with IGL-P's inverse-kinematics reward decoder; per-epoch training figures in metadata."
        )),
        "bandit_coefficients": dg.AssetOut(kinds={"parquet"}, metadata=BANDIT_READS, description=(
            "Each bandit's learned policy: its reward estimate's coefficient per action (bucket) and context feature."
        )),
    },
)
def bandit_training(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.LazyFrame,
    engagement_ranker: EngagementRanker,
    emotion_model: EmotionModel,
):
    """IGL-P with three and with two latent states (Maghakian et al., Algorithm 1) and the
    bandits on hand-engineered rewards (a like, a comment), trained online on the Q-learning
    agents' training users from the feedback signals of what they serve; the latent
    satisfaction is never shown to them."""
    settings, seed = esmr.settings_for(context), esmr.seed(context)
    trained = fit_bandits(LoopInputs(videos, users, impressions, engagement_ranker, emotion_model, settings, seed),
                          log=context.log.info)
    yield dg.Output(
        trained.learners,
        output_name="bandit_learners",
        metadata={
            "training": markdown_table(trained.history),
            "training_seconds": round(trained.seconds, 1),
            **plot_metadata(context, esmr, "bandit_training", bandit_training_plot(trained.history), output="bandit_learners"),
        },
    )
    yield dg.Output(bandit_table(trained.learners, settings.policy.bandit_context), output_name="bandit_coefficients")


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    ins={"emotion_model": ON_CPU},
    op_tags=STAGE_JOBS,
    outs={
        "q_agents": dg.AssetOut(io_manager_key=MODEL_IO, kinds={"numpy"}, metadata=AGENT_READS, description=(
            "The Q-learning agents of the hybrid policies (ESMR, its ablations esmr_no_emotion and "
            "esmr_no_engagement, and esmr_igl), stored as arrays: Q-table, visit counts, temperature."
        )),
        "q_table": dg.AssetOut(kinds={"numpy", "parquet"}, metadata=AGENT_READS, description=(
            "Q-values of the agents: one row per agent, state (predicted label x negative-or-neutral streak x "
            "engagement trend) and action (video-emotion bucket), with the visit count."
        )),
        "q_learning_curve": dg.AssetOut(kinds={"parquet"}, metadata=AGENT_READS, description=(
            "Per agent and epoch: mean reward per transition and its Eq. 8 components, the "
            "Boltzmann temperature and the share of states visited."
        )),
    },
)
def agent_training(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.LazyFrame,
    user_causal_parents: pl.DataFrame,
    engagement_ranker: EngagementRanker,
    emotion_model: EmotionModel,
    bandit_learners: BanditLearners,
):
    """Tabular Q-learning in the closed-loop environment on training users disjoint from the
    evaluation users (paper §3.3.2, Algorithm 2, Table 3). Every day each agent picks a
    video-emotion bucket per user, the bucket leads a feed ranked by LightGBM, and the
    reward is R_eng + alpha R_emo + beta R_cause with each user's causal parents."""
    settings, seed = esmr.settings_for(context), esmr.seed(context)
    result = fit_agents(
        LoopInputs(videos, users, impressions, engagement_ranker, emotion_model, settings, seed), user_causal_parents,
        log=context.log.info, learners=bandit_learners,
    )
    final = result.history.group_by("agent", maintain_order=True).last()
    yield dg.Output(
        result.agents,
        output_name="q_agents",
        metadata={
            "training_users": int(result.training_users.size),
            "evaluation_users": int(result.evaluation_users.size),
            "training_seconds": round(result.seconds, 1),
        },
    )
    yield dg.Output(
        result.q_table,
        output_name="q_table",
        metadata={
            "states_visited": dg.MetadataValue.json(
                {row["agent"]: round(row["states_visited"], 3) for row in final.iter_rows(named=True)}
            ),
            **plot_metadata(context, esmr, "esmr_greedy_actions", greedy_actions(result.q_table, "esmr"), output="q_table"),
        },
    )
    yield dg.Output(
        result.history,
        output_name="q_learning_curve",
        metadata={
            "final_epoch": markdown_table(final),
            **plot_metadata(context, esmr, "mean_reward_per_epoch", q_learning_curve(result.history),
                            output="q_learning_curve"),
        },
    )


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, ins={"emotion_model": ON_CPU}, kinds={"parquet"},
          op_tags=STAGE_JOBS, metadata=reads(*SPLIT_READS, "simulation", "policy.candidates", "policy.rl_streak"))
def heuristic_buckets(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.LazyFrame,
    engagement_ranker: EngagementRanker,
    emotion_model: EmotionModel,
) -> dg.MaterializeResult:
    """The bucket of each heuristic baseline that has none fixed (`hybrid_best_fixed`): every
    bucket under the heuristic's rule on the training users, their mean predicted negative
    days, and the chosen bucket, the fewest. Training users and predicted labels only, so
    the baseline stays deployable and never sees the evaluation users."""
    settings, seed = esmr.settings_for(context), esmr.seed(context)
    table = choose_heuristic_buckets(LoopInputs(videos, users, impressions, engagement_ranker, emotion_model, settings, seed))
    chosen = table.filter(pl.col("chosen"))
    return dg.MaterializeResult(
        value=table,
        metadata={
            "chosen": dg.MetadataValue.json(dict(chosen.select("policy", "bucket").iter_rows())),
            "training_users": markdown_table(table),
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    ins={"emotion_model": ON_CPU},
    op_tags=STAGE_JOBS,
    outs={
        "deep_agents": dg.AssetOut(io_manager_key=MODEL_IO, kinds={"torch"}, metadata=DEEP_READS, description=(
            "The stable-baselines3 learners `policy.deep_learners` names (DQN and PPO on the Gymnasium environment), "
            "stored as weights and JSON; none by default."
        )),
        "deep_learning_curve": dg.AssetOut(kinds={"parquet"}, metadata=DEEP_READS, description=(
            "Per deep learner and training episode: mean reward per user-day and its Eq. 8 terms."
        )),
    },
)
def deep_agent_training(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.LazyFrame,
    user_causal_parents: pl.DataFrame,
    engagement_ranker: EngagementRanker,
    emotion_model: EmotionModel,
):
    """DQN and PPO (stable-baselines3, unmodified) trained on the closed loop's Gymnasium
    environment over the training users, each with its own Eq. 8 terms, for the tabular
    agent's budget in user-days times `policy.deep_budget`. Every day they choose the ranker's
    feed or a bucket leading it."""
    settings, seed = esmr.settings_for(context), esmr.seed(context)
    result = fit_deep_agents(LoopInputs(videos, users, impressions, engagement_ranker, emotion_model, settings, seed),
                             user_causal_parents, log=context.log.info)
    yield dg.Output(result.agents, output_name="deep_agents",
                    metadata={"agents": len(result.agents), "training_seconds": round(result.seconds, 1)})
    metadata = {}
    if result.history.height:
        metadata = plot_metadata(context, esmr, "deep_learning_curve", deep_learning_curve_plot(result.history),
                                 output="deep_learning_curve")
    yield dg.Output(result.history, output_name="deep_learning_curve", metadata=metadata)
