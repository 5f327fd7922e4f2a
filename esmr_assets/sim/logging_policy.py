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


def _top_f(keys: np.ndarray, f: int) -> np.ndarray:
    """(n, f) column indices of each row's f largest keys, in index order. Ties at the f-th
    key go to the lowest indices: `np.argpartition` would leave them to its algorithm, which
    numpy picks by CPU (an AVX-512 selection or its own introselect)."""
    kth = np.partition(keys, keys.shape[1] - f, axis=1)[:, keys.shape[1] - f, None]  # a value: the same either way
    above = keys > kth
    tied = keys == kth
    take = above | (tied & (np.cumsum(tied, axis=1) <= f - above.sum(axis=1, keepdims=True)))
    return np.nonzero(take)[1].reshape(keys.shape[0], f)


def top_k_feed(weights: np.ndarray, rng: np.random.Generator, feed_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank a weighted sample without replacement per row: (feed ids, valid mask).

    Rows with fewer than `feed_length` positive weights get a shorter valid prefix: the user
    runs out of eligible videos and the session ends there."""
    n, m = weights.shape
    exponential = np.maximum(rng.standard_exponential((n, m), dtype=np.float32), np.float32(1e-30))
    keys = np.divide(weights, exponential, out=weights if weights.dtype == np.float32 else None, dtype=np.float32)
    f = min(feed_length, m)
    if f < m:
        part = _top_f(keys, f)
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    part_keys = np.take_along_axis(keys, part, axis=1)
    order = np.argsort(-part_keys, axis=1, kind="stable")  # largest first, ties by video id
    feed = np.take_along_axis(part, order, axis=1).astype(np.int32)
    valid = np.take_along_axis(part_keys, order, axis=1) > 0
    feed[~valid] = 0  # past the eligible videos: a fixed id, as the padding below
    if f < feed_length:  # pad to the fixed feed shape the day's noise was drawn for
        pad = feed_length - f
        feed = np.pad(feed, ((0, 0), (0, pad)))
        valid = np.pad(valid, ((0, 0), (0, pad)))
    return feed, valid


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
