"""Fault tolerance: a materialization killed with SIGKILL in the middle of writing leaves
the previous partition intact and its half-file invisible, and the next run succeeds;
seeds materialized by concurrent processes give the bytes of sequential runs."""

import os
import signal
import subprocess
import sys
import textwrap

import polars as pl

from esmr_assets.storage import remove_stale_temps
from esmr_assets.warehouse import run_query

WRITER = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    import polars as pl
    from esmr_assets.io_manager import ParquetIOManager
    from esmr_assets.cells import Cell
    from esmr_assets.partitions import cell_partitions, register_cells
    from esmr_assets.resources import EsmrConfig, run_config

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


SIMULATE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from esmr_assets.cells import Cell
    from esmr_assets.definitions import defs
    from esmr_assets.partitions import register_cells
    from esmr_assets.resources import run_config
    from esmr_assets.runner import open_instance

    data_dir, home, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
    config = run_config("smoke", data_dir)
    with open_instance(Path(home)) as instance:  # as `esmr run` opens it
        register_cells(instance, [Cell("baseline", int(seed)) for seed in seeds])
        keys = {seed: f"baseline|{seed}" for seed in seeds}
        for seed in seeds:
            result = defs.resolve_job_def("simulation_job").execute_in_process(
                run_config=config, instance=instance, partition_key=keys[seed])
            if not result.success:
                sys.exit(1)
    """
)
SEEDS = ("11", "12", "13", "14")


def _simulate(data_dir, seeds, concurrently: bool) -> None:
    home = data_dir / ".dagster"  # fresh: the four processes race to create the instance
    script = [sys.executable, "-c", SIMULATE, str(data_dir), str(home)]
    if concurrently:  # one process per seed, all on one sqlite instance and one data dir at once
        processes = [subprocess.Popen([*script, seed], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for seed in seeds]
        for process in processes:
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err[-2000:]
    else:  # one process, one seed after the other
        done = subprocess.run([*script, *seeds], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]


def test_concurrent_seeds_give_the_bytes_of_sequential_runs(tmp_path):
    _simulate(tmp_path / "together", SEEDS, concurrently=True)
    _simulate(tmp_path / "one_by_one", SEEDS, concurrently=False)
    files = sorted(p.relative_to(tmp_path / "one_by_one") for p in (tmp_path / "one_by_one" / "smoke").rglob("scenario=baseline/seed=*/*"))
    assert len(files) >= 4 * 5  # videos, users, user_day_logs, impressions (+ plots) per seed
    for rel in files:
        assert (tmp_path / "together" / rel).read_bytes() == (tmp_path / "one_by_one" / rel).read_bytes(), rel
    assert not list((tmp_path / "together").rglob("*.tmp"))
