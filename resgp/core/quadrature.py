r"""Gaussian expectations :math:`E[f(u)\,g(v)]` of activations without a closed form.

Two rules (docs/theory.md, "Other activations"), with :math:`(u, v)` centred Gaussian of
covariance :math:`[[q_{11}, q_{12}], [q_{12}, q_{22}]]` and :math:`\rho = q_{12}/\sqrt{q_{11}q_{22}}`:

* :func:`mehler`: the truncated Mehler series :math:`\sum_{k<K} c_k(q_{11}) c_k(q_{22}) \rho^k`,
  :math:`c_k(q) = E[f(\sqrt q\,x) h_k(x)]` by Gauss-Hermite quadrature with 2K nodes. A pair
  costs K multiply-adds. Its error is the tail :math:`\sum_{k\ge K} c_k^2`, which grows with the
  variance (:math:`f(\sqrt q\,x)` gets steeper): :func:`mehler_tail` measures it, and
  :func:`mehler_range` finds the largest variance where K terms meet a target.
* :func:`graded`: a product rule in conditional coordinates :math:`u = \sqrt{q_{11}}\,x`,
  :math:`v = \sqrt{q_{22}}\,(\cos\theta\,x + \sin\theta\,y)`, composite Gauss-Legendre in
  :math:`x` and in :math:`y` on :math:`[-L, L]` with panels graded geometrically towards the
  activations' transition (:math:`u = 0`: :math:`x = 0`; :math:`v = 0`:
  :math:`y = -x\cot\theta`) down to a width of a quarter of the activation's unit in these
  coordinates. Accurate at every variance and every correlation (:math:`\theta = 0, \pi` are
  the 1-D limits), at ``(2 P n)^2`` function values per pair.

:func:`dual` combines them per entry: Mehler where both variances are at most the activation's
``mehler_max`` (the largest variance at which the Mehler tail meets the target), the graded rule
elsewhere. An entry's value depends only on its own covariances, never on the rest of the batch.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from .x64 import float64

__all__ = ["hermite_rule", "mehler", "mehler_tail", "mehler_range", "graded", "dual", "per_entry",
           "gaussian_square", "DEFAULT_ORDER", "LIMIT", "PANELS", "NODES"]

DEFAULT_ORDER = 256
LIMIT = 8.5  # standard-normal mass beyond: 2e-17
PANELS = 10  # graded panels per side on [0, NEAR]
NODES = 10  # Gauss-Legendre nodes per panel
NEAR = 1.0  # graded region around a transition, in standard-normal units
FAR_WIDTH = 1.0  # the widest panel beyond (the Gaussian's own scale)
X_BLOCK = 40  # outer nodes evaluated together (the outer rule has a multiple of 40 nodes)


# ----------------------------------------------------------------------------- Mehler


@functools.lru_cache(maxsize=None)
def hermite_rule(order: int):
    """Nodes x (n,) and the matrix W (n, order) with W[j, k] = w_j h_k(x_j), n = 2 * order.

    Gauss-Hermite for the standard normal (weights sum to 1); h_k = He_k / sqrt(k!), carried as
    sqrt(w_j) h_k(x_j) by the stable three-term recurrence (no overflow at any order).
    """
    x, w = scipy.special.roots_hermitenorm(2 * order)
    w = w / math.sqrt(2.0 * math.pi)
    root = np.sqrt(w)
    h = np.zeros((x.size, order))
    h[:, 0] = root
    if order > 1:
        h[:, 1] = x * root
    for k in range(1, order - 1):
        h[:, k + 1] = (x * h[:, k] - math.sqrt(k) * h[:, k - 1]) / math.sqrt(k + 1)
    return x, root[:, None] * h


@jax.custom_jvp
def clip_unit(rho):
    """rho clipped to [-1, 1] whose derivative is 1 everywhere: at |rho| = 1 (every diagonal
    pair, and rounding just beyond it) perturbations that move rho inside are seen."""
    return jnp.clip(rho, -1.0, 1.0)


@clip_unit.defjvp
def _clip_unit_jvp(primals, tangents):
    return clip_unit(primals[0]), tangents[0]


def _correlation(q11, q22, q12):
    """q12 / sqrt(q11 q22) clipped to [-1, 1]; 0 where a variance is 0, with finite
    derivatives there (no sqrt of 0 is differentiated)."""
    both = (q11 > 0) & (q22 > 0)
    scale = jnp.sqrt(jnp.where(both, q11, 1.0)) * jnp.sqrt(jnp.where(both, q22, 1.0))
    return jnp.where(both, clip_unit(q12 / scale), 0.0)


BLOCK = 32  # powers per block of power_series
BLOCKED_BELOW = 65536  # outputs with fewer entries take the blocked form of power_series


def power_series(c1, c2, x):
    """sum_k c1[..., k] c2[..., k] x^k for broadcastable ``c1``, ``c2`` (..., K) and ``x``
    (...) by Horner's rule, highest power first. Outputs with fewer than BLOCKED_BELOW entries
    (a table's grid, a few pairs) run it over blocks of BLOCK powers, each block summed from
    the powers x^0..x^(BLOCK-1) (computed once): K / BLOCK loop steps instead of K, whose
    fixed cost dominates small arrays; larger ones loop over single powers (K multiply-adds per
    entry, no (..., BLOCK) temporaries)."""
    K = c1.shape[-1]
    shape = jnp.broadcast_shapes(c1.shape[:-1], c2.shape[:-1], jnp.shape(x))
    if math.prod(shape) >= BLOCKED_BELOW:
        def term(k, acc):
            k = K - 1 - k
            return acc * x + jax.lax.dynamic_index_in_dim(c1, k, -1, False) * \
                jax.lax.dynamic_index_in_dim(c2, k, -1, False)

        return jax.lax.fori_loop(0, K, term, jnp.zeros(shape, c1.dtype), unroll=8)
    pad = (-K) % BLOCK  # zero coefficients on top leave the sum unchanged
    if pad:
        c1, c2 = (jnp.concatenate([c, jnp.zeros(c.shape[:-1] + (pad,), c.dtype)], axis=-1)
                  for c in (c1, c2))
    x = jnp.broadcast_to(x, shape)
    powers = jnp.concatenate([jnp.ones(shape + (1,), x.dtype), jnp.cumprod(
        jnp.broadcast_to(x[..., None], shape + (BLOCK - 1,)), axis=-1)], axis=-1)
    step = powers[..., -1] * x  # x^BLOCK
    blocks = (K + pad) // BLOCK

    def body(i, acc):  # highest block first
        start = (blocks - 1 - i) * BLOCK
        a = jax.lax.dynamic_slice_in_dim(c1, start, BLOCK, -1)
        b = jax.lax.dynamic_slice_in_dim(c2, start, BLOCK, -1)
        return acc * step + jnp.sum(a * b * powers, axis=-1)

    return jax.lax.fori_loop(0, blocks, body, jnp.zeros(shape, x.dtype))


def mehler(fa, fb, order):
    """E[fa(u) fb(v)] as the Mehler series with ``order`` terms (module docstring)."""
    x, W = hermite_rule(order)

    def coefficients(f, q):
        q = jnp.asarray(q)
        return f(jnp.sqrt(q)[..., None] * jnp.asarray(x)) @ jnp.asarray(W)  # (..., order)

    def value(q11, q22, q12):
        c1, c2 = coefficients(fa, q11), coefficients(fb, q22)
        return power_series(c1, c2, _correlation(q11, q22, q12))

    return value


def mehler_tail(f, q, order):
    """Relative Mehler tail (E[f^2] - sum_{k<order} c_k^2) / E[f^2] at the variances ``q``
    (NumPy, float64): E[f^2] by the graded 1-D rule, c_k by the rule of :func:`mehler`."""
    x, W = hermite_rule(order)
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    with float64():
        values = np.asarray(jax.vmap(lambda s: f(s * jnp.asarray(x)))(jnp.sqrt(jnp.asarray(q))))
        total = np.asarray(jax.jit(gaussian_square(f, f))(jnp.asarray(q)))
    c = values @ W
    tail = np.abs(total - np.sum(c * c, axis=-1))
    return np.where(total > 0, tail / np.where(total > 0, total, 1.0), 0.0)


def mehler_range(functions, order, target, q_max=1e8):
    """The largest variance q (on the grid 2^(k/8), from 1e-4 up to ``q_max``) such that the
    relative Mehler tail of every function is <= ``target`` at every grid variance up to q;
    0.0 when it fails already at 1e-4."""
    grid = 2.0 ** (np.arange(math.floor(8 * math.log2(1e-4)), math.ceil(8 * math.log2(q_max)) + 1)
                   / 8.0)
    ok = np.ones(grid.size, bool)
    for f in functions:
        ok &= mehler_tail(f, grid, order) <= target
    if not ok[0]:
        return 0.0
    bad = np.flatnonzero(~ok)
    return float(grid[-1] if bad.size == 0 else grid[bad[0] - 1])


# ----------------------------------------------------------------------------- graded rule


@functools.lru_cache(maxsize=None)
def _legendre(panels, nodes):
    """Composite Gauss-Legendre on t in [0, 1]: ``panels`` equal panels of ``nodes`` nodes."""
    t, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.arange(panels) / panels
    ts = (edges[:, None] + (t[None, :] + 1.0) / (2.0 * panels)).reshape(-1)
    ws = np.tile(w / (2.0 * panels), panels)
    return ts, ws


def _grading(width, extent, panels):
    """alpha of the map z(t) = extent * sinh(alpha t) / sinh(alpha) whose first panel
    (t < 1/P) is about ``width`` wide (alpha = 0, uniform panels, when ``width`` >= extent / P):
    two fixed-point steps of alpha = log(2 alpha extent / (P width))."""
    r = jnp.maximum(extent / (panels * jnp.maximum(width, 1e-300)), 1.0)
    alpha = jnp.log(r)
    for _ in range(2):
        alpha = jnp.where(r > 1.0, jnp.log(jnp.maximum(2.0 * alpha * r, 1.0)), 0.0)
    return alpha


def _map(t, alpha, extent):
    """z = extent * sinh(alpha t) / sinh(alpha) and dz/dt, for t in [0, 1] (alpha >= 0)."""
    small = alpha < 1e-8
    a = jnp.where(small, 1.0, alpha)
    # sinh(a t)/sinh(a) = exp(a (t - 1)) (1 - exp(-2 a t)) / (1 - exp(-2 a)): no overflow
    den = -jnp.expm1(-2.0 * a)
    z = jnp.exp(a * (t - 1.0)) * -jnp.expm1(-2.0 * a * t) / den
    dz = a * jnp.exp(a * (t - 1.0)) * (1.0 + jnp.exp(-2.0 * a * t)) / den
    return extent * jnp.where(small, t, z), extent * jnp.where(small, 1.0, dz)


def _offsets(width, extent, refine=1):
    """Offsets (..., m) from a centre, symmetric, and their Gauss-Legendre weights: ``PANELS``
    panels graded geometrically on [0, NEAR] down to about ``width`` at the centre, then
    panels of at most ``FAR_WIDTH`` up to ``extent`` (the Gaussian's own scale). Node
    placement carries no derivative (the rule is fixed; its integrand is differentiated)."""
    width = jax.lax.stop_gradient(width)
    t, w = _legendre(PANELS * refine, NODES)
    z, dz = _map(jnp.asarray(t), _grading(width, NEAR, PANELS * refine)[..., None], NEAR)
    far = int(math.ceil((extent - NEAR) / FAR_WIDTH)) * refine
    tf, wf = _legendre(far, NODES)
    zf = NEAR + (extent - NEAR) * jnp.asarray(tf)
    wf = (extent - NEAR) * jnp.asarray(wf)
    z = jnp.concatenate([z, jnp.broadcast_to(zf, z.shape[:-1] + zf.shape)], axis=-1)
    dz = jnp.concatenate([w * dz, jnp.broadcast_to(wf, dz.shape[:-1] + wf.shape)], axis=-1)
    return jnp.concatenate([z, -z], axis=-1), jnp.concatenate([dz, dz], axis=-1)


_NORMAL = 1.0 / math.sqrt(2.0 * math.pi)


def graded(fa, fb, refine=1):
    """E[fa(u) fb(v)] by the graded conditional product rule (module docstring); ``refine``
    multiplies the panels (an error estimate compares refine=1 with refine=2)."""

    def value(q11, q22, q12):
        shape = jnp.broadcast_shapes(jnp.shape(q11), jnp.shape(q22), jnp.shape(q12))
        q11, q22, q12 = (jnp.broadcast_to(jnp.asarray(a, jnp.float64), shape)
                         for a in (q11, q22, q12))
        s1, s2 = jnp.sqrt(q11), jnp.sqrt(q22)
        cos = _correlation(q11, q22, q12)
        sin = jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0))
        x, wx = _offsets(0.25 / jnp.maximum(s1, 1e-300), LIMIT, refine)
        ax = wx * _NORMAL * jnp.exp(-0.5 * x * x) * fa(s1[..., None] * x)  # (..., nx)
        # inner nodes: offsets from the transition y* = -x cot(theta), reaching [-L, L] from
        # any y* in [-L, L] (nodes beyond carry Gaussian weights below 1e-17)
        y, wy = _offsets(0.25 / jnp.maximum(s2 * sin, 1e-300), 2.0 * LIMIT, refine)
        safe_sin = jnp.where(sin > 0, sin, 1.0)

        nx = x.shape[-1]
        xb = x.reshape(x.shape[:-1] + (nx // X_BLOCK, X_BLOCK))
        ab = ax.reshape(xb.shape)

        def outer(i, acc):  # X_BLOCK outer nodes at once: (..., X_BLOCK, ny) values
            xi = jax.lax.dynamic_index_in_dim(xb, i, -2, False)
            center = jnp.where(sin[..., None] > 0,
                               jnp.clip(-xi * (cos / safe_sin)[..., None], -LIMIT, LIMIT), 0.0)
            yc = jax.lax.stop_gradient(center)[..., None] + y[..., None, :]
            v = (s2 * cos)[..., None, None] * xi[..., None] + (s2 * sin)[..., None, None] * yc
            inner = jnp.sum(wy[..., None, :] * _NORMAL * jnp.exp(-0.5 * yc * yc) * fb(v), axis=-1)
            return acc + jnp.sum(jax.lax.dynamic_index_in_dim(ab, i, -2, False) * inner, axis=-1)

        return jax.lax.fori_loop(0, nx // X_BLOCK, outer, jnp.zeros(shape))

    return value


def gaussian_square(fa, fb, refine=1):
    """E[fa(u) fb(u)], u ~ N(0, q): the 1-D graded rule (the pairs rho = 1 at a variance)."""

    def value(q):
        q = jnp.asarray(q, jnp.float64)
        s = jnp.sqrt(q)
        x, wx = _offsets(0.25 / jnp.maximum(s, 1e-300), LIMIT, refine)
        u = s[..., None] * x
        return jnp.sum(wx * _NORMAL * jnp.exp(-0.5 * x * x) * fa(u) * fb(u), axis=-1)

    return value


def per_entry(series, rule, mehler_max):
    """Per entry: ``series`` where max(q11, q22) <= ``mehler_max``, ``rule`` elsewhere (the
    rule is only run when some entry needs it: a ``lax.cond`` on the batch)."""

    def value(q11, q22, q12):
        m = series(q11, q22, q12)
        if mehler_max == math.inf:
            return m
        big = jnp.broadcast_to(jnp.maximum(q11, q22) > mehler_max, jnp.shape(m))
        return jax.lax.cond(jnp.any(big), lambda: jnp.where(big, rule(q11, q22, q12), m),
                            lambda: m)

    return value


def dual(fa, fb, order, mehler_max):
    """Per entry: :func:`mehler` with ``order`` terms where max(q11, q22) <= ``mehler_max``,
    :func:`graded` elsewhere (:func:`per_entry`)."""
    return per_entry(mehler(fa, fb, order), graded(fa, fb), mehler_max)
