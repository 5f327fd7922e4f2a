"""The `esmr` subcommands: each validates its input before writing anything, runs, and
returns an exit code; what they print is in `printing`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from esmr_assets.core.settings import PRESETS, Settings, SettingsError, parse_seed
from esmr_assets.policy.loop.registry import graph_settings
from esmr_assets.storage.cells import Cell, overrides_scenario_name, register_scenario
from esmr_assets.storage.files import (
    check_writable_dir,
    ensure_writable_dir,
    resolve_data_dir,
    storage_root,
)
from esmr_assets.storage.warehouse import (
    WarehouseError,
    numeric_columns,
    query_rows,
    stream_rows,
    table_name,
)

from .printing import format_table, print_stage_times, print_summary, print_timings

if TYPE_CHECKING:
    import dagster as dg

EXIT_FAILED = 1

EXIT_USAGE = 2

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

#: `esmr sql --limit` at most (`--all` streams any number)
MAX_PRINTED_ROWS = 10_000_000



class UsageError(Exception):
    """Bad input, detected before anything is written."""


def _fail(message: str, code: int) -> int:
    """Print the error on one line (a multi-line cause is joined) and return `code`."""
    print(f"esmr: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _settings_and_data_dir(args: argparse.Namespace) -> tuple[Settings, Path]:
    if not args.overrides.strip():
        raise UsageError("--overrides is empty; give a JSON object such as '{\"policy\": {\"alpha\": 0.5}}'")
    try:
        return graph_settings(args.preset, args.overrides), resolve_data_dir(args.data_dir)
    except SettingsError as err:
        raise UsageError(str(err)) from None


def _dagster_home(data_dir: Path) -> Path:
    """$DAGSTER_HOME if set (what `make ui` uses), else `<data_dir>/.dagster`."""
    return Path(os.environ.get("DAGSTER_HOME") or data_dir / ".dagster").absolute()


def _ready_dirs(data_dir: Path) -> None:
    """The data dir and the Dagster instance's folder, created if need be; both refused
    (SettingsError) before either is created."""
    check_writable_dir(data_dir)
    check_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")
    ensure_writable_dir(data_dir)
    ensure_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")


def _validate_run(args: argparse.Namespace) -> tuple[list[int], Settings, Path]:
    """Everything that can be wrong with the input, checked before anything is written."""
    try:
        seeds = list(dict.fromkeys(parse_seed(seed) for seed in args.seed))
    except SettingsError as err:
        raise UsageError(str(err)) from None
    settings, data_dir = _settings_and_data_dir(args)
    try:
        _ready_dirs(data_dir)
    except SettingsError as err:
        raise UsageError(str(err)) from None
    return seeds, settings, data_dir


def load_definitions() -> dg.Definitions:
    from esmr_assets.definitions import defs

    return defs


def _run_cells(
    cells: list[tuple[Cell, Settings]], preset: str, data_dir: Path, label: str, saved: dict | None = None,
    verbose: bool = False, on_cell=lambda cell, steps: None,
) -> tuple[int, list, dict[Cell, dict[str, float | str]], dict[str, float]]:
    """Bring `cells` up to date (reusing what other cells computed), then refresh the
    cross-cell SQL models; a progress bar on stderr. Returns (exit code, the partitioned
    steps, per cell each step's seconds or "reused"/"current", the SQL models' seconds);
    `on_cell(cell, its steps)` follows each finished cell.
    A failure is one line naming the asset, the cell and the cause, and where the full trace
    is (`verbose` prints it first)."""
    from tqdm import tqdm

    from esmr_assets.orchestration.planner import materialize_cells
    from esmr_assets.orchestration.resources import run_config
    from esmr_assets.orchestration.runner import StepFailed, open_instance, plan_steps, run_step
    from esmr_assets.storage.reuse import NumericEnvironmentMismatch

    defs = load_definitions()
    planned = plan_steps(defs)
    steps = [step for step in planned if step.partitioned]
    cross_cell = [step for step in planned if not step.partitioned and not step.by_study]
    # Dagster keeps a run's outputs in memory until the run ends: a population simulated in
    # chunks (`large`) runs one step per run, so that memory stays that of its largest step.
    chunked = any(s.simulation.n_users > s.simulation.user_chunk_size for _, s in cells)
    outcome: dict[Cell, dict[str, float | str]] = {}
    model_seconds: dict[str, float] = {}
    with (
        open_instance(_dagster_home(data_dir)) as instance,
        tqdm(total=len(cells) * len(steps) + len(cross_cell), unit="asset", file=sys.stderr) as bar,
    ):
        def progress(cell: Cell, step, what: str) -> None:
            if what == "start":
                bar.set_description(f"{label}{cell.scenario} seed {cell.seed}: {step.label}")
            elif what.startswith("damaged"):
                tqdm.write(f"esmr: {step.label} of {cell} was {what}; computing it again", file=sys.stderr)
            else:
                bar.update()

        try:
            outcome = materialize_cells(defs, steps, cells, storage_root(data_dir, preset),
                                        run_config(preset, data_dir), instance, progress, one_step_per_run=chunked,
                                        saved=saved, on_cell=on_cell)
            for step in cross_cell:
                bar.set_description(f"all cells: {step.label}")
                model_seconds[step.label] = run_step(defs, step, None, run_config(preset, data_dir), instance)
                bar.update()
        except StepFailed as err:
            bar.close()
            if verbose:
                print(err.trace, file=sys.stderr, end="")
            where = "" if verbose else "; the full trace is in the run's event log (`make ui`), or rerun with --verbose"
            return _fail(f"{err}{where}", EXIT_FAILED), steps, outcome, model_seconds
        except NumericEnvironmentMismatch as err:
            bar.close()
            return _fail(str(err), EXIT_FAILED), steps, outcome, model_seconds
        except OSError as err:  # outside a run: linking reused outputs, sharing, the instance
            bar.close()
            return _fail(f"{err.strerror or err} ({err.filename or 'no file named'}); no cell holds a key for a partial "
                         "write: rerun to finish", EXIT_FAILED), steps, outcome, model_seconds
    return 0, steps, outcome, model_seconds


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        seeds, settings, data_dir = _validate_run(args)
        scenario = overrides_scenario_name(args.preset, args.overrides)
        register_scenario(storage_root(data_dir, args.preset), scenario, args.overrides)
    except (UsageError, SettingsError) as err:
        return _fail(str(err), EXIT_USAGE)
    except OSError as err:  # registering the scenario (a full disk, say): its file is written whole or not at all
        return _fail(f"cannot register scenario {scenario}: {err.strerror or err} ({err.filename})", EXIT_FAILED)
    cells = [(Cell(scenario, seed), settings) for seed in seeds]
    code, steps, outcome, model_seconds = _run_cells(cells, args.preset, data_dir, "", verbose=args.verbose)
    if code:
        return code
    root = storage_root(data_dir, args.preset)
    print(f"materialized seeds {', '.join(map(str, seeds))} of scenario {scenario} into {root}")
    print_timings([step.label for step in steps], [cell for cell, _ in cells], outcome)
    if model_seconds:
        print("SQL models over all cells: " + ", ".join(f"{k} {v:.2f}s" for k, v in model_seconds.items()))
    try:
        print_summary(root, [table_name(key.path) for step in steps for key in step.asset_keys], scenario, seeds)
    except WarehouseError as err:
        return _fail(f"summary query failed: {err}", EXIT_FAILED)
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    """`esmr run` over a seed list such as 0-9 or 0-2,7: every seed's graph, then the SQL models."""
    from esmr_assets.studies.sweeps import parse_seed_ranges

    try:
        args.seed = [str(seed) for seed in parse_seed_ranges(args.seeds)]
    except SettingsError as err:
        return _fail(f"--seeds: {err}", EXIT_USAGE)
    return _cmd_run(args)


