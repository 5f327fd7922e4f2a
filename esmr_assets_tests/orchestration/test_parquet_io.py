"""ParquetIOManager: layout, round trip, metadata, determinism, atomicity, bad inputs."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from esmr_assets.core import numeric_env
from esmr_assets.orchestration.parquet_io import (
    ParquetIOManager,
    atomic_write_bytes,
    atomic_write_with,
    partition_dir,
)
from esmr_assets.orchestration.resources import EsmrConfig
from esmr_assets.storage.cells import Cell
from esmr_assets.storage.reuse import RECORD_FILE
from esmr_assets.storage.warehouse import run_query
from esmr_assets_tests.conftest import add_cell

TOY = ("numbers", "parity", "doubled")


def files_under(root: Path) -> list[str]:
    """Every file, each partition's record of its numeric environment included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_round_trip_and_exact_layout(materialize, data_dir):
    result = materialize(TOY, 3)

    assert result.success
    assert files_under(data_dir) == [
        f"paper/{name}/scenario=baseline/seed=3/{file}"
        for name in ("doubled", "evens", "numbers", "odds") for file in (RECORD_FILE, "part-0.parquet")
    ]
    stored = pl.read_parquet(data_dir / "paper/numbers/scenario=baseline/seed=3/part-0.parquet")
    assert stored.to_dict(as_series=False) == {
        "n": [0, 1, 2, 3, 4, 5],
        "label": [f"row {i}" for i in range(6)],
    }
    # doubled and parity read numbers back through the IO manager.
    assert pl.read_parquet(data_dir / "paper/doubled/scenario=baseline/seed=3/part-0.parquet")["n"].to_list() == [0, 2, 4, 6, 8, 10]
    assert pl.read_parquet(data_dir / "paper/odds/scenario=baseline/seed=3/part-0.parquet")["n"].to_list() == [1, 3, 5]


def test_partition_dir_is_the_io_manager_layout(materialize, data_dir):
    materialize(("numbers",), 12)

    folder = partition_dir(data_dir / "paper", "numbers", Cell("baseline", 12))
    assert folder == data_dir / "paper" / "numbers" / "scenario=baseline/seed=12"
    assert sorted(p.name for p in folder.iterdir()) == [RECORD_FILE, "part-0.parquet"]


def test_output_metadata(materialize):
    result = materialize(("numbers",), 4)

    [materialization] = result.asset_materializations_for_node("numbers")
    metadata = materialization.metadata
    assert metadata["dagster/row_count"].value == 7
    schema = metadata["dagster/column_schema"].value
    assert [(c.name, c.type) for c in schema.columns] == [("n", "Int64"), ("label", "String")]
    preview = metadata["preview"].value.splitlines()
    assert preview[0] == "| n | label |"
    assert preview[2] == "| 0 | row 0 |"
    assert len(preview) == 2 + 5  # header, rule, first five of seven rows
    assert metadata["path"].value.endswith("paper/numbers/scenario=baseline/seed=4/part-0.parquet")
    # what it was computed with, as beside the file
    assert metadata["numeric_environment"].value == numeric_env.record() == json.loads(
        Path(metadata["path"].value).with_name(RECORD_FILE).read_text())
    assert metadata["numeric_fingerprint"].value == numeric_env.fingerprint()


def test_same_frame_gives_identical_bytes(materialize, data_dir, tmp_path):
    materialize(("numbers",), 2)
    path = data_dir / "paper/numbers/scenario=baseline/seed=2/part-0.parquet"
    first, first_inode = path.read_bytes(), path.stat().st_ino

    materialize(("numbers",), 2)
    elsewhere = tmp_path / "other"
    materialize(("numbers",), 2, data_dir=elsewhere)

    assert path.stat().st_ino != first_inode  # really rewritten, not skipped
    assert path.read_bytes() == first
    assert (elsewhere / "paper/numbers/scenario=baseline/seed=2/part-0.parquet").read_bytes() == first
    assert pl.read_parquet_metadata(path) == pl.read_parquet_metadata(elsewhere / "paper/numbers/scenario=baseline/seed=2/part-0.parquet")


def test_failed_write_leaves_previous_file_and_no_temp(materialize, data_dir, monkeypatch, failure_text):
    assert materialize(("numbers",), 1).success
    root = data_dir / "paper"
    path = root / "numbers/scenario=baseline/seed=1/part-0.parquet"
    good = path.read_bytes()
    seen_during_write = {}
    real_write = pl.DataFrame.write_parquet

    def write_half_then_fail(frame, file, **kwargs):
        real_write(frame.with_columns(pl.col("n") + 100), file, **kwargs)
        Path(file).write_bytes(Path(file).read_bytes()[:40])
        seen_during_write["files"] = sorted(p.name for p in path.parent.iterdir())
        seen_during_write["rows"] = run_query(root, "select count(*) as c from numbers")["c"].item()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write_half_then_fail)
    result = materialize(("numbers",), 1)

    assert not result.success
    assert "No space left on device" in failure_text(result)
    # While the half-written temp file existed, the warehouse still saw only the good file.
    assert len(seen_during_write["files"]) == 3
    temp_name = next(name for name in seen_during_write["files"] if name not in ("part-0.parquet", RECORD_FILE))
    assert temp_name.startswith(".part-0.parquet.") and temp_name.endswith(".tmp")
    assert seen_during_write["rows"] == 4
    # Afterwards: previous file byte-identical, temp file gone.
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == [RECORD_FILE, "part-0.parquet"]
    assert run_query(root, "select count(*) as c from numbers")["c"].item() == 4


