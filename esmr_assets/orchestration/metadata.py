"""Dagster metadata shared by the assets: plots written beside an asset's files and embedded,
value counts, small tables as markdown."""

import base64
from typing import Any

import dagster as dg
import polars as pl
import polars.selectors as cs

from ..storage.files import atomic_write_bytes, partition_dir
from ..storage.reuse import invalidate
from .resources import EsmrConfig


def markdown_table_text(frame: pl.DataFrame) -> str:
    """A frame as a markdown table (pipes and newlines in cells escaped)."""

    def cell(value: Any) -> str:
        return "null" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(frame.columns) + " |",
        "|" + "---|" * len(frame.columns),
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()),
    ]
    return "\n".join(lines)


def plot_metadata(
    context: dg.AssetExecutionContext, esmr: EsmrConfig, name: str, png: bytes, output: str | None = None
) -> dict[str, dg.MetadataValue]:
    """Write the PNG `<name>.png` beside the files of the asset being materialized (of its
    output `output` in a multi-asset) and embed it in the metadata."""
    key = context.asset_key if output is None else context.asset_key_for_output(output)
    asset_dir = esmr.storage_root().joinpath(*key.path[:-1])
    path = partition_dir(asset_dir, key.path[-1], esmr.cell(context)) / f"{name}.png"
    invalidate(path.parent)
    atomic_write_bytes(path, png)
    encoded = base64.b64encode(png).decode()
    return {
        name: dg.MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})"),
        f"{name}_path": dg.MetadataValue.path(str(path)),
    }


def value_counts(series: pl.Series) -> dict[str, int]:
    """Count of each value, in the series' own order (enum order for enums)."""
    counts = series.value_counts().sort(series.name)
    return dict(zip(counts[series.name].cast(pl.String), counts["count"]))


def markdown_table(frame: pl.DataFrame, digits: int = 3) -> dg.MetadataValue:
    """A small frame as a markdown table, floats rounded."""
    return dg.MetadataValue.md(markdown_table_text(frame.with_columns(cs.float().round(digits))))
