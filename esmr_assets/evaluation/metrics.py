"""The paper's evaluation metrics (§4), per user, from an (n_users, n_days) label matrix.

Every metric is a small vectorised function over a matrix of true-emotion labels (strings
from `TRUE_EMOTIONS`); `summarise` reduces them to the population figures the paper
reports. The paper names most metrics without formulas, so each docstring states the exact
definition used here. `churned` is neither negative, neutral nor positive: it never counts
as a negative or positive day and carries no valence score.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from ..core.vocabulary import NEGATIVE, POSITIVE, TRUE_EMOTIONS, VALENCE_SCORE, check_labels
from ..policy.loop import registry
from ..policy.rewards import engagement_reward

#: label source -> rollout column: what the platform sees, and the simulator's latent truth
LABEL_SOURCES = {"predicted": "predicted_label", "true": "true_emotion"}
#: keys of `summarise`, in order
METRICS = (
    "negative_days",
    "happy_at_least_once",
    "final_dominant_happy",
    "full_recovery",
    "full_recovery_eligible",
    "volatility",
    "bounce_rate",
    "engagement_reward",
    "mean_valence",
    "mean_latent_valence",
    "recovery_time",
)
#: the paper's ESMR figures, where it gives them
PAPER_FIGURES: dict[str, float] = {
    "negative_days": 2.14,
    "happy_at_least_once": 0.977,
    "final_dominant_happy": 0.349,
    "full_recovery": 0.354,
    "bounce_rate": 0.004,
    "engagement_reward": 1402.8,
}
#: the paper's LightGBM baseline
PAPER_BASELINE: dict[str, float] = {"negative_days": 5.22, "bounce_rate": 0.575, "engagement_reward": 1435.1}
#: relative change of volatility, ESMR vs the baseline
PAPER_VOLATILITY_CHANGE = -0.378

HIGH_AROUSAL = ("excited", "stressed")  # the two poles a "bounce" swings between


def _check(labels) -> np.ndarray:
    labels = np.asarray(labels).astype(str)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-d (n_users, n_days), got shape {labels.shape}")
    return check_labels(labels)


def _check_span(name: str, value: int, n_days: int) -> None:
    if not 1 <= value <= n_days:
        raise ValueError(f"{name}={value} must lie in [1, {n_days}] (the number of days)")


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row means of ``values`` over ``mask``; NaN (without a warning) for rows with no entry."""
    n = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    return np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)


def _nanmean(values) -> float:
    """Mean of the non-NaN entries; NaN (without a warning) when there are none."""
    values = np.asarray(values, dtype=float)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _scores(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valence score matrix, mask of non-churned days); churned days score NaN."""
    scores = np.full(labels.shape, np.nan)
    for emotion, score in VALENCE_SCORE.items():
        scores[labels == emotion] = score
    return scores, labels != "churned"


def negative_days(labels) -> np.ndarray:
    """Number of days labelled stressed or disappointed, per user (int)."""
    return np.isin(_check(labels), NEGATIVE).sum(axis=1)


def happy_at_least_once(labels) -> np.ndarray:
    """True where some day is labelled happy."""
    return (_check(labels) == "happy").any(axis=1)


def final_dominant_happy(labels, window: int = 7) -> np.ndarray:
    """True where, over the last ``window`` days, happy occurs strictly more often than every
    other label (churned included). A tie for the top is not dominance, so it gives False."""
    labels = _check(labels)
    _check_span("window", window, labels.shape[1])
    tail = labels[:, -window:]
    counts = {e: (tail == e).sum(axis=1) for e in TRUE_EMOTIONS}
    others = np.max([c for e, c in counts.items() if e != "happy"], axis=0)
    return counts["happy"] > others


def full_recovery(labels, start: int = 3, end: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(eligible, recovered) per user.

    eligible: a strict majority of the first ``start`` days are negative (count * 2 > start;
    2 of 3 by default); recovered: eligible and a strict majority of the last ``end`` days
    are positive (happy or excited). The population rate is recovered.sum() / eligible.sum().
    """
    labels = _check(labels)
    _check_span("start", start, labels.shape[1])
    _check_span("end", end, labels.shape[1])
    eligible = np.isin(labels[:, :start], NEGATIVE).sum(axis=1) * 2 > start
    recovered = eligible & (np.isin(labels[:, -end:], POSITIVE).sum(axis=1) * 2 > end)
    return eligible, recovered


