r"""ReLU at infinite depth: the angle flow :math:`\theta_0 \mapsto \theta_T` as one tabulated map.

For ReLU the normalised correlation of two inputs follows an autonomous 1-D ODE in depth time
(docs/theory.md, "ReLU at infinite depth"; Hayou & Yang 2023):

.. math::
    \frac{d\theta}{dt} = F(\theta) = -\frac{D(\theta)}{2\pi \sin\theta},
    \qquad D(\theta) = \sin\theta - \theta\cos\theta .

Let :math:`G' = 1/F` be its time function. Because :math:`1/F = -2\pi\sin\theta/D(\theta)
= -6\pi/\theta^2 + h(\theta)` with :math:`h` analytic and even on :math:`[-\pi, \pi]`
(no :math:`1/\theta` term),

.. math::  G(\theta) = \frac{6\pi}{\theta} + H(\theta), \qquad H(\theta) = \int_0^\theta h,

and the flow is exactly :math:`G(\theta_T) = G(\theta_0) + T`. ``H`` does not depend on ``T``: it
is a degree-40 Chebyshev series built once (machine precision). For each ``T`` the map is solved
by Newton's method at the Chebyshev nodes of ``PANELS`` equal panels of :math:`[0, \pi]` and
stored as one degree-``DEGREE`` polynomial per panel in the variable
:math:`v = \sqrt{1 - |\rho_0|}` (one set of panels for each sign of the input correlation
:math:`\rho_0 = \cos\theta_0`), so a kernel entry costs one ``sqrt`` and one short Horner sum. The map is analytic on the closed interval (near :math:`\pi`,
:math:`\pi - \theta_T \approx \sqrt{(\pi-\theta_0)^2 + T}`), so the panels reach 1e-13 for
``1e-4 <= T <= 100`` (about 1e-12 at T = 1000; tested against an independent high-precision
solution).

Three functions of :math:`\theta_0` are tabulated, all that the kernel and its exact
derivatives need (flow identities: :math:`\partial_T\theta_T = F(\theta_T)`,
:math:`\partial\theta_T/\partial\theta_0 = F(\theta_T)/F(\theta_0)`):

* ``VALUE``: :math:`\cos\theta_T`, the output correlation :math:`\rho_T`;
* ``D_DT``: :math:`\partial_T \cos\theta_T = D(\theta_T) / 2\pi`;
* ``D_DRHO``: :math:`\partial\rho_T/\partial\rho_0 = D(\theta_T) / D(\theta_0)`.

Everything here is pure ``jax.numpy`` so that ``T`` may be traced (jit, grad through a
``custom_jvp``). Call it with 64-bit JAX enabled. The exception is :func:`ntk_table`, the NTK of
the ReLU family along the same flow (two more functions of :math:`\theta_0`, docs/theory.md,
"The ReLU family's NTK"): an ODE solve on the host, once per depth time.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

PANELS = 256  # per half of [-1, 1]
DEGREE = 7
VALUE, D_DT, D_DRHO = 0, 1, 2

_N_SERIES = 24
# D(t)/t^3 = sum_j (-1)^j 2(j+1) / (2j+3)!  t^(2j)
_DT_COEF = np.array([(-1) ** j * 2 * (j + 1) / math.factorial(2 * j + 3) for j in range(_N_SERIES)])
# (t^2 sin t - 3 D(t)) / t^5 = sum_j (-1)^(j+1) 4(j+1)(j+2) / (2j+5)!  t^(2j)
_NT_COEF = np.array(
    [(-1) ** (j + 1) * 4 * (j + 1) * (j + 2) / math.factorial(2 * j + 5) for j in range(_N_SERIES)]
)


def _series(coef, t2, xp):
    acc = xp.zeros_like(t2) + coef[-1]
    for c in coef[-2::-1]:
        acc = acc * t2 + c
    return acc


def _h(theta: np.ndarray) -> np.ndarray:
    """h = 1/F + 6 pi / theta^2, analytic: -2 pi (t^2 sin t - 3 D) / (t^2 D), as two series."""
    t2 = theta * theta
    return -2.0 * np.pi * _series(_NT_COEF, t2, np) / _series(_DT_COEF, t2, np)


_H = np.polynomial.Chebyshev.interpolate(_h, 40, domain=[0.0, np.pi]).integ(lbnd=0.0)
_H_COEF = _H.coef
G_PI = 6.0 + float(_H(np.pi))  # G(pi) = 6 pi / pi + H(pi)


def d_over_cube(theta, xp=jnp):
    """D(theta) / theta^3, accurate down to theta = 0 (series in theta^2, 24 terms)."""
    return _series(_DT_COEF, theta * theta, xp)


def big_d(theta, xp=jnp):
    """D(theta) = sin(theta) - theta cos(theta), without cancellation for small theta."""
    return theta**3 * d_over_cube(theta, xp)


def _h_integral(theta):
    """H(theta), Clenshaw sum of the Chebyshev series on [0, pi]."""
    x = 2.0 * theta / jnp.pi - 1.0
    b1 = jnp.zeros_like(theta)
    b2 = jnp.zeros_like(theta)
    for c in _H_COEF[:0:-1]:
        b1, b2 = 2.0 * x * b1 - b2 + c, b1
    return x * b1 - b2 + _H_COEF[0]


def time_to_pi(theta):
    """V(theta) = G(theta) - G(pi) >= 0: the depth time from theta back to the angle pi."""
    return 6.0 * jnp.pi / theta + _h_integral(theta) - G_PI


def flow(theta0, T, max_iterations: int = 60):
    r"""theta_T for each theta_0 in (0, pi] (any shape), by solving V(theta_T) = V(theta_0) + T.

    Newton's method in z = 1/theta, where V is increasing and convex, started from the
    small-angle bound z = (y + G(pi)) / (6 pi) >= z*, so the iterates decrease monotonically;
    it stops when no iterate moves by more than 4 ulp (typically after 5 to 10 steps).
    """
    y = time_to_pi(theta0) + T

    def step(state):
        z, _, i = state
        theta = 1.0 / z
        slope = 2.0 * jnp.pi * jnp.sin(theta) / (theta * d_over_cube(theta))  # dV/dz
        z_new = jnp.maximum(z - (time_to_pi(theta) - y) / slope, 1.0 / jnp.pi)
        return z_new, jnp.max(jnp.abs(z_new - z) / z_new), i + 1

    def running(state):
        _, moved, i = state
        return (moved > 1e-15) & (i < max_iterations)

    z0 = (y + G_PI) / (6.0 * jnp.pi)
    z, _, _ = jax.lax.while_loop(running, step, (z0, jnp.inf, 0))
    return 1.0 / z


def _panel_nodes():
    """Chebyshev nodes of PANELS panels over each half of rho in [-1, 1], as angles.

    Each half is parametrised by v = sqrt(1 - |rho|) in [0, 1]; the map is analytic in v on both
    halves (theta_0 = 2 arcsin(v / sqrt 2) or pi minus that), so a kernel entry needs one sqrt
    and no arccos.
    """
    x = np.cos((2 * np.arange(DEGREE + 1) + 1) * np.pi / (2 * (DEGREE + 1)))  # in [-1, 1]
    v = (np.arange(PANELS)[:, None] + (1.0 + x[None, :]) / 2.0) / PANELS  # (PANELS, DEGREE+1)
    theta = 2.0 * np.arcsin(v / np.sqrt(2.0))  # rho >= 0 half, then rho < 0 half
    to_monomial = np.linalg.inv(np.vander(x, DEGREE + 1, increasing=True))  # values -> coefs
    return np.concatenate([theta, np.pi - theta]), to_monomial


_NODES, _TO_MONOMIAL = _panel_nodes()


def table(T):
    """The flow map at depth time ``T`` as per-panel monomials: array (3, 2*PANELS, DEGREE+1).

    Row ``VALUE`` holds cos(theta_T), ``D_DT`` its T-derivative, ``D_DRHO`` d rho_T / d rho_0,
    each as a polynomial in the local variable x in [-1, 1] of every panel; panels 0..PANELS-1
    cover rho >= 0 and the rest rho < 0.
    """
    theta0 = jnp.asarray(_NODES)
    theta = flow(theta0, T)
    ratio = theta / theta0
    values = jnp.stack(
        [
            jnp.cos(theta),
            big_d(theta) / (2.0 * jnp.pi),
            ratio**3 * d_over_cube(theta) / d_over_cube(theta0),
        ]
    )
    return values @ jnp.asarray(_TO_MONOMIAL).T


def lookup(coefs, rho):
    """Evaluate tabulated rows at correlations ``rho`` in [-1, 1] (any shape).

    ``coefs`` is (2*PANELS, DEGREE+1) for one row, giving an array shaped like ``rho``, or
    (k, 2*PANELS, DEGREE+1) for k rows at once, giving k arrays stacked on the last axis.
    """
    return lookup_v(coefs, jnp.sqrt(1.0 - jnp.abs(rho)), rho < 0)


def lookup_v(coefs, v, negative):
    """:func:`lookup` in the panels' own variable: ``v`` = sqrt(1 - |rho|) in [0, 1] and the
    sign of rho (``negative``), for callers that know v more accurately than rho.

    Each coefficient is gathered from its own contiguous (2*PANELS,) column (one 1-D ``take``
    per coefficient and row): on XLA:CPU twice as fast as one gather of whole table rows."""
    u = v * PANELS
    cell = jnp.clip(jnp.floor(u), 0, PANELS - 1)
    x = 2.0 * (u - cell) - 1.0
    idx = cell.astype(jnp.int32) + jnp.where(negative, PANELS, 0)

    def horner(c):  # c (2*PANELS, DEGREE+1): one row
        acc = jnp.take(c[:, DEGREE], idx)
        for k in range(DEGREE - 1, -1, -1):
            acc = acc * x + jnp.take(c[:, k], idx)
        return acc

    if coefs.ndim == 3:
        return jnp.stack([horner(c) for c in coefs], axis=-1)
    return horner(coefs)


# ----------------------------------------------------------------------------- kernel entries
#
# With q = q_0(a, b), n_a = sqrt(q_0(a, a)), n_b = sqrt(q_0(b, b)) and rho_0 = q / (n_a n_b):
#     K = e^{T/2} n_a n_b R(rho_0),              R = cos theta_T   (row VALUE)
#     dK/dq   = e^{T/2} R'(rho_0),               R' = d rho_T / d rho_0   (row D_DRHO)
#     dK/dn_a = e^{T/2} n_b (R - rho_0 R'),      and symmetrically for n_b
#     dK/dT   = e^{T/2} n_a n_b (R / 2 + dR/dT)  (row D_DT)


def kernel_value(coefs, rho, n1, n2, T):
    """K = e^{T/2} n1 n2 R(rho) from the VALUE row ``coefs`` (PANELS*2, DEGREE+1); broadcasts."""
    return jnp.exp(0.5 * T) * n1 * n2 * lookup(coefs, rho)


def kernel_partials(coefs, rho, n1, n2, T):
    """(K, dK/dq, dK/dn1, dK/dn2, dK/dT) from all three rows ``coefs`` of :func:`table`."""
    rows = lookup(coefs, rho)
    R, R_t, R_rho = rows[..., VALUE], rows[..., D_DT], rows[..., D_DRHO]
    growth = jnp.exp(0.5 * T)
    off_diagonal = growth * (R - rho * R_rho)
    nn = n1 * n2
    return growth * nn * R, growth * R_rho, off_diagonal * n2, off_diagonal * n1, growth * nn * (
        0.5 * R + R_t
    )


def _correlation(q, n1, n2):
    nn = n1 * n2  # a zero row: correlation 1 (its kernel is 0 anyway); NaN stays NaN
    return jnp.where(nn > 0, jnp.clip(q / jnp.where(nn > 0, nn, 1.0), -1.0, 1.0),
                     jnp.where(nn == 0, 1.0, jnp.nan))


@jax.custom_jvp
def kernel(q, n1, n2, T):
    r"""ReLU limit kernel entries, traceable and differentiable in every argument.

    q = q_0(a, b), n1 = sqrt(q_0(a, a)), n2 = sqrt(q_0(b, b)) (broadcastable arrays), T the depth
    time (a scalar). Returns :math:`e^{T/2} n_1 n_2 \cos\theta_T`. Derivatives come from the flow
    identities (a ``custom_jvp``), never from differentiating the Newton solve or the table.
    Needs 64-bit JAX.
    """
    return kernel_value(table(T)[VALUE], _correlation(q, n1, n2), n1, n2, T)


@kernel.defjvp
def _kernel_jvp(primals, tangents):
    q, n1, n2, T = primals
    K, d_q, d_n1, d_n2, d_T = kernel_partials(table(T), _correlation(q, n1, n2), n1, n2, T)
    dq, dn1, dn2, dT = tangents
    return K, d_q * dq + d_n1 * dn1 + d_n2 * dn2 + d_T * dT


# ----------------------------------------------------------------------------- the NTK
#
# A member a min(x, 0) + b max(x, 0) of the family (mean m = (a^2 + b^2)/2, cross
# c = (a - b)^2 / 2 pi) has Theta_T(a, b) = n_a n_b e^{mT} psi, where psi = Theta / (n_a n_b e^{mt})
# obeys, along the ReLU angle flow run for the time S = 2 pi c T (docs/theory.md, "The ReLU
# family's NTK"),
#     d psi / ds = (D(theta) + (m / c) cos theta - theta psi) / 2 pi,    psi_0 = cos theta_0,
# linear in psi: psi_S = U_S(theta_0) + (m / c) V_S(theta_0) with
#     dU/ds = (D(theta) - theta U) / 2 pi,  U_0 = cos theta_0;   dV/ds = (cos theta - theta V) / 2 pi,  V_0 = 0.

NTK_U, NTK_V = 0, 1
NTK_RTOL = 1e-13  # the ODE behind the NTK table (DOP853); the panels add ~1e-13


def _ntk_rhs(s, y):
    theta, U, V = y.reshape(3, -1)
    D = big_d(theta, np)
    return np.concatenate([-D / (2.0 * np.pi * np.sin(theta)), (D - theta * U) / (2.0 * np.pi),
                           (np.cos(theta) - theta * V) / (2.0 * np.pi)])


@functools.lru_cache(maxsize=32)
def ntk_table(S: float) -> np.ndarray:
    """U_S and V_S (above) as per-panel monomials: array (2, 2*PANELS, DEGREE+1).

    One DOP853 solve (scipy, rtol ``NTK_RTOL``) of the angle and both NTK parts at every panel
    node; cached per S. Rows ``NTK_U`` and ``NTK_V``, panels as in :func:`table`.
    """
    from scipy.integrate import solve_ivp

    theta0 = _NODES.ravel()
    U, V = np.cos(theta0), np.zeros_like(theta0)
    if S > 0:
        with np.errstate(invalid="ignore", over="ignore"):  # a rejected step may pass pi
            sol = solve_ivp(_ntk_rhs, (0.0, S), np.concatenate([theta0, U, V]),
                            method="DOP853", rtol=NTK_RTOL, atol=NTK_RTOL * 1e-2)
        if not sol.success:  # pragma: no cover - a smooth, bounded flow
            raise RuntimeError(f"the ReLU NTK table at S={S:g} failed: {sol.message}")
        _, U, V = sol.y[:, -1].reshape(3, -1)
    values = np.stack([U, V]).reshape(2, *_NODES.shape)
    return values @ _TO_MONOMIAL.T
