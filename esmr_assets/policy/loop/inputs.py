"""What every closed-loop stage starts from, as one object."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ...core.settings import Settings
from ..learners.ranker import EngagementRanker


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
