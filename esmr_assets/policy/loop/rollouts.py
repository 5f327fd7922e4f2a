"""The closed-loop evaluation: every registered policy over the held-out users' horizon,
with common random numbers, and the aggregations of its rows that training and evaluation
share."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ...core import parallel
from ...core.settings import Settings
from ...emotion.estimators import reads_latent
from ...emotion.labeller import DailyLabeller, LatentLabeller
from ...sim.environment import ClosedLoopEnv, Labeller
from ..learners.qlearning import QLearningAgent
from ..rewards import engagement_reward
from . import registry
from .agent_day import StateTracker
from .feeds import ACTIONS, FeedBuilder
from .inputs import LoopInputs, LoopState
from .users import policy_split, split_sizes

_ACTION_NAMES = dict(enumerate(ACTIONS))  # -1 (no action) becomes null


@dataclass(frozen=True)
class Artifacts:
    """What the trained stage hands to the policies: `PolicySpec.acts_with` classes build
    themselves from it (`from_artifacts`). `heuristic_buckets` maps a heuristic without a
    fixed bucket to the one chosen on the training users; `deep_agents` are the deep learners
    by policy name."""

    feeds: FeedBuilder
    agents: Mapping[str, QLearningAgent]
    learners: Mapping
    settings: Settings
    seed: int
    heuristic_buckets: Mapping[str, str] = field(default_factory=dict)
    deep_agents: Mapping = field(default_factory=dict)


def labeller_for(spec: registry.PolicySpec, emotion_model) -> Labeller:
    """What `spec` sees of emotion: the emotion model's daily labels, or the simulator's
    truth for an oracle on latent labels and wherever the emotion source is the truth."""
    latent = spec.labels == "latent" or reads_latent(emotion_model)
    return LatentLabeller() if latent else DailyLabeller(emotion_model)


def build_policy(spec: registry.PolicySpec, artifacts: Artifacts):
    """The acting policy of a registry entry, or None when its trained model is missing."""
    module, name = spec.acts_with.split(":")
    cls = getattr(importlib.import_module(module if "." in module else f"{__package__}.{module}"), name)
    return cls.from_artifacts(artifacts, spec)


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
    acted (`rl_active`; on a `churned` day the user saw nothing of it), the served bucket
    and top video, the observed engagement and its reward R_eng,
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
        tracker.observe(step, actions)
        learned = policy.learn(step) if learns else None
        frames.append(
            step.logs.select(
                pl.lit(name).alias("policy"),
                "user_id",
                "day",
                pl.Series("rl_active", actions >= 0),
                "churned",  # the user stayed away: a bucket served today did nothing
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


@dataclass
class _RolloutState(LoopState):
    """What every policy's rollout reads: sent once to each worker process."""

    agents: Mapping[str, QLearningAgent] = field(default_factory=dict)
    learners: Mapping = field(default_factory=dict)
    heuristic_buckets: Mapping[str, str] = field(default_factory=dict)
    deep_agents: Mapping = field(default_factory=dict)


def _rollout_one(state: _RolloutState, spec: registry.PolicySpec) -> tuple[pl.DataFrame | None, float]:
    """One policy over the evaluation users' horizon (episode 0), from its own copy of the
    trained agents and learners: a bandit learns as it acts, and what it learns stays its own.
    Returns (rows, or None when its trained model is missing; seconds)."""
    inputs, settings, seed = state.inputs, state.inputs.settings, state.inputs.seed
    start = time.perf_counter()
    artifacts = Artifacts(state.feed_builder(), parallel.fresh(state.agents), parallel.fresh(state.learners), settings,
                          seed, state.heuristic_buckets, state.deep_agents)
    policy = build_policy(spec, artifacts)
    if policy is None:
        return None, 0.0
    env = ClosedLoopEnv(inputs.videos, state.cohort("evaluation"), settings.simulation, seed,
                        labeller_for(spec, inputs.emotion_model), episode=0)
    return rollout(env, policy, spec.name), time.perf_counter() - start


def _costs(specs: list[registry.PolicySpec], settings: Settings) -> list[int]:
    """Each policy's rollout in cohort-days: the oracles simulate every bucket's feed each
    day besides their own, the planner for its horizon."""
    looked_ahead = {"oracles:BestFeedOracle": 1, "oracles:PlannerOracle": settings.evaluation.planner_horizon}
    return [1 + len(ACTIONS) * settings.evaluation.oracle_draws * looked_ahead.get(spec.acts_with, 0)
            for spec in specs]


def rollout_work(settings: Settings) -> int:
    """The rollouts' closed-loop user-days, the most of any closed-loop stage: what decides,
    before the users exist, whether a cell's closed-loop stages will want workers."""
    specs = registry.evaluated(settings)
    _, _, n_evaluation = split_sizes(settings.simulation.n_users, settings.policy)
    return sum(_costs(specs, settings)) * n_evaluation * settings.simulation.n_days


def run_rollouts(
    inputs: LoopInputs,
    agents: Mapping[str, QLearningAgent],
    log: Callable[[str], None] = lambda message: None,
    learners: Mapping | None = None,
    heuristic_buckets: Mapping[str, str] | None = None,
    deep_agents: Mapping | None = None,
) -> pl.DataFrame:
    """Every registered policy whose models are given (an agent's training replicates
    included, as `esmr@1`, ...), over the evaluation users' whole horizon, each from the
    same start with the same noise (episode 0): common random numbers, so differences
    between the policies' rows are the policies' doing. The policies run in parallel
    processes when the work is worth it (`core.parallel`); the rows are the same either way."""
    settings, seed = inputs.settings, inputs.seed
    _, evaluation_users = policy_split(inputs.users, seed, settings.policy)
    specs = registry.evaluated(settings)
    state = _RolloutState(inputs, agents=agents, learners=learners or {}, heuristic_buckets=heuristic_buckets or {},
                          deep_agents=deep_agents or {})
    frames = []
    results = parallel.map_jobs(_rollout_one, state, specs, parallel.workers(rollout_work(settings)),
                                _costs(specs, settings))
    for spec, (frame, seconds) in zip(specs, results):
        if frame is not None:
            frames.append(frame)
            log(f"{spec.name}: {evaluation_users.size} users x {settings.simulation.n_days} days in {seconds:.1f} s")
    rollouts = pl.concat(frames)
    # Diagnostics, marked in every table: the oracles, and every policy when the platform's
    # emotion estimate is the latent truth.
    latent = reads_latent(inputs.emotion_model)
    oracle = pl.col("policy").is_in([n for n in rollouts["policy"].unique() if latent or registry.is_oracle(n)])
    oracle = oracle.alias("oracle")
    return rollouts.select("policy", oracle, pl.exclude("policy"))
