"""The DuckDB warehouse over stored partitions, and the `esmr sql` / `esmr run` commands."""

import subprocess
import sys

import dagster as dg
import numpy as np
import polars as pl
import pytest

from esmr_assets.cli import commands, format_table, main, printing
from esmr_assets.orchestration.runner import Step, plan_steps
from esmr_assets.storage.warehouse import WarehouseError, connect, list_tables, run_query

TOY = ("numbers", "parity", "doubled")


@pytest.fixture
def seeded(materialize, data_dir):
    """Toy tables for seeds 0, 2 and 5 (numbers has seed + 3 rows)."""
    for seed in (0, 2, 5):
        assert materialize(TOY, seed).success
    return data_dir


def test_views_per_asset_with_bigint_seed(seeded):
    root = seeded / "paper"
    assert list_tables(root) == ["doubled", "evens", "numbers", "odds", "policy_registry"]
    frame = run_query(root, "select seed, typeof(seed) as t, count(*) as n from numbers group by all order by seed")
    assert frame.to_dict(as_series=False) == {"seed": [0, 2, 5], "t": ["BIGINT"] * 3, "n": [3, 5, 8]}


def test_a_seed_written_before_a_column_existed_reads_it_as_null(seeded):
    """A table gains a column (a new release): the seeds stored before still read, the new
    column null there, instead of the view failing to bind."""
    root = seeded / "paper"
    part = root / "numbers" / "scenario=baseline/seed=5" / "part-0.parquet"
    pl.read_parquet(part).with_columns(pl.lit(1.5).alias("added")).write_parquet(part)
    frame = run_query(root, "select seed, count(added) as filled, count(*) as n from numbers group by seed order by seed")
    assert frame.to_dict(as_series=False) == {"seed": [0, 2, 5], "filled": [0, 0, 8], "n": [3, 5, 8]}


def test_esmr_sql_prints_counts_per_seed(seeded, capsys):
    query = "select seed, count(*) as n from numbers group by seed order by seed"

    assert main(["sql", query, "--data-dir", str(seeded)]) == 0
    assert capsys.readouterr().out == (
        "seed  n\n"
        "----  -\n"
        "   0  3\n"
        "   2  5\n"
        "   5  8\n"
        "(3 rows)\n"
    )


