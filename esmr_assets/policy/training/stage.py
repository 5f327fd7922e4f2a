"""The policy stage's training, from the stored tables: fit the ranker, train the hybrid
policies' Q-learning agents and the bandits. The assets call these; so do the benchmarks
and tests. Which agents and bandits there are, and what each learns from, comes from
`registry.POLICIES`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from ...core import parallel
from ...core.rng import stream
from ...core.settings import PolicySettings, Settings
from ...core.vocabulary import NEGATIVE
from ...emotion.estimators import reads_latent
from ...sim.environment import ClosedLoopEnv
from ..learners.qlearning import N_STATES, N_STATES_WITH_LAST_BUCKET, QLearningAgent, decode_state
from ..learners.ranker import EngagementRanker
from ..loop import registry
from ..loop.agent_day import train_agents
from ..loop.bandits import BanditPolicy, DecodedEngagement, context_features, new_learner
from ..loop.feeds import ACTIONS
from ..loop.inputs import LoopInputs, LoopState
from ..loop.policies import FixedBucketPolicy
from ..loop.registry import AgentSpec
from ..loop.rollouts import DECODED_ACCURACY, labeller_for, rollout, satisfaction_shares
from ..loop.users import policy_split, split_sizes
from ..rewards import RewardModel, RewardWeights, causal_weights
from .models import AgentSet, BanditLearners


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


def reward_weights(agent: str, settings: PolicySettings) -> RewardWeights:
    """Eq. 8's weights of the agent of the hybrid policy `agent`: its `AgentSpec` switches
    terms off."""
    spec = registry.spec(agent).agent
    if spec is None:
        raise ValueError(f"{agent!r} has no Q-learning agent; choose one of {registry.AGENTS}")
    return RewardWeights.from_settings(settings, engagement=spec.engagement != "none", emotion=spec.emotion)


#: Training replicates live in environment episodes from here on: their training noise is
#: their own (episode 0 is evaluation, 1 .. epochs the other agents' training).
REPLICA_EPISODES = 1_000


def agent_stream(seed: int, name: str) -> np.random.Generator:
    """The exploration and replay stream of the agent of policy `name`: its registry key, and
    for a training replicate r >= 1 (`esmr@r`) the key and r."""
    key = registry.spec(registry.base_name(name)).stream_key
    replicate = name[len(registry.base_name(name)) + 1:]
    return stream(seed, "policy", key) if not replicate else stream(seed, "policy", key, int(replicate))


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
        learning_rate_decay=settings.learning_rate_decay,
    )


def q_table_frame(agents: Mapping[str, QLearningAgent], latent: bool = False) -> pl.DataFrame:
    """One row per agent, state and action: the state's parts (with the last served bucket,
    `last_bucket`, null unless the agent's state has it), Q and the visit count. `oracle`
    marks the agents of `oracle_*` policies, and every agent when they learnt on the latent
    truth (`latent`: the `oracle` emotion source)."""

    def frame(name: str, agent: QLearningAgent) -> pl.DataFrame:
        with_last = agent.n_states == N_STATES_WITH_LAST_BUCKET
        states = np.repeat(np.arange(agent.n_states), len(ACTIONS))
        label, streak, trend, *last = decode_state(states, with_last)
        last_bucket = pl.repeat(None, states.size, dtype=pl.String, eager=True)
        if with_last:  # -1, no bucket served, stays null
            served = pl.Series(np.asarray(ACTIONS)[np.maximum(last[0], 0)])
            last_bucket = served.zip_with(pl.Series(last[0] >= 0), last_bucket)
        return pl.DataFrame(
            {
                "agent": name,
                "oracle": latent or registry.is_oracle(name),
                "state": states.astype(np.int16),
                "label": label,
                "streak": streak.astype(np.int8),
                "trend": trend,
                "last_bucket": last_bucket,
                "action": np.tile(np.asarray(ACTIONS), agent.n_states),
                "q": agent.initialize().q_.ravel(),
                "visits": agent.visits_.ravel(),
            }
        )

    return pl.concat([frame(name, agent) for name, agent in agents.items()])


@dataclass(frozen=True)
class AgentTraining:
    agents: AgentSet
    history: pl.DataFrame  # agent, epoch, temperature, mean_reward, mean_r_eng, ..., states_visited
    q_table: pl.DataFrame
    training_users: np.ndarray
    evaluation_users: np.ndarray
    seconds: float


@dataclass
class _AgentState(LoopState):
    """What each cohort of agents trains from: the loop's inputs, each training user's causal
    weights, and the bandits whose decoded rewards some agents learn from."""

    lam: np.ndarray | None = None
    learners: Mapping | None = None


def _train_cohort(state: _AgentState, job: tuple[str, tuple[str, ...]]) -> tuple[dict, pl.DataFrame, list[str]]:
    """One cohort of agents trained together on copies of the training users: `together` (the
    side-by-side agents), `single` (an agent on its own) or `replicates` (an agent's training
    replicates 1 .. K-1, on episodes no other agent sees). Returns (agents, learning curve,
    log lines)."""
    kind, names = job
    inputs, settings, seed = state.inputs, state.inputs.settings, state.inputs.seed
    policy = settings.policy
    base = state.cohort("training")
    stride = int(inputs.users["user_id"].max()) + 1
    feeds, lam, learners = state.feed_builder(), state.lam, parallel.fresh(state.learners or {})
    timing = policy.reward_timing
    specs = [registry.spec(registry.base_name(name)) for name in names]
    if len({spec.labels for spec in specs}) != 1:
        raise ValueError(f"agents trained side by side must see the same labels: {list(names)}")

    def engagement_of(spec: AgentSpec):
        if spec.engagement != "decoded":
            return None
        return DecodedEngagement(learners[spec.decoder], feeds.video_emotion, policy.bandit_context)

    if kind == "together":
        weights = RewardWeights.stack([reward_weights(name, policy) for name in names], base.height)
        rewards = RewardModel(np.tile(lam, (len(names), 1)), weights, timing=timing)
    elif kind == "single":
        rewards = RewardModel(lam, reward_weights(names[0], policy), engagement_of(specs[0].agent), timing=timing)
    else:
        weights = RewardWeights.stack([reward_weights(specs[0].name, policy)] * len(names), base.height)
        rewards = RewardModel(np.tile(lam, (len(names), 1)), weights, engagement_of(specs[0].agent), timing=timing)
    messages: list[str] = []

    def report(row: dict) -> None:
        messages.append(f"{row['agent']} epoch {row['epoch']}/{policy.epochs}: mean reward {row['mean_reward']:.3f}, "
                        f"temperature {row['temperature']:.2f}, states visited {row['states_visited']:.0%}")

    stacked = pl.concat([base.with_columns(pl.col("user_id") + k * stride) for k in range(len(names))])
    offset = REPLICA_EPISODES if kind == "replicates" else 0  # replicates train on days no other agent sees

    def env(episode: int) -> ClosedLoopEnv:
        return ClosedLoopEnv(inputs.videos, stacked, settings.simulation, seed,
                             labeller_for(specs[0], inputs.emotion_model), episode=episode + offset)

    agents = {name: new_agent(policy, N_STATES_WITH_LAST_BUCKET if policy.state_last_bucket else N_STATES)
              for name in names}
    rngs = {name: agent_stream(seed, name) for name in names}
    history = train_agents(env, feeds, rewards, agents, rngs, policy.epochs, on_epoch=report)
    return agents, history, messages


def fit_agents(
    inputs: LoopInputs,
    user_causal_parents: pl.DataFrame,
    log: Callable[[str], None] = lambda message: None,
    learners: Mapping | None = None,
) -> AgentTraining:
    """Train the agents of the registry's hybrid policies on the training users, in registry
    order: the `side_by_side` ones together, one copy of the training users per agent (user
    ids offset per copy), then each other agent on its own copy, then the training replicates
    1 .. K-1 of each of `policy.replicated_agents` together in a cohort of their own, on
    environment episodes no other agent sees. An agent whose R_eng is a bandit's decoded
    reward trains only when that bandit's learner is given. Agents come in
    `registry.with_replicates` order; the learning curve in training order. Each cohort is a
    job, in parallel processes when the work is worth it (`core.parallel`)."""
    settings, seed = inputs.settings, inputs.seed
    policy = settings.policy
    training_users, evaluation_users = policy_split(inputs.users, seed, policy)
    learners = learners or {}
    state = _AgentState(inputs, learners=learners)
    state.lam = causal_weights(user_causal_parents, state.cohort("training")["user_id"].to_numpy(), settings)
    together = tuple(name for name in registry.AGENTS if registry.spec(name).agent.side_by_side)
    jobs: list[tuple[str, tuple[str, ...]]] = [("together", together)] if together else []
    for name in registry.AGENTS:
        spec = registry.spec(name).agent
        if spec.side_by_side or (spec.engagement == "decoded" and spec.decoder not in learners):
            continue
        jobs.append(("single", (name,)))
    trained = {name for _, names in jobs for name in names}
    # Replicates 1 .. K-1 of an agent: one cohort of their own, so they change no other agent.
    for name in (n for n in registry.AGENTS if n in trained and n in policy.replicated_agents):
        names = tuple(registry.replicate_name(name, r) for r in range(1, policy.agent_replicates))
        if names:
            jobs.append(("replicates", names))
    work = sum(len(names) for _, names in jobs) * policy.epochs * training_users.size * settings.simulation.n_days
    start = time.perf_counter()
    agents: dict[str, QLearningAgent] = {}
    histories = []
    results = parallel.map_jobs(_train_cohort, state, jobs, parallel.workers(work), [len(n) for _, n in jobs])
    for trained_agents, history, messages in results:
        agents.update(trained_agents)
        histories.append(history)
        for message in messages:
            log(message)
    order = [spec.name for spec in registry.with_replicates(policy.replicated_agents, policy.agent_replicates)]
    agents = {name: agents[name] for name in order if name in agents}
    history = pl.concat(histories)
    latent = reads_latent(inputs.emotion_model)
    oracle = pl.Series("oracle", [latent or registry.is_oracle(name) for name in history["agent"]], dtype=pl.Boolean)
    history = history.select("agent", oracle, pl.exclude("agent"))
    return AgentTraining(
        agents=AgentSet(agents),
        history=history,
        q_table=q_table_frame(agents, latent),
        training_users=training_users,
        evaluation_users=evaluation_users,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class BanditTraining:
    learners: BanditLearners
    history: pl.DataFrame  # policy, epoch, rounds, decoded_accuracy, positive_share, negative_share
    seconds: float


def _fit_bandit(state: LoopState, name: str) -> tuple[object, list[dict], list[str]]:
    """One bandit's `igl_epochs` passes over the training users: (learner, its rows, its log lines)."""
    inputs, settings, seed = state.inputs, state.inputs.settings, state.inputs.seed
    policy = settings.policy
    trained = state.cohort("training")
    learner = new_learner(name, policy, seed)
    bandit = BanditPolicy(state.feed_builder(), learner, stream(seed, "policy", registry.spec(name).stream_key, 1),
                          policy.bandit_context)
    rows, messages = [], []
    for epoch in range(1, policy.igl_epochs + 1):
        labeller = labeller_for(registry.spec(name), inputs.emotion_model)
        env = ClosedLoopEnv(inputs.videos, trained, settings.simulation, seed, labeller, episode=epoch)
        summary = rollout(env, bandit, name).select(pl.col("rounds").sum(), DECODED_ACCURACY, *satisfaction_shares())
        rows.append({"policy": name, "epoch": epoch, **summary.row(0, named=True)})
        messages.append(f"{name} epoch {epoch}/{policy.igl_epochs}: decoded-reward sign accuracy "
                        f"{rows[-1]['decoded_accuracy']:.3f}, r=+1 share {rows[-1]['positive_share']:.3f}")
    return learner, rows, messages


