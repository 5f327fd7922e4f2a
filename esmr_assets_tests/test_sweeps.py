"""Sweeps: the next unused seeds, seed ranges for `esmr sweep`, the schedule that registers
seeds and asks for runs, and the sensor that refreshes the SQL models after a seed run."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from esmr_assets.automation import build_sweep_schedule, sweep_settings
from esmr_assets.cli import main
from esmr_assets.definitions import defs, sql_models_sensor
from esmr_assets.resources import run_config
from esmr_assets.settings import SettingsError
from esmr_assets.sweeps import next_unused_seeds, parse_seed_ranges


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


def test_schedule_registers_the_next_seeds_and_requests_one_run_each():
    schedule = build_sweep_schedule(defs.resolve_job_def("esmr_job"), "0 3 * * *", 2, "smoke")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.instance_for_test() as instance:  # a schedule context needs an instance with a ref
        instance.add_dynamic_partitions("seed", ["1"])
        first = schedule(dg.build_schedule_context(instance=instance))
        assert [r.partition_key for r in first] == ["0", "2"]
        assert sorted(instance.get_dynamic_partitions("seed")) == ["0", "1", "2"]
        assert first[0].run_config["resources"]["esmr"]["config"]["preset"] == "smoke"
        second = schedule(dg.build_schedule_context(instance=instance))
        assert [r.partition_key for r in second] == ["3", "4"]


def test_sweep_settings_come_from_the_environment(monkeypatch):
    assert sweep_settings() == ("0 3 * * *", 3, "paper")
    monkeypatch.setenv("ESMR_SWEEP_CRON", "*/5 * * * *")
    monkeypatch.setenv("ESMR_SWEEP_SEEDS", "7")
    monkeypatch.setenv("ESMR_SWEEP_PRESET", "smoke")
    assert sweep_settings() == ("*/5 * * * *", 7, "smoke")
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


def test_local_instance_limits_run_concurrency(tmp_path):
    shutil.copy(Path(__file__).resolve().parents[1] / "docs" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
    assert queue.max_concurrent_runs == 2
    assert queue.tag_concurrency_limits == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
