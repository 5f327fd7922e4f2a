"""The compiled kernels' cache under concurrent processes (core/compiled.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from esmr_assets.core import compiled

_TRY_LOCK = textwrap.dedent("""
    import fcntl, sys
    with open(sys.argv[1], "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(3)
""")


def _other_process_can_lock() -> bool:
    result = subprocess.run([sys.executable, "-c", _TRY_LOCK, str(compiled._lock_path())], timeout=60)
    assert result.returncode in (0, 3)
    return result.returncode == 0


def test_the_cache_lock_excludes_other_processes_and_nests_in_one():
    with compiled.cache_lock():
        with compiled.cache_lock():  # a kernel compiling another: no deadlock
            assert not _other_process_can_lock()
        assert not _other_process_can_lock()  # the inner exit keeps the outer hold
    assert _other_process_can_lock()


def test_a_lazily_compiled_kernel_compiles_under_the_lock(monkeypatch):
    held = []
    enter = compiled.cache_lock

    def watching():
        held.append(True)
        return enter()

    monkeypatch.setattr(compiled, "cache_lock", watching)

    @compiled.njit()
    def twice(x):  # pragma: no cover - compiled
        return 2 * x

    assert twice(np.arange(3)).tolist() == [0, 2, 4]
    assert held, "the first call compiled without the cache lock"
    calls = len(held)
    twice(np.arange(3))
    assert len(held) == calls  # a compiled signature is not looked up again


_KERNELS = textwrap.dedent("""
    import esmr_assets
    import numpy as np
    from esmr_assets.core import portable
    from esmr_assets.policy.learners import forest, qlearning
    a = np.ones((3, 3))
    print(portable.matmul(a, a).sum(), portable.solve(a + np.eye(3), a).sum(), portable.exp(a).sum())
""")


@pytest.mark.slow
def test_processes_starting_together_on_an_empty_cache_do_not_crash(tmp_path):
    """Without the lock, processes compiling into one empty cache crash now and then with a
    segmentation fault (numba issue 10128): this test failed in about half of its runs then."""
    for trial in range(3):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / f"cache{trial}"))
        processes = []
        for start in range(10):  # staggered starts meet each other mid-compilation
            processes.append(subprocess.Popen([sys.executable, "-c", _KERNELS], env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))
            time.sleep(0.01 * start)
        outputs = [process.communicate(timeout=600) for process in processes]
        assert [process.returncode for process in processes] == [0] * 10, [err[-500:] for _, err in outputs]
        assert len({out for out, _ in outputs}) == 1
