"""Phase II (b) assets: per-user DirectLiNGAM DAGs and the parents of the emotional targets.
Thin wrappers over `esmr_assets.causal.discovery`."""

import dagster as dg
import polars as pl

from ..causal.discovery import POOLED_USER, discover, target_parents
from ..evaluation.plots.causal import parent_dag
from ..orchestration.metadata import markdown_table, plot_metadata
from ..orchestration.partitions import cell_partitions
from ..orchestration.resources import EsmrConfig, reads
from ..sim.causal_graph import CAUSAL_FEATURES, TRUE_EDGES

GROUP = "causal"


@dg.asset(group_name=GROUP, partitions_def=cell_partitions, kinds={"numpy", "parquet"}, metadata=reads("causal"))
def causal_dags(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, user_day_logs: pl.DataFrame, emotion_predictions: pl.DataFrame
):
    """Edge list (method, user_id, cause, effect, weight; lingam's B[effect, cause]) of three
    kinds of DAG over the 19 features of `sim.causal_graph.CAUSAL_FEATURES`: per user
    (batched DirectLiNGAM), pooled over all users (user_id -1, what the paper's own code
    fits), and per user constrained by the pooled causal order. Each is scored against the
    simulator's true graph. Features: valence, scroll_minutes, watch_minutes, logins, likes,
    comments, shares, skip_rate, engagement, engagement_trend, scroll_watch_ratio,
    mean_intensity, intensity_change, content_valence, content_arousal, negative_share and
    the next-day targets next_day_stressed, valence_change, next_day_happy."""
    settings, seed = esmr.settings_for(context).causal, esmr.seed(context)
    result = discover(
        user_day_logs, emotion_predictions, settings.min_rows, settings.device, settings.pooled_max_users, seed
    )
    context.log.info(
        f"fitted {len(result.users)} users; {len(result.skipped_users)} skipped (fewer than {settings.min_rows} "
        f"day pairs), {len(result.collinear_users)} skipped (collinear data)"
    )
    best = result.scores.sort("f1", descending=True)["method"][0]
    return dg.MaterializeResult(
        value=result.edges,
        metadata={
            "scores_vs_true_graph": markdown_table(result.scores),
            "best_method_by_f1": str(best),
            "method_used_downstream": settings.method,
            "users_fitted": len(result.users),
            "users_skipped_short": len(result.skipped_users),
            "users_skipped_collinear": len(result.collinear_users),
            "constant_columns_dropped": dg.MetadataValue.json(result.dropped_columns),
            "true_edges": len(TRUE_EDGES),
            "features": dg.MetadataValue.json(list(CAUSAL_FEATURES)),
        },
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    outs={
        "causal_parents": dg.AssetOut(kinds={"parquet"}, metadata=reads("causal.method"), description=(
            "Paper Table 2 analogue: per emotional target and parent, sign, median weight, the "
            "share of users whose DAG has the edge, its rank, and whether the true graph has it."
        )),
        "user_causal_parents": dg.AssetOut(kinds={"parquet"}, metadata=reads("causal.method"), description=(
            "Per user, target and parent, the DAG weight: the lambda_f of the RL agent's causal reward."
        )),
    },
)
def causal_parents(context: dg.AssetExecutionContext, esmr: EsmrConfig, causal_dags: pl.DataFrame):
    """Parents of next-day stressed, valence change and next-day happy, from the DAGs of
    the configured method."""
    settings = esmr.settings_for(context).causal
    method = settings.method
    users = causal_dags.filter(pl.col("method") == method)["user_id"].unique()
    n_users = 1 if method == "pooled" else int((users != POOLED_USER).sum())
    summary, per_user = target_parents(causal_dags, method, n_users)
    top3 = summary.filter(pl.col("rank") <= 3)
    yield dg.Output(
        summary,
        output_name="causal_parents",
        metadata={
            "method": method,
            "top_3_parents": markdown_table(top3),
            **plot_metadata(context, esmr, "parents_dag", parent_dag(summary, ("next_day_happy", "next_day_stressed")),
                            output="causal_parents"),
        },
    )
    yield dg.Output(per_user, output_name="user_causal_parents", metadata={"users": per_user["user_id"].n_unique()})
