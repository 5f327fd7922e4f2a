"""Every policy of the closed loop, declared once.

An entry says what a policy is: its name, the class that acts (built from the trained
artifacts by its `from_artifacts`), what it learns from, whether it learns online, whether
it reads the simulator's latent state (a diagnostic `oracle_*` policy no platform could
deploy), and its fixed random-stream key. The stage that trains agents and bandits, the
rollouts, the evaluation, the CLI summary, the README renderer and the SQL warehouse all
read this list, so adding a policy is one entry here plus its class.

Import-light on purpose (no torch, LightGBM or polars): `esmr sql` reads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Literal

from ...core.settings import Settings, SettingsError, load_settings_json
from ...core.vocabulary import REWARD_TERMS


@dataclass(frozen=True)
class AgentSpec:
    """The Q-learning agent a hybrid policy acts with, and Eq. 8's terms it learns from:
    R_eng from the watch/scroll ratio (`hand`), from the decoded reward of the bandit
    `decoder` (`decoded`) or not at all (`none`); R_emo weighted by `alpha`, or not
    (`emotion=False`).

    `side_by_side` agents train together on copies of the training users in one cohort, so a
    day's simulation and ranking are paid once for all of them; the cohort's size shapes its
    noise draws, so adding an agent to that group would retrain the others. Every other
    agent trains on a cohort of its own, and adding one changes no other agent."""

    engagement: Literal["hand", "decoded", "none"] = "hand"
    emotion: bool = True
    decoder: str | None = None
    side_by_side: bool = False


@dataclass(frozen=True)
class LearnerSpec:
    """A bandit that learns online from feedback signals: IGL-P (`igl`, with three latent
    states or two) or a hand-engineered reward, 1 when the round's signal is `signal`."""

    kind: Literal["igl", "hand"]
    three_state: bool = True
    signal: str | None = None


@dataclass(frozen=True)
class HeuristicSpec:
    """A fixed bucket that leads the feed: on the days the hybrid switch hands over
    (`hybrid`), or every day of every user. Without a `bucket`, the policy stage chooses it
    on the training users: the bucket after which they have the fewest predicted negative
    days (what a platform can measure), `heuristic_buckets`."""

    bucket: str | None = None
    hybrid: bool = True


@dataclass(frozen=True)
class DeepSpec:
    """A learner of stable-baselines3 (`dqn` or `ppo`, unmodified) trained on the closed loop's
    Gymnasium environment (`policy.env`) with Eq. 8's `terms`: every day from day 1 it
    chooses the ranker's feed or a bucket leading it (the hybrid's choice, without its
    switch). The policy stage trains it only when `policy.deep_learners` names it."""

    algorithm: Literal["dqn", "ppo"]
    terms: tuple[str, ...] = REWARD_TERMS


@dataclass(frozen=True)
class PolicySpec:
    name: str
    #: "module:Class" under esmr_assets.policy.loop, or "package.module:Class" for a policy from
    #: outside the package (`register`); the class builds itself with `from_artifacts`
    acts_with: str
    #: random-stream key of the policy's exploration and own randomness: fixed, so that adding a
    #: policy never changes another's draws
    stream_key: int
    description: str
    agent: AgentSpec | None = None
    learner: LearnerSpec | None = None
    heuristic: HeuristicSpec | None = None
    deep: DeepSpec | None = None
    #: the emotion labels it acts and (for an agent) learns on: the emotion model's daily
    #: prediction, or the simulator's latent truth (a diagnostic)
    labels: Literal["predicted", "latent"] = "predicted"
    reads_latent: bool = False

    @property
    def learns_online(self) -> bool:
        """Keeps learning from what it serves during evaluation (the bandits)."""
        return self.learner is not None


_HYBRID = "policies:HybridPolicy"
_BANDIT = "bandits:BanditPolicy"
_FIXED = "policies:FixedBucketPolicy"
_DEEP = "deep:DeepAgentPolicy"

