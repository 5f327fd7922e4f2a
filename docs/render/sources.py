"""Where every rendered figure comes from: the committed cell archive (studies/cells/), never a
data dir. `esmr study run` computes cells in a data dir, `docs/render/studies.py --data-dir`
copies the finished ones here, and every renderer reads only this."""

from __future__ import annotations

import re
from pathlib import Path

from esmr_assets.storage.warehouse import SQL_DIR, Query, run_query

REPO = Path(__file__).resolve().parents[2]
CELLS = REPO / "studies" / "cells"
RESULTS = REPO / "studies" / "results"
#: the main evaluation: the fair test's paper configuration (five training replicates of ESMR's agent)
MAIN_STUDY, MAIN_SCENARIO = "fair_test", "paper"


#: the SQL models a query over the archive may name: the archive holds cell tables only
MODELS = {path.stem: path.read_text().strip().rstrip(";") for path in sorted(SQL_DIR.glob("*.sql"))}


def with_models(sql: str) -> str:
    """`sql` with the SQL models it names (and those they name) as common table expressions
    ahead of it, in dependency order: the same SQL as the warehouse's model assets."""
    def named(text: str) -> list[str]:
        return [m for m in MODELS if re.search(rf"\b{m}\b", text)]

    order: list[str] = []

    def visit(model: str) -> None:
        for other in named(MODELS[model]):
            if other != model and other not in order:
                visit(other)
        if model not in order:
            order.append(model)

    for model in named(sql):
        visit(model)
    if not order:
        return sql
    ctes = ",\n".join(f"{m} as (\n{MODELS[m]}\n)" for m in order)
    head = re.match(r"\s*with\s", sql, flags=re.I)
    return f"with {ctes},\n{sql[head.end():]}" if head else f"with {ctes}\n{sql}"


def archived_query(study: str | None, scenario: str | None = None, preset: str = "paper",
                   cells: Path = CELLS) -> Query:
    """SQL over the archived cells (one study scenario's, or every cell for None), with the SQL
    models computed from them."""
    only = None if study is None else f"{study}.{scenario}"
    return lambda sql: run_query(cells / preset, with_models(sql), only)
