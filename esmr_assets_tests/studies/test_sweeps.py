"""Sweeps: the next unused seeds, seed ranges for `esmr sweep`, the schedule that registers
seeds and asks for runs, and the sensor that refreshes the SQL models after a seed run."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from esmr_assets.cli import main
from esmr_assets.core.settings import SettingsError
from esmr_assets.definitions import cell_steps, defs, sql_models_sensor
from esmr_assets.orchestration.automation import build_sweep_schedule, sweep_settings
from esmr_assets.orchestration.resources import run_config
from esmr_assets.studies.sweeps import next_unused_seeds, parse_seed_ranges


def test_next_unused_seeds_fill_gaps_first():
    assert next_unused_seeds([], 3) == [0, 1, 2]
    assert next_unused_seeds(["0", "2", "5", "not-a-seed"], 4) == [1, 3, 4, 6]
    with pytest.raises(ValueError):
        next_unused_seeds([], 0)


def test_seed_ranges():
    assert parse_seed_ranges("0-3") == [0, 1, 2, 3]
    assert parse_seed_ranges("0-2,7, 1,10-11") == [0, 1, 2, 7, 10, 11]
    for bad in ("3-1", "a", "1,,2", "-1", "01", "0-20000"):
        with pytest.raises(SettingsError):
            parse_seed_ranges(bad)


def test_sweep_cli_rejects_bad_ranges_before_writing(tmp_path, capsys):
    assert main(["sweep", "--seeds", "4-2", "--data-dir", str(tmp_path / "d")]) == 2
    assert "runs backwards" in capsys.readouterr().err and not (tmp_path / "d").exists()


def fake_computed(root: Path, cell, settings, steps) -> None:
    """As if `cell` had computed `steps`: a file per asset, shared and keyed like a real run's."""
    from esmr_assets.orchestration.planner import plan_cell
    from esmr_assets.storage import reuse

    plan = plan_cell(root, cell_steps(), cell, settings)
    for step in steps:
        for asset in step.asset_keys:
            folder = root.joinpath(*asset.path) / f"scenario={cell.scenario}" / f"seed={cell.seed}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "part-0.parquet").write_bytes(asset.to_user_string().encode())
            reuse.write_record(folder)  # as the IO managers record what they computed with
            reuse.publish(root, asset.path, cell, plan.keys[step.op_name])


def finished_process_tags() -> dict[str, str]:
    """Run tags naming an in-process run's process that has ended."""
    import subprocess
    import sys

    from esmr_assets.orchestration.runner import process_tags

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return {**process_tags(), "esmr/pid": str(gone.pid)}


def add_cell_run(instance, cell_key: str, status, tags=None) -> None:
    scenario, _, seed = cell_key.partition("|")
    instance.add_run(dg.DagsterRun(job_name="esmr_job", run_id=f"run-{cell_key}-{status.value}", status=status, tags={
        "dagster/partition": cell_key, "dagster/partition/scenario": scenario, "dagster/partition/seed": seed,
        **(tags or {})}))


def test_schedule_grows_the_grid_and_runs_every_cell_not_done_nor_in_flight(tmp_path, monkeypatch):
    """The first tick adds seeds 0 and 1 (a seed another scenario registered does not count).
    By the second, 0 is done, 1 failed, 2 is running and 3's process was killed before it
    wrote anything: it asks again for 1 and 3, leaves 0 and 2 alone and adds 4 and 5."""
    from esmr_assets.policy.loop.registry import graph_settings
    from esmr_assets.storage.cells import Cell

    monkeypatch.setenv("ESMR_DATA_DIR", str(tmp_path))
    schedule = build_sweep_schedule(cell_steps, defs.resolve_job_def("esmr_job"), "0 3 * * *", 2, "smoke")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.instance_for_test() as instance:  # a schedule context needs an instance with a ref
        instance.add_dynamic_partitions("seed", ["1"])
        first = schedule(dg.build_schedule_context(instance=instance))
        assert [r.partition_key for r in first] == ["baseline|0", "baseline|1"]
        assert instance.get_dynamic_partitions("scenario") == ["baseline"]
        assert first[0].run_config["resources"]["esmr"]["config"]["preset"] == "smoke"
        everything = {key for step in cell_steps() for key in step.asset_keys}
        assert set(first[0].asset_selection) == everything  # nothing to reuse yet
        assert first[1].run_key == "cell-baseline|1"  # unique within the tick

        root, settings = tmp_path / "smoke", graph_settings("smoke", "{}")
        fake_computed(root, Cell("baseline", 0), settings, cell_steps())  # done
        fake_computed(root, Cell("baseline", 1), settings, cell_steps()[:1])  # begun, then failed
        add_cell_run(instance, "baseline|1", dg.DagsterRunStatus.FAILURE)
        add_cell_run(instance, "baseline|2", dg.DagsterRunStatus.STARTED)  # launched elsewhere: running
        add_cell_run(instance, "baseline|3", dg.DagsterRunStatus.STARTED, finished_process_tags())  # killed
        second = schedule(dg.build_schedule_context(instance=instance))
        assert [r.partition_key for r in second] == ["baseline|1", "baseline|3", "baseline|4", "baseline|5"]
        assert set(second[0].asset_selection) == everything - set(cell_steps()[0].asset_keys)
        assert sorted(instance.get_dynamic_partitions("seed"), key=int) == ["0", "1", "2", "3", "4", "5"]


