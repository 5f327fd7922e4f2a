"""A study's result: per scenario, the paired effects of the reported policies against the
reference policy, with 95 % t intervals across seeds, and a plot of effect against the knob.

It reads the warehouse's `policy_effects_across_seeds` model (scenario × policy × metric,
already across seeds), so the study table and `esmr sql` can never disagree.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from ..evaluation.plots.common import plt, to_png
from ..storage.files import atomic_write_bytes
from ..storage.warehouse import SQL_DIR, run_query
from .spec import STUDY_DIR, Study

SOURCE = "policy_effects_across_seeds"
COLUMNS = ["scenario", "knob", "value", "policy", "oracle", "metric", "seeds", "effect", "sd", "ci95_low",
           "ci95_high", "seeds_above_zero", "seeds_below_zero", "share_of_ceiling", "replicate_sd"]


def _quoted(names) -> str:
    return ", ".join("'" + name.replace("'", "''") + "'" for name in names)


def model_source(name: str, recompute: bool) -> str:
    """The FROM target of SQL model `name`: its materialized table, or (`recompute`) its SQL
    as a subquery over the root's cells, for a root that holds cell tables only (the
    committed cell archive, `docs/render/studies.py`)."""
    if not recompute:
        return name
    return f"({(SQL_DIR / f'{name}.sql').read_text()}) as {name}"


def study_effects(root: Path, study: Study, recompute: bool = False) -> pl.DataFrame:
    """One row per scenario, reported policy and metric, in the spec's scenario order; on the
    latent truth (`label_source = 'true'`). Scenarios not materialized yet are absent.
    `recompute`: from the cells' `policy_effects` instead of the materialized SQL model."""
    keys = {study.cell_scenario(s): s for s in study.scenarios}
    frame = run_query(root, f"select * from {model_source(SOURCE, recompute)} where label_source = 'true' "
                            f"and scenario in ({_quoted(keys)}) and policy in ({_quoted(study.policies)}) "
                            f"and metric in ({_quoted(study.metrics)})")
    order = {key: n for n, key in enumerate(keys)}
    knobs = {key: s.knob for key, s in keys.items()}
    return (
        frame.with_columns(
            pl.col("scenario").replace_strict({k: s.name for k, s in keys.items()}).alias("name"),
            pl.col("scenario").replace_strict({k: (v[0] if v else None) for k, v in knobs.items()},
                                              return_dtype=pl.String).alias("knob"),
            pl.col("scenario").replace_strict({k: (str(v[1]) if v else None) for k, v in knobs.items()},
                                              return_dtype=pl.String).alias("value"),
            pl.col("scenario").replace_strict(order).alias("_order"),
            pl.col("policy").replace_strict({p: n for n, p in enumerate(study.policies)}).alias("_policy"),
            pl.col("metric").replace_strict({m: n for n, m in enumerate(study.metrics)}).alias("_metric"),
        )
        .sort("_order", "_policy", "_metric")
        .with_columns(pl.col("name").alias("scenario"))
        .select(COLUMNS)
    )


def _axes_groups(study: Study) -> list[tuple[str | None, list]]:
    """Scenarios grouped by the setting they vary (in spec order): one row of panels per
    knob; scenarios varying several settings (or none) share a categorical row."""
    groups: dict[str | None, list] = {}
    for scenario in study.scenarios:
        knob = scenario.knob
        numeric = knob is not None and isinstance(knob[1], (int, float)) and not isinstance(knob[1], bool)
        groups.setdefault(knob[0] if numeric else None, []).append(scenario)
    return list(groups.items())


def effects_plot(effects: pl.DataFrame, study: Study) -> bytes:
    """Effect against the knob: one row of panels per varied setting (its values on the x
    axis), one panel per metric, each reported policy's mean effect across seeds with its 95 %
    t interval; scenarios that vary several settings at once are placed by name."""
    metrics = list(study.metrics)
    groups = _axes_groups(study)
    fig, axes = plt.subplots(len(groups), len(metrics), figsize=(4.6 * len(metrics), 3.6 * len(groups)),
                             squeeze=False)
    for row, (knob, scenarios) in zip(axes, groups):
        names = [s.name for s in scenarios]
        xs_of = ({s.name: float(s.knob[1]) for s in scenarios} if knob is not None
                 else {name: float(k) for k, name in enumerate(names)})
        span = (max(xs_of.values()) - min(xs_of.values())) or 1.0
        width = 0.6 * span / max(1, len(names)) / max(1, len(study.policies))
        for ax, metric in zip(row, metrics):
            for n, policy in enumerate(study.policies):
                rows = effects.filter((pl.col("metric") == metric) & (pl.col("policy") == policy)
                                      & pl.col("scenario").is_in(names))
                if rows.is_empty():
                    continue
                rows = rows.sort(pl.col("scenario").replace_strict(xs_of, return_dtype=pl.Float64))  # lines left to right
                offset = (n - (len(study.policies) - 1) / 2) * width
                xs = np.array([xs_of[s] for s in rows["scenario"]]) + offset
                mid = rows["effect"].to_numpy()
                low = np.nan_to_num(mid - rows["ci95_low"].fill_null(np.nan).to_numpy())
                high = np.nan_to_num(rows["ci95_high"].fill_null(np.nan).to_numpy() - mid)
                label = f"{policy} (oracle)" if bool(rows["oracle"].all()) else policy  # reads the truth everywhere
                ax.errorbar(xs, mid, yerr=np.vstack([low, high]), fmt="o-" if knob else "o", capsize=3, label=label)
            ax.axhline(0.0, color="#888888", linewidth=0.8)
            if knob is None:  # a scenario in which every policy reads the latent state is marked
                everyone = effects.filter(pl.col("scenario").is_in(names)).group_by("scenario").agg(pl.col("oracle").all())
                marked = {r["scenario"] for r in everyone.iter_rows(named=True) if r["oracle"]}
                ax.set_xticks(list(xs_of.values()), [f"{n} (oracle)" if n in marked else n for n in names],
                              rotation=45, ha="right", fontsize=8)
            else:
                ax.set_xlabel(knob, fontsize=9)
            ax.set_title(f"{metric}", fontsize=10)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"study {study.name}: paired effects against the reference, 95 % t intervals across seeds",
                 fontsize=11)
    fig.tight_layout()
    return to_png(fig)