def test_esmr_sql_reads_the_namespace_of_the_preset(materialize, data_dir, capsys):
    assert materialize(("numbers",), 1, preset="smoke").success

    assert main(["sql", "select count(*) as n from numbers", "--preset", "smoke", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == "4"
    assert main(["sql", "select count(*) as n from numbers", "--data-dir", str(data_dir)]) == 1
    assert "Table with name numbers does not exist" in capsys.readouterr().err


def test_temp_files_are_never_visible(seeded):
    root = seeded / "paper"
    stray = pl.DataFrame({"n": list(range(50)), "label": ["x"] * 50})
    stray.write_parquet(root / "numbers/scenario=baseline/seed=0/.part-0.parquet.123.abcd.tmp")
    (root / "half_written/scenario=baseline/seed=0").mkdir(parents=True)
    stray.write_parquet(root / "half_written/scenario=baseline/seed=0/.part-0.parquet.123.abcd.tmp")

    assert "half_written" not in list_tables(root)
    assert run_query(root, "select count(*) as n from numbers where seed = 0")["n"].item() == 3


@pytest.mark.parametrize(
    "query",
    [
        "create table t as select * from numbers",
        "copy numbers to '{out}'",
        "copy (select 1) to '{out}'",
        "insert into numbers values (1, 'x', 0)",
        "explain analyze copy (select 1) to '{out}'",
        "attach '{out}' as other",
        "select 1; copy (select 1) to '{out}'",
    ],
)
def test_esmr_sql_refuses_writes(seeded, tmp_path, capsys, query):
    out = tmp_path / "out.csv"

    code = main(["sql", query.format(out=out), "--data-dir", str(seeded)])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("esmr: error: ")
    assert "refused" in err or "exactly one SQL statement" in err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "query",
    [
        "describe numbers",
        "show tables",
        "summarize numbers",
        "values (1, 2)",
        "explain select * from numbers",
        "with t as (select * from numbers) select count(*) from t",
        "from numbers limit 1",
    ],
)
def test_read_statements_are_allowed(seeded, query):
    assert run_query(seeded / "paper", query).height > 0


def test_bad_column_reports_duckdb_message_without_traceback(seeded):
    proc = subprocess.run(
        [sys.executable, "-m", "esmr_assets.cli", "sql", "select nope from numbers", "--data-dir", str(seeded)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith('esmr: error: Binder Error: Referenced column "nope" not found')
    assert "Traceback" not in proc.stderr


def test_run_query_wraps_duckdb_errors(tmp_path):
    with pytest.raises(WarehouseError, match="Parser Error"):
        run_query(tmp_path, "selec 1")
    with pytest.raises(WarehouseError, match="exactly one SQL statement, got 0"):
        run_query(tmp_path, "  ")


def test_connect_is_in_memory(seeded):
    con = connect(seeded / "paper")
    try:
        assert con.execute("select database_name, path from duckdb_databases() where not internal").fetchall() == [
            ("memory", None)
        ]
    finally:
        con.close()
    assert not list(seeded.rglob("*.duckdb"))


def test_format_table_limits_rows_and_keeps_long_names():
    frame = pl.DataFrame({"a_rather_long_column_name": [1, 22, 333], "s": ["x", None, "zz"]})

    assert format_table(frame, max_rows=2) == (
        "a_rather_long_column_name  s\n"
        "-------------------------  ----\n"
        "                        1  x\n"
        "                       22  null\n"
        "(2 of 3 rows shown; raise --limit to see more)"
    )


def test_plan_steps_groups_multi_assets_in_dependency_order(toy_defs):
    steps = plan_steps(toy_defs("doubled", "parity", "numbers"))

    assert [step.label for step in steps] == ["numbers", "doubled", "evens, odds"]
    assert steps[2] == Step((dg.AssetKey("evens"), dg.AssetKey("odds")), op_name="parity", upstream=("numbers",))


def test_esmr_run_materializes_each_seed_and_reports(data_dir, monkeypatch, capsys, toy_defs):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs(*TOY))
    monkeypatch.setattr(
        printing,
        "summary_queries",
        lambda: [
            ("largest n", "select scenario, seed, max(n) as largest from numbers group by all order by seed"),
            ("needs a missing table", "select count(*) from user_day_logs"),
        ],
    )

    code = main(["run", "--seed", "0", "--seed", "2", "--seed", "0", "--data-dir", str(data_dir)])

    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.splitlines()
    timing = lines[lines.index("wall time per asset") + 1 : lines.index("wall time per asset") + 7]
    assert timing[0].split() == ["asset", "seed", "0", "seed", "2", "total"]
    assert [line.split()[0] for line in timing[1:]] == ["numbers", "evens,", "doubled", "run", "total"]
    assert sum("<- slowest" in line for line in timing) == 1
    def seconds(line: str) -> list[float]:
        return [float(cell.rstrip("s")) for cell in line.replace("<- slowest", "").split()[-3:]]

    steps = [seconds(line) for line in timing[1:4]]
    overhead, total = seconds(timing[4]), seconds(timing[5])
    assert all(value > 0 for row in steps for value in row) and min(overhead) > 0
    assert np.allclose(np.sum(steps, axis=0) + overhead, total, atol=0.02)
    counts = lines[lines.index("rows per table") + 1 :][:7]
    assert [line.split() for line in counts[2:6]] == [
        ["numbers", "3", "5"],
        ["evens", "2", "3"],
        ["odds", "1", "2"],
        ["doubled", "3", "5"],
    ]
    assert "largest n" in lines
    assert "needs a missing table" not in captured.out
    assert "6/6" in captured.err  # progress bar: 3 steps x 2 distinct seeds

    with dg.DagsterInstance.from_config(str(data_dir / ".dagster")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2  # one run per seed
        assert sorted(run.tags["dagster/partition"] for run in runs) == ["baseline|0", "baseline|2"]
        assert instance.get_dynamic_partitions("seed") == ["0", "2"]
        assert instance.get_dynamic_partitions("scenario") == ["baseline"]

    # A second run finds every cell current: no new run, and the table says so.
    assert main(["run", "--seed", "0", "--data-dir", str(data_dir)]) == 0
    assert [line.split() for line in capsys.readouterr().out.splitlines()[3:5]] == [
        ["numbers", "current"], ["evens,", "odds", "current"]]
    with dg.DagsterInstance.from_config(str(data_dir / ".dagster")) as instance:
        assert len(instance.get_runs()) == 2


def test_a_chunked_population_runs_one_step_per_run(data_dir, monkeypatch, capsys, toy_defs):
    """Dagster keeps a run's outputs in memory until it ends: populations simulated in chunks
    (`large`) get one run per step."""
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs(*TOY))
    chunked = '{"simulation": {"n_users": 40, "user_chunk_size": 10}, "policy": {"training_users": 20}}'

    assert main(["run", "--seed", "3", "--data-dir", str(data_dir), "--overrides", chunked]) == 0
    assert "wall time per asset" in capsys.readouterr().out
    with dg.DagsterInstance.from_config(str(data_dir / ".dagster")) as instance:
        assert len(instance.get_runs()) == 3  # numbers, evens+odds, doubled


def test_esmr_run_uses_dagster_home(data_dir, tmp_path, monkeypatch, capsys, toy_defs):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs("numbers"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))

    assert main(["run", "--seed", "0", "--data-dir", str(data_dir)]) == 0
    assert not (data_dir / ".dagster").exists()
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        assert len(instance.get_runs()) == 1


def test_esmr_run_configures_its_instance_as_make_ui_does(data_dir, monkeypatch, capsys, toy_defs):
    """A fresh instance gets docs/dagster.yaml (no telemetry banner, the UI's run limits);
    an existing configuration is left alone."""
    from esmr_assets.orchestration.runner import INSTANCE_CONFIG

    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs("numbers"))
    assert main(["run", "--seed", "0", "--data-dir", str(data_dir)]) == 0
    config = data_dir / ".dagster" / "dagster.yaml"
    assert config.read_bytes() == INSTANCE_CONFIG.read_bytes() and "telemetry" in config.read_text()
    with dg.DagsterInstance.from_config(str(config.parent)) as instance:
        assert instance.run_coordinator is not None and not instance.telemetry_enabled
    config.write_text("telemetry:\n  enabled: false\n")
    assert main(["run", "--seed", "1", "--data-dir", str(data_dir)]) == 0
    assert config.read_text() == "telemetry:\n  enabled: false\n"