def test_cell_status_tells_each_state_of_a_cell(tmp_path):
    """missing, partial (steps current, no run), failed, interrupted (a started run whose
    process is gone), running (its process lives) and done, from the disk and the instance."""
    from esmr_assets.orchestration.planner import cell_status
    from esmr_assets.orchestration.runner import process_tags
    from esmr_assets.policy.loop.registry import graph_settings
    from esmr_assets.storage.cells import Cell

    root, settings, cell = tmp_path / "smoke", graph_settings("smoke", "{}"), Cell("baseline", 0)

    def status() -> str:
        return cell_status(root, cell_steps(), cell, settings, instance)

    with dg.DagsterInstance.ephemeral() as instance:
        assert status() == "missing"
        fake_computed(root, cell, settings, cell_steps()[:2])
        assert status() == "partial"
        runs = [(dg.DagsterRunStatus.FAILURE, {}, "failed"),
                (dg.DagsterRunStatus.STARTED, finished_process_tags(), "interrupted"),
                (dg.DagsterRunStatus.STARTED, {**process_tags(), "esmr/process_start": "1"}, "interrupted"),  # pid reused
                (dg.DagsterRunStatus.STARTED, {}, "running"),  # launched elsewhere: taken at its word
                (dg.DagsterRunStatus.STARTED, process_tags(), "running")]  # this very process
        for n, (state, tags, expected) in enumerate(runs):
            instance.add_run(dg.DagsterRun(job_name="esmr_job", run_id=f"run-{n}", status=state,
                                           tags={"dagster/partition": cell.key, **tags}))
            assert status() == expected, tags
        fake_computed(root, cell, settings, cell_steps())
        assert status() == "done"


def test_a_study_schedule_runs_its_grid_and_reuses_what_a_scenario_does_not_change(tmp_path, monkeypatch):
    """Two scenarios that differ only in policy.alpha: once one cell's upstream steps are
    shared, the tick links them into the other scenario's cell (runless materializations) and
    asks only for the agents and what follows them."""
    from esmr_assets.orchestration.planner import plan_cell
    from esmr_assets.storage import reuse
    from esmr_assets.storage.cells import Cell
    from esmr_assets.studies.spec import load_study

    monkeypatch.setenv("ESMR_DATA_DIR", str(tmp_path))
    spec = tmp_path / "alphas.toml"
    spec.write_text('preset = "smoke"\nseeds = "0"\n[[scenario]]\nname = "a1"\n'
                    '[[scenario]]\nname = "a0"\noverrides = { policy = { alpha = 0.0 } }\n')
    study, root = load_study(spec), tmp_path / "smoke"
    first = Cell("alphas.a1", 0)
    plan = plan_cell(root, cell_steps(), first, study.scenarios[0].settings)
    upstream = [step for step in cell_steps() if step.op_name not in AGENT_AND_AFTER]
    for step in upstream:  # as if the first scenario's cell had computed its upstream steps
        for asset in step.asset_keys:
            folder = root.joinpath(*asset.path) / "scenario=alphas.a1" / "seed=0"
            folder.mkdir(parents=True)
            (folder / "part-0.parquet").write_bytes(asset.to_user_string().encode())
            reuse.write_record(folder)
            reuse.publish(root, asset.path, first, plan.keys[step.op_name])

    schedule = build_sweep_schedule(cell_steps, defs.resolve_job_def("esmr_job"), "0 3 * * *", 1, "smoke", str(spec))
    with dg.instance_for_test() as instance:
        requests = schedule(dg.build_schedule_context(instance=instance))
        assert sorted(instance.get_dynamic_partitions("scenario")) == ["alphas.a0", "alphas.a1"]
        assert instance.get_dynamic_partitions("study") == ["alphas"]  # its report can be launched
        by_cell = {r.partition_key: r for r in requests}
        assert sorted(by_cell) == ["alphas.a0|0", "alphas.a0|1", "alphas.a1|0", "alphas.a1|1"]  # spec seed + 1
        selected = {key.to_user_string() for key in by_cell["alphas.a0|0"].asset_selection}
        assert selected == {key.to_user_string() for step in cell_steps() if step.op_name in AGENT_AND_AFTER
                            for key in step.asset_keys}
        linked = root / "users" / "scenario=alphas.a0" / "seed=0" / "part-0.parquet"
        assert linked.read_bytes() == b"users"
        assert linked.stat().st_ino == (root / "users" / "scenario=alphas.a1" / "seed=0" / "part-0.parquet").stat().st_ino
        events = instance.fetch_materializations(dg.AssetKey("users"), limit=10).records
        assert [e.partition_key for e in events] == ["alphas.a0|0"]  # recorded, without a run
        assert events[0].run_id == ""
    assert (root / "scenarios" / "alphas.a0.json").is_file()


