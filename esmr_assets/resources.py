"""The shared run configuration every asset and the IO manager depend on.

Domain-free on purpose: it turns (preset, data dir, overrides) into validated `Settings`
and a storage root, and refuses to start a run that could not finish writing.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from esmr_assets.settings import Settings, SettingsView, check_setting_paths, parse_seed
from esmr_assets.storage import (
    ensure_writable_dir,
    load_settings_json,
    resolve_data_dir,
    storage_root,
)

#: asset metadata key of the settings an asset reads (`reads`)
SETTINGS_READ = "esmr/settings_read"


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


def run_config(preset: str = "paper", data_dir: str | Path = "", overrides_json: str = "{}") -> dict:
    """Run config setting the `esmr` resource, as `esmr run`, schedules and tests launch runs."""
    config = {"preset": preset, "data_dir": str(data_dir), "overrides_json": overrides_json}
    return {"resources": {"esmr": {"config": config}}}


class EsmrConfig(dg.ConfigurableResource):
    """Preset, data dir and setting overrides of one run.

    Create it with `EsmrConfig.configure_at_launch()` so nested resources (the IO manager)
    see the values given at launch time (UI launchpad, `esmr run`).
    """

    preset: str = Field(default="paper", description="named settings preset: paper, smoke or large")
    data_dir: str = Field(default="", description="warehouse folder; empty means $ESMR_DATA_DIR, else ./data")
    overrides_json: str = Field(
        default="{}", description='JSON object of nested setting overrides, e.g. {"simulation": {"n_users": 50}}'
    )

    def settings(self) -> Settings:
        """The validated settings; raises `SettingsError` naming the bad field."""
        return load_settings_json(self.preset, self.overrides_json)

    def settings_for(self, context: dg.AssetExecutionContext) -> SettingsView:
        """The settings the executing asset declared (`reads`), and nothing else."""
        return SettingsView(self.settings(), declared_reads(context), context.op_def.name)

    def resolved_data_dir(self) -> Path:
        return resolve_data_dir(self.data_dir)

    def storage_root(self) -> Path:
        """`<data_dir>/<namespace>`: one folder per distinct configuration."""
        return storage_root(self.resolved_data_dir(), self.settings())

    def seed(self, context: dg.AssetExecutionContext) -> int:
        """The run's seed, from its partition key."""
        return parse_seed(context.partition_key)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fail at resource initialisation, before any asset body runs or any file is written.
        self.settings()
        ensure_writable_dir(self.resolved_data_dir())
