r"""Chebyshev tools of the tabulated flow maps (docs/theory.md, "The tabulated flow map").

Lobatto nodes, coefficients from values (DCT-I), the basis and its derivative at points, the
node-count prediction from the coefficients' decay, and the series in :math:`\rho` evaluated
per pair: Clenshaw's recurrence for values, the :math:`U`-recurrence for the derivative
(:math:`T_k' = k\,U_{k-1}`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import scipy.fft

__all__ = ["lobatto", "coefficients", "basis", "needed", "level", "series", "series_derivative"]


def lobatto(n):
    """The n Chebyshev-Lobatto nodes cos(pi j / (n - 1)) in [-1, 1] (0 alone for n = 1)."""
    return np.cos(np.pi * np.arange(n) / (n - 1)) if n > 1 else np.zeros(1)


def coefficients(values, axis):
    """Chebyshev coefficients from values at the Lobatto nodes along ``axis`` (DCT-I)."""
    n = values.shape[axis]
    if n == 1:
        return values.copy()
    c = scipy.fft.dct(values, type=1, axis=axis) / (n - 1)
    idx = [slice(None)] * values.ndim
    for end in (0, n - 1):
        idx[axis] = end
        c[tuple(idx)] *= 0.5
    return c


def basis(x, n, derivative=False):
    """T_0..T_{n-1} at x clipped to [-1, 1], array (len(x), n); their derivatives with
    ``derivative=True`` (T_k' by the recurrence T_{k+1}' = 2 T_k + 2 x T_k' - T_{k-1}')."""
    x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1), -1.0, 1.0)
    t = np.empty((x.size, n))
    d = np.zeros((x.size, n))
    t[:, 0] = 1.0
    if n > 1:
        t[:, 1] = x
        d[:, 1] = 1.0
    for i in range(2, n):
        t[:, i] = 2.0 * x * t[:, i - 1] - t[:, i - 2]
        d[:, i] = 2.0 * t[:, i - 1] + 2.0 * x * d[:, i - 1] - d[:, i - 2]
    return d if derivative else t


def needed(envelope, target):
    """Predicted node count so that the coefficients beyond it are below ``target``.

    ``envelope[i]``: max |coefficient| of degree i (over the other axes). Converged: the last
    degree above target plus 3. Not converged: extrapolate the geometric decay fitted to the
    second half of the degrees above the rounding floor.
    """
    env = np.maximum(envelope, np.concatenate([envelope[1:], [0.0]]))  # odd/even parity gaps
    above = np.nonzero(env > target)[0]
    n = env.size
    if above.size == 0:
        return 1
    last = int(above[-1])
    if last < n - 2:
        return last + 3
    floor = 1e-15 * env.max()
    idx = np.nonzero(env > floor)[0]
    idx = idx[idx >= idx.max() // 2]
    if idx.size < 3:
        return 2 * n
    slope, icpt = np.polyfit(idx, np.log(env[idx]), 1)
    if slope >= -1e-3:
        return 10 * n
    return int(math.ceil((math.log(target) - icpt) / slope)) + 3


def level(levels, n):
    """Index of the smallest allowed node count >= n (len(levels) when above the cap)."""
    for i, m in enumerate(levels):
        if m >= n:
            return i
    return len(levels)


def _degree_terms(A, B, offsets, k):
    g = None
    for j in range(offsets[k], offsets[k + 1]):
        term = A[j][:, None] * B[j][None, :]
        g = term if g is None else g + term
    return g


def series(rho, A, B, structure):
    """sum_k T_k(rho) sum_{r in degree k} A[r, a] B[r, b], written elementwise so XLA fuses it.

    Even and odd degrees are summed separately by Clenshaw's recurrence in y = T_2(rho)
    (T_{2m}(rho) = T_m(y); T_{2m+1} obeys the same recurrence in m, from T_1 = rho,
    T_3 = rho (2y - 1)): half the steps when the table has a parity (odd activations).
    """
    offsets = np.concatenate([[0], np.cumsum(structure)]).astype(int)
    y = 2.0 * rho * rho - 1.0
    two_y = 2.0 * y
    total = None
    for parity in (0, 1):
        ks = [k for k in range(parity, len(structure), 2) if structure[k] > 0]
        if not ks:
            continue
        b1 = b2 = None  # b_{m+1}, b_{m+2}
        for m in range(max(ks) // 2, 0, -1):
            g = _degree_terms(A, B, offsets, 2 * m + parity) if structure[2 * m + parity] else None
            nb = None
            if b1 is not None:
                nb = two_y * b1 if b2 is None else two_y * b1 - b2
            nb = g if nb is None else (nb if g is None else nb + g)
            b1, b2 = nb, b1
        part = _degree_terms(A, B, offsets, parity) if structure[parity] else None
        first = y if parity == 0 else two_y - 1.0
        if b1 is not None:
            part = first * b1 if part is None else first * b1 + part
        if b2 is not None:
            part = -b2 if part is None else part - b2
        if part is None:
            continue
        part = part if parity == 0 else rho * part
        total = part if total is None else total + part
    return jnp.zeros_like(rho) if total is None else total


def series_derivative(rho, A, B, structure):
    """d/d rho of :func:`series`: sum_k k U_{k-1}(rho) g_k (forward U-recurrence)."""
    offsets = np.concatenate([[0], np.cumsum(structure)]).astype(int)
    total = jnp.zeros_like(rho)
    u_prev, u = jnp.zeros_like(rho), jnp.ones_like(rho)  # U_{-1}, U_0
    for k in range(1, len(structure)):
        if structure[k]:
            total = total + k * u * _degree_terms(A, B, offsets, k)
        u_prev, u = u, 2.0 * rho * u - u_prev
    return total
