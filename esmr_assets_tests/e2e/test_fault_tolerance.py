"""Fault tolerance: a materialization killed with SIGKILL in the middle of writing leaves
the previous partition intact and its half-file invisible, and the next run succeeds;
cells materialized by concurrent processes give the bytes of sequential runs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from esmr_assets.storage.files import remove_stale_temps
from esmr_assets.storage.warehouse import run_query

WRITER = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    import polars as pl
    from esmr_assets.orchestration.parquet_io import ParquetIOManager
    from esmr_assets.storage.cells import Cell
    from esmr_assets.orchestration.partitions import cell_partitions, register_cells
    from esmr_assets.orchestration.resources import EsmrConfig, run_config

    data_dir, value = sys.argv[1], int(sys.argv[2])

    @dg.asset(partitions_def=cell_partitions)
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"x": list(range(200_000))}).with_columns(v=pl.lit(value))

    if value < 0:  # this run is to be killed: stall after the temp file is written
        write = pl.DataFrame.write_parquet

        def stalled(self, file, **kwargs):
            write(self, file, **kwargs)
            print("TEMP-WRITTEN", flush=True)
            time.sleep(300)

        pl.DataFrame.write_parquet = stalled

    esmr = EsmrConfig.configure_at_launch()
    defs = dg.Definitions(assets=[numbers], resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)})
    config = run_config("smoke", data_dir)
    with dg.DagsterInstance.ephemeral() as instance:
        register_cells(instance, [Cell("baseline", 0)])
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            run_config=config, instance=instance, partition_key="baseline|0")
    print("SUCCESS" if result.success else "FAILED", flush=True)
    """
)


def run_writer(data_dir, value) -> str:
    done = subprocess.run([sys.executable, "-c", WRITER, str(data_dir), str(value)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sigkill_mid_write_keeps_the_previous_partition(tmp_path):
    root = tmp_path / "smoke"
    part = root / "numbers" / "scenario=baseline/seed=0" / "part-0.parquet"
    assert "SUCCESS" in run_writer(tmp_path, 1)
    good = part.read_bytes()

    with subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "-1"], stdout=subprocess.PIPE,
                          text=True) as doomed:
        try:
            assert doomed.stdout.readline().strip() == "TEMP-WRITTEN"
        finally:
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=30)
    assert doomed.returncode == -signal.SIGKILL
    leftovers = list(part.parent.glob(".part-0.parquet.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0  # killed mid-write, after filling its temp file
    assert part.read_bytes() == good  # the previous partition is intact
    assert run_query(root, "select distinct v from numbers")["v"].to_list() == [1]  # the half-file is invisible

    assert "SUCCESS" in run_writer(tmp_path, 2)  # the re-run succeeds and replaces the partition
    assert pl.read_parquet(part)["v"].unique().to_list() == [2]
    assert not list(part.parent.glob(".part-0.parquet.*.tmp"))  # and clears the dead writer's temp file


def test_only_dead_writers_temp_files_are_removed(tmp_path):
    path = tmp_path / "part-0.parquet"
    with subprocess.Popen([sys.executable, "-c", "pass"]) as finished:
        finished.wait(timeout=30)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as running:
        try:
            live = tmp_path / f".part-0.parquet.{running.pid}.aa.tmp"
            dead = tmp_path / f".part-0.parquet.{finished.pid}.bb.tmp"
            other = tmp_path / f".other.parquet.{finished.pid}.cc.tmp"
            for temp in (live, dead, other):
                temp.write_bytes(b"half")
            assert remove_stale_temps(path) == [dead]
            assert live.exists() and other.exists() and not dead.exists()
        finally:
            running.kill()


#: the smallest population the whole graph accepts: 4 cells of it run at once in about a minute
SMALL = {"simulation": {"n_users": 26, "n_days": 22, "n_videos": 120}, "policy": {"training_users": 13}}
ALPHA = {**SMALL, "policy": {**SMALL["policy"], "alpha": 0.5}}
BIN = Path(sys.executable).parent


def _esmr_run(data_dir: Path, overrides: dict, *seeds: str) -> subprocess.Popen:
    args = [BIN / "esmr", "run", "--preset", "smoke", "--overrides", json.dumps(overrides), "--data-dir", str(data_dir)]
    for seed in seeds:
        args += ["--seed", seed]
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "ESMR_DATA_DIR")}
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-2000:]


@pytest.mark.slow
def test_four_cells_at_once_give_the_bytes_of_sequential_runs(tmp_path):
    """Two seeds x two scenarios (alpha), each its own `esmr run` process, all at once into one
    data dir and one instance: they race to compute and share the upstream steps the
    scenarios have in common, and to link them. The reference is the same four cells one
    after another in one process (a study of the two scenarios)."""
    from esmr_assets.storage.cells import overrides_scenario_name

    together, one_by_one = tmp_path / "together", tmp_path / "one_by_one"
    _wait([_esmr_run(together, overrides, seed) for overrides in (SMALL, ALPHA) for seed in ("11", "12")])
    spec = tmp_path / "four.toml"
    spec.write_text(f'preset = "smoke"\nseeds = "11,12"\noverrides = {_toml(SMALL)}\n'
                    '[[scenario]]\nname = "small"\n[[scenario]]\nname = "alpha"\n'
                    'overrides = { policy = { alpha = 0.5 } }\n')
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "ESMR_DATA_DIR")}
    done = subprocess.run([BIN / "esmr", "study", "run", str(spec), "--data-dir", str(one_by_one)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    compared = 0
    for overrides, scenario in ((SMALL, "four.small"), (ALPHA, "four.alpha")):
        mine = overrides_scenario_name("smoke", json.dumps(overrides))
        for path in (one_by_one / "smoke").rglob(f"scenario={scenario}/seed=*/*"):
            if path.is_file() and path.name not in (".seconds", ".key"):  # keys: the scenario is part of none
                twin = together / path.relative_to(one_by_one).as_posix().replace(f"scenario={scenario}",
                                                                                   f"scenario={mine}")
                assert Path(twin).read_bytes() == path.read_bytes(), path.relative_to(one_by_one)
                compared += 1
    assert compared >= 4 * 24  # every asset of every cell
    assert not list(together.rglob("*.tmp"))


def _toml(table: dict) -> str:
    """A nested table of numbers as a TOML inline table."""
    return "{ " + ", ".join(f"{k} = {_toml(v) if isinstance(v, dict) else v}" for k, v in table.items()) + " }"
