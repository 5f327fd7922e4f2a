"""Portable numerics: the float operations whose last bits would otherwise depend on the CPU.

numpy picks a SIMD kernel for `exp`, `log`, `tanh`, `power` and their kin when it is imported,
from the CPU it finds (AVX-512 kernels on one machine, AVX2 or plain C on another), and its
matrix products go to OpenBLAS, which also picks its kernels per CPU. The last bits differ,
and everything learned downstream amplifies them. The project's own array code calls these
instead:

- the elementwise functions are compiled loops (numba) over the C library's scalar `exp`,
  `log`, `tanh` and `pow`, the same routines on every x86-64 machine with AVX2;
- the products and the solve sum in index order, one term after another, with neither
  reassociation nor fused multiply-adds (numba's default, no `fastmath`), so no vector width
  or blocking can change a result.

What numpy computes exactly (+, -, *, /, sqrt, comparisons, sorting with `kind="stable"`,
`sum` and `mean`, whose pairwise order is fixed in C) needs nothing from here.
`docs/portable_bytes.md` lists every operation that was sensitive and how it is pinned.
"""

from __future__ import annotations

import math

import numpy as np

from esmr_assets.core import compiled

__all__ = ["exp", "expit", "log", "tanh", "cosh", "power", "matmul", "solve"]

_UNARY = ["float64(float64)"]


@compiled.vectorize(_UNARY)
def exp(x):  # pragma: no cover - compiled
    """e**x with the C library's exp."""
    return math.exp(x)


@compiled.vectorize(_UNARY)
def log(x):  # pragma: no cover - compiled
    """Natural log with the C library's log (nan below 0, -inf at 0, as numpy)."""
    if x < 0.0:
        return math.nan
    if x == 0.0:
        return -math.inf
    return math.log(x)


@compiled.vectorize(_UNARY)
def tanh(x):  # pragma: no cover - compiled
    return math.tanh(x)


@compiled.vectorize(_UNARY)
def cosh(x):  # pragma: no cover - compiled
    return math.cosh(x)


@compiled.vectorize(_UNARY)
def expit(x):  # pragma: no cover - compiled
    """The logistic function 1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + math.exp(-x))


@compiled.vectorize(["float64(float64, float64)"])
def power(x, y):  # pragma: no cover - compiled
    """x**y with the C library's pow."""
    return math.pow(x, y)


@compiled.guvectorize(["void(float64[:, :], float64[:, :], float64[:, :])",
                    "void(float32[:, :], float32[:, :], float32[:, :])"],
                   "(n,k),(k,m)->(n,m)")
def _matmul(a, b, out):  # pragma: no cover - compiled
    n, k = a.shape
    m = b.shape[1]
    for i in range(n):
        for j in range(m):
            out[i, j] = 0.0
        for t in range(k):
            ait = a[i, t]
            for j in range(m):
                out[i, j] += ait * b[t, j]


def matmul(a, b) -> np.ndarray:
    """`a @ b` (stacked over leading axes as `np.matmul`; float32 stays float32), each
    element summed over k in order."""
    a, b = np.asarray(a), np.asarray(b)
    dtype = np.float32 if a.dtype == np.float32 and b.dtype == np.float32 else np.float64
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    a = a[None, :] if vector_a else a
    b = b[:, None] if vector_b else b
    out = _matmul(np.ascontiguousarray(a, dtype=dtype), np.ascontiguousarray(b, dtype=dtype))
    if vector_b:
        out = out[..., 0]
    if vector_a:
        out = out[..., 0, :] if not vector_b else out[..., 0]
    return out


@compiled.guvectorize(["void(float64[:, :], float64[:, :], float64[:, :], boolean[:])"], "(n,n),(n,m)->(n,m),()")
def _solve(a, b, out, singular):  # pragma: no cover - compiled
    """Gaussian elimination with partial pivoting (the first largest pivot), as LAPACK's
    getrf/getrs compute it but in a fixed order; `singular` when a pivot is exactly 0."""
    n = a.shape[0]
    lu = a.copy()
    x = b.copy()
    singular[0] = False
    for c in range(n):
        p = c
        for r in range(c + 1, n):
            if abs(lu[r, c]) > abs(lu[p, c]):
                p = r
        if lu[p, c] == 0.0:
            singular[0] = True
            out[:, :] = math.nan
            return
        if p != c:
            for j in range(n):
                lu[c, j], lu[p, j] = lu[p, j], lu[c, j]
            for j in range(x.shape[1]):
                x[c, j], x[p, j] = x[p, j], x[c, j]
        for r in range(c + 1, n):
            f = lu[r, c] / lu[c, c]
            for j in range(c + 1, n):
                lu[r, j] -= f * lu[c, j]
            for j in range(x.shape[1]):
                x[r, j] -= f * x[c, j]
    for c in range(n - 1, -1, -1):
        for j in range(x.shape[1]):
            s = x[c, j]
            for t in range(c + 1, n):
                s -= lu[c, t] * x[t, j]
            x[c, j] = s / lu[c, c]
    out[:, :] = x


def solve(a, b) -> np.ndarray:
    """`np.linalg.solve(a, b)` for stacked square systems (b: (..., n, m)); raises
    `np.linalg.LinAlgError` when any system is singular (an exactly zero pivot), as numpy does."""
    out, singular = _solve(np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64))
    if np.any(singular):
        raise np.linalg.LinAlgError("Singular matrix")
    return out
