"""Diagnostic policies that read the simulator's latent state (`oracle_*` in the registry):
ceilings for the comparison, never deployable, never learned from.

`BestFeedOracle` serves each user, each day, the bucket whose feed gives the highest expected
next-day latent valence given the user's true state. It asks the simulator itself: for every
bucket it builds the feed a platform would serve (the bucket leading, ranked by LightGBM),
lets the cohort live through the day with `simulate_day` under `draws` noise draws of its own
(the same draws for every bucket, so buckets are compared under common random numbers), and
averages tomorrow's latent valence. Deterministic given the state: the draws come from the
policy's own stream, keyed by episode and day.

It is a one-step look-ahead: it ignores that today's bucket also moves arousal (which shapes
tomorrow's behaviour), churn, and what the 5-day seen filter leaves for later days, so it is
a strong feed but not provably the best sequence of feeds (README, "What limits ESMR").

`PlannerOracle` (`oracle_planner`) asks whether looking further helps: for each bucket it lets
a copy of the cohort live today under that bucket's feed and then `horizon - 1` days under the
ranker's feed, and picks the bucket with the highest mean latent valence over those days.
Today's draws are `BestFeedOracle`'s own (its stream, in its order), so at horizon 1 it is
`oracle_best_feed` to the byte; the later days draw from the planner's stream, the same for
every bucket. The look-ahead's later days run the platform's emotion model on what the copy
shows, as the ranker would see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...core.rng import stream
from ...sim.day import churn_today, draw_day_noise, simulate_day
from ...sim.environment import ClosedLoopEnv
from . import registry
from .agent_day import StateTracker
from .feeds import ACTIONS, FeedBuilder, bucket_mask

if TYPE_CHECKING:
    from .registry import PolicySpec
    from .rollouts import Artifacts


class BestFeedOracle:
    """The bucket maximising expected next-day latent valence, per user and day."""

    def __init__(self, feeds: FeedBuilder, seed: int, stream_key: int, draws: int) -> None:
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        self.feeds, self.seed, self.stream_key, self.draws = feeds, seed, stream_key, draws

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> BestFeedOracle:
        return cls(artifacts.feeds, artifacts.seed, spec.stream_key, artifacts.settings.evaluation.oracle_draws)

    def expected_valence(self, env: ClosedLoopEnv) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
        """((n_users, n_buckets) expected next-day latent valence, each bucket's feeds)."""
        feeds = bucket_feeds(self.feeds, env)
        noises = todays_draws(self.seed, self.stream_key, self.draws, env)
        valence = np.zeros((env.n_users, len(ACTIONS)))
        for noise in noises:
            churned = churn_today(env.state, env.pop, noise, env.settings)
            for b, (feed, valid) in enumerate(feeds):
                padded, mask = env.pad_feed(feed, valid)
                result = simulate_day(padded, mask, env.day, env.pool, env.pop, env.state, noise, churned, env.settings)
                valence[:, b] += result.state.valence / self.draws
        return valence, feeds

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        valence, feeds = self.expected_valence(env)
        return best_bucket(valence, feeds)


def bucket_feeds(feeds: FeedBuilder, env: ClosedLoopEnv) -> list[tuple[np.ndarray, np.ndarray]]:
    """Today's feeds of every user with each bucket leading, in ACTIONS order."""
    observation, blocked = env.observation(), env.recently_shown()
    return [feeds.build(observation, blocked, bucket_mask(np.full(env.n_users, b), feeds.video_emotion))
            for b in range(len(ACTIONS))]


def todays_draws(seed: int, stream_key: int, draws: int, env: ClosedLoopEnv) -> list:
    """`draws` noise draws of today for the cohort, from the policy stream `stream_key`."""
    rng = stream(seed, "policy", stream_key, env.episode, env.day)
    return [draw_day_noise(rng, env.pop, env.day, env.settings.feed_length, env.settings) for _ in range(draws)]


def best_bucket(value: np.ndarray, feeds: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """(feed, valid, bucket) of each user's highest-`value` bucket; ties go to the first."""
    actions = value.argmax(axis=1)
    rows = np.arange(value.shape[0])
    return np.stack([f for f, _ in feeds])[actions, rows], np.stack([v for _, v in feeds])[actions, rows], actions


class PlannerOracle:
    """The bucket maximising the mean latent valence over `horizon` days: today under the
    bucket's feed, then the ranker's feed, per user and day, averaged over `draws` draws."""

    def __init__(self, feeds: FeedBuilder, seed: int, stream_key: int, draws: int, horizon: int,
                 today_key: int) -> None:
        if draws < 1 or horizon < 1:
            raise ValueError(f"draws and horizon must be at least 1, got {draws} and {horizon}")
        self.feeds, self.seed, self.stream_key, self.draws, self.horizon = feeds, seed, stream_key, draws, horizon
        self.today_key = today_key

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> PlannerOracle:
        """The planner of `evaluation.planner_horizon` days (the rollouts leave it out at 0)."""
        return cls(artifacts.feeds, artifacts.seed, spec.stream_key, artifacts.settings.evaluation.oracle_draws,
                   artifacts.settings.evaluation.planner_horizon, registry.spec("oracle_best_feed").stream_key)

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feeds = bucket_feeds(self.feeds, env)
        noises = todays_draws(self.seed, self.today_key, self.draws, env)  # oracle_best_feed's draws
        valence = np.zeros((env.n_users, len(ACTIONS)))
        for d, noise in enumerate(noises):
            def later(day: int, d: int = d) -> np.random.Generator:
                return stream(self.seed, "policy", self.stream_key, env.episode, env.day, d, day)

            for b, (feed, valid) in enumerate(feeds):
                world = env.branch(noise, later)
                world.step(feed, valid)
                total = world.state.valence.copy()
                for _ in range(self.horizon - 1):
                    if world.done:
                        break
                    world.step(*self.feeds.build(world.observation(), world.recently_shown()))
                    total += world.state.valence
                valence[:, b] += total / self.horizon / self.draws
        return best_bucket(valence, feeds)
