"""Materialize a Definitions graph cell by cell: one run per cell, its ops in dependency order.

A run costs about half a second of Dagster overhead, so a cell's whole graph is one run of
the in-process executor (`run_cell`; the caller may split the steps into several runs, since
a run keeps its outputs in memory until it ends); a logger that sees each step's start and
success keeps progress and wall time visible per asset (a multi_asset's outputs together),
and a failure names its asset. Runs go through the implicit asset job on the given instance, so the Dagster UI shows
them like runs it launched itself. The cross-cell SQL models are one run each (`run_step`).

Which steps a cell needs at all is `planner.py`'s business.
"""

from __future__ import annotations

import fcntl
import graphlib
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from esmr_assets.orchestration.partitions import cell_key
from esmr_assets.orchestration.resources import PARALLEL_JOBS, SETTINGS_READ
from esmr_assets.storage.cells import Cell
from esmr_assets.storage.files import atomic_write_bytes, pid_alive

# Keep the terminal for the progress bar: Dagster's own events go to the run's event log.
# Failures are reported by StepFailed instead.
#: the local instance of `make ui` and `esmr run` alike (telemetry off, run concurrency limits)
INSTANCE_CONFIG = Path(__file__).resolve().parents[2] / "docs" / "dagster.yaml"
QUIET_LOGGERS = {"console": {"config": {"log_level": "CRITICAL"}}}


@dataclass(frozen=True)
class Step:
    """One op of the graph: a plain asset, or all outputs of a multi_asset."""

    asset_keys: tuple[dg.AssetKey, ...]
    partitioned: bool = True  # by cell; cross-cell SQL models are not
    op_name: str = ""  # the op's name: the step key of its runs
    reads: tuple[str, ...] = ()  # the settings its assets declare (`resources.reads`)
    upstream: tuple[str, ...] = ()  # op names of the partitioned steps it reads from
    by_study: bool = False  # a study report: one partition per study
    code_version: str | None = None  # its assets' Dagster `code_version`s: part of its reuse key
    job_modules: tuple[str, ...] = ()  # where its parallel jobs live (`resources.parallel_jobs`), if it has any

    @property
    def label(self) -> str:
        return ", ".join(key.to_user_string() for key in self.asset_keys)


class StepFailed(RuntimeError):
    """A step's run failed; the message names the asset, the seed and the cause."""

    def __init__(self, message: str, trace: str = "") -> None:
        super().__init__(message)
        self.trace = trace


def plan_steps(defs: dg.Definitions) -> list[Step]:
    """Materializable ops of `defs`, each after every op it depends on; ops that are ready
    together keep the order in which `defs` lists them, so the plan is stable."""
    graph = defs.resolve_asset_graph()
    listed = [item for item in defs.assets or [] if isinstance(item, dg.AssetsDefinition)]
    position = {key: n for n, assets_def in enumerate(listed) for key in assets_def.keys}
    rank = {key: n for n, key in enumerate(graph.toposorted_asset_keys)}
    ops = sorted(
        (assets_def for assets_def in graph.assets_defs if assets_def.is_materializable),
        key=lambda assets_def: min((position.get(key, len(listed)), rank[key]) for key in assets_def.keys),
    )
    producer = {key: n for n, assets_def in enumerate(ops) for key in assets_def.keys}
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for n, assets_def in enumerate(ops):
        sorter.add(n, *({producer[key] for key in assets_def.dependency_keys if key in producer} - {n}))
    sorter.prepare()
    order: list[int] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    def code_version(assets_def: dg.AssetsDefinition) -> str | None:
        versions = sorted({v for v in assets_def.code_versions_by_key.values() if v is not None})
        return ",".join(versions) or None

    def by_cell(assets_def: dg.AssetsDefinition) -> bool:
        return isinstance(assets_def.partitions_def, dg.MultiPartitionsDefinition)

    def reads(assets_def: dg.AssetsDefinition) -> tuple[str, ...]:
        declared = [assets_def.specs_by_key[key].metadata.get(SETTINGS_READ) for key in assets_def.keys]
        values = [d.value if isinstance(d, dg.MetadataValue) else d for d in declared if d is not None]
        return tuple(dict.fromkeys(path for paths in values for path in paths))

    def job_modules(assets_def: dg.AssetsDefinition) -> tuple[str, ...]:
        declared = assets_def.node_def.tags.get(PARALLEL_JOBS, "")
        return tuple(module for module in declared.split(",") if module)

    def upstream(n: int) -> tuple[str, ...]:
        found = {producer[key] for key in ops[n].dependency_keys if key in producer} - {n}
        return tuple(sorted(ops[m].node_def.name for m in found if by_cell(ops[m])))

    return [
        Step(tuple(sorted(ops[n].keys, key=rank.__getitem__)), by_cell(ops[n]), ops[n].node_def.name,
             reads(ops[n]), upstream(n), by_study=isinstance(ops[n].partitions_def, dg.DynamicPartitionsDefinition),
             code_version=code_version(ops[n]), job_modules=job_modules(ops[n]))
        for n in order
    ]