class StudyRunTiming:
    """One `esmr study run`'s timing record, `<root>/studies/<study>.timing-<run>.json`:
    wall time so far, what reuse saved, the steps it computed and linked, and the cells it
    worked on. Rewritten after every cell that did work (`cell_done`), so a run stopped
    midway still records those cells, and once more at the end (`finish`, `complete`); one
    file per run, so a resumed run adds a record instead of replacing one. A record that
    cannot be written is a warning, never the study's failure."""

    def __init__(self, root: Path, study: Study, run: str, started: float) -> None:
        self.root, self.study, self.run, self.started = Path(root), study, run, started
        self.saved: dict = {}  # (cell, step) -> seconds, filled by the planner
        self.computed = self.reused = 0
        self.cells: list[tuple[str, int]] = []  # (scenario, seed) of the cells this run worked on

    @property
    def path(self) -> Path:
        return self.root / STUDY_DIR / f"{self.study.name}.timing-{self.run}.json"

    def cell_done(self, scenario: str, seed: int, steps: dict[str, float | str], now: float) -> None:
        """A finished cell's step outcomes (seconds, "reused" or "current")."""
        computed = sum(isinstance(v, float) for v in steps.values())
        reused = sum(v == "reused" for v in steps.values())
        if computed or reused:
            self.computed, self.reused = self.computed + computed, self.reused + reused
            self.cells.append((scenario, seed))
            self._write(now, complete=False)

    def finish(self, now: float) -> None:
        """The run ended well. A run that found every cell current records nothing, unless the
        study's last run stopped before its end (none completed after it): then this one
        finished that run's work. Runs compare by their names, which start with their UTC start."""
        runs = [json.loads(p.read_text()) for p in (self.root / STUDY_DIR).glob(f"{self.study.name}.timing-*.json")
                if p != self.path]
        last_complete = max((r["run"] for r in runs if "run" in r and r.get("complete")), default="")
        stopped = any(r["run"] > last_complete for r in runs if "run" in r and r.get("complete") is False)
        if self.cells or stopped:
            self._write(now, complete=True)

    def _write(self, now: float, complete: bool) -> None:
        record = {"study": self.study.name, "run": self.run, "complete": complete,
                  "seeds": ",".join(map(str, sorted({seed for _, seed in self.cells}))),
                  "cells": [f"{scenario}:{seed}" for scenario, seed in self.cells],
                  "wall_seconds": round(now - self.started, 1), "reuse_saved_seconds": round(sum(self.saved.values()), 1),
                  "steps_computed": self.computed, "steps_reused": self.reused}
        try:
            atomic_write_bytes(self.path, json.dumps(record, indent=1).encode())
        except OSError as err:
            warnings.warn(f"study {self.study.name}: its timing record {self.path} was not written: {err}", stacklevel=2)


def study_timings(data_dir: Path) -> pl.DataFrame:
    """Every preset's recorded study runs in `data_dir`, with the share of the work reuse saved."""
    return read_study_timings(sorted(Path(data_dir).glob(f"*/{STUDY_DIR}/*.timing*.json")))  # older: <study>.timing.json


def read_study_timings(paths: Iterable[Path]) -> pl.DataFrame:
    """The study runs recorded in `paths` (`StudyRunTiming`'s files), with the share of the
    whole work reuse saved; `complete` is false for a run stopped midway, and `cells` lists
    the cells a run worked on (both null where not recorded). Records written before "seeds"
    was recorded counted each cell's total as a step too: their steps computed are null."""
    rows = []
    for path in paths:
        t = json.loads(path.read_text())
        whole = t["wall_seconds"] + t["reuse_saved_seconds"]
        rows.append({"study": t["study"], "seeds": t.get("seeds"), "cells": t.get("cells"), "complete": t.get("complete"),
                     "wall_seconds": t["wall_seconds"], "reuse_saved_seconds": t["reuse_saved_seconds"],
                     "share_saved": t["reuse_saved_seconds"] / max(whole, 1e-9),
                     "steps_computed": t["steps_computed"] if "seeds" in t else None, "steps_reused": t["steps_reused"]})
    schema = {"study": pl.String, "seeds": pl.String, "cells": pl.List(pl.String), "complete": pl.Boolean,
              "wall_seconds": pl.Float64, "reuse_saved_seconds": pl.Float64, "share_saved": pl.Float64,
              "steps_computed": pl.Int64, "steps_reused": pl.Int64}
    return pl.DataFrame(rows, schema=schema)
