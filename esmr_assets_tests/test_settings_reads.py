"""Every asset declares the settings it reads (`resources.reads`), and reads nothing else:
`EsmrConfig.settings_for` hands it only what it declared, so a short declaration fails the
run instead of silently letting two scenarios share an output they should not."""

import re

import dagster as dg
import pytest

from esmr_assets.partitions import seed_partitions
from esmr_assets.resources import SETTINGS_READ, EsmrConfig, reads, run_config
from esmr_assets.settings import SettingsView, UndeclaredSettingError, load_settings


def test_every_partitioned_asset_of_the_graph_declares_its_settings():
    from esmr_assets.definitions import defs

    undeclared = [
        key.to_user_string()
        for assets_def in defs.resolve_asset_graph().assets_defs
        if assets_def.partitions_def is not None
        for key, spec in assets_def.specs_by_key.items()
        if SETTINGS_READ not in spec.metadata
    ]
    assert undeclared == []


def test_a_view_hands_out_what_was_declared_and_refuses_the_rest():
    view = SettingsView(load_settings("smoke"), ["simulation", "policy.alpha"], "toy")
    assert view.simulation.n_users == 60 and view.policy.alpha == 1.0 and view.preset == "smoke"
    with pytest.raises(UndeclaredSettingError, match=r"toy reads settings\.policy\.beta"):
        view.policy.beta
    with pytest.raises(UndeclaredSettingError, match=r"toy reads settings\.emotion"):
        view.emotion
    with pytest.raises(ValueError, match="policy has no setting 'alhpa'"):
        reads("policy.alhpa")
    with pytest.raises(ValueError, match="no settings section 'policies'"):
        reads("policies")


@dg.asset(partitions_def=seed_partitions, metadata=reads("simulation.n_users"))
def sneaky(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> None:
    esmr.settings_for(context).policy.alpha  # not declared


@dg.asset(partitions_def=seed_partitions)
def silent(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> None:
    esmr.settings_for(context)  # declares nothing at all


@pytest.mark.parametrize("asset, message", [
    (sneaky, r"sneaky reads settings\.policy without declaring it"),
    (silent, r"asset silent does not declare the settings it reads"),
])
def test_a_run_reading_an_undeclared_setting_fails_naming_it(tmp_path, asset, message, failure_text):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(seed_partitions.name, ["0"])
        result = dg.materialize([asset], instance=instance, partition_key="0", raise_on_error=False,
                                resources={"esmr": EsmrConfig.configure_at_launch()},
                                run_config=run_config("smoke", tmp_path))
    assert not result.success
    assert re.search(message, failure_text(result))
