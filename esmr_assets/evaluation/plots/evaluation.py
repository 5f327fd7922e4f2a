"""The evaluation's figures: fairness by group, style shares, trajectories, comparison, paired effects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from .common import EMOTION_COLOURS, plt, policy_labels, to_png


def reward_fairness(table: pl.DataFrame, styles: Sequence[str]) -> bytes:
    """IGL-P's Fig. 4 view: per policy, the share of served impressions with latent r = +1
    and r = -1 in each communication style group."""
    rows = table.filter(pl.col("label_source") == "true")
    policies = policy_labels(rows)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=False)
    width = 0.8 / len(styles)
    for ax, sign in zip(axes, ("positive", "negative")):
        for k, style in enumerate(styles):
            ax.bar(np.arange(len(policies)) + k * width, rows[f"{sign}_share_{style}"], width, label=style)
        ax.set_xticks(np.arange(len(policies)) + width * (len(styles) - 1) / 2, policies, rotation=30, ha="right")
        ax.set(title=f"impressions with latent r = {'+1' if sign == 'positive' else '-1'}", ylabel="share")
    axes[0].legend(frameon=False, title="feedback style")
    fig.tight_layout()
    return to_png(fig)


def style_shares_plot(effects: pl.DataFrame, low: str = "value_ci95_low", high: str = "value_ci95_high") -> bytes:
    """IGL-P's Fig. 4 with intervals: per policy (oracle_* marked) and communication style, the
    share of served impressions with latent r = +1 and with r = -1, error bars from `low` to
    `high` (per-user bootstrap in one seed, t across seeds)."""
    styles = effects["feedback_style"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(2, 1, figsize=(14, 8), sharex=True)
    for ax, metric in zip(axes, ("positive_share", "negative_share")):
        rows = effects.filter(pl.col("metric") == metric)
        names = rows["policy"].unique(maintain_order=True).to_list()
        policies = policy_labels(rows.unique("policy", maintain_order=True))
        width = 0.8 / len(styles)
        for k, style in enumerate(styles):
            mine = pl.DataFrame({"policy": names}).join(rows.filter(pl.col("feedback_style") == style), on="policy",
                                                        how="left", maintain_order="left")
            value = mine["value"].to_numpy().astype(float)
            spread = np.vstack([value - mine[low].to_numpy().astype(float), mine[high].to_numpy().astype(float) - value])
            ax.bar(np.arange(len(names)) + k * width, value, width, yerr=np.nan_to_num(spread), capsize=2, label=style)
        ax.set_xticks(np.arange(len(names)) + width * (len(styles) - 1) / 2, policies, rotation=30, ha="right")
        ax.set(ylabel="share of impressions",
               title=f"impressions with latent r = {'+1' if metric == 'positive_share' else '-1'}, per communication style")
    axes[0].legend(frameon=False, title="feedback style", ncols=len(styles))
    fig.tight_layout()
    return to_png(fig)


def policy_trajectories(rollouts: pl.DataFrame, user_id: int, policies: tuple[str, str] = ("lightgbm", "esmr")) -> bytes:
    """Figure 8 analogue: one user's predicted emotion per day under two policies (coloured
    markers) with the latent valence as a line; days on which RL served the feed shaded."""
    from ...core.vocabulary import VALENCE_SCORE

    fig, axes = plt.subplots(len(policies), 1, figsize=(9, 2.8 * len(policies)), sharex=True, sharey=True)
    for ax, policy in zip(np.atleast_1d(axes), policies):
        rows = rollouts.filter((pl.col("policy") == policy) & (pl.col("user_id") == user_id)).sort("day")
        for day in rows.filter(pl.col("rl_active"))["day"]:
            ax.axvspan(day - 0.5, day + 0.5, color="#cde7e4", linewidth=0)
        ax.plot(rows["day"], rows["true_valence"], color="#555555", linewidth=1.5, label="latent valence")
        labels = rows["predicted_label"].to_list()
        scores = [VALENCE_SCORE.get(label, -1.0) for label in labels]
        ax.scatter(rows["day"], scores, c=[EMOTION_COLOURS[label] for label in labels], s=40, zorder=3,
                   edgecolors="#333333", linewidths=0.5)
        ax.set(ylabel="valence", title=f"{policy}: user {user_id}" + (" (RL days shaded)" if rows["rl_active"].any() else ""))
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=e) for e, c in EMOTION_COLOURS.items()]
    np.atleast_1d(axes)[0].legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.0), frameon=False,
                                  title="predicted (churned at -1)")
    np.atleast_1d(axes)[-1].set_xlabel("day")
    fig.tight_layout()
    return to_png(fig)


COMPARISON_PANELS = (
    ("negative_days", "negative days per user"),
    ("happy_at_least_once", "happy at least once"),
    ("final_dominant_happy", "final dominant happy"),
    ("volatility", "valence volatility"),
    ("bounce_rate", "bounce rate"),
    ("engagement_reward", "engagement reward per user"),
    ("mean_latent_valence", "mean latent valence"),
    ("recovery_time", "recovery time (days)"),
)


def policy_comparison(table: pl.DataFrame) -> bytes:
    """Key metrics per policy, on predicted and on latent true labels side by side."""
    policies = table["policy"].unique(maintain_order=True).to_list()
    labels = policy_labels(table.unique("policy", maintain_order=True))
    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    x = np.arange(len(policies))
    for ax, (metric, title) in zip(axes.ravel(), COMPARISON_PANELS):
        for k, (source, colour) in enumerate((("predicted", "#457b9d"), ("true", "#e9c46a"))):
            rows = table.filter(pl.col("label_source") == source)
            by_policy = dict(zip(rows["policy"], rows[metric].fill_null(np.nan)))
            values = [by_policy.get(p, np.nan) for p in policies]  # a policy measured on the truth only
            ax.bar(x + (k - 0.5) * 0.4, values, width=0.4, color=colour, label=f"{source} labels")
        ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
    axes[0, 0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return to_png(fig)


#: the panels of the effects forest plot
FOREST_METRICS = ("negative_days", "mean_latent_valence", "happy_at_least_once", "engagement_reward")


def effects_forest(effects: pl.DataFrame, label_source: str = "true", metrics: Sequence[str] = FOREST_METRICS,
                   interval: str = "95 % per-user bootstrap interval") -> bytes:
    """Each policy's paired effect against the reference with its 95 % interval, one panel
    per metric, a line at zero; oracle policies (diagnostics that read the latent state)
    drawn hollow in another colour and labelled as such."""
    frame = effects.filter(pl.col("label_source") == label_source)
    policies = frame["policy"].unique(maintain_order=True).to_list()
    oracles = set(frame.filter(pl.col("oracle"))["policy"])
    reference = frame["reference"][0] if frame.height else "reference"
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.42 * len(policies) + 1.6), sharey=True)
    y = np.arange(len(policies))[::-1]
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        rows = {r["policy"]: r for r in frame.filter(pl.col("metric") == metric).iter_rows(named=True)}
        for yi, policy in zip(y, policies):
            row = rows.get(policy)
            if row is None or row["effect"] is None:
                continue
            oracle = policy in oracles
            colour = "#8c5fbf" if oracle else "#2c6e9b"
            low, high = row["ci95_low"], row["ci95_high"]
            if low is not None and high is not None:
                ax.plot([low, high], [yi, yi], color=colour, lw=2)
            ax.plot(row["effect"], yi, "o", color=colour, mfc="white" if oracle else colour, ms=6)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_yticks(y, policy_labels(frame.unique("policy", maintain_order=True)))
    fig.suptitle(f"Paired per-user effect against {reference} ({label_source} labels), {interval}", fontsize=10)
    fig.tight_layout()
    return to_png(fig)