def volatility(labels) -> np.ndarray:
    """Population std (ddof=0) of the daily valence score VALENCE_SCORE[label] over the
    user's non-churned days; NaN with fewer than 2 such days (no spread to measure)."""
    scores, active = _scores(_check(labels))
    mean = _masked_mean(scores, active)
    std = np.sqrt(_masked_mean((scores - mean[:, None]) ** 2, active))
    return np.where(active.sum(axis=1) >= 2, std, np.nan)


def mean_valence_score(labels) -> np.ndarray:
    """Mean valence score over the user's non-churned days; NaN if the user has none."""
    scores, active = _scores(_check(labels))
    return _masked_mean(scores, active)


def bounces(labels) -> np.ndarray:
    """Swings between high-arousal poles, per user (int).

    Keep only the days labelled excited or stressed, in day order (other days are ignored,
    so they neither break nor make a swing), and count adjacent pairs whose labels differ.
    """
    labels = _check(labels)
    last = np.full(labels.shape[0], "", dtype=labels.dtype)  # "" = no high-arousal day yet
    count = np.zeros(labels.shape[0], dtype=int)
    for today in labels.T:
        high = np.isin(today, HIGH_AROUSAL)
        count += high & (last != "") & (last != today)
        last = np.where(high, today, last)
    return count


def bounced(labels) -> np.ndarray:
    """True where the user swung between excited and stressed more than twice."""
    return bounces(labels) > 2


def recovery_times(labels) -> np.ndarray:
    """Mean days from the start of a negative run to the first later positive day, per user.

    A run starts on a negative day whose previous day (if any) is not negative; its recovery
    time is (first positive day after it) - (start day). Runs with no later positive day are
    censored and left out; NaN for a user with no recovered run.
    """
    labels = _check(labels)
    negative, positive = np.isin(labels, NEGATIVE), np.isin(labels, POSITIVE)
    starts = negative & ~np.pad(negative, ((0, 0), (1, 0)))[:, :-1]
    # next_positive[:, d]: first positive day >= d (inf if none); a start day is never positive
    next_positive = np.full(labels.shape, np.inf)
    upcoming = np.full(labels.shape[0], np.inf)
    for d in range(labels.shape[1] - 1, -1, -1):
        upcoming = np.where(positive[:, d], d, upcoming)
        next_positive[:, d] = upcoming
    waits = next_positive - np.arange(labels.shape[1])
    return _masked_mean(waits, starts & np.isfinite(waits))


def engagement_reward_total(watch_minutes, scroll_minutes) -> np.ndarray:
    """Sum over days of `engagement_reward(watch, scroll)`, from (n_users, n_days) inputs."""
    watch, scroll = np.asarray(watch_minutes, dtype=float), np.asarray(scroll_minutes, dtype=float)
    if watch.ndim != 2 or watch.shape != scroll.shape:
        raise ValueError("watch_minutes and scroll_minutes must share a 2-d (n_users, n_days) shape")
    return engagement_reward(watch, scroll).sum(axis=1)


