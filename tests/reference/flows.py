r"""Reference NNGP and NTK kernels of the infinitely wide ResNet, from the reference duals.

Independent of resgp: the duals are :mod:`.duals`' NumPy Gauss-Legendre rule, the ODE solver is
``scipy.integrate.solve_ivp(method="DOP853")``. For a pair of inputs (a, b) the state is

* :math:`q_{11} = q(a,a)`, :math:`q_{22} = q(b,b)`, :math:`q_{12} = q(a,b)`;
* :math:`c = q_{22} - q_{12}^2/q_{11}`, the conditional variance, carried *alongside* so that
  the angle of (near-)collinear pairs stays known to full relative precision (in floats,
  :math:`q_{11}q_{22} - q_{12}^2` loses everything when :math:`1 - \rho \sim 10^{-14}`, and
  the ReLU family's derivative dual :math:`(\pi-\theta)/2\pi`, the step's and the sign's
  duals are linear in :math:`\theta`);
* the NTK :math:`\Theta_{11}, \Theta_{22}, \Theta_{12}`.

Input layer (docs/theory.md, "Network and input layer"): :math:`q_0(a,b) = \sigma_w^2\langle
a,b\rangle/d + \sigma_b^2` and :math:`\Theta_0 = q_0`, computed in exact rational arithmetic
from the float inputs (and c from them, exactly). One ResNet block (docs/theory.md, "One
update"; resgp.core.velocity: skip s = 1, gain :math:`g = \alpha^2 = T/L`, shift 0), with
:math:`v = E[\phi(u)\phi(v)]` and :math:`\dot v = E[\phi'(u)\phi'(v)]` at the previous layer:

.. math:: q_l = q_{l-1} + h\, v(q_{l-1}), \qquad
          \Theta_l = \Theta_{l-1} + h\,(v(q_{l-1}) + \Theta_{l-1}\,\dot v(q_{l-1})),

for :math:`q_{11}, q_{22}, q_{12}` alike, and the conditional variance by the exact identity
(all terms non-negative, each an integral of a square; :math:`\lambda = q_{12}/q_{11}`,
:math:`\mu = v_{12}/v_{11}`)

.. math:: c_l = \frac{q_{11}c + h\,(q_{11}E[(\phi(v) - \lambda\phi(u))^2] + v_{11}c)
          + h^2 v_{11} E[(\phi(v) - \mu\phi(u))^2]}{q_{11} + h\,v_{11}} .

Infinite depth: the same velocity as an ODE in depth time, :math:`\dot q = v(q)`,
:math:`\dot\Theta = v + \Theta\dot v`, :math:`\dot c = E[(\phi(v) - \lambda\phi(u))^2]`
(carried as :math:`\sigma = \sqrt c`, :math:`\dot\sigma = \dot c/2\sigma`, for a pair that
does not start collinear),
integrated pair by pair to T by DOP853 (a pair that starts collinear, c = 0, in
:math:`\tau = \sqrt t`, :math:`dy/d\tau = 2\tau f(y)`: then :math:`c \propto t`, and the ReLU
family's dual has the branch point :math:`c^{3/2}`, so the solution is smooth in :math:`\tau`,
not in t) with rtol = 1e-13 and atol = 1e-14 times each component's own scale
(:math:`q_{11}(0)`, :math:`q_{22}(0)`, :math:`\sqrt{q_{11}(0)q_{22}(0)}`, and
:math:`\sqrt{q_{22}(0)}` for :math:`\sigma \approx \sqrt{q_{22}}\sin\theta`, or
:math:`\sqrt{c(0)q_{22}(0)}` for c).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import scipy.integrate

from .duals import RefActivation, diagonal_moments, pair_moments

__all__ = ["Kernels", "input_covariances", "finite_depth", "infinite_depth", "rel_err"]


class Kernels(NamedTuple):
    """Reference kernels of pairs (a_i, b_i): the entries and the two diagonals."""

    nngp: np.ndarray  # q(a, b)
    nngp_aa: np.ndarray  # q(a, a)
    nngp_bb: np.ndarray  # q(b, b)
    ntk: np.ndarray | None  # Theta(a, b)
    ntk_aa: np.ndarray | None
    ntk_bb: np.ndarray | None


def rel_err(K, ref, ref_aa, ref_bb):
    r""":math:`|K_{ab} - K^{ref}_{ab}| / \sqrt{K^{ref}_{aa}K^{ref}_{bb}}` elementwise (the
    Cauchy-Schwarz scale of the entry, so that entries near 0 are judged on their own scale)."""
    K, ref = np.asarray(K, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = np.sqrt(np.abs(np.asarray(ref_aa, dtype=np.float64))) * \
        np.sqrt(np.abs(np.asarray(ref_bb, dtype=np.float64)))
    return np.abs(K - ref) / scale


def _exact_q0(a, b, weight_variance, bias_variance):
    d = len(a)
    dot = sum((Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a, b)), Fraction(0))
    return Fraction(float(weight_variance)) * dot / d + Fraction(float(bias_variance))


def input_covariances(A, B, weight_variance=1.0, bias_variance=0.0):
    """(q11, q22, q12, c) float arrays of the row pairs (A[i], B[i]), exact then rounded once."""
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.shape != B.shape or A.ndim != 2:
        raise ValueError("A and B must be (P, d) arrays of the same shape (one pair per row)")
    out = np.empty((4, A.shape[0]))
    for i, (a, b) in enumerate(zip(A, B)):
        q11 = _exact_q0(a, a, weight_variance, bias_variance)
        q22 = _exact_q0(b, b, weight_variance, bias_variance)
        q12 = _exact_q0(a, b, weight_variance, bias_variance)
        gap = q11 * q22 - q12 * q12
        out[:, i] = float(q11), float(q22), float(q12), float(max(gap, Fraction(0)) / q11)
    return tuple(out)


def _velocity(act, q11, q22, q12, c, t11, t22, t12, ntk, gram=True):
    """Velocities of one pair's state (v11, v22, v12, e, w, vt11, vt22, vt12)."""
    v11, d11 = diagonal_moments(act, q11, derivative=ntk)
    v22, d22 = diagonal_moments(act, q22, derivative=ntk)
    m = pair_moments(act, q11, q22, q12, c, derivative=ntk, gram=gram)
    if ntk:
        return v11, v22, m.v, m.e, m.w, v11 + t11 * d11, v22 + t22 * d22, m.v + t12 * m.dv
    return v11, v22, m.v, m.e, m.w, 0.0, 0.0, 0.0


