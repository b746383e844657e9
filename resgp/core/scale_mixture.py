r"""tanh and the logistic sigmoid as Gaussian scale mixtures of erf: their duals in closed form.

The logistic distribution is a scale mixture of normals (Andrews & Mallows 1974): its density
:math:`\tfrac14\mathrm{sech}^2(x/2)` is :math:`E_K[N(x; 0, 4K^2)]` with :math:`K` Kolmogorov
distributed (the supremum of a Brownian bridge). Integrating once,

.. math:: \mathrm{sech}^2 x = E_K\Bigl[\tfrac{2}{K}\,\varphi(x/K)\Bigr], \qquad
          \tanh x = E_K\Bigl[\mathrm{erf}\bigl(x/\sqrt2 K\bigr)\Bigr],

so every Gaussian expectation of tanh is an average of erf's closed forms over :math:`K`
(docs/theory.md, "tanh and the sigmoid as scale mixtures"). With
:math:`D_{ij} = (K_i^2 + q_{11})(K_j^2 + q_{22}) - q_{12}^2
= K_i^2K_j^2 + K_i^2q_{22} + K_j^2q_{11} + (q_{11}q_{22} - q_{12}^2) > 0`,

.. math:: E[\tanh u\,\tanh v] = \frac2\pi\sum_{ij} w_iw_j\arctan\frac{q_{12}}{\sqrt{D_{ij}}},
          \qquad E[\mathrm{sech}^2u\,\mathrm{sech}^2v] = \frac2\pi\sum_{ij}\frac{w_iw_j}{\sqrt{D_{ij}}},

where :math:`(K_i, w_i)` is the trapezoidal rule in :math:`\log K` (:func:`rule`). Its
integrand decays doubly exponentially at both ends, so the rule converges geometrically: with
step :data:`STEP` its 31 nodes reproduce tanh and :math:`\mathrm{sech}^2` to 6e-16 on the whole
real line, and the duals to 5e-16 relative at every variance (tests/test_exactness.py). The sums
hold no cancellation (every term of :math:`D_{ij}` is non-negative; the gap
:math:`q_{11}q_{22} - q_{12}^2` is computed exactly), cost :math:`J^2` = 961 terms per pair
(:func:`direct`), and are differentiable everywhere (:math:`\partial_{q_{12}}` of the first is
the second: Price's theorem holds exactly for the rule).

Expanding the arcsine in powers of :math:`\rho` separates the variances: the same duals as a
Mehler series with closed-form coefficients (:func:`series`, :func:`coefficients`), cheap where
it converges fast; :func:`series_range` gives the variance up to which ``order`` terms meet
:data:`TARGET`. The activations (:mod:`resgp.core.activations`) combine the two per entry. The
sigmoid :math:`\sigma(x) = (1 + \tanh(x/2))/2` is tanh at a quarter of the variances
(:func:`scaled`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from .quadrature import _correlation, power_series
from .x64 import float64

__all__ = ["rule", "kolmogorov_density", "tanh_dual", "tanh_derivative_dual", "series",
           "direct", "coefficients", "relative_tail", "series_range", "STEP", "TARGET"]

STEP = 0.11  # trapezoidal step in log K: nodes reproduce tanh and sech^2 to 5e-16
WEIGHT_FLOOR = 1e-18  # nodes with smaller weight (K < 0.17 or K > 4.7) are dropped
_POWER_BLOCK = 32  # coefficients: powers r^m assembled as r^(32 b) r^j
TARGET = 2e-15  # relative tail at rho = 1 up to which a truncated series is used (series_range)


def kolmogorov_density(k):
    r"""Density of the Kolmogorov distribution at ``k`` > 0 (NumPy, float64).

    Parameters
    ----------
    k : array
        Points, > 0.

    Returns
    -------
    array
        :math:`8k\sum_{n\ge1}(-1)^{n-1}n^2e^{-2n^2k^2}` for :math:`k \ge 1`, and its Jacobi
        theta transform :math:`\sqrt{2\pi}\sum_{n\ge1}e^{-a_n/k^2}(2a_n/k^4 - 1/k^2)`,
        :math:`a_n = (2n-1)^2\pi^2/8`, below (both series converge to round-off in 8 terms).
    """
    k = np.asarray(k, dtype=np.float64)
    small = k < 1.0
    ks, kl = np.where(small, k, 1.0), np.where(small, 1.0, k)
    theta = sum(np.exp(-a / ks**2) * (2.0 * a / ks**4 - 1.0 / ks**2)
                for a in ((2 * n - 1) ** 2 * math.pi**2 / 8.0 for n in range(1, 9)))
    alternating = sum((-1) ** (n - 1) * n * n * np.exp(-2.0 * n * n * kl**2) for n in range(1, 9))
    return np.where(small, math.sqrt(2.0 * math.pi) * theta, 8.0 * kl * alternating)


def rule(step=STEP):
    """Nodes ``K`` (J,) and weights ``w`` (J,) of :math:`E_K[f(K)] \\approx \\sum_i w_i f(K_i)`:
    the trapezoidal rule in :math:`s = \\log K` with the given step (weights
    ``step * density(K) * K``), nodes with weight below :data:`WEIGHT_FLOOR` dropped.

    Parameters
    ----------
    step : float, default=STEP
        Spacing in log K.

    Returns
    -------
    K, w : ndarray
        Nodes and weights (the weights sum to 1 within 4e-16 at the default step).
    """
    s = np.arange(math.floor(-2.5 / step), math.ceil(2.5 / step) + 1) * step
    K = np.exp(s)
    w = step * kolmogorov_density(K) * K
    keep = w > WEIGHT_FLOOR
    return K[keep], w[keep]


_K, _W = rule()
_K2 = _K * _K


def _gap(q11, q22, q12):
    from .activations import gap  # (activations imports this module's duals)
    return gap(q11, q22, q12)


def _pair(q11, q22, q12):
    q11, q22, q12 = (jnp.asarray(x, jnp.float64) for x in (q11, q22, q12))
    return q11, q22, q12, jnp.broadcast_shapes(q11.shape, q22.shape, q12.shape)


def _direct_parts(q11, q22, q12, derivative, partials):
    r"""The double sum of the module docstring (``derivative``: sech^2's) and, with
    ``partials``, its derivatives in q11, q22, q12, in one loop over i (J values per pair in
    memory, not J^2). With :math:`\partial D_{ij}/\partial q_{11} = K_j^2 + q_{22}`,
    :math:`D_{ij} + q_{12}^2 = (K_i^2 + q_{11})(K_j^2 + q_{22})` and Price's theorem
    (:math:`\partial_{q_{12}}` of the dual is the derivative dual)."""
    q11, q22, q12, shape = _pair(q11, q22, q12)
    g = _gap(q11, q22, q12)[..., None]
    k2, w = jnp.asarray(_K2), jnp.asarray(_W)
    a, b, c = q11[..., None], q22[..., None], q12[..., None]
    right = k2 + b  # K_j^2 + q22
    cross = k2 * a + g  # K_j^2 q11 + gap

    def body(i, acc):
        D = k2[i] * right + cross
        r = jax.lax.rsqrt(D)
        if derivative:
            terms = [r]
            if partials:
                r3 = r * r * r
                terms += [-0.5 * right * r3, -0.5 * (k2[i] + a) * r3, c * r3]
        else:
            terms = [jnp.arctan(c * r)]
            if partials:
                terms += [-0.5 * c * r / (k2[i] + a), -0.5 * c * r / right, r]
        return tuple(x + w[i] * jnp.sum(w * t, axis=-1) for x, t in zip(acc, terms))

    zero = jnp.zeros(shape, jnp.float64)
    out = jax.lax.fori_loop(0, _K.size, body, (zero,) * (4 if partials else 1))
    return tuple((2.0 / math.pi) * x for x in out)


def _log_ratio(q):
    """log r_i(q) = log(q / (K_i^2 + q)), (..., J); -1e4 at q = 0 (r^m = 0 for m > 0, and
    no NaN in values or derivatives)."""
    q = jnp.asarray(q, jnp.float64)[..., None]
    safe = jnp.where(q > 0, q, 1.0)
    return jnp.where(q > 0, jnp.log(safe) - jnp.log(jnp.asarray(_K2) + safe), -1e4), safe


@functools.lru_cache(maxsize=None)
def _central(terms):
    """g_m = (2/pi) C(2m, m) / 4^m, m < terms (NumPy, by log-gamma): the coefficients of
    (2/pi) (1 - x^2)^(-1/2); (2/pi) arcsin(x) has g_m / (2m + 1) at x^(2m+1)."""
    m = np.arange(terms)
    log_central = (scipy.special.gammaln(2 * m + 1) - 2.0 * scipy.special.gammaln(m + 1)
                   - 2.0 * m * math.log(2.0))
    return (2.0 / math.pi) * np.exp(log_central)


def moments(q, terms, kind):
    r"""Weighted power sums of the rule at the variances ``q`` (..., terms):
    :math:`\sum_i w_i\,\psi_i(q)\,r_i^m`, :math:`r_i = q/(K_i^2 + q)`, m < ``terms``, with
    :math:`\psi_i = r_i^{1/2}` (``kind`` "S": tanh's series), :math:`(K_i^2 + q)^{-1/2}` ("T":
    sech^2's) or :math:`(K_i^2 + q)^{-3/2}` ("T3": their derivatives). The powers are
    assembled as :math:`r^{Bb}r^j` (m = Bb + j, j < B = 32): B + terms/B exponentials per node,
    and the sum over the nodes is one matrix product per variance."""
    log_r, safe = _log_ratio(q)
    w = jnp.asarray(_W)
    if kind == "S":
        w = w * jnp.exp(0.5 * log_r)
    else:
        w = w * (jax.lax.rsqrt(jnp.asarray(_K2) + safe) ** (1 if kind == "T" else 3))
    B = min(_POWER_BLOCK, terms)
    blocks = -(-terms // B)
    low = jnp.exp(jnp.arange(B, dtype=jnp.float64)[:, None] * log_r[..., None, :])  # (..., B, J)
    high = jnp.exp((B * jnp.arange(blocks, dtype=jnp.float64))[:, None] * log_r[..., None, :])
    c = jnp.einsum("...bj,...ij->...bi", high * w[..., None, :], low)  # (..., blocks, B)
    return c.reshape(c.shape[:-2] + (blocks * B,))[..., :terms]


def _series_parts(q11, q22, q12, terms, derivative, partials):
    """The series of :func:`series` and, with ``partials``, its derivatives in q11, q22, q12
    (docs/theory.md): with S_m, T_m the moments "S", "T" and x = rho^2,

    * dual: rho sum f_m S_m(a) S_m(b) x^m; d/dq12 = sum g_m T_m(a) T_m(b) x^m (Price: the
      derivative series), d/dq11 = rho sum f_m S~_m(a) S_m(b) x^m, S~_m = -(m + 1/2) S_{m+1}/q;
    * derivative dual: sum g_m T_m(a) T_m(b) x^m; d/dq11 = sum g_m T~_m(a) T_m(b) x^m,
      T~_m = -(m + 1/2) T3_m, d/dq12 = (2 rho / sqrt(q11 q22)) sum g_{m+1} (m + 1)
      T_{m+1}(a) T_{m+1}(b) x^m,

    all summed in one loop (:func:`resgp.core.quadrature.power_series` on stacked
    coefficients)."""
    q11, q22, q12, _ = _pair(q11, q22, q12)
    rho = _correlation(q11, q22, q12)
    x = rho * rho
    g = _central(terms + 1)
    m = np.arange(terms)
    half = -(m + 0.5)
    safe = lambda q: jnp.where(q > 0, q, 1.0)[..., None]  # noqa: E731
    if derivative:
        Ta, Tb = (moments(q, terms + 1, "T") for q in (q11, q22))
        root = np.sqrt(g[:terms])
        ca, cb = root * Ta[..., :terms], root * Tb[..., :terms]
        pairs = [(ca, cb)]
        if partials:
            pairs += [(root * half * moments(q11, terms, "T3"), cb),
                      (ca, root * half * moments(q22, terms, "T3"))]
            shifted = np.sqrt(g[1:] * (m + 1))
            pairs.append((shifted * Ta[..., 1:] / jnp.sqrt(safe(q11)),
                          shifted * Tb[..., 1:] / jnp.sqrt(safe(q22))))
        sums = _stacked(pairs, x)
        if not partials:
            return (sums[0],)
        return sums[0], sums[1], sums[2], 2.0 * rho * sums[3]
    Sa, Sb = (moments(q, terms + 1, "S") for q in (q11, q22))
    root = np.sqrt(g[:terms] / (2 * m + 1))
    ca, cb = root * Sa[..., :terms], root * Sb[..., :terms]
    pairs = [(ca, cb)]
    if partials:
        Ta, Tb = (moments(q, terms, "T") for q in (q11, q22))
        pairs += [(root * half * Sa[..., 1:] / safe(q11), cb),
                  (ca, root * half * Sb[..., 1:] / safe(q22)),
                  (np.sqrt(g[:terms]) * Ta, np.sqrt(g[:terms]) * Tb)]
    sums = _stacked(pairs, x)
    if not partials:
        return (rho * sums[0],)
    return rho * sums[0], rho * sums[1], rho * sums[2], sums[3]


def _stacked(pairs, x):
    """power_series of several coefficient pairs (same shapes) in one loop: (len(pairs), ...)."""
    return power_series(jnp.stack([p[0] for p in pairs]), jnp.stack([p[1] for p in pairs]), x)


def _with_partials(parts):
    """A function of (q11, q22, q12) from ``parts(q11, q22, q12, partials)`` whose JVP is
    sum_k partial_k t_k with the partials computed once, in the same loop as the value:
    forward-mode sensitivities (several tangents at once) and reverse mode never
    differentiate through the loop."""

    @jax.custom_jvp
    def value(q11, q22, q12):
        return parts(q11, q22, q12, False)[0]

    @value.defjvp
    def _jvp(primals, tangents):
        out, p11, p22, p12 = parts(*primals, True)
        t11, t22, t12 = tangents
        return out, p11 * t11 + p22 * t22 + p12 * t12

    return value


@functools.lru_cache(maxsize=None)
def series(order, derivative):
    """The Mehler series of tanh's dual (``derivative``: of sech^2's) truncated below degree
    ``order`` in rho: odd (even) powers, Horner's rule in rho^2 over ``order // 2`` terms,
    coefficients in closed form (:func:`moments`), derivatives from the same loop."""
    terms = order // 2
    return _with_partials(lambda a, b, c, partials: _series_parts(a, b, c, terms, derivative,
                                                                  partials))


@functools.lru_cache(maxsize=None)
def direct(derivative):
    """The double sum of the module docstring (``derivative``: sech^2's), any variance,
    derivatives from the same loop."""
    return _with_partials(lambda a, b, c, partials: _direct_parts(a, b, c, derivative, partials))


@functools.lru_cache(maxsize=None)
def variance_duals(order):
    r"""q -> (E[tanh(u)^2], E[sech^4(u)]), u ~ N(0, q), without a loop: the series of
    ``order`` terms at rho = 1 (a dot product of the coefficients) up to its range, and beyond
    it single sums over the rule: :math:`E\,\mathrm{sech}^2u = S(q) =
    \sqrt{2/\pi}\sum_i w_i(K_i^2 + q)^{-1/2}`, :math:`E\tanh^2u = 1 - S(q)` and
    :math:`E\,\mathrm{sech}^4u = (2S(q) - S'(q))/3` (from :math:`(\mathrm{sech}^2)'' =
    4\,\mathrm{sech}^2 - 6\,\mathrm{sech}^4` and the heat equation :math:`\partial_q E f(u) =
    \tfrac12 E f''(u)`; no cancellation where S <= 0.6)."""
    terms, top = order // 2, series_range(order)

    def value(q):
        q = jnp.asarray(q, jnp.float64)
        inside = q <= top
        qs = jnp.where(inside, q, top)
        square = jnp.sum(coefficients(qs, terms, False) ** 2, axis=-1)
        d_square = jnp.sum(coefficients(qs, terms, True) ** 2, axis=-1)
        a = jnp.asarray(_K2) + jnp.where(inside, top, q)[..., None]
        w = jnp.asarray(_W) * math.sqrt(2.0 / math.pi)
        S = jnp.sum(w * jax.lax.rsqrt(a), axis=-1)
        S_q = -0.5 * jnp.sum(w * jax.lax.rsqrt(a) / a, axis=-1)
        return (jnp.where(inside, square, 1.0 - S),
                jnp.where(inside, d_square, (2.0 * S - S_q) / 3.0))

    return value


def coefficients(q, terms, derivative):
    r"""The series' per-variance coefficients (..., terms):
    :math:`\sqrt{f_m}S_m(q)` (dual) or :math:`\sqrt{g_m}T_m(q)` (derivative dual), with
    :math:`g_m` of :func:`_central` and :math:`f_m = g_m/(2m + 1)` (docs/theory.md)."""
    m = np.arange(terms)
    g = _central(terms)
    factor = np.sqrt(g if derivative else g / (2 * m + 1))
    return factor * moments(q, terms, "T" if derivative else "S")


def relative_tail(q, order, derivative, extent=8):
    """The relative tail of the series at rho = 1 (its worst case: every term is positive
    there), sum_{order/2 <= m < extent order/2} c_m^2 / sum_{m < extent order/2} c_m^2, at the
    variances ``q`` (NumPy, float64; terms decay geometrically, so the terms beyond are
    negligible, and nothing cancels)."""
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))[:, None]
    a = _K2[None, :] + q  # (n, J)
    terms = extent * (order // 2)
    m = np.arange(terms)[:, None]
    w = _W / np.sqrt(a) if derivative else np.broadcast_to(_W, a.shape)
    c = np.einsum("nmj,nj->nm", (q / a)[:, None, :] ** (m + (0.0 if derivative else 0.5))[None], w)
    squares = c * c * (_central(terms) / (1.0 if derivative else 2 * np.arange(terms) + 1))
    return np.sum(squares[:, order // 2:], axis=-1) / np.sum(squares, axis=-1)


@functools.lru_cache(maxsize=None)
def series_range(order, target=TARGET):
    """The largest variance q on the grid 2^(k/8) (1e-4 to 1e4) at which the relative tail of
    both series of ``order`` is at most ``target`` (:func:`relative_tail`; the tail grows
    with q, so a bisection over the grid finds it); 0.0 when it fails at 1e-4."""
    grid = 2.0 ** (np.arange(math.floor(8 * math.log2(1e-4)), math.ceil(8 * math.log2(1e4)) + 1)
                   / 8.0)

    def ok(i):
        return all(relative_tail(grid[i], order, d)[0] <= target for d in (False, True))

    if not ok(0):
        return 0.0
    lo, hi = 0, grid.size  # ok(lo); hi: the first failure (or past the end)
    if ok(grid.size - 1):
        return float(grid[-1])
    hi = grid.size - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return float(grid[lo])


# the sigmoid sigma(x) = (1 + tanh(x/2)) / 2: E[sigma sigma] = 1/4 + E[tanh tanh](q/4) / 4,
# E[sigma' sigma'] = E[sech^2 sech^2](q/4) / 16
KINDS = {"tanh": (0.0, 1.0, 1.0, 1.0), "sigmoid": (0.25, 0.25, 1.0 / 16.0, 0.25)}


def scaled(kind, tanh_fn, derivative):
    """``tanh_fn`` (a dual of tanh) as the dual of ``kind``: shift + scale * tanh_fn(s q)."""
    shift, scale, d_scale, s = KINDS[kind]
    if kind == "tanh":
        return tanh_fn
    if derivative:
        return lambda q11, q22, q12: d_scale * tanh_fn(s * q11, s * q22, s * q12)
    return lambda q11, q22, q12: shift + scale * tanh_fn(s * q11, s * q22, s * q12)


def scaled_variance_duals(kind, order):
    """:func:`variance_duals` of ``kind`` (the sigmoid: tanh's at a quarter of the variance)."""
    shift, scale, d_scale, s = KINDS[kind]
    duals = variance_duals(order)
    if kind == "tanh":
        return duals

    def value(q):
        v, d = duals(s * jnp.asarray(q, jnp.float64))
        return shift + scale * v, d_scale * d

    return value


def variance_scale(kind):
    """The factor from tanh's variances to ``kind``'s (4 for the sigmoid)."""
    return 1.0 / KINDS[kind][3]


def tanh_dual(q11, q22, q12):
    r""":math:`E[\tanh u\,\tanh v]` by the double sum of the module docstring,
    :math:`\frac2\pi\sum_{ij}w_iw_j\arctan(q_{12}/\sqrt{D_{ij}})`, at any variance.

    {dual parameters}

    Returns
    -------
    array
        The expectation, elementwise, in [-1, 1].
    """
    return direct(False)(q11, q22, q12)


def tanh_derivative_dual(q11, q22, q12):
    r""":math:`E[\mathrm{sech}^2u\,\mathrm{sech}^2v] = \frac2\pi\sum_{ij}w_iw_j/\sqrt{D_{ij}}`,
    at any variance.

    {dual parameters}

    Returns
    -------
    array
        The expectation, elementwise, in (0, 1].
    """
    return direct(True)(q11, q22, q12)
