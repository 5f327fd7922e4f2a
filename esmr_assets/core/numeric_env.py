"""The numeric environment: the kernels the libraries run, pinned to one choice on every x86-64
machine with AVX2, and recorded beside every cell.

torch (its own vectorised kernels, MKL) and OpenBLAS (numpy's and scipy's, which
scikit-learn's K-Means and logistic regression use) pick SIMD kernels from the CPU they find,
so an AVX-512 machine and an AVX2 one differ in the last bits, and learned models amplify
that. The project's own array code avoids such operations (`portable`); what is left inside
the libraries is pinned here by the environment variables each library reads when it first
loads or first computes. `pin()` runs when `esmr_assets` is imported, before anything of the
project imports numpy or torch, so every process that imports the package first (the CLI,
the code location and its step processes, Dask workers, pytest) runs the pinned kernels.

A process that loaded a library before importing `esmr_assets` (a notebook that imported
numpy first) keeps that library's own choice: `UnpinnedKernelsWarning` says so at import, the
cells it writes record the kernels it really ran, and reuse never mixes them with pinned cells.
Setting `ESMR_UNPINNED_KERNELS=1` turns the pins off (the cells record that too).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import os
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path

#: variable -> value, each read by its library when it first loads (OpenBLAS) or first computes (torch, MKL)
PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vectorised kernels (softmax, layer norm, GELU, Adam, ...)
    "MKL_CBWR": "COMPATIBLE",  # torch's matrix products in MKL: one code path on every x86-64 CPU, Intel or AMD
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN, which the project's torch code also switches off (`torch_runtime`)
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's BLAS: the AVX2 kernels, on AVX-512 machines too
    "NUMBA_DISABLE_INTEL_SVML": "1",  # numba's loops over exp & co. stay calls to the C library, never SVML's vectors
}
#: what each pin looks like where it is checked (`kernels()`)
PINNED_KERNELS = {"torch": "AVX2", "mkl": "COMPATIBLE", "openblas": "Haswell", "svml": "off"}
OPT_OUT = "ESMR_UNPINNED_KERNELS"
#: versions that take part in the numbers: a different one is a different numeric environment
NUMERIC_PACKAGES = ("numpy", "scipy", "torch", "lightgbm", "numba", "llvmlite", "scikit-learn", "polars",
                    "duckdb", "pyarrow")
#: the CPU features the pins need (OpenBLAS's Haswell kernels and torch's AVX2 ones)
REQUIRED_FLAGS = ("avx2", "fma")


class UnpinnedKernelsWarning(UserWarning):
    """This process computes with kernels other than the pinned ones: its bytes may differ
    in the last bits from other machines' (and its cells are never reused by pinned runs)."""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux), empty where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def pinnable() -> bool:
    """The pins apply: an x86-64 CPU with AVX2 and FMA, and no opt-out. Elsewhere (aarch64,
    older x86) the libraries keep their own choice and the cells say so."""
    return (os.environ.get(OPT_OUT, "") in ("", "0") and platform.machine() in ("x86_64", "AMD64")
            and set(REQUIRED_FLAGS) <= cpu_flags())


def pin() -> None:
    """Set every pin in this process's environment (children inherit it), overriding what
    was there: one choice of kernels is the project's promise. Warns when a library was
    already loaded with another choice, and on a machine the pins do not cover."""
    if not pinnable():
        if os.environ.get(OPT_OUT, "") in ("", "0"):
            warnings.warn(UnpinnedKernelsWarning(
                f"this machine ({platform.machine()}, {platform.system()}) is not an x86-64 Linux machine with AVX2 "
                "and FMA, so the numeric kernels are not pinned: its results may differ in the last bits from those "
                "machines', and its cells record that (docs/portable_bytes.md)"), stacklevel=3)
        return
    os.environ.update(PINS)
    loaded = [name for name in ("numpy", "scipy", "torch") if name in sys.modules]
    checks = {"torch": _torch_kernels, "mkl": _mkl_branch} if "torch" in loaded else {}
    if "numpy" in loaded or "scipy" in loaded:
        checks["openblas"] = functools.partial(_openblas_kernels, load=False)
    if "numba" in sys.modules:
        checks["svml"] = _numba_svml
    if checks:
        unpinned = {lib: kind for lib, kind in ((lib, check()) for lib, check in checks.items())
                    if kind != PINNED_KERNELS[lib]}
        if unpinned:
            warnings.warn(UnpinnedKernelsWarning(
                f"{', '.join(loaded)} loaded before esmr_assets pinned the numeric kernels, so this process runs "
                f"{', '.join(f'{lib} {kind}' for lib, kind in sorted(unpinned.items()))} instead of the pinned "
                f"{', '.join(PINNED_KERNELS[lib] for lib in sorted(unpinned))}: results may differ in the last bits "
                "from other machines, and reuse keeps them apart. Import esmr_assets first, or start Python with "
                f"{' '.join(f'{k}={v}' for k, v in PINS.items())}."), stacklevel=3)


