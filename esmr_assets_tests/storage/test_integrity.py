"""Integrity under faults and hostile input (docs/integrity.md): damage is detected and
repaired and never spread; `esmr sql` reads the warehouse and nothing else, within bounds;
every invalid input is refused before anything is written; errors are one line."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from esmr_assets.cli import commands, main
from esmr_assets.core.settings import SettingsError, load_settings, parse_seed
from esmr_assets.orchestration.planner import materialize_cells, plan_cell
from esmr_assets.orchestration.resources import run_config
from esmr_assets.orchestration.runner import plan_steps
from esmr_assets.policy.loop.registry import graph_settings
from esmr_assets.storage import reuse
from esmr_assets.storage.cells import Cell, check_scenario_name, register_scenario
from esmr_assets.storage.warehouse import WarehouseError, query_rows, run_query
from esmr_assets.studies.spec import StudyError, parse_study

TOY = ("numbers", "parity", "doubled")
BIN = Path(sys.executable).parent


@pytest.fixture
def toy(toy_defs, data_dir, instance):
    """(steps, root, run): run(*cells) brings cells of the toy graph up to date."""
    defs = toy_defs(*TOY)
    steps = [step for step in plan_steps(defs) if step.partitioned]
    root = data_dir / "paper"
    other = register_scenario(root, "other", '{"policy": {"alpha": 0.5}}')

    def run(*cells: Cell):
        chosen = [(cell, other if cell.scenario == "other" else load_settings("paper")) for cell in cells]
        return materialize_cells(defs, steps, chosen, root, run_config("paper", data_dir), instance)

    return steps, root, run


def _damage(path: Path, size: int = 100) -> None:
    """What a careless tool (or root) does: a write in place, through every link of the file."""
    os.chmod(path, 0o644)
    os.truncate(path, size)


def _part(root: Path, asset: str, cell: Cell) -> Path:
    return root / asset / f"scenario={cell.scenario}" / f"seed={cell.seed}" / "part-0.parquet"


# ------------------------------------------------------------------------- damage
def test_keys_vouch_for_every_file_with_its_size_and_hash(toy):
    steps, root, run = toy
    cell = Cell("baseline", 1)
    run(cell)
    key, files = reuse.read_key_file(_part(root, "numbers", cell).parent)
    assert set(files) == {"part-0.parquet", reuse.RECORD_FILE}
    size, digest = files["part-0.parquet"]
    import hashlib

    data = _part(root, "numbers", cell).read_bytes()
    assert size == len(data) and digest == hashlib.sha256(data).hexdigest()
    assert reuse.read_key_file(reuse.shared_dir(root, ["numbers"], key)) == (key, files)


def test_a_truncated_file_is_damaged_not_current_and_a_rerun_repairs_it_and_the_shared_copy(toy):
    steps, root, run = toy
    first, second = Cell("baseline", 1), Cell("other", 1)
    run(first)
    run(second)  # linked: the same files
    bad = _part(root, "numbers", first)
    good = bad.read_bytes()
    assert bad.stat().st_nlink == 3  # the two cells and the reuse store
    _damage(bad, 100)  # through one link: every cell that shares it sees it

    plan = plan_cell(root, steps, first, load_settings("paper"))
    assert [s.op_name for s in plan.to_compute] == ["numbers"] and "numbers" not in [s.op_name for s in plan.current]
    assert any("100 bytes" in problem for problem in plan.damaged["numbers"])
    assert any("shared" in problem for problem in plan.damaged["numbers"])
    outcome = run(first)[first]
    assert isinstance(outcome["numbers"], float) and outcome["doubled"] == "current"  # only the damaged step
    assert bad.read_bytes() == good
    key = reuse.stored_key(root, ["numbers"], first)
    assert reuse.shared_damage(root, ["numbers"], key) == []  # the store holds the good bytes again
    # the other cell still holds the damaged inode: damaged, and linked back to the repaired copy
    assert run(second)[second]["numbers"] == "reused"
    assert _part(root, "numbers", second).read_bytes() == good


def test_deleting_a_damaged_file_and_its_key_never_relinks_the_damage(toy):
    """The issue's case: the file and its key removed by hand, the truncated shared copy left."""
    steps, root, run = toy
    cell = Cell("baseline", 2)
    run(cell)
    bad = _part(root, "numbers", cell)
    good = bad.read_bytes()
    _damage(bad, 100)
    bad.unlink()
    (bad.parent / reuse.KEY_FILE).unlink()
    assert [s.op_name for s in plan_cell(root, steps, cell, load_settings("paper")).reusable] == []
    run(cell)
    assert bad.read_bytes() == good and bad.stat().st_size == len(good) and bad.stat().st_nlink == 2
    assert not list(root.rglob("*.tmp"))