def _load_study(args: argparse.Namespace):
    """The validated study and its data dir; nothing is written before this succeeds."""
    from esmr_assets.studies.spec import load_study

    try:
        study = load_study(args.study, args.seeds)
        data_dir = resolve_data_dir(args.data_dir)
        _ready_dirs(data_dir)
    except SettingsError as err:
        raise UsageError(str(err)) from None
    return study, data_dir


def _cmd_study_run(args: argparse.Namespace) -> int:
    """Every cell of a study (scenario x seed), reusing what scenarios share, then the SQL
    models and the study report; resumable: cells already current are left alone."""
    try:
        study, data_dir = _load_study(args)
    except UsageError as err:
        return _fail(str(err), EXIT_USAGE)
    from esmr_assets.studies.spec import register_study

    root = storage_root(data_dir, study.preset)
    try:
        register_study(root, study)
    except SettingsError as err:
        return _fail(str(err), EXIT_USAGE)
    cells = [(Cell(study.cell_scenario(scenario), seed), scenario.settings) for scenario, seed in study.cells]
    from esmr_assets.orchestration.planner import CELL_TOTAL
    from esmr_assets.studies.report import StudyRunTiming, study_effects

    started = time.perf_counter()
    run = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    timing = StudyRunTiming(root, study, run, started)
    saved = timing.saved

    def cell_done(cell: Cell, steps: dict) -> None:
        timing.cell_done(cell.scenario, cell.seed, {k: v for k, v in steps.items() if k != CELL_TOTAL},
                         time.perf_counter())

    code, steps, outcome, model_seconds = _run_cells(cells, study.preset, data_dir, f"{study.name}: ", saved,
                                                     verbose=args.verbose, on_cell=cell_done)
    if code:
        return code
    report_seconds = _run_study_report(study.name, study.preset, data_dir)
    wall = time.perf_counter() - started
    print(f"study {study.name}: {len(study.scenarios)} scenarios x {len(study.seeds)} seeds under {root}")
    print_stage_times([step.label for step in steps], outcome, saved)
    saved_total = sum(saved.values())
    print(f"wall time {wall:.1f}s (SQL models {sum(model_seconds.values()):.1f}s, report {report_seconds:.1f}s); "
          f"reuse saved about {saved_total:.1f}s ({saved_total / max(wall + saved_total, 1e-9):.0%} of the "
          "time computing everything would have taken)")
    timing.finish(time.perf_counter())

    print(format_table(study_effects(root, study), max_rows=1000))
    return 0


