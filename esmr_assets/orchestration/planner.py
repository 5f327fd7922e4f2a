"""Which steps a cell needs, and bringing cells up to date with the least work.

`plan_cell` decides per step whether a cell already holds it (`current`), can adopt another
cell's identical output (`reusable`, see `reuse.py`) or must compute it; `materialize_cells`
does the adopting (as runless materializations in the instance), runs only what is left
(`runner.run_cell`) and shares what it computed; `share_run_outputs` does the sharing for runs
launched elsewhere (the UI, a schedule); `cell_status` is one square of a study's grid.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from esmr_assets.core import parallel
from esmr_assets.core.settings import Settings
from esmr_assets.orchestration.partitions import cell_key, register_cells
from esmr_assets.orchestration.runner import Step, StepFailed, process_alive, run_cell
from esmr_assets.storage import reuse
from esmr_assets.storage.cells import Cell, scenario_overrides


class ScenarioRedefined(StepFailed):
    """A scenario's registration changed while one of its cells ran: what the run computed
    cannot be matched to the keys it was planned under, so it is not shared."""



#: the key of a cell's whole wall time (planning, linking and its runs) in `materialize_cells`' result
CELL_TOTAL = "total (the cell)"


@dataclass(frozen=True)
class CellPlan:
    """What one cell needs: each step's content key, and which steps are already there
    (`current`), can be linked from another cell (`reusable`) or must run (`to_compute`)."""

    cell: Cell
    keys: dict[str, str]
    current: tuple[Step, ...]
    reusable: tuple[Step, ...]
    to_compute: tuple[Step, ...]
    #: op name -> what no longer matches, for the steps to compute whose files (or whose shared
    #: copy) were damaged after they were written: recomputed like any other
    damaged: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def step_keys(steps: Sequence[Step], settings: Settings, seed: int) -> dict[str, str]:
    """Each partitioned step's content key in a cell with these settings and seed."""
    keys: dict[str, str] = {}
    for step in steps:
        upstream = {name: keys[name] for name in step.upstream}
        keys[step.op_name] = reuse.step_key(step.op_name, reuse.declared_values(settings, step.reads), seed, upstream,
                                            step.code_version)
    return keys


def plan_cell(root: Path, steps: Sequence[Step], cell: Cell, settings: Settings) -> CellPlan:
    """Each step current (its key, and every file as its key file recorded it), reusable (an
    intact shared output of its key) or to compute; a step whose files or shared copy no
    longer match what was recorded is damaged, and computed again."""
    keys = step_keys(steps, settings, cell.seed)
    current, reusable, to_compute, damaged = [], [], [], {}
    for step in steps:
        key, paths = keys[step.op_name], [asset.path for asset in step.asset_keys]
        if all(reuse.is_current(root, path, cell, key) for path in paths):
            current.append(step)
            continue
        found = tuple(f"{'/'.join(path)}: {problem}" for path in paths if reuse.stored_key(root, path, cell) == key
                      for problem in reuse.cell_damage(root, path, cell))
        found += tuple(f"{'/'.join(path)} (shared {key}): {problem}" for path in paths
                       if reuse.shared_dir(root, path, key).is_dir() for problem in reuse.shared_damage(root, path, key))
        if found:
            damaged[step.op_name] = found
        if all(reuse.is_shared(root, path, key) for path in paths):
            reusable.append(step)
        else:
            to_compute.append(step)
    return CellPlan(cell, keys, tuple(current), tuple(reusable), tuple(to_compute), damaged)


#: under a preset root: one lock file per cell, held while a process brings the cell up to date
LOCK_DIR = ".locks"


