"""The whole settings object, its presets, and loading them: every field checked, then
whether the whole graph can run with them (the constraints between sections)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError, ValidationInfo, model_validator

from .overrides import check_override_types
from .sections import (
    MAX_USER_DAYS,
    MIN_SPLIT_USERS,
    RANKER_SPLIT,
    CausalSettings,
    EmotionSettings,
    EvaluationSettings,
    PolicySettings,
    SettingsError,
    SimulationSettings,
    _Frozen,
)


class Settings(_Frozen):
    """Everything that determines a partition's content, apart from the seed."""

    preset: str
    simulation: SimulationSettings = SimulationSettings()
    emotion: EmotionSettings = EmotionSettings()
    causal: CausalSettings = CausalSettings()
    policy: PolicySettings = PolicySettings()
    evaluation: EvaluationSettings = EvaluationSettings()

    @model_validator(mode="after")
    def _feasible(self, info: ValidationInfo) -> Settings:
        """The constraints between sections, so that `esmr run`, studies and the UI refuse the
        same settings: a run that would fail or never end is refused before it starts. Code
        that runs only part of the graph (a test of the simulator alone) may ask for the
        sections' own checks only (`load_settings(..., whole_graph=False)`)."""
        if info.context and info.context.get("whole_graph") is False:
            return self
        sim, policy = self.simulation, self.policy
        if sim.n_users * sim.n_days > MAX_USER_DAYS:
            raise ValueError(f"simulation.n_users x simulation.n_days is {sim.n_users * sim.n_days:,} user-days; at most "
                             f"{MAX_USER_DAYS:,} fit in memory")
        if sim.n_days < self.causal.min_rows + 1:
            raise ValueError(f"simulation.n_days ({sim.n_days}) must exceed causal.min_rows ({self.causal.min_rows}): "
                             "a user's causal DAG needs that many pairs of consecutive days")
        for field in ("feed_length", "candidates"):
            value = getattr(sim if field == "feed_length" else policy, field)
            if value > sim.n_videos:
                raise ValueError(f"{'simulation' if field == 'feed_length' else 'policy'}.{field} ({value}) exceeds "
                                 f"simulation.n_videos ({sim.n_videos})")
        for what, parts in split_sizes(self).items():
            if min(parts) < MIN_SPLIT_USERS:
                raise ValueError(f"{what} ({SPLIT_FIELDS[what]}) gets {' / '.join(map(str, parts))} users from "
                                 f"simulation.n_users = {sim.n_users}; each part needs at least {MIN_SPLIT_USERS}")
        available = sim.n_users - held_out_users(self)
        if policy.training_users > available:
            raise ValueError(f"policy.training_users: {policy.training_users} asked, but only {available} of the "
                             f"{sim.n_users} users are not held out; lower it, lower policy.evaluation_share or raise "
                             "simulation.n_users")
        return self

    @property
    def overrides_scenario(self) -> str:
        """The scenario `esmr run --overrides` runs these settings as: `baseline` when they are
        the preset's, else a hash of the settings that differ from it, so the same effective
        settings always land in the same cells, and a setting added later with a default
        leaves every existing scenario's name alone."""
        differences = _differences(self.model_dump(), PRESETS[self.preset].model_dump())
        if not differences:
            return "baseline"
        digest = hashlib.sha256(json.dumps(differences, sort_keys=True).encode()).hexdigest()[:8]
        return f"overrides-{digest}"


def held_out_users(settings: Settings) -> int:
    """Users held out for evaluation (`policy.users.policy_split`)."""
    return max(1, round(settings.policy.evaluation_share * settings.simulation.n_users))


def _parts(n: int, shares: tuple[float, float, float], max_users: int | None) -> tuple[int, ...]:
    """Users in each part of a seeded user split (`emotion.features.split_users`), thinned
    to about `max_users` with shares kept (`limit_split`)."""
    first, second = round(shares[0] * n), round(shares[1] * n)
    parts = (first, second, n - first - second)
    if max_users is not None and n > max_users:
        parts = tuple(max(1, round(size * max_users / n)) for size in parts)
    return parts


#: the settings besides simulation.n_users that size each split
SPLIT_FIELDS = {
    "the emotion models' train / validation / test split": "emotion.split, emotion.max_model_users",
    "the ranker's train / validation / test split": "policy.ranker_max_users",
    "the agents' training / held-out evaluation split": "policy.training_users, policy.evaluation_share, "
                                                          "policy.max_evaluation_users",
}


