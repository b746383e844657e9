r"""The infinite-depth limit flow for any activation: an adaptive ODE solve over all pairs at once.

For a general activation (THEORY.md) the covariances of a pair of inputs follow, in depth time
:math:`t \in [0, T]`,

.. math::
    \dot q_{aa} = \check\phi(q_{aa}, q_{aa}, q_{aa}), \qquad
    \dot q_{ab} = \check\phi(q_{aa}, q_{bb}, q_{ab}), \qquad
    \dot\Theta_{ab} = \check\phi(q_{aa}, q_{bb}, q_{ab})
                     + \Theta_{ab}\, \check{\phi'}(q_{aa}, q_{bb}, q_{ab}),

(the last one only for the NTK). The variances (diagonal) evolve on their own; the cross terms
depend on them. :func:`limit_flow` integrates a block of inputs (N rows, M columns) as ONE
system: the state is the flat vector ``[q_aa (N), q_bb (M), q_ab (N*M), Theta_ab (N*M)]``, so
the diagonal is integrated with the same steps as the pairs (no interpolation of a separate
diagonal solve) and one error control covers every entry.

Solver: scipy's Dormand-Prince 8(5,3) (``scipy.integrate.DOP853``, the stepper behind
``solve_ivp(method="DOP853")``), stepped directly so that only the current state is stored
(``solve_ivp`` keeps every accepted step, ``steps * 8 * N * M`` bytes). Why this one: the flow
is smooth and non-stiff (Lipschitz constants O(1) in depth time), so an explicit high-order
method takes a handful of large steps, and the right-hand side (a dual over N*M pairs, jitted
JAX in float64) is where all the time goes. Measured over T = 1 (1000 x 1000 pairs) at
rtol 1e-10: DOP853 97 / 118 / 50 evaluations for erf / GELU / tanh, RK45 115 / 267 / 55
(at rtol 1e-6 RK45 is slightly cheaper for erf and tanh, but the kernel wants ~1e-10).
scipy is a core dependency; diffrax is not (and would add nothing here: the solve is
one vector ODE, not a batch of small ones).

Error control: scipy's per-step estimate is an RMS norm of
``err / (atol_abs + rtol * |y|)``, with ``atol_abs = atol * max(q_aa(0), q_bb(0))`` here so
that ``atol`` is relative to the input scale (kernels are in the units of :math:`q_0`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import DOP853

from ._x64 import float64

RTOL = 1e-10
ATOL = 1e-12


def check_tolerances(rtol, atol):
    """rtol and atol: finite floats, rtol in [1e-14, 1e-2], atol in [0, 1e-2]."""
    for name, value, low in (("rtol", rtol, 1e-14), ("atol", atol, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        if not (low <= float(value) <= 1e-2):
            raise ValueError(f"{name} must be in [{low:g}, 1e-2], got {value}")
    return float(rtol), float(atol)


@partial(jax.jit, static_argnames=("n1", "n2", "dual", "derivative_dual", "symmetric"))
def _rhs(y, *, n1, n2, dual, derivative_dual, symmetric):
    a, b = y[:n1], y[n1 : n1 + n2]
    pairs = n1 * n2
    ab = y[n1 + n2 : n1 + n2 + pairs].reshape(n1, n2)
    if symmetric:  # the pairs (a, a): q_ab(a, a) is q_aa, exactly
        ab = ab.at[jnp.diag_indices(n1)].set(a)
    parts = [dual(a, a, a), dual(b, b, b)]
    d_ab = dual(a[:, None], b[None, :], ab)
    parts.append(d_ab.ravel())
    if derivative_dual is not None:
        theta = y[n1 + n2 + pairs :].reshape(n1, n2)
        parts.append((d_ab + theta * derivative_dual(a[:, None], b[None, :], ab)).ravel())
    return jnp.concatenate(parts)


@partial(jax.jit, static_argnames=("n1", "n2", "dual", "derivative_dual", "symmetric"))
def _rhs_with_tangent(y, *, n1, n2, dual, derivative_dual, symmetric):
    """The flow of the state and of a tangent together: y = [state, tangent], and the tangent
    follows the variational equation ds/dt = J(state) s (forward mode through :func:`_rhs`)."""
    rhs = partial(_rhs, n1=n1, n2=n2, dual=dual, derivative_dual=derivative_dual,
                  symmetric=symmetric)
    state, tangent = jnp.split(y, 2)
    return jnp.concatenate(jax.jvp(rhs, (state,), (tangent,)))


def _integrate(rhs, y0, T, rtol, atol_abs, activation):
    """DOP853 from t = 0 to T, keeping only the current state; checks the result is finite."""
    if T == 0:
        return y0
    solver = DOP853(lambda t, y: np.asarray(rhs(y)), 0.0, y0, float(T), rtol=rtol,
                    atol=atol_abs)
    while solver.status == "running":
        message = solver.step()
        if message is not None:
            raise RuntimeError(f"the limit-flow ODE failed: {message}")
    if not np.isfinite(solver.y).all():
        raise FloatingPointError(
            f"the limit flow of activation {activation.name!r} overflowed before T = {T}: "
            "its variances blow up (try a smaller branch_variance)"
        )
    return solver.y


def limit_flow(q11, q22, q12, theta12=None, *, T, activation, rtol=RTOL, atol=ATOL,
               symmetric=False, tangent=None):
    r"""Integrate the limit flow from t = 0 to T for a block of inputs.

    q11 (N,), q22 (M,): variances :math:`q_0(a, a), q_0(b, b)`; q12 (N, M): covariances
    :math:`q_0(a, b)`; theta12 (N, M) or None: the NTK at t = 0 (then the NTK is integrated
    too). ``activation`` is an :class:`~resgp.activations.Activation`. Returns
    ``(q11_T, q22_T, q12_T, theta12_T)`` as NumPy float64 arrays (``theta12_T`` None when
    ``theta12`` is), in the units of the inputs. ``symmetric=True`` declares that rows and
    columns are the same inputs (N = M, q11 = q22): the pair (a, a) then evolves with exactly
    q_aa, so the NTK's diagonal sees an angle of exactly 0.

    ``tangent``: optional ``(dq11, dq22, dq12, dtheta12)`` (dtheta12 None without the NTK), a
    perturbation of the initial values. Then the variational equation is integrated with the
    flow (same steps, one error control) and the result is ``(flow, tangent_T)``: the
    derivative of the values at T along that perturbation, exact up to the solver tolerance
    (used for hyperparameter gradients, e.g. a bias variance shifts every q_0 entry by 1).
    """
    q11, q22, q12 = (np.asarray(v, dtype=np.float64) for v in (q11, q22, q12))
    n1, n2 = q11.size, q22.size
    ntk = theta12 is not None
    if ntk and activation.derivative_dual is None:
        raise ValueError(f"activation {activation.name!r} has no derivative dual: no NTK")

    def flat(a11, a22, a12, t12):
        parts = [a11, a22, np.ravel(a12)] + ([np.ravel(t12)] if ntk else [])
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])

    def unflat(y):
        pairs = n1 * n2
        return (y[:n1], y[n1 : n1 + n2], y[n1 + n2 : n1 + n2 + pairs].reshape(n1, n2),
                y[n1 + n2 + pairs :].reshape(n1, n2) if ntk else None)

    y0 = flat(q11, q22, q12, theta12)
    scale = max(float(np.max(np.abs(q11), initial=0.0)), float(np.max(np.abs(q22), initial=0.0)))
    atol_abs = atol * scale if scale > 0 else atol
    settings = dict(n1=n1, n2=n2, dual=activation.dual,
                    derivative_dual=activation.derivative_dual if ntk else None,
                    symmetric=bool(symmetric))
    with float64():
        if tangent is None:
            return unflat(_integrate(partial(_rhs, **settings), y0, T, rtol, atol_abs, activation))
        y0 = np.concatenate([y0, flat(*tangent)])
        y = _integrate(partial(_rhs_with_tangent, **settings), y0, T, rtol, atol_abs, activation)
    state, tangent_T = np.split(y, 2)
    return unflat(state), unflat(tangent_T)


@partial(jax.jit, static_argnames=("dual", "derivative_dual"))
def _diag_rhs(y, *, dual, derivative_dual):
    if derivative_dual is None:
        return dual(y, y, y)
    q, theta = jnp.split(y, 2)
    d = dual(q, q, q)
    return jnp.concatenate([d, d + theta * derivative_dual(q, q, q)])


def diagonal_flow(q, theta=None, *, T, activation, rtol=RTOL, atol=ATOL):
    """Only the diagonal: dq/dt = dual(q, q, q) from q (N,) to t = T, and with ``theta`` (N,)
    also d Theta/dt = dual + Theta dual'. Returns q_T, or (q_T, Theta_T); NumPy float64 (N,).

    Many positive variances (and Theta_0 = q_0, the NTK of raw inputs) go through the 1-D flow
    map :math:`\\log q_0 \\mapsto (q_T, \\Theta_T)`, solved at Chebyshev nodes and interpolated
    (:func:`_diagonal_table`), accurate to max(rtol, atol) relative; otherwise every variance is
    integrated."""
    q = np.asarray(q, dtype=np.float64)
    ntk = theta is not None
    if (q.size > 2 * DIAGONAL_NODES and T > 0 and np.all(q > 0) and np.all(np.isfinite(q))
            and (not ntk or np.array_equal(theta, q))):
        out = _diagonal_table(q, T=T, activation=activation, ntk=ntk, tol=max(rtol, atol))
        if out is not None:
            return out
    return _diagonal_solve(q, theta, T=T, activation=activation, rtol=rtol, atol=atol)


DIAGONAL_NODES = 32  # first Chebyshev grid of the diagonal flow map; doubled up to 8 times that


def _diagonal_table(q, *, T, activation, ntk, tol):
    """The diagonal flow map interpolated in s = log q on [log min q, log max q]: solved at
    Chebyshev-Lobatto nodes (tolerance tol / 100), accepted when the last coefficients of every
    output fall below tol * max|output|; None when 8 * DIAGONAL_NODES nodes do not suffice."""
    lo, hi = np.log(q.min()), np.log(q.max())
    x = (2.0 * np.log(q) - (lo + hi)) / max(hi - lo, 1e-300)
    nodes = DIAGONAL_NODES
    while nodes <= 8 * DIAGONAL_NODES:
        t = np.cos(np.pi * np.arange(nodes + 1) / nodes)  # Lobatto points in [-1, 1]
        qn = np.exp(0.5 * (lo + hi) + 0.5 * (hi - lo) * t)
        out = _diagonal_solve(qn, qn if ntk else None, T=T, activation=activation,
                              rtol=max(tol / 100, 1e-14), atol=max(tol / 100, 1e-14))
        values = out if ntk else (out,)
        series = [np.polynomial.chebyshev.Chebyshev.fit(t, v, nodes) for v in values]
        if all(np.abs(c.coef[-3:]).max() <= tol * np.abs(v).max()
               for c, v in zip(series, values)):
            result = tuple(c(x) for c in series)
            return result if ntk else result[0]
        nodes *= 2
    return None


def _diagonal_solve(q, theta, *, T, activation, rtol, atol):
    q = np.asarray(q, dtype=np.float64)
    ntk = theta is not None
    y0 = np.concatenate([q, np.asarray(theta, dtype=np.float64)]) if ntk else q.copy()
    scale = float(np.max(np.abs(q), initial=0.0))
    with float64():
        rhs = partial(_diag_rhs, dual=activation.dual,
                      derivative_dual=activation.derivative_dual if ntk else None)
        y = _integrate(rhs, y0, T, rtol, atol * scale if scale > 0 else atol, activation)
    return (y[: q.size], y[q.size :]) if ntk else y
