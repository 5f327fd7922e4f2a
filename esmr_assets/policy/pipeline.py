"""Phase III end to end, from the stored tables: fit the ranker, split the users, train the
agents. The assets call these; so do the benchmarks and tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..causal.discovery import POOLED_USER
from ..emotion.features import PREVIOUS_LABELS
from ..settings import PROFILES, PolicySettings, Settings
from ..sim.environment import ClosedLoopEnv
from ..sim.rng import stream
from .bandits import BANDITS, BanditPolicy, DecodedEngagement, new_learner
from .feeds import ACTIONS, FeedBuilder, video_popularity
from .igl import IGLLearner
from .policies import (
    AGENTS,
    DECODED_ACCURACY,
    HAND_REWARD_AGENTS,
    POLICIES,
    POLICY_KEYS,
    HybridPolicy,
    LightGBMPolicy,
    RandomPolicy,
    new_agent,
    reward_weights,
    rollout,
    satisfaction_shares,
)
from .qlearning import N_STATES, QLearningAgent, decode_state
from .ranker import EngagementRanker
from .rewards import parent_weight_matrix
from .training import DAY_FEATURES, RewardModel, RewardWeights, train_agents


def fit_ranker(
    impressions: pl.DataFrame | pl.LazyFrame,
    logs: pl.DataFrame,
    predictions: pl.DataFrame,
    videos: pl.DataFrame,
    users: pl.DataFrame,
    settings: Settings,
    seed: int,
) -> EngagementRanker:
    policy = settings.policy
    return EngagementRanker(
        random_state=seed,
        n_estimators=policy.ranker_max_trees,
        learning_rate=policy.ranker_learning_rate,
        num_leaves=policy.ranker_num_leaves,
        early_stopping_rounds=policy.ranker_early_stopping_rounds,
        max_users=policy.ranker_max_users,
    ).fit(impressions, logs, predictions, videos, users)


def policy_split(users: pl.DataFrame, seed: int, policy: PolicySettings) -> tuple[np.ndarray, np.ndarray]:
    """(training user ids, evaluation user ids): a seeded, disjoint split of `users`. The
    `evaluation_share` held out is capped at `max_evaluation_users`; at most
    `training_users` of the others train the agents."""
    ids = np.sort(users["user_id"].to_numpy())
    shuffled = stream(seed, "policy", 0).permutation(ids)
    n_held_out = max(1, round(policy.evaluation_share * ids.size))
    if n_held_out >= ids.size:
        raise ValueError(f"{ids.size} users cannot be split into training and evaluation users")
    n_eval = min(n_held_out, policy.max_evaluation_users or n_held_out)
    return np.sort(shuffled[n_held_out:][: policy.training_users]), np.sort(shuffled[:n_eval])


def feed_builder(ranker: EngagementRanker, impressions: pl.DataFrame | pl.LazyFrame, settings: Settings) -> FeedBuilder:
    return FeedBuilder(
        ranker,
        video_popularity(impressions, ranker.video_ids_.size),
        settings.simulation.feed_length,
        settings.policy.candidates,
    )


def causal_weights(user_causal_parents: pl.DataFrame, user_ids: np.ndarray, settings: Settings) -> np.ndarray:
    """(len(user_ids), len(DAY_FEATURES)) lambda_f per user: from each user's own DAG, or
    from the one pooled DAG for everybody when `causal.method` is "pooled"."""
    if settings.causal.method == "pooled":
        pooled = parent_weight_matrix(user_causal_parents, [POOLED_USER], DAY_FEATURES)
        return np.repeat(pooled, len(user_ids), axis=0)
    return parent_weight_matrix(user_causal_parents, user_ids.tolist(), DAY_FEATURES)


def q_table_frame(agents: dict[str, QLearningAgent]) -> pl.DataFrame:
    """One row per agent, state and action: the state's parts, Q and the visit count."""
    states = np.repeat(np.arange(N_STATES), len(ACTIONS))
    label, streak, trend = decode_state(states)
    frames = [
        pl.DataFrame(
            {
                "agent": name,
                "state": states.astype(np.int16),
                "label": label,
                "streak": streak.astype(np.int8),
                "trend": trend,
                "action": np.tile(np.asarray(ACTIONS), N_STATES),
                "q": agent.q_.ravel(),
                "visits": agent.visits_.ravel(),
            }
        )
        for name, agent in agents.items()
    ]
    return pl.concat(frames)


