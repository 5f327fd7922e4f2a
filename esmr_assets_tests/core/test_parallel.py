"""Jobs in spawned workers (core/parallel.py): the same results, in job order, however many."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from esmr_assets.core import parallel


def _scaled(shared: dict, job: int) -> tuple[int, int]:
    shared["seen"].append(job)  # mutates its copy of the state, never the caller's
    return job * shared["factor"], os.getpid()


def test_jobs_come_back_in_order_whatever_the_workers_and_costs():
    jobs, shared = list(range(7)), {"factor": 3, "seen": []}
    serial = parallel.map_jobs(_scaled, shared, jobs, 1)
    spread = parallel.map_jobs(_scaled, shared, jobs, 2, costs=[0, 0, 0, 0, 0, 0, 9])
    assert shared == {"factor": 3, "seen": []}  # the jobs ran on copies, in-process too
    assert [value for value, _ in serial] == [value for value, _ in spread] == [3 * job for job in jobs]
    assert {pid for _, pid in serial} == {os.getpid()}
    assert os.getpid() not in {pid for _, pid in spread}  # the work left this process


def test_the_worker_count_follows_esmr_workers_and_the_work(monkeypatch):
    monkeypatch.delenv("ESMR_WORKERS", raising=False)
    cpus = len(os.sched_getaffinity(0))
    monkeypatch.setattr(parallel, "_pool", None)  # no workers running: only large work pays their start
    assert parallel.workers(parallel.MIN_PARALLEL_WORK - 1) == 1
    assert parallel.workers(parallel.MIN_PARALLEL_WORK) == cpus
    monkeypatch.setattr(parallel, "_pool", object())  # workers running: smaller work is worth them
    assert parallel.workers(parallel.MIN_WARM_PARALLEL_WORK - 1) == 1
    assert parallel.workers(parallel.MIN_WARM_PARALLEL_WORK) == cpus
    monkeypatch.setenv("ESMR_WORKERS", "3")
    assert parallel.workers(1) == 3
    monkeypatch.setenv("ESMR_WORKERS", "two")
    with pytest.raises(ValueError, match="ESMR_WORKERS"):
        parallel.workers()


def test_fresh_copies_are_independent():
    learner = {"weights": [1.0]}
    copy = parallel.fresh(learner)
    copy["weights"].append(2.0)
    assert learner == {"weights": [1.0]}


def _fails(shared: dict, job: int) -> int:
    if job == 1:
        raise RuntimeError("job 1 failed")
    return job


def test_a_failing_job_fails_the_stage_and_leaves_no_workers():
    with pytest.raises(RuntimeError, match="job 1 failed"):
        parallel.map_jobs(_fails, {}, [0, 1, 2, 3], 2)
    assert parallel._pool is None  # killed, not kept half-used
    assert parallel.map_jobs(_fails, {}, [0, 2], 2) == [0, 2]  # a later stage starts new ones


def _pid_and(value: int) -> tuple[int, int]:
    if value < 0:
        raise ValueError("negative")
    return os.getpid(), value


def test_prestarted_workers_run_the_next_stage(monkeypatch):
    monkeypatch.delenv("ESMR_WORKERS", raising=False)
    parallel._retire_pool(kill=False)  # none running, whatever earlier tests left
    parallel.prestart(2, ["esmr_assets.core.portable"])
    pool = parallel._pool
    assert pool is not None and parallel._pool_size == 2  # started without waiting for a stage
    results = parallel.map_jobs(_scaled, {"factor": 2, "seen": []}, [1, 2, 3], 2)
    assert parallel._pool is pool  # the stage found them and kept them
    assert [value for value, _ in results] == [2, 4, 6] and os.getpid() not in {pid for _, pid in results}


def test_a_call_beside_gives_the_in_process_result_and_its_error(monkeypatch):
    monkeypatch.setenv("ESMR_WORKERS", "2")
    with parallel.beside(_pid_and, 5) as result:
        here = _pid_and(5)
    pid, value = result()
    assert value == here[1] and pid != os.getpid()  # computed in a worker meanwhile
    with parallel.beside(_pid_and, -1) as result, pytest.raises(ValueError, match="negative"):
        result()
    monkeypatch.setattr(parallel, "_pool", None)  # none running: a short call does not start one
    with parallel.beside(_pid_and, 7, start_workers=False) as result:
        assert result() == (os.getpid(), 7)
    monkeypatch.setenv("ESMR_WORKERS", "1")
    with parallel.beside(_pid_and, 8) as result:
        assert result() == (os.getpid(), 8)
    monkeypatch.setenv("ESMR_WORKERS", "2")
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)  # as in a Dask worker: no children
    with parallel.beside(_pid_and, 9) as result:
        assert result() == (os.getpid(), 9)


def _start_workers_and_return() -> None:
    os.environ["ESMR_WORKERS"] = "2"
    with parallel.beside(_pid_and, 1) as result:
        if result()[0] == os.getpid():
            raise SystemExit(3)  # no worker ran it: the test would prove nothing


def test_an_error_in_nested_calls_beside_arrives_as_itself(monkeypatch):
    monkeypatch.setenv("ESMR_WORKERS", "2")
    with pytest.raises(KeyError, match="stop"):
        with parallel.beside(_pid_and, 1), parallel.beside(_pid_and, 2):
            raise KeyError("stop")  # the inner block kills the workers; the outer finds none to kill
    assert parallel._pool is None


def test_a_child_process_with_kept_workers_still_exits():
    """A multiprocessing child (a Dagster step process) joins its non-daemonic children as it
    exits: the kept workers must be shut down first, or it waits for them forever."""
    child = multiprocessing.get_context("spawn").Process(target=_start_workers_and_return)
    child.start()
    child.join(timeout=120)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0


def _start_workers_and_report(queue) -> None:
    os.environ["ESMR_WORKERS"] = "2"
    with parallel.beside(_pid_and, 1) as result:
        queue.put(result()[0])  # a worker's pid
    time.sleep(600)  # killed here, with its workers kept


def test_kept_workers_exit_when_their_process_is_killed():
    """A killed process never shuts its pool down: its workers must not wait for work forever."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_start_workers_and_report, args=(queue,))
    child.start()
    worker = queue.get(timeout=120)
    assert worker != child.pid
    child.kill()
    child.join()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.2)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
        return stat.read().split(")")[-1].split()[0] != "Z"