#: In the order of every table and plot.
POLICIES: tuple[PolicySpec, ...] = (
    PolicySpec("lightgbm", "policies:LightGBMPolicy", 1, "the engagement ranker alone"),
    PolicySpec("esmr", _HYBRID, 2, "the ESMR hybrid: LightGBM, and the Q-learning agent's bucket after a "
               "negative-or-neutral streak", agent=AgentSpec(side_by_side=True)),
    PolicySpec("esmr_no_emotion", _HYBRID, 3, "ESMR with an agent trained without R_emo (alpha = 0)",
               agent=AgentSpec(emotion=False, side_by_side=True)),
    PolicySpec("esmr_no_engagement", _HYBRID, 4, "ESMR with an agent trained without R_eng",
               agent=AgentSpec(engagement="none", side_by_side=True)),
    PolicySpec("esmr_igl", _HYBRID, 10, "ESMR with an agent whose R_eng is IGL-P(3)'s decoded reward",
               agent=AgentSpec(engagement="decoded", decoder="igl_p3")),
    PolicySpec("random", "policies:RandomPolicy", 5, "a uniformly random order of the eligible videos"),
    PolicySpec("igl_p3", _BANDIT, 6, "IGL-P with three latent states", learner=LearnerSpec("igl")),
    PolicySpec("igl_p2", _BANDIT, 7, "IGL-P with two latent states", learner=LearnerSpec("igl", three_state=False)),
    PolicySpec("cb_like", _BANDIT, 8, "a bandit rewarded by a like", learner=LearnerSpec("hand", signal="like")),
    PolicySpec("cb_comment", _BANDIT, 9, "a bandit rewarded by a comment",
               learner=LearnerSpec("hand", signal="comment")),
    # Heuristic baselines beside ESMR: what a fixed choice gets from the same switch.
    PolicySpec("hybrid_fixed_happy", _FIXED, 13, "the ESMR hybrid switch with the action fixed to the happy bucket",
               heuristic=HeuristicSpec("happy")),
    PolicySpec("always_happy", _FIXED, 14, "the happy bucket leads every user's feed every day",
               heuristic=HeuristicSpec("happy", hybrid=False)),
    PolicySpec("hybrid_best_fixed", _FIXED, 15, "the ESMR hybrid switch with the action fixed to the bucket that "
               "gave the training users the fewest predicted negative days", heuristic=HeuristicSpec()),
    # Capable learners on the Gymnasium environment, trained when `policy.deep_learners` names them.
    PolicySpec("dqn_esmr", _DEEP, 16, "a DQN agent choosing every day the ranker's feed or a bucket leading it, "
               "rewarded by Eq. 8", deep=DeepSpec("dqn")),
    PolicySpec("ppo_esmr", _DEEP, 17, "a PPO agent choosing every day the ranker's feed or a bucket leading it, "
               "rewarded by Eq. 8", deep=DeepSpec("ppo")),
    PolicySpec("ppo_engagement", _DEEP, 18, "the PPO agent rewarded by R_eng alone", deep=DeepSpec("ppo", ("engagement",))),
    PolicySpec("ppo_emotion", _DEEP, 19, "the PPO agent rewarded by R_emo and R_cause alone",
               deep=DeepSpec("ppo", ("emotion", "cause"))),
    # Diagnostic ceilings: they read the simulator's latent state, so no platform could deploy
    # them, and nothing deployable learns from them.
    PolicySpec("oracle_esmr", _HYBRID, 11, "ESMR trained and run on the latent true emotion instead of the "
               "emotion model's predictions: the paper's design with a perfect emotion model",
               agent=AgentSpec(), labels="latent", reads_latent=True),
    PolicySpec("oracle_best_feed", "oracles:BestFeedOracle", 12, "each day the bucket whose feed gives the highest "
               "expected next-day latent valence given the user's true state (one-step look-ahead)",
               reads_latent=True),
    PolicySpec("oracle_planner", "oracles:PlannerOracle", 20, "each day the bucket with the highest mean latent "
               "valence over the next evaluation.planner_horizon days (today's bucket, then the ranker's feed), given "
               "the user's true state: a multi-step look-ahead, run when the horizon is set", reads_latent=True),
)
BY_NAME = {spec.name: spec for spec in POLICIES}
POLICY_NAMES = tuple(BY_NAME)
#: the hybrid policies' agents, in training order
AGENTS = tuple(spec.name for spec in POLICIES if spec.agent is not None)
#: the bandits, in training order
BANDITS = tuple(spec.name for spec in POLICIES if spec.learner is not None)
#: the heuristics whose bucket the policy stage chooses on the training users
CHOSEN_HEURISTICS = tuple(spec.name for spec in POLICIES if spec.heuristic is not None and spec.heuristic.bucket is None)
#: the learners of stable-baselines3 that `policy.deep_learners` may name
DEEP_LEARNERS = tuple(spec.name for spec in POLICIES if spec.deep is not None)
#: the diagnostic policies that read the latent state (`oracle_*`)
ORACLES = tuple(spec.name for spec in POLICIES if spec.reads_latent)


