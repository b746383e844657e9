r"""Chebyshev tools of the tabulated flow maps (docs/theory.md, "The tabulated flow map").

Lobatto nodes, coefficients from values (DCT-I), the basis and its derivative at points, the
node-count prediction from the coefficients' decay, and the series in :math:`\rho` evaluated
per pair by Clenshaw's recurrence.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft

__all__ = ["lobatto", "coefficients", "basis", "needed", "level", "clenshaw"]


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


def clenshaw(rho, A, B, parity):
    """sum_i T_{k_i}(rho) (A[i]^T B[i]) per pair, by Clenshaw's recurrence over the degree
    slots i of ``A`` (D, R, N) and ``B`` (D, R, M) (the terms of degree k_i, zero-padded to R;
    ``rho`` (N, M)). ``parity`` None: degrees k_i = i; 0 or 1: only even or odd degrees,
    k_i = 2i + parity, summed in y = T_2(rho) (T_{k+2} = 2y T_k - T_{k-2}, so the degrees of
    one parity obey the Chebyshev recurrence in y from s_0 = T_parity, s_1 = T_{parity+2}):
    half the steps for odd or even tables. One matrix product per degree slot."""
    D = A.shape[0]
    if parity is None:
        x, s0, s1 = rho, 1.0, rho
    else:
        x = 2.0 * rho * rho - 1.0
        s0, s1 = (1.0, x) if parity == 0 else (rho, rho * (2.0 * x - 1.0))

    def term(i):
        a = jax.lax.dynamic_index_in_dim(A, i, 0, False)
        b = jax.lax.dynamic_index_in_dim(B, i, 0, False)
        return a.T @ b

    def body(j, carry):  # b_i = c_i + 2 x b_{i+1} - b_{i+2}, i = D - 1 .. 1
        b1, b2 = carry
        return term(D - 1 - j) + 2.0 * x * b1 - b2, b1

    zero = jnp.zeros_like(rho)
    b1, b2 = jax.lax.fori_loop(0, D - 1, body, (zero, zero))
    return s0 * (term(0) - b2) + s1 * b1