def fit_bandits(
    inputs: LoopInputs,
    log: Callable[[str], None] = lambda message: None,
) -> BanditTraining:
    """The registry's bandits trained online on the training users (the Q-learning
    agents' users), `igl_epochs` passes over fresh episodes of the environment each; each
    bandit is a job of its own, in parallel processes when the work is worth it."""
    settings = inputs.settings
    policy = settings.policy
    _, n_training, _ = split_sizes(inputs.users.height, policy)
    names = list(registry.BANDITS)
    work = len(names) * policy.igl_epochs * n_training * settings.simulation.n_days
    start = time.perf_counter()
    learners, rows = {}, []
    for name, (learner, mine, messages) in zip(
            names, parallel.map_jobs(_fit_bandit, LoopState(inputs), names, parallel.workers(work))):
        learners[name] = learner
        rows += mine
        for message in messages:
            log(message)
    return BanditTraining(BanditLearners(learners), pl.DataFrame(rows), time.perf_counter() - start)


def bandit_table(learners: Mapping, context: str = "shared") -> pl.DataFrame:
    """Each bandit's learned policy: one row per bandit, action and context feature (of the
    `policy.bandit_context` kind) with the coefficient of its reward estimate (the greedy
    action maximises their sum)."""
    features = context_features(context)
    return pl.concat(
        pl.DataFrame({
            "policy": name,
            "action": np.repeat(np.asarray(ACTIONS), len(features)),
            "feature": np.tile(features, len(ACTIONS)),
            "coef": learner.bandit.initialize().coef_.ravel(),
        })
        for name, learner in learners.items()
    )


