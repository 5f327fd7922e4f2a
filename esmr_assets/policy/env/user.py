"""`ClosedLoopUserEnv`: one user of the closed loop as a plain Gymnasium environment (a
cohort of one), for tools that want `gymnasium.Env`. The vector form steps many users at the
cost of about one. The day's noise is drawn per cohort row, so user k alone lives through
other draws than user k in the whole split's cohort (the rollouts')."""

from __future__ import annotations

import gymnasium
import numpy as np
import polars as pl

from ..loop.inputs import LoopInputs
from .vector import ClosedLoopVectorEnv, per_env


class ClosedLoopUserEnv(gymnasium.Env):
    """User `user` (an index into the split's users, in id order) under the agent's daily
    choice; the options are those of `ClosedLoopVectorEnv`."""

    metadata = {"render_modes": []}

    def __init__(self, inputs: LoopInputs, user_causal_parents: pl.DataFrame, split: str = "training",
                 user: int = 0, **options) -> None:
        self.cohort = ClosedLoopVectorEnv(inputs, user_causal_parents, split, 1, first_user=user, **options)
        self.observation_space = self.cohort.single_observation_space
        self.action_space = self.cohort.single_action_space
        self.observation_names = self.cohort.observation_names

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Noise episode `seed` (None: the next one), as `ClosedLoopVectorEnv.reset`."""
        super().reset(seed=seed)
        observation, info = self.cohort.reset(seed=seed)
        return observation[0], per_env(info, 1)[0]

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.cohort.step(np.asarray([action]))
        return observation[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), per_env(info, 1)[0]