def _torch_kernels() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()


def _mkl_branch() -> str:
    """MKL's conditional-numerical-reproducibility branch in torch's copy of MKL."""
    import torch

    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return "absent"
    get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
    return {0: "OFF", 1: "OFF", 2: "AUTO", 3: "COMPATIBLE"}.get(get(1), f"branch {get(1)}")


def _openblas_kernels(load: bool = True) -> str:
    """The core type of every OpenBLAS loaded (numpy's and scipy's, both loaded first unless
    `load` is false), one name when they agree."""
    if load:
        import numpy  # noqa: F401 - loads numpy's OpenBLAS
        import scipy.linalg  # noqa: F401 - loads scipy's
    from threadpoolctl import threadpool_info

    kinds = sorted({info.get("architecture", "?") for info in threadpool_info() if info["internal_api"] == "openblas"})
    return "+".join(kinds) or "absent"


def _cuda() -> bool:
    """A GPU is visible: settings that say `auto` compute there (the defaults never do)."""
    import torch

    return torch.cuda.is_available()


def _numba_svml() -> str:
    import numba

    return "on" if numba.config.USING_SVML else "off"


def kernels() -> dict[str, str]:
    """The kernels this process runs, per library (loading them if needed)."""
    return {"torch": _torch_kernels(), "mkl": _mkl_branch(), "openblas": _openblas_kernels(), "svml": _numba_svml()}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def environment() -> dict:
    """What this process computes with: the machine, the C library (its math functions are
    what `portable` calls), the numeric packages' versions and the kernels. Two processes with
    equal environments write the same bytes for the same cell."""
    libc, libc_version = platform.libc_ver()
    return {
        "machine": platform.machine(),
        "libc": f"{libc} {libc_version}".strip() or "unknown",
        "python": ".".join(platform.python_version_tuple()[:2]),
        "versions": {package: _version(package) for package in NUMERIC_PACKAGES},
        "kernels": kernels(),
        "cuda": _cuda(),
    }


def fingerprint() -> str:
    """A short hash of `environment()`: part of every reuse key."""
    return hashlib.sha256(json.dumps(environment(), sort_keys=True).encode()).hexdigest()[:16]


def pinned() -> bool:
    return environment()["kernels"] == PINNED_KERNELS


@functools.cache
def commit() -> str:
    """The git commit of the package's source checkout, read from its `.git` files (so it
    is the same in every process, whatever its PATH), or "unknown" outside one. Local
    changes on top of it are not detected."""
    git = Path(__file__).resolve().parents[2] / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (git.parent / git.read_text().partition("gitdir:")[2].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.partition("ref:")[2].strip()
        common = git / "commondir"
        base = (git / common.read_text().strip()).resolve() if common.is_file() else git
        for folder in (git, base):
            if (folder / ref).is_file():
                return (folder / ref).read_text().strip()
        for line in (base / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return "unknown"


def record() -> dict:
    """What a cell carries beside its key (`.numerics.json`) and in its metadata: the
    package's version and commit, and the numeric environment with its fingerprint."""
    return {"esmr_assets": _version("esmr-assets"), "commit": commit(), "fingerprint": fingerprint(),
            **environment()}


def numpy_simd() -> list[str]:
    """numpy's SIMD features in use (not part of the environment: the project's results do
    not depend on them, which the dispatch-variant test checks)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