def test_atomic_write_helpers(tmp_path):
    target = tmp_path / "models" / "scenario=baseline/seed=0" / "ranker.txt"
    atomic_write_bytes(target, b"tree 1")
    assert target.read_bytes() == b"tree 1"

    def fail_midway(tmp: Path) -> None:
        tmp.write_bytes(b"tree 2, half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write_with(target, fail_midway)
    assert target.read_bytes() == b"tree 1"
    assert [p.name for p in target.parent.iterdir()] == ["ranker.txt"]

    atomic_write_with(target, lambda tmp: tmp.write_text("tree 3"))
    assert target.read_text() == "tree 3"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"this is not parquet" * 10, id="corrupt"),
        pytest.param(lambda data: b"", id="empty"),
    ],
)
def test_unreadable_partition_names_file_and_asset(materialize, data_dir, failure_text, damage):
    assert materialize(("numbers", "doubled"), 0).success
    path = data_dir / "paper/numbers/scenario=baseline/seed=0/part-0.parquet"
    path.write_bytes(damage(path.read_bytes()))

    result = materialize(("numbers", "doubled"), 0, select=["doubled"])

    assert not result.success
    text = failure_text(result)
    assert f"asset numbers: cannot read {path}" in text


def test_lazy_input_scans_the_stored_partition(materialize, data_dir, failure_text):
    assert materialize(("numbers", "lazy_total"), 4).success
    assert pl.read_parquet(data_dir / "paper/lazy_total/scenario=baseline/seed=4/part-0.parquet").row(0) == (sum(range(7)), 7)
    # A truncated file fails when loaded, naming it, even though the scan itself is lazy.
    path = data_dir / "paper/numbers/scenario=baseline/seed=4/part-0.parquet"
    path.write_bytes(path.read_bytes()[:-20])
    result = materialize(("numbers", "lazy_total"), 4, select=["lazy_total"])
    assert not result.success and f"asset numbers: cannot read {path}" in failure_text(result)


def test_missing_partition_names_file_and_asset(materialize, data_dir, failure_text):
    result = materialize(("numbers", "doubled"), 5, select=["doubled"])

    assert not result.success
    expected = data_dir / "paper/numbers/scenario=baseline/seed=5/part-0.parquet"
    assert f"asset numbers: no stored partition at {expected}" in failure_text(result)
    assert not (data_dir / "paper/doubled").exists()


@pytest.mark.parametrize("key", ["abc", "07", "-1", "1.5"])
def test_non_numeric_partition_key_rejected(materialize, data_dir, failure_text, key):
    result = materialize(("constant",), key)

    assert not result.success
    assert "asset constant: invalid partition key: seed must be a non-negative integer" in failure_text(result)
    assert not list(data_dir.rglob("*.parquet"))


def test_non_dataframe_output_rejected(materialize, data_dir, failure_text):
    result = materialize(("not_a_frame",), 0)

    assert not result.success
    assert "asset not_a_frame returned builtins.dict; ParquetIOManager stores polars.DataFrame only" in failure_text(
        result
    )
    assert not (data_dir / "paper/not_a_frame").exists()


def test_io_manager_uses_launch_config(toy_defs, instance, data_dir):
    """configure_at_launch: the nested IO manager follows the preset given at launch."""
    key = add_cell(instance, 0)
    job = toy_defs("numbers").resolve_implicit_global_asset_job_def()
    config = {"resources": {"esmr": {"config": {"preset": "smoke", "data_dir": str(data_dir)}}}}

    assert job.execute_in_process(run_config=config, instance=instance, partition_key=key).success
    assert files_under(data_dir) == [f"smoke/numbers/scenario=baseline/seed=0/{f}" for f in (RECORD_FILE, "part-0.parquet")]


def test_defaults_without_run_config(toy_defs, instance, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    key = add_cell(instance, 0)
    job = toy_defs("numbers").resolve_implicit_global_asset_job_def()

    assert job.execute_in_process(instance=instance, partition_key=key).success
    assert (tmp_path / "data/paper/numbers/scenario=baseline/seed=0/part-0.parquet").is_file()


def test_unpartitioned_output_rejected(instance, data_dir, failure_text):
    @dg.asset
    def flat() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})

    esmr = EsmrConfig.configure_at_launch()
    defs = dg.Definitions(assets=[flat], resources={"esmr": esmr, "io_manager": ParquetIOManager(esmr=esmr)})
    config = {"resources": {"esmr": {"config": {"data_dir": str(data_dir)}}}}
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config=config, instance=instance, raise_on_error=False
    )

    assert not result.success
    assert "asset flat is not partitioned" in failure_text(result)
    assert not list(data_dir.rglob("*.parquet"))
