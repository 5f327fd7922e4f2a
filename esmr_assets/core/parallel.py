"""Independent jobs on every core, with results that do not depend on how many there are.

A job is a module-level function of (shared state, job), where the shared state is sent to
each worker process once. Workers are spawned, never forked: polars' and torch's thread pools
do not survive a fork. A job sees only the shared state and its own argument, and returns a
picklable result; results come back in job order, through pickle even in-process (what comes
back from a worker has been pickled: a polars frame arrives in one chunk, a torch optimizer
with its defaults restored). So one process or several give the same bytes: the jobs must
not depend on each other's side effects (each job copies what it mutates, see `fresh`).

Starting a worker costs a few seconds (it imports the project and unpickles the state), so
jobs run in parallel only when their total work is worth it (`MIN_PARALLEL_WORK`), or when
`ESMR_WORKERS` asks for a number of workers explicitly. A daemonic process (a Dask worker)
may not have children: there the jobs run in-process.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["MIN_PARALLEL_WORK", "fresh", "map_jobs", "workers"]

#: below this many closed-loop user-days in all, the jobs run in-process. Starting the workers
#: (fresh interpreters importing the project and unpickling the state) costs 4-5 s on 2 cores,
#: which the bandits' 192,000 user-days at `paper` (10 s) did not win back, while the agents'
#: 300,000 and the rollouts' 465,000 (the look-ahead oracle's included) did: 24 -> 18 s and
#: 25 -> 20 s (docs/performance.md)
MIN_PARALLEL_WORK = 250_000

J = TypeVar("J")
R = TypeVar("R")

_shared: Any = None  # a worker's copy of the shared state


def workers(work: float = float("inf")) -> int:
    """How many processes to use for `work` (in closed-loop user-days): `ESMR_WORKERS` if set,
    else the CPUs this process may run on when the work is worth it, else 1."""
    asked = os.environ.get("ESMR_WORKERS", "").strip()
    if asked:
        try:
            return max(1, int(asked))
        except ValueError:
            raise ValueError(f"ESMR_WORKERS must be a whole number of processes, got {asked!r}") from None
    if work < MIN_PARALLEL_WORK:
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def fresh(value: J) -> J:
    """A job's own copy of something it mutates (a learner that learns as it acts), so that
    what one job does to it never reaches another, in one process or several."""
    return copy.deepcopy(value)


def _set_shared(state: bytes) -> None:
    global _shared
    _shared = pickle.loads(state)


def _run_shared(function: Callable[[Any, J], R], job: J) -> R:
    return function(_shared, job)


def map_jobs(function: Callable[[Any, J], R], shared: Any, jobs: Sequence[J], n_workers: int = 1,
             costs: Sequence[float] | None = None) -> list[R]:
    """`[function(shared, job) for job in jobs]`, in `n_workers` spawned processes when more
    than one is asked for and allowed; there the costliest jobs (by `costs`) start first, so
    that a long one does not run alone at the end."""
    n_workers = min(n_workers, len(jobs))
    if n_workers <= 1 or multiprocessing.current_process().daemon:
        # Results cross a pickle boundary here too, so that they are the same objects as a
        # worker's: a frame's chunks, an optimizer's restored defaults.
        return [pickle.loads(pickle.dumps(function(shared, job), protocol=pickle.HIGHEST_PROTOCOL)) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda k: -costs[k]) if costs is not None else list(range(len(jobs)))
    state = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(n_workers, mp_context=context, initializer=_set_shared, initargs=(state,)) as pool:
        done = list(pool.map(_run_shared, [function] * len(jobs), [jobs[k] for k in order]))
    results: list = [None] * len(jobs)
    for k, result in zip(order, done):
        results[k] = result
    return results
