r"""Infinite depth, the variances alone: :math:`\dot q = v(q, q, q)` for many inputs at once.

:func:`diagonal` solves the 1-D flow map :math:`\log q_0 \mapsto q_T` on fixed panels of
:math:`\log q_0` (those of :mod:`resgp.core.flow_table`) at Chebyshev-Lobatto nodes and
interpolates it (error-checked by the trailing coefficients; cached per panel): a variance's
value depends on its own panel only, never on the rest of the batch. Zero variances (and a
general NTK start) are integrated directly with :func:`resgp.core.limit.diagonal_flow`. With
``sensitivity=True`` it also returns :math:`dq_T/dq_0` (and :math:`d\Theta_T/dq_0` with
:math:`\Theta_0 = q_0`), the diagonal's share of the hyperparameter gradients.
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from . import chebyshev, limit, ode
from .tiling import bucket
from .x64 import float64

__all__ = ["diagonal", "NODES"]

NODES = 16  # first Chebyshev grid of a panel's 1-D flow map; doubled up to 8 times that


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
        padded = np.full(bucket(q.size), q[0] if q.size else 1.0)  # a few compiled shapes;
        # each entry its own scale; the padding repeats a real variance (one that reaches T)
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
    if T > 0 and q.size and np.all(q > 0) and np.all(np.isfinite(q)):
        out = [np.empty_like(q) for _ in range(4)]
        panels = np.floor(np.log(q) / PANEL_WIDTH).astype(np.int64)
        for k in np.unique(panels):
            idx = np.flatnonzero(panels == k)
            series = _panel(activation, float(T), bool(ntk), max(rtol, atol), int(k))
            if series is None:
                break
            x = (2.0 * np.log(q[idx]) - (2 * k + 1) * PANEL_WIDTH) / PANEL_WIDTH
            for o, c in zip(out, series):
                o[idx] = c(x)
        else:
            values = (out[0], out[2] if ntk else None)
            return (values, (out[1], out[3] if ntk else None)) if sensitivity else values
    (qT, thT), (S, S_th) = _solve_host(q, T, activation, ntk, rtol, atol)
    values = (qT, thT if ntk else None)
    return (values, (S, S_th if ntk else None)) if sensitivity else values


PANEL_WIDTH = 1.0  # the panels of resgp.core.flow_table (log q)


@lru_cache(maxsize=512)
def _panel(act, T, ntk, tol, k):
    """Chebyshev series (q_T, dq_T/dq_0, Theta_T, dTheta_T/dq_0) in x in [-1, 1] on the panel
    [k W, (k + 1) W] of log q, accepted when the last coefficients of every output fall below
    tol * max|output|; None when 8 * NODES nodes do not suffice or the flow of the panel's
    variances does not reach T."""
    lo, hi = k * PANEL_WIDTH, (k + 1) * PANEL_WIDTH
    nodes = NODES
    while nodes <= 8 * NODES:
        t = chebyshev.lobatto(nodes + 1)
        qn = np.exp(0.5 * (lo + hi) + 0.5 * (hi - lo) * t)
        try:
            (yq, yt), (sq, st) = _solve_host(qn, T, act, ntk, max(tol / 100, 1e-14),
                                             max(tol / 100, 1e-14))
        except (RuntimeError, FloatingPointError):  # the panel's flow fails (ReQU blows up
            return None                             # from its larger variances): solve directly
        values = [yq, sq] + ([yt, st] if ntk else [np.zeros_like(yq)] * 2)
        series = [np.polynomial.chebyshev.Chebyshev.fit(t, v, nodes) for v in values]
        if all(np.abs(c.coef[-3:]).max() <= tol * max(np.abs(v).max(), 1e-300)
               for c, v in zip(series, values) if np.any(v)):
            return series
        nodes *= 2
    return None
