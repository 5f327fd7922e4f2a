"""Phase III assets: the LightGBM engagement ranker and the Q-tables of the ESMR agent and
its ablations. Thin wrappers over `esmr_assets.policy.pipeline`."""

import dagster as dg
import polars as pl

from ..emotion.pipeline import load_model
from ..evaluation.plots import bandit_training, feature_importance, greedy_actions, q_learning_curve
from ..partitions import seed_partitions
from ..policy.bandits import load_learners, save_learners
from ..policy.pipeline import bandit_table, fit_agents, fit_bandits, fit_ranker
from ..policy.ranker import EngagementRanker
from ..resources import EsmrConfig
from ..storage import atomic_write_bytes, partition_dir
from .common import markdown_table, plot_metadata
from .emotion import MODEL_FILE, emotion_model

GROUP = "policy"
RANKER_FILE = "lightgbm_ranker.txt"
LEARNERS_FILE = "bandit_learners.pt"
PAPER_AUC = 0.81  # §3.3.1: early stopping "stops on 0.81"


@dg.asset(group_name=GROUP, partitions_def=seed_partitions, kinds={"lightgbm", "parquet"})
def engagement_ranker(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    user_day_logs: pl.DataFrame,
    impressions: pl.LazyFrame,
    emotion_predictions: pl.DataFrame,
):
    """LightGBM P(watched) (paper §3.3.1) on the logged impressions joined with the user's
    previous-day behaviour, previous-day predicted emotion, profile and the video's
    attributes; split by user, early-stopped on validation AUC. The table is the feature
    importance (gain); the model is stored beside it as LightGBM text."""
    settings, seed = esmr.settings(), esmr.seed(context)
    ranker = fit_ranker(impressions, user_day_logs, emotion_predictions, videos, users, settings, seed)
    path = partition_dir(esmr.storage_root(), "engagement_ranker", seed) / RANKER_FILE
    atomic_write_bytes(path, ranker.to_text().encode())
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
    return dg.MaterializeResult(
        value=importance,
        metadata={
            "test_auc": ranker.auc_,
            "paper_auc": PAPER_AUC,
            "trees": ranker.best_iteration_,
            "users_fitted": ranker.n_users_,
            "top_features": markdown_table(importance.head(10)),
            "model_path": dg.MetadataValue.path(str(path)),
            **plot_metadata(
                esmr, "engagement_ranker", seed, "feature_importance", feature_importance(ranker.feature_importance_)
            ),
        },
    )


def load_ranker(esmr: EsmrConfig, seed: int, videos: pl.DataFrame) -> EngagementRanker:
    return EngagementRanker.load(partition_dir(esmr.storage_root(), "engagement_ranker", seed) / RANKER_FILE, videos)


@dg.asset(group_name=GROUP, partitions_def=seed_partitions, deps=[engagement_ranker, emotion_model],
          kinds={"torch", "parquet"})
def igl_policy(context: dg.AssetExecutionContext, esmr: EsmrConfig, videos: pl.DataFrame, users: pl.DataFrame,
               impressions: pl.LazyFrame):
    """IGL-P with three and with two latent states (Maghakian et al., Algorithm 1) and the
    bandits on hand-engineered rewards (a like, a comment), trained online on the Q-learning
    agents' training users from the feedback signals of what they serve; the latent
    satisfaction is never shown to them. The table is each bandit's learned policy: its
    reward estimate's coefficient per action (bucket) and context feature. The learners,
    with IGL-P's inverse-kinematics reward decoder, are stored beside it."""
    settings, seed = esmr.settings(), esmr.seed(context)
    model = load_model(partition_dir(esmr.storage_root(), "emotion_model", seed) / MODEL_FILE, device="cpu")
    trained = fit_bandits(videos, users, impressions, load_ranker(esmr, seed, videos), model, settings, seed,
                          log=context.log.info)
    path = partition_dir(esmr.storage_root(), "igl_policy", seed) / LEARNERS_FILE
    atomic_write_bytes(path, save_learners(trained.learners))
    return dg.MaterializeResult(
        value=bandit_table(trained.learners),
        metadata={
            "training": markdown_table(trained.history),
            "training_seconds": round(trained.seconds, 1),
            "learners_path": dg.MetadataValue.path(str(path)),
            **plot_metadata(esmr, "igl_policy", seed, "bandit_training", bandit_training(trained.history)),
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=seed_partitions,
    deps=[engagement_ranker, emotion_model, igl_policy],
    outs={
        "q_table": dg.AssetOut(kinds={"numpy", "parquet"}, description=(
            "Q-values of the ESMR agent, its ablations (esmr_no_emotion, esmr_no_engagement) and esmr_igl "
            "(R_eng replaced by IGL-P's decoded reward): "
            "one row per agent, state (predicted label x negative-or-neutral streak x engagement "
            "trend) and action (video-emotion bucket), with the visit count."
        )),
        "q_learning_curve": dg.AssetOut(kinds={"parquet"}, description=(
            "Per agent and epoch: mean reward per transition and its Eq. 8 components, the "
            "Boltzmann temperature and the share of states visited."
        )),
    },
)
def q_table(
    context: dg.AssetExecutionContext,
    esmr: EsmrConfig,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.LazyFrame,
    user_causal_parents: pl.DataFrame,
):
    """Tabular Q-learning in the closed-loop environment on training users disjoint from the
    evaluation users (paper §3.3.2, Algorithm 2, Table 3). Every day each agent picks a
    video-emotion bucket per user, the bucket leads a feed ranked by LightGBM, and the
    reward is R_eng + alpha R_emo + beta R_cause with each user's causal parents."""
    settings, seed = esmr.settings(), esmr.seed(context)
    root = esmr.storage_root()
    ranker = load_ranker(esmr, seed, videos)
    # On the CPU whatever the machine: a near-tie decided differently on a GPU would change
    # a label, then a streak, a feed and the rest of the user's days.
    model = load_model(partition_dir(root, "emotion_model", seed) / MODEL_FILE, device="cpu")
    igl = load_learners((partition_dir(root, "igl_policy", seed) / LEARNERS_FILE).read_bytes(), settings.policy, seed)
    result = fit_agents(
        videos, users, impressions, user_causal_parents,
        ranker, model, settings, seed, log=context.log.info, igl_learner=igl["igl_p3"],
    )
    final = result.history.group_by("agent", maintain_order=True).last()
    yield dg.Output(
        result.q_table,
        output_name="q_table",
        metadata={
            "training_users": int(result.training_users.size),
            "evaluation_users": int(result.evaluation_users.size),
            "training_seconds": round(result.seconds, 1),
            "states_visited": dg.MetadataValue.json(
                {row["agent"]: round(row["states_visited"], 3) for row in final.iter_rows(named=True)}
            ),
            **plot_metadata(esmr, "q_table", seed, "esmr_greedy_actions", greedy_actions(result.q_table, "esmr")),
        },
    )
    yield dg.Output(
        result.history,
        output_name="q_learning_curve",
        metadata={
            "final_epoch": markdown_table(final),
            **plot_metadata(esmr, "q_learning_curve", seed, "mean_reward_per_epoch", q_learning_curve(result.history)),
        },
    )

