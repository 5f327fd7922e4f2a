"""What an agent of the Gymnasium environment observes: what a platform sees of a user, and
nothing of the simulator's latent state. One named float32 column per feature
(`OBSERVATION_NAMES`), built the same way for the environment and for a trained agent acting
in the rollouts, so what it learnt on is what it acts on."""

from __future__ import annotations

import numpy as np
import polars as pl

from ...core.vocabulary import PROFILES, TRUE_EMOTIONS
from ...sim.environment import OBSERVED_COLUMNS
from .agent_day import StateTracker

#: yesterday's observed behaviour: every observed numeric column of `user_day_logs` (the
#: categorical dominant category and emotion are summed up by the time and share columns)
BEHAVIOUR = tuple(c for c in OBSERVED_COLUMNS
                  if c not in ("user_id", "day", "profile", "dominant_category", "dominant_emotion"))

OBSERVATION_NAMES: tuple[str, ...] = (
    "day",  # the day the action is for
    "observed_yesterday",  # 0 before the first observed day: the behaviour columns are then 0
    *(f"yesterday_{c}" for c in BEHAVIOUR),
    *(f"p_{e}" for e in TRUE_EMOTIONS),  # the emotion model's class probabilities of yesterday
    *(f"profile_{p}" for p in PROFILES),
    "negative_streak",  # consecutive negative-or-neutral predicted days (the hybrid's trigger)
)


def observe(observation: pl.DataFrame, tracker: StateTracker, day: int) -> np.ndarray:
    """(n, len(OBSERVATION_NAMES)) float32 from `ClosedLoopEnv.observation()` (yesterday's
    observed rows and the profile) and the tracker of the stepped days. Missing values (no
    yesterday, a churned day's undefined ratios) are 0."""
    n = observation.height
    behaviour = observation.select(pl.col(c).cast(pl.Float64) for c in BEHAVIOUR).to_numpy()
    profile = observation["profile"].cast(pl.String).to_numpy()
    columns = np.column_stack([
        np.full(n, day, dtype=float),
        np.full(n, float(day > 0)),
        behaviour,
        tracker.probabilities,
        profile[:, None] == np.asarray(PROFILES)[None, :],
        tracker.streak,
    ])
    return np.nan_to_num(columns, nan=0.0).astype(np.float32)