def open_instance(home: Path) -> dg.DagsterInstance:
    """The sqlite instance under `home`, configured as `make ui`'s (docs/dagster.yaml: no
    telemetry, the run concurrency limits) when `home` has no dagster.yaml yet. Creating it
    migrates its schema, which two processes must not do at once (a fresh data dir swept by
    parallel `esmr run`s), so creation holds an exclusive lock on `home/.instance.lock`."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            config = home / "dagster.yaml"
            if not config.exists() and INSTANCE_CONFIG.is_file():  # absent outside a source checkout
                atomic_write_bytes(config, INSTANCE_CONFIG.read_bytes())
            return dg.DagsterInstance.from_config(str(home))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


#: tags of an in-process run: the process that runs it (host, pid and the pid's start time,
#: so a reused pid is not taken for it), so that a run whose process was killed (its record
#: stays STARTED) can be told from one still running (`process_alive`)
PID_TAG, HOST_TAG, STARTED_TAG = "esmr/pid", "esmr/host", "esmr/process_start"


def _process_start(pid: int | str) -> str | None:
    """The process's start time in clock ticks since boot (Linux `/proc`), "" where there is
    no /proc, None when no such process lives (or it is a zombie)."""
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").is_file():
        return ""
    try:
        fields = stat.read_text().rpartition(")")[2].split()  # after the command name, which may hold spaces
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), STARTED_TAG: _process_start(os.getpid()) or ""}


def process_alive(run: dg.DagsterRun) -> bool | None:
    """Whether the process of an in-process run still lives; None when unknown (the run was
    launched elsewhere: the UI, a schedule, another machine)."""
    pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
    if pid is None or host != socket.gethostname():
        return None
    started = _process_start(pid)
    if started == "":  # no /proc: whether any process has that pid
        return pid_alive(int(pid))
    return started is not None and started == run.tags.get(STARTED_TAG, started)


def _innermost_error(result: dg.ExecuteInProcessResult) -> tuple[str, str]:
    """Message and stack of the user's exception behind the first failure, not of
    Dagster's wrapper around it."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_failure else None
        if error is not None:
            while error.cause is not None:
                error = error.cause
            return error.message.strip(), "".join(error.stack)
    return "see the run's event log in the Dagster UI", ""


def run_step(
    defs: dg.Definitions,
    step: Step,
    cell: Cell | str | None,
    run_config: Mapping[str, Any],
    instance: dg.DagsterInstance,
) -> float:
    """Materialize one step for one cell (a study name for a study report, None for an
    unpartitioned step) in its own run; return its wall time in seconds.

    Raises `StepFailed` naming the asset and the cell, with the user's traceback attached.
    """
    started = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config={**run_config, "loggers": QUIET_LOGGERS},
        instance=instance,
        partition_key=cell_key(cell) if isinstance(cell, Cell) else cell,
        asset_selection=list(step.asset_keys),
        raise_on_error=False,
        tags=process_tags(),
    )
    if not result.success:
        cause, trace = _innermost_error(result)
        where = "across cells" if cell is None else f"for {cell}" if isinstance(cell, Cell) else f"for study {cell}"
        raise StepFailed(f"asset {step.label} failed {where} (run {result.run_id}): {cause}", trace)
    return time.perf_counter() - started


class _StepEvents(logging.Handler):
    """Hands each step's start and success (with its duration) to a callback."""

    def __init__(self, on_step: Callable[[str, str, float], None]) -> None:
        super().__init__(logging.DEBUG)
        self.on_step = on_step

    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is not None and event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            seconds = getattr(event.event_specific_data, "duration_ms", 0.0) / 1000.0
            self.on_step(event.event_type_value, event.step_key, seconds)


def run_cell(
    defs: dg.Definitions,
    steps: Sequence[Step],
    cell: Cell,
    run_config: Mapping[str, Any],
    instance: dg.DagsterInstance,
    on_step: Callable[[Step, bool, float], None] = lambda step, done, seconds: None,
) -> dict[str, float]:
    """Materialize the partitioned `steps` for `cell` in one in-process run; return each
    step's wall time in seconds by label. `on_step(step, done, seconds)` is called as each step
    starts (done=False) and succeeds (done=True, with its wall time).

    Raises `StepFailed` naming the first failed asset and the cell, with the user's traceback."""
    by_op = {step.op_name: step for step in steps}
    seconds: dict[str, float] = {}

    def seen(kind: str, step_key: str, duration: float) -> None:
        step = by_op.get(step_key)
        if step is None:
            return
        if kind == "STEP_SUCCESS":
            seconds[step.label] = duration
        on_step(step, kind == "STEP_SUCCESS", duration)

    @dg.logger(description="reports step starts and successes to `esmr run`")
    def step_events(_init_context: dg.InitLoggerContext) -> logging.Logger:
        log = logging.Logger("esmr_step_events", level=logging.DEBUG)
        log.addHandler(_StepEvents(seen))
        return log

    job = defs.resolve_implicit_global_asset_job_def()
    job = job.with_logger_defs({**job.loggers, "esmr_step_events": step_events})
    result = job.execute_in_process(
        run_config={**run_config, "loggers": {**QUIET_LOGGERS, "esmr_step_events": {}}},
        instance=instance,
        partition_key=cell_key(cell),
        asset_selection=[key for step in steps for key in step.asset_keys],
        raise_on_error=False,
        tags=process_tags(),
    )
    if not result.success:
        cause, trace = _innermost_error(result)
        failed = [by_op[e.step_key].label for e in result.all_events if e.is_step_failure and e.step_key in by_op]
        where = f"asset {failed[0]} failed" if failed else "the run failed before any asset"
        raise StepFailed(f"{where} for {cell} (run {result.run_id}): {cause}", trace)
    return seconds