@contextlib.contextmanager
def cell_lock(root: Path, cell: Cell) -> Iterator[None]:
    """Hold the cell for this process: a second process bringing the same cell up to date
    waits here, then finds the first one's work current instead of doing it again. The
    operating system drops the lock with its holder, killed or not (`flock`); the small lock
    files stay, since removing one another process waits on would break the lock."""
    folder = Path(root) / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{cell.scenario}|{cell.seed}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def adopt_step(root: Path, plan: CellPlan, step: Step, instance: dg.DagsterInstance) -> bool:
    """Link a reusable step's shared output into the cell, and record each of its assets as
    materialized for the cell (a runless materialization naming the shared key). False when
    the shared copy turned out damaged (or went away) while it was linked: it is set aside,
    and the step is to be computed."""
    key = plan.keys[step.op_name]
    for asset in step.asset_keys:
        try:
            files = reuse.link_shared(root, asset.path, plan.cell, key)  # its key last: a killed adoption is redone
        except reuse.SharedCopyDamaged:
            reuse.set_aside(reuse.shared_dir(root, asset.path, key))
            return False
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=asset, partition=cell_key(plan.cell),
            description="reused: an identical output (same settings read, seed and upstream keys) existed",
            metadata={"reused_key": key, "files": dg.MetadataValue.json([str(f) for f in files])},
        ))
    return True


def materialize_cells(
    defs: dg.Definitions,
    steps: Sequence[Step],
    cells: Sequence[tuple[Cell, Settings]],
    root: Path,
    run_config: Mapping[str, Any],
    instance: dg.DagsterInstance,
    on_step: Callable[[Cell, Step, str], None] = lambda cell, step, what: None,
    one_step_per_run: bool = False,
    saved: dict[tuple[Cell, str], float] | None = None,
    on_cell: Callable[[Cell, dict[str, float | str]], None] = lambda cell, steps: None,
) -> dict[Cell, dict[str, float | str]]:
    """Bring every cell up to date: adopt what another cell computed, run the rest (one run
    per cell, or per step), share what was computed. `on_step(cell, step, what)` reports
    "start", "done", "reused" and "current". Returns per cell each step's seconds, or
    "reused" / "current", and under `CELL_TOTAL` the cell's wall time. `saved` receives, per
    reused (cell, step), the seconds the step took where it was computed: what reuse saved.
    `on_cell(cell, its steps' outcome)` follows each finished cell.
    A step to compute loses its files first: without a current key they are unverified. A
    damaged step is reported ("damaged") before it is linked or computed again."""
    saved = {} if saved is None else saved
    register_cells(instance, [cell for cell, _ in cells])
    reuse.remove_stale(root)  # what killed processes left: temp files, half-built shared folders
    outcome: dict[Cell, dict[str, float | str]] = {}
    for cell, settings in cells:
        with cell_lock(root, cell):
            outcome[cell] = _bring_up_to_date(defs, steps, cell, settings, root, run_config, instance, on_step,
                                              one_step_per_run, saved)
        on_cell(cell, outcome[cell])
    return outcome


def _prestart_workers(steps: Sequence[Step], settings: Settings) -> None:
    """When the cell's closed-loop stages are to be computed with workers, start them now: the
    spare core pays their start while the first stages run (docs/performance.md)."""
    modules = tuple(dict.fromkeys(module for step in steps for module in step.job_modules))
    if modules:
        from esmr_assets.policy.loop.rollouts import rollout_work  # lightgbm and torch: only when needed

        parallel.prestart(parallel.workers(rollout_work(settings)), modules)