def summarise(labels, watch_minutes, scroll_minutes, latent_valence) -> dict[str, float]:
    """Population figures, keyed as `METRICS`: means / shares over users, NaN-aware where
    a per-user value can be undefined (volatility, valence, recovery time)."""
    labels = _check(labels)
    latent = np.asarray(latent_valence, dtype=float)
    if latent.shape != labels.shape or np.shape(watch_minutes) != labels.shape:
        raise ValueError("labels, watch_minutes, scroll_minutes and latent_valence must share a shape")
    eligible, recovered = full_recovery(labels)
    n_eligible = int(eligible.sum())
    return {
        "negative_days": _nanmean(negative_days(labels)),
        "happy_at_least_once": _nanmean(happy_at_least_once(labels)),
        "final_dominant_happy": _nanmean(final_dominant_happy(labels)),
        "full_recovery": float(recovered.sum() / n_eligible) if n_eligible else float("nan"),
        "full_recovery_eligible": float(n_eligible),
        "volatility": _nanmean(volatility(labels)),
        "bounce_rate": _nanmean(bounced(labels)),
        "engagement_reward": _nanmean(engagement_reward_total(watch_minutes, scroll_minutes)),
        "mean_valence": _nanmean(mean_valence_score(labels)),
        "mean_latent_valence": _nanmean(latent),
        "recovery_time": _nanmean(recovery_times(labels)),
    }


def _matrix(frame: pl.DataFrame, column: str, dtype: pl.DataType, allow_null: bool) -> tuple[np.ndarray, np.ndarray]:
    """(sorted user ids, (n_users, n_days) matrix of ``column``) from a long frame."""
    missing_cols = {"user_id", "day", column} - set(frame.columns)
    if missing_cols:
        raise ValueError(f"frame lacks columns {sorted(missing_cols)}")
    if not allow_null and frame[column].null_count():
        raise ValueError(f"{frame[column].null_count()} null values in {column!r}")
    long = frame.select("user_id", "day", pl.col(column).cast(dtype)).sort("user_id", "day")
    users = long["user_id"].unique(maintain_order=True)
    n_days = long["day"].n_unique()
    pairs = long.select("user_id", "day").n_unique()
    if pairs != long.height:
        raise ValueError(f"{long.height - pairs} duplicate (user_id, day) rows")
    if pairs != users.len() * n_days:
        raise ValueError(f"{users.len() * n_days - pairs} (user_id, day) rows are missing")
    return users.to_numpy(), long[column].to_numpy().reshape(users.len(), n_days)


def label_matrix(frame: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, (n_users, n_days) string labels) sorted by user_id then day; every user
    must have every day (metrics index days by position) and no label may be null."""
    user_ids, labels = _matrix(frame, column, pl.String, allow_null=False)
    return user_ids, labels.astype(str)


def policy_matrices(rollouts: pl.DataFrame) -> Iterator[tuple[str, str, np.ndarray, dict[str, np.ndarray]]]:
    """Per policy (in order of appearance) and label source it is measured on
    (`registry.label_sources`): (policy, source, user ids, matrices) with (n_users, n_days)
    `labels`, `watch`, `scroll` and `latent` valence, what the metrics are computed from."""
    for policy in rollouts["policy"].unique(maintain_order=True):
        frame = rollouts.filter(pl.col("policy") == policy)
        values = {name: value_matrix(frame, column)[1] for name, column in
                  (("watch", "watch_minutes"), ("scroll", "scroll_minutes"), ("latent", "true_valence"))}
        for source in registry.label_sources(policy):
            users, labels = label_matrix(frame, LABEL_SOURCES[source])
            yield policy, source, users, {"labels": labels, **values}


def oracle_flags(frame: pl.DataFrame) -> dict[str, bool]:
    """Per policy of `frame` (rollouts or per-user metrics), whether its rows are diagnostics:
    the frame's own `oracle` column (set where the rollouts ran, which knows when even the
    platform's emotion estimate was the latent truth), else the registry's `oracle_*`."""
    if "oracle" in frame.columns:
        return dict(frame.group_by("policy").agg(pl.col("oracle").any()).iter_rows())
    return {policy: registry.is_oracle(policy) for policy in frame["policy"].unique()}


def value_matrix(frame: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Like `label_matrix` for a numeric column, as float (nulls become NaN)."""
    user_ids, values = _matrix(frame, column, pl.Float64, allow_null=True)
    return user_ids, values.astype(float)
