"""The daily loop of the structural model, shared by the logging simulation (`logs.py`)
and the closed-loop environment (`environment.py`): they differ only in who ranks the
feeds and which random streams the days draw from."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..core.settings import SimulationSettings
from .content import VideoPool
from .day import (
    DayNoise,
    DayResult,
    UserState,
    churn_today,
    draw_day_noise,
    simulate_day,
)
from .population import Population

NEVER_SEEN = -(10**6)  # `last_seen` of a video a user was never shown


class Cohort:
    """Users stepped a day at a time under whatever feeds they are served: the state, what
    each user was shown and when, and today's noise (drawn as the day starts)."""

    def __init__(
        self, pool: VideoPool, pop: Population, settings: SimulationSettings,
        noise_rng: Callable[[int], np.random.Generator],
    ) -> None:
        self.pool, self.pop, self.settings, self.noise_rng = pool, pop, settings, noise_rng
        self.day = -1

    @property
    def done(self) -> bool:
        return self.day >= self.settings.n_days

    def start(self) -> None:
        """Day 0: the users' initial state, nothing seen yet, day 0's noise."""
        self.day = 0
        self.state = UserState.initial(self.pop)
        self.last_seen = np.full((self.pop.size, self.pool.size), NEVER_SEEN, dtype=np.int32)
        self.noise = self._draw_noise()

    def advance(self, feed: np.ndarray, feed_valid: np.ndarray) -> DayResult:
        """Serve today's feeds, then move on to tomorrow (and draw its noise)."""
        churned = churn_today(self.state, self.pop, self.noise, self.settings)
        result = simulate_day(
            feed, feed_valid, self.day, self.pool, self.pop, self.state, self.noise, churned, self.settings
        )
        self.last_seen[result.rows, result.videos] = self.day
        self.state = result.state
        self.day += 1
        if not self.done:
            self.noise = self._draw_noise()
        return result

    def _draw_noise(self) -> DayNoise:
        return draw_day_noise(self.noise_rng(self.day), self.pop, self.day, self.settings.feed_length, self.settings)