def _bring_up_to_date(
    defs: dg.Definitions, steps: Sequence[Step], cell: Cell, settings: Settings, root: Path,
    run_config: Mapping[str, Any], instance: dg.DagsterInstance, on_step: Callable[[Cell, Step, str], None],
    one_step_per_run: bool, saved: dict[tuple[Cell, str], float],
) -> dict[str, float | str]:
    """`materialize_cells` for one cell, whose lock the caller holds."""
    started = time.perf_counter()
    definition = scenario_overrides(root, cell.scenario)
    plan = plan_cell(root, steps, cell, settings)
    per_step: dict[str, float | str] = {}
    for step in steps:
        if step.op_name in plan.damaged:
            on_step(cell, step, "damaged: " + "; ".join(plan.damaged[step.op_name]))
    for step in plan.current:
        per_step[step.label] = "current"
        on_step(cell, step, "current")
    to_compute = list(plan.to_compute)
    for step in plan.reusable:
        seconds = reuse.shared_seconds(root, step.asset_keys[0].path, plan.keys[step.op_name])
        if not adopt_step(root, plan, step, instance):
            to_compute.append(step)  # its shared copy went bad meanwhile
            on_step(cell, step, "damaged: its shared copy changed while it was linked")
            continue
        per_step[step.label] = "reused"
        saved[cell, step.label] = seconds
        on_step(cell, step, "reused")
    order = {step.op_name: k for k, step in enumerate(steps)}
    to_compute.sort(key=lambda step: order[step.op_name])
    for step in to_compute:
        reuse.forget(root, [asset.path for asset in step.asset_keys], cell)
    _prestart_workers(to_compute, settings)

    def progress(step: Step, done: bool, seconds: float, plan: CellPlan = plan, definition: str = definition) -> None:
        if done:
            if scenario_overrides(root, plan.cell.scenario) != definition:
                redefined.append(step.label)  # raised after the run: a logger cannot stop it
                return
            try:
                for asset in step.asset_keys:
                    reuse.publish(root, asset.path, plan.cell, plan.keys[step.op_name], seconds)
            except reuse.NumericEnvironmentMismatch as err:
                mismatched.append(err)  # raised after the run, as above
                return
        on_step(plan.cell, step, "done" if done else "start")

    runs = [[step] for step in to_compute] if one_step_per_run else [to_compute]
    redefined: list[str] = []
    mismatched: list[reuse.NumericEnvironmentMismatch] = []
    for run in runs:
        if run:
            per_step.update(run_cell(defs, run, cell, run_config, instance, progress))
        if mismatched:
            raise mismatched[0]
        if redefined:
            raise ScenarioRedefined(f"scenario {cell.scenario} was redefined while {cell} ran ({redefined[0]}); "
                                    "its outputs are not shared: run it again")
    per_step[CELL_TOTAL] = time.perf_counter() - started
    return per_step


def share_run_outputs(run: dg.DagsterRun, steps: Sequence[Step], esmr_config: Mapping[str, Any]) -> list[str]:
    """After a successful cell run launched outside `materialize_cells` (the UI, a schedule),
    share each step it materialized whole, so later cells can reuse it. Returns the shared op names."""
    from esmr_assets.storage.cells import parse_cell, scenario_settings
    from esmr_assets.storage.files import config_root

    partition = run.tags.get("dagster/partition")
    if partition is None:
        return []
    cell = parse_cell(partition)
    root = config_root(esmr_config)
    keys = step_keys(steps, scenario_settings(root, cell.scenario), cell.seed)
    selected = None if run.asset_selection is None else set(run.asset_selection)
    shared: list[str] = []
    for step in steps:
        chosen = selected is None or set(step.asset_keys) <= selected
        # Only on inputs known to be this definition's: every upstream step current in the cell.
        inputs_current = all(
            reuse.is_current(root, asset.path, cell, keys[up.op_name])
            for up in steps if up.op_name in step.upstream for asset in up.asset_keys
        )
        if chosen and inputs_current:
            try:
                for asset in step.asset_keys:
                    reuse.publish(root, asset.path, cell, keys[step.op_name])
            except reuse.NumericEnvironmentMismatch:
                continue  # computed elsewhere (another machine's kernels): its cell stays unshared, and stale
            shared.append(step.op_name)
    return shared


#: run statuses of a run not finished (queued, or running if its process lives)
UNFINISHED = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def in_flight(run: dg.DagsterRun) -> bool:
    """The run is queued or running: not finished, and not an in-process run whose process is gone."""
    return run.status in UNFINISHED and process_alive(run) is not False


def cell_status(root: Path, steps: Sequence[Step], cell: Cell, settings: Settings, instance: dg.DagsterInstance) -> str:
    """done (every step current); running, interrupted (its process is gone, the run's record
    left as started) or failed, from the cell's latest run; partial (some steps current) or
    missing."""
    plan = plan_cell(root, steps, cell, settings)
    if not plan.to_compute and not plan.reusable:
        return "done"
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": cell.key}), limit=1)
    if runs and runs[0].status in UNFINISHED:
        return "running" if in_flight(runs[0]) else "interrupted"
    if runs and runs[0].status == dg.DagsterRunStatus.FAILURE:
        return "failed"
    return "partial" if plan.current else "missing"
