"""The closed-loop environment (docs/design.md §6): a cohort lives through `n_days` days under a
policy that only ranks feeds.

It steps the same daily loop as the logging simulation (`cohort.Cohort`). The day's noise
comes from `stream(seed, "closed_loop", episode, day)` in fixed shapes, before the policy
acts, so two policies serving different feeds to the same cohort face common random
numbers, and a user's trajectory depends only on the user's own feeds. Policies see only observable state (`observation`, `recently_shown`); the day's
category preferences and the latent affect stay inside.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl

from ..core.rng import stream
from ..core.schemas import LATENT_COLUMNS, USER_DAY_LOGS
from ..core.settings import SimulationSettings
from ..core.vocabulary import NO_LABEL, PREVIOUS_LABELS
from .cohort import Cohort
from .content import VideoPool
from .day import DayNoise
from .logging_policy import logging_feed, mixture_weights
from .logs import day_frame
from .population import Population

OBSERVED_COLUMNS = tuple(c for c in USER_DAY_LOGS.names() if c not in LATENT_COLUMNS)
STATE_LABEL_TYPE = pl.Enum(PREVIOUS_LABELS)


@dataclass(frozen=True)
class DayStep:
    """What one day produced. `logs` holds the latent truth too: for evaluation, never for
    policies. Impression arrays are flat, in user-then-position order."""

    day: int
    logs: pl.DataFrame  # user_day_logs rows of the cohort (schemas.USER_DAY_LOGS)
    predicted: np.ndarray  # (n,) str: the labeller's label of the day
    probabilities: np.ndarray  # (n, 6) the labeller's class probabilities in TRUE_EMOTIONS order
    true_label: np.ndarray  # (n,) str: latent truth, evaluation only
    rows: np.ndarray  # index of the user within the cohort
    positions: np.ndarray
    videos: np.ndarray
    watched: np.ndarray
    seconds: np.ndarray
    feedback: np.ndarray  # int8 index into vocabulary.SIGNALS: what a learner may see
    satisfaction: np.ndarray  # int8 latent r: evaluation only


class Labeller(Protocol):
    """What the platform infers about each user's emotion from a day's observed behaviour
    (the emotion stage's `DailyLabeller`). It is also handed the day's latent true emotion,
    which only a diagnostic labeller reads (`LatentLabeller`, for the `oracle_*` policies)."""

    def reset(self, n_users: int) -> object: ...

    def copy(self) -> Labeller: ...

    def label(self, observed: pl.DataFrame, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class ClosedLoopEnv(Cohort):
    """One cohort (the rows of `users`, keeping their user_id) stepped a day at a time
    under a policy's feeds. `labeller` turns each day's observed behaviour into the
    predicted label that the RL state and the policies read."""

    def __init__(
        self,
        videos: pl.DataFrame,
        users: pl.DataFrame,
        settings: SimulationSettings,
        seed: int,
        labeller: Labeller,
        episode: int = 0,
    ) -> None:
        self.videos = videos
        self.users = users
        self.seed = seed
        self.labeller = labeller
        self.episode = episode
        super().__init__(VideoPool.from_frame(videos), Population.from_frame(users), settings, self.noise_rng)
        self.category_weights = mixture_weights(self.pool, settings)

    @property
    def n_users(self) -> int:
        return self.pop.size

    def noise_rng(self, day: int) -> np.random.Generator:
        """The users' noise of `day`: keyed by day only, never by what a policy did."""
        return stream(self.seed, "closed_loop", self.episode, day)

    def reset(self) -> pl.DataFrame:
        """Start day 0; returns the first observation."""
        self.start()
        self.labeller.reset(self.n_users)
        self.predicted = np.full(self.n_users, NO_LABEL, dtype=object)
        self._yesterday: pl.DataFrame | None = None
        return self.observation()

    def observation(self) -> pl.DataFrame:
        """One row per user: yesterday's observed features (null on day 0), the predicted
        label of yesterday as `predicted_label` ("none" on day 0), the profile, today's day."""
        n = self.n_users
        if self._yesterday is None:
            frame = pl.DataFrame(schema=USER_DAY_LOGS).clear(n).select(OBSERVED_COLUMNS)
            frame = frame.with_columns(
                pl.Series("user_id", self.pop.user_id.astype(np.int32)),
                pl.Series("profile", self.users["profile"]),
            )
        else:
            frame = self._yesterday
        return frame.with_columns(
            pl.lit(self.day, dtype=pl.Int16).alias("day"),
            pl.Series("predicted_label", self.predicted.astype(str), dtype=STATE_LABEL_TYPE),
        )

    def branch(self, noise: DayNoise, noise_rng: Callable[[int], np.random.Generator]) -> ClosedLoopEnv:
        """A copy of the cohort as it stands today that lives today under `noise` and later
        days under `noise_rng`'s draws, leaving this one untouched: a look-ahead's world."""
        other = copy.copy(self)
        other.noise_rng, other.noise = noise_rng, noise
        other.last_seen = self.last_seen.copy()
        other.labeller = self.labeller.copy()
        other.predicted = self.predicted.copy()
        return other

    def recently_shown(self) -> np.ndarray:
        """(n, n_videos) bool: shown within `seen_window_days` days, so not to be shown today."""
        window = self.settings.seen_window_days
        if window == 0:
            return np.zeros(self.last_seen.shape, dtype=bool)
        return self.last_seen >= self.day - window

    def step(self, feed: np.ndarray, feed_valid: np.ndarray) -> DayStep:
        """Serve each user's ranked `feed` (n, k <= feed_length; `feed_valid` a prefix mask)."""
        if self.day < 0 or self.done:
            raise RuntimeError("no day to step: call reset() to start an episode")
        day = self.day
        result = self.advance(*self.pad_feed(np.asarray(feed), np.asarray(feed_valid, dtype=bool)))
        logs = day_frame(result, self.pop, day)
        observed = logs.select(OBSERVED_COLUMNS)
        truth = logs["true_emotion"].cast(pl.String).to_numpy()
        self.predicted, probabilities = self.labeller.label(observed, truth)
        self._yesterday = observed
        return DayStep(
            day=day,
            logs=logs,
            predicted=self.predicted,
            probabilities=probabilities,
            true_label=truth,
            rows=result.rows,
            positions=result.positions,
            videos=result.videos,
            watched=result.watched,
            seconds=result.seconds,
            feedback=result.feedback,
            satisfaction=result.satisfaction,
        )

    def pad_feed(self, feed: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pad a shorter feed to the fixed shape the day's noise was drawn for."""
        n, f = self.n_users, self.settings.feed_length
        if feed.shape != valid.shape or feed.shape[0] != n or feed.shape[1] > f:
            raise ValueError(f"feed must be (n_users={n}, k <= {f}) with a matching mask, got {feed.shape}")
        pad = ((0, 0), (0, f - feed.shape[1]))
        return np.pad(feed.astype(np.int64), pad), np.pad(valid, pad)


def logging_policy_feed(env: ClosedLoopEnv, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1's feeds for today, from inside the environment: it reads the day's hidden
    category preferences, so it serves testing and replay, never as a learnt policy's input."""
    if rng is None:
        rng = stream(env.seed, "logging_policy", env.episode, env.day, 1)
    return logging_feed(env.noise.preference, env.category_weights, env.last_seen, env.day, env.settings, rng)
