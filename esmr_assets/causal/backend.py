"""Array backend shared by the batched causal-discovery code: numpy or torch (CPU/CUDA).

The batched solvers are written once against `ArrayOps`, a thin shim over the array
operations whose spelling differs between numpy and torch, so the same code path runs on
either; `resolve_device` maps a user-facing device name to a backend. Kept apart from the
algorithms so that every numerical module (`lars`, `direct_lingam`) can share it without
depending on each other.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ..core import portable

__all__ = ["ArrayOps", "resolve_device"]


def resolve_device(device: str = "auto") -> str:
    """Map a user-facing device name to a backend: "numpy", "torch-cpu" or "cuda".

    "auto" picks CUDA when torch sees a GPU (the batch is large and the work is
    elementwise), else numpy; "cpu" means numpy.
    """
    if device in ("cpu", "numpy"):
        return "numpy"
    if device == "torch-cpu":
        return "torch-cpu"
    if device in ("auto", "cuda"):
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a project dependency
            torch = None
        if torch is not None and torch.cuda.is_available():
            return "cuda"
        if device == "cuda":
            raise ValueError("device='cuda' requested but torch sees no CUDA device")
        return "numpy"
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'torch-cpu', got {device!r}")


class ArrayOps:
    """The array operations whose spelling differs between numpy and torch."""

    def __init__(self, backend: str):
        self.backend = backend
        self.is_torch = backend != "numpy"
        if self.is_torch:
            import torch

            self.xp = torch
            self.device = torch.device("cuda" if backend == "cuda" else "cpu")
            self._dtypes = {"float": torch.float64, "int": torch.int64, "bool": torch.bool}
        else:
            self.xp = np
            self._dtypes = {"float": np.float64, "int": np.int64, "bool": np.bool_}

    def asarray(self, a: Any, kind: str = "float"):
        if self.is_torch:
            if isinstance(a, self.xp.Tensor):
                return a.to(device=self.device, dtype=self._dtypes[kind])
            return self.xp.as_tensor(np.asarray(a), dtype=self._dtypes[kind], device=self.device)
        return np.asarray(a, dtype=self._dtypes[kind])

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().cpu().numpy() if self.is_torch else np.asarray(a)

    def astype(self, a, kind: str):
        return a.to(self._dtypes[kind]) if self.is_torch else a.astype(self._dtypes[kind])

    def zeros(self, shape, kind: str = "float"):
        if self.is_torch:
            return self.xp.zeros(shape, dtype=self._dtypes[kind], device=self.device)
        return np.zeros(shape, dtype=self._dtypes[kind])

    def full(self, shape, value, kind: str = "float"):
        if self.is_torch:
            return self.xp.full(shape, value, dtype=self._dtypes[kind], device=self.device)
        return np.full(shape, value, dtype=self._dtypes[kind])

    def arange(self, n: int):
        if self.is_torch:
            return self.xp.arange(n, device=self.device)
        return np.arange(n)

    def eye(self, n: int):
        if self.is_torch:
            return self.xp.eye(n, dtype=self.xp.float64, device=self.device)
        return np.eye(n)

    def swap_last(self, a):
        return a.transpose(-1, -2) if self.is_torch else np.swapaxes(a, -1, -2)

    def copy(self, a):
        return a.clone() if self.is_torch else a.copy()

    def sum(self, a, axis, keepdims: bool = False):
        return a.sum(dim=axis, keepdim=keepdims) if self.is_torch else a.sum(axis=axis, keepdims=keepdims)

    def mean(self, a, axis, keepdims: bool = False):
        return a.mean(dim=axis, keepdim=keepdims) if self.is_torch else a.mean(axis=axis, keepdims=keepdims)

    def amin(self, a, axis):
        return a.amin(dim=axis) if self.is_torch else a.min(axis=axis)

    def amax(self, a, axis):
        return a.amax(dim=axis) if self.is_torch else a.max(axis=axis)

    def argmin(self, a, axis):
        return a.argmin(dim=axis) if self.is_torch else a.argmin(axis=axis)

    def argmax(self, a, axis):
        return a.argmax(dim=axis) if self.is_torch else a.argmax(axis=axis)

    def prod(self, a, axis):
        return a.prod(dim=axis) if self.is_torch else a.prod(axis=axis)

    def any(self, a, axis):
        return a.any(dim=axis) if self.is_torch else a.any(axis=axis)

    def argsort_stable(self, a, axis):
        if self.is_torch:
            return self.xp.argsort(a, dim=axis, stable=True)
        return np.argsort(a, axis=axis, kind="stable")

    def take_along(self, a, idx, axis):
        if self.is_torch:
            return self.xp.take_along_dim(a, idx, dim=axis)
        return np.take_along_axis(a, idx, axis=axis)

    def round(self, a, decimals: int):
        return self.xp.round(a, decimals=decimals) if self.is_torch else np.around(a, decimals)

    def solve(self, A, b):
        """Batched solve (b: (..., m, r)); pseudo-inverse if some system is singular
        (exactly collinear columns), which gives lstsq's minimum-norm answer."""
        try:
            return self.xp.linalg.solve(A, b) if self.is_torch else portable.solve(A, b)
        except (np.linalg.LinAlgError, RuntimeError):
            return self.matmul(self.xp.linalg.pinv(A), b)

    # numpy's own exp, log, cosh and matmul pick their kernels by CPU: the portable ones
    # give the same bits everywhere (torch's are pinned by `numeric_env`).
    def matmul(self, a, b):
        return a @ b if self.is_torch else portable.matmul(a, b)

    def exp(self, a):
        return self.xp.exp(a) if self.is_torch else portable.exp(a)

    def log(self, a):
        return self.xp.log(a) if self.is_torch else portable.log(a)

    def cosh(self, a):
        return self.xp.cosh(a) if self.is_torch else portable.cosh(a)

    def nonzero(self, mask):
        return self.xp.nonzero(mask)[0] if not self.is_torch else self.xp.nonzero(mask).flatten()

    def errstate(self):
        """Silence numpy's warnings for masked-out lanes (torch never warns)."""
        return contextlib.nullcontext() if self.is_torch else np.errstate(all="ignore")
