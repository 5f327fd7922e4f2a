"""The contextual bandit that IGL-P and the hand-reward bandits play (IGL-P's CB-Alg)."""

from __future__ import annotations

import numpy as np

from ...core.portable import matmul, solve


class LinearBandit:
    """The CB-Alg of Algorithm 1: ridge regression of the reward on the context per action,
    epsilon-greedy over the estimates, so P(a|x) is known exactly. Its statistics (ending in
    `_`) are created by `initialize`, on first use."""

    def __init__(self, n_actions: int, n_features: int, ridge: float = 1.0, epsilon: float = 0.1) -> None:
        self.n_actions = n_actions
        self.n_features = n_features
        self.ridge = ridge
        self.epsilon = epsilon

    def initialize(self) -> LinearBandit:
        """The prior's statistics: ridge * I per action, no rewards yet (once)."""
        if not hasattr(self, "coef_"):
            self.gram_ = np.tile(self.ridge * np.eye(self.n_features), (self.n_actions, 1, 1))
            self.target_ = np.zeros((self.n_actions, self.n_features))
            self.coef_ = np.zeros((self.n_actions, self.n_features))
        return self

    def estimates(self, x: np.ndarray) -> np.ndarray:
        """(n, K) estimated rewards."""
        self.initialize()
        return matmul(np.asarray(x, dtype=np.float64), self.coef_.T)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """(n, K) P(a|x): epsilon spread evenly, the rest on the first best action."""
        best = self.estimates(x).argmax(axis=1)
        p = np.full((len(best), self.n_actions), self.epsilon / self.n_actions)
        p[np.arange(len(best)), best] += 1.0 - self.epsilon
        return p

    def sample(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(actions, their probabilities) for every row of `x`."""
        p = self.probabilities(x)
        actions = (rng.random(len(p))[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(max=self.n_actions - 1)
        return actions, p[np.arange(len(p)), actions]

    def learn(self, x: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> LinearBandit:
        """Add a batch of (x, a, r) rounds and refit every action's ridge regression."""
        self.initialize()
        x, actions, rewards = np.asarray(x, dtype=np.float64), np.asarray(actions), np.asarray(rewards, dtype=np.float64)
        for a in np.unique(actions):
            rows = actions == a
            self.gram_[a] += matmul(x[rows].T, x[rows])
            self.target_[a] += matmul(x[rows].T, rewards[rows])
        self.coef_ = solve(self.gram_, self.target_[..., None])[..., 0]
        return self
