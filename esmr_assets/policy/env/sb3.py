"""stable-baselines3's `VecEnv` over `ClosedLoopVectorEnv`, which SB3 needs (it has its own
vector API, not Gymnasium's). It wraps the environment, never copies it: one cohort steps
all of SB3's environments at once.

Episodes stay the environment's (training noise episodes 1, 2, ...): SB3's `seed()` seeds
only the learner, so an agent's seed never moves the users' noise. When the cohort's horizon
ends, every user is done at once: each info gets the `terminal_observation` and
`TimeLimit.truncated`, and the next episode starts, as SB3 expects. `episodes` keeps each
finished episode's mean reward and Eq. 8 terms per user-day: the learning curve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from .vector import ClosedLoopVectorEnv, per_env


class Sb3VecEnv(VecEnv):
    def __init__(self, env: ClosedLoopVectorEnv) -> None:
        self.env = env
        self._actions: np.ndarray | None = None
        self.episodes: list[dict] = []
        self._sums = dict.fromkeys(_CURVE, 0.0)
        self._steps = 0
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)

    def reset(self) -> np.ndarray:
        self._sums, self._steps = dict.fromkeys(_CURVE, 0.0), 0
        observation, info = self.env.reset()
        self.reset_infos = per_env(info, self.num_envs)
        return observation

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        observation, reward, terminated, truncated, info = self.env.step(self._actions)
        done = terminated | truncated
        infos = per_env(info, self.num_envs)
        for key, values in zip(_CURVE, (reward, info["r_eng"], info["r_emo"], info["r_cause"])):
            self._sums[key] += float(np.sum(values))
        self._steps += self.num_envs
        if done.any():
            if not done.all():
                raise RuntimeError("the cohort's users end their episodes together; some did not")
            for i, entry in enumerate(infos):
                entry["terminal_observation"] = observation[i]
                entry["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            self.episodes.append({"episode": self.env.episode, **{f"mean_{k}": v / self._steps for k, v in self._sums.items()}})
            self._sums, self._steps = dict.fromkeys(_CURVE, 0.0), 0
            observation, reset_info = self.env.reset()
            self.reset_infos = per_env(reset_info, self.num_envs)
        return observation, reward.astype(np.float32), done, infos

    def seed(self, seed: int | None = None) -> Sequence[None]:
        """The users' noise is the environment's episodes', not the learner's seed."""
        return [None] * self.num_envs

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.env, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result] * len(list(self._get_indices(indices)))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))


_CURVE = ("reward", "r_eng", "r_emo", "r_cause")