def _check(act, ntk):
    if ntk and act.df is None:
        raise ValueError(f"{act.name} has no derivative: no NTK")


def finite_depth(act: RefActivation, A, B, depth: int, branch_variance=1.0,
                 weight_variance=1.0, bias_variance=0.0, ntk=True) -> Kernels:
    """The exact infinite-width recursion over ``depth`` blocks, alpha^2 = T / depth."""
    _check(act, ntk)
    q11, q22, q12, c = (v.copy() for v in input_covariances(A, B, weight_variance,
                                                           bias_variance))
    t11, t22, t12 = q11.copy(), q22.copy(), q12.copy()
    h = float(branch_variance) / int(depth)
    for _ in range(int(depth)):
        for i in range(q11.size):
            v11, v22, v12, e, w, vt11, vt22, vt12 = _velocity(
                act, q11[i], q22[i], q12[i], c[i], t11[i], t22[i], t12[i], ntk)
            c[i] = (q11[i] * c[i] + h * (q11[i] * e + v11 * c[i]) + h * h * v11 * w) / \
                (q11[i] + h * v11)
            q11[i] += h * v11
            q22[i] += h * v22
            q12[i] += h * v12
            if ntk:
                t11[i] += h * vt11
                t22[i] += h * vt22
                t12[i] += h * vt12
    if not ntk:
        return Kernels(q12, q11, q22, None, None, None)
    return Kernels(q12, q11, q22, t12, t11, t22)


