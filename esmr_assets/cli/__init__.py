"""`esmr`: materialize seeds and studies, and inspect their tables, from a terminal.

`esmr run` drives the same Definitions and Dagster instance as the UI, so its runs show up
there; `esmr sql` only needs DuckDB and starts without importing dagster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import typing
from collections.abc import Sequence
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
    list_tables,
    numeric_columns,
    query_rows,
    quote_identifier,
    referenced_tables,
    run_query,
    stream_rows,
    table_name,
)

if TYPE_CHECKING:
    import dagster as dg

# (title, sql) printed after every `esmr run`; later stages append theirs. A query runs only
# when every table it reads exists in the warehouse.
SUMMARY_QUERIES: list[tuple[str, str]] = [
    (
        "user-days per seed",
        "select scenario, seed, count(*) as user_days from user_day_logs group by scenario, seed order by seed",
    ),
    (
        "emotion models on test users (accuracy and macro-F1 vs cluster labels; paper: TabTransformer 0.983); "
        "*_on_truth: trained on the latent truth, what behaviour reveals about emotion (a diagnostic)",
        "select scenario, seed, model, trained_on, round(accuracy, 3) as accuracy, round(macro_f1, 3) as macro_f1, "
        "round(accuracy_vs_truth, 3) as accuracy_vs_latent_truth, paper_accuracy "
        "from emotion_model_scores order by seed, accuracy desc",
    ),
    (
        "causal parents of the emotional targets (top 3 by share of users; paper Table 2)",
        "select scenario, seed, target, rank, parent, sign, round(median_weight, 3) as median_weight, "
        "round(user_share, 3) as user_share, in_true_graph from causal_parents where rank <= 3 "
        "order by seed, target, rank",
    ),
    (
        "engagement ranker (test AUC in the engagement_ranker metadata; paper 0.81): top features by gain",
        "select scenario, seed, rank, feature, round(gain_share, 3) as gain_share from ranker_feature_importance where rank <= 5 "
        "order by seed, rank",
    ),
    (
        "Q-learning: last epoch per agent (mean reward per user-day and its Eq. 8 parts)",
        "select scenario, seed, agent, oracle, epoch, round(mean_reward, 3) as reward, round(mean_r_eng, 3) as r_eng, "
        "round(mean_r_emo, 3) as r_emo, round(mean_r_cause, 3) as r_cause, round(states_visited, 3) as states_visited "
        "from q_learning_curve as c where epoch = (select max(epoch) from q_learning_curve as m "
        "where m.scenario = c.scenario and m.seed = c.seed) order by seed, agent",
    ),
    (
        "paired per-user effects against the reference policy on the latent truth (95 % per-user bootstrap "
        "interval; oracle_* read the latent state: diagnostics; share = of oracle_best_feed's effect)",
        "select scenario, seed, metric, e.policy, oracle, n, round(effect, 3) as effect, round(ci95_low, 3) as ci95_low, "
        "round(ci95_high, 3) as ci95_high, round(share_of_ceiling, 2) as share, round(replicate_sd, 3) as replicate_sd "
        "from policy_effects as e join policy_registry as r on r.policy = split_part(e.policy, '@', 1) where label_source = 'true' "
        "and metric in ('negative_days', 'mean_latent_valence', 'engagement_reward') order by seed, metric, r.position, length(e.policy), e.policy",
    ),
    (
        "policy comparison on the latent true emotions (paper's ESMR / LightGBM figures beside ours; "
        "change = relative to lightgbm)",
        "select scenario, seed, e.policy, e.oracle, round(negative_days, 2) as neg_days, paper_negative_days as \"(paper)\", "
        "round(happy_at_least_once, 3) as happy_once, paper_happy_at_least_once as \"(paper) \", "
        "round(final_dominant_happy, 3) as final_happy, paper_final_dominant_happy as \"(paper)  \", "
        "round(full_recovery, 3) as recovery, paper_full_recovery as \"(paper)   \", "
        "round(change_volatility, 3) as volatility_change, paper_change_volatility as \"(paper)    \", "
        "round(bounce_rate, 3) as bounce, paper_bounce_rate as \"(paper)     \", "
        "round(engagement_reward, 1) as r_eng, paper_engagement_reward as \"(paper)      \", "
        "round(mean_latent_valence, 3) as valence, round(recovery_time, 2) as recovery_days "
        "from evaluation_metrics as e join policy_registry as r on r.policy = split_part(e.policy, '@', 1) where label_source = 'true' "
        "order by seed, r.position, length(e.policy), e.policy",
    ),
    (
        "latent satisfaction of what each policy served, per communication style (share of impressions with "
        "r = +1 / r = -1; IGL-P's Fig. 4 view) and the decoded rewards' sign accuracy",
        "select scenario, seed, s.policy, s.oracle, feedback_style as style, "
        "round(max(value) filter (where metric = 'positive_share'), 3) as \"r=+1\", "
        "round(max(value) filter (where metric = 'negative_share'), 3) as \"r=-1\", "
        "round(max(value) filter (where metric = 'decoded_accuracy'), 3) as decoded_accuracy "
        "from style_effects as s join policy_registry as r on r.policy = split_part(s.policy, '@', 1) "
        "group by scenario, seed, s.policy, s.oracle, feedback_style, r.position "
        "order by seed, r.position, length(s.policy), s.policy, style",
    ),
]

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


def _validate_run(args: argparse.Namespace) -> tuple[list[int], Settings, Path]:
    """Everything that can be wrong with the input, checked before anything is written."""
    try:
        seeds = list(dict.fromkeys(parse_seed(seed) for seed in args.seed))
    except SettingsError as err:
        raise UsageError(str(err)) from None
    settings, data_dir = _settings_and_data_dir(args)
    try:
        check_writable_dir(data_dir)  # both refused before either is created
        check_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")
        ensure_writable_dir(data_dir)
        ensure_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")
    except SettingsError as err:
        raise UsageError(str(err)) from None
    return seeds, settings, data_dir


def load_definitions() -> dg.Definitions:
    from esmr_assets.definitions import defs

    return defs


def _print_timings(labels: list[str], cells: list[Cell], outcome: dict[Cell, dict[str, float | str]]) -> None:
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


def _print_summary(root: Path, asset_tables: list[str], scenario: str, seeds: list[int]) -> None:
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
    for title, sql in SUMMARY_QUERIES:
        if referenced_tables(sql) <= available:
            print(f"\n{title}")
            # Only the seeds of this run, in the query's own order.
            print(format_table(run_query(root, f"select * from ({sql}) where {where} and seed in ({ran})"),
                               max_rows=100))


def _run_cells(
    cells: list[tuple[Cell, Settings]], preset: str, data_dir: Path, label: str, saved: dict | None = None,
    verbose: bool = False,
) -> tuple[int, list, dict[Cell, dict[str, float | str]], dict[str, float]]:
    """Bring `cells` up to date (reusing what other cells computed), then refresh the
    cross-cell SQL models; a progress bar on stderr. Returns (exit code, the partitioned
    steps, per cell each step's seconds or "reused"/"current", the SQL models' seconds).
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
                                        saved=saved)
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
    _print_timings([step.label for step in steps], [cell for cell, _ in cells], outcome)
    if model_seconds:
        print("SQL models over all cells: " + ", ".join(f"{k} {v:.2f}s" for k, v in model_seconds.items()))
    try:
        _print_summary(root, [table_name(key.path) for step in steps for key in step.asset_keys], scenario, seeds)
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
        check_writable_dir(data_dir)  # both refused before either is created
        check_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")
        ensure_writable_dir(data_dir)
        ensure_writable_dir(_dagster_home(data_dir), "the Dagster instance's folder ($DAGSTER_HOME)")
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
    started = time.perf_counter()
    saved: dict = {}
    code, steps, outcome, model_seconds = _run_cells(cells, study.preset, data_dir, f"{study.name}: ", saved,
                                                     verbose=args.verbose)
    if code:
        return code
    report_seconds = _run_study_report(study.name, study.preset, data_dir)
    wall = time.perf_counter() - started
    print(f"study {study.name}: {len(study.scenarios)} scenarios x {len(study.seeds)} seeds under {root}")
    _print_stage_times([step.label for step in steps], outcome, saved)
    saved_total = sum(saved.values())
    print(f"wall time {wall:.1f}s (SQL models {sum(model_seconds.values()):.1f}s, report {report_seconds:.1f}s); "
          f"reuse saved about {saved_total:.1f}s ({saved_total / max(wall + saved_total, 1e-9):.0%} of the "
          "time computing everything would have taken)")
    from esmr_assets.orchestration.planner import CELL_TOTAL
    from esmr_assets.studies.report import study_effects, write_study_timing

    values = [v for steps in outcome.values() for label, v in steps.items() if label != CELL_TOTAL]
    write_study_timing(root, study, wall, saved_total, sum(isinstance(v, float) for v in values),
                       sum(v == "reused" for v in values))

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


