"""Where every rendered figure comes from: the committed cell archive (studies/cells/), never a
data dir. `esmr study run` computes cells in a data dir, `docs/render/studies.py --data-dir`
copies the finished ones here, and every renderer reads only this."""

from __future__ import annotations

from pathlib import Path

from esmr_assets.storage.warehouse import Query, scenario_query

REPO = Path(__file__).resolve().parents[2]
CELLS = REPO / "studies" / "cells"
RESULTS = REPO / "studies" / "results"
#: the main evaluation: the fair test's paper configuration (five training replicates of ESMR's agent)
MAIN_STUDY, MAIN_SCENARIO = "fair_test", "paper"


def archived_query(study: str, scenario: str, preset: str = "paper", cells: Path = CELLS) -> Query:
    """SQL over one study scenario's archived cells (its tables and the SQL models over them)."""
    return scenario_query(cells / preset, f"{study}.{scenario}")
