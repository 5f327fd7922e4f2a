"""Studies: named scenarios, each a set of setting overrides, crossed with seeds, declared in
`studies/<name>.toml`. Parsed and validated here, completely, before anything runs: a bad
spec names its scenario and the field.

    description = "How well must emotion be observable for ESMR to help?"
    preset = "paper"
    seeds = "0-4"                                # the ranges `esmr sweep` accepts
    overrides = { policy = { epochs = 10 } }     # optional: shared by every scenario

    [report]                                     # what the study table and plot show
    policies = ["esmr", "oracle_esmr"]           # effects against evaluation.reference_policy
    metrics = ["negative_days", "mean_latent_valence"]
    extras = ["accuracy"]                        # optional tables the README render adds

    [[scenario]]
    name = "signal_0"
    overrides = { simulation = { emotion_signal = 0.0 } }

A scenario that overrides exactly one setting is a point on that setting's axis (`knob`,
`value`), which is what the study plot draws effects against.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.settings import PRESETS, Settings, SettingsError, deep_merge, load_settings
from ..evaluation.metrics import METRICS
from ..policy.loop import registry
from ..policy.loop.registry import graph_settings
from ..storage.files import atomic_write_bytes
from .sweeps import parse_seed_ranges

#: a scenario's name; "<study>.<scenario>" is its partition key (`cells.SCENARIO_NAME`)
SCENARIO_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # whole names only: fullmatch
#: a study's name (its file's stem): no dot, so "<study>.<scenario>" names one study's scenario only
STUDY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # whole names only: fullmatch
_TOP_LEVEL = {"description", "preset", "seeds", "overrides", "report", "scenario"}
_SCENARIO_KEYS = {"name", "overrides", "description"}
_REPORT_KEYS = {"policies", "metrics", "extras"}
#: optional parts of a study's rendered report (docs/render/studies.py): the emotion models'
#: accuracy against the truth, the per-style (IGL-P) tables and plots, the SD of per-seed effects,
#: what each policy served by predicted state (`action_shares`)
REPORT_EXTRAS = ("accuracy", "styles", "spread", "actions", "q_values", "metrics", "confusion", "metadata")
DEFAULT_METRICS = ("negative_days", "mean_latent_valence", "engagement_reward")


class StudyError(SettingsError):
    """A study spec that cannot run: the message names the file, the scenario and the field."""


@dataclass(frozen=True)
class Scenario:
    name: str
    #: the overrides as canonical JSON (sorted keys): hashable, and the form `--overrides` takes
    overrides_json: str
    settings: Settings
    description: str = ""
    #: what this scenario itself varies, without the study's shared `overrides`
    varied_json: str = "{}"

    @property
    def overrides(self) -> dict[str, Any]:
        return json.loads(self.overrides_json)

    @property
    def knob(self) -> tuple[str, Any] | None:
        """(dotted setting, value) when the scenario varies exactly one setting, else None."""
        leaves = list(_leaves(json.loads(self.varied_json)))
        return leaves[0] if len(leaves) == 1 else None


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    preset: str
    seeds: tuple[int, ...]
    scenarios: tuple[Scenario, ...]
    policies: tuple[str, ...]
    metrics: tuple[str, ...]
    text: str = ""  # the spec as written, registered beside the data it describes
    extras: tuple[str, ...] = ()  # REPORT_EXTRAS the rendered report adds

    def scenario(self, name: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise StudyError(f"study {self.name!r} has no scenario {name!r}; it has {[s.name for s in self.scenarios]}")

    def cell_scenario(self, scenario: Scenario) -> str:
        """The scenario's partition key: "<study>.<scenario>", so studies never share a name."""
        return f"{self.name}.{scenario.name}"

    @property
    def cells(self) -> list[tuple[Scenario, int]]:
        """Every (scenario, seed), scenario by scenario."""
        return [(scenario, seed) for scenario in self.scenarios for seed in self.seeds]


