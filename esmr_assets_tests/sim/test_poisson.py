"""The compiled Poisson quantiles against scipy's, value for value."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from esmr_assets.sim import poisson
from esmr_assets.sim.poisson import poisson_quantiles


def _scipy(u, lam):
    """What the simulator computed before: scipy's ppf, 0 where lambda is not positive."""
    out = stats.poisson.ppf(u, np.maximum(lam, poisson.SMALLEST_LAMBDA))
    return np.where(lam > 0, out, 0.0).astype(np.int32)


def test_equals_scipy_over_the_lambdas_the_day_draws_and_beyond():
    rng = np.random.default_rng(1)
    lam = np.concatenate([rng.exponential(3.0, 200_000), 10 ** rng.uniform(-14, 3.3, 100_000),
                          [0.0, -1.0, np.nan, 1e-13, 499.9, 500.1, 1e4]])
    u = rng.random(lam.size)
    np.testing.assert_array_equal(poisson_quantiles(u, lam), _scipy(u, lam))


def test_equals_scipy_on_the_cdf_boundaries():
    """Uniforms on and one float beside P(X <= k) are where rounding decides: scipy decides."""
    lam = np.repeat([0.05, 0.7, 3.0, 12.5, 80.0, 400.0], 40)
    k = np.tile(np.arange(40), 6) + np.floor(np.repeat([0, 0, 0, 0, 60, 350], 40))
    cdf = stats.poisson.cdf(k, lam)
    inside = (cdf > 0) & (cdf < 1)
    lam, cdf = lam[inside], cdf[inside]
    u = np.concatenate([cdf, np.nextafter(cdf, 0), np.nextafter(cdf, 1)])
    lam = np.tile(lam, 3)
    keep = u < 1
    np.testing.assert_array_equal(poisson_quantiles(u[keep], lam[keep]), _scipy(u[keep], lam[keep]))


@settings(max_examples=300, deadline=None)
@given(st.floats(0.0, 0.999999, exclude_min=True), st.floats(1e-12, 600.0))
def test_equals_scipy_for_any_uniform_and_rate(u, lam):
    got = poisson_quantiles(np.array([u]), np.array([lam]))
    assert got.tolist() == _scipy(np.array([u]), np.array([lam])).tolist()


def test_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="one value each"):
        poisson_quantiles(np.zeros(3), np.zeros(2))
