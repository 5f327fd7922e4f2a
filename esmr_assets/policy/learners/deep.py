"""A trained stable-baselines3 policy network as a model of the project: the network (DQN's
Q-network or PPO's actor-critic, rebuilt from its hyper-parameters) and the observation
normalisation it learnt under (`VecNormalize`'s running mean and variance), acting greedily.
Stored without pickle: the weights as a torch state dict loaded with `weights_only=True`,
everything else as JSON (`training.models.DeepAgents`)."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.dqn.policies import DQNPolicy

from ...core.torch_runtime import torch_runtime

#: `VecNormalize`'s defaults, which the training uses
CLIP_OBSERVATION, EPSILON = 10.0, 1e-8
POLICY_CLASSES: dict[str, type[BasePolicy]] = {"dqn": DQNPolicy, "ppo": ActorCriticPolicy}


def build_policy(algorithm: str, n_features: int, n_actions: int, net_arch: list[int]) -> BasePolicy:
    """The untrained network of `algorithm` (its initial weights from a forked torch stream:
    building one never moves the process's own)."""
    if algorithm not in POLICY_CLASSES:
        raise ValueError(f"algorithm must be one of {tuple(POLICY_CLASSES)}, got {algorithm!r}")
    observation_space = spaces.Box(-np.inf, np.inf, (n_features,), np.float32)
    with torch.random.fork_rng(devices=[]):
        return POLICY_CLASSES[algorithm](observation_space, spaces.Discrete(n_actions), lambda _: 0.0,
                                         net_arch=list(net_arch))


class DeepAgent:
    """`policy` acting on observations normalised by (`observation_mean`, `observation_var`)."""

    def __init__(self, algorithm: str, hyper_parameters: dict, policy: BasePolicy, observation_mean: np.ndarray,
                 observation_var: np.ndarray) -> None:
        self.algorithm, self.hyper_parameters, self.policy = algorithm, dict(hyper_parameters), policy
        self.observation_mean = np.asarray(observation_mean, dtype=np.float64)
        self.observation_var = np.asarray(observation_var, dtype=np.float64)

    @property
    def n_features(self) -> int:
        return self.observation_mean.size

    def normalise(self, observations: np.ndarray) -> np.ndarray:
        """As `VecNormalize.normalize_obs` computes it."""
        return np.clip((observations - self.observation_mean) / np.sqrt(self.observation_var + EPSILON),
                       -CLIP_OBSERVATION, CLIP_OBSERVATION)

    def greedy(self, observations: np.ndarray) -> np.ndarray:
        """(n,) the most valued (DQN) or most probable (PPO) action per row of `observations`."""
        observations = np.asarray(observations)
        if observations.ndim != 2 or observations.shape[1] != self.n_features:
            raise ValueError(f"observations must be (n, {self.n_features}), got {observations.shape}")
        with torch_runtime(1), torch.no_grad():
            actions, _ = self.policy.predict(self.normalise(observations).astype(np.float32), deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {key: value.detach().clone() for key, value in self.policy.state_dict().items()}

    def manifest(self) -> dict:
        """Everything but the weights, as JSON values."""
        return {"algorithm": self.algorithm, "hyper_parameters": self.hyper_parameters,
                "n_actions": int(self.policy.action_space.n), "observation_mean": self.observation_mean.tolist(),
                "observation_var": self.observation_var.tolist()}

    @classmethod
    def from_manifest(cls, manifest: dict, state_dict: dict[str, torch.Tensor]) -> DeepAgent:
        mean = np.asarray(manifest["observation_mean"], dtype=np.float64)
        hyper = manifest["hyper_parameters"]
        policy = build_policy(manifest["algorithm"], mean.size, manifest["n_actions"], hyper["net_arch"])
        policy.load_state_dict(state_dict)
        return cls(manifest["algorithm"], hyper, policy, mean, manifest["observation_var"])