def _leaves(tree: Mapping, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value


def load_study(path: str | Path, seeds: str | None = None) -> Study:
    """The study in `path` (its name is the file's stem), validated; `seeds` (range syntax)
    replaces the spec's seeds."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise StudyError(f"cannot read study {str(path)!r}: {err.strerror or err}") from None
    return parse_study(text, path.stem, seeds)


def parse_study(text: str, name: str, seeds: str | None = None) -> Study:
    """A study from its TOML text, every scenario's settings validated."""
    where = f"study {name!r}"
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        raise StudyError(f"{where}: a study name (its file's stem) is up to 32 lower-case letters, digits, '_' and '-'")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise StudyError(f"{where}: not valid TOML: {err}") from None
    unknown = set(spec) - _TOP_LEVEL
    if unknown:
        raise StudyError(f"{where}: unknown field(s) {sorted(unknown)}; a study has {sorted(_TOP_LEVEL)}")
    for required in ("preset", "seeds", "scenario"):
        if required not in spec:
            raise StudyError(f"{where}: missing field {required!r}")
    preset, seed_text = spec["preset"], seeds if seeds is not None else spec["seeds"]
    if not isinstance(preset, str) or preset not in PRESETS:
        raise StudyError(f"{where}: preset: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if not isinstance(seed_text, str):
        raise StudyError(f"{where}: seeds must be a range string such as \"0-4\", got {seed_text!r}")
    try:
        parsed_seeds = tuple(parse_seed_ranges(seed_text))
    except SettingsError as err:
        raise StudyError(f"{where}: seeds: {err}") from None
    shared = spec.get("overrides", {})
    if not isinstance(shared, dict):
        raise StudyError(f"{where}: overrides must be a table of settings shared by every scenario, got {shared!r}")
    try:  # each field here; whether the graph can run, within each scenario, which may complete them
        load_settings(preset, shared, whole_graph=False)
    except SettingsError as err:
        raise StudyError(f"{where}: overrides: {err}") from None
    entries = spec["scenario"]
    if not isinstance(entries, list) or not entries:
        raise StudyError(f"{where}: at least one [[scenario]] is needed")
    scenarios, seen = [], set()
    for k, entry in enumerate(entries):
        scenario_name = entry.get("name") if isinstance(entry, dict) else None
        label = f"{where}, scenario {scenario_name!r}" if scenario_name else f"{where}, scenario #{k + 1}"
        if not isinstance(entry, dict):
            raise StudyError(f"{label}: a scenario is a table with name and overrides")
        extra = set(entry) - _SCENARIO_KEYS
        if extra:
            raise StudyError(f"{label}: unknown field(s) {sorted(extra)}; a scenario has {sorted(_SCENARIO_KEYS)}")
        if not isinstance(scenario_name, str) or not SCENARIO_NAME.fullmatch(scenario_name):
            raise StudyError(f"{label}: name must be lower-case letters, digits, '_', '.' and '-' "
                             f"(it is a partition key), got {scenario_name!r}")
        if scenario_name in seen:
            raise StudyError(f"{label}: duplicate scenario name")
        seen.add(scenario_name)
        overrides = entry.get("overrides", {})
        if not isinstance(overrides, dict):
            raise StudyError(f"{label}: overrides must be a table of settings, got {overrides!r}")
        varied_json = json.dumps(overrides, sort_keys=True)
        overrides = deep_merge(shared, overrides)
        overrides_json = json.dumps(overrides, sort_keys=True)
        try:
            settings = graph_settings(preset, overrides_json)
        except SettingsError as err:
            raise StudyError(f"{label}: {err}") from None
        scenarios.append(Scenario(scenario_name, overrides_json, settings, str(entry.get("description", "")),
                                  varied_json))
    policies, metrics, extras = _report(spec.get("report", {}), where)
    return Study(name, str(spec.get("description", "")), preset, parsed_seeds, tuple(scenarios), policies, metrics, text,
                 extras)


STUDY_DIR = "studies"


def register_study(root: Path, study: Study) -> None:
    """Record the study and its scenarios under the preset root `root`
    (`<root>/studies/<name>.toml`, `<root>/scenarios/<study>.<scenario>.json`), so its cells and
    its report can be materialized from the UI with nothing but partition keys."""
    from ..storage.cells import register_scenario

    for scenario in study.scenarios:
        register_scenario(root, study.cell_scenario(scenario), scenario.overrides_json)
    path = Path(root) / STUDY_DIR / f"{study.name}.toml"
    if not path.is_file() or path.read_text() != study.text:
        atomic_write_bytes(path, study.text.encode())


def registered_study(root: Path, name: str) -> Study:
    """A study registered under `root` by `register_study`."""
    path = Path(root) / STUDY_DIR / f"{name}.toml"
    if not path.is_file():
        raise StudyError(f"study {name!r} is not registered under {root}; run `esmr study run studies/{name}.toml`")
    return load_study(path)


def _report(report: Any, where: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    if not isinstance(report, dict):
        raise StudyError(f"{where}: report must be a table")
    extra = set(report) - _REPORT_KEYS
    if extra:
        raise StudyError(f"{where}: report: unknown field(s) {sorted(extra)}; it has {sorted(_REPORT_KEYS)}")
    policies = tuple(report.get("policies", ("esmr",)))
    metrics = tuple(report.get("metrics", DEFAULT_METRICS))
    extras = tuple(report.get("extras", ()))
    def known(policy: str) -> bool:
        name, _, replicate = policy.partition(registry.REPLICATE_MARK)
        pooled_or_replicate = replicate == registry.POOLED or (replicate.isdigit() and int(replicate) > 0)
        return name in registry.registered_names() and (not replicate or (name in registry.AGENTS and pooled_or_replicate))

    unknown_policies = [p for p in policies if not known(p)]
    if unknown_policies:
        raise StudyError(f"{where}: report.policies: unknown {unknown_policies}; choose from {registry.registered_names()}")
    unknown_metrics = [m for m in metrics if m not in METRICS]
    if unknown_metrics:
        raise StudyError(f"{where}: report.metrics: unknown {unknown_metrics}; choose from {METRICS}")
    unknown_extras = [e for e in extras if e not in REPORT_EXTRAS]
    if unknown_extras:
        raise StudyError(f"{where}: report.extras: unknown {unknown_extras}; choose from {list(REPORT_EXTRAS)}")
    return policies, metrics, extras
