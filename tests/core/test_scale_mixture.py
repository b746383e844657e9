"""resgp.core.scale_mixture: tanh as a Gaussian scale mixture of erf (Andrews & Mallows), the
trapezoidal rule over the Kolmogorov distribution, the closed-form series and its range."""

import math

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import scipy.special
import scipy.stats

from resgp.core import scale_mixture as sm
from resgp.core.x64 import enable_x64


def _mp_density(k):
    """The Kolmogorov density by mpmath at 30 digits (the alternating series, summed to
    convergence by nsum)."""
    k = mpmath.mpf(k)
    return 8 * k * mpmath.nsum(lambda n: (-1) ** (n - 1) * n**2 * mpmath.exp(-2 * n**2 * k**2),
                               [1, mpmath.inf])


def test_kolmogorov_density():
    """Both series of the density (theta transforms of each other, switched at k = 1) against
    mpmath at 30 digits (SciPy's kstwobign.pdf is 3e-8 off near k = 0.83), and it integrates to
    the CDF's increments (SciPy's kstwobign.cdf)."""
    with mpmath.workdps(30):
        for k in np.linspace(0.3, 4.0, 38):
            want = float(_mp_density(k))
            assert abs(sm.kolmogorov_density(k) - want) <= 2e-15 * max(want, 1e-3), k
    x, w = np.polynomial.legendre.leggauss(40)
    for a, b in ((0.1, 0.6), (0.6, 1.4), (1.4, 4.0)):
        mass = 0.5 * (b - a) * np.sum(w * sm.kolmogorov_density(0.5 * (b - a) * (x + 1) + a))
        assert abs(mass - (scipy.stats.kstwobign.cdf(b) - scipy.stats.kstwobign.cdf(a))) <= 1e-12


def test_rule_reproduces_tanh_and_sech2_on_the_real_line():
    """sum_i w_i erf(x / sqrt(2) K_i) = tanh x and sum_i w_i (2/K_i) phi(x/K_i) = sech^2 x to
    6e-16 for x in [0, 20] (odd and even: the whole line; mpmath references), the weights sum
    to 1 and E[1/K] = sqrt(pi/2) (tanh'(0) = 1)."""
    K, w = sm.rule()
    x = np.linspace(0.0, 20.0, 40001)[:, None]
    tanh = np.sum(w * scipy.special.erf(x / (math.sqrt(2.0) * K)), axis=1)
    sech2 = np.sum(w * 2.0 / K * np.exp(-0.5 * (x / K) ** 2) / math.sqrt(2.0 * math.pi), axis=1)
    # references rounded from 30 digits (NumPy's own tanh and cosh differ by CPU: SIMD paths)
    with mpmath.workdps(30):
        ref_tanh = np.array([float(mpmath.tanh(mpmath.mpf(v))) for v in x[:, 0]])
        ref_sech2 = np.array([float(mpmath.sech(mpmath.mpf(v)) ** 2) for v in x[:, 0]])
    assert np.max(np.abs(tanh - ref_tanh)) <= 6e-16
    assert np.max(np.abs(sech2 - ref_sech2)) <= 6e-16
    assert abs(w.sum() - 1.0) <= 4e-16
    assert abs(np.sum(w / K) - math.sqrt(math.pi / 2.0)) <= 1e-15
    # a coarser step is measurably worse: the rule's accuracy comes from its step
    Kc, wc = sm.rule(2.0 * sm.STEP)
    coarse = np.sum(wc * scipy.special.erf(x / (math.sqrt(2.0) * Kc)), axis=1)
    assert np.max(np.abs(coarse - np.tanh(x[:, 0]))) > 1e-9


def _duals(q11, q22, q12, order=None):
    with enable_x64():
        args = [jnp.asarray(a, jnp.float64) for a in (q11, q22, q12)]
        if order is None:
            return [np.asarray(sm.direct(d)(*args)) for d in (False, True)]
        return [np.asarray(sm.series(order, d)(*args)) for d in (False, True)]


@pytest.mark.parametrize("order", [256, 1024])
def test_series_range_is_where_the_series_meets_the_direct_sum(order):
    """At rho = 1 (the series' worst case) and q = series_range(order) the series equals the
    direct double sum within 3e-15; at twice that variance it does not (so the switch sits
    where it is needed); the range grows with the order."""
    top = sm.series_range(order)
    assert top > 1.0 and sm.series_range(2 * order) > 1.8 * top
    for q, ok in ((top, True), (2.0 * top, False)):
        direct, series = _duals(q, q, q), _duals(q, q, q, order)
        err = max(abs(a - b) / a for a, b in zip(direct, series))
        assert (err <= 3e-15) == ok, (q, err)


def test_series_equals_direct_sum_inside_its_range():
    """Random covariances with variances below the range of 512 terms: the series and the
    double sum agree to 3e-15 relative to the Cauchy-Schwarz scale, both duals."""
    rng = np.random.default_rng(3)
    top = sm.series_range(512)
    q11, q22 = np.exp(rng.uniform(np.log(1e-4), np.log(top), (2, 200)))
    q12 = rng.uniform(-1, 1, 200) * np.sqrt(q11 * q22)
    series, direct = _duals(q11, q22, q12, 512), _duals(q11, q22, q12)
    scales = [np.sqrt(a * b) for a, b in zip(_duals(q11, q11, q11), _duals(q22, q22, q22))]
    for s, d, scale in zip(series, direct, scales):
        assert np.max(np.abs(s - d) / scale) <= 3e-15


@pytest.mark.parametrize("q", [0.3, 2.0, 40.0])
def test_price_theorem_holds_for_the_rule(q):
    """d/dq12 of the dual is the derivative dual (exactly so for the discrete rule), for the
    direct sum and the series, by automatic differentiation: 1e-14 relative."""
    q11, q22, q12 = q, 1.3 * q, 0.4 * q
    want = _duals(q11, q22, q12)[1]
    with enable_x64():
        for dual in (sm.direct(False), sm.series(4096, False)):
            if dual is not sm.direct(False) and 1.3 * q > sm.series_range(4096):
                continue
            got = jax.grad(lambda c: dual(jnp.float64(q11), jnp.float64(q22), c))(jnp.float64(q12))
            assert abs(float(got) - want) <= 1e-14 * want, (q, float(got), want)


def test_zero_variance_is_finite_with_finite_derivatives():
    """A zero variance (a zero input without bias, or a tile's padding): the duals are 0 and
    their derivatives finite, no NaN from log 0."""
    with enable_x64():
        for order in (None, 256):
            for d in (False, True):
                f = sm.direct(d) if order is None else sm.series(order, d)
                value, grad = jax.value_and_grad(lambda a: f(a, jnp.float64(1.0),
                                                              jnp.float64(0.0)))(0.0)
                assert np.isfinite(float(value)) and np.isfinite(float(grad))
                if not d:
                    assert float(value) == 0.0