#: Training replicates: replicate r >= 1 of the agent of `esmr` acts as policy `esmr@1`, ...;
#: replicate 0 is `esmr` itself. `esmr@all` names their pooled effect.
REPLICATE_MARK = "@"
POOLED = "all"


def replicate_name(name: str, replicate: int) -> str:
    """The policy that acts with replicate `replicate` of `name`'s agent (0: `name` itself)."""
    return name if replicate == 0 else f"{name}{REPLICATE_MARK}{replicate}"


def base_name(policy: str) -> str:
    """The registry entry a replicate's or a pooled row's policy name stands for."""
    return policy.split(REPLICATE_MARK, 1)[0]


def with_replicates(replicated: tuple[str, ...], replicates: int, plugins: tuple[str, ...] = ()) -> tuple[PolicySpec, ...]:
    """Every policy of the package, and those of the modules `plugins` (`policy.plugins`), in
    table order, each agent of `replicated` followed by its replicates 1 .. `replicates` - 1:
    the same entry under `replicate_name`."""
    unknown = set(replicated) - set(AGENTS)
    if unknown:
        raise ValueError(f"only agents have training replicates: {sorted(unknown)} are not among {AGENTS}")
    return tuple(
        replace(p, name=replicate_name(p.name, r))
        for p in registered(plugins)
        for r in range(replicates if p.name in replicated else 1)
    )


def evaluated(settings: Settings) -> tuple[PolicySpec, ...]:
    """The policies a cell's rollouts run, in table order: `with_replicates` of its settings,
    less the deep learners `policy.deep_learners` leaves out and `oracle_planner` while
    `evaluation.planner_horizon` is 0 (both cost a seed's time budget, so they are opt-in)."""
    policy = settings.policy
    off = {name for name in DEEP_LEARNERS if name not in policy.deep_learners}
    if settings.evaluation.planner_horizon == 0:
        off.add("oracle_planner")
    return tuple(spec for spec in with_replicates(policy.replicated_agents, policy.agent_replicates, policy.plugins)
                 if base_name(spec.name) not in off)


def is_oracle(name: str) -> bool:
    """Whether the policy `name` (or a replicate of it) is a diagnostic that reads the latent state."""
    registered = _lookup(base_name(name))
    return registered is not None and registered.reads_latent


def label_sources(name: str) -> tuple[str, ...]:
    """The label sources a policy's outcomes are measured on: the emotion model's predictions
    and the latent truth, or only the truth for a policy that acts on the truth (its
    predicted labels are the truth: comparing them with another policy's predictions would
    credit it with the emotion model's errors). Unregistered names get both."""
    registered = _lookup(base_name(name))
    return ("true",) if registered is not None and registered.labels == "latent" else ("predicted", "true")


def spec(name: str) -> PolicySpec:
    """The entry of `name`, or ValueError listing the known policies."""
    found = _lookup(name)
    if found is None:
        raise ValueError(f"unknown policy {name!r}; choose one of {registered_names()}")
    return found


def _lookup(name: str) -> PolicySpec | None:
    return BY_NAME.get(name) or _PLUGINS.get(name)


def _check(policies: tuple[PolicySpec, ...]) -> None:
    keys, names = [p.stream_key for p in policies], [p.name for p in policies]
    repeated = sorted({n for n in names if names.count(n) > 1}) + sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"policy names and stream keys must be unique; repeated: {repeated}")
    if any(REPLICATE_MARK in name for name in names):
        raise ValueError(f"policy names may not contain {REPLICATE_MARK!r}: it marks training replicates")
    bandits = {p.name for p in policies if p.learner is not None}
    for p in policies:
        if (p.agent is not None) + (p.learner is not None) + (p.heuristic is not None) + (p.deep is not None) > 1:
            raise ValueError(f"{p.name}: a policy acts with one of an agent, a learner, a heuristic or a deep learner")
        if p.deep is not None and (not p.deep.terms or set(p.deep.terms) - set(REWARD_TERMS)):
            raise ValueError(f"{p.name}: a deep learner's terms are a non-empty subset of {REWARD_TERMS}")
        if p.agent is not None and (p.agent.engagement == "decoded") != (p.agent.decoder in bandits):
            raise ValueError(f"{p.name}: an agent learns from a decoded reward exactly when it names a bandit as decoder")
        if p.labels == "latent" and not p.reads_latent:
            raise ValueError(f"{p.name}: latent labels are the latent state")
        if p.reads_latent != p.name.startswith("oracle_"):
            raise ValueError(f"{p.name}: policies that read the latent state, and only they, are named oracle_*")


