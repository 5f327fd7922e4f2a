"""Poisson quantiles (inverse CDF) for the day's interaction counts: scipy's answers, fast.

`scipy.stats.poisson.ppf` costs a Python wrapper and an incomplete-gamma inversion per call,
about a tenth of a simulated day. Here one compiled pass per value sums the probability mass
from 0 up until it reaches the uniform. Wherever that sum lies too close to the uniform for
its rounding to be sure of the answer (within `MARGIN`: a few in a billion draws), or lambda
is too large for the sum, the value is left to scipy. So every count equals scipy's, and the
random streams are untouched: still one uniform per count.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..core import compiled

#: how close the summed CDF may come to the uniform before scipy decides
MARGIN = 1e-10
#: a positive lambda below this counts as this (as the project always asked scipy)
SMALLEST_LAMBDA = 1e-12
#: above this lambda the sum starts from too small a mass: scipy decides
LARGEST_SUMMED_LAMBDA = 500.0


def poisson_quantiles(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """int32 inverse-CDF Poisson draws: the smallest k with P(X <= k) >= u for X ~ Poisson(lam),
    as `scipy.stats.poisson.ppf(u, lam)`; 0 where lam <= 0 (one uniform per draw whatever
    lambda is, so the streams stay aligned)."""
    u = np.ascontiguousarray(u, dtype=np.float64).ravel()
    lam = np.ascontiguousarray(lam, dtype=np.float64).ravel()
    if u.shape != lam.shape:
        raise ValueError(f"u and lam must have one value each per draw, got {u.shape} and {lam.shape}")
    out = np.empty(u.size, dtype=np.int32)
    unsure = np.zeros(u.size, dtype=np.bool_)
    _summed_quantiles(u, lam, out, unsure)
    if unsure.any():
        out[unsure] = stats.poisson.ppf(u[unsure], np.maximum(lam[unsure], SMALLEST_LAMBDA)).astype(np.int32)
    return out


@compiled.njit(nogil=True)
def _summed_quantiles(u, lam, out, unsure):  # pragma: no cover - compiled
    for i in range(u.size):
        rate, q = lam[i], u[i]
        if not rate > 0.0:  # NaN too
            out[i] = 0
            continue
        rate = max(rate, SMALLEST_LAMBDA)
        if rate > LARGEST_SUMMED_LAMBDA or not (0.0 < q < 1.0):
            unsure[i] = True
            continue
        mass = math.exp(-rate)
        below, cdf, k = 0.0, mass, 0
        limit = rate + 40.0 * math.sqrt(rate) + 40.0  # far beyond any quantile below 1 - 1e-16
        while cdf < q and k < limit:
            k += 1
            mass *= rate / k
            below = cdf
            cdf += mass
        out[i] = k
        if k >= limit or cdf - q <= MARGIN or q - below <= MARGIN:
            unsure[i] = True
