"""Materialize a Definitions graph seed by seed, one op per run, in dependency order.

One run per op (a multi_asset's outputs together) makes progress and wall time visible per
asset, and a failure names its asset. Runs go through the implicit asset job on the given
instance, so the Dagster UI shows them like runs it launched itself.
"""

from __future__ import annotations

import fcntl
import graphlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from esmr_assets.partitions import seed_partitions
from esmr_assets.storage import atomic_write_bytes

# Keep the terminal for the progress bar: Dagster's own events go to the run's event log.
# Failures are reported by StepFailed instead.
#: the local instance of `make ui` and `esmr run` alike (telemetry off, run concurrency limits)
INSTANCE_CONFIG = Path(__file__).resolve().parents[1] / "docs" / "dagster.yaml"
QUIET_LOGGERS = {"console": {"config": {"log_level": "CRITICAL"}}}


@dataclass(frozen=True)
class Step:
    """One op of the graph: a plain asset, or all outputs of a multi_asset."""

    asset_keys: tuple[dg.AssetKey, ...]
    partitioned: bool = True  # by seed; cross-seed SQL models are not

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
    return [
        Step(tuple(sorted(ops[n].keys, key=rank.__getitem__)), ops[n].partitions_def is not None) for n in order
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


def register_seeds(instance: dg.DagsterInstance, seeds: Sequence[int]) -> None:
    """Add the seeds as partitions (idempotent), so runs and the UI can address them."""
    instance.add_dynamic_partitions(seed_partitions.name, [str(seed) for seed in seeds])


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
    seed: int | None,
    run_config: Mapping[str, Any],
    instance: dg.DagsterInstance,
) -> float:
    """Materialize one step for one seed (None for an unpartitioned step) in its own run;
    return its wall time in seconds.

    Raises `StepFailed` naming the asset and the seed, with the user's traceback attached.
    """
    started = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        run_config={**run_config, "loggers": QUIET_LOGGERS},
        instance=instance,
        partition_key=None if seed is None else str(seed),
        asset_selection=list(step.asset_keys),
        raise_on_error=False,
    )
    if not result.success:
        cause, trace = _innermost_error(result)
        where = "across seeds" if seed is None else f"for seed {seed}"
        raise StepFailed(f"asset {step.label} failed {where} (run {result.run_id}): {cause}", trace)
    return time.perf_counter() - started
