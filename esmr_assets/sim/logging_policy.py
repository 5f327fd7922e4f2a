"""The logging policy of Algorithm 1: 70 % of a feed from each category's top-engagement
videos, 30 % at random, categories weighted by the user's preference of the day, and no
video shown in the last `seen_window_days` days.

The feed is a sample without replacement from that mixture, drawn for all users at once by
the Gumbel-top-k trick (the top-F of weight / Exp(1) keys is a sequential weighted sample
without replacement), so the 70/30 rule, the seen filter and de-duplication are one
vectorised step.
"""

from __future__ import annotations

import numpy as np

from ..core import compiled
from ..core.portable import matmul
from ..core.settings import SimulationSettings
from ..core.vocabulary import CATEGORIES
from .content import VideoPool


def mixture_weights(pool: VideoPool, settings: SimulationSettings) -> np.ndarray:
    """(4, n_videos) P(video | category) under the 70/30 top-engagement/random rule."""
    weights = np.zeros((len(CATEGORIES), pool.size))
    for k in range(len(CATEGORIES)):
        members = np.flatnonzero(pool.category == k)
        if members.size == 0:
            continue
        n_top = max(1, int(np.ceil(settings.top_quantile * members.size)))
        top = members[np.argsort(-pool.engagement[members], kind="stable")[:n_top]]
        weights[k, members] = (1.0 - settings.top_share) / members.size
        weights[k, top] += settings.top_share / n_top
    return weights


def top_k_feed(weights: np.ndarray, rng: np.random.Generator, feed_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank a weighted sample without replacement per row: (feed ids, valid mask).

    Rows with fewer than `feed_length` positive weights get a shorter valid prefix: the user
    runs out of eligible videos and the session ends there."""
    n, m = weights.shape
    exponential = np.maximum(rng.standard_exponential((n, m), dtype=np.float32), np.float32(1e-30))
    keys = np.divide(weights, exponential, out=weights if weights.dtype == np.float32 else None, dtype=np.float32)
    feed = np.zeros((n, feed_length), dtype=np.int32)  # past the eligible videos: a fixed id
    valid = np.zeros((n, feed_length), dtype=np.bool_)
    _ranked_top(keys, min(feed_length, m), feed, valid)
    return feed, valid


@compiled.njit(nogil=True)
def _ranked_top(keys, f, feed, valid):  # pragma: no cover - compiled
    """Per row, the ids of the f largest keys, largest first, ties by the lower id; valid
    where the key is positive. The same as a stable sort of each row by descending key, cut
    at f, without sorting the row: the f-th largest key is found by selection (a value, the
    same whatever the algorithm), and only the f chosen are sorted. numpy's `argpartition`
    would leave ties to an algorithm that numpy picks by CPU."""
    n, m = keys.shape
    chosen = np.empty(f, dtype=np.int64)
    chosen_keys = np.empty(f, dtype=np.float32)
    for i in range(n):
        row = keys[i]
        kth = np.partition(row, m - f)[m - f]
        n_above = 0
        for v in range(m):
            n_above += row[v] > kth
        ties_left = f - n_above
        count = 0
        for v in range(m):  # in id order: a tie goes to the lower id
            if row[v] > kth or (row[v] == kth and ties_left > 0):
                if row[v] == kth:
                    ties_left -= 1
                chosen[count] = v
                chosen_keys[count] = -row[v]
                count += 1
        order = np.argsort(chosen_keys, kind="mergesort")  # stable: equal keys keep id order
        for j in range(f):
            feed[i, j] = chosen[order[j]] if -chosen_keys[order[j]] > 0 else 0
            valid[i, j] = -chosen_keys[order[j]] > 0


def logging_feed(
    preference: np.ndarray,
    category_weights: np.ndarray,
    last_seen: np.ndarray,
    day: int,
    settings: SimulationSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 lines 11-14 for every user: returns (feed ids, valid mask), both (n, F)."""
    weights = matmul(preference.astype(np.float32), category_weights.astype(np.float32))  # (n, n_videos)
    if settings.seen_window_days > 0:
        weights[last_seen >= day - settings.seen_window_days] = 0.0
    return top_k_feed(weights, rng, settings.feed_length)