def _bucket_negative_days(state: LoopState, job: tuple[str, str]) -> float:
    """Mean predicted negative days per training user under heuristic `name` with `bucket`."""
    name, bucket = job
    inputs, settings, seed = state.inputs, state.inputs.settings, state.inputs.seed
    trained_on = state.cohort("training")
    spec = registry.spec(name)
    env = ClosedLoopEnv(inputs.videos, trained_on, settings.simulation, seed,
                        labeller_for(spec, inputs.emotion_model), episode=1)
    frame = rollout(env, FixedBucketPolicy.with_bucket(state.feed_builder(), spec, bucket, settings.policy), name)
    return float(frame["predicted_label"].is_in(list(NEGATIVE)).sum() / trained_on.height)


def choose_heuristic_buckets(
    inputs: LoopInputs,
) -> pl.DataFrame:
    """For each heuristic whose bucket is chosen (`registry.CHOSEN_HEURISTICS`): every bucket
    run under the heuristic's rule on the training users (the environment's episode 1, the
    emotion model's labels), their mean predicted negative days, and which bucket is chosen:
    the fewest (ties: the first in ACTIONS order). Only training users are simulated, and
    only what a platform sees (predicted labels) decides, so the choice is deployable. Each
    (heuristic, bucket) is a job, in parallel processes when the work is worth it."""
    settings = inputs.settings
    _, n_training, _ = split_sizes(inputs.users.height, settings.policy)
    jobs = [(name, bucket) for name in registry.CHOSEN_HEURISTICS for bucket in ACTIONS]
    work = len(jobs) * n_training * settings.simulation.n_days
    negative = parallel.map_jobs(_bucket_negative_days, LoopState(inputs), jobs, parallel.workers(work))
    rows = [{"policy": name, "bucket": bucket, "predicted_negative_days": value}
            for (name, bucket), value in zip(jobs, negative)]
    table = pl.DataFrame(rows, schema={"policy": pl.String, "bucket": pl.String, "predicted_negative_days": pl.Float64})
    best = pl.col("predicted_negative_days") == pl.col("predicted_negative_days").min().over("policy")
    first = pl.int_range(pl.len()).over("policy") == pl.int_range(pl.len()).filter(best).first().over("policy")
    return table.with_columns(chosen=first)