_check(POLICIES)

#: Policies from outside the package, registered by the modules `policy.plugins` names.
_PLUGINS: dict[str, PolicySpec] = {}
#: the smallest stream key of a policy from outside the package: the package's own stay below it
PLUGIN_STREAM_KEYS = 1_000


def register(*specs: PolicySpec) -> None:
    """Register policies defined outside the package (a plugin module calls this on import;
    `policy.plugins` names the module, and a cell runs the policies whose class lives in a
    module it names or below it). They act from the trained artifacts like the package's own
    (`acts_with` an absolute "package.module:Class"), after every built-in policy in each
    table. They train nothing in the policy stage, so they carry no agent, learner, heuristic
    or deep learner; their stream keys are >= PLUGIN_STREAM_KEYS. Registering the same entry
    again changes nothing."""
    for entry in specs:
        where = f"policy {entry.name!r} from outside the package"
        if entry.agent or entry.learner or entry.heuristic or entry.deep:
            raise ValueError(f"{where}: it acts from the trained artifacts and trains nothing of its own")
        if entry.stream_key < PLUGIN_STREAM_KEYS:
            raise ValueError(f"{where}: stream keys below {PLUGIN_STREAM_KEYS} are the package's own")
        if "." not in entry.acts_with.partition(":")[0] or ":" not in entry.acts_with:
            raise ValueError(f"{where}: acts_with must be an absolute 'package.module:Class', got {entry.acts_with!r}")
        if _PLUGINS.get(entry.name) == entry:
            continue
        _check((*registered(), entry))
        _PLUGINS[entry.name] = entry


def load_plugins(modules: tuple[str, ...]) -> None:
    """Import the plugin modules (each registers its policies); `SettingsError` naming a
    module that cannot be imported."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            where = ("is it installed or on PYTHONPATH?" if err.name and module.startswith(err.name)
                     else "it failed to import something of its own")
            raise SettingsError(f"policy.plugins: cannot import {module!r} ({err}); {where}") from err


def registered(plugins: tuple[str, ...] | None = None) -> tuple[PolicySpec, ...]:
    """Every policy in table order: the package's, then those registered from outside it, of
    every module imported so far (None), or only of the modules `plugins` names: a cell's
    policies are its own settings', whatever else its process imported."""
    outside = [p for p in _PLUGINS.values() if plugins is None or _from_any(p, plugins)]
    return (*POLICIES, *outside)


def registered_names(plugins: tuple[str, ...] | None = None) -> tuple[str, ...]:
    return tuple(p.name for p in registered(plugins))


def _from_any(entry: PolicySpec, modules: tuple[str, ...]) -> bool:
    """Whether the class of `entry` lives in one of `modules` or below it."""
    module = entry.acts_with.partition(":")[0]
    return any(module == m or module.startswith(f"{m}.") for m in modules)


def check_settings(settings: Settings) -> Settings:
    """What only the registry can check of settings: the policies they name exist and can be
    what they are used as. `SettingsError` naming the field, else the settings."""
    plugins = settings.policy.plugins
    load_plugins(plugins)
    reference = settings.evaluation.reference_policy
    if reference not in registered_names(plugins):
        raise SettingsError(f"evaluation.reference_policy: unknown policy {reference!r}; "
                            f"choose one of {', '.join(registered_names(plugins))}")
    unknown = [name for name in settings.policy.replicated_agents if name not in AGENTS]
    if unknown:
        raise SettingsError(f"policy.replicated_agents: {unknown} are not agents; choose from {', '.join(AGENTS)}")
    unknown = [name for name in settings.policy.deep_learners if name not in DEEP_LEARNERS]
    if unknown:
        raise SettingsError(f"policy.deep_learners: {unknown} are not deep learners; choose from {', '.join(DEEP_LEARNERS)}")
    if settings.policy.agent_replicates > 1 and reference in settings.policy.replicated_agents:
        raise SettingsError(f"evaluation.reference_policy: {reference!r} has training replicates; compare against "
                            "a policy without them (its pool would contain the reference itself)")
    return settings


def graph_settings(preset: str, overrides_json: str) -> Settings:
    """The settings a cell runs with: loaded from the preset and the overrides' JSON, checked
    field by field, for the whole graph, and against the registry."""
    return check_settings(load_settings_json(preset, overrides_json))