@dataclass(frozen=True)
class AgentTraining:
    agents: dict[str, QLearningAgent]
    history: pl.DataFrame  # agent, epoch, temperature, mean_reward, mean_r_eng, ..., states_visited
    q_table: pl.DataFrame
    training_users: np.ndarray
    evaluation_users: np.ndarray
    seconds: float


def fit_agents(
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.DataFrame | pl.LazyFrame,
    user_causal_parents: pl.DataFrame,
    ranker: EngagementRanker,
    emotion_model,
    settings: Settings,
    seed: int,
    log: Callable[[str], None] = lambda message: None,
    igl_learner: IGLLearner | None = None,
) -> AgentTraining:
    """Train the ESMR agent and its two ablations on the training users, side by side: the
    cohort holds one copy of the training users per agent (user ids offset per copy). With
    IGL-P's learner, `esmr_igl` follows on its own copy, its R_eng the decoded reward."""
    policy = settings.policy
    training_users, evaluation_users = policy_split(users, seed, policy)
    base = users.filter(pl.col("user_id").is_in(training_users)).sort("user_id")
    stride = int(users["user_id"].max()) + 1
    names = HAND_REWARD_AGENTS
    cohort = pl.concat([base.with_columns(pl.col("user_id") + k * stride) for k in range(len(names))])
    lam = causal_weights(user_causal_parents, base["user_id"].to_numpy(), settings)
    weights = RewardWeights.stack([reward_weights(name, policy) for name in names], base.height)
    rewards = RewardModel(np.tile(lam, (len(names), 1)), weights)
    feeds = feed_builder(ranker, impressions, settings)

    def env_of(users_: pl.DataFrame) -> Callable[[int], ClosedLoopEnv]:
        return lambda episode: ClosedLoopEnv(videos, users_, settings.simulation, seed, emotion_model, episode=episode)

    def report(row: dict) -> None:
        log(
            f"{row['agent']} epoch {row['epoch']}/{policy.epochs}: mean reward {row['mean_reward']:.3f}, "
            f"temperature {row['temperature']:.2f}, states visited {row['states_visited']:.0%}"
        )

    agents = {name: new_agent(policy, N_STATES) for name in names}
    rngs = {name: stream(seed, "policy", POLICY_KEYS[name]) for name in names}
    start = time.perf_counter()
    history = train_agents(env_of(cohort), feeds, rewards, agents, rngs, policy.epochs, on_epoch=report)
    if igl_learner is not None:
        agents["esmr_igl"] = new_agent(policy, N_STATES)
        decoded = RewardModel(lam, reward_weights("esmr_igl", policy), DecodedEngagement(igl_learner, feeds.video_emotion))
        history = pl.concat([history, train_agents(
            env_of(base), feeds, decoded, {"esmr_igl": agents["esmr_igl"]},
            {"esmr_igl": stream(seed, "policy", POLICY_KEYS["esmr_igl"])}, policy.epochs, on_epoch=report,
        )])
    return AgentTraining(
        agents=agents,
        history=history,
        q_table=q_table_frame(agents),
        training_users=training_users,
        evaluation_users=evaluation_users,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class BanditTraining:
    learners: dict  # name -> IGLLearner or HandRewardLearner
    history: pl.DataFrame  # policy, epoch, rounds, decoded_accuracy, positive_share, negative_share
    seconds: float


def fit_bandits(
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.DataFrame | pl.LazyFrame,
    ranker: EngagementRanker,
    emotion_model,
    settings: Settings,
    seed: int,
    log: Callable[[str], None] = lambda message: None,
) -> BanditTraining:
    """The bandits of `BANDITS` trained online on the training users (the Q-learning
    agents' users), `igl_epochs` passes over fresh episodes of the environment each."""
    policy = settings.policy
    training_users, _ = policy_split(users, seed, policy)
    cohort = users.filter(pl.col("user_id").is_in(training_users)).sort("user_id")
    feeds = feed_builder(ranker, impressions, settings)
    learners = {name: new_learner(name, policy, seed) for name in BANDITS}
    rows = []
    start = time.perf_counter()
    for name, learner in learners.items():
        bandit = BanditPolicy(feeds, learner, stream(seed, "policy", POLICY_KEYS[name], 1))
        for epoch in range(1, policy.igl_epochs + 1):
            env = ClosedLoopEnv(videos, cohort, settings.simulation, seed, emotion_model, episode=epoch)
            summary = rollout(env, bandit, name).select(
                pl.col("rounds").sum(), DECODED_ACCURACY, *satisfaction_shares()
            )
            rows.append({"policy": name, "epoch": epoch, **summary.row(0, named=True)})
            log(f"{name} epoch {epoch}/{policy.igl_epochs}: decoded-reward sign accuracy "
                f"{rows[-1]['decoded_accuracy']:.3f}, r=+1 share {rows[-1]['positive_share']:.3f}")
    return BanditTraining(learners, pl.DataFrame(rows), time.perf_counter() - start)


def bandit_table(learners: dict) -> pl.DataFrame:
    """Each bandit's learned policy: one row per bandit, action and context feature with the
    coefficient of its reward estimate (the greedy action maximises their sum)."""
    features = [f"previous_label={c}" for c in PREVIOUS_LABELS] + [f"profile={p}" for p in PROFILES] + ["constant"]
    return pl.concat(
        pl.DataFrame({
            "policy": name,
            "action": np.repeat(np.asarray(ACTIONS), len(features)),
            "feature": np.tile(features, len(ACTIONS)),
            "coef": learner.bandit.coef_.ravel(),
        })
        for name, learner in learners.items()
    )


def agents_from_q_table(q_table: pl.DataFrame, settings: Settings) -> dict[str, QLearningAgent]:
    """The stored agents, ready to act greedily (Q and visits restored)."""
    agents = {}
    for name in (name for name in AGENTS if name in q_table["agent"]):
        rows = q_table.filter(pl.col("agent") == name).sort("state", "action")
        if rows.height != N_STATES * len(ACTIONS):
            raise ValueError(f"q_table holds {rows.height} rows for agent {name!r}, expected {N_STATES * len(ACTIONS)}")
        order = {a: k for k, a in enumerate(ACTIONS)}
        action = rows["action"].replace_strict(order, return_dtype=pl.Int64).to_numpy()
        state = rows["state"].to_numpy()
        agent = new_agent(settings.policy, N_STATES)
        agent.q_[state, action] = rows["q"].to_numpy()
        agent.visits_[state, action] = rows["visits"].to_numpy()
        agents[name] = agent
    return agents


def run_rollouts(
    videos: pl.DataFrame,
    users: pl.DataFrame,
    impressions: pl.DataFrame | pl.LazyFrame,
    ranker: EngagementRanker,
    emotion_model,
    agents: dict[str, QLearningAgent],
    settings: Settings,
    seed: int,
    log: Callable[[str], None] = lambda message: None,
    learners: dict | None = None,
) -> pl.DataFrame:
    """Every policy of `POLICIES` over the evaluation users' whole horizon, each from the
    same start with the same noise (episode 0): common random numbers, so differences
    between the policies' rows are the policies' doing."""
    _, evaluation_users = policy_split(users, seed, settings.policy)
    cohort = users.filter(pl.col("user_id").is_in(evaluation_users)).sort("user_id")
    feeds = feed_builder(ranker, impressions, settings)
    policies = {
        "lightgbm": LightGBMPolicy(feeds),
        **{name: HybridPolicy(feeds, agents[name], settings.policy.rl_streak) for name in AGENTS if name in agents},
        "random": RandomPolicy(seed, settings.simulation.feed_length),
        **{name: BanditPolicy(feeds, learner, stream(seed, "policy", POLICY_KEYS[name], 0))
           for name, learner in (learners or {}).items()},
    }
    frames = []
    for name in (name for name in POLICIES if name in policies):
        start = time.perf_counter()
        env = ClosedLoopEnv(videos, cohort, settings.simulation, seed, emotion_model, episode=0)
        frames.append(rollout(env, policies[name], name))
        log(f"{name}: {cohort.height} users x {settings.simulation.n_days} days in {time.perf_counter() - start:.1f} s")
    return pl.concat(frames)
