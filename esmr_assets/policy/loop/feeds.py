"""Feeds for a whole cohort in two stages: popularity candidates, then LightGBM re-ranking.

Scoring every (user, video) pair with LightGBM each simulated day costs about 1.5 µs per
pair: 1,000 x 1,000 pairs a day would make the closed loop ~15x slower than the users it
simulates. So, as production recommenders do:

1. **Candidates.** Per user, the eligible videos (not shown within the seen window) in order
   of a non-personal prior, the video's smoothed watch rate in the logged impressions. An
   action's bucket (`boost`) is put first, so an RL action makes its bucket lead the feed.
2. **Ranking.** The first `candidates` of them are re-ranked by LightGBM, all users' pairs in
   one batched predict, boosted videos still first; the rest of the feed follows in prior
   order. Users scroll past 54 videos a day on average and 108 at the 90th percentile
   (seed 0 logs), so with the default 112 the re-ranked head covers almost every position
   a user reaches.

Feeds are `(video ids (n, feed_length), valid (n, feed_length))` with `valid` a prefix mask,
as `ClosedLoopEnv.step` takes them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ...core import compiled
from ...core.settings import Settings
from ...core.vocabulary import EMOTIONS
from ..learners.ranker import EngagementRanker

#: RL actions: the eight video-emotion buckets (see `bucket_mask`).
ACTIONS = EMOTIONS
#: the daily choices of the Gymnasium environment and the deep learners: 0 serves the ranker's
#: feed, 1 + b lets bucket b lead it
FEED_CHOICES = 1 + len(ACTIONS)


def buckets_of(choices) -> np.ndarray:
    """The bucket each of `choices` (0 .. FEED_CHOICES - 1) lets lead the feed (-1: none)."""
    choices = np.asarray(choices)
    if choices.size and not np.issubdtype(choices.dtype, np.integer):
        raise ValueError(f"actions must be integers, got {choices.dtype}")
    if choices.size and (choices.min() < 0 or choices.max() >= FEED_CHOICES):
        raise ValueError(f"actions must lie in 0..{FEED_CHOICES - 1} (0: the ranker's feed, 1 + b: bucket b leads)")
    return choices.astype(np.int64) - 1


def video_popularity(impressions: pl.DataFrame | pl.LazyFrame, n_videos: int) -> np.ndarray:
    """(n_videos,) logged watch rate per video with a uniform Beta(1, 1) prior:
    (watched + 1) / (shown + 2), so an unshown video sits at 0.5. A LazyFrame is aggregated
    by the streaming engine, never loaded whole."""
    counts = (
        impressions.lazy()
        .group_by("video_id")
        .agg(pl.len().alias("shown"), pl.col("watched").cast(pl.Int64).sum().alias("watched"))
        .collect(engine="streaming")
    )
    shown, watched = np.zeros(n_videos), np.zeros(n_videos)
    ids = counts["video_id"].to_numpy()
    if ids.size and (ids.min() < 0 or ids.max() >= n_videos):
        raise ValueError(f"impressions reference video ids outside 0..{n_videos - 1}")
    shown[ids], watched[ids] = counts["shown"].to_numpy(), counts["watched"].to_numpy()
    return (watched + 1.0) / (shown + 2.0)


def bucket_mask(actions: np.ndarray, video_emotion: np.ndarray, acting: np.ndarray | None = None) -> np.ndarray:
    """(n, n_videos) bool: video v is in the bucket of user i's action (the video emotion
    `ACTIONS[actions[i]]`); all False for users that are not `acting`."""
    actions = np.asarray(actions, dtype=np.int64)
    if actions.size and (actions.min() < 0 or actions.max() >= len(ACTIONS)):
        raise ValueError(f"actions must lie in 0..{len(ACTIONS) - 1}")
    mask = np.asarray(video_emotion)[None, :] == actions[:, None]
    if acting is not None:
        mask &= np.asarray(acting, dtype=bool)[:, None]
    return mask


def random_feed(blocked: np.ndarray, feed_length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A uniformly random order of each user's eligible videos (the `random` policy)."""
    keys = rng.random(blocked.shape) + blocked  # blocked videos sort after every eligible one
    order = np.argsort(keys, axis=1, kind="stable")[:, :feed_length]
    valid = ~np.take_along_axis(blocked, order, axis=1)
    return order.astype(np.int32), valid