def infinite_depth(act: RefActivation, A, B, branch_variance=1.0, weight_variance=1.0,
                   bias_variance=0.0, ntk=True, rtol=1e-13, atol=1e-14) -> Kernels:
    """The limit flow integrated to depth time T = ``branch_variance`` (DOP853), one solve per
    pair (each pair has its own steps, as its flow is its own)."""
    _check(act, ntk)
    q0 = np.stack(input_covariances(A, B, weight_variance, bias_variance))
    out = np.array([_pair_limit(act, *q0[:, i], float(branch_variance), ntk, rtol, atol)
                    for i in range(q0.shape[1])]).T
    if not ntk:
        return Kernels(out[2], out[0], out[1], None, None, None)
    return Kernels(out[2], out[0], out[1], out[6], out[4], out[5])


def _pair_limit(act, q11, q22, q12, c, T, ntk, rtol, atol):
    """One pair's state at depth time T: (q11, q22, q12, c, Theta11, Theta22, Theta12).

    A pair that starts (nearly) collinear (c = 0) is integrated in tau = sqrt(t) with c in the
    state (then c ~ t ~ tau^2 and the ReLU family's c^(3/2) terms are smooth in tau); any
    other pair in t with sigma = sqrt(c) in the state, d sigma/dt = e / (2 sigma) (for a
    near-identical pair sigma moves linearly, c would change on a time scale of sigma_0)."""
    pair_scale = math.sqrt(q11) * math.sqrt(q22)
    collinear = c < 1e-20 * q22

    def velocity(y, cond):
        v11, v22, v12, e, _, vt11, vt22, vt12 = _velocity(act, *y[:3], cond, *y[4:], ntk,
                                                         gram=False)
        return np.array([v11, v22, v12, e, vt11, vt22, vt12])

    if collinear:  # c enters through sin(theta)^2 = c / q22: its scale is sqrt(c q22)
        y0 = np.array([q11, q22, q12, c, q11, q22, q12])
        scale = np.array([q11, q22, pair_scale, math.sqrt(max(c, 1e-32 * q22) * q22),
                          q11, q22, pair_scale])
        end = math.sqrt(T)
        sol = scipy.integrate.solve_ivp(lambda tau, y: 2.0 * tau * velocity(y, y[3]),
                                        (0.0, end), y0, method="DOP853", rtol=rtol,
                                        atol=atol * scale, t_eval=[end], first_step=end / 20)
        y = sol.y[:, -1]
    else:  # sigma = sqrt(c) ~ sqrt(q22) sin(theta): its scale is sqrt(q22)
        y0 = np.array([q11, q22, q12, math.sqrt(c), q11, q22, q12])
        scale = np.array([q11, q22, pair_scale, math.sqrt(q22), q11, q22, pair_scale])

        def rhs(_, y):
            sigma = max(y[3], 0.0)
            f = velocity(y, sigma * sigma)
            f[3] = f[3] / (2.0 * sigma) if sigma > 0 else 0.0
            return f

        sol = scipy.integrate.solve_ivp(rhs, (0.0, T), y0, method="DOP853", rtol=rtol,
                                        atol=atol * scale, t_eval=[T])
        y = sol.y[:, -1].copy()
        y[3] = y[3] ** 2
    if not sol.success:
        raise RuntimeError(f"reference ODE failed: {sol.message}")
    return y


def _selfcheck():  # pragma: no cover - a quick manual check: python -m reference.flows
    from .duals import REFERENCE

    x = np.linspace(-1.0, 1.0, 4)[None, :]
    k = infinite_depth(REFERENCE["relu"], x, x)
    print(k, math.exp(0.5) * float(np.mean(x * x)))


if __name__ == "__main__":  # pragma: no cover
    _selfcheck()
