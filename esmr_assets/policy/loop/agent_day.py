"""Training the Q-learning agent in the closed-loop environment (paper §3.3.2, Algorithm 2).

Every training user is under the agent every day from day 1 (day 0 has no predicted label
yet, so it is served by LightGBM): the agent sees all states, not only the vulnerable ones
the hybrid policy later hands to it, and Q-learning being off-policy, what it learns holds
for the hybrid's use. Each day: observe the states, act (Boltzmann), serve the action's
bucket through `FeedBuilder`, step the cohort, score Eq. 8, learn from the day's
transitions, then replay one batch. Epoch k runs the cohort through episode k + 1 of the
environment's noise, so epochs see fresh days and evaluation (episode 0) sees unseen ones.

Several agents (ESMR and its ablations) train side by side in one environment, each on its
own copy of the training users: simulating and ranking cost much less per user in one
large batch than in several small ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from ...core.vocabulary import TRUE_EMOTIONS
from ...sim.environment import ClosedLoopEnv, DayStep
from ..learners.qlearning import N_STATES, N_STATES_WITH_LAST_BUCKET, QLearningAgent, encode_state
from ..rewards import NextDayCredit, RewardModel
from .feeds import FeedBuilder, bucket_mask
from .streak import update_streak


class StateTracker:
    """Each user's Q-learning state as of the last stepped day: its predicted label, the
    negative-or-neutral streak (churn days neither extend nor break it), its engagement
    trend, the bucket that led the feed the user saw (-1: none, or the user churned) and the
    emotion model's class probabilities of the day (zeros before the first day)."""

    def __init__(self, n_users: int) -> None:
        self.label = np.full(n_users, "churned", dtype=object)
        self.probabilities = np.zeros((n_users, len(TRUE_EMOTIONS)))
        self.streak = np.zeros(n_users, dtype=np.int64)
        self.trend = np.zeros(n_users)
        self.served = np.full(n_users, -1, dtype=np.int64)

    def observe(self, step: DayStep, actions: np.ndarray | None = None) -> None:
        """Take in a stepped day; `actions` are the buckets that led its feeds (-1: none)."""
        self.label = np.asarray(step.predicted).astype(str)
        self.probabilities = np.asarray(step.probabilities, dtype=float)
        self.streak = update_streak(self.streak, self.label)
        self.trend = step.logs["engagement_trend"].cast(pl.Float64).to_numpy()
        if actions is None:
            actions = np.full(self.label.size, -1)
        self.served = np.where(step.logs["churned"].to_numpy(), -1, np.asarray(actions, dtype=np.int64))

    def states(self, with_last_bucket: bool = False) -> np.ndarray:
        """The base state, or the `state_last_bucket` variant's (with the served bucket)."""
        return encode_state(self.label, self.streak, self.trend, self.served if with_last_bucket else None)


def train_agents(
    make_env: Callable[[int], ClosedLoopEnv],
    feeds: FeedBuilder,
    rewards: RewardModel,
    agents: dict[str, QLearningAgent],
    rngs: dict[str, np.random.Generator],
    epochs: int,
    on_epoch: Callable[[dict], None] | None = None,
) -> pl.DataFrame:
    """Train `agents` in place, side by side in one environment: `make_env(episode)` builds
    a cohort of len(agents) equal blocks of users, block k living under the k-th agent, so
    the per-day costs of simulation and ranking are paid once for all of them. `rewards`
    covers the whole cohort (per-row weights, see `RewardWeights.stack`); `rngs` drive each
    agent's exploration and replay. Returns the learning curve: per agent and epoch the
    mean reward and its components per transition, the temperature and the share of
    states visited."""
    names = list(agents)
    sizes = {agent.n_states for agent in agents.values()}
    if len(sizes) != 1 or not sizes <= {N_STATES, N_STATES_WITH_LAST_BUCKET}:
        raise ValueError(f"agents trained together must all have {N_STATES} states, or all "
                         f"{N_STATES_WITH_LAST_BUCKET} (with the last served bucket)")
    with_last = sizes == {N_STATES_WITH_LAST_BUCKET}
    history = []
    for epoch in range(epochs):
        env = make_env(epoch + 1)
        if env.n_users % len(names):
            raise ValueError(f"a cohort of {env.n_users} users does not split into {len(names)} equal blocks")
        blocks = dict(zip(names, np.split(np.arange(env.n_users), len(names))))
        tracker = StateTracker(env.n_users)
        previous = env.step(*feeds.build(env.reset(), env.recently_shown()))  # day 0: no label yet
        tracker.observe(previous)
        states = tracker.states(with_last)
        sums = {name: dict.fromkeys(("reward", "r_eng", "r_emo", "r_cause"), 0.0) for name in names}
        transitions = 0
        credit = NextDayCredit(rewards.weights.alpha, rewards.weights.beta) if rewards.timing == "next_day" else None
        while not env.done:
            actions = np.empty(env.n_users, dtype=np.int64)
            for name, rows in blocks.items():
                actions[rows] = agents[name].act(states[rows], rngs[name])
            boost = bucket_mask(actions, feeds.video_emotion)
            step = env.step(*feeds.build(env.observation(), env.recently_shown(), boost))
            parts = rewards.components(previous, step)
            tracker.observe(step, actions)
            next_states = tracker.states(with_last)
            if credit is None:
                learnt = (states, actions, parts["reward"], next_states)
            else:
                learnt = credit.push(states, actions, np.broadcast_to(rewards.weights.engagement, parts["r_eng"].shape)
                                     * parts["r_eng"], next_states, parts["r_emo"], parts["r_cause"])
            for name, rows in blocks.items():
                if learnt is not None:
                    # The horizon's end is a truncation, not a terminal state (the state has
                    # no clock), so every transition bootstraps.
                    transition = (*(x[rows] for x in learnt), False)
                    agents[name].remember(*transition)
                    agents[name].update(*transition)
                    agents[name].replay(rngs[name])
                for key, total in sums[name].items():  # the reward learnt, and today's Eq. 8 parts
                    values = (0.0 if learnt is None else learnt[2][rows]) if key == "reward" else parts[key][rows]
                    sums[name][key] = total + float(np.sum(values))
            transitions += env.n_users // len(names)
            previous, states = step, next_states
        for name, agent in agents.items():
            row = {
                "agent": name,
                "epoch": epoch + 1,
                "temperature": agent.temperature_,
                **{f"mean_{k}": v / max(transitions, 1) for k, v in sums[name].items()},
                "states_visited": float((agent.visits_.sum(axis=1) > 0).mean()),
            }
            agent.end_epoch(row["mean_reward"])
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
    return pl.DataFrame(history)
