"""Phase I assets: videos, users and the 30-day logs, each partition one simulation seed.

Thin wrappers: read settings, call one domain function, attach checks, plots and metadata.
"""


from collections.abc import Iterable

import dagster as dg
import polars as pl

from ..core.rng import stream
from ..evaluation.plots.simulation import daily_emotion_mix, engagement_by_emotion
from ..orchestration.metadata import plot_metadata, value_counts
from ..orchestration.partitions import cell_partitions
from ..orchestration.resources import EsmrConfig, reads
from ..sim.content import simulate_videos
from ..sim.logs import simulate_logs
from ..sim.population import simulate_users
from ..sim.validation import (
    CHECK_NAMES,
    CheckOutcome,
    check_impressions,
    check_user_day_logs,
    check_users,
    check_videos,
    churn_rate_by_profile,
    interaction_correlations,
)

GROUP = "simulation"


def _check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset) for name in CHECK_NAMES[asset]]


def _check_results(asset: str, outcomes: Iterable[CheckOutcome]) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            asset_key=asset,
            check_name=o.name,
            passed=o.passed,
            severity=dg.AssetCheckSeverity.WARN if o.severity == "warn" else dg.AssetCheckSeverity.ERROR,
            description=o.description,
            metadata={"details": dg.MetadataValue.json(o.metadata)} if o.metadata else None,
        )
        for o in outcomes
    ]


@dg.asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    check_specs=_check_specs("videos"),
    kinds={"polars", "parquet"},
    metadata=reads("simulation.n_videos"),
)
def videos(context: dg.AssetExecutionContext, esmr: EsmrConfig):
    """The content pool: category, theme, duration, emotion, intensity, circumplex valence and
    arousal, and the composite engagement score (paper §3.1.1)."""
    settings, seed = esmr.settings_for(context).simulation, esmr.seed(context)
    frame = simulate_videos(settings.n_videos, stream(seed, "videos"))
    return dg.MaterializeResult(
        value=frame,
        metadata={
            "emotion_counts": dg.MetadataValue.json(value_counts(frame["emotion"])),
            "mean_engagement": float(frame["engagement"].mean()),
            **plot_metadata(context, esmr, "engagement_by_emotion", engagement_by_emotion(frame)),
        },
        check_results=_check_results("videos", check_videos(frame, settings)),
    )


@dg.asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    check_specs=_check_specs("users"),
    kinds={"polars", "parquet"},
    metadata=reads("simulation"),
)
def users(context: dg.AssetExecutionContext, esmr: EsmrConfig):
    """User profiles with their session, interaction, churn and Dirichlet preference
    parameters, latent affect traits and IGL-P feedback style (paper §3.1.2)."""
    settings, seed = esmr.settings_for(context).simulation, esmr.seed(context)
    frame = simulate_users(settings, stream(seed, "users"))
    return dg.MaterializeResult(
        value=frame,
        metadata={
            "profile_counts": dg.MetadataValue.json(value_counts(frame["profile"])),
            "feedback_style_counts": dg.MetadataValue.json(value_counts(frame["feedback_style"])),
        },
        check_results=_check_results("users", check_users(frame, settings)),
    )


@dg.multi_asset(
    group_name=GROUP,
    partitions_def=cell_partitions,
    outs={
        "user_day_logs": dg.AssetOut(kinds={"polars", "parquet"}, metadata=reads("simulation"), description=(
            "One row per user-day under the logging policy (Algorithm 1): behaviour, engineered "
            "features, and the latent true emotion (evaluation only, never a model input)."
        )),
        "impressions": dg.AssetOut(kinds={"polars", "parquet"}, metadata=reads("simulation"), description=(
            "One row per video a user reached in the logging policy's feed: position, watched "
            "or skipped, seconds spent."
        )),
    },
    check_specs=_check_specs("user_day_logs") + _check_specs("impressions"),
)
def user_day_logs_and_impressions(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, videos: pl.DataFrame, users: pl.DataFrame
):
    """Both tables come from one simulation, so they are produced together."""
    settings, seed = esmr.settings_for(context).simulation, esmr.seed(context)

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            context.log.info(f"simulated {done}/{total} chunk-days")

    logs, impressions = simulate_logs(videos, users, settings, seed, progress=progress)
    correlations = interaction_correlations(logs)
    yield dg.Output(
        logs,
        output_name="user_day_logs",
        metadata={
            "true_emotion_counts": dg.MetadataValue.json(value_counts(logs["true_emotion"])),
            "engagement_correlations": dg.MetadataValue.json(correlations),
            "churn_rate_by_profile": dg.MetadataValue.json(churn_rate_by_profile(logs)),
            **plot_metadata(context, esmr, "true_emotion_mix", daily_emotion_mix(logs, title="Latent true emotion by day"),
                            output="user_day_logs"),
        },
    )
    yield dg.Output(
        impressions,
        output_name="impressions",
        metadata={"watched_share": float(impressions["watched"].mean() or 0.0)},
    )
    yield from _check_results("user_day_logs", check_user_day_logs(logs, settings))
    yield from _check_results("impressions", check_impressions(impressions, logs, videos, settings))
