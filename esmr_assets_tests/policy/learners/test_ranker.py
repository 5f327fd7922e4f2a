"""The LightGBM engagement ranker: it learns, deterministically, scores the cross-product
exactly as row-by-row prediction would, ranks around an exclusion mask, and round-trips."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.learners.ranker import (
    FEATURE_NAMES,
    EngagementRanker,
    previous_day_state,
)
from esmr_assets.sim.environment import ClosedLoopEnv

SMOKE = load_settings("smoke").simulation
SEED = 4


@pytest.fixture(scope="module")
def data(logged_world):
    return logged_world(SMOKE, SEED)


@pytest.fixture(scope="module")
def ranker(data):
    return EngagementRanker(random_state=0).fit(*data)


def test_fit_learns_and_reports(ranker):
    assert 0.5 < ranker.auc_ <= 1.0
    assert ranker.feature_names_ == list(FEATURE_NAMES)
    assert 0 < ranker.best_iteration_ <= ranker.n_estimators
    assert max(ranker.feature_importance_, key=ranker.feature_importance_.get) == "engagement_score"


def test_fit_is_deterministic(data, ranker):
    again = EngagementRanker(random_state=0).fit(*data)
    assert again.to_bytes() == ranker.to_bytes()
    assert again.auc_ == ranker.auc_


def test_max_users_fits_on_a_seeded_sample_read_lazily(data, ranker):
    impressions, *rest = data
    assert ranker.n_users_ == impressions["user_id"].n_unique()
    sampled = EngagementRanker(random_state=0, max_users=20).fit(impressions.lazy(), *rest)
    assert 18 <= sampled.n_users_ <= 22 and 0.5 < sampled.auc_ <= 1.0
    again = EngagementRanker(random_state=0, max_users=20).fit(impressions, *rest)
    assert again.to_text() == sampled.to_text()  # the same sample from a DataFrame or a scan
    # Without a cap a LazyFrame gives exactly the DataFrame's model.
    assert EngagementRanker(random_state=0).fit(impressions.lazy(), *rest).to_text() == ranker.to_text()


def test_score_matrix_equals_row_by_row_prediction(data, ranker):
    impressions, logs, predictions, videos, _ = data
    state = previous_day_state(logs, predictions).filter(pl.col("day").is_in([0, 5]))
    scores = ranker.score(state)
    assert scores.shape == (state.height, videos.height)
    assert ((scores > 0) & (scores < 1)).all()
    for i in (0, 7, state.height - 1):
        one = ranker.score(state[i], video_ids=np.arange(videos.height))[0]
        assert np.allclose(scores[i], one, rtol=0, atol=1e-12)
    subset = np.array([5, 1, 99])
    assert np.allclose(ranker.score(state, video_ids=subset), scores[:, subset], rtol=0, atol=1e-12)


def test_score_reads_the_environment_observation(data, ranker):
    _, _, _, videos, users = data
    env = ClosedLoopEnv(videos, users, SMOKE, SEED, DailyLabeller())
    observation = env.reset()
    for _ in range(2):  # day 0 (no history) and day 1
        scores = ranker.score(observation)
        assert scores.shape == (SMOKE.n_users, SMOKE.n_videos) and np.isfinite(scores).all()
        step = env.step(*ranker.rank(scores, SMOKE.feed_length, env.recently_shown()))
        observation = env.observation()
    assert step.videos.size > 0 and (observation["predicted_label"] != "none").any()


def test_rank_respects_exclude_mask():
    rng = np.random.default_rng(0)
    scores = rng.random((6, 10))
    exclude = rng.random((6, 10)) < 0.5
    exclude[0] = True  # nothing eligible
    exclude[1] = False
    feed, valid = EngagementRanker.rank(scores, 4, exclude)
    assert feed.shape == valid.shape == (6, 4)
    assert not valid[0].any() and valid[1].all()
    assert np.array_equal(feed[1], np.argsort(-scores[1])[:4])
    for row in range(6):
        chosen = feed[row][valid[row]]
        assert not exclude[row, chosen].any()
        assert valid[row].sum() == min(4, (~exclude[row]).sum())
        assert np.all(np.diff(scores[row, chosen]) <= 0)
        assert np.array_equal(valid[row], np.sort(valid[row])[::-1])  # a prefix
    ids = np.arange(10) + 100
    mapped, _ = EngagementRanker.rank(scores, 4, exclude, video_ids=ids)
    assert np.array_equal(mapped[valid], feed[valid] + 100)


def test_text_round_trip(data, ranker):
    _, logs, predictions, videos, _ = data
    loaded = EngagementRanker.from_text(ranker.to_bytes().decode())
    assert not hasattr(loaded, "video_ids_")  # a stored model holds no pool until one is bound
    loaded.bind_videos(videos)
    state = previous_day_state(logs, predictions).filter(pl.col("day") == 3)
    assert np.array_equal(loaded.score(state), ranker.score(state))
    assert loaded.to_bytes() == ranker.to_bytes()
