"""Parquet storage of cell partitions, laid out for DuckDB's hive partitioning.

`<data_dir>/<preset>/<asset key path>/scenario=<name>/seed=<k>/part-0.parquet`. Written atomically and
byte-for-byte deterministically, so a re-run of a cell either leaves identical files or the
previous good ones. Local filesystems only: atomicity relies on fsync + rename.
(dagster-polars does not support polars 2, hence our own.)
"""

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from upath import UPath

from esmr_assets.core.numeric_env import numpy_simd
from esmr_assets.core.settings import SettingsError
from esmr_assets.orchestration.metadata import markdown_table_text
from esmr_assets.orchestration.resources import EsmrConfig
from esmr_assets.storage.cells import KEY_SEPARATOR, parse_cell
from esmr_assets.storage.files import (
    PART_FILE,
    atomic_write_bytes,
    atomic_write_parquet,
    atomic_write_with,
    partition_dir,
)
from esmr_assets.storage.reuse import invalidate, write_record

__all__ = [
    "ParquetIOManager",
    "SeedParquetIOManager",
    "UnreadableParquetError",
    "atomic_write_bytes",
    "atomic_write_with",
    "partition_dir",
]

PREVIEW_ROWS = 5


class UnreadableParquetError(OSError):
    """A stored partition exists but cannot be read (corrupt or truncated)."""


def _asset_name(context: dg.InputContext | dg.OutputContext) -> str:
    return context.asset_key.to_user_string()


def numerics_metadata(folder: Path) -> dict[str, dg.MetadataValue]:
    """Record beside the files just written what they were computed with, and say it in the
    materialization's metadata (with numpy's SIMD features, which the bytes do not depend on)."""
    record = write_record(folder)
    return {"numeric_environment": dg.MetadataValue.json(record),
            "numeric_fingerprint": dg.MetadataValue.text(record["fingerprint"]),
            "numpy_simd": dg.MetadataValue.text(" ".join(numpy_simd()))}


class SeedParquetIOManager(dg.UPathIOManager):
    """Stores each cell partition of an asset as one zstd Parquet file."""

    extension = ".parquet"

    def get_path_for_partition(
        self, context: dg.InputContext | dg.OutputContext, path: UPath, partition: str
    ) -> UPath:
        try:
            # UPathIOManager hands a multi-partition key over as "<scenario>/<seed>"
            cell = parse_cell(partition.replace("/", KEY_SEPARATOR, 1))
        except SettingsError as err:
            raise SettingsError(f"asset {_asset_name(context)}: invalid partition key: {err}") from None
        # `path` is <root>/<asset key path>; UPathIOManager appends the extension.
        return partition_dir(path.parent, path.name, cell) / PART_FILE.removesuffix(self.extension)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        # Checked before UPathIOManager creates any folder for the partition.
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"asset {_asset_name(context)} returned {type(obj).__module__}.{type(obj).__qualname__}; "
                "ParquetIOManager stores polars.DataFrame only"
            )
        if not context.has_asset_partitions:
            raise dg.DagsterInvariantViolationError(
                f"asset {_asset_name(context)} is not partitioned; ParquetIOManager stores cell partitions only"
            )
        super().handle_output(context, obj)

    def dump_to_path(self, context: dg.OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        invalidate(Path(path).parent)
        atomic_write_parquet(Path(path), obj)
        context.add_output_metadata(numerics_metadata(Path(path).parent))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame | pl.LazyFrame:
        """The stored partition; a `pl.LazyFrame` scan when the input is annotated so, for
        tables too large to load whole (the large preset's impressions). A lazy scan reads
        the file's footer here, so a truncated file still fails at load time."""
        local = Path(path)
        if not local.is_file():
            raise FileNotFoundError(
                f"asset {_asset_name(context)}: no stored partition at {local}; materialize it first"
            )
        try:
            if context.dagster_type.typing_type is pl.LazyFrame:
                pl.read_parquet_schema(local)
                return pl.scan_parquet(local)
            return pl.read_parquet(local)
        except Exception as err:  # polars raises several types for corrupt or truncated files
            raise UnreadableParquetError(
                f"asset {_asset_name(context)}: cannot read {local} (corrupt or truncated?): {err}"
            ) from err

    def get_metadata(self, context: dg.OutputContext, obj: pl.DataFrame) -> dict[str, Any]:
        schema = dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=str(dtype)) for name, dtype in obj.schema.items()]
        )
        return {
            "dagster/row_count": dg.MetadataValue.int(obj.height),
            "dagster/column_schema": dg.MetadataValue.table_schema(schema),
            "preview": dg.MetadataValue.md(markdown_table_text(obj.head(PREVIEW_ROWS))),
        }


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """IO manager for every asset: Parquet under the run's storage root."""

    esmr: dg.ResourceDependency[EsmrConfig]

    def create_io_manager(self, context: dg.InitResourceContext) -> SeedParquetIOManager:
        return SeedParquetIOManager(base_path=UPath(self.esmr.storage_root()))
