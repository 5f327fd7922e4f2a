"""The policies compared in the closed loop (DESIGN §6) and the rollout that runs one.

A policy turns the day's observation into feeds; it sees what a platform would see
(yesterday's behaviour, predicted emotions, what it showed) and never the latent truth.

- `lightgbm`: the engagement ranker alone.
- `esmr`: the hybrid. LightGBM while the user is stable; the Q-learning agent's bucket from
  the day after `rl_streak` consecutive negative-or-neutral predicted days, until a
  positive day breaks the streak (`hybrid.update_streak`).
- `esmr_no_emotion`, `esmr_no_engagement`: the same hybrid with agents trained without
  R_emo (alpha = 0) or without R_eng; `esmr_igl` with R_eng replaced by IGL-P's decoded
  reward (beyond both papers).
- `random`: a uniformly random order of the eligible videos.
- `igl_p3`, `igl_p2`, `cb_like`, `cb_comment`: bandits over the buckets that learn online
  from feedback signals (`bandits.py`): IGL-P with three and two latent states, and
  hand-engineered rewards (a like, a comment).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..settings import PolicySettings
from ..sim.environment import ClosedLoopEnv
from ..sim.rng import stream
from .bandits import BANDITS
from .feeds import ACTIONS, FeedBuilder, bucket_mask, random_feed
from .qlearning import QLearningAgent
from .rewards import engagement_reward
from .training import RewardWeights, StateTracker

#: agents trained on the hand-engineered R_eng, side by side; `esmr_igl` replaces R_eng by
#: IGL-P's decoded reward
HAND_REWARD_AGENTS = ("esmr", "esmr_no_emotion", "esmr_no_engagement")
AGENTS = (*HAND_REWARD_AGENTS, "esmr_igl")
POLICIES = ("lightgbm", *AGENTS, "random", *BANDITS)
#: Random-stream keys of the agents' exploration and of the policies' own randomness: fixed
#: numbers, so that adding a policy never changes another's draws.
POLICY_KEYS = {name: k + 1 for k, name in enumerate(
    ("lightgbm", *HAND_REWARD_AGENTS, "random", *BANDITS, "esmr_igl")
)}
_ACTION_NAMES = dict(enumerate(ACTIONS))  # -1 (no action) becomes null


def reward_weights(agent: str, settings: PolicySettings) -> RewardWeights:
    """Eq. 8's weights of one of `AGENTS`: the ablations switch one term off."""
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; choose one of {AGENTS}")
    return RewardWeights(
        engagement=0.0 if agent == "esmr_no_engagement" else 1.0,
        alpha=0.0 if agent == "esmr_no_emotion" else settings.alpha,
        beta=settings.beta,
        eta=settings.eta,
        amplification=settings.causal_amplification,
    )


def new_agent(settings: PolicySettings, n_states: int) -> QLearningAgent:
    """An untrained agent with Table 3's hyper-parameters from `settings`."""
    return QLearningAgent(
        n_states,
        len(ACTIONS),
        learning_rate=settings.learning_rate,
        discount=settings.discount,
        temperature=settings.temperature,
        temperature_decay=settings.temperature_decay,
        min_temperature=settings.min_temperature,
        replay_size=settings.replay_size,
        replay_batch=settings.replay_batch,
    )


