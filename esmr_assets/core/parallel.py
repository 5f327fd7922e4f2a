"""Independent jobs on every core, with results that do not depend on how many there are.

A job is a module-level function of (shared state, job). Workers are spawned, never forked:
polars' and torch's thread pools do not survive a fork. Both the shared state and the results
cross a pickle boundary on every path, in-process too, so a job sees the same objects in a
worker and at home (a polars frame arrives in one chunk, a torch optimizer with its defaults
restored), and results come back in job order. So one process or several give the same
bytes, provided a job does not depend on another's side effects: a job copies what it
mutates (`fresh`); the caches it may fill in the shared state (a feed builder, a scorer) must
give the same results filled or not.

Starting a worker costs a few seconds (it imports the project), so the main thread's workers
are kept for the process's next stage, and a run that will need them starts them early
(`prestart`); each stage's state is written once to a temporary file that each worker reads
once. `beside` runs one call in a worker while the caller computes something else. Jobs run
in parallel only when their total work is worth it (`MIN_PARALLEL_WORK`, less once workers
are running), or when `ESMR_WORKERS` asks for a number of workers explicitly. A daemonic
process (a Dask worker) may not have children, and a process whose numeric kernels are not
pinned would compute otherwise than its pinned workers: both run the jobs in-process.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import multiprocessing
import multiprocessing.util
import os
import pickle
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["MIN_PARALLEL_WORK", "beside", "fresh", "map_jobs", "prestart", "workers"]

#: below this many closed-loop user-days in all, the jobs run in-process while no workers are
#: running: starting them (fresh interpreters importing the project) costs 4-5 s on 2 cores,
#: once per process (docs/performance.md)
MIN_PARALLEL_WORK = 150_000
#: the same once this process's workers are running (`prestart`, which `esmr run` calls when a
#: cell's closed-loop stages are to be computed): then a stage pays only for sending them its
#: inputs, well under a second at `paper`, where the heuristic buckets' 96,000 user-days, the
#: bandits' 120,000, the agents' 300,000 and the rollouts' 465,000 all go to the workers
MIN_WARM_PARALLEL_WORK = 40_000

J = TypeVar("J")
R = TypeVar("R")

_shared: Any = None  # a worker's copy of the stage's shared state
_worker_token: str | None = None  # which stage's state a worker holds

_pool: ProcessPoolExecutor | None = None  # the main thread's workers, kept for the next stage
_pool_size = 0


def workers(work: float = float("inf")) -> int:
    """How many processes to use for `work` (in closed-loop user-days): `ESMR_WORKERS` if set,
    else the CPUs this process may run on when the work is worth it (less work is, once the
    workers are running), else 1."""
    asked = os.environ.get("ESMR_WORKERS", "").strip()
    if asked:
        try:
            return max(1, int(asked))
        except ValueError:
            raise ValueError(f"ESMR_WORKERS must be a whole number of processes, got {asked!r}") from None
    if work < (MIN_WARM_PARALLEL_WORK if _workers_running() else MIN_PARALLEL_WORK):
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _workers_running() -> bool:
    """Whether this thread would find the process's kept workers running (only the main
    thread keeps them)."""
    return _pool is not None and threading.current_thread() is threading.main_thread()


def fresh(value: J) -> J:
    """A job's own copy of something it mutates (a learner that learns as it acts), so that
    what one job does to it never reaches another, in one process or several."""
    return copy.deepcopy(value)


def _round_trip(value: Any) -> Any:
    return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _new_pool(n_workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_exit_with_parent, initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    """In a worker: exit when the process that started it is gone (killed, so it never shut
    the pool down) instead of waiting for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="esmr-parent-watch", daemon=True).start()


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop `pool` now, its running jobs too: a failed or interrupted stage leaves nothing
    computing behind it, and the process can exit at once."""
    for process in list((pool._processes or {}).values()):  # Python 3.11 has no terminate_workers()
        with contextlib.suppress(Exception):
            process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _workers_of(n_workers: int):
    """A pool of at least `n_workers` spawned workers: on the main thread the process's own,
    started once and kept (a later stage finds it warm); on another thread one of its own."""
    global _pool, _pool_size
    if threading.current_thread() is not threading.main_thread():
        pool = _new_pool(n_workers)
        try:
            yield pool
        except BaseException:
            _kill(pool)
            raise
        pool.shutdown(wait=True)
        return
    if _pool is None or _pool_size < n_workers:
        _retire_pool(kill=False)
        _pool, _pool_size = _new_pool(n_workers), n_workers
        _start_finalizer()
    pool = _pool
    try:
        yield pool
    except BaseException:
        if _pool is pool:  # a nested block may have retired it already
            _retire_pool(kill=True)
        raise


_pool_finalizer: multiprocessing.util.Finalize | None = None


def _start_finalizer() -> None:
    """A multiprocessing child (a Dagster step process) joins its children as it exits, before
    the pool's own exit hook would stop them: stop them first, before the pool's queues close
    (their finalizers have priority 10, and a closed queue would never deliver the workers
    their signal to stop)."""
    global _pool_finalizer
    assert _pool is not None
    _pool_finalizer = multiprocessing.util.Finalize(None, _pool.shutdown, kwargs={"cancel_futures": True},
                                                    exitpriority=100)


def _retire_pool(kill: bool) -> None:
    """Stop the kept workers (killing them mid-job when `kill`) and forget them."""
    global _pool, _pool_size, _pool_finalizer
    if _pool is None:
        return
    if _pool_finalizer is not None:
        _pool_finalizer.cancel()
        _pool_finalizer = None
    if kill:
        _kill(_pool)
    else:
        _pool.shutdown(wait=True)
    _pool, _pool_size = None, 0


def _import(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)


def prestart(n_workers: int, modules: Sequence[str] = ()) -> None:
    """Start the main thread's kept workers now, each importing `modules`, without waiting for
    them: a run that will have parallel stages later pays the workers' start on the spare core
    while its first stages run on this one. Nothing happens where the jobs would run
    in-process. (A smaller pool already running is replaced, which waits for its jobs.)"""
    if n_workers <= 1 or _in_process() or threading.current_thread() is not threading.main_thread():
        return
    with _workers_of(n_workers) as pool:
        for _ in range(n_workers):  # each submit starts a worker until there are n_workers
            pool.submit(_import, tuple(modules))


def _run_in_worker(function: Callable[[Any, J], R], token: str, state_file: str, job: J) -> R:
    """In a worker: read the stage's state once per stage (by `token`), then run the job."""
    global _shared, _worker_token
    if _worker_token != token:
        with open(state_file, "rb") as handle:
            _shared = pickle.load(handle)
        _worker_token = token
    return function(_shared, job)