def test_esmr_run_fails_fast_naming_the_asset(data_dir, monkeypatch, capsys, toy_defs):
    monkeypatch.setattr(commands, "load_definitions", lambda: toy_defs("numbers", "parity", "broken", "doubled"))

    code = main(["run", "--seed", "0", "--seed", "1", "--data-dir", str(data_dir)])

    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1].startswith("esmr: error: asset broken failed for scenario baseline, seed 0")
    assert "ValueError: boom: the toy asset failed" in err.splitlines()[-1]
    assert not (data_dir / "paper/numbers/scenario=baseline/seed=1").exists()  # later seeds never started


def test_corrupt_partition_is_reported_by_name(seeded, capsys):
    bad = seeded / "paper/doubled/scenario=baseline/seed=2/part-0.parquet"
    bad.write_bytes(b"PAR1 damaged")

    assert main(["sql", "select count(*) from doubled", "--data-dir", str(seeded)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("esmr: error: ")
    assert str(bad) in err and "Traceback" not in err
    # Tables that do not read the damaged file stay queryable.
    assert main(["sql", "select count(*) as n from numbers", "--data-dir", str(seeded)]) == 0
    assert capsys.readouterr().out.splitlines()[2].strip() == "16"


def test_policy_registry_is_a_table_in_the_registry_order(tmp_path):
    from esmr_assets.policy.loop import registry

    frame = run_query(tmp_path, "select * from policy_registry order by position")
    assert frame["policy"].to_list() == list(registry.POLICY_NAMES)
    assert frame["position"].to_list() == list(range(1, len(registry.POLICIES) + 1))
    assert frame.filter(pl.col("learns_online"))["policy"].to_list() == list(registry.BANDITS)
    assert frame["reads_latent"].to_list() == [p.name.startswith("oracle_") for p in registry.POLICIES]
    assert "policy_registry" in list_tables(tmp_path)


def test_t_half_width_is_the_95_t_interval_half_width(tmp_path):
    """The macro the across-seeds models share equals scipy's t quantile times the standard error,
    and is null with fewer than two values (no degree of freedom)."""
    from scipy import stats

    frame = run_query(tmp_path, "select n, t_half_width(2.5, n) as h from range(1, 6) as t(n) order by n")
    assert frame["h"][0] is None
    for n, h in zip(frame["n"][1:], frame["h"][1:]):
        assert h == pytest.approx(stats.t.ppf(0.975, n - 1) * 2.5 / np.sqrt(n), rel=1e-12)


def test_esmr_sql_starts_without_torch_or_lightgbm():
    """The registry the warehouse reads is import-light: `esmr sql` loads no model library."""
    code = ("import sys; from esmr_assets import cli; from esmr_assets.storage import warehouse; from esmr_assets.policy.loop import registry; "
            "print(sorted(m for m in ('torch', 'lightgbm', 'dagster') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_layout_before_cells_is_ignored_not_mixed_in(materialize, data_dir):
    """`<asset>/seed=<k>/` folders of releases before scenarios were a partition dimension
    neither become the view nor break it."""
    import polars as pl

    assert materialize(("numbers",), 1).success
    old = data_dir / "paper" / "numbers" / "seed=0"
    old.mkdir(parents=True)
    pl.DataFrame({"n": [99]}).write_parquet(old / "part-0.parquet")
    frame = run_query(data_dir / "paper", "select scenario, seed, max(n) as n from numbers group by all")
    assert frame.rows() == [("baseline", 1, 3)]
