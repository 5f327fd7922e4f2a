"""Cluster-derived emotion labels (§3.2.1), their agreement scores, and the model inputs."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.rng import stream
from esmr_assets.core.schemas import LATENT_COLUMNS
from esmr_assets.core.settings import load_settings
from esmr_assets.core.vocabulary import NO_LABEL, TRUE_EMOTIONS
from esmr_assets.emotion.clustering import (
    CLUSTER_FEATURES,
    EmotionClusterer,
    agreement,
    map_clusters,
)
from esmr_assets.emotion.features import (
    CONTINUOUS_FEATURES,
    build_features,
    limit_split,
    previous_labels,
    split_users,
)
from esmr_assets.sim.content import simulate_videos
from esmr_assets.sim.logs import simulate_logs
from esmr_assets.sim.population import simulate_users

SMOKE = load_settings("smoke").simulation


@pytest.fixture(scope="module")
def logs() -> pl.DataFrame:
    videos = simulate_videos(SMOKE.n_videos, stream(3, "videos"))
    users = simulate_users(SMOKE, stream(3, "users"))
    return simulate_logs(videos, users, SMOKE, 3)[0]


@pytest.fixture(scope="module")
def clusterer(logs: pl.DataFrame) -> EmotionClusterer:
    return EmotionClusterer(random_state=0).fit(logs)


def _centroid(**traits: float) -> list[float]:
    return [traits.get(name, 0.0) for name in CLUSTER_FEATURES]


def test_mapping_of_hand_made_centroids_follows_table_1():
    centroids = np.array(
        [
            _centroid(scroll_minutes=1.0, watch_minutes=-1.2, scroll_watch_ratio=2.0, skip_rate=0.8, likes=-0.5),
            _centroid(likes=1.2, comments=1.5, watch_minutes=1.0, skip_rate=-0.6, shares=0.2),
            _centroid(watch_minutes=-0.8, likes=-0.9, comments=-0.7, shares=-0.5, logins=-1.0),
            _centroid(shares=2.5, likes=1.0, comments=0.2),
            _centroid(likes=0.05, scroll_minutes=-0.05),
        ]
    )
    assert map_clusters(centroids, CLUSTER_FEATURES) == {
        0: "stressed",
        1: "happy",
        2: "disappointed",
        3: "excited",
        4: "neutral",
    }
    # The mapping follows the traits, not the cluster numbering.
    order = [4, 3, 2, 1, 0]
    assert map_clusters(centroids[order], CLUSTER_FEATURES) == {
        0: "neutral",
        1: "excited",
        2: "disappointed",
        3: "happy",
        4: "stressed",
    }


def test_fit_exposes_centroids_mapping_and_elbow(clusterer: EmotionClusterer):
    assert sorted(clusterer.cluster_emotion_.values()) == sorted(TRUE_EMOTIONS[:5])
    assert clusterer.centroids_.columns == ["cluster", "emotion", *CLUSTER_FEATURES]
    assert clusterer.centroids_["emotion"].to_list() == [clusterer.cluster_emotion_[k] for k in range(5)]
    elbow = clusterer.elbow_
    assert elbow["k"].to_list() == list(range(2, 11))
    assert (elbow["inertia"].diff().drop_nulls() < 0).all()  # more clusters, less inertia
    assert elbow["silhouette"].is_between(-1, 1).all()


def test_smoke_logs_get_churned_and_several_other_emotions(logs: pl.DataFrame, clusterer: EmotionClusterer):
    labels = clusterer.label(logs)
    assert labels.len() == logs.height
    assert labels.dtype == pl.Enum(TRUE_EMOTIONS)
    present = set(labels.unique().to_list())
    assert "churned" in present and len(present - {"churned"}) >= 3
    inactive = (logs["n_impressions"] == 0) & (logs["logins"] == 0)
    assert (labels.filter(inactive) == "churned").all()
    assert not (labels.filter(~inactive) == "churned").any()


def test_labels_never_read_the_latent_truth(logs: pl.DataFrame, clusterer: EmotionClusterer):
    scrambled = logs.with_columns(
        pl.col("true_emotion").shuffle(seed=1), pl.col("true_valence") * -1, pl.col("true_arousal") * 0
    )
    assert clusterer.label(scrambled).equals(clusterer.label(logs))
    refit = EmotionClusterer(random_state=0).fit(scrambled)
    assert refit.cluster_emotion_ == clusterer.cluster_emotion_


def _active_pair(logs: pl.DataFrame) -> tuple[int, int]:
    """Row indices of one user's two consecutive active days."""
    indexed = logs.with_row_index("row").sort("user_id", "day")
    active = (indexed["n_impressions"] > 0).to_numpy()
    same_user = (indexed["user_id"] == indexed["user_id"].shift(1)).fill_null(False).to_numpy()
    i = int(np.flatnonzero(active[1:] & active[:-1] & same_user[1:])[0]) + 1
    return int(indexed["row"][i - 1]), int(indexed["row"][i])


def _edit(logs: pl.DataFrame, row: int, values: dict[str, float]) -> pl.DataFrame:
    """`logs` with the given columns of one row replaced."""
    here = pl.int_range(pl.len()) == row
    return logs.with_columns(pl.when(here).then(pl.lit(v)).otherwise(pl.col(c)).alias(c) for c, v in values.items())


