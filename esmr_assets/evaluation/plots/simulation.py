"""The simulation stage's figures: the daily emotion mix and engagement by content emotion."""

from __future__ import annotations

import polars as pl

from ...core.vocabulary import EMOTIONS, TRUE_EMOTIONS
from .common import EMOTION_COLOURS, plt, to_png


def daily_emotion_mix(logs: pl.DataFrame, column: str = "true_emotion", title: str | None = None) -> bytes:
    """Stacked share of each emotion per day."""
    mix = (
        logs.group_by("day", column)
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over("day")).alias("share"))
        .pivot(on=column, index="day", values="share")
        .sort("day")
        .fill_null(0.0)
    )
    labels = [e for e in TRUE_EMOTIONS if e in mix.columns]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.stackplot(
        mix["day"].to_numpy(),
        [mix[e].to_numpy() for e in labels],
        labels=labels,
        colors=[EMOTION_COLOURS[e] for e in labels],
    )
    ax.set(xlabel="day", ylabel="share of users", ylim=(0, 1), title=title or f"Daily mix of {column}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return to_png(fig)


def engagement_by_emotion(videos: pl.DataFrame) -> bytes:
    """Distribution of the video engagement probability per video emotion (paper §3.1.1)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    data = [videos.filter(pl.col("emotion") == e)["engagement"].to_numpy() for e in EMOTIONS]
    ax.boxplot(data, tick_labels=list(EMOTIONS), showfliers=False)
    ax.set(ylabel="engagement probability", title="Video engagement by emotion")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return to_png(fig)
