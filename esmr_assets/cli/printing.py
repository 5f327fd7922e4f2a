"""What `esmr` prints: aligned tables, per-asset times, per-stage times, and the summary
after a run (the queries in `dbt_like_sql/summary/`, each file's `--` lines its title)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from esmr_assets.storage.cells import Cell
from esmr_assets.storage.warehouse import SQL_DIR, list_tables, quote_identifier, referenced_tables, run_query

SUMMARY_DIR = SQL_DIR / "summary"


def summary_queries() -> list[tuple[str, str]]:
    """(title, sql) per file of `dbt_like_sql/summary/`, in file-name order; a query runs
    only when every table it reads exists in the warehouse."""
    queries = []
    for path in sorted(SUMMARY_DIR.glob("*.sql")):
        text = path.read_text()
        title = " ".join(line[2:].strip() for line in text.splitlines() if line.startswith("--"))
        sql = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()
        queries.append((title, sql))
    return queries


def format_table(frame: pl.DataFrame, max_rows: int, more: bool = False, numeric: set[str] | None = None) -> str:
    """Aligned plain-text table of the first `max_rows` rows: every column, names in full,
    numbers (the frame's numeric columns, or those named in `numeric`) right-aligned.
    `more`: the result has rows beyond `frame` (never fetched)."""
    shown = frame.head(max_rows)
    columns = []
    for name in frame.columns:
        header, *cells = [name, *("null" if value is None else str(value) for value in shown[name].to_list())]
        width = max([len(header), *map(len, cells)])
        right = name in numeric if numeric is not None else frame.schema[name].is_numeric()
        align = str.rjust if right else str.ljust
        columns.append([align(header, width), "-" * width, *(align(cell, width) for cell in cells)])
    lines = ["  ".join(row).rstrip() for row in zip(*columns)]
    footer = f"({frame.height} row{'s' if frame.height != 1 else ''})"
    if frame.height > max_rows:
        footer = f"({max_rows} of {frame.height} rows shown; raise --limit to see more)"
    elif more:
        footer = f"(the first {frame.height} rows; more follow: raise --limit, or --all for every row)"
    return "\n".join([*lines, footer])


def print_timings(labels: list[str], cells: list[Cell], outcome: dict[Cell, dict[str, float | str]]) -> None:
    """Each step's seconds per cell, or whether it was reused from another cell (linked) or
    already there; the runs' own overhead (Dagster's start, checks and event writes outside
    the steps, and the linking); each cell from start to end; the slowest step marked."""
    from esmr_assets.orchestration.planner import CELL_TOTAL

    def seconds(label: str, cell: Cell) -> float:
        value = outcome[cell].get(label, 0.0)
        return value if isinstance(value, float) else 0.0

    def shown(value: float | str) -> str:
        return f"{value:.2f}s" if isinstance(value, float) else str(value)

    totals = {label: sum(seconds(label, cell) for cell in cells) for label in labels}
    slowest = max(totals, key=totals.__getitem__, default=None)
    many = len(cells) > 1
    one_scenario = len({cell.scenario for cell in cells}) == 1
    header = [f"seed {c.seed}" if one_scenario else f"{c.scenario}/seed {c.seed}" for c in cells] + (["total"] * many)

    def row(values: list[float | str]) -> list[str]:
        numbers = [v for v in values if isinstance(v, float)]
        return [shown(v) for v in values] + ([f"{sum(numbers):.2f}s"] if many else [])

    body = [[label, *row([outcome[cell].get(label, "-") for cell in cells])] for label in labels]
    overhead = [seconds(CELL_TOTAL, cell) - sum(seconds(label, cell) for label in labels) for cell in cells]
    body.append(["run overhead", *row(overhead)])
    body.append(["total", *row([seconds(CELL_TOTAL, cell) for cell in cells])])
    table = [["asset", *header], *body]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    print("wall time per asset")
    for cells_of_row in table:
        line = "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells_of_row, widths)))
        print(line + ("  <- slowest" if cells_of_row[0] == slowest and totals[slowest] > 0 else ""))
    if any(v in ("reused", "current") for cell in cells for v in outcome[cell].values()):
        print("(reused: linked from a cell whose output is the same; current: the cell had it already)")


def print_summary(root: Path, asset_tables: list[str], scenario: str, seeds: list[int]) -> None:
    available = set(list_tables(root))
    tables = [name for name in asset_tables if name in available]
    where = f"scenario = '{scenario}'"  # a validated scenario name: no quotes in it
    if tables:
        rows = []
        for name in tables:
            counts = dict(run_query(
                root, f"select seed, count(*) from {quote_identifier(name)} where {where} group by seed").iter_rows())
            rows.append({"table": name, **{f"seed {seed}": counts.get(seed, 0) for seed in seeds}})
        print("\nrows per table")
        print(format_table(pl.DataFrame(rows), max_rows=len(rows)))
    ran = ", ".join(str(seed) for seed in seeds)
    for title, sql in summary_queries():
        if referenced_tables(sql) <= available:
            print(f"\n{title}")
            # Only the seeds of this run, in the query's own order.
            print(format_table(run_query(root, f"select * from ({sql}) where {where} and seed in ({ran})"),
                               max_rows=100))


def print_stage_times(labels: list[str], outcome, saved: dict) -> None:
    """Per stage: cells computed, their total seconds, cells reused and the seconds that saved."""
    rows = []
    for label in labels:
        values = [steps.get(label) for steps in outcome.values()]
        computed = [v for v in values if isinstance(v, float)]
        rows.append({"stage": label, "computed": len(computed), "seconds": round(sum(computed), 1),
                     "reused": sum(v == "reused" for v in values), "current": sum(v == "current" for v in values),
                     "saved_seconds": round(sum(v for (c, lab), v in saved.items() if lab == label), 1)})
    print(format_table(pl.DataFrame(rows), max_rows=len(rows)))