def test_shared_files_are_read_only_and_the_project_only_ever_replaces_them(toy, materialize):
    steps, root, run = toy
    first, second = Cell("baseline", 3), Cell("other", 3)
    run(first)
    run(second)
    theirs = _part(root, "numbers", second)
    before = theirs.read_bytes()
    assert theirs.stat().st_mode & 0o777 == 0o444
    assert materialize(("numbers",), 3).success  # a rewrite of the first cell through the IO manager
    assert theirs.read_bytes() == before and theirs.stat().st_nlink == 2  # a new file there, not a write through


def test_relinking_a_shared_file_onto_itself_leaves_nothing_behind(toy):
    steps, root, run = toy
    cell = Cell("baseline", 4)
    run(cell)
    key = reuse.stored_key(root, ["numbers"], cell)
    for _ in range(3):
        reuse.link_shared(root, ["numbers"], cell, key)
    assert sorted(p.name for p in _part(root, "numbers", cell).parent.iterdir() if p.name.startswith(".")) == [
        reuse.KEY_FILE, reuse.RECORD_FILE]
    assert not list(root.rglob("*.tmp"))


def test_one_unreadable_file_leaves_every_other_table_queryable_and_is_named(toy):
    steps, root, run = toy
    cell = Cell("baseline", 5)
    run(cell)
    bad = _part(root, "numbers", cell)  # the only file of its table
    _damage(bad, 100)
    assert run_query(root, "select count(*) as n from doubled")["n"].item() == 8
    with pytest.raises(WarehouseError, match=str(bad)):
        run_query(root, "select count(*) from numbers")


