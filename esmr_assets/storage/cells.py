"""Cells: a (scenario, seed) pair, the unit every asset is partitioned by, and the scenario
registry that says what each scenario name means.

A scenario is a named set of setting overrides on top of the run's preset; `baseline` has
none, so a user who never writes a study runs `baseline` cells. Its definition lives in
`<data_dir>/<preset>/scenarios/<name>.json`, written when the scenario is registered (by
`esmr run`, `esmr study run` or a study schedule), so a cell launched from the Dagster UI's
partition picker finds its settings with nothing but the partition key. Plain Python: the
CLI, the warehouse and the planner use it without Dagster's partition objects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.settings import Settings, SettingsError, parse_seed
from ..policy.loop.registry import graph_settings
from .files import atomic_write_bytes

BASELINE = "baseline"
#: a scenario name is a partition key and a path component: no separators, "=", "|" or "/"
SCENARIO_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}")  # whole names only: fullmatch
#: Dagster joins a multi-partition key's dimensions, sorted by name, with this
KEY_SEPARATOR = "|"
SCENARIO_DIR = "scenarios"


@dataclass(frozen=True, order=True)
class Cell:
    scenario: str
    seed: int

    @property
    def key(self) -> str:
        """The partition key as Dagster writes it: dimensions sorted by name (scenario, seed)."""
        return f"{self.scenario}{KEY_SEPARATOR}{self.seed}"

    def __str__(self) -> str:
        return f"scenario {self.scenario}, seed {self.seed}"


def check_scenario_name(name: str) -> str:
    if not isinstance(name, str) or not SCENARIO_NAME.fullmatch(name):
        raise SettingsError(f"scenario name must be lower-case letters, digits, '_', '.' and '-' "
                            f"(it is a partition key and a folder name), got {name!r}")
    return name


def parse_cell(key: str) -> Cell:
    """The cell of a partition key "<scenario>|<seed>"; `SettingsError` naming the key otherwise."""
    scenario, separator, seed = str(key).partition(KEY_SEPARATOR)
    if not separator:
        raise SettingsError(f"partition key {key!r} is not a cell \"<scenario>|<seed>\" (e.g. \"baseline|0\")")
    return Cell(check_scenario_name(scenario), parse_seed(seed))


def overrides_scenario_name(preset: str, overrides_json: str) -> str:
    """The scenario `esmr run --overrides` registers (`Settings.overrides_scenario`)."""
    return graph_settings(preset, overrides_json).overrides_scenario


def canonical_overrides(overrides_json: str) -> str:
    try:
        return json.dumps(json.loads(overrides_json or "{}"), sort_keys=True)
    except json.JSONDecodeError as err:
        raise SettingsError(f"overrides are not valid JSON: {err}") from None


def scenario_file(root: Path, name: str) -> Path:
    return Path(root) / SCENARIO_DIR / f"{check_scenario_name(name)}.json"


def register_scenario(root: Path, name: str, overrides_json: str = "{}") -> Settings:
    """Record what scenario `name` means under the preset root `root` (validated first, so a
    bad scenario writes nothing); return its settings. Re-registering a name with other
    overrides redefines it: its cells' reuse keys change, so they are recomputed."""
    preset = Path(root).name
    canonical = canonical_overrides(overrides_json)
    settings = graph_settings(preset, canonical)
    if name == BASELINE:
        if settings.overrides_scenario != BASELINE:
            raise SettingsError(f"scenario {BASELINE!r} means the preset without overrides; name this scenario")
        return settings  # the preset itself: nothing to record
    path = scenario_file(root, name)
    text = json.dumps({"overrides": json.loads(canonical)}, sort_keys=True, indent=1).encode()
    if not path.is_file() or path.read_bytes() != text:
        atomic_write_bytes(path, text)
    return settings


def scenario_overrides(root: Path, name: str) -> str:
    """The canonical overrides JSON of a registered scenario (`baseline` is always {})."""
    if check_scenario_name(name) == BASELINE:
        return "{}"
    path = scenario_file(root, name)
    if not path.is_file():
        raise SettingsError(f"scenario {name!r} is not registered under {root} (no {path.name}); register it with "
                            "`esmr run --overrides ...` or `esmr study run`")
    return json.dumps(json.loads(path.read_text())["overrides"], sort_keys=True)


def scenario_settings(root: Path, name: str) -> Settings:
    """The settings of scenario `name`: the preset of `root` with the scenario's overrides."""
    return graph_settings(Path(root).name, scenario_overrides(root, name))


def registered_scenarios(root: Path) -> list[str]:
    folder = Path(root) / SCENARIO_DIR
    names = {path.stem for path in folder.glob("*.json")} if folder.is_dir() else set()
    return sorted(names | {BASELINE})
