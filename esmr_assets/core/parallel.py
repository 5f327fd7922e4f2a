"""Independent jobs on every core, with results that do not depend on how many there are.

A job is a module-level function of (shared state, job), where the shared state is sent to
each worker process once. Workers are spawned, never forked: polars' and torch's thread pools
do not survive a fork. A job sees only the shared state and its own argument, and returns a
picklable result; results come back in job order, through pickle even in-process (what comes
back from a worker has been pickled: a polars frame arrives in one chunk, a torch optimizer
with its defaults restored). So one process or several give the same bytes: the jobs must
not depend on each other's side effects (each job copies what it mutates, see `fresh`).

Starting a worker costs a few seconds (it imports the project), so the workers are kept for
the process's next stage, each stage's state is unpickled once per worker, and jobs run in
parallel only when their total work is worth it (`MIN_PARALLEL_WORK`), or when
`ESMR_WORKERS` asks for a number of workers explicitly. A daemonic process (a Dask worker)
may not have children: there the jobs run in-process.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import pickle
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["MIN_PARALLEL_WORK", "fresh", "map_jobs", "workers"]

#: below this many closed-loop user-days in all, the jobs run in-process. Starting the workers
#: (fresh interpreters importing the project) costs 4-5 s on 2 cores, once per process; at
#: `paper` the bandits' 192,000 user-days pay it, the agents' 300,000 and the rollouts' 465,000
#: (the look-ahead oracle's included) find the workers warm, and the heuristic buckets' 96,000
#: stay in-process (docs/performance.md)
MIN_PARALLEL_WORK = 150_000

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


_pool: ProcessPoolExecutor | None = None  # this process's workers, kept for the next stage
_pool_size = 0
_worker_token: str | None = None  # which stage's state a worker holds


def _workers_of(n_workers: int) -> ProcessPoolExecutor:
    """The process's pool of `n_workers` spawned workers, started once and kept: a later stage
    in the same process (the next asset of `esmr run`) finds them warm, their imports done."""
    global _pool, _pool_size
    if _pool is None or _pool_size != n_workers:
        if _pool is not None:
            _pool.shutdown(cancel_futures=True)
        _pool, _pool_size = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")), n_workers
    return _pool


def _run_in_worker(function: Callable[[Any, J], R], token: str, state: bytes, job: J) -> R:
    """In a worker: unpickle the stage's state once per stage (by `token`), then run the job."""
    global _shared, _worker_token
    if _worker_token != token:
        _shared, _worker_token = pickle.loads(state), token
    return function(_shared, job)


def map_jobs(function: Callable[[Any, J], R], shared: Any, jobs: Sequence[J], n_workers: int = 1,
             costs: Sequence[float] | None = None) -> list[R]:
    """`[function(shared, job) for job in jobs]`, in `n_workers` spawned processes when more
    than one is asked for and allowed; there the costliest jobs (by `costs`) start first, so
    that a long one does not run alone at the end."""
    global _pool
    n_workers = min(n_workers, len(jobs))
    if n_workers <= 1 or multiprocessing.current_process().daemon:
        # Results cross a pickle boundary here too, so that they are the same objects as a
        # worker's: a frame's chunks, an optimizer's restored defaults.
        return [pickle.loads(pickle.dumps(function(shared, job), protocol=pickle.HIGHEST_PROTOCOL)) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda k: -costs[k]) if costs is not None else list(range(len(jobs)))
    state, token = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL), uuid.uuid4().hex
    pool = _workers_of(n_workers)
    try:
        futures = [pool.submit(_run_in_worker, function, token, state, jobs[k]) for k in order]
        done = [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # a failed or interrupted stage leaves no workers behind
        _pool = None
        raise
    results: list = [None] * len(jobs)
    for k, result in zip(order, done):
        results[k] = result
    return results