def test_esmr_verify_reports_damage_and_repair_recomputes_only_the_damaged(toy_defs, data_dir, monkeypatch, capsys):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs(*TOY))
    assert main(["run", "--seed", "6", "--data-dir", str(data_dir)]) == 0
    assert main(["verify", "--data-dir", str(data_dir)]) == 0
    assert "0 damaged" in capsys.readouterr().out
    root = data_dir / "paper"
    bad, untouched = _part(root, "numbers", Cell("baseline", 6)), _part(root, "evens", Cell("baseline", 6))
    good, inode = bad.read_bytes(), untouched.stat().st_ino
    _damage(bad, 100)

    assert main(["verify", "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "paper/numbers, scenario baseline, seed 6: part-0.parquet has 100 bytes" in out
    assert "2 damaged" in out  # the cell and the reuse store's copy
    assert main(["verify", "--repair", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "repaired: 2 of 2" in out and bad.read_bytes() == good
    assert untouched.stat().st_ino == inode  # a good file of a step downstream: left as it was
    assert main(["verify", "--data-dir", str(data_dir)]) == 0


@pytest.mark.parametrize("garbage", [b"\xff\xfe not text", b'{"key": "k", "files": [1, 2]}',
                                     b'{"key": "k", "files": {"../../../etc/passwd": [1, "' + b"0" * 64 + b'"]}}',
                                     b"[]", b""])
def test_a_damaged_key_file_is_damage_not_a_crash(toy, garbage, data_dir, monkeypatch, toy_defs, capsys):
    steps, root, run = toy
    cell = Cell("baseline", 8)
    run(cell)
    key_file = _part(root, "numbers", cell).parent / reuse.KEY_FILE
    key_file.write_bytes(garbage)
    plan = plan_cell(root, steps, cell, load_settings("paper"))
    assert "numbers" not in [s.op_name for s in plan.current]
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs(*TOY))
    assert main(["verify", "--data-dir", str(data_dir)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["verify", "--repair", "--data-dir", str(data_dir)]) == 0
    assert reuse.cell_damage(root, ["numbers"], cell) == []


def test_a_shared_copy_damaged_while_it_is_linked_is_computed_instead(toy, monkeypatch):
    """Between the plan (the shared copy intact) and the link (damaged): never keyed as good."""
    from esmr_assets.orchestration import planner

    steps, root, run = toy
    first, second = Cell("baseline", 9), Cell("other", 9)
    run(first)
    good = _part(root, "numbers", first).read_bytes()
    real = planner.plan_cell

    def plan_then_damage(*args, **kwargs):
        plan = real(*args, **kwargs)
        if plan.cell == second:
            _damage(_part(root, "numbers", first), 100)  # the shared copy, through the first cell's link
        return plan

    monkeypatch.setattr(planner, "plan_cell", plan_then_damage)
    outcome = run(second)[second]
    assert isinstance(outcome["numbers"], float)  # computed, not "reused"
    assert _part(root, "numbers", second).read_bytes() == good
    key = reuse.stored_key(root, ["numbers"], second)
    assert reuse.shared_damage(root, ["numbers"], key) == []  # the good copy is shared again


def test_temp_files_of_killed_processes_are_removed_by_the_next_run(toy):
    steps, root, run = toy
    cell = Cell("baseline", 10)
    run(cell)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    leftovers = [root / "_shared" / "numbers" / f".abcd.{dead}.1a2b.tmp",
                 root / "_shared" / "numbers" / f".k.{dead}.1a2b.damaged.tmp",
                 _part(root, "numbers", cell).with_name(f".part-0.parquet.{dead}.1a2b.tmp")]
    leftovers[0].mkdir()
    leftovers[1].mkdir()
    leftovers[2].write_bytes(b"half")
    run(cell)
    assert not any(p.exists() for p in leftovers)


# ------------------------------------------------------------------------- the SQL sandbox
@pytest.fixture
def warehouse(toy) -> Path:
    steps, root, run = toy
    run(Cell("baseline", 7))
    return root


@pytest.mark.parametrize("query, refused", [
    ("select * from read_text('/etc/passwd')", "/etc/passwd"),
    ("select * from glob('/root/**')", "/root"),
    ("select * from read_parquet('https://example.org/x.parquet')", "https://"),
    ("select * from read_csv('../../../etc/passwd')", "passwd"),
])
def test_sql_reads_the_warehouse_and_nothing_else(warehouse, query, refused, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(["sql", query, "--data-dir", str(warehouse.parent)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("esmr: error: ") and refused in err and err.count("\n") == 1
    assert not (tmp_path / "home").exists()  # no extension downloaded or installed under ~/.duckdb


def test_the_sandbox_is_locked_and_bounded(warehouse):
    settings = run_query(warehouse, "select current_setting('enable_external_access') as external, "
                                    "current_setting('lock_configuration') as locked, "
                                    "current_setting('autoinstall_known_extensions') as install, "
                                    "current_setting('temp_directory') as spill, "
                                    "current_setting('memory_limit') as memory")
    assert settings.row(0) == (False, True, False, "", settings["memory"].item())
    assert settings["memory"].item().startswith("3.7 GiB")  # 4 GB
    assert run_query(warehouse, "select count(*) as n from numbers")["n"].item() == 10  # the warehouse itself: read


def test_sql_fetches_only_the_rows_it_prints(warehouse, capsys):
    started = time.perf_counter()
    frame, more = query_rows(warehouse, "select * from range(2000000000)", limit=5)
    assert frame.height == 5 and more and time.perf_counter() - started < 10
    assert main(["sql", "select * from range(2000000000)", "--limit", "3", "--data-dir", str(warehouse.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("(the first 3 rows; more follow") and len(out) == 2 + 3 + 1
    assert main(["sql", "select * from range(25000)", "--all", "--data-dir", str(warehouse.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "(25000 rows)" and out[-2].strip() == "24999" and len(out) == 2 + 25000 + 1


def test_a_query_past_its_time_limit_is_stopped_in_one_line(warehouse, capsys):
    started = time.perf_counter()
    code = main(["sql", "select count(*) from range(1000000000000)", "--timeout", "1",
                 "--data-dir", str(warehouse.parent)])
    assert code == 1 and time.perf_counter() - started < 20
    assert capsys.readouterr().err == "esmr: error: the query ran past its time limit (1 s) and was stopped\n"


def test_values_polars_cannot_hold_print_as_duckdb_writes_them(warehouse, capsys):
    for query, text in (("select '1 year'::interval as i", "1 year"), ("select 'infinity'::timestamp as t", "infinity"),
                        ("select union_value(k := 1) as u", "1")):
        assert main(["sql", query, "--data-dir", str(warehouse.parent)]) == 0, query
        captured = capsys.readouterr()
        assert captured.out.splitlines()[2].strip() == text and not captured.err
    assert main(["sql", "select 1", "--timeout", "inf", "--data-dir", str(warehouse.parent)]) == 2
    assert main(["sql", "select 1", "--limit", str(2**63 - 1), "--data-dir", str(warehouse.parent)]) == 2
    assert capsys.readouterr().err.count("\n") == 2


def test_a_streamed_query_past_its_time_limit_is_one_line(warehouse, capsys):
    code = main(["sql", "select count(*) from range(1000000000000)", "--all", "--timeout", "1",
                 "--data-dir", str(warehouse.parent)])
    assert code == 1 and capsys.readouterr().err == (
        "esmr: error: the query ran past its time limit (1 s) and was stopped\n")


def test_ctrl_c_ends_a_query_with_one_line(warehouse):
    process = subprocess.Popen([BIN / "esmr", "sql", "select count(*) from range(1000000000000)",
                                "--data-dir", str(warehouse.parent)], stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # imports, then the query
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.strip() == "esmr: interrupted", err


def test_the_sql_models_query_through_the_same_sandbox(warehouse):
    with pytest.raises(WarehouseError, match="disabled by configuration"):
        run_query(warehouse, "select * from read_text('/etc/passwd')")  # run_query is what the models call
    from esmr_assets.assets import sql_models
    from esmr_assets.studies.report import run_query as report_query

    assert sql_models.run_query is run_query and report_query is run_query


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize("overrides, field", [
    ({"simulation": {"n_users": 2}}, "the emotion models' train / validation / test split"),
    ({"simulation": {"n_users": 10**12}}, "simulation.n_users"),
    ({"simulation": {"n_days": 10**23}}, "simulation.n_days"),
    ({"simulation": {"churn_trend_weight": float("nan")}}, "simulation.churn_trend_weight"),
    ({"policy": {"eta": float("inf")}}, "policy.eta"),
    ({"simulation": {"latent_noise_scale": float("-inf")}}, "simulation.latent_noise_scale"),
    ({"simulation": {"n_users": 300}}, "policy.training_users: 200 asked, but only 150"),
    (None, "overrides must be a JSON object"),
    ([1], "overrides must be a JSON object"),
])
def test_settings_that_cannot_run_are_refused_before_anything_is_written(overrides, field, data_dir, capsys):
    code = main(["run", "--seed", "0", "--overrides", json.dumps(overrides), "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and field in err, err
    assert not data_dir.exists()


def test_a_sample_too_small_to_cluster_is_refused():
    with pytest.raises(SettingsError, match="emotion.cluster_sample_days"):
        graph_settings("smoke", '{"emotion": {"cluster_sample_days": 4}}')


@pytest.mark.parametrize("seed", ["4294967296", "³", "٣", "3\n", " 3", "-1", "1e3", "03", ""])
def test_only_plain_ascii_seeds_in_range_are_seeds(seed, data_dir, capsys):
    assert main(["run", "--seed", seed, "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "seed" in err and not data_dir.exists()
    with pytest.raises(SettingsError):
        parse_seed(seed)
    assert parse_seed("4294967295") == 2**32 - 1 and parse_seed(7) == 7


def test_names_must_match_whole():
    for name in ("a\n", "tiny\n", "a|b"):
        with pytest.raises(SettingsError):
            check_scenario_name(name)
        with pytest.raises(StudyError):
            parse_study('preset = "smoke"\nseeds = "0"\n[[scenario]]\nname = "a"\n', name)
    with pytest.raises(StudyError, match="name must be"):
        parse_study('preset = "smoke"\nseeds = "0"\n[[scenario]]\nname = "a\\n"\n', "tiny")


def test_training_users_above_what_is_available_are_refused_by_run_and_studies_alike():
    with pytest.raises(SettingsError, match="only 30 of the 60 users"):
        graph_settings("smoke", '{"policy": {"training_users": 31}}')
    with pytest.raises(StudyError, match="only 30 of the 60 users"):
        parse_study('preset = "smoke"\nseeds = "0"\n[[scenario]]\nname = "a"\n'
                    'overrides = { policy = { training_users = 31 } }\n', "tiny")
    # shared overrides that a scenario completes are fine
    parse_study('preset = "paper"\nseeds = "0"\noverrides = { simulation = { n_users = 100 } }\n'
                '[[scenario]]\nname = "a"\noverrides = { policy = { training_users = 50 } }\n', "tiny")


def test_the_smallest_accepted_population_is_the_one_the_concurrency_test_runs():
    """`test_fault_tolerance.py` runs four cells of it end to end; one user or one day fewer
    is refused."""
    from esmr_assets_tests.e2e.test_fault_tolerance import SMALL

    graph_settings("smoke", json.dumps(SMALL))
    for fewer in ({"n_users": 25}, {"n_days": 21}):
        with pytest.raises(SettingsError):
            graph_settings("smoke", json.dumps({**SMALL, "simulation": {**SMALL["simulation"], **fewer}}))


# ------------------------------------------------------------------------- one line, every time
def test_a_failed_step_is_one_line_and_the_trace_is_behind_verbose(data_dir, monkeypatch, capsys, toy_defs):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs("numbers", "parity", "broken", "doubled"))
    assert main(["run", "--seed", "0", "--data-dir", str(data_dir)]) == 1
    err = capsys.readouterr().err
    line = [line for line in err.splitlines() if line.startswith("esmr:")]
    assert len(line) == 1 and "Traceback" not in err and 'raise ValueError' not in err
    assert line[0].startswith("esmr: error: asset broken failed for scenario baseline, seed 0 (run ")
    assert "boom: the toy asset failed" in line[0] and "--verbose" in line[0]
    assert main(["run", "--seed", "0", "--data-dir", str(data_dir), "--verbose"]) == 1
    assert 'raise ValueError("boom: the toy asset failed")' in capsys.readouterr().err


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(args[0]) if args else "")


def test_a_full_disk_while_registering_a_scenario_is_one_line(data_dir, monkeypatch, capsys, toy_defs):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs("numbers"))
    monkeypatch.setattr("esmr_assets.storage.cells.atomic_write_bytes", _no_space)
    code = main(["run", "--seed", "0", "--overrides", '{"policy": {"alpha": 0.5}}', "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "No space left on device" in err and "register" in err
    assert not list((data_dir / "paper").rglob("*.json")) and not list(data_dir.rglob("*.tmp"))


def test_a_full_disk_while_linking_reused_outputs_is_one_line_and_nothing_half_linked(
        data_dir, monkeypatch, capsys, toy_defs):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs(*TOY))
    assert main(["run", "--seed", "0", "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(reuse.os, "link", _no_space)
    monkeypatch.setattr(reuse.shutil, "copyfile", _no_space)
    code = main(["run", "--seed", "0", "--overrides", '{"policy": {"alpha": 0.5}}', "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "No space left on device" in err
    assert len([line for line in err.splitlines() if line.startswith("esmr:")]) == 1
    assert not list(data_dir.rglob("*.tmp"))
    other = data_dir / "paper" / "numbers"
    assert not [p for p in other.glob("scenario=overrides-*/seed=0/*")]  # nothing half linked
    monkeypatch.undo()
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs(*TOY))
    assert main(["run", "--seed", "0", "--overrides", '{"policy": {"alpha": 0.5}}', "--data-dir", str(data_dir)]) == 0


def test_a_file_as_data_dir_or_an_unwritable_instance_is_named_and_nothing_created(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    assert main(["sql", "select 1", "--data-dir", str(blocker)]) == 2
    assert capsys.readouterr().err == f"esmr: error: data dir {blocker} is a file, not a folder of tables\n"
    monkeypatch.setenv("DAGSTER_HOME", str(blocker / "home"))
    assert main(["run", "--seed", "0", "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "$DAGSTER_HOME" in err and "is a file" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # not even the data dir


# ------------------------------------------------------------------------- the same cell twice
SLOW_CELL = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dagster as dg
    from esmr_assets.storage.cells import Cell
    from esmr_assets.orchestration.parquet_io import ParquetIOManager
    from esmr_assets.orchestration.partitions import cell_partitions
    from esmr_assets.orchestration.planner import materialize_cells
    from esmr_assets.orchestration.resources import EsmrConfig, run_config
    from esmr_assets.orchestration.runner import open_instance, plan_steps
    from esmr_assets.core.settings import load_settings
    import polars as pl

    @dg.asset(partitions_def=cell_partitions)
    def slow_numbers() -> pl.DataFrame:
        time.sleep(3)
        return pl.DataFrame({"n": [1, 2, 3]})

    data_dir = Path(sys.argv[1])
    esmr = EsmrConfig.configure_at_launch()
    defs = dg.Definitions(assets=[slow_numbers], resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)})
    steps = [s for s in plan_steps(defs) if s.partitioned]
    with open_instance(data_dir / ".dagster") as instance:
        outcome = materialize_cells(defs, steps, [(Cell("baseline", 0), load_settings("paper"))], data_dir / "paper",
                                    run_config("paper", data_dir), instance)
    print(outcome[Cell("baseline", 0)]["slow_numbers"])
    """
)


def test_the_same_cell_started_twice_at_once_is_computed_once(tmp_path):
    processes = [subprocess.Popen([sys.executable, "-c", SLOW_CELL, str(tmp_path / "data")], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-1500:] for _, err in results]
    outcomes = sorted(out.strip() for out, _ in results)
    assert outcomes[1] == "current" and float(outcomes[0]) >= 3  # one computed it, the other found it done
    with dg.DagsterInstance.from_config(str(tmp_path / "data" / ".dagster")) as instance:
        assert len(instance.get_runs()) == 1
