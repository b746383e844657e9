r"""Infinite depth, the variances alone: :math:`\dot q = v(q, q, q)` for many inputs at once.

:func:`diagonal` integrates every variance with :func:`resgp.core.limit.diagonal_flow`, or, for
many positive variances, solves the 1-D flow map :math:`\log q_0 \mapsto q_T` at
Chebyshev-Lobatto nodes and interpolates it (error-checked by the trailing coefficients; the
Gauss-Hermite duals of tanh and callables make a solve per variance costly). With
``sensitivity=True`` it also returns :math:`dq_T/dq_0` (and :math:`d\Theta_T/dq_0` with
:math:`\Theta_0 = q_0`), the diagonal's share of the hyperparameter gradients.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import chebyshev, limit, ode
from .tiling import bucket
from .x64 import float64

__all__ = ["diagonal", "NODES"]

NODES = 32  # first Chebyshev grid of the 1-D flow map; doubled up to 8 times that


@partial(jax.jit, static_argnames=("act", "ntk", "rtol", "atol"))
def _solve(q, T, *, act, ntk, rtol, atol):
    tangents = (jnp.ones((1,) + q.shape), jnp.ones((1,) + q.shape) if ntk else jnp.zeros((1,) + q.shape))
    y, S, info = limit.diagonal_flow(act, T, q, q if ntk else None, rtol=rtol, atol=atol,
                                     tangents=tangents)
    return y, (S[0][0], S[1][0]), info


def _solve_host(q, T, act, ntk, rtol, atol, theta=None):
    with float64():
        if theta is not None:  # a general NTK start: integrate each variance
            y, _, info = jax.jit(partial(limit.diagonal_flow, act, rtol=rtol, atol=atol))(
                T, jnp.asarray(q), jnp.asarray(theta))
            limit.host_status(info, f"the diagonal flow of activation {act.name!r}")
            return (np.asarray(y[0]), np.asarray(y[1])), None
        padded = np.ones(bucket(q.size))  # a few compiled shapes; each entry its own scale
        padded[: q.size] = q
        y, S, info = _solve(jnp.asarray(padded), jnp.float64(T), act=act, ntk=ntk, rtol=rtol,
                            atol=atol)
        limit.host_status(info, f"the diagonal flow of activation {act.name!r}")
        cut = lambda x: np.asarray(x)[: q.size]  # noqa: E731
        return (cut(y[0]), cut(y[1])), (cut(S[0]), cut(S[1]))


def diagonal(activation, T, q, *, ntk=False, theta=None, rtol=ode.RTOL, atol=ode.ATOL,
             sensitivity=False):
    """q_T (and Theta_T) of the variances ``q`` (N,); NumPy float64.

    Parameters
    ----------
    activation : Activation
    T : float
        Depth time >= 0.
    q : ndarray (N,)
        Variances at t = 0.
    ntk : bool
        Also the NTK's diagonal (from Theta_0 = q_0 unless ``theta`` is given).
    theta : ndarray (N,) or None
        A general NTK start (then integrated variance by variance, no sensitivity).
    rtol, atol : float
        Tolerances (``atol`` relative to each variance).
    sensitivity : bool
        Also return (dq_T/dq_0, dTheta_T/dq_0).

    Returns
    -------
    (q_T, Theta_T or None) and, with ``sensitivity``, a second pair.
    """
    q = np.asarray(q, dtype=np.float64)
    if theta is not None and not np.array_equal(theta, q):
        values, _ = _solve_host(q, T, activation, True, rtol, atol, theta=theta)
        return values if not sensitivity else (values, None)
    out = None
    if q.size > 2 * NODES and T > 0 and np.all(q > 0) and np.all(np.isfinite(q)):
        out = _interpolated(q, T, activation, ntk, rtol, atol)
    if out is None:
        out = _solve_host(q, T, activation, ntk, rtol, atol)
    (qT, thT), (S, S_th) = out
    values = (qT, thT if ntk else None)
    return (values, (S, S_th if ntk else None)) if sensitivity else values


def _interpolated(q, T, act, ntk, rtol, atol):
    """The 1-D flow map in s = log q on [log min q, log max q], accepted when the last
    coefficients of every output fall below max(rtol, atol) * max|output|; None when
    8 * NODES nodes do not suffice."""
    tol = max(rtol, atol)
    lo, hi = np.log(q.min()), np.log(q.max())
    x = (2.0 * np.log(q) - (lo + hi)) / max(hi - lo, 1e-300)
    nodes = NODES
    while nodes <= 8 * NODES:
        t = chebyshev.lobatto(nodes + 1)
        qn = np.exp(0.5 * (lo + hi) + 0.5 * (hi - lo) * t)
        (yq, yt), (sq, st) = _solve_host(qn, T, act, ntk, max(tol / 100, 1e-14),
                                         max(tol / 100, 1e-14))
        values = [yq, sq] + ([yt, st] if ntk else [])
        series = [np.polynomial.chebyshev.Chebyshev.fit(t, v, nodes) for v in values]
        if all(np.abs(c.coef[-3:]).max() <= tol * np.abs(v).max()
               for c, v in zip(series, values)):
            out = [c(x) for c in series]
            if ntk:
                return (out[0], out[2]), (out[1], out[3])
            return (out[0], None), (out[1], None)
        nodes *= 2
    return None
