"""Run configuration: scenarios, data dir resolution, and invalid input failing before
anything is written (through the CLI and through the resource)."""

import hashlib
import json
from pathlib import Path

import dagster as dg
import pytest

from esmr_assets.cli import main
from esmr_assets.core.settings import SettingsError
from esmr_assets.orchestration.resources import EsmrConfig
from esmr_assets.storage.cells import (
    Cell,
    overrides_scenario_name,
    parse_cell,
    register_scenario,
)


def test_presets_and_scenarios_never_collide(materialize, data_dir):
    override = json.dumps({"simulation": {"n_users": 700}})
    scenario = overrides_scenario_name("paper", override)
    for preset, overrides in (("paper", "{}"), ("smoke", "{}"), ("paper", override)):
        assert materialize(("numbers",), 0, preset=preset, overrides_json=overrides).success

    cells = sorted(str(p.parent.relative_to(data_dir)) for p in data_dir.rglob("part-0.parquet"))
    assert cells == sorted(["paper/numbers/scenario=baseline/seed=0", "smoke/numbers/scenario=baseline/seed=0",
                            f"paper/numbers/scenario={scenario}/seed=0"])
    assert scenario.startswith("overrides-")
    assert json.loads((data_dir / "paper/scenarios" / f"{scenario}.json").read_text()) == {
        "overrides": {"simulation": {"n_users": 700}}}


def test_the_scenario_of_overrides_is_stable():
    a = overrides_scenario_name("paper", '{"simulation": {"n_users": 700, "n_videos": 900}}')
    b = overrides_scenario_name("paper", '{"simulation": {"n_videos": 900, "n_users": 700}}')

    assert a == b != "baseline"
    # overriding with the preset's value changes nothing
    assert overrides_scenario_name("paper", '{"simulation": {"n_users": 1000}}') == "baseline"


def test_the_scenario_name_hashes_only_what_differs_from_the_preset():
    """A setting added later with a default must not rename the scenarios of earlier runs."""
    from esmr_assets.core.settings import presets as module

    overridden = module.load_settings("paper", {"policy": {"alpha": 0.5}})
    before = overridden.overrides_scenario
    grown = module.PRESETS["paper"].model_dump()
    grown["policy"]["alpha"] = 0.5
    assert module._differences(grown, module.PRESETS["paper"].model_dump()) == {"policy": {"alpha": 0.5}}
    expected = hashlib.sha256(json.dumps({"policy": {"alpha": 0.5}}, sort_keys=True).encode()).hexdigest()[:8]
    assert before == f"overrides-{expected}"
    assert module.load_settings("paper", {"policy": {"alpha": 0.5, "beta": 0.5}}).overrides_scenario == before


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert EsmrConfig().resolved_data_dir() == tmp_path / "data"

    monkeypatch.setenv("ESMR_DATA_DIR", str(tmp_path / "from-env"))
    assert EsmrConfig().resolved_data_dir() == tmp_path / "from-env"
    assert EsmrConfig(data_dir="explicit").resolved_data_dir() == tmp_path / "explicit"


INVALID_RUNS = [
    pytest.param(["--preset", "nope"], "unknown preset 'nope'", id="unknown-preset"),
    pytest.param(["--overrides", '{"simulation": {"n_users": 0}}'], "simulation.n_users", id="zero-users"),
    pytest.param(["--overrides", '{"simulation": {"n_users": -5}}'], "simulation.n_users", id="negative-users"),
    pytest.param(["--overrides", '{"simulation": {"n_videos": 0}}'], "simulation.n_videos", id="zero-videos"),
    pytest.param(["--overrides", '{"simulation": {"n_videos": -1}}'], "simulation.n_videos", id="negative-videos"),
    pytest.param(["--overrides", '{"simulation": {"n_days": 0}}'], "simulation.n_days", id="zero-days"),
    pytest.param(["--overrides", '{"simulation": {"n_days": -3}}'], "simulation.n_days", id="negative-days"),
    pytest.param(
        ["--overrides", '{"simulation": {"profile_shares": [0.5, 0.5, 0.5]}}'],
        "profile_shares must be non-negative and sum to 1",
        id="shares-not-summing-to-1",
    ),
    pytest.param(["--overrides", "{not json"], "overrides are not valid JSON", id="bad-json"),
    pytest.param(["--overrides", '{"simulation": {"n_user": 5}}'], "simulation.n_user", id="unknown-field"),
    pytest.param(["--overrides", '{"policy": {"candidates": 0}}'], "policy.candidates", id="no-candidates"),
    pytest.param(["--overrides", '{"policy": {"evaluation_share": 1.0}}'], "policy.evaluation_share",
                 id="no-training-users"),
    pytest.param(["--overrides", '{"policy": {"discount": 1.0}}'], "policy.discount", id="undiscounted"),
    pytest.param(["--overrides", '{"policy": {"learning_rate": 0}}'], "policy.learning_rate", id="zero-q-step"),
    pytest.param(["--overrides", '{"policy": {"temperature_decay": 0}}'], "policy.temperature_decay",
                 id="zero-temperature-decay"),
    pytest.param(["--overrides", '{"policy": {"epochs": 0}}'], "policy.epochs", id="zero-epochs"),
    pytest.param(["--overrides", '{"policy": {"agent_replicates": 0}}'], "policy.agent_replicates",
                 id="no-agent-replicate"),
    pytest.param(["--overrides", '{"policy": {"replicated_agents": ["lightgbm"]}}'], "policy.replicated_agents",
                 id="replicating-a-policy-without-an-agent"),
    pytest.param(["--overrides", '{"policy": {"agent_replicates": 2}, "evaluation": {"reference_policy": "esmr"}}'],
                 "evaluation.reference_policy", id="a-replicated-reference"),
    pytest.param(["--overrides", '{"emotion": {"split": [0.5, 0.5, 0.5]}}'], "split must be three positive shares",
                 id="bad-split"),
    pytest.param(["--overrides", '{"emotion": {"d_model": 15, "n_heads": 2}}'], "must be divisible by n_heads",
                 id="heads-not-dividing-width"),
    pytest.param(["--overrides", '{"causal": {"min_rows": 5}}'], "causal.min_rows", id="too-few-causal-rows"),
    pytest.param(["--overrides", '{"causal": {"method": "magic"}}'], "causal.method", id="unknown-causal-method"),
    pytest.param(["--overrides", '["not", "a", "mapping"]'], "overrides must be", id="overrides-not-a-mapping"),
]


