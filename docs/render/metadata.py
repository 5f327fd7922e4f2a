"""The pipeline stages' own figures, archived: what the materialization metadata of a cell's
stage assets says (the simulator's engagement correlations and churn, the cluster labels'
agreement with the truth, the causal scores per method, the ranker's test AUC), as one small
table per cell, `asset_metadata`, for the studies whose spec asks (`report.extras =
["metadata"]`: the fair test, whose `paper` scenario is the main evaluation, and
`engagement_tradeoff`, for the simulator's realism figures per session response).

The metadata lives in the data dir's Dagster instance, which the archive does not keep, so
`studies.py` copies it out with the cell: one row per asset and key, numbers in `value` and
words in `text`. A JSON object becomes `key.field` rows, and a markdown table becomes
`key.<first column>.<column>` rows. Plots, paths, previews, the numeric environment and every
timing (`*seconds*`: not a result, and not the same bytes twice) are left out.

A step a cell linked from another cell (the same settings read, seed and upstream: reuse)
records only the key it reused. Its metadata is that of the materialization that computed the
output, found by that key among the same seed's partitions of the data dir."""

from __future__ import annotations

import math
import os
import re
import warnings
from pathlib import Path

import dagster as dg
import polars as pl

from esmr_assets.storage.reuse import read_key_file

#: the stage assets whose metadata the docs quote
ASSETS = ("user_day_logs", "impressions", "emotion_labels", "emotion_model", "causal_dags", "engagement_ranker")
SKIPPED = re.compile(r"(^|_)(path|preview|seconds)($|_)|^numeric_|^numpy_|^dagster/column_schema$")
SCHEMA = {"asset": pl.String, "key": pl.String, "value": pl.Float64, "text": pl.String}


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _rows(key: str, value) -> list[tuple[str, float | None, str | None]]:
    """`value` as (key, number, text) rows: objects and markdown tables flattened."""
    if SKIPPED.search(key.rsplit(".", 1)[-1]):
        return []
    if isinstance(value, bool):
        return [(key, float(value), None)]
    if isinstance(value, int | float):
        return [(key, float(value), None)] if math.isfinite(value) else []
    if isinstance(value, dict):
        return [row for field, inner in sorted(value.items()) for row in _rows(f"{key}.{field}", inner)]
    if isinstance(value, list):
        return [(key, None, ", ".join(map(str, value)))]
    if isinstance(value, str) and value.startswith("!["):  # a plot
        return []
    if isinstance(value, str) and value.startswith("|"):  # a markdown table: first column names the row
        lines = [line for line in value.strip().splitlines() if not re.fullmatch(r"\|[\s|:-]+\|", line.strip())]
        header, *body = (_cells(line) for line in lines)
        rows = []
        for cells in body:
            for column, cell in zip(header[1:], cells[1:]):
                rows += _rows(f"{key}.{cells[0]}.{column}", _number(cell))
        return rows
    return [(key, None, str(value))]


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _latest(instance: dg.DagsterInstance, asset: str, partition: str) -> dict | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1).records
    return dict(records[0].asset_materialization.metadata) if records else None


def _computed(instance: dg.DagsterInstance, preset_dir: Path, asset: str, seed: int, key: str) -> dict | None:
    """The metadata of the materialization that computed the output `key` of `asset` for `seed`:
    a partition holding that output (its `.key`) whose latest materialization is no link."""
    for folder in sorted((preset_dir / asset).glob(f"scenario=*/seed={seed}")):
        if read_key_file(folder)[0] != key:
            continue
        metadata = _latest(instance, asset, f"{folder.parent.name.removeprefix('scenario=')}|{seed}")
        if metadata is not None and "reused_key" not in metadata:
            return metadata
    return None


def cell_metadata(instance: dg.DagsterInstance, scenario: str, seed: int, preset_dir: Path | None = None) -> pl.DataFrame:
    """The latest materialization metadata of the stage assets of one cell, as rows; a linked
    step's is the computing materialization's, looked up under `preset_dir` (none without it)."""
    rows = []
    for asset in ASSETS:
        metadata = _latest(instance, asset, f"{scenario}|{seed}")
        if metadata is not None and "reused_key" in metadata:
            reused = metadata["reused_key"].value
            metadata = None if preset_dir is None else _computed(instance, preset_dir, asset, seed, reused)
            if metadata is None:  # its figures would be missing, not wrong: say so
                warnings.warn(f"{asset} of {scenario}|{seed} is linked (key {reused}) and no partition that computed "
                              "it is left: its metadata is not archived", stacklevel=2)
        for key, entry in sorted((metadata or {}).items()):
            rows += [(asset, *row) for row in _rows(key, entry.value)]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def archive_metadata(data_dir: Path, preset_cells: Path, scenario: str, seeds: list[int]) -> int:
    """Write `asset_metadata` for `seeds` of `scenario` under `preset_cells` (the archive's
    preset folder) from the Dagster instance of `data_dir` ($DAGSTER_HOME if set, as for
    `esmr`); return how many cells had any (none without an instance)."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir / ".dagster")  # where `esmr` keeps it
    if not home.is_dir():
        return 0
    written = 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for seed in seeds:
            table = cell_metadata(instance, scenario, seed, data_dir / preset_cells.name)
            if table.is_empty():
                continue
            target = preset_cells / "asset_metadata" / f"scenario={scenario}" / f"seed={seed}"
            target.mkdir(parents=True, exist_ok=True)
            table.write_parquet(target / "part-0.parquet")
            written += 1
    return written
