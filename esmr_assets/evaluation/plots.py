"""Figures people would rather see than read, rendered to PNG bytes (Agg backend, no display).

Rendering is deterministic for the same data (fixed size, no timestamps in the PNG), so the
files written beside the tables do not change between identical runs."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from ..core.vocabulary import EMOTIONS, TRUE_EMOTIONS  # noqa: E402

EMOTION_COLOURS = {
    "happy": "#f2c14e",
    "excited": "#f78154",
    "neutral": "#b4b4b4",
    "stressed": "#b6465f",
    "disappointed": "#5d5f9e",
    "churned": "#2e2e2e",
}


def policy_labels(rows: pl.DataFrame) -> list[str]:
    """The `policy` column as axis labels, diagnostic `oracle` policies marked as such."""
    oracle = rows["oracle"] if "oracle" in rows.columns else pl.Series([False] * rows.height)
    return [f"{p} (oracle)" if o else p for p, o in zip(rows["policy"], oracle)]


def to_png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


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


def confusion_heatmap(matrix, classes, title: str, xlabel: str = "predicted", ylabel: str = "truth") -> bytes:
    """Row-normalised confusion matrix with counts in the cells."""

    matrix = np.asarray(matrix, dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black", fontsize=8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    return to_png(fig)


def elbow_curve(elbow: pl.DataFrame, chosen_k: int) -> bytes:
    """Inertia (left axis) and silhouette (right axis) against k."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(elbow["k"], elbow["inertia"], marker="o", color="#33658a", label="inertia")
    ax.axvline(chosen_k, color="#999999", linestyle="--")
    ax.set(xlabel="k", ylabel="inertia", title=f"K-Means elbow (k = {chosen_k} used)")
    twin = ax.twinx()
    twin.plot(elbow["k"], elbow["silhouette"], marker="s", color="#f6ae2d", label="silhouette")
    twin.set_ylabel("silhouette")
    fig.tight_layout()
    return to_png(fig)


def training_curve(history: pl.DataFrame, best_epoch: int) -> bytes:
    """Train and validation loss, and validation accuracy, per epoch."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["epoch"], history["train_loss"], label="train loss")
    ax.plot(history["epoch"], history["val_loss"], label="validation loss")
    ax.axvline(best_epoch, color="#999999", linestyle="--", label=f"best epoch {best_epoch}")
    ax.set(xlabel="epoch", ylabel="cross-entropy", title="TabTransformer training")
    twin = ax.twinx()
    twin.plot(history["epoch"], history["val_accuracy"], color="#2a9d8f", label="validation accuracy")
    twin.set_ylabel("validation accuracy")
    ax.legend(loc="center right", frameon=False)
    fig.tight_layout()
    return to_png(fig)


def emotion_trajectory(predictions: pl.DataFrame, user_id: int, window: int = 3) -> bytes:
    """One user's predicted class probabilities, `window`-day moving average (paper Fig. 6)."""
    user = predictions.filter(pl.col("user_id") == user_id).sort("day")
    fig, ax = plt.subplots(figsize=(8, 4))
    for emotion in TRUE_EMOTIONS:
        smoothed = user[f"p_{emotion}"].rolling_mean(window, min_samples=1)
        ax.plot(user["day"], smoothed, label=emotion, color=EMOTION_COLOURS[emotion], linewidth=2)
    ax.set(xlabel="day", ylabel=f"probability ({window}-day average)", ylim=(0, 1),
           title=f"Predicted emotion trajectory of user {user_id}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return to_png(fig)


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


def policy_trajectories(rollouts: pl.DataFrame, user_id: int, policies: tuple[str, str] = ("lightgbm", "esmr")) -> bytes:
    """Figure 8 analogue: one user's predicted emotion per day under two policies (coloured
    markers) with the latent valence as a line; days on which RL served the feed shaded."""
    from ..core.vocabulary import VALENCE_SCORE

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