def _run_study_report(name: str, preset: str, data_dir: Path) -> float:
    from esmr_assets.orchestration.resources import run_config
    from esmr_assets.orchestration.runner import open_instance, plan_steps, run_step

    defs = load_definitions()
    step = next(step for step in plan_steps(defs) if step.by_study)
    with open_instance(_dagster_home(data_dir)) as instance:
        instance.add_dynamic_partitions("study", [name])
        return run_step(defs, step, name, run_config(preset, data_dir), instance)


def _cmd_study_status(args: argparse.Namespace) -> int:
    """The grid: scenario x seed, each cell done, partial, missing, failed, interrupted or running."""
    try:
        study, data_dir = _load_study(args)
    except UsageError as err:
        return _fail(str(err), EXIT_USAGE)
    from esmr_assets.orchestration.planner import cell_status
    from esmr_assets.orchestration.runner import open_instance

    root = storage_root(data_dir, study.preset)
    defs = load_definitions()
    from esmr_assets.orchestration.runner import plan_steps

    steps = [step for step in plan_steps(defs) if step.partitioned]
    rows = []
    with open_instance(_dagster_home(data_dir)) as instance:
        for scenario in study.scenarios:
            row = {"scenario": scenario.name}
            for seed in study.seeds:
                row[f"seed {seed}"] = cell_status(root, steps, Cell(study.cell_scenario(scenario), seed),
                                                  scenario.settings, instance)
            rows.append(row)
    grid = pl.DataFrame(rows)
    print(f"study {study.name} ({study.preset}) under {root}")
    print(format_table(grid, max_rows=len(rows)))
    counts = pl.concat([grid[c] for c in grid.columns[1:]]).value_counts().sort("count", descending=True)
    print(", ".join(f"{n} {status}" for status, n in counts.iter_rows()))
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    if not 0 <= args.limit <= MAX_PRINTED_ROWS:
        return _fail(f"--limit must be between 0 and {MAX_PRINTED_ROWS:,} (--all prints every row)", EXIT_USAGE)
    if not 0 < args.timeout <= 86_400:
        return _fail("--timeout must be a positive number of seconds, at most a day", EXIT_USAGE)
    if args.preset not in PRESETS:
        return _fail(f"unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}", EXIT_USAGE)
    data_dir = resolve_data_dir(args.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        return _fail(f"data dir {data_dir} is a file, not a folder of tables", EXIT_USAGE)
    root = storage_root(data_dir, args.preset)
    try:
        if args.all:  # streamed: every row, a batch at a time, the header once
            rows = 0
            for batch in stream_rows(root, args.query, args.scenario, args.timeout):
                batch, numeric = numeric_columns(batch)
                lines = format_table(batch, batch.height, numeric=numeric).splitlines()[:-1]
                print("\n".join(lines if rows == 0 else lines[2:]))
                rows += batch.height
            print(f"({rows} row{'s' if rows != 1 else ''})")
            return 0
        frame, more = query_rows(root, args.query, args.scenario, args.limit, args.timeout, as_text=True)
    except WarehouseError as err:
        return _fail(str(err), EXIT_FAILED)
    frame, numeric = numeric_columns(frame)
    print(format_table(frame, args.limit, more, numeric))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    """Check every cell and shared output against its key file; with --repair, recompute
    the damaged cells (setting damaged shared copies aside first), leaving intact files alone."""
    from esmr_assets.storage.cells import scenario_settings
    from esmr_assets.storage.reuse import remove_stale
    from esmr_assets.storage.verify import damaged_cells, preset_roots, scan, set_aside_damaged_shared

    data_dir = resolve_data_dir(args.data_dir)
    if not data_dir.is_dir():
        return _fail(f"data dir {data_dir} is {'a file' if data_dir.exists() else 'missing'}, not a folder of tables",
                     EXIT_USAGE)
    if args.preset is not None and args.preset not in PRESETS:
        return _fail(f"unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}", EXIT_USAGE)
    report = scan(data_dir, args.preset)
    for damage in report.damaged:
        print(f"damaged: {damage}")
    stale = [tmp for root in preset_roots(data_dir, args.preset) for tmp in remove_stale(root, dry_run=not args.repair)]
    print(f"{report.checked} outputs checked under {data_dir}: {len(report.damaged)} damaged; {len(stale)} temp "
          f"file(s) of killed processes {'removed' if args.repair else 'found'}")
    if not report.damaged or not args.repair:
        return EXIT_FAILED if report.damaged or (stale and not args.repair) else 0
    try:
        check_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")
    except SettingsError as err:
        return _fail(str(err), EXIT_USAGE)
    set_aside_damaged_shared(data_dir, report)
    for preset, cells in damaged_cells(report).items():
        root = storage_root(data_dir, preset)
        chosen = []
        for cell in cells:
            try:
                chosen.append((cell, scenario_settings(root, cell.scenario)))
            except SettingsError as err:
                print(f"cannot repair {preset}/{cell}: its scenario does not validate any more ({' '.join(str(err).split())})")
        code, *_ = _run_cells(chosen, preset, data_dir, "repair: ", verbose=args.verbose) if chosen else (0,)
        if code:
            return code
    after = scan(data_dir, args.preset)
    for damage in after.damaged:
        print(f"still damaged: {damage}")
    print(f"repaired: {len(report.damaged) - len(after.damaged)} of {len(report.damaged)} damaged outputs")
    return EXIT_FAILED if after.damaged else 0


def _cmd_numerics(args: argparse.Namespace) -> int:
    from esmr_assets.core import numeric_env

    if args.export:  # for a shell that starts processes outside the project (a remote Dask worker)
        if not numeric_env.pinnable():
            return _fail("this machine is not an x86-64 Linux machine with AVX2 and FMA: the pins do not apply here",
                         EXIT_USAGE)
        print("\n".join(f"export {name}={value}" for name, value in numeric_env.PINS.items()))
        return 0
    print(json.dumps({**numeric_env.record(), "pinned": numeric_env.pinned(), "numpy_simd": numeric_env.numpy_simd()},
                     indent=1, sort_keys=True))
    return 0
