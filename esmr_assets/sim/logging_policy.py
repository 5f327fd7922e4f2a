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
    if m >= 2**32 or (keys < 0).any():
        raise ValueError("the logging policy's keys must be non-negative, for fewer than 2**32 videos")
    feed = np.zeros((n, feed_length), dtype=np.int32)  # past the eligible videos: a fixed id
    valid = np.zeros((n, feed_length), dtype=np.bool_)
    _ranked_top(keys.view(np.uint32), min(feed_length, m), feed, valid)
    return feed, valid


@compiled.njit(nogil=True)
def _ranked_top(key_bits, f, feed, valid):  # pragma: no cover - compiled
    """Per row, the ids of the f largest keys, largest first, ties by the lower id; valid
    where the key is positive: a stable sort of each row by descending key, cut at f.

    A non-negative float32's bits order like its value, so (inverted key bits, id) packed in
    one uint64 orders each row exactly so, with no two alike: the f smallest are selected
    (quickselect), and only they are sorted. `key_bits` are the keys' bits (`view(np.uint32)`)."""
    n, m = key_bits.shape
    packed = np.empty(m, dtype=np.uint64)
    low_bits = np.uint64(0xFFFFFFFF)
    for i in range(n):
        for v in range(m):
            bits = np.uint64(key_bits[i, v]) & np.uint64(0x7FFFFFFF)  # -0.0 is 0
            packed[v] = ((low_bits - bits) << np.uint64(32)) | np.uint64(v)
        if f < m:
            _select(packed, f - 1)
        head = packed[:f]
        head.sort()
        for j in range(f):
            bits = low_bits - (head[j] >> np.uint64(32))
            valid[i, j] = bits != 0
            feed[i, j] = np.int32(head[j] & low_bits) if bits != 0 else 0


@compiled.njit(nogil=True)
def _select(a, k):  # pragma: no cover - compiled
    """Reorder the distinct values `a` so that a[k] is the k-th smallest, with the smaller ones
    before it (Hoare's quickselect, median-of-three pivots)."""
    lo, hi = 0, a.size - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        x, y, z = a[lo], a[mid], a[hi]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


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
