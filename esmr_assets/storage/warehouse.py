"""Read-only SQL over the Parquet partitions, through an in-memory DuckDB.

Each asset folder becomes a view over all of its cells, with `scenario` and `seed` columns
from the hive layout (`scenario=<name>/seed=<k>/part-0.parquet`), and `policy_registry` holds the registered policies (`policy.registry.POLICIES`): their
order, whether they learn online and whether they read the latent state (`oracle_*`), for
queries to join. `t_quantile(p, df)` is Student's t quantile (scipy), so that intervals across
seeds are exact for any number of seeds; `t_half_width(sd, n)` is the half width of the 95 % t
interval of a mean of n values. Nothing is ever written: no .duckdb file exists, so parallel runs never contend for
a lock, and `run_query` refuses statements that could write.

Every connection is a sandbox, locked before any query runs: DuckDB may read the warehouse's
folder and nothing else (no other file, no URL, no extension installed or loaded), holds at
most `MEMORY_LIMIT` and never spills to disk. `esmr`'s SQL, the SQL models, the study reports
and the sensors all query through it. A table with an unreadable file is a view that fails
naming the file, so every other table stays queryable.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import duckdb
import polars as pl

from esmr_assets.policy.loop import registry
from esmr_assets.storage.files import PART_FILE

_EXPLAIN_PREFIX = re.compile(r"^\s*explain\b(\s+analy[sz]e\b)?(\s*\([^)]*\))?", re.IGNORECASE)


class WarehouseError(RuntimeError):
    """A refused or failed query, with DuckDB's own message."""


#: the most memory one query may hold (DuckDB refuses the query beyond it rather than spill)
MEMORY_LIMIT = "4GB"

#: the SQL models, one SELECT per file (`assets/sql_models.py`)
SQL_DIR = Path(__file__).resolve().parents[2] / "dbt_like_sql"


def table_name(asset_key_path: Sequence[str]) -> str:
    """View name of an asset: its key path joined by "__" (prefix/name -> prefix__name)."""
    return "__".join(asset_key_path)


#: folders under a preset root that are not tables: the reuse store and the scenario registry
NOT_TABLES = {"_shared", "scenarios"}
#: the hive columns a table's files lie under: cells, study reports, none (cross-cell models)
LAYOUTS = {("scenario", "seed"), ("study",), ()}


