"""The LightGBM engagement ranker (paper §3.3.1): P(watched | user state, video).

One training row per logged impression, labelled watched (1) or skipped (0). A user's state
is what a policy can know before the day starts: the PREVIOUS day's observed behaviour, the
previous day's predicted emotion and the profile (`previous_day_state`; the closed-loop
environment's `observation()` has the same columns). The day's own category preferences
and mood are hidden, so the ranker learns from yesterday's traces of them.

Features are assembled by one function from a user matrix and a video matrix indexed per
row, so training rows and the (users x videos) scoring cross-product cannot drift apart.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from ...core.rng import stream
from ...core.vocabulary import CATEGORIES, EMOTIONS, NO_LABEL, PREVIOUS_LABELS, PROFILES
from ...emotion.features import UserSplit, limit_split, split_users
from .forest import Forest, PairLayout, PairScorer

USER_NUMERIC = (
    "churned",
    "scroll_minutes",
    "watch_minutes",
    "logins",
    "posts",
    "likes",
    "comments",
    "shares",
    "engagement",
    "engagement_trend",
    "n_impressions",
    "skip_rate",
    "mean_intensity",
    "content_valence",
    "content_arousal",
    "mean_video_engagement",
    "negative_share",
    *(f"time_{c}" for c in CATEGORIES),
    *(f"share_{e}" for e in EMOTIONS),
)
VIDEO_NUMERIC = ("intensity", "duration_s", "valence", "arousal", "engagement_score")
# Yesterday's time share of the video's own category and emotion: the observable trace of
# today's hidden category preference.
INTERACTIONS = ("user_category_share", "user_emotion_share", "valence_x_content_valence")
CATEGORICAL = ("profile", "predicted_label", "video_category", "video_emotion")
FEATURE_NAMES = (
    *USER_NUMERIC,
    "has_previous",
    "profile",
    "predicted_label",
    "video_category",
    "video_emotion",
    *VIDEO_NUMERIC,
    *INTERACTIONS,
)
_CATEGORY_SHARE = [USER_NUMERIC.index(f"time_{c}") for c in CATEGORIES]
_EMOTION_SHARE = [USER_NUMERIC.index(f"share_{e}") for e in EMOTIONS]
_CONTENT_VALENCE = USER_NUMERIC.index("content_valence")


def previous_day_state(logs: pl.DataFrame, predictions: pl.DataFrame) -> pl.DataFrame:
    """For every (user_id, day) of `logs`: the user's previous-day observed columns and
    predicted label (`predicted_label`; "none" and null features on day 0), plus profile."""
    previous = logs.select("user_id", (pl.col("day") + 1).cast(pl.Int16), *USER_NUMERIC)
    labels = predictions.select(
        "user_id", (pl.col("day") + 1).cast(pl.Int16), pl.col("label").cast(pl.String).alias("predicted_label")
    )
    return (
        logs.select("user_id", "day", "profile")
        .join(previous, on=["user_id", "day"], how="left")
        .join(labels, on=["user_id", "day"], how="left")
        .with_columns(pl.col("predicted_label").fill_null(NO_LABEL).cast(pl.Enum(PREVIOUS_LABELS)))
    )


def _codes(values: pl.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    return values.cast(pl.String).cast(pl.Enum(vocabulary)).to_physical().to_numpy().astype(np.float32)


def user_matrix(state: pl.DataFrame) -> np.ndarray:
    """(n, len(USER_NUMERIC) + 3): previous-day numbers (0 when absent), has_previous, and
    the profile and predicted-label codes."""
    numbers = state.select(pl.col(c).cast(pl.Float32) for c in USER_NUMERIC).to_numpy()
    has_previous = ~np.isnan(numbers[:, USER_NUMERIC.index("watch_minutes")])
    return np.column_stack(
        [
            np.nan_to_num(numbers, nan=0.0),
            has_previous.astype(np.float32),
            _codes(state["profile"], PROFILES),
            _codes(state["predicted_label"], PREVIOUS_LABELS),
        ]
    ).astype(np.float32)


def video_matrix(videos: pl.DataFrame) -> np.ndarray:
    """(n_videos, 2 + len(VIDEO_NUMERIC)) in video_id order: category and emotion codes, then
    the numeric attributes."""
    ordered = videos.sort("video_id")
    return np.column_stack(
        [
            _codes(ordered["category"], CATEGORIES),
            _codes(ordered["emotion"], EMOTIONS),
            ordered.select(pl.col(c).cast(pl.Float32) for c in VIDEO_NUMERIC).to_numpy(),
        ]
    ).astype(np.float32)


#: the video_matrix columns that key INTERACTIONS' first two features: the user's time
#: share of the video's category and of its emotion
_KEYS = (0, 1)
_VALENCE = 2 + VIDEO_NUMERIC.index("valence")
LAYOUT = PairLayout(n_user=len(USER_NUMERIC) + 3, n_video=2 + len(VIDEO_NUMERIC), keys=_KEYS, n_pair=1)


def keyed_tables(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per user, yesterday's time share of each category and of each video emotion."""
    return users[:, _CATEGORY_SHARE], users[:, _EMOTION_SHARE]