def test_inactivity_is_churned_whatever_its_cluster(logs: pl.DataFrame, clusterer: EmotionClusterer):
    _, row = _active_pair(logs)
    busy = {"scroll_minutes": 90.0, "likes": 80, "shares": 30, "engagement": 60.0, "watch_minutes": 70.0}
    assert clusterer.label(_edit(logs, row, busy))[row] != "churned"
    assert clusterer.label(_edit(logs, row, {**busy, "n_impressions": 0, "logins": 0}))[row] == "churned"


def test_sharp_engagement_drop_is_stressed(logs: pl.DataFrame, clusterer: EmotionClusterer):
    before, row = _active_pair(logs)
    previous = logs["engagement"][before]
    happy_day = {
        "likes": 40,
        "comments": 10,
        "watch_minutes": 60.0,
        "scroll_minutes": 12.0,
        "scroll_watch_ratio": 0.2,
        "skip_rate": 0.05,
    }

    # A happy-looking day is stressed only when engagement fell below half of the day before.
    assert clusterer.label(_edit(logs, row, {**happy_day, "engagement": previous / 3}))[row] == "stressed"
    assert clusterer.label(_edit(logs, row, {**happy_day, "engagement": previous * 0.9}))[row] != "stressed"


def test_agreement_on_hand_made_labels():
    truth = ["happy", "happy", "stressed", "churned", "neutral"]
    labels = ["happy", "excited", "stressed", "churned", "stressed"]
    scores = agreement(labels, truth)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    confusion = scores["confusion"]
    assert confusion.shape == (6, 6) and confusion.sum() == 5
    i = TRUE_EMOTIONS.index
    assert confusion[i("happy"), i("excited")] == 1 and confusion[i("neutral"), i("stressed")] == 1
    assert np.trace(confusion) == 3

    renamed = {"happy": "stressed", "stressed": "churned", "churned": "neutral", "neutral": "happy"}
    perfect = agreement(pl.Series([renamed[t] for t in truth]), pl.Series(truth))
    assert perfect["ari"] == pytest.approx(1.0) and perfect["nmi"] == pytest.approx(1.0)
    assert perfect["accuracy"] == 0.0


def test_features_use_observed_columns_and_previous_day_labels(logs: pl.DataFrame, clusterer: EmotionClusterer):
    labels = clusterer.label(logs)
    previous = previous_labels(logs, labels)
    assert (previous.filter(logs["day"] == 0) == NO_LABEL).all()
    first_user = logs.with_row_index("row").filter(pl.col("user_id") == logs["user_id"][0])
    day = dict(zip(first_user["day"], first_user["row"]))
    assert previous[day[5]] == labels[day[4]]

    features = build_features(logs, previous)
    assert features.cont.shape == (logs.height, len(CONTINUOUS_FEATURES)) and features.cont.dtype == np.float32
    assert features.cat.shape == (logs.height, 4) and features.cat.dtype == np.int64
    assert (features.cat < np.array(features.cardinalities)).all() and np.isfinite(features.cont).all()
    without_truth = build_features(logs.drop(LATENT_COLUMNS), previous)
    assert np.array_equal(without_truth.cont, features.cont) and np.array_equal(without_truth.cat, features.cat)


def test_user_split_is_seeded_disjoint_and_complete():
    user_ids = np.repeat(np.arange(200), 30)
    split = split_users(user_ids, seed=4)
    assert (np.stack(split).sum(axis=0) == 1).all()  # every row in exactly one part
    parts = [set(user_ids[mask]) for mask in split]
    assert [len(p) for p in parts] == [140, 30, 30]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert np.array_equal(split_users(user_ids, seed=4).test, split.test)
    assert not np.array_equal(split_users(user_ids, seed=5).test, split.test)


def test_limit_split_thins_each_part_and_keeps_sides():
    user_ids = np.repeat(np.arange(1000), 3)
    split = split_users(user_ids, seed=4)
    limited = limit_split(split, user_ids, 100, np.random.default_rng(0))
    assert [np.unique(user_ids[m]).size for m in limited] == [70, 15, 15]
    assert all((small <= whole).all() for small, whole in zip(limited, split))  # nobody changes side
    assert all((np.bincount(user_ids[m])[np.unique(user_ids[m])] == 3).all() for m in limited)  # whole users
    assert limit_split(split, user_ids, 1000, np.random.default_rng(0)) is split
    assert limit_split(split, user_ids, None, np.random.default_rng(0)) is split


def test_clusterer_fitted_on_a_sample_of_days_labels_every_day():
    settings = load_settings("paper", {"simulation": {"n_users": 300}}, whole_graph=False).simulation
    videos, users = simulate_videos(settings.n_videos, stream(3, "videos")), simulate_users(settings, stream(3, "users"))
    logs = simulate_logs(videos, users, settings, 3)[0]
    full = EmotionClusterer(random_state=0).fit(logs).label(logs)
    sampled = EmotionClusterer(random_state=0, sample_days=2_000).fit(logs)
    labels = sampled.label(logs)
    assert labels.len() == logs.height and labels.null_count() == 0
    assert labels.equals(EmotionClusterer(random_state=0, sample_days=2_000).fit(logs).label(logs))
    # A quarter of the ~7,500 active days finds much the same clusters, and labels the
    # latent truth about as well (the large preset samples 300,000 of ~2.5 M).
    assert (labels == full).mean() > 0.75
    truth = logs["true_emotion"].cast(pl.String)
    assert abs((labels.cast(pl.String) == truth).mean() - (full.cast(pl.String) == truth).mean()) < 0.05
