"""The policy comparison table (paper §4.3-4.4, Table 4): every metric of `metrics` per
policy and label source, its change relative to the `lightgbm` baseline, and the paper's
figure where the paper gives one."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..policy.loop.rollouts import DECODED_ACCURACY, satisfaction_shares
from .metrics import (
    METRICS,
    PAPER_BASELINE,
    PAPER_FIGURES,
    PAPER_VOLATILITY_CHANGE,
    oracle_flags,
    policy_matrices,
    summarise,
)

BASELINE = "lightgbm"
#: metrics whose relative change is reported (counts of eligible users are not)
COMPARED = tuple(m for m in METRICS if m != "full_recovery_eligible")


def styles_of(users: pl.DataFrame) -> tuple[str, ...]:
    """The population's communication styles, in order: the categories of `feedback_style`."""
    return tuple(users.schema["feedback_style"].categories.to_list())


def feedback_metrics(rollouts: pl.DataFrame, styles: pl.DataFrame) -> pl.DataFrame:
    """Per policy, the latent satisfaction of what it served (IGL-P's Fig. 4 view): the
    share of impressions with r = +1 and r = -1, overall and per communication style
    (`styles`: user_id, feedback_style), and for learners the share of rounds whose decoded
    reward had the sign of r (`decoded_accuracy`, null for the others). The styles are those
    of the population (the categories of `feedback_style`)."""
    frame = rollouts.join(styles.select("user_id", "feedback_style"), on="user_id", how="left")
    if frame["feedback_style"].null_count():
        raise ValueError("rollouts hold users without a feedback style")

    return frame.group_by("policy", maintain_order=True).agg(
        *satisfaction_shares(),
        DECODED_ACCURACY,
        *(e for style in styles_of(styles) for e in satisfaction_shares(pl.col("feedback_style") == style, f"_{style}")),
    )


def evaluation_table(rollouts: pl.DataFrame, styles: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per policy (in order of appearance) and label source: `users`, every metric,
    `change_<metric>` = (value - baseline) / |baseline| against `lightgbm` with the same
    label source, and `paper_<metric>`: the paper's ESMR figure on the `esmr` rows, its
    LightGBM figure on the `lightgbm` rows, null elsewhere. `rl_active_share` is the share of
    all its user-days, churned ones included, on which the policy's RL or fixed bucket acted:
    the hybrids' acting shares. With the users' communication
    `styles`, the `feedback_metrics` columns follow (the same for both label sources)."""
    oracle = oracle_flags(rollouts)
    rows = [
        {"policy": policy, "oracle": oracle[policy], "label_source": source, "users": users.size,
         **summarise(m["labels"], m["watch"], m["scroll"], m["latent"])}
        for policy, source, users, m in policy_matrices(rollouts)
    ]
    table = (
        pl.DataFrame(rows)
        .with_columns(pl.col(m).cast(pl.Float64) for m in METRICS)
        .join(rl_days(rollouts).select("policy", "rl_active_share"), on="policy", how="left", maintain_order="left")
    )
    if styles is not None:
        table = table.join(feedback_metrics(rollouts, styles), on="policy", how="left", maintain_order="left")
    if BASELINE not in table["policy"]:
        raise ValueError(f"rollouts lack the {BASELINE!r} baseline")
    base = table.filter(pl.col("policy") == BASELINE).select(
        "label_source", *(pl.col(m).alias(f"_base_{m}") for m in COMPARED)
    )
    changes = [
        pl.when(pl.col(f"_base_{m}").abs() > 0)
        .then((pl.col(m) - pl.col(f"_base_{m}")) / pl.col(f"_base_{m}").abs())
        .alias(f"change_{m}")
        for m in COMPARED
    ]
    papers = [_paper_column(m) for m in COMPARED] + [
        pl.when(pl.col("policy") == "esmr").then(PAPER_VOLATILITY_CHANGE).alias("paper_change_volatility")
    ]
    return (
        table.join(base, on="label_source", how="left", maintain_order="left")
        .with_columns(*changes, *papers)
        .drop(f"_base_{m}" for m in COMPARED)
    )


def _paper_column(metric: str) -> pl.Expr:
    esmr, baseline = PAPER_FIGURES.get(metric), PAPER_BASELINE.get(metric)
    expr = pl.when(pl.col("policy") == "esmr").then(esmr if esmr is not None else np.nan)
    expr = expr.when(pl.col("policy") == BASELINE).then(baseline if baseline is not None else np.nan)
    return expr.otherwise(np.nan).fill_nan(None).alias(f"paper_{metric}")


def rl_days(rollouts: pl.DataFrame) -> pl.DataFrame:
    """Per policy, the user-days on which its RL (or fixed bucket) acted, split by whether
    the user came that day (`rl_days`) or churned (`rl_churn_days`: the action did nothing
    and its reward is the churn's), and the share of all user-days that acting days are."""
    acted = pl.col("rl_active")
    return rollouts.group_by("policy", maintain_order=True).agg(
        (acted & ~pl.col("churned")).sum().alias("rl_days"),
        (acted & pl.col("churned")).sum().alias("rl_churn_days"),
        acted.mean().alias("rl_active_share"),
    )


def representative_user(rollouts: pl.DataFrame, policy: str = "esmr") -> int:
    """The evaluation user on whom `policy`'s RL was active most often (smallest id on
    ties): the Figure 8 user."""
    counts = (
        rollouts.filter(pl.col("policy") == policy)
        .group_by("user_id")
        .agg(pl.col("rl_active").sum().alias("active"))
        .sort(["active", "user_id"], descending=[True, False])
    )
    if counts.height == 0:
        raise ValueError(f"rollouts have no {policy!r} rows")
    return int(counts["user_id"][0])