@pytest.mark.parametrize(("extra", "message"), INVALID_RUNS)
def test_invalid_settings_fail_before_writing(data_dir, capsys, extra, message):
    code = main(["run", "--seed", "0", "--data-dir", str(data_dir), *extra])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("esmr: error: ") and err.count("\n") == 1
    assert message in err
    assert not data_dir.exists()


@pytest.mark.parametrize("seed", ["abc", "-1", "1.5", "007", "99999999999999999999"])
def test_invalid_seed_fails_before_writing(data_dir, capsys, seed):
    code = main(["run", f"--seed={seed}", "--data-dir", str(data_dir)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("esmr: error: seed must be")
    assert repr(seed) in err
    assert not data_dir.exists()


def test_one_bad_seed_among_good_ones_writes_nothing(data_dir, capsys):
    assert main(["run", "--seed", "0", "--seed", "x", "--data-dir", str(data_dir)]) == 2
    assert "'x'" in capsys.readouterr().err
    assert not data_dir.exists()


def test_unwritable_data_dir_fails_before_writing(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    data_dir = blocker / "data"

    code = main(["run", "--seed", "0", "--data-dir", str(data_dir)])

    err = capsys.readouterr().err
    assert code == 2
    assert err == f"esmr: error: data dir {data_dir} is not writable: {blocker} is a file, not a folder\n"
    assert blocker.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


def test_a_scenario_with_bad_settings_fails_before_any_output(materialize, data_dir, failure_text):
    """A scenario file edited by hand into nonsense: the run fails naming the field, and
    nothing is written for the cell."""
    overrides = '{"simulation": {"n_users": 700}}'
    scenario = overrides_scenario_name("paper", overrides)
    register_scenario(data_dir / "paper", scenario, overrides)
    (data_dir / "paper/scenarios" / f"{scenario}.json").write_text('{"overrides": {"simulation": {"n_users": 0}}}')

    result = materialize(("numbers",), 0, overrides_json=overrides, register=False)

    assert not result.success
    assert "simulation.n_users: Input should be greater than 0" in failure_text(result)
    assert not result.get_step_success_events()
    assert not list(data_dir.rglob("*.parquet"))


def test_registering_bad_overrides_writes_nothing(data_dir):
    with pytest.raises(SettingsError, match="simulation.n_users"):
        register_scenario(data_dir / "paper", "bad", '{"simulation": {"n_users": 0}}')
    with pytest.raises(SettingsError, match="'baseline' means the preset"):
        register_scenario(data_dir / "paper", "baseline", '{"simulation": {"n_users": 700}}')
    with pytest.raises(SettingsError, match="scenario name"):
        register_scenario(data_dir / "paper", "Bad/Name", "{}")
    assert not data_dir.exists()


def test_resource_rejects_unwritable_data_dir(materialize, tmp_path, failure_text):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")

    result = materialize(("numbers",), 0, data_dir=blocker / "data")

    assert not result.success
    assert f"data dir {blocker / 'data'} is not writable" in failure_text(result)
    assert blocker.read_text() == "keep me"


def test_settings_error_for_bad_overrides_json():
    with pytest.raises(SettingsError, match="not valid JSON"):
        overrides_scenario_name("paper", "[1,")
    with pytest.raises(SettingsError, match="overrides must be a JSON object"):
        overrides_scenario_name("paper", "[1]")
    with pytest.raises(SettingsError, match="overrides must be a JSON object"):
        overrides_scenario_name("paper", "null")


def test_cell_from_partition_key():
    class Context(dg.AssetExecutionContext):
        def __init__(self, key: str) -> None:
            self.key = key

        @property
        def partition_key(self) -> str:
            return self.key

    assert EsmrConfig().cell(Context("baseline|42")) == Cell("baseline", 42)
    assert parse_cell("sensitivity.alpha_0|3") == Cell("sensitivity.alpha_0", 3)
    with pytest.raises(SettingsError, match="not registered"):
        EsmrConfig().seed(Context("sensitivity.alpha_0|3"))
    with pytest.raises(SettingsError, match="'4x'"):
        EsmrConfig().seed(Context("baseline|4x"))
    with pytest.raises(SettingsError, match="is not a cell"):
        EsmrConfig().seed(Context("42"))


def test_valid_run_validation_creates_only_data_dir(data_dir: Path, monkeypatch, capsys, toy_defs):
    """A valid request gets past validation: the run itself is exercised in test_warehouse_cli."""
    monkeypatch.setattr("esmr_assets.cli.commands.load_definitions", lambda: toy_defs("numbers"))

    assert main(["run", "--seed", "1", "--preset", "smoke", "--data-dir", str(data_dir)]) == 0
    assert sorted(p.name for p in data_dir.iterdir()) == [".dagster", "smoke"]
