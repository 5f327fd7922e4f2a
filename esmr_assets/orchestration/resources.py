"""The shared run configuration every asset and the IO manager depend on.

Domain-free on purpose: it turns (preset, data dir, the partition's cell) into validated
`Settings` and a storage root, and refuses to start a run that could not finish writing.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from esmr_assets.core.settings import (
    PRESETS,
    Settings,
    SettingsError,
    SettingsView,
    check_setting_paths,
)
from esmr_assets.storage.cells import Cell, parse_cell, scenario_settings
from esmr_assets.storage.files import ensure_writable_dir, resolve_data_dir, storage_root

#: asset metadata key of the settings an asset reads (`reads`)
SETTINGS_READ = "esmr/settings_read"


#: op tag of a step whose domain code runs independent jobs in worker processes
#: (`core.parallel`): the modules of its jobs, comma-separated (`parallel_jobs`)
PARALLEL_JOBS = "esmr/parallel_jobs"


def parallel_jobs(*modules: str) -> dict:
    """Op tags declaring that a step's jobs may run in workers, and the modules they live in: a
    run that will compute such a step starts its workers early (`planner.py`)."""
    return {PARALLEL_JOBS: ",".join(modules)}


def reads(*paths: str) -> dict:
    """Asset metadata declaring the settings an asset reads: whole sections ("simulation") or
    single settings ("policy.alpha"). `EsmrConfig.settings_for` hands the asset only these;
    together with its inputs they are everything its output depends on."""
    return {SETTINGS_READ: list(check_setting_paths(paths))}


def declared_reads(context: dg.AssetExecutionContext) -> tuple[str, ...]:
    """The union of the settings declared by the assets the step materializes."""
    paths: list[str] = []
    for key in context.selected_asset_keys:
        declared = context.assets_def.specs_by_key[key].metadata.get(SETTINGS_READ)
        if declared is None:
            raise dg.DagsterInvariantViolationError(
                f"asset {key.to_user_string()} does not declare the settings it reads (resources.reads)")
        paths += declared.value if isinstance(declared, dg.MetadataValue) else declared
    return tuple(dict.fromkeys(paths))


def run_config(preset: str = "paper", data_dir: str | Path = "") -> dict:
    """Run config setting the `esmr` resource, as `esmr run`, schedules and tests launch runs.
    What a scenario overrides comes from its registration (`cells.register_scenario`), not
    from run config, so a cell means the same thing however it is launched."""
    return {"resources": {"esmr": {"config": {"preset": preset, "data_dir": str(data_dir)}}}}


class EsmrConfig(dg.ConfigurableResource):
    """Preset and data dir of one run; the partition key names the cell (scenario, seed).

    Create it with `EsmrConfig.configure_at_launch()` so nested resources (the IO manager)
    see the values given at launch time (UI launchpad, `esmr run`).
    """

    preset: str = Field(default="paper", description="named settings preset: paper, smoke or large")
    data_dir: str = Field(default="", description="warehouse folder; empty means $ESMR_DATA_DIR, else ./data")

    def resolved_data_dir(self) -> Path:
        return resolve_data_dir(self.data_dir)

    def storage_root(self) -> Path:
        """`<data_dir>/<preset>`: every cell of the preset, and its scenario registry."""
        return storage_root(self.resolved_data_dir(), self.preset)

    def scenario_settings(self, scenario: str) -> Settings:
        """The validated settings of a registered scenario; `SettingsError` naming the problem."""
        return scenario_settings(self.storage_root(), scenario)

    def cell(self, context: dg.AssetExecutionContext | dg.InputContext | dg.OutputContext) -> Cell:
        """The run's cell, from its partition key; its scenario's settings are validated here, so
        a bad scenario fails the first asset that asks for its cell, before it writes anything."""
        key = context.partition_key if isinstance(context, dg.AssetExecutionContext) else context.asset_partition_key
        cell = parse_cell(key)
        self.scenario_settings(cell.scenario)
        return cell

    def settings_for(self, context: dg.AssetExecutionContext) -> SettingsView:
        """The settings the executing asset declared (`reads`) in its cell's scenario, and nothing else."""
        return SettingsView(self.scenario_settings(self.cell(context).scenario), declared_reads(context),
                            context.op_def.name)

    def seed(self, context: dg.AssetExecutionContext) -> int:
        """The run's seed, from its partition key."""
        return self.cell(context).seed

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail at resource initialisation, before any asset body runs or any file is written.
        if self.preset not in PRESETS:
            raise SettingsError(f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        ensure_writable_dir(self.resolved_data_dir())
