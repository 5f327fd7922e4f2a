"""IGL-P: personalised reward learning from implicit feedback (Maghakian et al., Algorithm 1).

The learner never sees the latent reward r, only a feedback signal y. It plays a
contextual bandit (`LinearBandit`) and, beside it, learns an inverse-kinematics model
P(a | y, x) (`InverseKinematics`) under a synthetic uniform action distribution
(importance weights 1 / (K P(a|x))). Feedback that makes the played action much more
predictable than chance is an extreme event, r != 0 (Eq. 3: K P(a|y,x) > 2); with three
latent states the definitely-negative oracle tells r = -1 from r = +1 (Eq. 4).

Eq. 4 as printed gives an oracle-flagged event -1/alpha, which makes the decoded reward's
expectation P(r=+1) - alpha P(r=-1): unflagged negatives count as positives. We use the
weight of the positive-unlabelled risk it cites (Bekker & Davis 2020, Eq. 11), 1 - 2/alpha,
whose expectation is P(r=+1) - P(r=-1); alpha = 1 (every negative flagged) gives -1 as well.

Everything is batched: one call handles a whole batch of rounds (all users of a day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...core.torch_runtime import torch_runtime
from .linear_bandit import LinearBandit

BATCH_SIZE = 512  # inverse-kinematics mini-batch (benchmarks/igl.py compares it with 32)


def extreme_events(p_action: np.ndarray, n_actions: int) -> np.ndarray:
    """Eq. 3: K * P(a | y, x) > 2 means r != 0 (under a uniform action distribution)."""
    return n_actions * np.asarray(p_action) > 2.0


def decode_rewards(extreme: np.ndarray, definitely_negative: np.ndarray | None, alpha: float) -> np.ndarray:
    """r-hat per round: 0 without an extreme event; with one, 1 - 2/alpha where the oracle
    says definitely negative, else +1. `definitely_negative=None` is two-state IGL."""
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha (negative labelling propensity) must be in (0, 1], got {alpha}")
    extreme = np.asarray(extreme, dtype=bool)
    reward = extreme.astype(np.float64)
    if definitely_negative is not None:
        reward[extreme & np.asarray(definitely_negative, dtype=bool)] = 1.0 - 2.0 / alpha
    return reward


class InverseKinematics:
    """P(a | y, x) for K actions, in the shape of the paper's Eq. 2: the logit of action a is
    sum_j phi_j(c, y) h_ja(x), a product of a personalised feedback code phi (what signal y
    means for a user with personalisation context c: a per-signal linear map of c, `channels`
    wide) and an action score h(x) from the decision context. With c a user one-hot, phi is
    the user-by-signal embedding of the paper's §4.1; with c observable user features it
    generalises to new users. Trained by weighted maximum likelihood in mini-batches (Adam);
    the parameters are created by `initialize`, on first use (scikit-learn's conventions)."""

    def __init__(
        self,
        n_actions: int,
        n_signals: int,
        n_personal: int,
        n_context: int,
        channels: int = 2,
        learning_rate: float = 0.05,
        batch_size: int = BATCH_SIZE,
        random_state: int = 0,
    ) -> None:
        self.n_actions = n_actions
        self.n_signals = n_signals
        self.n_personal = n_personal
        self.n_context = n_context
        self.channels = channels
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.random_state = random_state

    def initialize(self) -> InverseKinematics:
        """The untrained parameters (seeded by `random_state`) and their optimiser (once)."""
        if hasattr(self, "signal_maps_"):
            return self
        generator = torch.Generator().manual_seed(self.random_state)
        scale = 0.1
        self.signal_maps_ = torch.nn.Parameter(
            scale * torch.randn(self.n_signals, self.n_personal, self.channels, generator=generator, dtype=torch.float32)
        )
        self.action_scores_ = torch.nn.Parameter(
            scale * torch.randn(self.n_context, self.channels, self.n_actions, generator=generator, dtype=torch.float32)
        )
        self.bias_ = torch.nn.Parameter(torch.zeros(self.n_actions, dtype=torch.float32))
        self.optimizer_ = torch.optim.Adam([self.signal_maps_, self.action_scores_, self.bias_], lr=self.learning_rate)
        self._order = np.random.default_rng(self.random_state)
        self.n_updates_ = 0
        return self

    def _logits(self, c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        phi = torch.einsum("nc,ncm->nm", c, self.signal_maps_[y])
        h = torch.einsum("nd,dmk->nmk", x, self.action_scores_)
        return torch.einsum("nm,nmk->nk", phi, h) + self.bias_

    @staticmethod
    def _tensors(*arrays: np.ndarray) -> list[torch.Tensor]:
        return [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]

    def predict_proba(self, c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(n, K) P-hat(a | y, x)."""
        self.initialize()
        ct, xt = self._tensors(c, x)
        with torch.no_grad(), torch_runtime(1):
            return torch.softmax(self._logits(ct, xt, torch.as_tensor(np.asarray(y, dtype=np.int64))), 1).numpy()

    def partial_fit(
        self, c: np.ndarray, x: np.ndarray, y: np.ndarray, actions: np.ndarray, weights: np.ndarray
    ) -> InverseKinematics:
        """One pass over a batch of rounds in shuffled mini-batches: weighted cross-entropy
        of the played action (weights 1 / (K P(a|x)) synthesise a uniform policy)."""
        self.initialize()
        ct, xt, wt = self._tensors(c, x, weights)
        yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
        at = torch.as_tensor(np.asarray(actions, dtype=np.int64))
        with torch_runtime(1):
            for rows in np.array_split(self._order.permutation(len(at)), max(1, -(-len(at) // self.batch_size))):
                index = torch.as_tensor(rows)
                loss = (F.cross_entropy(self._logits(ct[index], xt[index], yt[index]), at[index], reduction="none")
                        * wt[index]).sum() / wt[index].sum()
                self.optimizer_.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer_.step()
                self.n_updates_ += 1
        return self


@dataclass
class IGLLearner:
    """Algorithm 1, on-policy, a batch of rounds at a time. `three_state` uses the
    definitely-negative signal `negative_signal` with propensity `alpha`; without it every
    extreme event is r-hat = +1 (IGL-P(2))."""

    bandit: LinearBandit
    inverse_kinematics: InverseKinematics
    three_state: bool = True
    alpha: float = 0.3
    negative_signal: int = -1

    def act(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.bandit.sample(x, rng)

    def decode(self, c: np.ndarray, x: np.ndarray, y: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """r-hat of each round from the current inverse-kinematics model (Eq. 3-4)."""
        p = self.inverse_kinematics.predict_proba(c, x, y)[np.arange(len(actions)), actions]
        extreme = extreme_events(p, self.bandit.n_actions)
        negative = np.asarray(y) == self.negative_signal if self.three_state else None
        return decode_rewards(extreme, negative, self.alpha)

    def learn(
        self, c: np.ndarray, x: np.ndarray, y: np.ndarray, actions: np.ndarray, probabilities: np.ndarray
    ) -> np.ndarray:
        """Decode the rounds' rewards, teach the bandit, then the inverse-kinematics model
        (lines 10-19 of Algorithm 1); returns r-hat."""
        reward = self.decode(c, x, y, actions)
        self.bandit.learn(x, actions, reward)
        weights = 1.0 / (self.bandit.n_actions * np.asarray(probabilities))
        self.inverse_kinematics.partial_fit(c, x, y, actions, weights)
        return reward