AGENT_AND_AFTER = {"agent_training", "deep_agent_training", "policy_rollouts", "action_shares", "evaluation_metrics",
                   "user_metrics", "policy_effects", "style_effects"}


def test_sweep_settings_come_from_the_environment(monkeypatch, tmp_path):
    assert sweep_settings() == ("0 3 * * *", 3, "paper", "")
    monkeypatch.setenv("ESMR_SWEEP_CRON", "*/5 * * * *")
    monkeypatch.setenv("ESMR_SWEEP_SEEDS", "7")
    monkeypatch.setenv("ESMR_SWEEP_PRESET", "smoke")
    assert sweep_settings() == ("*/5 * * * *", 7, "smoke", "")
    spec = tmp_path / "one.toml"
    spec.write_text('preset = "paper"\nseeds = "0"\n[[scenario]]\nname = "a"\n')
    monkeypatch.setenv("ESMR_SWEEP_STUDY", str(spec))
    assert sweep_settings() == ("*/5 * * * *", 7, "paper", str(spec))  # the study's preset wins
    spec.write_text('preset = "paper"\nseeds = "0"\n[[scenario]]\nname = "a"\nbogus = 1\n')
    with pytest.raises(SettingsError, match="bogus"):
        sweep_settings()
    monkeypatch.delenv("ESMR_SWEEP_STUDY")
    monkeypatch.setenv("ESMR_SWEEP_SEEDS", "0")
    with pytest.raises(SettingsError, match="ESMR_SWEEP_SEEDS"):
        sweep_settings()


def test_sensor_refreshes_sql_models_with_the_seed_runs_config():
    config = run_config("smoke", "/x")
    assert sql_models_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    with dg.DagsterInstance.ephemeral() as instance:
        run = dg.DagsterRun(job_name="esmr_job", run_id="seed-run", run_config=config)
        event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name="esmr_job")
        context = dg.build_run_status_sensor_context(
            sensor_name="sql_models_sensor", dagster_event=event, dagster_instance=instance, dagster_run=run
        )
        request = sql_models_sensor(context)
    assert request.run_key == "after-seed-run" and request.run_config == config


def test_study_reports_sensor_refreshes_the_studies_registered_where_the_sql_run_wrote(tmp_path):
    from esmr_assets.definitions import study_reports_sensor

    config = run_config("smoke", str(tmp_path))
    (tmp_path / "smoke" / "studies").mkdir(parents=True)
    (tmp_path / "smoke" / "studies" / "alphas.toml").write_text("")
    assert study_reports_sensor.default_status == dg.DefaultSensorStatus.STOPPED
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("study", ["alphas", "elsewhere"])  # the second: another data dir's
        run = dg.DagsterRun(job_name="sql_job", run_id="sql-run", run_config=config)
        event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name="sql_job")
        context = dg.build_run_status_sensor_context(
            sensor_name="study_reports_sensor", dagster_event=event, dagster_instance=instance, dagster_run=run
        )
        (request,) = study_reports_sensor(context)
    assert request.partition_key == "alphas" and request.run_key == "after-sql-run-alphas"
    assert request.run_config == config


def test_local_instance_limits_run_concurrency(tmp_path):
    shutil.copy(Path(__file__).resolve().parents[2] / "docs" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 2
    assert queue.tag_concurrency_limits == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
