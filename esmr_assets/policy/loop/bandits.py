"""Contextual bandits over the video-emotion buckets that learn online from the feedback
signals of what they serve (issue 8): IGL-P with three and with two latent states, and
bandits on hand-engineered rewards, a like (`cb_like`) or a comment (`cb_comment`), the
analogues of the IGL-P paper's CB-emoji and CB-comment.

Every user-day the bandit draws a bucket (epsilon-greedy, so P(a|x) is known) that leads the
user's feed; every impression of that bucket is one round (x, a, y). The decision context x
is what a platform sees before serving: yesterday's predicted emotion and the profile, and
with `policy.bandit_context = "personal"` also the user's own mix of feedback signals so far,
so that a bandit can serve communication styles differently without being told them. The
inverse-kinematics model is personalised through c, that same mix: it differs between
communication styles without naming them, so a decoder learned on the training users
carries over to new ones. Learning continues online in evaluation, as a deployed bandit's
would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ...core.rng import stream
from ...core.settings import PolicySettings
from ...core.vocabulary import PREVIOUS_LABELS, PROFILES, SIGNALS
from ...sim.environment import ClosedLoopEnv, DayStep
from ..learners.igl import IGLLearner, InverseKinematics
from ..learners.linear_bandit import LinearBandit
from . import registry
from .feeds import ACTIONS, FeedBuilder, bucket_mask

if TYPE_CHECKING:
    from .registry import PolicySpec
    from .rollouts import Artifacts

#: the shared decision context's features, in column order
SHARED_FEATURES = (*(f"previous_label={c}" for c in PREVIOUS_LABELS), *(f"profile={p}" for p in PROFILES), "constant")
#: what the personal context adds: the user's smoothed share of each feedback signal so far
PERSONAL_FEATURES = tuple(f"signal_share={s}" for s in SIGNALS)
N_CONTEXT = len(SHARED_FEATURES)
N_PERSONAL = len(SIGNALS) + 1
NOT_INTERESTED = SIGNALS.index("not_interested")


def context_features(kind: str) -> tuple[str, ...]:
    """The decision context's feature names for `policy.bandit_context` = `kind`."""
    return SHARED_FEATURES + (PERSONAL_FEATURES if kind == "personal" else ())


def decision_context(predicted_label, profile: pl.Series, signal_shares: np.ndarray | None = None) -> np.ndarray:
    """(n, features): one-hot predicted label of yesterday (names in PREVIOUS_LABELS),
    one-hot profile, a constant; then, for the personal context, each user's signal shares
    (`SignalMix.shares`). Columns as `context_features` names them."""
    label = pl.Series(predicted_label).cast(pl.String).cast(pl.Enum(PREVIOUS_LABELS)).to_physical().to_numpy()
    codes = profile.cast(pl.Enum(PROFILES)).to_physical().to_numpy()
    shared = [np.eye(len(PREVIOUS_LABELS))[label], np.eye(len(PROFILES))[codes], np.ones(len(label))]
    return np.column_stack(shared if signal_shares is None else [*shared, signal_shares])


class SignalMix:
    """Each user's feedback signals so far; `shares()` are their smoothed shares, `context()`
    those plus a constant (the inverse-kinematics model's c)."""

    def __init__(self, n_users: int) -> None:
        self.counts = np.zeros((n_users, len(SIGNALS)))

    def shares(self, rows: np.ndarray | None = None) -> np.ndarray:
        counts = self.counts if rows is None else self.counts[rows]
        return (counts + 1.0) / (counts.sum(axis=1, keepdims=True) + len(SIGNALS))

    def context(self, rows: np.ndarray | None = None) -> np.ndarray:
        shares = self.shares(rows)
        return np.column_stack([shares, np.ones(len(shares))])

    def observe(self, step: DayStep) -> None:
        np.add.at(self.counts, (step.rows, step.feedback.astype(np.int64)), 1.0)