def assemble(users: np.ndarray, videos: np.ndarray, user_rows: np.ndarray, video_rows: np.ndarray) -> np.ndarray:
    """Feature rows (FEATURE_NAMES) for the pairs (users[user_rows[i]], videos[video_rows[i]]),
    laid out as `LAYOUT`."""
    v = videos[video_rows]
    shares = [table[user_rows, v[:, key].astype(np.int64)] for table, key in zip(keyed_tables(users), _KEYS)]
    valence = v[:, _VALENCE] * users[user_rows, _CONTENT_VALENCE]
    return np.column_stack([users[user_rows], v, *shares, valence]).astype(np.float32, copy=False)


class EngagementRanker:
    """LightGBM P(watched) over user-state x video features, early-stopped on validation
    AUC, split by user so the test AUC measures unseen users. Deterministic for a given
    `random_state` and `n_jobs` (deterministic=True; the thread count is a fixed argument,
    never the machine's, because LightGBM's sums depend on it)."""

    def __init__(
        self,
        random_state: int = 0,
        n_estimators: int = 500,
        learning_rate: float = 0.2,
        num_leaves: int = 31,
        min_child_samples: int = 100,
        early_stopping_rounds: int = 10,
        split: tuple[float, float, float] = (0.7, 0.15, 0.15),
        n_jobs: int = 2,
        max_users: int | None = None,
    ) -> None:
        self.random_state = random_state
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.split = split
        self.n_jobs = n_jobs
        self.max_users = max_users

    def _params(self) -> dict:
        return {
            "objective": "binary",
            "metric": "auc",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.n_jobs,
            "verbose": -1,
        }

    def fit(
        self,
        impressions: pl.DataFrame | pl.LazyFrame,
        logs: pl.DataFrame,
        predictions: pl.DataFrame,
        videos: pl.DataFrame,
        users: pl.DataFrame,
    ) -> EngagementRanker:
        """Train on logged impressions; `predictions` holds each user-day's predicted label
        (emotion_predictions), `users` the profiles (only users present in `logs` are used).

        With `max_users`, a seeded sample of users (each split part thinned, shares kept)
        trains, validates and tests it, and only their impressions are read from a LazyFrame."""
        impressions = impressions.lazy()
        present = impressions.select(pl.col("user_id").unique().sort()).collect()["user_id"].to_numpy()
        parts = split_users(present, self.random_state, self.split)
        if self.max_users is not None and present.size > self.max_users:
            parts = limit_split(parts, present, self.max_users, stream(self.random_state, "sampling", 1))
            impressions = impressions.filter(pl.col("user_id").is_in(present[parts.train | parts.val | parts.test]))
        profiled = logs.drop("profile").join(users.select("user_id", "profile"), on="user_id")
        state = previous_day_state(profiled, predictions)
        state = state.with_row_index("state_row")
        rows = impressions.join(
            state.lazy().select("user_id", "day", "state_row"), on=["user_id", "day"], how="left", maintain_order="left"
        ).collect()
        if rows["state_row"].null_count():
            raise ValueError("impressions reference user-days missing from logs")
        self.bind_videos(videos)
        X = assemble(
            user_matrix(state), self.video_features_, rows["state_row"].to_numpy(), rows["video_id"].to_numpy()
        )
        y = rows["watched"].to_numpy().astype(np.float32)
        row_users = rows["user_id"].to_numpy()
        parts = UserSplit(*(np.isin(row_users, present[part]) for part in parts))
        self.n_users_ = int(np.unique(row_users).size)
        categorical = [FEATURE_NAMES.index(c) for c in CATEGORICAL]

        def dataset(mask: np.ndarray, reference: lgb.Dataset | None = None) -> lgb.Dataset:
            return lgb.Dataset(
                X[mask], y[mask], feature_name=list(FEATURE_NAMES), categorical_feature=categorical,
                reference=reference, free_raw_data=True,
            )

        train = dataset(parts.train)
        self.model_ = lgb.train(
            self._params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=[dataset(parts.val, train)],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = self.model_.best_iteration
        self._pair_scorer = None
        self.feature_names_ = list(FEATURE_NAMES)
        self.feature_importance_ = dict(
            zip(FEATURE_NAMES, self.model_.feature_importance("gain", iteration=self.best_iteration_))
        )
        self.auc_ = float(roc_auc_score(y[parts.test], self._predict(X[parts.test])))
        return self

    def bind_videos(self, videos: pl.DataFrame) -> EngagementRanker:
        """Score the pool `videos` (the one it was trained with; a loaded model has none)."""
        self.video_ids_ = videos["video_id"].sort().to_numpy()
        if not np.array_equal(self.video_ids_, np.arange(self.video_ids_.size)):
            raise ValueError("videos.video_id must be 0..n-1")
        self.video_features_ = video_matrix(videos)
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X, num_iteration=self.best_iteration_, num_threads=self.n_jobs)

    def score(self, user_state: pl.DataFrame, video_ids: np.ndarray | None = None) -> np.ndarray:
        """(n_users, n_videos) P(watched) for every user of `user_state` (rows as in
        `previous_day_state` or ClosedLoopEnv.observation) and every candidate, in one predict."""
        ids = self.video_ids_ if video_ids is None else np.asarray(video_ids)
        return self.score_pairs(user_state, np.broadcast_to(ids, (user_state.height, ids.size)))

    def score_pairs(self, user_state: pl.DataFrame, candidates: np.ndarray) -> np.ndarray:
        """P(watched) for each user's own candidates: `candidates` is (n_users, c) video ids,
        the result (n_users, c); all pairs of all users go through one batched predict."""
        n, c = candidates.shape
        if n != user_state.height:
            raise ValueError(f"candidates has {n} rows for {user_state.height} users")
        users = user_matrix(user_state)
        valence = self.video_features_[candidates, _VALENCE] * users[:, _CONTENT_VALENCE, None]
        return self._scorer().probability(
            users, self.video_features_, candidates, keyed_tables(users), valence[:, :, None]
        )

    def _scorer(self) -> PairScorer:
        """The trees compiled for pair scoring (built once per model)."""
        if getattr(self, "_pair_scorer", None) is None:
            self._pair_scorer = PairScorer(Forest.from_model_text(self.to_text()), LAYOUT)
        return self._pair_scorer

    @staticmethod
    def rank(
        scores: np.ndarray, k: int, exclude_mask: np.ndarray | None = None, video_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` candidates per row by score: (video ids (n, k), valid (n, k)). Excluded
        candidates never appear; a row with fewer than k eligible ones gets a shorter valid
        prefix. Columns are video ids unless `video_ids` maps them."""
        scores = np.where(exclude_mask, -np.inf, scores) if exclude_mask is not None else scores
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        valid = np.isfinite(np.take_along_axis(scores, order, axis=1))
        feed = order if video_ids is None else np.asarray(video_ids)[order]
        return np.where(valid, feed, 0).astype(np.int32), valid

    def to_text(self) -> str:
        """LightGBM's text model (identical across runs of the same fit)."""
        return self.model_.model_to_string(num_iteration=self.best_iteration_)

    def to_bytes(self) -> bytes:
        return self.to_text().encode()

    @classmethod
    def from_text(cls, text: str, videos: pl.DataFrame | None = None, n_jobs: int = 1) -> EngagementRanker:
        """A fitted ranker from its text model, scoring `videos` when given (see `bind_videos`)."""
        ranker = cls(n_jobs=n_jobs)
        ranker.model_ = lgb.Booster(model_str=text)
        ranker.best_iteration_ = ranker.model_.current_iteration()
        ranker.feature_names_ = ranker.model_.feature_name()
        ranker.feature_importance_ = dict(zip(ranker.feature_names_, ranker.model_.feature_importance("gain")))
        return ranker if videos is None else ranker.bind_videos(videos)
