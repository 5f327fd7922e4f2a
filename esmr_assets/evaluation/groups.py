"""Results per communication style (IGL-P's Fig. 4 view, with intervals): for each style and
policy, the shares of served impressions whose latent satisfaction was r = +1 and r = -1, the
learners' decoded-reward sign accuracy, and the style's negative days, mean latent valence
and engagement reward;
each with a per-user bootstrap interval, and its paired effect against the reference policy.

Every metric is a ratio of per-user sums over the style's users: the shares are impressions
with r = +/-1 over impressions shown (so they equal `evaluation_metrics`' per-style shares),
the decoded accuracy agreeing rounds over rounds, negative days, valence and engagement
reward per-user values over users. The bootstrap resamples users within each style, the same resamples for every
policy and metric of the style, so a paired effect's interval is that of a difference of
ratios over the same users.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..core.portable import matmul
from ..core.vocabulary import SIGNALS
from ..policy.learners.linear_bandit import LinearBandit
from .effects import percentile_interval, resample_counts
from .metrics import oracle_flags

#: (metric, numerator, denominator) of each per-style metric, over `style_user_values` columns
GROUP_METRICS = (
    ("negative_share", "negative_impressions", "n_impressions"),
    ("positive_share", "positive_impressions", "n_impressions"),
    ("decoded_accuracy", "decoded_agree", "rounds"),
    ("negative_days", "negative_days", "one"),
    ("mean_latent_valence", "mean_latent_valence", "one"),
    ("engagement_reward", "engagement_reward", "one"),
)


def style_user_values(rollouts: pl.DataFrame, user_metrics: pl.DataFrame, users: pl.DataFrame) -> pl.DataFrame:
    """One row per policy and evaluation user: their style, the sums behind each metric of
    `GROUP_METRICS` (rounds null for a policy that does not learn), negative days, mean latent
    valence and engagement reward on the latent labels."""
    sums = rollouts.group_by("policy", "user_id", maintain_order=True).agg(
        pl.col("oracle").first(),
        *(pl.col(c).sum().cast(pl.Float64) for c in ("negative_impressions", "positive_impressions", "n_impressions")),
        pl.col("decoded_agree").sum().cast(pl.Float64),
        pl.when(pl.col("rounds").is_not_null().any()).then(pl.col("rounds").sum()).cast(pl.Float64).alias("rounds"),
    )
    truth = user_metrics.filter(pl.col("label_source") == "true").select(
        "policy", "user_id", "negative_days", "mean_latent_valence", "engagement_reward")
    frame = (sums.join(truth, on=["policy", "user_id"], how="left", maintain_order="left")
             .join(users.select("user_id", "feedback_style"), on="user_id", how="left", maintain_order="left"))
    if frame["feedback_style"].null_count() or frame["negative_days"].null_count():
        raise ValueError("rollouts hold users without a feedback style or without latent-label metrics")
    return frame.with_columns(pl.lit(1.0).alias("one"))


def effects_by_style(values: pl.DataFrame, reference: str, resamples: int, rng: np.random.Generator) -> pl.DataFrame:
    """One row per style (population order), policy and metric of `GROUP_METRICS`: the style's
    `users`, the metric's `value` with its 95 % bootstrap interval, and its paired effect
    against `reference` (null for the reference, and where the reference lacks the metric)."""
    policies = values["policy"].unique(maintain_order=True).to_list()
    if reference not in policies:
        raise ValueError(f"rollouts lack the reference policy {reference!r} (have {policies})")
    oracle = oracle_flags(values)
    styles = values["feedback_style"].dtype.categories.to_list()
    frames = []
    for style in styles:
        mine = values.filter(pl.col("feedback_style") == style)
        users = mine.filter(pl.col("policy") == reference)["user_id"].sort()
        if users.is_empty():
            continue
        weights = resample_counts(len(users), resamples, rng).astype(np.float64)

        ratios = {}
        for policy in policies:
            aligned = pl.DataFrame({"user_id": users}).join(mine.filter(pl.col("policy") == policy), on="user_id",
                                                            how="left", maintain_order="left")
            if aligned["policy"].null_count():
                raise ValueError(f"{policy!r} lacks {style} users the reference {reference!r} has")
            for metric, numerator, denominator in GROUP_METRICS:
                top, bottom = (aligned[c].fill_null(np.nan).to_numpy() for c in (numerator, denominator))
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratios[policy, metric] = (top.sum() / bottom.sum(), matmul(weights, top) / matmul(weights, bottom))
        rows = []
        for policy in policies:
            for metric, _, _ in GROUP_METRICS:
                value, boot = ratios[policy, metric]
                low, high = percentile_interval(boot)
                row = {"feedback_style": style, "policy": policy, "oracle": oracle[policy], "metric": metric,
                       "users": len(users), "value": value, "value_ci95_low": low, "value_ci95_high": high,
                       "reference": reference, "effect": None, "ci95_low": None, "ci95_high": None}
                base_value, base_boot = ratios[reference, metric]
                if policy != reference:
                    row["effect"] = value - base_value
                    row["ci95_low"], row["ci95_high"] = percentile_interval(boot - base_boot)
                rows.append(row)
        frames.append(pl.DataFrame(rows, schema=_SCHEMA))
    if not frames:
        raise ValueError(f"no communication style has users under the reference policy {reference!r}")
    return pl.concat(frames).with_columns(
        pl.col("value", "value_ci95_low", "value_ci95_high", "effect", "ci95_low", "ci95_high").fill_nan(None))


_SCHEMA = {"feedback_style": pl.String, "policy": pl.String, "oracle": pl.Boolean, "metric": pl.String,
           "users": pl.Int64, "value": pl.Float64, "value_ci95_low": pl.Float64, "value_ci95_high": pl.Float64,
           "reference": pl.String, "effect": pl.Float64, "ci95_low": pl.Float64, "ci95_high": pl.Float64}


def signal_value_lift(bandit: LinearBandit, x: np.ndarray, actions: np.ndarray, y: np.ndarray,
                      groups: np.ndarray, signal: str = "like") -> dict[str, float]:
    """Per group: the bandit's learned reward of the rounds on which `signal` was emitted minus
    that of all the group's rounds, in standard deviations of the learned reward over all
    rounds (so learners whose rewards have different scales compare). What a learner has come
    to think a signal marks: IGL-P(3) decodes a like itself as 0 or +1 (Eq. 4), but the
    definitely-negative rounds of the same (x, a) can teach its bandit that what a group likes
    is worse than its average (issue 18's fourth prediction, in the form Eq. 4 allows)."""
    value = bandit.estimates(x)[np.arange(len(actions)), actions]
    marked, groups = np.asarray(y) == SIGNALS.index(signal), np.asarray(groups)
    return {str(g): float((value[marked & (groups == g)].mean() - value[groups == g].mean()) / value.std())
            for g in np.unique(groups[marked])}