class FeedBuilder:
    """Builds the day's feeds for a cohort from the ranker and the popularity prior."""

    def __init__(
        self, ranker: EngagementRanker, popularity: np.ndarray, feed_length: int, candidates: int
    ) -> None:
        if candidates < 1 or feed_length < 1:
            raise ValueError("candidates and feed_length must be positive")
        self.ranker = ranker
        self.feed_length = feed_length
        self.candidates = min(candidates, feed_length)
        popularity = np.asarray(popularity, dtype=float)
        if popularity.shape != (ranker.video_ids_.size,):
            raise ValueError(f"popularity must have one value per video ({ranker.video_ids_.size})")
        # Video ids from the most popular down; ties by video id.
        self.prior_order = np.argsort(-popularity, kind="stable")
        self.video_emotion = ranker.video_features_[:, 1].astype(np.int64)  # index into ACTIONS

    def build(
        self, observation: pl.DataFrame, blocked: np.ndarray, boost: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feeds for the users of `observation` (ClosedLoopEnv.observation rows); `blocked`
        (n, n_videos) marks videos that may not be shown, `boost` (n, n_videos) the videos
        that lead the feed."""
        n_videos = self.prior_order.size
        if blocked.shape != (observation.height, n_videos):
            raise ValueError(f"blocked must be (n_users, {n_videos}), got {blocked.shape}")
        order = candidate_order(self.prior_order, blocked, boost, self.feed_length)
        valid = ~np.take_along_axis(blocked, order, axis=1)

        head = order[:, : self.candidates]
        scores = self.ranker.score_pairs(observation, head)
        boosted = np.zeros(head.shape, bool) if boost is None else np.take_along_axis(boost, head, axis=1)
        head_key = np.where(valid[:, : self.candidates], 2.0 * ~boosted - scores, np.inf)
        head = np.take_along_axis(head, np.argsort(head_key, axis=1, kind="stable"), axis=1)
        feed = np.concatenate([head, order[:, self.candidates :]], axis=1)
        return np.where(valid, feed, 0).astype(np.int32), valid


def candidate_order(prior_order: np.ndarray, blocked: np.ndarray, boost: np.ndarray | None,
                    feed_length: int) -> np.ndarray:
    """(n, feed_length) video ids per user: in `prior_order`, the boosted eligible videos,
    then the other eligible ones, then the boosted blocked ones, then the other blocked ones.

    The same ids as a stable sort of each user's class (0 boosted, 1 other, 2-3 blocked) in
    prior order, cut to `feed_length`, but one pass per class over the prior that stops when
    the feed is full, instead of sorting every user's whole row."""
    blocked = np.ascontiguousarray(blocked, dtype=np.bool_)
    boosted = np.zeros((0, 0), np.bool_) if boost is None else np.ascontiguousarray(boost, dtype=np.bool_)
    if boost is not None and boosted.shape != blocked.shape:
        raise ValueError(f"boost must be {blocked.shape}, got {boosted.shape}")
    out = np.empty((blocked.shape[0], min(feed_length, prior_order.size)), dtype=np.int64)
    _candidate_order(np.ascontiguousarray(prior_order, dtype=np.int64), blocked, boosted, boost is not None, out)
    return out


@compiled.njit(nogil=True)
def _candidate_order(prior_order, blocked, boosted, has_boost, out):  # pragma: no cover - compiled
    length = out.shape[1]
    others = np.empty(length, dtype=np.int64)  # class 1, kept until class 0 is complete
    for i in range(blocked.shape[0]):
        count, n_others = 0, 0
        for v in prior_order:  # the eligible videos: boosted ones into the feed, the others aside
            if blocked[i, v]:
                continue
            if has_boost and boosted[i, v]:
                if count < length:
                    out[i, count] = v
                    count += 1
            elif n_others < length:
                others[n_others] = v
                n_others += 1
            if count == length or (not has_boost and n_others == length):
                break
        for k in range(min(n_others, length - count)):
            out[i, count] = others[k]
            count += 1
        for wanted_boost in (True, False):  # a feed short of eligible videos ends with blocked ones
            if count == length or (wanted_boost and not has_boost):
                continue
            for v in prior_order:
                if count == length:
                    break
                if blocked[i, v] and (not has_boost or boosted[i, v] == wanted_boost):
                    out[i, count] = v
                    count += 1


def feed_builder(
    ranker: EngagementRanker, videos: pl.DataFrame, impressions: pl.DataFrame | pl.LazyFrame, settings: Settings
) -> FeedBuilder:
    """The closed loop's feeds: `ranker` scoring the pool `videos`, the logged impressions'
    popularity prior for the candidates, and the settings' feed and candidate sizes."""
    ranker.bind_videos(videos)
    return FeedBuilder(
        ranker,
        video_popularity(impressions, ranker.video_ids_.size),
        settings.simulation.feed_length,
        settings.policy.candidates,
    )