class LightGBMPolicy:
    """The engagement ranker's feed for everyone."""

    def __init__(self, feeds: FeedBuilder) -> None:
        self.feeds = feeds

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(feed, valid, action per user; -1 where no RL action applies)."""
        feed, valid = self.feeds.build(env.observation(), env.recently_shown())
        return feed, valid, np.full(env.n_users, -1)


class RandomPolicy:
    """Each day a fresh random order, from the policy's own stream (never the users')."""

    def __init__(self, seed: int, feed_length: int) -> None:
        self.seed, self.feed_length = seed, feed_length

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = stream(self.seed, "policy", POLICY_KEYS["random"], env.episode, env.day)
        feed, valid = random_feed(env.recently_shown(), self.feed_length, rng)
        return feed, valid, np.full(env.n_users, -1)


class HybridPolicy:
    """ESMR: the agent's greedy bucket for users on an RL streak, LightGBM for the rest."""

    def __init__(self, feeds: FeedBuilder, agent: QLearningAgent, rl_streak: int) -> None:
        self.feeds, self.agent, self.rl_streak = feeds, agent, rl_streak

    def act(self, env: ClosedLoopEnv, tracker: StateTracker) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        acting = (tracker.streak >= self.rl_streak) & (env.day > 0)
        actions = np.where(acting, self.agent.greedy(tracker.states()), -1)
        boost = bucket_mask(np.maximum(actions, 0), self.feeds.video_emotion, acting)
        feed, valid = self.feeds.build(env.observation(), env.recently_shown(), boost)
        return feed, valid, actions


def satisfaction_shares(keep: pl.Expr | None = None, suffix: str = "") -> list[pl.Expr]:
    """Aggregations over `rollout` rows (those where `keep`): the shares of the impressions
    shown with latent r = +1 and with r = -1, as `positive_share<suffix>`, `negative_share<suffix>`."""
    keep = pl.lit(True) if keep is None else keep
    shown = pl.col("n_impressions").filter(keep).sum()
    return [
        (pl.col(f"{sign}_impressions").filter(keep).sum() / shown).alias(f"{sign}_share{suffix}")
        for sign in ("positive", "negative")
    ]


#: Aggregation over `rollout` rows: the share of a learner's rounds whose decoded reward had
#: the sign of the latent r (null for policies that do not learn).
DECODED_ACCURACY = (
    pl.when(pl.col("rounds").is_not_null().any())
    .then(pl.col("decoded_agree").sum() / pl.col("rounds").sum())
    .alias("decoded_accuracy")
)


def rollout(env: ClosedLoopEnv, policy, name: str) -> pl.DataFrame:
    """All days of `env`'s cohort under `policy`: one row per user-day with whether RL
    acted, the served bucket and top video, the observed engagement and its reward R_eng,
    the predicted label and, for evaluation only, the latent truth: the emotion, the valence
    and the impressions with latent satisfaction r = +1 and r = -1. A policy that learns
    online (a bandit) learns after each day and reports its rounds and how many of their
    decoded rewards had the sign of r; the others leave those null."""
    tracker = StateTracker(env.n_users)
    env.reset()
    frames = []
    learns = hasattr(policy, "learn")
    while not env.done:
        feed, valid, actions = policy.act(env, tracker)
        step = env.step(feed, valid)
        tracker.observe(step)
        learned = policy.learn(step) if learns else None
        frames.append(
            step.logs.select(
                pl.lit(name).alias("policy"),
                "user_id",
                "day",
                pl.Series("rl_active", actions >= 0),
                pl.Series("action", actions).replace_strict(_ACTION_NAMES, default=None, return_dtype=pl.String),
                pl.Series("top_video", np.where(valid[:, 0], feed[:, 0], -1).astype(np.int32)),
                "watch_minutes",
                "scroll_minutes",
                "n_impressions",
                pl.Series("r_eng", engagement_reward(step.logs["watch_minutes"], step.logs["scroll_minutes"])),
                pl.Series("predicted_label", step.predicted.astype(str)),
                pl.col("true_emotion").cast(pl.String),
                "true_valence",
                pl.Series("positive_impressions", np.bincount(step.rows[step.satisfaction == 1], minlength=env.n_users)),
                pl.Series("negative_impressions", np.bincount(step.rows[step.satisfaction == -1], minlength=env.n_users)),
                *(
                    pl.Series(key, [None] * env.n_users if learned is None else learned[key], dtype=pl.Int64)
                    for key in ("rounds", "decoded_agree")
                ),
            )
        )
    return pl.concat(frames)