def _print_stage_times(labels: list[str], outcome, saved: dict) -> None:
    """Per stage: cells computed, their total seconds, cells reused and the seconds that saved."""
    rows = []
    for label in labels:
        values = [steps.get(label) for steps in outcome.values()]
        computed = [v for v in values if isinstance(v, float)]
        rows.append({"stage": label, "computed": len(computed), "seconds": round(sum(computed), 1),
                     "reused": sum(v == "reused" for v in values), "current": sum(v == "current" for v in values),
                     "saved_seconds": round(sum(v for (c, lab), v in saved.items() if lab == label), 1)})
    print(format_table(pl.DataFrame(rows), max_rows=len(rows)))


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


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line too (with where to read the usage)."""

    def error(self, message: str) -> typing.NoReturn:
        _fail(f"{message} (see `{self.prog} --help`)", EXIT_USAGE)
        sys.exit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="esmr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser, overrides: bool = True, runs: bool = True) -> None:
        sub.add_argument("--preset", default="paper", help=f"settings preset: {', '.join(PRESETS)} (default paper)")
        sub.add_argument("--data-dir", default="", help="warehouse folder (default $ESMR_DATA_DIR, else ./data)")
        if runs:
            sub.add_argument("--verbose", action="store_true", help="print a failed step's full trace")
        if overrides:
            sub.add_argument("--overrides", default="{}", help='JSON of nested setting overrides, e.g. '
                             '\'{"simulation": {"n_users": 50}}\': a scenario named after them (default: baseline)')

    run = commands.add_parser("run", help="materialize every asset for the given seeds")
    run.add_argument("--seed", action="append", required=True, help="simulation seed; repeat for several")
    common(run)
    run.set_defaults(handler=_cmd_run)

    sweep = commands.add_parser("sweep", help="materialize a range of seeds, then the cross-cell SQL models")
    sweep.add_argument("--seeds", required=True, help="seeds as ranges and items, e.g. 0-9 or 0-2,7")
    common(sweep)
    sweep.set_defaults(handler=_cmd_sweep)

    study = commands.add_parser("study", help="studies: scenario x seed grids declared in studies/<name>.toml")
    study_commands = study.add_subparsers(dest="study_command", required=True)
    for name, handler, text in (
        ("run", _cmd_study_run, "materialize every missing or stale cell, then the study's report (resumable)"),
        ("status", _cmd_study_status, "show the grid: scenario x seed, done / partial / missing / failed / interrupted / running"),
    ):
        sub = study_commands.add_parser(name, help=text)
        sub.add_argument("study", help="the study file, e.g. studies/observability.toml")
        sub.add_argument("--seeds", default=None, help="seeds as ranges, replacing the spec's (e.g. 0-9)")
        sub.add_argument("--data-dir", default="", help="warehouse folder (default $ESMR_DATA_DIR, else ./data)")
        if name == "run":
            sub.add_argument("--verbose", action="store_true", help="print a failed step's full trace")
        sub.set_defaults(handler=handler)

    sql = commands.add_parser("sql", help="run a read-only SQL query over the stored tables")
    sql.add_argument("query", help="one SELECT / WITH / DESCRIBE / SHOW / EXPLAIN / SUMMARIZE / VALUES statement")
    sql.add_argument("--limit", "--max-rows", dest="limit", type=int, default=100,
                     help="rows to fetch and print (default 100); only these are read from the result")
    sql.add_argument("--all", action="store_true", help="print every row, streamed in batches")
    sql.add_argument("--timeout", type=float, default=60.0, help="stop the query after this many seconds (default 60)")
    sql.add_argument("--scenario", default=None, help="show only this scenario's rows (e.g. baseline)")
    common(sql, overrides=False, runs=False)
    sql.set_defaults(handler=_cmd_sql)

    verify = commands.add_parser("verify", help="check every stored output against its key's sizes and hashes")
    verify.add_argument("--repair", action="store_true",
                        help="recompute the damaged cells (intact files are left as they are)")
    verify.add_argument("--preset", default=None, help="only this preset's folder (default: every preset)")
    verify.add_argument("--data-dir", default="", help="warehouse folder (default $ESMR_DATA_DIR, else ./data)")
    verify.add_argument("--verbose", action="store_true", help="print a failed step's full trace")
    verify.set_defaults(handler=_cmd_verify)

    numerics = commands.add_parser("numerics", help="the numeric environment this machine computes cells with")
    numerics.add_argument("--export", action="store_true",
                          help="print the kernel pins as shell exports (for processes started outside the project)")
    numerics.set_defaults(handler=_cmd_numerics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("esmr: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`esmr sql ... | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