class HandRewardLearner:
    """A bandit whose reward is 1 when the round's signal is `signal`: a hand-engineered
    reward, the same for every user."""

    def __init__(self, bandit: LinearBandit, signal: str) -> None:
        self.bandit, self.signal = bandit, SIGNALS.index(signal)

    def act(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.bandit.sample(x, rng)

    def learn(self, c, x, y, actions, probabilities) -> np.ndarray:
        reward = (np.asarray(y) == self.signal).astype(np.float64)
        self.bandit.learn(x, actions, reward)
        return reward


def new_learner(name: str, settings: PolicySettings, seed: int) -> IGLLearner | HandRewardLearner:
    """An untrained learner of the bandit `name` (a registry entry with a learner)."""
    learner = registry.spec(name).learner
    if learner is None:
        raise ValueError(f"{name!r} is not a bandit; choose one of {registry.BANDITS}")
    n_context = len(context_features(settings.bandit_context))
    bandit = LinearBandit(len(ACTIONS), n_context, ridge=1.0, epsilon=settings.bandit_epsilon)
    if learner.kind == "hand":
        return HandRewardLearner(bandit, learner.signal)
    ik = InverseKinematics(len(ACTIONS), len(SIGNALS), N_PERSONAL, n_context, learning_rate=settings.igl_learning_rate,
                           random_state=seed)
    return IGLLearner(bandit, ik, three_state=learner.three_state, alpha=settings.igl_alpha,
                      negative_signal=NOT_INTERESTED)


class BanditPolicy:
    """Serves each user the bucket its learner draws and learns from the bucket's rounds;
    `context` is `policy.bandit_context`."""

    def __init__(self, feeds: FeedBuilder, learner, rng: np.random.Generator, context: str = "shared") -> None:
        self.feeds, self.learner, self.rng, self.context = feeds, learner, rng, context
        self.mix: SignalMix | None = None

    @classmethod
    def from_artifacts(cls, artifacts: Artifacts, spec: PolicySpec) -> BanditPolicy | None:
        """The stored learner, exploring from the policy's own evaluation stream."""
        learner = artifacts.learners.get(spec.name)
        if learner is None:
            return None
        return cls(artifacts.feeds, learner, stream(artifacts.seed, "policy", spec.stream_key, 0),
                   artifacts.settings.policy.bandit_context)

    def act(self, env: ClosedLoopEnv, tracker=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.mix is None or env.day == 0:
            self.mix = SignalMix(env.n_users)
        observation = env.observation()
        shares = self.mix.shares() if self.context == "personal" else None
        self._x = decision_context(observation["predicted_label"], observation["profile"], shares)
        self._actions, self._p = self.learner.act(self._x, self.rng)
        boost = bucket_mask(self._actions, self.feeds.video_emotion)
        feed, valid = self.feeds.build(observation, env.recently_shown(), boost)
        return feed, valid, self._actions

    def rounds(self, step: DayStep) -> tuple[np.ndarray, ...]:
        """Today's rounds, the impressions of each user's own bucket: their user rows, x,
        bucket and signal y, and (for evaluation only, never learned from) the latent r."""
        in_bucket = self.feeds.video_emotion[step.videos] == self._actions[step.rows]
        rows = step.rows[in_bucket]
        return (rows, self._x[rows], self._actions[rows], step.feedback[in_bucket].astype(np.int64),
                step.satisfaction[in_bucket])

    def learn(self, step: DayStep) -> dict[str, np.ndarray]:
        """Learn from today's rounds. Returns per user the rounds, and how many decoded
        rewards had the sign of the latent r."""
        n = len(self._actions)
        rows, x, actions, y, satisfaction = self.rounds(step)
        reward = np.zeros(0)
        if rows.size:
            reward = self.learner.learn(self.mix.context(rows), x, y, actions, self._p[rows])
        self.mix.observe(step)
        agree = np.sign(reward) == satisfaction
        return {
            "rounds": np.bincount(rows, minlength=n),
            "decoded_agree": np.bincount(rows, weights=agree.astype(np.float64), minlength=n).astype(np.int64),
        }


class DecodedEngagement:
    """R_eng for `esmr_igl`: the day's mean IGL-P decoded reward over the user's impressions
    (each decoded with its video's bucket as the action) instead of the hand-engineered
    watch/scroll ratio. Called as RewardModel's engagement term, day after day of one
    episode; the decoder is frozen (it was learned by the IGL-P bandit, whose decision
    `context` it rebuilds)."""

    def __init__(self, learner: IGLLearner, video_emotion: np.ndarray, context: str = "shared") -> None:
        self.learner, self.video_emotion, self.context = learner, np.asarray(video_emotion), context
        self.mix: SignalMix | None = None

    def __call__(self, previous: DayStep, step: DayStep) -> np.ndarray:
        n = len(step.predicted)
        if self.mix is None or previous.day == 0:
            self.mix = SignalMix(n)
            self.mix.observe(previous)
        shares = self.mix.shares() if self.context == "personal" else None
        x = decision_context(np.asarray(previous.predicted).astype(str), step.logs["profile"], shares)
        rows = step.rows
        decoded = np.zeros(0)
        if rows.size:
            decoded = self.learner.decode(self.mix.context(rows), x[rows], step.feedback.astype(np.int64),
                                          self.video_emotion[step.videos])
        self.mix.observe(step)
        return np.bincount(rows, weights=decoded, minlength=n) / np.maximum(np.bincount(rows, minlength=n), 1)
