r"""The infinite-depth flow of a block of pairs, in JAX (docs/theory.md, "Other activations").

For pairs of inputs with variances ``q_aa`` (N,), ``q_bb`` (M,), covariances ``q_ab`` (N, M)
and, for the NTK, ``theta`` (N, M), the flow in depth time :math:`t \in [0, T]` is

.. math::
    \dot q_{aa} = v(q_{aa}, q_{aa}, q_{aa}), \quad \dot q_{ab} = v(q_{aa}, q_{bb}, q_{ab}), \quad
    \dot\Theta_{ab} = v(q_{aa}, q_{bb}, q_{ab}) + \Theta_{ab}\,v'(q_{aa}, q_{bb}, q_{ab})

with :func:`resgp.core.velocity.velocity`, integrated by :func:`resgp.core.ode.solve`.

* :func:`pair_flow`: values, optionally with forward sensitivities along caller-given
  perturbations of the initial values (the variational equation on the same steps).
* :func:`diagonal_flow`: the variances alone (and the NTK's diagonal).
* :func:`flow_map`: the flow map as a differentiable JAX function of
  :math:`(T, q_{aa}, q_{bb}, q_{ab}[, \Theta_0])`: a ``custom_jvp`` whose partials are the
  sensitivities to the initial values and, for T, the velocity at T (for an autonomous flow
  :math:`\partial_T\Phi_T(x) = f(\Phi_T(x))`). It works under ``jit``, ``grad`` and ``vmap``,
  after any Neural Tangents front end (:math:`\Theta_0 \ne q_0`).

The NTK flow is affine in :math:`\Theta_0`: :math:`\Theta_T = A(q_0) + B(q_0)\Theta_0`, where
``B`` is the sensitivity of :math:`\Theta_T` to :math:`\Theta_0`; one integration gives both.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import ode
from .velocity import diagonal_velocity, velocity

__all__ = ["pair_flow", "diagonal_flow", "flow_map", "pair_scales"]


def _rows(q_aa, q_bb, ndim):
    """q_aa as (N, 1, ...) and q_bb as (1, M, ...) against pairs with ``ndim`` axes."""
    extra = (1,) * (ndim - 2)
    return q_aa.reshape((-1, 1) + extra), q_bb.reshape((1, -1) + extra)


_ULPS = 4 * float(np.finfo(np.float64).eps)


@jax.custom_jvp
def _snap(a, b, q_ab):
    """Pairs within rounding of parallel (|q_ab| > (1 - 4 ulp) sqrt(q_aa q_bb)) are exactly
    parallel, and equal variances give exactly q_ab = q_aa: rounding along the flow must not
    open an angle where a kernel is not smooth at angle 0 (the ReLU family's NTK). A rounding
    correction: its derivative is that of q_ab itself (the sensitivities stay smooth)."""
    r = jnp.where(a == b, a, jnp.sqrt(a) * jnp.sqrt(b))
    edge = r * (1.0 - _ULPS)
    return jnp.where(q_ab > edge, r, jnp.where(q_ab < -edge, -r, q_ab))


@_snap.defjvp
def _snap_jvp(primals, tangents):
    return _snap(*primals), jnp.broadcast_to(tangents[2], jnp.broadcast_shapes(
        *(jnp.shape(p) for p in primals)))


def pair_scales(q_aa, q_bb, ndim=2):
    """Reference scales of the state: q_aa, q_bb for the variances, sqrt(q_aa q_bb) per pair
    (1 where a variance is 0, so that a zero row keeps an absolute tolerance)."""
    one = lambda s: jnp.where(s > 0, s, 1.0)  # noqa: E731
    a, b = _rows(jnp.sqrt(q_aa), jnp.sqrt(q_bb), ndim)
    return one(q_aa), one(q_bb), one(a * b)


def _parallel(a, b, q_ab, parallel):
    """q_ab of the pairs flagged ``parallel`` set to sqrt(q_aa) sqrt(q_bb) (None: unchanged)."""
    if parallel is None:
        return q_ab
    return jnp.where(parallel, jnp.sqrt(a) * jnp.sqrt(b), q_ab)


def _pair_rhs(activation, symmetric, ntk, parallel=None):
    def rhs(y):
        q_aa, q_bb, q_ab, theta = y
        if symmetric:  # the pairs (a, a) are the variances themselves, exactly
            q_ab = q_ab.at[jnp.diag_indices(q_aa.shape[0])].set(q_aa)
        a, b = _rows(q_aa, q_bb, q_ab.ndim)
        q_ab = _snap(a, b, _parallel(a, b, q_ab, parallel))
        v_ab, v_theta = velocity(activation, a, b, q_ab, theta if ntk else None)
        return (diagonal_velocity(activation, q_aa)[0], diagonal_velocity(activation, q_bb)[0],
                v_ab, v_theta if ntk else theta)
    return rhs


def pair_flow(activation, T, q_aa, q_bb, q_ab, theta=None, *, rtol=ode.RTOL, atol=ode.ATOL,
              symmetric=False, tangents=None, parallel=None):
    r"""Integrate the pair flow to T (JAX, traceable).

    Parameters
    ----------
    activation : Activation
    T : scalar
        Depth time (branch variance) >= 0.
    q_aa : array (N,)
        Row variances at t = 0.
    q_bb : array (M,)
        Column variances at t = 0.
    q_ab : array (N, M, ...)
        Covariances at t = 0 (trailing axes: more pairs of the same rows and columns, e.g.
        the correlations of a table's grid).
    theta : array like ``q_ab`` or None
        NTK at t = 0, or None for the NNGP alone.
    rtol : float
        Relative tolerance of every entry.
    atol : float
        Absolute tolerance, relative to each entry's own scale (:func:`pair_scales`).
    symmetric : bool
        Rows and columns are the same inputs (N = M, ``q_bb`` = ``q_aa``): the pairs (a, a)
        then follow the variances exactly.
    parallel : bool array like ``q_ab`` or None
        Pairs kept exactly parallel, :math:`q_{ab} = \sqrt{q_{aa}}\sqrt{q_{bb}}` at every stage:
        for the ReLU family (degree-one homogeneous), whose flow keeps parallel pairs
        parallel, so that rounding never opens an angle where the derivative dual is not
        smooth (docs/theory.md, "Nearly parallel pairs").
    tangents : tuple of 4 arrays with a leading axis k, or None
        Perturbations ``(dq_aa (k, N), dq_bb (k, M), dq_ab (k, N, M), dtheta (k, N, M))``
        (``dtheta`` zeros without the NTK).

    Returns
    -------
    y_T : tuple (q_aa, q_bb, q_ab, theta or zeros) at T
    tangents_T : like ``tangents`` (None without)
    info : dict with ``status`` (see :mod:`resgp.core.ode`)
    """
    ntk = theta is not None
    theta0 = theta if ntk else jnp.zeros_like(q_ab)
    s_aa, s_bb, s_ab = pair_scales(q_aa, q_bb, q_ab.ndim)
    y, S, info = ode.solve(_pair_rhs(activation, symmetric, ntk, parallel),
                           (q_aa, q_bb, q_ab, theta0), T,
                           scale=(s_aa, s_bb, s_ab, s_ab), rtol=rtol, atol=atol,
                           tangents=tangents)
    if parallel is not None:  # exactly parallel: q_ab = sqrt(q_aa q_bb), and its tangent
        a, b = _rows(y[0], y[1], q_ab.ndim)
        y = (y[0], y[1], _parallel(a, b, y[2], parallel), y[3])
        if S is not None:
            sa, sb = _rows(jnp.sqrt(y[0]), jnp.sqrt(y[1]), q_ab.ndim)
            ta, tb = S[0].reshape(S[0].shape + (1,) * (q_ab.ndim - 1)), \
                S[1].reshape(S[1].shape[:1] + (1,) + S[1].shape[1:] + (1,) * (q_ab.ndim - 2))
            d = 0.5 * (ta * sb / jnp.where(sa > 0, sa, 1.0) + tb * sa / jnp.where(sb > 0, sb, 1.0))
            S = (S[0], S[1], jnp.where(parallel, d, S[2]), S[3])
    if symmetric:  # the pairs (a, a) are the variances, exactly (not a second rounding of them)
        idx = jnp.diag_indices(q_aa.shape[0])
        y = (y[0], y[1], y[2].at[idx].set(y[0]), y[3])
        if S is not None:
            S = (S[0], S[1], S[2].at[(slice(None),) + idx].set(S[0]), S[3])
    return y, S, info


def diagonal_flow(activation, T, q, theta=None, *, rtol=ode.RTOL, atol=ode.ATOL, tangents=None):
    """Variances (and the NTK's diagonal) alone: :math:`\\dot q = v(q, q, q)`, JAX, traceable.

    Parameters
    ----------
    activation : Activation
    T : scalar
        Depth time >= 0.
    q : array (N,)
        Variances at t = 0.
    theta : array (N,) or None
        NTK diagonal at t = 0.
    rtol, atol : float
        Tolerances (``atol`` relative to each variance).
    tangents : tuple (dq (k, N), dtheta (k, N)) or None
        Perturbations of the initial values.

    Returns
    -------
    (q_T, theta_T or zeros), tangents_T, info — as :func:`pair_flow`.
    """
    ntk = theta is not None

    def rhs(y):
        v, v_theta = diagonal_velocity(activation, y[0], y[1] if ntk else None)
        return (v, v_theta if ntk else y[1])

    scale = jnp.where(q > 0, q, 1.0)
    return ode.solve(rhs, (q, theta if ntk else jnp.zeros_like(q)), T, scale=(scale, scale),
                     rtol=rtol, atol=atol, tangents=tangents)


# ----------------------------------------------------------------------------- flow map


def _unit_tangents(q_aa, q_bb, q_ab, ntk):
    """The perturbations 'all q_aa + 1', 'all q_bb + 1', 'all q_ab + 1' (and 'all Theta_0 + 1').

    The flow of pair (a, b) depends on q_aa[a], q_bb[b], q_ab[a, b] (and Theta_0[a, b]) only,
    so these k = 3 (4) directions give every partial derivative of every entry.
    """
    n, m = q_aa.shape[0], q_bb.shape[0]
    k = 4 if ntk else 3
    dq_aa = jnp.zeros((k, n)).at[0].set(1.0)
    dq_bb = jnp.zeros((k, m)).at[1].set(1.0)
    dq_ab = jnp.zeros((k, n, m)).at[2].set(1.0)
    dth = jnp.zeros((k, n, m))
    if ntk:
        dth = dth.at[3].set(1.0)
    return dq_aa, dq_bb, dq_ab, dth


def _finish(y, info):
    """NaN where the solve did not reach T: never a silently wrong number under jit."""
    bad = info["status"] != ode.OK
    return tuple(jnp.where(bad, jnp.nan, x) for x in y)


@partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _map(activation, tolerances, symmetric, T, q_aa, q_bb, q_ab, theta):
    rtol, atol = tolerances
    ntk = theta is not None
    y, _, info = pair_flow(activation, T, q_aa, q_bb, q_ab, theta, rtol=rtol, atol=atol,
                           symmetric=symmetric)
    y = _finish(y, info)
    return y if ntk else y[:3] + (None,)


@_map.defjvp
def _map_jvp(activation, tolerances, symmetric, primals, tangents):
    rtol, atol = tolerances
    T, q_aa, q_bb, q_ab, theta = primals
    dT, dq_aa, dq_bb, dq_ab, dtheta = tangents
    ntk = theta is not None
    y, S, info = pair_flow(activation, T, q_aa, q_bb, q_ab, theta, rtol=rtol, atol=atol,
                           symmetric=symmetric, tangents=_unit_tangents(q_aa, q_bb, q_ab, ntk))
    y = _finish(y, info)
    qa, qb, qab, th = y
    S_aa, S_bb, S_ab, S_th = S  # each (k, ...): derivative along direction k
    v_aa, _ = diagonal_velocity(activation, qa)
    v_bb, _ = diagonal_velocity(activation, qb)
    v_ab, v_th = velocity(activation, qa[:, None], qb[None, :], qab, th if ntk else None)
    t_aa = S_aa[0] * dq_aa + v_aa * dT
    t_bb = S_bb[1] * dq_bb + v_bb * dT
    t_ab = S_ab[0] * dq_aa[:, None] + S_ab[1] * dq_bb[None, :] + S_ab[2] * dq_ab + v_ab * dT
    if not ntk:
        return y[:3] + (None,), (t_aa, t_bb, t_ab, None)
    t_ab = t_ab + S_ab[3] * dtheta  # zero: q does not depend on Theta_0
    t_th = (S_th[0] * dq_aa[:, None] + S_th[1] * dq_bb[None, :] + S_th[2] * dq_ab
            + S_th[3] * dtheta + v_th * dT)
    return y, (t_aa, t_bb, t_ab, t_th)


def flow_map(activation, T, q_aa, q_bb, q_ab, theta=None, *, rtol=ode.RTOL, atol=ode.ATOL,
             symmetric=False):
    r"""The infinite-depth ResNet's output covariances (and NTK) from input covariances, in JAX.

    Differentiable in ``T`` and every input array (``jax.grad``, ``jax.jvp``), traceable by
    ``jax.jit`` and ``jax.vmap``; entries that the solver could not bring to T are NaN.

    Parameters
    ----------
    activation : Activation
    T : scalar
        Depth time (branch variance) >= 0.
    q_aa : array (N,)
    q_bb : array (M,)
    q_ab : array (N, M)
    theta : array (N, M) or None
        The front end's NTK, or None for the NNGP alone.
    rtol, atol : float
        Tolerances of :func:`pair_flow`.
    symmetric : bool
        As in :func:`pair_flow`.

    Returns
    -------
    (q_aa_T (N,), q_bb_T (M,), q_ab_T (N, M), theta_T (N, M) or None)
    """
    return _map(activation, (float(rtol), float(atol)), bool(symmetric), T, q_aa, q_bb, q_ab,
                theta)


def host_status(info, what):
    """:func:`resgp.core.ode.check_status` on a solve's info (host side)."""
    ode.check_status({k: np.asarray(v) for k, v in info.items()}, what)
