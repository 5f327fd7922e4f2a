"""Paired per-user effects: how much a policy changes each user's metrics against a reference
policy, with a per-user bootstrap interval.

Every policy faces the same evaluation users under common random numbers, so the unit of
comparison is the user: d_u = metric_u(policy) - metric_u(reference), over the users for whom
both are defined. The bootstrap resamples users (the same resamples for every policy, label
source and metric, so intervals are coherent), vectorised as one matrix product of resample
counts with the per-user values; the 95 % interval is the percentile interval of the
resampled means.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from ..core.portable import matmul
from ..policy.loop import registry
from .metrics import (
    METRICS,
    bounced,
    engagement_reward_total,
    final_dominant_happy,
    full_recovery,
    happy_at_least_once,
    mean_valence_score,
    negative_days,
    oracle_flags,
    policy_matrices,
    recovery_times,
    volatility,
)

#: per-user metrics, in table order, null where undefined for the user: the names of the
#: population figures (`metrics.METRICS`), whose means they are (full recovery: its mean over
#: the eligible; eligibility and bouncing: 0 or 1 per user)
USER_METRICS = METRICS
CONFIDENCE = 0.95
#: the registry entry of a `policy` column that may hold replicates (`esmr@2`) and pools (`esmr@all`)
_BASE_POLICY = pl.col("policy").str.split(registry.REPLICATE_MARK).list.first()


def user_metrics(rollouts: pl.DataFrame) -> pl.DataFrame:
    """One row per policy, label source and user: every metric of `USER_METRICS` defined per
    user (the population figures of `metrics.summarise` are their means, except
    full_recovery, whose rate is over the eligible users: its per-user value is null for a
    user who is not eligible)."""
    frames, oracle = [], oracle_flags(rollouts)
    for policy, source, users, m in policy_matrices(rollouts):
        labels = m["labels"]
        eligible, recovered = full_recovery(labels)
        values = {
            "negative_days": negative_days(labels),
            "happy_at_least_once": happy_at_least_once(labels),
            "final_dominant_happy": final_dominant_happy(labels),
            "full_recovery": np.where(eligible, recovered, np.nan),
            "full_recovery_eligible": eligible,
            "volatility": volatility(labels),
            "bounce_rate": bounced(labels),  # per user 0 or 1: its mean is the rate
            "engagement_reward": engagement_reward_total(m["watch"], m["scroll"]),
            "mean_valence": mean_valence_score(labels),
            "mean_latent_valence": m["latent"].mean(axis=1),
            "recovery_time": recovery_times(labels),
        }
        frames.append(pl.DataFrame({
            "policy": policy,
            "oracle": oracle[policy],
            "label_source": source,
            "user_id": users.astype(np.int32),
            **{name: np.asarray(values[name], dtype=np.float64) for name in USER_METRICS},
        }).with_columns(pl.col(name).fill_nan(None) for name in USER_METRICS))
    return pl.concat(frames)


def pool_replicates(metrics: pl.DataFrame) -> pl.DataFrame:
    """`metrics` with, for each agent evaluated with training replicates (`esmr`, `esmr@1`,
    ...), a pooled policy `esmr@all` after its last replicate: per label source and user,
    each metric's mean over the replicates (over those where it is defined). Its paired
    effect is the mean of the replicates' effects where every replicate defines the metric
    for the same users (not exactly so for full recovery and recovery time, whose users the
    policies shape); its bootstrap interval resamples users with the replicates fixed."""
    base = _BASE_POLICY
    policies = metrics["policy"].unique(maintain_order=True).to_list()
    replicated = {registry.base_name(p) for p in policies if p != registry.base_name(p)}
    if not replicated:
        return metrics
    last = {registry.base_name(p): p for p in policies}
    flags = oracle_flags(metrics)
    frames = []
    for policy in policies:
        frames.append(metrics.filter(pl.col("policy") == policy))
        name = registry.base_name(policy)
        if name in replicated and last[name] == policy:
            frames.append(
                metrics.filter(base == name)
                .group_by("label_source", "user_id", maintain_order=True)
                .agg(pl.col(USER_METRICS).mean())
                .with_columns(pl.lit(f"{name}{registry.REPLICATE_MARK}{registry.POOLED}").alias("policy"),
                              pl.lit(flags[name]).alias("oracle"))
                .select(metrics.columns)
            )
    return pl.concat(frames)


def replicate_spread(effects: pl.DataFrame) -> pl.DataFrame:
    """`effects` with, on each pooled row (`esmr@all`), how many training replicates it pools
    (`replicates`) and the standard deviation of their effects (`replicate_sd`): how much
    retraining the agent moves the effect. Null on every other row."""
    base = _BASE_POLICY
    pooled_suffix = f"{registry.REPLICATE_MARK}{registry.POOLED}"
    spread = (
        effects.filter(~pl.col("policy").str.ends_with(pooled_suffix))
        .with_columns(base.alias("_base"))
        .group_by("_base", "label_source", "metric", maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias("replicates"), pl.col("effect").std().alias("replicate_sd"))
        .filter(pl.col("replicates") > 1)
        .select((pl.col("_base") + pooled_suffix).alias("policy"), "label_source", "metric", "replicates", "replicate_sd")
    )
    return effects.join(spread, on=["policy", "label_source", "metric"], how="left", maintain_order="left")


def resample_counts(n_users: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n_users) how often each user is drawn in each bootstrap resample."""
    draws = rng.integers(0, n_users, size=(resamples, n_users))
    offsets = np.arange(resamples)[:, None] * n_users
    return np.bincount((draws + offsets).ravel(), minlength=resamples * n_users).reshape(resamples, n_users)


