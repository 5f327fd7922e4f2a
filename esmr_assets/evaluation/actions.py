"""What each policy served in which predicted state: the share of its user-days on which each
bucket led the feed, by the predicted label of the day before (what the agents, the hybrid
switch and the deep learners read). It answers "is what a learner learnt more than *lead
with happy*?" and gives the hybrids' acting shares, from a table small enough to archive."""

from __future__ import annotations

import polars as pl

#: the `action` of a day on which no bucket led: the ranker's feed
RANKER = "ranker"


def action_shares(rollouts: pl.DataFrame) -> pl.DataFrame:
    """One row per policy, state and action over the days a policy chooses (day 1 on, when
    yesterday's predicted label exists): user-days, and their share of the policy's
    user-days in that state (`share`) and overall (`share_of_days`)."""
    state = pl.col("predicted_label").shift(1).over(["policy", "user_id"], order_by="day")
    days = (
        rollouts.select("policy", "oracle", "user_id", "day", "predicted_label", "action")
        .with_columns(state.alias("state"), pl.col("action").fill_null(RANKER))
        .filter(pl.col("day") >= 1)
    )
    counts = days.group_by("policy", "oracle", "state", "action").agg(pl.len().cast(pl.Int64).alias("user_days"))
    order = days.select(pl.col("policy").unique(maintain_order=True)).with_row_index("_order")
    return (
        counts.with_columns(
            (pl.col("user_days") / pl.col("user_days").sum().over("policy", "state")).alias("share"),
            (pl.col("user_days") / pl.col("user_days").sum().over("policy")).alias("share_of_days"),
        )
        .join(order, on="policy")
        .sort("_order", "state", "action")
        .drop("_order")
    )
