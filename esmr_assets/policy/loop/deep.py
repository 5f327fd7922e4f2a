"""The deep learners in the closed loop: each day from day 1 the trained network chooses, per
user, the ranker's feed or a bucket leading it, from the observation it learnt on
(`observation.observe`). Day 0 has no predicted label yet and is the ranker's, as in the
environment it trained in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...sim.environment import ClosedLoopEnv
from ..learners.deep import DeepAgent
from .agent_day import StateTracker
from .feeds import FeedBuilder, buckets_of
from .observation import observe
from .policies import serve_buckets

if TYPE_CHECKING:
    from .registry import PolicySpec
    from .rollouts import Artifacts


class DeepAgentPolicy:
    def __init__(self, feeds: FeedBuilder, agent: DeepAgent) -> None:
        self.feeds, self.agent = feeds, agent

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> DeepAgentPolicy | None:
        agent = artifacts.deep_agents.get(spec.name)
        return None if agent is None else cls(artifacts.feeds, agent)

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if env.day == 0:
            return serve_buckets(self.feeds, env, np.full(env.n_users, -1))
        choices = self.agent.greedy(observe(env.observation(), tracker, env.day))
        return serve_buckets(self.feeds, env, buckets_of(choices))
