"""One torch thread limit for the small torch models (the TabTransformer, IGL-P's decoder)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run with `n_threads` torch intra-op threads (None: torch's setting), restored
    afterwards: small models on a shared two-core machine lose more to a second thread
    than they gain."""
    before = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
