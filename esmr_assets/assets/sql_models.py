"""dbt-like SQL models: one asset per `dbt_like_sql/<name>.sql`, group `sql`.

Each model is one read-only SELECT run by an in-memory DuckDB over the warehouse (every
asset a view over all its cells, see `warehouse.py`). Its upstream assets are the tables
and models the SQL names, so adding a model is adding a file. Results span all
materialized cells, so the models are not partitioned: each writes
`<preset>/<name>/part-0.parquet` atomically (grouped by scenario), and `esmr sql` sees it as a view.
"""

from pathlib import Path

import dagster as dg

from ..orchestration.metadata import markdown_table
from ..orchestration.parquet_io import numerics_metadata
from ..orchestration.resources import EsmrConfig
from ..storage.files import PART_FILE, atomic_write_parquet
from ..storage.warehouse import REGISTRY_TABLE, SQL_DIR, referenced_tables, run_query

GROUP = "sql"


def model_description(sql: str) -> str:
    """The model's leading `--` comment lines: what it computes."""
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


def sql_model_asset(path: Path) -> dg.AssetsDefinition:
    """The asset of one SQL file; its deps are the tables the SQL reads."""
    name, sql = path.stem, path.read_text()
    deps = sorted(referenced_tables(sql) - {REGISTRY_TABLE})  # the registry is code, not an asset
    if not deps:
        raise ValueError(f"{path}: DuckDB cannot tell which tables the model reads (is it one SELECT?)")

    @dg.asset(name=name, group_name=GROUP, deps=[dg.AssetKey(t) for t in deps], kinds={"duckdb", "parquet"},
              description=model_description(sql) or f"SQL model {path.name}")
    def _model(context: dg.AssetExecutionContext, esmr: EsmrConfig) -> dg.MaterializeResult:
        root = esmr.storage_root()
        frame = run_query(root, sql)
        target = root / name / PART_FILE
        atomic_write_parquet(target, frame)
        context.log.info(f"{name}: {frame.height} rows from {', '.join(deps)}")
        return dg.MaterializeResult(
            metadata={
                "rows": frame.height,
                "reads": dg.MetadataValue.json(deps),
                "sql": dg.MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
                "preview": markdown_table(frame.head(20)),
                "path": dg.MetadataValue.path(str(target)),
                **numerics_metadata(target.parent),
            }
        )

    return _model


sql_models = [sql_model_asset(path) for path in sorted(SQL_DIR.glob("*.sql"))]