def _table_dirs(root: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """View name -> (asset folder, its hive partition columns), for folders holding at least
    one finished partition: `scenario=*/seed=*/part-0.parquet` for the cell assets,
    `study=*/part-0.parquet` for study reports, one `part-0.parquet` for a cross-cell SQL model."""
    if not root.is_dir():
        return {}
    found: dict[str, tuple[Path, tuple[str, ...]]] = {}
    for part in root.rglob(PART_FILE):
        relative = part.relative_to(root).parts[:-1]
        if not relative or relative[0] in NOT_TABLES or any(p.startswith(".") for p in relative):
            continue
        depth = 0  # the trailing `<column>=<value>` folders
        while depth < len(relative) and "=" in relative[len(relative) - 1 - depth]:
            depth += 1
        asset_parts, hive_parts = relative[: len(relative) - depth], relative[len(relative) - depth:]
        columns = tuple(part.partition("=")[0] for part in hive_parts)
        if asset_parts and columns in LAYOUTS:  # e.g. not `<asset>/seed=<k>/`, the layout before cells
            found.setdefault(table_name(asset_parts), (root.joinpath(*asset_parts), columns))
    return dict(sorted(found.items()))


REGISTRY_TABLE = "policy_registry"


def list_tables(root: Path) -> list[str]:
    """Names of the views `connect(root)` creates, and the policy registry."""
    return sorted([*_table_dirs(Path(root)), REGISTRY_TABLE])


def _registry_sql() -> str:
    """The policy registry as one VALUES table: policy, position (1 = first in every table),
    acts_with, learns_online, reads_latent, stream_key, description."""
    rows = ", ".join(
        f"({_quote_literal(p.name)}, {k}, {_quote_literal(p.acts_with)}, {p.learns_online}, {p.reads_latent}, "
        f"{p.stream_key}, {_quote_literal(p.description)})"
        for k, p in enumerate(registry.registered(), start=1)
    )
    columns = "policy, position, acts_with, learns_online, reads_latent, stream_key, description"
    return f"CREATE VIEW {REGISTRY_TABLE} AS SELECT * FROM (VALUES {rows}) AS r ({columns})"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def t_quantile(p: float | None, df: int | None) -> float | None:
    """Student's t quantile; null for a missing argument or fewer than one degree of freedom."""
    if p is None or df is None or df < 1:
        return None
    from scipy import stats

    return float(stats.t.ppf(p, df))


def _base_connection(readable: Path | None = None, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """In-memory, single-threaded, with the registry view, the t quantile and the t interval's
    half width; sandboxed to read `readable` (a resolved folder) and nothing else, and locked."""
    # One thread: parallel float aggregation may differ in the last bits between runs, and the
    # SQL models' Parquet must be byte-identical for the same inputs.
    con = duckdb.connect(":memory:", config={
        "threads": 1, "memory_limit": memory_limit, "temp_directory": "",  # never spill to disk
        "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute(_registry_sql())
    con.create_function("t_quantile", t_quantile, ["DOUBLE", "BIGINT"], "DOUBLE", null_handling="special",
                        side_effects=False)
    # Half the width of a 95 % t interval of a mean of n values with sample SD sd: the one formula
    # every across-seeds model uses.
    con.execute("create macro t_half_width(sd, n) as t_quantile(0.975, n - 1) * sd / sqrt(n)")
    allowed = [] if readable is None else [_quote_literal(str(readable) + "/")]
    con.execute(f"SET allowed_directories = [{', '.join(allowed)}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")  # so no query can undo the above
    return con


def _unreadable(files: Sequence[Path]) -> list[str]:
    """The files whose Parquet footer cannot be read, each with the reason."""
    import pyarrow.parquet as pq

    found = []
    for path in files:
        try:
            pq.read_metadata(path)
        except Exception as err:  # pyarrow raises several types for truncated or corrupt files
            found.append(f"{path} ({err})")
    return found


def _broken_view(name: str, problems: Sequence[str], cells: bool) -> str:
    """A view that fails, naming the files, whenever a query reads it."""
    remedy = ("`esmr verify --repair` recomputes it" if cells else
              "rerun the SQL models (`esmr run` refreshes them after its cells, or `sql_job` in the UI)")
    message = f"table {name} has an unreadable file: {'; '.join(problems)}; {remedy}"
    return (f"CREATE VIEW {quote_identifier(name)} AS SELECT * FROM range(1) "
            f"WHERE error({_quote_literal(message)}) IS NULL")


def connect(root: Path, scenario: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per asset under `root`; with `scenario`, every view
    holding a `scenario` column shows only that scenario's rows.

    Only exact `scenario=*/seed=*/part-0.parquet` files (and `part-0.parquet` of cross-cell
    SQL models) are read, so in-flight temp files are invisible.
    """
    root = Path(root).resolve()  # the sandbox compares paths as written
    con = _base_connection(root)
    only = "" if scenario is None else f" WHERE scenario = {_quote_literal(scenario)}"
    for name, (asset_dir, columns) in _table_dirs(root).items():
        if not columns:
            source = f"read_parquet({_quote_literal(str(asset_dir / PART_FILE))})"
            try:
                con.execute(f"CREATE VIEW {quote_identifier(name)} AS SELECT * FROM {source}{only}")
            except duckdb.BinderException:  # a model without a scenario column
                con.execute(f"CREATE VIEW {quote_identifier(name)} AS SELECT * FROM {source}")
            except duckdb.Error as err:
                con.execute(_broken_view(name, _unreadable([asset_dir / PART_FILE]) or [str(err)], cells=False))
            continue
        only_here = only if "scenario" in columns else ""
        pattern = _quote_literal(str(asset_dir.joinpath(*(f"{c}=*" for c in columns), PART_FILE)))
        types = ", ".join(f"'{c}': {'BIGINT' if c == 'seed' else 'VARCHAR'}" for c in columns)
        hive = f"read_parquet({pattern}, hive_partitioning = true, hive_types = {{{types}}}"
        try:
            # union_by_name: seeds written before a table gained a column read it as null. It
            # reads every file's schema now, so a table with an unreadable file becomes a view
            # that fails naming it, while the other tables stay queryable.
            con.execute(f"CREATE VIEW {quote_identifier(name)} AS SELECT * FROM {hive}, union_by_name = true){only_here}")
        except duckdb.Error as err:
            files = sorted(asset_dir.glob("/".join([*(f"{c}=*" for c in columns), PART_FILE])))
            con.execute(_broken_view(name, _unreadable(files) or [str(err)], cells="seed" in columns))
    return con


def _is_read_only(statement: duckdb.Statement) -> bool:
    # DESCRIBE, SHOW, SUMMARIZE, VALUES and FROM-first queries all parse as SELECT.
    if statement.type == duckdb.StatementType.SELECT:
        return True
    if statement.type != duckdb.StatementType.EXPLAIN:
        return False
    # EXPLAIN ANALYZE executes its statement, so judge the explained statement itself.
    inner = _EXPLAIN_PREFIX.sub("", statement.query, count=1)
    if inner == statement.query:
        return False
    try:
        inner_statements = duckdb.extract_statements(inner)
    except duckdb.Error:
        return False
    return len(inner_statements) == 1 and inner_statements[0].type == duckdb.StatementType.SELECT


def referenced_tables(sql: str) -> set[str]:
    """Tables a query reads (CTE names excluded); empty if DuckDB cannot tell."""
    con = _base_connection()  # binding the query needs the warehouse's functions
    try:
        return con.get_table_names(sql)
    except duckdb.Error:
        return set()
    finally:
        con.close()


def check_read_only(sql: str) -> None:
    """Raise `WarehouseError` unless `sql` is exactly one read statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        raise WarehouseError(str(err)) from None
    if len(statements) != 1:
        raise WarehouseError(f"expected exactly one SQL statement, got {len(statements)}")
    statement = statements[0]
    if not _is_read_only(statement):
        kind = statement.type.name
        if statement.type == duckdb.StatementType.EXPLAIN:
            kind += " of a non-read"
        raise WarehouseError(
            f"refused {kind} statement: only read statements are allowed "
            "(SELECT, WITH, DESCRIBE, SHOW, EXPLAIN, SUMMARIZE, VALUES)"
        )


def run_query(root: Path, sql: str, scenario: str | None = None) -> pl.DataFrame:
    """Run one read statement over the warehouse at `root` (one scenario's rows only, when
    given) and return its result."""
    frame, _ = query_rows(root, sql, scenario)
    return frame


def query_rows(root: Path, sql: str, scenario: str | None = None, limit: int | None = None,
               timeout: float | None = None, as_text: bool = False) -> tuple[pl.DataFrame, bool]:
    """(at most `limit` rows of the result, whether it has more): only those rows are fetched,
    however large the result. Past `timeout` seconds the query is stopped (`WarehouseError`).
    `as_text`: every value as DuckDB writes it (for printing: any type prints)."""
    with _session(root, sql, scenario, timeout) as session:
        relation = session.sql(sql)
        if limit is not None:
            relation = relation.limit(limit + 1)
        frame = _text(relation) if as_text else _frame(relation)
        return (frame, False) if limit is None else (frame.head(limit), frame.height > limit)


#: DuckDB's numeric types: their text is right-aligned when printed
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def _text(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """The relation with every value as DuckDB's text, a column's name ending in a tab when
    its type is numeric (for `numeric_columns`)."""
    numeric = [str(t).startswith(_NUMERIC) for t in relation.types]
    frame = relation.select("COLUMNS(*)::VARCHAR").pl()
    return frame.rename({c: c + "\t" for c, n in zip(frame.columns, numeric) if n})


def numeric_columns(frame: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    """A frame of `_text` with its names restored, and the names of its numeric columns."""
    numeric = {c[:-1] for c in frame.columns if c.endswith("\t")}
    return frame.rename({c: c[:-1] for c in frame.columns if c.endswith("\t")}), numeric


def _frame(relation: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """The relation as a polars frame; columns polars cannot hold (an interval of months, an
    infinite timestamp, a union) as DuckDB's own text of them."""
    try:
        return relation.pl()
    except (duckdb.Error, KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # polars raises several types, pyo3 a PanicException (a BaseException)
        return relation.select("COLUMNS(*)::VARCHAR").pl()


def stream_rows(root: Path, sql: str, scenario: str | None = None, timeout: float | None = None,
                batch_rows: int = 10_000) -> Iterator[pl.DataFrame]:
    """Every row of the result, `batch_rows` at a time, never all in memory at once. The time
    limit bounds the wait for each batch, not the time the reader takes over it."""
    with _session(root, sql, scenario, timeout) as session:
        relation = session.sql(sql)
        numeric = [str(t).startswith(_NUMERIC) for t in relation.types]
        reader = relation.select("COLUMNS(*)::VARCHAR").to_arrow_reader(batch_rows)
        for batch in reader:
            session.pause()
            frame = pl.from_arrow(batch)
            yield frame.rename({c: c + "\t" for c, n in zip(frame.columns, numeric) if n})
            session.resume()


class _session:
    """A sandboxed connection for one read statement, turning DuckDB's errors into
    `WarehouseError`, stopping the query past `timeout` seconds, and on Ctrl-C (DuckDB does
    not look at Python's signals while it computes) raising `KeyboardInterrupt`."""

    def __init__(self, root: Path, sql: str, scenario: str | None, timeout: float | None) -> None:
        check_read_only(sql)
        self.root, self.scenario, self.timeout = root, scenario, timeout
        self.timer: threading.Timer | None = None
        self.timed_out = self.interrupted = False
        self.previous_handler = None

    def __enter__(self) -> _session:
        try:
            self.con = connect(self.root, self.scenario)
        except duckdb.Error as err:
            raise WarehouseError(str(err)) from None
        self.resume()
        if threading.current_thread() is threading.main_thread():
            self.previous_handler = signal.signal(signal.SIGINT, self._interrupt)
        return self

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        return self.con.sql(query)

    def resume(self) -> None:
        """Start (again) the clock of the time limit."""
        if self.timeout is not None:
            self.timer = threading.Timer(self.timeout, self._stop)
            self.timer.daemon = True
            self.timer.start()

    def pause(self) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def _stop(self) -> None:
        self.timed_out = True
        self.con.interrupt()

    def _interrupt(self, signum, frame) -> None:
        self.interrupted = True
        self.con.interrupt()

    def __exit__(self, kind, err, trace) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.previous_handler is not None:
            signal.signal(signal.SIGINT, self.previous_handler)
        self.con.close()
        if self.interrupted:
            raise KeyboardInterrupt from None
        if self.timed_out and isinstance(err, (duckdb.Error, KeyboardInterrupt, OSError)):  # OSError: arrow's
            raise WarehouseError(f"the query ran past its time limit ({self.timeout:g} s) and was stopped") from None
        if isinstance(err, duckdb.CatalogException):
            tables = ", ".join(list_tables(self.root))
            raise WarehouseError(f"{err} (tables under {self.root}: {tables})") from None
        if isinstance(err, duckdb.InterruptException):
            raise KeyboardInterrupt from None  # Ctrl-C: DuckDB stopped the query
        if isinstance(err, duckdb.Error):
            raise WarehouseError(str(err)) from None


#: SQL over one warehouse, as `scenario_query` gives it: a read statement in, its result out
Query = Callable[[str], pl.DataFrame]


def scenario_query(root: Path, scenario: str | None) -> Query:
    """`run_query` bound to a warehouse and one scenario's rows (every scenario for None)."""
    return lambda sql: run_query(root, sql, scenario)
