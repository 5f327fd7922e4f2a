"""The policy stage's figures: ranker features, agents' and bandits' training, greedy actions."""

from __future__ import annotations

import numpy as np
import polars as pl

from ...core.vocabulary import TRUE_EMOTIONS
from .common import plt, to_png


def feature_importance(importance: dict[str, float], top: int = 20) -> bytes:
    """The `top` features by LightGBM gain, largest at the top."""
    items = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))[:top][::-1]
    total = sum(importance.values()) or 1.0
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1.2))
    ax.barh([k for k, _ in items], [v / total for _, v in items], color="#457b9d")
    ax.set(xlabel="share of total gain", title="Engagement ranker: feature importance")
    fig.tight_layout()
    return to_png(fig)


def q_learning_curve(history: pl.DataFrame) -> bytes:
    """Mean reward per transition by epoch, one line per agent, with the share of
    states visited on a second panel."""
    fig, (ax, visited) = plt.subplots(1, 2, figsize=(10, 4))
    for agent in history["agent"].unique(maintain_order=True):
        rows = history.filter(pl.col("agent") == agent)
        ax.plot(rows["epoch"], rows["mean_reward"], marker="o", label=agent)
        visited.plot(rows["epoch"], rows["states_visited"], marker="o", label=agent)
    ax.set(xlabel="epoch", ylabel="mean reward per user-day (Eq. 8)", title="Q-learning training")
    visited.set(xlabel="epoch", ylabel="share of states visited", ylim=(0, 1), title="State coverage")
    ax.legend(frameon=False)
    fig.tight_layout()
    return to_png(fig)


def deep_learning_curve(history: pl.DataFrame) -> bytes:
    """Per deep learner and training episode: the mean reward it learns from, and its Eq. 8
    terms (unweighted), per user-day."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    for ax, column in zip(axes, ("mean_reward", "mean_r_eng", "mean_r_emo", "mean_r_cause")):
        for agent in history["agent"].unique(maintain_order=True):
            rows = history.filter(pl.col("agent") == agent)
            ax.plot(np.arange(1, rows.height + 1), rows[column], marker="o", label=agent)
        ax.set(xlabel="training episode", title=column.removeprefix("mean_") + " per user-day")
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return to_png(fig)


def bandit_training(history: pl.DataFrame) -> bytes:
    """Per bandit and epoch on the training users: the share of rounds whose decoded reward
    had the sign of the latent r, and the shares of impressions with r = +1 and r = -1."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = (("decoded_accuracy", "decoded reward's sign = latent r"), ("positive_share", "impressions with r = +1"),
              ("negative_share", "impressions with r = -1"))
    for ax, (column, title) in zip(axes, panels):
        for policy in history["policy"].unique(maintain_order=True):
            rows = history.filter(pl.col("policy") == policy)
            ax.plot(rows["epoch"], rows[column], marker="o", label=policy)
        ax.set(xlabel="epoch", title=title)
    axes[0].legend(frameon=False)
    fig.tight_layout()
    return to_png(fig)


def greedy_actions(q_table: pl.DataFrame, agent: str) -> bytes:
    """The agent's greedy bucket per visited state: rows label x streak, columns the
    engagement-trend bucket, the cell naming the action and coloured by its Q."""
    rows = q_table.filter(pl.col("agent") == agent)
    best = (
        rows.sort(["state", "q", "action"], descending=[False, True, False])
        .group_by("state", maintain_order=True)
        .agg(pl.first("label"), pl.first("streak"), pl.first("trend"), pl.first("action"), pl.first("q"),
             pl.col("visits").sum())
    )
    labels = [e for e in TRUE_EMOTIONS]
    trends = ["down", "flat", "up"]
    grid = np.full((len(labels) * 4, 3), np.nan)
    fig, ax = plt.subplots(figsize=(7, 9))
    for r in best.filter(pl.col("visits") > 0).iter_rows(named=True):
        i, j = labels.index(r["label"]) * 4 + r["streak"], trends.index(r["trend"])
        grid[i, j] = r["q"]
        ax.text(j, i, r["action"], ha="center", va="center", fontsize=7)
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(3), trends)
    ax.set_yticks(range(grid.shape[0]), [f"{lab} / streak {s}{'+' if s == 3 else ''}" for lab in labels for s in range(4)],
                  fontsize=7)
    ax.set(xlabel="engagement trend", title=f"{agent}: greedy bucket per visited state")
    fig.colorbar(image, ax=ax, label="max Q")
    fig.tight_layout()
    return to_png(fig)
