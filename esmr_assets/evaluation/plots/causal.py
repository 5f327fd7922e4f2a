"""The causal stage's figure: the most frequent parents of each emotional target."""

from __future__ import annotations

import numpy as np
import polars as pl

from .common import EMOTION_COLOURS, plt, to_png


def parent_dag(summary: pl.DataFrame, targets: tuple[str, ...], top: int = 6) -> bytes:
    """Parents of each target (paper Fig. 3/5): arrows coloured by sign (green +, red -),
    width by the share of users whose DAG has the edge; true edges drawn solid."""
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5))
    for ax, target in zip(np.atleast_1d(axes), targets):
        rows = summary.filter((pl.col("target") == target) & (pl.col("rank") <= top)).sort("rank")
        n = max(rows.height, 1)
        ax.text(0.85, 0.5, target, ha="center", va="center", fontsize=11,
                bbox={"boxstyle": "round", "facecolor": EMOTION_COLOURS["happy" if "happy" in target else "stressed"], "alpha": 0.6})
        for k, row in enumerate(rows.iter_rows(named=True)):
            y = 1 - (k + 0.5) / n
            ax.text(0.15, y, row["parent"], ha="center", va="center", fontsize=9,
                    bbox={"boxstyle": "round", "facecolor": "#eeeeee"})
            ax.annotate("", xy=(0.68, 0.5), xytext=(0.32, y),
                        arrowprops={"arrowstyle": "->", "color": "#2a9d8f" if row["sign"] > 0 else "#c0392b",
                                    "lw": 1 + 6 * row["user_share"], "linestyle": "-" if row["in_true_graph"] else "--"})
            ax.text(0.5, (y + 0.5) / 2 + 0.03, f"{row['user_share']:.0%}", fontsize=8, ha="center")
        ax.set(xlim=(0, 1), ylim=(0, 1), title=f"parents of {target} (solid: in the true graph)")
        ax.axis("off")
    fig.tight_layout()
    return to_png(fig)
