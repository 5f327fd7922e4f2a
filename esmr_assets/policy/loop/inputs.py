"""What every closed-loop stage starts from, as one object, and what its jobs build from it once."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ...core.settings import Settings
from ..learners.ranker import EngagementRanker
from .feeds import FeedBuilder, feed_builder
from .users import policy_split, users_in


@dataclass(frozen=True)
class LoopInputs:
    """The simulated world (videos, users, the logged impressions the feeds' candidate pools
    come from), the models every feed runs (the engagement ranker and the emotion model), and
    the cell (its settings and seed): what training the agents and bandits, choosing the
    heuristics' buckets and the rollouts all start from."""

    videos: pl.DataFrame
    users: pl.DataFrame
    impressions: pl.DataFrame | pl.LazyFrame
    ranker: EngagementRanker
    emotion_model: object
    settings: Settings
    seed: int


@dataclass
class LoopState:
    """What the jobs of a closed-loop stage share (`core.parallel.map_jobs`): the inputs, and
    what is built from them once per process and then reused by every job there (the feed
    builder, the training and evaluation cohorts): the same whether built or reused."""

    inputs: LoopInputs
    _built: dict = field(default_factory=dict, repr=False)

    def _once(self, name: str, build):
        if name not in self._built:
            self._built[name] = build()
        return self._built[name]

    def feed_builder(self) -> FeedBuilder:
        inputs = self.inputs
        return self._once("feeds", lambda: feed_builder(inputs.ranker, inputs.videos, inputs.impressions,
                                                         inputs.settings))

    def cohort(self, split: str) -> pl.DataFrame:
        """The users of `split` ("training" or "evaluation"), sorted by id."""
        inputs = self.inputs

        def build() -> pl.DataFrame:
            training, evaluation = policy_split(inputs.users, inputs.seed, inputs.settings.policy)
            return users_in(inputs.users, {"training": training, "evaluation": evaluation}[split])

        return self._once(split, build)