def percentile_interval(boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % percentile interval of bootstrap resamples (rows) per column; a column that
    is all NaN (a metric nobody has) stays NaN, then null."""
    tail = 100 * (1 - CONFIDENCE) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(boot, [tail, 100 - tail], axis=0)
    return low, high


def paired_effects(
    metrics: pl.DataFrame, reference: str, resamples: int, rng: np.random.Generator,
    ceiling: str | None = None,
) -> pl.DataFrame:
    """One row per policy other than `reference`, label source and metric: the mean paired
    difference (`effect`) over the `n` users where both values are defined, its 95 %
    percentile bootstrap interval, the reference's mean over those users and the effect
    relative to it; with `ceiling`, the effect as a share of the ceiling policy's effect
    (`share_of_ceiling`: how much of the gap between the reference and the ceiling it closes)."""
    policies = metrics["policy"].unique(maintain_order=True).to_list()
    if reference not in policies:
        raise ValueError(f"user metrics lack the reference policy {reference!r} (have {policies})")
    users = metrics.filter(pl.col("policy") == reference)["user_id"].unique().sort()
    oracle = oracle_flags(metrics)
    others = [p for p in policies if p != reference]
    keys, diffs, refs = [], [], []
    for source in metrics["label_source"].unique(maintain_order=True).to_list():
        def values(policy: str) -> np.ndarray:
            rows = metrics.filter((pl.col("policy") == policy) & (pl.col("label_source") == source))
            aligned = pl.DataFrame({"user_id": users}).join(rows, on="user_id", how="left", maintain_order="left")
            if aligned["policy"].null_count():
                raise ValueError(f"{policy!r} ({source}) lacks users the reference {reference!r} has")
            return aligned.select(USER_METRICS).to_numpy().astype(np.float64)

        base = values(reference)
        measured = set(metrics.filter(pl.col("label_source") == source)["policy"])
        for policy in (p for p in others if p in measured):  # a policy on latent labels has no predicted rows
            diffs.append(values(policy) - base)
            refs.append(np.where(np.isnan(diffs[-1]), np.nan, base))
            keys += [(policy, source, metric) for metric in USER_METRICS]
    if not keys:
        return _empty()
    d = np.concatenate(diffs, axis=1)  # users x (policy, source, metric)
    r = np.concatenate(refs, axis=1)
    defined = ~np.isnan(d)
    n = defined.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        effect = np.nansum(d, axis=0) / n
        ref_mean = np.nansum(r, axis=0) / n
        weights = resample_counts(len(users), resamples, rng).astype(np.float64)
        boot = matmul(weights, np.where(defined, d, 0.0)) / matmul(weights, defined)
    low, high = percentile_interval(boot)
    frame = pl.DataFrame(
        {
            "policy": [k[0] for k in keys],
            "oracle": [oracle[k[0]] for k in keys],
            "label_source": [k[1] for k in keys],
            "metric": [k[2] for k in keys],
            "reference": reference,
            "n": n.astype(np.int64),
            "effect": effect,
            "ci95_low": low,
            "ci95_high": high,
            "reference_mean": ref_mean,
        }
    ).with_columns(pl.col("effect", "ci95_low", "ci95_high", "reference_mean").fill_nan(None))
    frame = frame.with_columns(
        pl.when(pl.col("reference_mean").abs() > 0)
        .then(pl.col("effect") / pl.col("reference_mean").abs())
        .alias("relative_effect")
    )
    return _with_ceiling_share(frame, ceiling)


def _with_ceiling_share(frame: pl.DataFrame, ceiling: str | None) -> pl.DataFrame:
    if ceiling is None or ceiling not in frame["policy"]:
        return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("share_of_ceiling"))
    gap = frame.filter(pl.col("policy") == ceiling).select(
        "label_source", "metric", pl.col("effect").alias("_ceiling")
    )
    return (
        frame.join(gap, on=["label_source", "metric"], how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_ceiling").abs() > 0).then(pl.col("effect") / pl.col("_ceiling")).alias("share_of_ceiling")
        )
        .drop("_ceiling")
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "policy": pl.String, "oracle": pl.Boolean, "label_source": pl.String, "metric": pl.String, "reference": pl.String, "n": pl.Int64,
        "effect": pl.Float64, "ci95_low": pl.Float64, "ci95_high": pl.Float64, "reference_mean": pl.Float64,
        "relative_effect": pl.Float64, "share_of_ceiling": pl.Float64,
    })