def split_sizes(settings: Settings) -> dict[str, tuple[int, ...]]:
    """The users in every part of every split the graph makes, as its code will make them."""
    n, policy = settings.simulation.n_users, settings.policy
    held_out = held_out_users(settings)
    return {
        "the emotion models' train / validation / test split": _parts(n, settings.emotion.split,
                                                                     settings.emotion.max_model_users),
        "the ranker's train / validation / test split": _parts(n, RANKER_SPLIT, policy.ranker_max_users),
        "the agents' training / held-out evaluation split": (min(policy.training_users, n - held_out),
                                                              min(held_out, policy.max_evaluation_users or held_out)),
    }


def _differences(mine: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The leaves of `mine` whose value differs from `base`'s, nested as in `mine`."""
    out = {}
    for key, value in mine.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            nested = _differences(value, base[key])
            if nested:
                out[key] = nested
        elif key not in base or base[key] != value:
            out[key] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_PRESET_OVERRIDES: dict[str, dict[str, Any]] = {
    # The paper's scale: 1,000 videos, 1,000 users, 30 days.
    "paper": {},
    # Tiny but complete: every stage still has enough days per user to run.
    "smoke": {
        "simulation": {"n_videos": 160, "n_users": 60, "feed_length": 120},
        "emotion": {"max_epochs": 4},
        "policy": {"epochs": 3, "training_users": 30},  # every user not held out
    },
    # 100,000 users, simulated in chunks of user_chunk_size. The fits whose cost grows with
    # the population use seeded samples (README, "Scale"); every user is still simulated,
    # labelled, predicted and given a causal DAG. Sized for 30 minutes on 2 cores.
    "large": {
        "simulation": {"n_users": 100_000},
        "emotion": {"cluster_sample_days": 300_000, "max_model_users": 3_000},
        "causal": {"device": "torch-cpu", "pooled_max_users": 2_000},
        "policy": {"ranker_max_users": 2_000, "max_evaluation_users": 3_000},
    },
}

PRESETS: dict[str, Settings] = {
    name: Settings.model_validate(deep_merge({"preset": name}, extra))
    for name, extra in _PRESET_OVERRIDES.items()
}


def _format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        message = e["msg"].removeprefix("Value error, ")
        if e["loc"]:
            field = ".".join(str(p) if str(p).isidentifier() or isinstance(p, int) else repr(p) for p in e["loc"])
            parts.append(f"{field}: {message} (got {e.get('input')!r})")
        else:  # a constraint between fields: the message names them
            parts.append(message)
    return "invalid settings: " + "; ".join(parts)


def load_settings(preset: str = "paper", overrides: dict[str, Any] | None = None, whole_graph: bool = True) -> Settings:
    """The named preset with optional nested overrides, validated: every field, and unless
    `whole_graph` is false (for code that runs only part of the graph), whether the whole
    graph can run with them."""
    if preset not in PRESETS:
        raise SettingsError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if overrides is not None and not isinstance(overrides, dict):
        raise SettingsError(f"overrides must be a mapping, got {type(overrides).__name__}")
    if overrides and "preset" in overrides:
        raise SettingsError("overrides may not change 'preset'; pass the preset name instead")
    check_override_types(Settings, overrides or {})
    merged = deep_merge(PRESETS[preset].model_dump(), overrides or {})
    try:
        return Settings.model_validate(merged, context={"whole_graph": whole_graph})
    except ValidationError as err:
        raise SettingsError(_format_validation_error(err)) from None


def load_settings_json(preset: str, overrides_json: str, whole_graph: bool = True) -> Settings:
    """`load_settings` with overrides as JSON text, the form run config and the CLI carry."""
    try:
        overrides = json.loads(overrides_json or "{}")
    except json.JSONDecodeError as err:
        raise SettingsError(f"overrides are not valid JSON: {err}") from None
    except RecursionError:
        raise SettingsError("overrides are nested too deeply") from None
    if not isinstance(overrides, dict):
        raise SettingsError(f"overrides must be a JSON object such as '{{\"simulation\": {{\"n_users\": 500}}}}', "
                            f"got {json.dumps(overrides)[:40]}")
    return load_settings(preset, overrides, whole_graph)
