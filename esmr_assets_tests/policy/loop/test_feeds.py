"""Feeds: the popularity prior, the two-stage builder (against the ranker's own full ranking
and its scores), action buckets, and the random policy's feeds."""

import numpy as np
import polars as pl
import pytest

from esmr_assets.core.settings import load_settings
from esmr_assets.emotion.labeller import DailyLabeller
from esmr_assets.policy.learners.ranker import EngagementRanker
from esmr_assets.policy.loop.feeds import (
    ACTIONS,
    FeedBuilder,
    bucket_mask,
    candidate_order,
    random_feed,
    video_popularity,
)
from esmr_assets.sim.environment import ClosedLoopEnv, logging_policy_feed

SMOKE = load_settings("smoke", {"simulation": {"n_days": 6}}, whole_graph=False).simulation
SEED = 6


@pytest.fixture(scope="module")
def world(logged_world):
    impressions, logs, predictions, videos, users = logged_world(SMOKE, SEED)
    ranker = EngagementRanker(random_state=0).fit(impressions, logs, predictions, videos, users)
    env = ClosedLoopEnv(videos, users, SMOKE, SEED, DailyLabeller())
    env.reset()
    env.step(*logging_policy_feed(env))  # day 1: blocked videos and a real observation
    return videos, impressions, ranker, env


def test_popularity_is_the_smoothed_watch_rate():
    impressions = pl.DataFrame({"video_id": [0, 0, 0, 2], "watched": [True, False, True, False]})
    assert np.allclose(video_popularity(impressions, 4), [3 / 5, 1 / 2, 1 / 3, 1 / 2])
    with pytest.raises(ValueError, match="outside"):
        video_popularity(impressions, 2)


def test_one_stage_over_every_video_is_the_rankers_full_ranking(world):
    """With every video a candidate the builder is the paper's ranking, LightGBM over all
    (up to the order of tied scores: the builder breaks ties by popularity, `rank` by id)."""
    videos, impressions, ranker, env = world
    n = videos.height
    builder = FeedBuilder(ranker, video_popularity(impressions, n), feed_length=n, candidates=n)
    observation, blocked = env.observation(), env.recently_shown()
    feed, valid = builder.build(observation, blocked)
    scores = ranker.score(observation)
    expected, expected_valid = ranker.rank(scores, n, blocked)
    assert np.array_equal(valid, expected_valid)
    ours = np.where(valid, np.take_along_axis(scores, feed.astype(int), axis=1), -1)
    theirs = np.where(valid, np.take_along_axis(scores, expected.astype(int), axis=1), -1)
    assert np.array_equal(ours, theirs)
    for i in range(observation.height):
        assert set(feed[i][valid[i]]) == set(expected[i][valid[i]])


def test_two_stages_rerank_the_most_popular_eligible_videos(world):
    videos, impressions, ranker, env = world
    popularity = video_popularity(impressions, videos.height)
    builder = FeedBuilder(ranker, popularity, feed_length=SMOKE.feed_length, candidates=20)
    observation, blocked = env.observation(), env.recently_shown()
    feed, valid = builder.build(observation, blocked)
    assert blocked.any()
    for i in range(observation.height):
        eligible = np.flatnonzero(~blocked[i])
        by_popularity = eligible[np.argsort(-popularity[eligible], kind="stable")]
        shown = feed[i][valid[i]]
        assert valid[i].sum() == min(eligible.size, SMOKE.feed_length)  # a prefix of eligible videos
        assert not blocked[i, shown].any() and np.unique(shown).size == shown.size
        head = shown[:20]
        assert set(head) == set(by_popularity[:20])  # stage 1: the 20 most popular eligible
        scores = ranker.score_pairs(observation[i], head[None, :])[0]
        assert (np.diff(scores) <= 0).all()  # stage 2: by LightGBM score
        assert np.array_equal(shown[20:], by_popularity[20 : shown.size])  # the rest by popularity


def test_boosted_bucket_leads_the_feed(world):
    videos, impressions, ranker, env = world
    builder = FeedBuilder(ranker, video_popularity(impressions, videos.height), SMOKE.feed_length, 30)
    observation, blocked = env.observation(), env.recently_shown()
    n = observation.height
    actions = np.arange(n) % len(ACTIONS)
    acting = np.arange(n) % 3 != 0
    boost = bucket_mask(actions, builder.video_emotion, acting)
    feed, valid = builder.build(observation, blocked, boost)
    plain, plain_valid = builder.build(observation, blocked)
    emotion = videos.sort("video_id")["emotion"].cast(pl.String).to_numpy()
    for i in range(n):
        shown = feed[i][valid[i]]
        if not acting[i]:
            assert np.array_equal(shown, plain[i][plain_valid[i]])
            continue
        in_bucket = emotion[shown] == ACTIONS[actions[i]]
        k = int(in_bucket.sum())
        assert k == int((boost[i] & ~blocked[i]).sum()) > 0  # every eligible bucket video is served...
        assert in_bucket[:k].all()  # ...before any other


def test_bucket_mask_rejects_unknown_actions():
    emotions = np.array([0, 1, 1, 7])
    assert np.array_equal(bucket_mask(np.array([1, 7]), emotions), [[0, 1, 1, 0], [0, 0, 0, 1]])
    with pytest.raises(ValueError):
        bucket_mask(np.array([8]), emotions)


def test_random_feed_is_a_permutation_of_the_eligible_videos():
    blocked = np.zeros((3, 50), bool)
    blocked[0, :10] = True
    feed, valid = random_feed(blocked, 45, np.random.default_rng(0))
    again, _ = random_feed(blocked, 45, np.random.default_rng(0))
    other, _ = random_feed(blocked, 45, np.random.default_rng(1))
    assert np.array_equal(feed, again) and not np.array_equal(feed, other)
    assert valid[0].sum() == 40 and valid[1:].all() and set(feed[0][valid[0]]) == set(range(10, 50))


@pytest.mark.parametrize("with_boost", [False, True])
def test_the_candidate_order_is_the_stable_sort_of_each_users_class(with_boost):
    """`candidate_order` against the definition it replaces: a stable argsort of the class
    (0 boosted, 1 other, 2-3 blocked) in prior order, cut to the feed length."""
    rng = np.random.default_rng(7)
    for n_videos, feed_length, share_blocked in [(50, 20, 0.3), (50, 50, 0.9), (200, 60, 0.99), (30, 40, 0.0)]:
        prior = rng.permutation(n_videos)
        blocked = rng.random((25, n_videos)) < share_blocked
        boost = rng.random((25, n_videos)) < 0.2 if with_boost else None
        rank_class = blocked[:, prior].astype(np.int8) * 2
        rank_class += 1 if boost is None else (~boost[:, prior]).astype(np.int8)
        expected = prior[np.argsort(rank_class, axis=1, kind="stable")[:, :feed_length]]
        np.testing.assert_array_equal(candidate_order(prior, blocked, boost, feed_length), expected)
