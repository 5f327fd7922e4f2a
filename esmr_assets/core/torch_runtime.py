"""The torch settings every model of the project runs under (the TabTransformer, IGL-P's decoder)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_runtime(n_threads: int | None) -> Iterator[None]:
    """Run with `n_threads` torch intra-op threads (None: torch's setting) and oneDNN off,
    both restored afterwards. Small models on a shared two-core machine lose more to a
    second thread than they gain; and without oneDNN, whose kernels and blocking follow the
    CPU and its caches, torch's matrix products run in MKL, pinned to one code path on every
    CPU (`numeric_env.PINS`), so the weights are the same bytes on every machine."""
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = onednn