def _in_process() -> bool:
    from . import numeric_env

    return multiprocessing.current_process().daemon or not numeric_env.pinned()


def map_jobs(function: Callable[[Any, J], R], shared: Any, jobs: Sequence[J], n_workers: int = 1,
             costs: Sequence[float] | None = None) -> list[R]:
    """`[function(shared, job) for job in jobs]`, in `n_workers` spawned processes when more
    than one is asked for and allowed; there the costliest jobs (by `costs`) start first, so
    that a long one does not run alone at the end."""
    n_workers = min(n_workers, len(jobs))
    if n_workers <= 1 or _in_process():
        mine = _round_trip(shared)
        return [_round_trip(function(mine, job)) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda k: -costs[k]) if costs is not None else list(range(len(jobs)))
    with tempfile.NamedTemporaryFile(prefix="esmr-stage-", suffix=".pickle") as state:
        pickle.dump(shared, state, protocol=pickle.HIGHEST_PROTOCOL)
        state.flush()
        token = uuid.uuid4().hex
        with _workers_of(n_workers) as pool:
            futures = [pool.submit(_run_in_worker, function, token, state.name, jobs[k]) for k in order]
            done = [future.result() for future in futures]
    results: list = [None] * len(jobs)
    for k, result in zip(order, done):
        results[k] = result
    return results


@contextlib.contextmanager
def beside(function: Callable[..., R], *args: Any, start_workers: bool = True) -> Iterator[Callable[[], R]]:
    """Run `function(*args)` in a worker while the block runs; yields a callable returning its
    result (or raising its error). Where jobs run in-process, or one worker is asked for, or
    no worker is running and `start_workers` is False (the call is shorter than a worker's
    start), the call runs in-process when its result is asked for. Arguments and result
    cross a pickle boundary either way, as in `map_jobs`."""
    n_workers = workers()
    running = _workers_running()
    if n_workers <= 1 or _in_process() or not (start_workers or running):
        yield lambda: _round_trip(function(*_round_trip(args)))
        return
    with _workers_of(min(n_workers, _pool_size) if running else n_workers) as pool:  # any size does for one call
        yield pool.submit(function, *args).result
