r"""The one ODE driver of resgp: Dormand-Prince 8(5,3) in JAX, bounded, per-entry error control.

Every infinite-depth computation that is not a closed form (the limit flow of a block of pairs,
the diagonal flow, the grid of :mod:`resgp.core.flow_table`, the forward sensitivities behind
the gradients) integrates an autonomous system :math:`\dot y = f(y)` from t = 0 to T with
:func:`solve` (docs/theory.md, "The ODE driver").

* Method: the explicit Runge-Kutta pair of order 8 with embedded 5th and 3rd order error
  estimates of Hairer, Norsett & Wanner (the coefficients of ``scipy.integrate.DOP853``, read
  from its public class attributes), with scipy's step-size rule (safety 0.9, factors in
  [0.2, 10]). The flow is smooth and non-stiff, so a handful of large steps suffice.
* State: any pytree of float64 arrays (e.g. ``(q_aa (N,), q_bb (M,), q_ab (N, M))``), stepped
  together inside one ``jax.lax.while_loop``: it compiles once per shape, runs without host
  round trips, and is traceable (``T`` may be a tracer).
* Error control: per element, relative to that element's own reference scale ``scale``
  (:math:`|err_i| \le atol\cdot scale_i + rtol\,|y_i|`), the step accepted only when *every*
  element meets it (a max norm, not scipy's RMS over the batch): each kernel entry is accurate to
  its own scale, not to the largest input of the batch.
* Tangents: optional forward sensitivities :math:`\dot S = J_f(y) S` (the variational equation,
  by ``jax.jvp`` of the same right-hand side) ride along the same steps; the error control sees
  the state only, so the steps (and the values) are the same with or without them.
* Bounds: at most ``max_steps`` attempted steps; a non-finite stage stops the entry at once.
  :func:`solve` returns a status instead of raising (it may run under ``jit``);
  :func:`check_status` turns it into a clear error on the host.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import DOP853 as _DOP853

__all__ = ["solve", "check_status", "check_tolerances", "RTOL", "ATOL", "MAX_STEPS",
           "OK", "TOO_MANY_STEPS", "NOT_FINITE"]

RTOL = 1e-12
ATOL = 1e-13
MAX_STEPS = 2000
OK, TOO_MANY_STEPS, NOT_FINITE = 0, 1, 2

_A = np.asarray(_DOP853.A, dtype=np.float64)
_B = np.asarray(_DOP853.B, dtype=np.float64)
_C = np.asarray(_DOP853.C, dtype=np.float64)
_E3 = np.asarray(_DOP853.E3, dtype=np.float64)
_E5 = np.asarray(_DOP853.E5, dtype=np.float64)
_STAGES = int(_DOP853.n_stages)
_EXPONENT = -1.0 / (int(_DOP853.error_estimator_order) + 1)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


def check_tolerances(rtol, atol):
    """rtol and atol: finite reals, rtol in [1e-14, 1e-2], atol in [0, 1e-2]; returns floats."""
    for name, value, low in (("rtol", rtol, 1e-14), ("atol", atol, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not (low <= float(value) <= 1e-2):
            raise ValueError(f"{name} must be in [{low:g}, 1e-2], got {value}")
    return float(rtol), float(atol)


def _stage_input(y, h, ks, weights):
    """y + h * sum_j weights[j] ks[j] for pytrees, ``ks`` stacked on a leading stage axis."""
    return jax.tree_util.tree_map(lambda y_l, k_l: y_l + h * jnp.tensordot(weights, k_l, 1),
                                  y, ks)


def _all_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def solve(rhs, y0, T, *, scale, rtol=RTOL, atol=ATOL, tangents=None, max_steps=MAX_STEPS):
    r"""Integrate :math:`\dot y = f(y)` from t = 0 to ``T`` (DOP853, per-element error control).

    Parameters
    ----------
    rhs : callable
        :math:`f`, pytree to pytree of the same structure (``jax.numpy``, float64).
    y0 : pytree of arrays
        Initial state.
    T : float or scalar array
        End time >= 0 (may be traced).
    scale : pytree like ``y0``
        Positive reference scale of each element: the absolute tolerance is ``atol * scale``.
    rtol : float
        Relative tolerance.
    atol : float
        Absolute tolerance, relative to ``scale``.
    tangents : pytree like ``y0`` with one extra leading axis of size k, or None
        k initial perturbations; their variational equation is integrated along.
    max_steps : int
        Bound on the attempted steps.

    Returns
    -------
    y_T : pytree like ``y0``
    tangents_T : pytree like ``tangents`` (None when ``tangents`` is None)
    info : dict
        ``status`` (``OK``, ``TOO_MANY_STEPS`` or ``NOT_FINITE``), ``steps`` (accepted),
        ``attempts``.
    """
    T = jnp.asarray(T, dtype=jnp.float64)
    with_tangents = tangents is not None

    def field(state):
        y, s = state
        if not with_tangents:
            return rhs(y), None
        tangent_rhs = jax.vmap(lambda t: jax.jvp(rhs, (y,), (t,))[1])
        return rhs(y), tangent_rhs(s)

    state0 = (y0, tangents)
    f0 = field(state0)
    ref = jax.tree_util.tree_map(lambda s: atol * s, scale)

    def error_norm(y, y_new, ks, h):
        def leaf(k_l, y_l, yn_l, a_l):
            e5, e3 = jnp.tensordot(_E5, k_l, 1), jnp.tensordot(_E3, k_l, 1)
            sc = a_l + rtol * jnp.maximum(jnp.abs(y_l), jnp.abs(yn_l))
            sc = jnp.where(sc > 0, sc, 1e-300)
            r5, r3 = (e5 / sc) ** 2, (e3 / sc) ** 2
            den = jnp.sqrt(r5 + 0.01 * r3)
            return jnp.max(jnp.where(den > 0, jnp.abs(h) * r5 / jnp.where(den > 0, den, 1.0), 0.0))

        per_leaf = jax.tree_util.tree_map(leaf, ks[0], y, y_new, ref)
        return jnp.max(jnp.stack(jax.tree_util.tree_leaves(per_leaf)))

    A = jnp.asarray(np.pad(_A, ((0, 1), (0, 1))))  # (13, 13): stage i from the stages j < i
    B = jnp.asarray(np.pad(_B, (0, 1)))

    def step(carry):
        t, h, state, f, steps, attempts, status = carry
        h = jnp.minimum(h, T - t)
        # the stages in a loop, the right-hand side traced once: small programs, fast compiles
        ks = jax.tree_util.tree_map(
            lambda f_l: jnp.zeros((_STAGES + 1,) + f_l.shape, f_l.dtype).at[0].set(f_l), f)

        def stage(i, ks):
            k_i = field(_stage_input(state, h, ks, A[i]))
            return jax.tree_util.tree_map(lambda K, k: K.at[i].set(k), ks, k_i)

        ks = jax.lax.fori_loop(1, _STAGES, stage, ks)
        new = _stage_input(state, h, ks, B)
        f_new = field(new)
        ks = jax.tree_util.tree_map(lambda K, k: K.at[_STAGES].set(k), ks, f_new)
        finite = _all_finite(new[0]) & _all_finite(f_new[0])
        err = error_norm(state[0], new[0], ks, h)
        err = jnp.where(finite, err, jnp.inf)
        accept = finite & (err < 1.0)
        factor = jnp.where(
            err == 0.0, _MAX_FACTOR,
            jnp.clip(_SAFETY * jnp.where(err > 0, err, 1.0) ** _EXPONENT, _MIN_FACTOR,
                     _MAX_FACTOR))
        factor = jnp.where(accept, factor, jnp.minimum(factor, 1.0))
        pick = lambda a, b: jax.tree_util.tree_map(lambda x, z: jnp.where(accept, x, z), a, b)  # noqa: E731
        state = pick(new, state)
        f = pick(f_new, f)
        t = jnp.where(accept, t + h, t)
        # a non-finite stage at a step already as small as rounding allows: give up
        stuck = (~finite) & (h <= 1e-12 * jnp.maximum(T, 1.0))
        status = jnp.where(stuck, NOT_FINITE, status)
        return (t, h * factor, state, f, steps + accept.astype(jnp.int32), attempts + 1, status)

    def running(carry):
        t, _, _, _, _, attempts, status = carry
        return (t < T) & (attempts < max_steps) & (status == OK)

    h0 = _initial_step(f0[0], y0, scale, T, rtol, atol)
    carry = (jnp.zeros((), jnp.float64), h0, state0, f0, jnp.int32(0), jnp.int32(0),
             jnp.where(_all_finite(y0) & _all_finite(f0[0]), OK, NOT_FINITE).astype(jnp.int32))
    t, _, state, _, steps, attempts, status = jax.lax.while_loop(running, step, carry)
    status = jnp.where((status == OK) & (t < T), TOO_MANY_STEPS, status)
    return state[0], state[1], {"status": status, "steps": steps, "attempts": attempts}


def _initial_step(f0, y0, scale, T, rtol, atol):
    """Hairer's first guess h = 0.01 |y0| / |f(y0)| (scaled max norms), capped at T."""
    def ratio(leaf_fn):
        leaves = jax.tree_util.tree_leaves(jax.tree_util.tree_map(leaf_fn, y0, f0, scale))
        return jnp.max(jnp.stack(leaves))
    sc = lambda y, s: atol * s + rtol * jnp.abs(y)  # noqa: E731
    d0 = ratio(lambda y, f, s: jnp.max(jnp.abs(y) / jnp.maximum(sc(y, s), 1e-300)))
    d1 = ratio(lambda y, f, s: jnp.max(jnp.abs(f) / jnp.maximum(sc(y, s), 1e-300)))
    h = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.where(d1 > 0, d1, 1.0))
    return jnp.clip(h, 1e-9 * jnp.maximum(T, 1e-300), jnp.maximum(T, 1e-300))


def check_status(info, what: str):
    """Raise a clear error on the host when :func:`solve` did not reach T."""
    status = int(np.max(np.asarray(info["status"])))
    if status == NOT_FINITE:
        raise FloatingPointError(
            f"{what}: the flow became NaN or infinite before the end time (an activation that "
            "returns NaN or overflows at these variances, or variances that blow up: try a "
            "smaller branch_variance or standardised inputs)")
    if status == TOO_MANY_STEPS:
        raise RuntimeError(
            f"{what}: the ODE solver needed more than {MAX_STEPS} steps (a non-smooth or "
            "rapidly varying activation at these variances); loosen rtol/atol or rescale inputs")
