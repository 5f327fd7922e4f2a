"""Tabular Q-learning agent for ESMR (paper §3.3.2, Table 3), vectorised over users.

State encoding (``encode_state``): predicted label (6, in ``TRUE_EMOTIONS`` order) x
negative-or-neutral streak bucket {0, 1, 2, 3+} x engagement-trend bucket
{down: trend < -0.2, flat: |trend| <= 0.2, up: trend > 0.2}; 72 states.

Batch update rule (``QLearningAgent.update``): all TD targets
``y_i = r_i + gamma * (1 - done_i) * max_a Q(s'_i, a)`` are computed from the Q-table as it
stood *before* the batch ("frozen bootstrap").  The updates ``Q <- Q + lr * (y_i - Q)`` are
then applied sequentially in batch order for each (s, a) pair, in closed form: a pair seen k
times with targets y_1..y_k ends at ``(1-lr)^k Q0 + sum_i lr (1-lr)^(k-i) y_i``.  This is
exactly a Python loop of single updates whenever no next state's Q-row is modified by the
same batch (e.g. terminal transitions), and is order-deterministic otherwise. With
``learning_rate_decay`` omega the step of each update is ``1 / n(s, a)^omega`` instead, n the
pair's visits so far, applied by a compiled loop in batch order.

Exploration: Boltzmann over the Q-row at ``temperature_``, which is multiplied by
``temperature_decay`` at each ``end_epoch`` and floored at ``min_temperature``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from esmr_assets.core import compiled

from ...core.portable import exp, power
from ...core.vocabulary import EMOTIONS, TRUE_EMOTIONS, check_labels

N_LABELS = len(TRUE_EMOTIONS)
N_STREAK_BUCKETS = 4  # 0, 1, 2, 3+
N_TREND_BUCKETS = 3  # down, flat, up
TREND_THRESHOLD = 0.2
N_STATES = N_LABELS * N_STREAK_BUCKETS * N_TREND_BUCKETS
#: the last served bucket of the `state_last_bucket` variant: none (-1) or one of the 8
N_LAST_BUCKETS = len(EMOTIONS) + 1
N_STATES_WITH_LAST_BUCKET = N_STATES * N_LAST_BUCKETS
TREND_BUCKETS = ("down", "flat", "up")
#: the constructor parameters of `QLearningAgent`
PARAMETERS = (
    "n_states", "n_actions", "learning_rate", "discount", "temperature", "temperature_decay", "min_temperature",
    "replay_size", "replay_batch", "random_state", "learning_rate_decay",
)


def encode_state(label, negative_streak, engagement_trend, last_bucket=None):
    """State index in [0, N_STATES); scalars or broadcastable arrays.

    index = label_idx * 12 + min(streak, 3) * 3 + trend_bucket, trend_bucket 0/1/2 =
    down (< -0.2) / flat ([-0.2, 0.2], NaN counts as flat) / up (> 0.2). With `last_bucket`
    (the bucket that led yesterday's feed, -1 for none), index * 9 + last_bucket + 1, in
    [0, N_STATES_WITH_LAST_BUCKET): the state of the `state_last_bucket` variant.
    """
    if last_bucket is not None:
        last = np.asarray(last_bucket, dtype=np.int64)
        if np.any((last < -1) | (last >= len(EMOTIONS))):
            raise ValueError(f"last_bucket must lie in -1..{len(EMOTIONS) - 1}")
        out = np.asarray(encode_state(label, negative_streak, engagement_trend)) * N_LAST_BUCKETS + last + 1
        return out if out.ndim else int(out)
    lab = check_labels(label)
    names = np.asarray(TRUE_EMOTIONS)
    order = np.argsort(names)
    label_idx = order[np.searchsorted(names[order], lab)]
    streak = np.asarray(negative_streak)
    if np.any(streak < 0):
        raise ValueError("negative_streak must be >= 0")
    streak_b = np.minimum(streak.astype(np.int64), N_STREAK_BUCKETS - 1)
    trend = np.asarray(engagement_trend, dtype=float)
    trend_b = np.where(trend < -TREND_THRESHOLD, 0, np.where(trend > TREND_THRESHOLD, 2, 1))
    out = (label_idx * N_STREAK_BUCKETS + streak_b) * N_TREND_BUCKETS + trend_b
    out = np.asarray(out, dtype=np.int64)
    return out if out.ndim else int(out)


def decode_state(state, with_last_bucket: bool = False) -> tuple[np.ndarray, ...]:
    """(label, streak bucket 0..3, trend bucket "down"/"flat"/"up") of state indices, and
    the last served bucket (-1: none) when they are the `state_last_bucket` variant's."""
    s = np.asarray(state, dtype=np.int64)
    if with_last_bucket:
        if np.any((s < 0) | (s >= N_STATES_WITH_LAST_BUCKET)):
            raise ValueError(f"states must lie in 0..{N_STATES_WITH_LAST_BUCKET - 1}")
        return (*decode_state(s // N_LAST_BUCKETS), s % N_LAST_BUCKETS - 1)
    if np.any((s < 0) | (s >= N_STATES)):
        raise ValueError(f"states must lie in 0..{N_STATES - 1}")
    label = np.asarray(TRUE_EMOTIONS)[s // (N_STREAK_BUCKETS * N_TREND_BUCKETS)]
    streak = (s // N_TREND_BUCKETS) % N_STREAK_BUCKETS
    trend = np.asarray(TREND_BUCKETS)[s % N_TREND_BUCKETS]
    return label, streak, trend


def _transitions(states, actions, rewards, next_states, done) -> tuple[np.ndarray, ...]:
    """Flat (s, a, r, s', done) arrays of equal length; `done` may be a scalar."""
    s = np.asarray(states, dtype=np.int64).ravel()
    a = np.asarray(actions, dtype=np.int64).ravel()
    r = np.asarray(rewards, dtype=float).ravel()
    s2 = np.asarray(next_states, dtype=np.int64).ravel()
    if not (s.shape == a.shape == r.shape == s2.shape):
        raise ValueError("states, actions, rewards, next_states must have equal length")
    d = np.broadcast_to(np.asarray(done, dtype=bool), s.shape).ravel()
    return s, a, r, s2, d


class QLearningAgent:
    """Tabular Q-learning with Boltzmann exploration and a ring replay buffer.

    scikit-learn's conventions: `__init__` only stores the parameters; the Q-table, visit
    counts, temperature and replay buffer (the attributes ending in `_`) are allocated by
    `initialize`, which the first call that needs them makes."""

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        learning_rate: float = 0.1,
        discount: float = 0.95,
        temperature: float = 1.0,
        temperature_decay: float = 0.7,
        min_temperature: float = 0.05,
        replay_size: int = 10_000,
        replay_batch: int = 256,
        random_state: int = 0,
        learning_rate_decay: float | None = None,
    ):
        self.n_states = n_states
        self.n_actions = n_actions
        self.learning_rate = learning_rate
        self.discount = discount
        self.temperature = temperature
        self.temperature_decay = temperature_decay
        self.min_temperature = min_temperature
        self.replay_size = replay_size
        self.replay_batch = replay_batch
        self.random_state = random_state
        self.learning_rate_decay = learning_rate_decay

    def get_params(self) -> dict:
        """The constructor's parameters (what `from_arrays` rebuilds the agent with)."""
        return {name: getattr(self, name) for name in PARAMETERS}

    def initialize(self) -> QLearningAgent:
        """Validate the parameters and allocate an untrained agent's state (once)."""
        if hasattr(self, "q_"):
            return self
        if not (0 < self.learning_rate <= 1) or not (0 <= self.discount < 1):
            raise ValueError("need 0 < learning_rate <= 1 and 0 <= discount < 1")
        if self.temperature <= 0 or self.min_temperature <= 0 or not (0 < self.temperature_decay <= 1):
            raise ValueError("temperatures must be > 0 and 0 < temperature_decay <= 1")
        if self.replay_size < 1 or self.replay_batch < 0:
            raise ValueError("replay_size >= 1 and replay_batch >= 0 required")
        if self.learning_rate_decay is not None and not (0.5 < self.learning_rate_decay <= 1):
            raise ValueError("learning_rate_decay must be None or in (0.5, 1]")
        shape, size = (int(self.n_states), int(self.n_actions)), int(self.replay_size)
        self.q_ = np.zeros(shape)
        self.visits_ = np.zeros(shape, dtype=np.int64)
        self.temperature_ = float(self.temperature)
        self.epoch_rewards_: list[float] = []
        self.temperatures_: list[float] = []
        self.rng_ = np.random.default_rng(self.random_state)
        self._buf_s = np.zeros(size, dtype=np.int64)
        self._buf_a = np.zeros(size, dtype=np.int64)
        self._buf_r = np.zeros(size)
        self._buf_s2 = np.zeros(size, dtype=np.int64)
        self._buf_d = np.zeros(size, dtype=bool)
        self._buf_pos = 0
        self.buffer_len_ = 0
        return self

    @classmethod
    def from_arrays(cls, params: dict, q: np.ndarray, visits: np.ndarray, temperature: float) -> QLearningAgent:
        """A trained agent from its parameters, Q-table, visit counts and temperature. The
        replay buffer is not kept: a restored agent acts; it does not resume training."""
        agent = cls(**params).initialize()
        if q.shape != agent.q_.shape or visits.shape != agent.q_.shape:
            raise ValueError(f"Q-table and visits must be {agent.q_.shape}, got {q.shape} and {visits.shape}")
        agent.q_[...] = q
        agent.visits_[...] = visits
        agent.temperature_ = float(temperature)
        return agent

    # ---- acting -------------------------------------------------------------------------
    def action_probabilities(self, states) -> np.ndarray:
        """Boltzmann probabilities (len(states), n_actions) at the current temperature."""
        self.initialize()
        logits = self.q_[np.asarray(states, dtype=np.int64)] / self.temperature_
        logits = logits - logits.max(axis=1, keepdims=True)
        p = exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def act(self, states, rng: np.random.Generator | None = None) -> np.ndarray:
        """One Boltzmann-sampled action per state (one uniform draw per state, inverse CDF)."""
        self.initialize()
        rng = self.rng_ if rng is None else rng
        p = self.action_probabilities(states)
        u = rng.random(p.shape[0])
        cdf = np.cumsum(p, axis=1)
        return np.minimum((cdf < u[:, None]).sum(axis=1), self.n_actions - 1).astype(np.int64)

    def greedy(self, states) -> np.ndarray:
        """argmax_a Q(s, a); ties go to the lowest action index."""
        self.initialize()
        return self.q_[np.asarray(states, dtype=np.int64)].argmax(axis=1).astype(np.int64)

    # ---- learning -----------------------------------------------------------------------
    def update(self, states, actions, rewards, next_states, done, count_visits: bool = True) -> None:
        """Batch Q-learning update with frozen bootstrap (see module docstring). `visits_`
        counts experienced transitions only: replayed ones pass count_visits=False."""
        self.initialize()
        s, a, r, s2, d = _transitions(states, actions, rewards, next_states, done)
        if s.size == 0:
            return
        y = r + self.discount * np.where(d, 0.0, self.q_[s2].max(axis=1))
        if self.learning_rate_decay is not None:
            _decayed_update(self.q_.reshape(-1), self.visits_.reshape(-1), s * self.n_actions + a, y,
                            float(self.learning_rate_decay), count_visits)
            return
        lr = self.learning_rate
        key = s * self.n_actions + a
        order = np.argsort(key, kind="stable")  # groups by pair, batch order within a group
        ks = key[order]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        ends = np.r_[starts[1:], ks.size]
        group_end = np.repeat(ends, ends - starts)
        later = group_end - np.arange(ks.size) - 1  # occurrences after this one in its group
        contrib = lr * power(1.0 - lr, later) * y[order]
        uniq = ks[starts]
        counts = ends - starts
        flat = self.q_.reshape(-1)
        new = power(1.0 - lr, counts) * flat[uniq] + np.add.reduceat(contrib, starts)
        flat[uniq] = new
        if count_visits:
            self.visits_.reshape(-1)[uniq] += counts

    def remember(self, states, actions, rewards, next_states, done) -> None:
        """Append transitions to the ring buffer (oldest overwritten once full)."""
        self.initialize()
        s, a, r, s2, d = _transitions(states, actions, rewards, next_states, done)
        m = s.size
        if m > self.replay_size:  # only the newest replay_size survive
            self._buf_pos = (self._buf_pos + m - self.replay_size) % self.replay_size
            s, a, r, s2, d = (x[-self.replay_size:] for x in (s, a, r, s2, d))
            m = self.replay_size
        idx = (self._buf_pos + np.arange(m)) % self.replay_size
        self._buf_s[idx], self._buf_a[idx], self._buf_r[idx] = s, a, r
        self._buf_s2[idx], self._buf_d[idx] = s2, d
        self._buf_pos = int((self._buf_pos + m) % self.replay_size)
        self.buffer_len_ = min(self.buffer_len_ + m, self.replay_size)

    def replay_buffer(self) -> dict[str, np.ndarray]:
        """Stored transitions, oldest first."""
        self.initialize()
        n = self.buffer_len_
        start = self._buf_pos if n == self.replay_size else 0
        idx = (start + np.arange(n)) % self.replay_size
        return {"states": self._buf_s[idx], "actions": self._buf_a[idx], "rewards": self._buf_r[idx],
                "next_states": self._buf_s2[idx], "done": self._buf_d[idx]}

    def replay(self, rng: np.random.Generator | None = None, batch: int | None = None) -> int:
        """Update on a uniform sample (with replacement) from the buffer; returns its size."""
        self.initialize()
        rng = self.rng_ if rng is None else rng
        batch = self.replay_batch if batch is None else int(batch)
        if self.buffer_len_ == 0 or batch == 0:
            return 0
        idx = rng.integers(0, self.buffer_len_, size=batch)
        self.update(self._buf_s[idx], self._buf_a[idx], self._buf_r[idx], self._buf_s2[idx], self._buf_d[idx],
                    count_visits=False)
        return batch

    def end_epoch(self, mean_reward: float) -> None:
        """Log the epoch's mean reward and decay the temperature (floored)."""
        self.initialize()
        self.epoch_rewards_.append(float(mean_reward))
        self.temperatures_.append(self.temperature_)
        self.temperature_ = max(self.min_temperature, self.temperature_ * self.temperature_decay)

    # ---- generic loop -------------------------------------------------------------------
    def train(
        self,
        env_step: Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray]],
        initial_states,
        n_epochs: int,
        horizon: int,
        rng: np.random.Generator | None = None,
    ) -> QLearningAgent:
        """Episodic training: each epoch runs all episodes in parallel from ``initial_states``.

        ``env_step(states, actions, rng) -> (rewards, next_states, done)``; finished episodes
        stop acting.  Each step: act, step, remember, update on the step's transitions, then
        one replay batch.  The epoch's logged reward is the mean reward per transition.
        """
        self.initialize()
        rng = self.rng_ if rng is None else rng
        init = np.asarray(initial_states, dtype=np.int64)
        for _ in range(n_epochs):
            states = init.copy()
            alive = np.ones(init.shape, dtype=bool)
            total, n = 0.0, 0
            for _ in range(horizon):
                if not alive.any():
                    break
                s = states[alive]
                a = self.act(s, rng)
                r, s2, d = env_step(s, a, rng)
                r, s2, d = np.asarray(r, float), np.asarray(s2, np.int64), np.asarray(d, bool)
                self.remember(s, a, r, s2, d)
                self.update(s, a, r, s2, d)
                self.replay(rng)
                total += float(r.sum())
                n += r.size
                idx = np.flatnonzero(alive)
                states[idx] = s2
                alive[idx[d]] = False
            self.end_epoch(total / max(n, 1))
        return self


@compiled.njit()
def _decayed_update(q, visits, keys, targets, omega, count_visits):  # pragma: no cover - compiled
    """Q <- (1 - a) Q + a y in batch order with the per-visit step a = 1 / n(s, a)^omega (n
    counting this visit when it is an experienced one, not a replayed one): the step shrinks
    as a pair is learnt, as stochastic approximation needs for convergence (omega in (0.5, 1])."""
    for k in range(keys.size):
        key = keys[k]
        if count_visits:
            visits[key] += 1
        step = 1.0 / max(visits[key], 1) ** omega
        q[key] = (1.0 - step) * q[key] + step * targets[k]
