"""Cluster-derived daily emotion labels (paper §3.2.1, Table 1).

Design decisions:

- Vocabulary: exactly `TRUE_EMOTIONS` (happy, excited, neutral, stressed, disappointed,
  churned), so labels and latent truth are scored class by class.
- Table 1 spends a cluster on "no activity". Here the rule "complete inactivity (no
  impressions, no logins) -> churned" labels those days, so K-Means (k=5) runs on ACTIVE
  days only and its five clusters map to happy, excited, neutral, stressed, disappointed.
  Neutral takes the freed slot because the hybrid policy switches on "negative or neutral"
  days. Inactive days would otherwise sit at one extreme of every feature and pull a
  centroid (and the scaling) onto themselves.
- Features: the observed behaviour of Table 1 (CLUSTER_FEATURES), on the log1p scale of
  `features.observed_features`. Posts are left out: 85 % of days have none, and K-Means
  then spends a whole cluster on posting bursts.
- Scaling: by default each profile is standardised on its own (`standardise_within`).
  A highly active user's dull day out-scrolls a casual user's best one, so global z-scores
  mostly cluster profiles, not moods; the profile is observed, so removing its level is
  legitimate. `standardise_within=None` is the paper's single global scaling.
- The cluster -> emotion mapping is code: every centroid is scored against the Table 1
  archetypes (ARCHETYPES, on standardised traits; neutral = closeness to the mean) and the
  one-to-one assignment of highest total score is solved with linear_sum_assignment.
- Rules override clusters: inactivity -> churned; a sharp drop (engagement below
  `drop_threshold` x the previous active day's, that day above `drop_floor`) -> stressed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from ..core.portable import matmul
from ..core.vocabulary import TRUE_EMOTIONS
from .features import is_active, observed_features, previous_active_engagement
from .metrics import agreement

__all__ = ["ARCHETYPES", "CLUSTER_FEATURES", "EmotionClusterer", "agreement", "archetype_scores", "map_clusters"]

CLUSTER_FEATURES = (
    "scroll_minutes",
    "watch_minutes",
    "logins",
    "likes",
    "comments",
    "shares",
    "engagement",
    "scroll_watch_ratio",
    "skip_rate",
)
CLUSTER_EMOTIONS = ("happy", "excited", "neutral", "stressed", "disappointed")
# Table 1 traits as weights on standardised features; each is scored by projecting a
# centroid on the unit-length weight vector. Neutral has no direction: it is the centroid
# closest to the overall mean (score = minus its norm).
ARCHETYPES: dict[str, dict[str, float]] = {
    "happy": {"likes": 1.0, "comments": 1.0, "watch_minutes": 1.0, "skip_rate": -1.0},
    "excited": {"shares": 2.0, "likes": 1.0},
    "stressed": {"scroll_minutes": 1.0, "watch_minutes": -1.0, "scroll_watch_ratio": 1.0, "skip_rate": 1.0},
    "disappointed": {"watch_minutes": -1.0, "likes": -1.0, "comments": -1.0, "shares": -1.0, "logins": -1.0},
}
ELBOW_KS = range(2, 11)
ELBOW_N_INIT = 3  # the curve's shape, not its best partition, is what the elbow needs
SILHOUETTE_SAMPLE = 3_000
_GLOBAL = "__all__"


def archetype_scores(centroids: np.ndarray, features: Sequence[str]) -> np.ndarray:
    """(n_clusters, 5) fit of each standardised centroid to each of CLUSTER_EMOTIONS."""
    scores = np.empty((centroids.shape[0], len(CLUSTER_EMOTIONS)))
    for j, emotion in enumerate(CLUSTER_EMOTIONS):
        if emotion == "neutral":
            scores[:, j] = -np.linalg.norm(centroids, axis=1)
            continue
        weights = np.zeros(len(features))
        for name, weight in ARCHETYPES[emotion].items():
            weights[list(features).index(name)] = weight
        scores[:, j] = matmul(centroids, weights / np.sqrt((weights * weights).sum()))
    return scores


def map_clusters(centroids: np.ndarray, features: Sequence[str]) -> dict[int, str]:
    """Cluster index -> emotion: the one-to-one assignment maximising the archetype scores."""
    if centroids.shape[0] > len(CLUSTER_EMOTIONS):
        raise ValueError(f"at most {len(CLUSTER_EMOTIONS)} clusters map one-to-one, got {centroids.shape[0]}")
    rows, cols = linear_sum_assignment(archetype_scores(centroids, features), maximize=True)
    return {int(r): CLUSTER_EMOTIONS[c] for r, c in zip(rows, cols)}


class EmotionClusterer(BaseEstimator):
    """K-Means on active days + Table 1 mapping + churn and sharp-drop rules."""

    def __init__(
        self,
        n_clusters: int = 5,
        random_state: int = 0,
        drop_threshold: float = 0.5,
        drop_floor: float = 1.0,
        standardise_within: str | None = "profile",
        n_init: int = 10,
        n_threads: int | None = 1,
        sample_days: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.drop_threshold = drop_threshold
        self.drop_floor = drop_floor
        self.standardise_within = standardise_within
        self.n_init = n_init
        self.n_threads = n_threads
        self.sample_days = sample_days

    def _groups(self, logs: pl.DataFrame) -> pl.Series:
        if self.standardise_within is None:
            return pl.Series("group", [_GLOBAL] * logs.height)
        return logs[self.standardise_within].cast(pl.String).alias("group")

    def _standardised(self, logs: pl.DataFrame) -> np.ndarray:
        frame = observed_features(logs).select(CLUSTER_FEATURES).with_columns(self._groups(logs))
        joined = frame.join(self.scaler_, on="group", how="left", maintain_order="left")
        missing = joined.filter(pl.col(f"mean_{CLUSTER_FEATURES[0]}").is_null())["group"].unique().to_list()
        if missing:
            raise ValueError(f"no scaling fitted for {self.standardise_within} {missing}")
        z = [(pl.col(f) - pl.col(f"mean_{f}")) / pl.col(f"std_{f}") for f in CLUSTER_FEATURES]
        return joined.select(z).to_numpy()

    def fit(self, logs: pl.DataFrame) -> EmotionClusterer:
        """Fit scaling, K-Means and the mapping on the active days of `logs`.

        K-Means runs on `n_threads` OpenMP threads (None: all cores): many partitions run
        side by side on few cores, where extra threads spin instead of working."""
        with threadpool_limits(self.n_threads):
            return self._fit(logs)

    def _fit(self, logs: pl.DataFrame) -> EmotionClusterer:
        if not 2 <= self.n_clusters <= len(CLUSTER_EMOTIONS):
            raise ValueError(f"n_clusters must be in 2..{len(CLUSTER_EMOTIONS)}, got {self.n_clusters}")
        active = logs.filter(is_active())
        if active.height < self.n_clusters:
            raise ValueError(f"{active.height} active days cannot form {self.n_clusters} clusters")
        traits = observed_features(active).select(CLUSTER_FEATURES).with_columns(self._groups(active))
        # A constant feature within a group has std 0: leave it centred, not divided by 0.
        self.scaler_ = traits.group_by("group").agg(
            *(pl.col(f).mean().alias(f"mean_{f}") for f in CLUSTER_FEATURES),
            *(pl.col(f).std().fill_null(1.0).replace(0.0, 1.0).alias(f"std_{f}") for f in CLUSTER_FEATURES),
        ).sort("group")
        z = self._standardised(active)
        if self.sample_days is not None and z.shape[0] > self.sample_days:
            # K-Means on a seeded sample of days (scaling used them all): the centroids of a
            # large sample, and every day is still labelled by `label`.
            sample = np.random.default_rng([self.random_state, 1]).choice(z.shape[0], self.sample_days, replace=False)
            z = z[np.sort(sample)]
        self.kmeans_ = KMeans(self.n_clusters, n_init=self.n_init, random_state=self.random_state).fit(z)
        centres = self.kmeans_.cluster_centers_
        self.cluster_emotion_ = map_clusters(centres, CLUSTER_FEATURES)
        emotions = [self.cluster_emotion_[k] for k in range(self.n_clusters)]
        self.centroids_ = pl.DataFrame(centres, schema=list(CLUSTER_FEATURES)).select(
            pl.Series("cluster", range(self.n_clusters), dtype=pl.Int32),
            pl.Series("emotion", emotions, dtype=pl.Enum(TRUE_EMOTIONS)),
            pl.all(),
        )
        self.elbow_ = self._elbow(z)
        return self

    def _elbow(self, z: np.ndarray) -> pl.DataFrame:
        """Inertia and silhouette for k in ELBOW_KS (silhouette on a fixed-seed sample)."""
        rng = np.random.default_rng(self.random_state)
        sample = rng.choice(z.shape[0], size=min(SILHOUETTE_SAMPLE, z.shape[0]), replace=False)
        rows = []
        for k in ELBOW_KS:
            if k >= z.shape[0]:
                break
            fitted = KMeans(k, n_init=ELBOW_N_INIT, random_state=self.random_state).fit(z)
            labels = fitted.labels_[sample]
            silhouette = silhouette_score(z[sample], labels) if np.unique(labels).size > 1 else float("nan")
            rows.append({"k": k, "inertia": float(fitted.inertia_), "silhouette": float(silhouette)})
        return pl.DataFrame(rows, schema={"k": pl.Int32, "inertia": pl.Float64, "silhouette": pl.Float64})

    def label(self, logs: pl.DataFrame) -> pl.Series:
        """One label per row of `logs` (same order): rules first, the mapped cluster otherwise."""
        mapped = np.array([self.cluster_emotion_[k] for k in range(self.n_clusters)], dtype=object)
        with threadpool_limits(self.n_threads):
            clusters = self.kmeans_.predict(self._standardised(logs))
        previous = previous_active_engagement()
        rules = logs.select(
            churned=~is_active(),
            drop=(
                is_active() & (previous > self.drop_floor) & (pl.col("engagement") < self.drop_threshold * previous)
            ).fill_null(False),
        )
        labels = np.where(rules["drop"].to_numpy(), "stressed", mapped[clusters])
        labels = np.where(rules["churned"].to_numpy(), "churned", labels)
        return pl.Series("emotion", labels, dtype=pl.Enum(TRUE_EMOTIONS))

    def fit_label(self, logs: pl.DataFrame) -> pl.Series:
        """`fit(logs).label(logs)`."""
        return self.fit(logs).label(logs)
