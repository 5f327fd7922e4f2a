"""Compiled kernels whose on-disk cache is safe when several processes start at once.

numba caches compiled code beside the module (`cache=True`), but two processes compiling the
same functions at the same moment can write cache files that do not fit together: a gufunc's
wrapper from one process naming a kernel that the other process compiled under another name.
The next process to load them crashes with a segmentation fault (numba issue 10128; seen here
with ten test workers on a fresh clone). So every compilation of the project's kernels, and
loading them from the cache, happens under one machine-wide file lock: the first process
compiles and writes, the others wait and then load what it wrote. Once the cache is warm the
lock is held for milliseconds.

Use `vectorize`, `guvectorize` and `njit` from here instead of numba's own, with the same
arguments; `cache=True` is implied.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import tempfile
from pathlib import Path

import numba
from numba.core.compiler_lock import global_compiler_lock

__all__ = ["cache_lock", "guvectorize", "njit", "vectorize"]

_held = 0  # depth of cache_lock in this process; guarded by numba's (re-entrant) compiler lock


def _lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"esmr-numba-cache-{os.getuid()}.lock"


@contextlib.contextmanager
def cache_lock():
    """Hold numba's in-process compiler lock and, outermost, the machine-wide file lock.

    Taking numba's lock first keeps one order for both locks in every thread, so nested
    compilations (a kernel calling another) neither deadlock nor take the file twice."""
    global _held
    with global_compiler_lock:
        handle = None
        if _held == 0:
            handle = open(_lock_path(), "a+")
            fcntl.flock(handle, fcntl.LOCK_EX)
        _held += 1
        try:
            yield
        finally:
            _held -= 1
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()


def vectorize(signatures, **options):
    """`numba.vectorize` with eager signatures, compiled or loaded under `cache_lock`."""
    def decorate(function):
        with cache_lock():
            return numba.vectorize(signatures, cache=True, **options)(function)
    return decorate


def guvectorize(signatures, layout, **options):
    """`numba.guvectorize` with eager signatures: kernel and wrapper under one `cache_lock`."""
    def decorate(function):
        with cache_lock():
            return numba.guvectorize(signatures, layout, cache=True, **options)(function)
    return decorate


def njit(**options):
    """`numba.njit`, compiled lazily per argument types, each compilation under `cache_lock`."""
    def decorate(function):
        dispatcher = numba.njit(cache=True, **options)(function)
        compile_types = dispatcher.compile

        @functools.wraps(compile_types)
        def compile_locked(sig):
            with cache_lock():
                return compile_types(sig)

        dispatcher.compile = compile_locked  # numba calls self.compile on every cache miss
        return dispatcher
    return decorate
