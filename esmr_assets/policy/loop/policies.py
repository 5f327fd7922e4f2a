"""The policies that rank feeds without learning online (docs/design.md §6); `registry.POLICIES`
names them, and the bandits that learn online are in `bandits.py`.

A policy turns the day's observation into feeds; it sees what a platform would see
(yesterday's behaviour, predicted emotions, what it showed) and never the latent truth, except
the diagnostic `oracle_*` entries of the registry: a hybrid on latent labels (the environment's
labeller gives it the truth) and the oracles of `oracles.py`.

- `LightGBMPolicy`: the engagement ranker alone.
- `HybridPolicy`: ESMR. LightGBM while the user is stable; the Q-learning agent's bucket
  from the day after `rl_streak` consecutive negative-or-neutral predicted days, until a
  positive day breaks the streak (`streak.update_streak`).
- `RandomPolicy`: a uniformly random order of the eligible videos.
- `FixedBucketPolicy`: heuristic baselines, one fixed bucket leading the feed (always, or on
  the hybrid's RL days).

Each builds itself from the trained artifacts with `from_artifacts(artifacts, spec)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...core.rng import stream
from ...sim.environment import ClosedLoopEnv
from ..learners.qlearning import N_STATES_WITH_LAST_BUCKET, QLearningAgent
from .agent_day import StateTracker
from .feeds import ACTIONS, FeedBuilder, bucket_mask, random_feed

if TYPE_CHECKING:
    from ...core.settings import PolicySettings
    from .registry import PolicySpec
    from .rollouts import Artifacts


class LightGBMPolicy:
    """The engagement ranker's feed for everyone."""

    def __init__(self, feeds: FeedBuilder) -> None:
        self.feeds = feeds

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> LightGBMPolicy:
        return cls(artifacts.feeds)

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(feed, valid, action per user; -1 where no RL action applies)."""
        feed, valid = self.feeds.build(env.observation(), env.recently_shown())
        return feed, valid, np.full(env.n_users, -1)


class RandomPolicy:
    """Each day a fresh random order, from the policy's own stream (never the users')."""

    def __init__(self, seed: int, feed_length: int, stream_key: int) -> None:
        self.seed, self.feed_length, self.stream_key = seed, feed_length, stream_key

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> RandomPolicy:
        return cls(artifacts.seed, artifacts.settings.simulation.feed_length, spec.stream_key)

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = stream(self.seed, "policy", self.stream_key, env.episode, env.day)
        feed, valid = random_feed(env.recently_shown(), self.feed_length, rng)
        return feed, valid, np.full(env.n_users, -1)


class HybridPolicy:
    """ESMR: the agent's greedy bucket for users on an RL streak, LightGBM for the rest."""

    def __init__(self, feeds: FeedBuilder, agent: QLearningAgent, rl_streak: int) -> None:
        self.feeds, self.agent, self.rl_streak = feeds, agent, rl_streak

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> HybridPolicy | None:
        agent = artifacts.agents.get(spec.name)
        return None if agent is None else cls(artifacts.feeds, agent, artifacts.settings.policy.rl_streak)

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        acting = (tracker.streak >= self.rl_streak) & (env.day > 0)
        states = tracker.states(with_last_bucket=self.agent.n_states == N_STATES_WITH_LAST_BUCKET)
        return serve_buckets(self.feeds, env, np.where(acting, self.agent.greedy(states), -1))


class FixedBucketPolicy:
    """A heuristic baseline: one fixed bucket leads the feed, on the days the hybrid switch
    hands over (`rl_streak`), or every day of every user (`rl_streak=None`); LightGBM ranks
    the rest. It reads only what the platform sees."""

    def __init__(self, feeds: FeedBuilder, bucket: int, rl_streak: int | None) -> None:
        self.feeds, self.bucket, self.rl_streak = feeds, bucket, rl_streak

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> FixedBucketPolicy | None:
        """The entry's bucket, or the one chosen on the training users (None when not given)."""
        bucket = spec.heuristic.bucket or artifacts.heuristic_buckets.get(spec.name)
        return None if bucket is None else cls.with_bucket(artifacts.feeds, spec, bucket, artifacts.settings.policy)

    @classmethod
    def with_bucket(cls, feeds: FeedBuilder, spec: PolicySpec, bucket: str, settings: PolicySettings) -> FixedBucketPolicy:
        """The heuristic `spec` leading with `bucket`: on the switch's days when it is a hybrid."""
        return cls(feeds, ACTIONS.index(bucket), settings.rl_streak if spec.heuristic.hybrid else None)

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        acting = np.ones(env.n_users, dtype=bool)
        if self.rl_streak is not None:
            acting = (tracker.streak >= self.rl_streak) & (env.day > 0)
        return serve_buckets(self.feeds, env, np.where(acting, self.bucket, -1))


def serve_buckets(feeds: FeedBuilder, env: ClosedLoopEnv, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Today's feeds with each user's bucket `actions` leading (-1: none, LightGBM's feed):
    (feed, valid, actions)."""
    acting = actions >= 0
    boost = bucket_mask(np.maximum(actions, 0), feeds.video_emotion, acting)
    feed, valid = feeds.build(env.observation(), env.recently_shown(), boost)
    return feed, valid, actions
