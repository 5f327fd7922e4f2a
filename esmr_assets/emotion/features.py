"""Model inputs of the emotion stage (paper §3.2.2: 27 continuous + 4 categorical fields).

Only observed columns of `user_day_logs` are read; the latent truth (schemas.LATENT_COLUMNS)
never is. Heavy-tailed counts and minutes enter on a log1p scale, the same scale on which
K-Means clusters them, so the cluster boundaries the classifier has to learn stay simple.
Category codes come from fixed vocabularies, so a model saved for one partition reads
another partition's codes the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from ..core.vocabulary import (
    CATEGORY_LABELS,
    EMOTION_LABELS,
    NO_LABEL,
    PREVIOUS_LABELS,
    PROFILES,
)

CONTINUOUS_FEATURES = (
    "scroll_minutes",
    "watch_minutes",
    "logins",
    "posts",
    "likes",
    "comments",
    "shares",
    "engagement",
    "engagement_trend",
    "engagement_change",  # log2 of engagement over the previous active day's (0 when undefined)
    "scroll_watch_ratio",
    "n_watched",
    "n_skipped",
    "skip_rate",
    "mean_intensity",
    "intensity_change",
    "content_valence",
    "content_arousal",
    "mean_video_engagement",
    "time_educational",
    "time_entertainment",
    "time_news",
    "time_inspirational",
    "negative_share",
    "share_happy",
    "is_weekend",
    "is_spike",
)
LOG1P_FEATURES = (
    "scroll_minutes",
    "watch_minutes",
    "logins",
    "posts",
    "likes",
    "comments",
    "shares",
    "engagement",
    "scroll_watch_ratio",
    "n_watched",
    "n_skipped",
)
CATEGORICAL_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "profile": PROFILES,
    "previous_label": PREVIOUS_LABELS,
    "dominant_emotion": EMOTION_LABELS,
    "dominant_category": CATEGORY_LABELS,
}
CATEGORICAL_FEATURES = tuple(CATEGORICAL_VOCABULARIES)
CHANGE_CLIP = 8.0  # |log2 ratio| cap: a return from a near-empty day is not infinitely informative


class EmotionFeatures(NamedTuple):
    """What the classifiers read: continuous matrix, categorical codes, vocabulary sizes."""

    cont: np.ndarray  # (n, len(CONTINUOUS_FEATURES)) float32
    cat: np.ndarray  # (n, len(CATEGORICAL_FEATURES)) int64
    cardinalities: tuple[int, ...]

    def take(self, rows: np.ndarray) -> EmotionFeatures:
        """The rows selected by a boolean mask or index array."""
        return EmotionFeatures(self.cont[rows], self.cat[rows], self.cardinalities)


def is_active() -> pl.Expr:
    """A day with any observed activity; its negation is the 'complete inactivity' rule."""
    return (pl.col("n_impressions") > 0) | (pl.col("logins") > 0)


def previous_active_engagement() -> pl.Expr:
    """Engagement of the user's last active day before this one (null if there was none).

    Computed per user in day order, so the frame's own row order does not matter."""
    active_engagement = pl.when(is_active()).then(pl.col("engagement"))
    return active_engagement.shift(1).forward_fill().over("user_id", order_by="day")


def observed_features(logs: pl.DataFrame, previous_engagement: pl.Expr | None = None) -> pl.DataFrame:
    """CONTINUOUS_FEATURES as float64 columns, transformed, in the row order of `logs`.
    `previous_engagement` (default: `previous_active_engagement` over `logs`) is each row's
    engagement of the user's last active day before, null if none."""
    previous = previous_active_engagement() if previous_engagement is None else previous_engagement
    change = (
        pl.when(is_active() & (previous > 0))
        .then((pl.col("engagement") / previous).log(2.0).clip(-CHANGE_CLIP, CHANGE_CLIP))
        .otherwise(0.0)
    )
    columns = {name: pl.col(name).cast(pl.Float64) for name in CONTINUOUS_FEATURES if name != "engagement_change"}
    columns["engagement_change"] = change.cast(pl.Float64)
    frame = logs.select(**columns).select(CONTINUOUS_FEATURES)
    return frame.with_columns(pl.col(name).log1p() for name in LOG1P_FEATURES)


def previous_labels(logs: pl.DataFrame, labels: pl.Series) -> pl.Series:
    """Each row's label on the same user's previous day; NO_LABEL on a user's first day."""
    shifted = (
        logs.select("user_id", "day")
        .with_columns(label=labels.cast(pl.String))
        .select(pl.col("label").shift(1).over("user_id", order_by="day").fill_null(NO_LABEL))
        .to_series()
    )
    return shifted.cast(pl.Enum(PREVIOUS_LABELS)).alias("previous_label")


def _codes(values: pl.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Index of each value in `vocabulary`; an unknown value is an error, not a silent code."""
    return values.cast(pl.String).cast(pl.Enum(vocabulary)).to_physical().to_numpy().astype(np.int64)


def build_features(
    logs: pl.DataFrame, previous_label: pl.Series, previous_engagement: pl.Expr | None = None
) -> EmotionFeatures:
    """(continuous float32, categorical int64 codes, cardinalities) for every row of `logs`.

    `previous_label` is aligned with `logs` (see `previous_labels`): the cluster label of
    the user's previous day when training, the predicted one in closed loop. For
    `previous_engagement` see `observed_features`."""
    if previous_label.len() != logs.height:
        raise ValueError(f"previous_label has {previous_label.len()} rows, logs has {logs.height}")
    cont = observed_features(logs, previous_engagement).to_numpy().astype(np.float32)
    sources = {name: logs[name] for name in CATEGORICAL_FEATURES if name != "previous_label"}
    sources["previous_label"] = previous_label
    cat = np.stack([_codes(sources[name], CATEGORICAL_VOCABULARIES[name]) for name in CATEGORICAL_FEATURES], axis=1)
    cardinalities = tuple(len(CATEGORICAL_VOCABULARIES[name]) for name in CATEGORICAL_FEATURES)
    return EmotionFeatures(cont, cat, cardinalities)


class UserSplit(NamedTuple):
    """Row masks of a split in which every user's days fall in exactly one part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def split_users(
    user_ids: np.ndarray | pl.Series, seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> UserSplit:
    """Seeded user-level split: a user's days never sit on both sides, so test accuracy
    measures generalisation to unseen users rather than to unseen days of known users."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative shares summing to 1, got {fractions}")
    ids = np.asarray(user_ids)
    users = np.random.default_rng(seed).permutation(np.unique(ids))
    n_train = round(fractions[0] * users.size)
    n_val = round(fractions[1] * users.size)
    parts = np.split(users, [n_train, n_train + n_val])
    return UserSplit(*(np.isin(ids, part) for part in parts))


def limit_split(
    split: UserSplit, user_ids: np.ndarray | pl.Series, max_users: int | None, rng: np.random.Generator
) -> UserSplit:
    """`split` with each part thinned to a random sample of its users, shares kept, so that
    about `max_users` users remain; unchanged when the population is no larger. Bounds a
    fit on a huge population while no user changes side."""
    ids = np.asarray(user_ids)
    n_users = np.unique(ids).size
    if max_users is None or n_users <= max_users:
        return split
    thinned = []
    for mask in split:
        members = np.unique(ids[mask])
        keep = rng.permutation(members)[: max(1, round(members.size * max_users / n_users))]
        thinned.append(mask & np.isin(ids, keep))
    return UserSplit(*thinned)
