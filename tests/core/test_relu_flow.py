"""resgp.core.relu_flow: ReLU's angle flow and its table.

References are computed independently of the library: the flow against a 30-digit mpmath
solution of the angle ODE (the ``mp_flow`` fixture of tests/conftest.py), the table against the
flow and the formulas for its derivatives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from resgp.core import relu_flow
from resgp.core.x64 import enable_x64 as x64

_DPS = 30


def _mp_D(t):
    return mpmath.sin(t) - t * mpmath.cos(t)


def F(theta):
    """The angle ODE's right-hand side, in NumPy (theta not tiny)."""
    return -(np.sin(theta) - theta * np.cos(theta)) / (2 * np.pi * np.sin(theta))


_flow = jax.jit(relu_flow.flow)  # compiled once per shape (eager fori_loop retraces every call)
_table = jax.jit(relu_flow.table)


def lib_flow(theta0, T):
    with x64():
        return np.asarray(_flow(jnp.asarray(theta0, dtype=jnp.float64), jnp.float64(T)))


def mp_D_array(theta):
    """D(theta) = sin - theta cos to full float64 accuracy: NumPy where its cancellation is
    harmless (relative error ~ 3 eps / theta^2 < 2e-15 for theta > 0.5), 30-digit mpmath below."""
    theta = np.asarray(theta, dtype=float)
    out = np.sin(theta) - theta * np.cos(theta)
    small = theta <= 0.5
    with mpmath.workdps(_DPS):
        out[small] = [float(_mp_D(mpmath.mpf(float(t)))) for t in theta[small]]
    return out


# ----------------------------------------------------------------------------- (a) flow vs mpmath

ANGLES = [0.05, 0.3, 1.0, 1.5, 2.0, 2.7, 3.1, 3.14]


def test_mp_reference_matches_odefun(mp_flow):
    """The quadrature reference is a solution of the ODE: compare to a direct ODE integration."""
    with mpmath.workdps(20):
        sol = mpmath.odefun(lambda t, th: -_mp_D(th) / (2 * mpmath.pi * mpmath.sin(th)), 0, mpmath.mpf(1))
        direct = float(sol(mpmath.mpf(1)))
    assert abs(direct - mp_flow(1.0, 1.0)) < 1e-15
    # and a fixed point check of the reference: theta_{s+t} = flow(flow(theta, s), t)
    assert abs(mp_flow(mp_flow(2.0, 0.5), 0.5) - mp_flow(2.0, 1.0)) < 1e-15


@pytest.mark.parametrize("T", [0.01, 1.0, 10.0])
def test_flow_matches_high_precision_ode(T, mp_flow):
    got = lib_flow(np.array(ANGLES), T)
    want = np.array([mp_flow(a, T) for a in ANGLES])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    # theta decreases along the flow (F < 0 on (0, pi])
    assert np.all(got < np.array(ANGLES))


def test_flow_at_pi_and_zero_time(mp_flow):
    with mpmath.workdps(_DPS):
        want = mp_flow(float(np.pi), 1.0)
    assert abs(lib_flow(np.array([np.pi]), 1.0)[0] - want) <= 1e-13
    th = np.array(ANGLES)
    np.testing.assert_allclose(lib_flow(th, 0.0), th, rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- (b) the table

TABLE_TS = [1e-4, 1e-2, 1.0, 10.0, 100.0]


def _rhos():
    rng = np.random.default_rng(20240611)
    rho = rng.uniform(-1.0, 1.0, 5000)
    return np.concatenate([rho, [-1.0, 0.0, 1.0]])


def _table_rows(T, rho):
    """Library table rows at rho (n, 3) and the references for rho < 1 (mask, value, d_dt, d_drho)."""
    with x64():
        coefs = _table(jnp.float64(T))
        assert coefs.shape == (3, 2 * relu_flow.PANELS, relu_flow.DEGREE + 1)
        got = np.asarray(relu_flow.lookup(coefs, jnp.asarray(rho)))  # (n, 3)
        got_value = np.asarray(relu_flow.lookup(coefs[relu_flow.VALUE], jnp.asarray(rho)))
    assert got.shape == (rho.size, 3)
    np.testing.assert_array_equal(got[:, relu_flow.VALUE], got_value)
    inner = rho < 1.0  # theta_0 = 0 is the fixed point of the flow: handled separately
    theta0 = np.arccos(rho[inner])
    thetaT = lib_flow(theta0, T)
    D_T = mp_D_array(thetaT)
    return got, inner, np.cos(thetaT), D_T / (2 * np.pi), D_T / mp_D_array(theta0)


@pytest.mark.parametrize("T", TABLE_TS)
def test_table_rows_against_flow(T):
    rho = _rhos()
    got, inner, value, d_dt, d_drho = _table_rows(T, rho)

    err = np.abs(got[inner, relu_flow.VALUE] - value).max()
    assert err <= 1e-13, err
    err = np.abs(got[inner, relu_flow.D_DT] - d_dt).max()
    assert err <= 1e-13, err
    err = np.abs(got[inner, relu_flow.D_DRHO] - d_drho).max()
    assert err <= 1e-13, err

    # rho = 1: theta stays 0, cos theta_T = 1, D(0) = 0, d rho_T / d rho_0 = 1
    at_one = got[rho == 1.0][0]
    assert abs(at_one[relu_flow.VALUE] - 1.0) <= 1e-13
    assert abs(at_one[relu_flow.D_DT]) <= 1e-13
    assert abs(at_one[relu_flow.D_DRHO] - 1.0) <= 1e-13


@pytest.mark.parametrize("T", TABLE_TS)
def test_table_rows_near_rho_one(T):
    """The first panels (small angles), where the flow is steepest in v = sqrt(1 - rho) for large T."""
    v = np.linspace(1e-7, 3.0 / relu_flow.PANELS, 400)  # the first three panels of each half
    rho = np.concatenate([1.0 - v**2, -(1.0 - v**2)])
    got, inner, value, d_dt, d_drho = _table_rows(T, rho)
    assert inner.all()
    errs = {
        "VALUE": np.abs(got[:, relu_flow.VALUE] - value).max(),
        "D_DT": np.abs(got[:, relu_flow.D_DT] - d_dt).max(),
        "D_DRHO": np.abs(got[:, relu_flow.D_DRHO] - d_drho).max(),
    }
    assert max(errs.values()) <= 1e-13, errs


@pytest.mark.parametrize("T", [1.0, 10.0])
def test_table_value_against_mpmath_directly(T, mp_flow):
    """Close the loop: table -> mpmath ODE solution, without going through flow()."""
    rho = np.cos(ANGLES)  # rounding rho moves rho_T by at most D_DRHO * 1e-16
    with x64():
        got = np.asarray(relu_flow.lookup(_table(jnp.float64(T))[relu_flow.VALUE], jnp.asarray(rho)))
    want = np.cos([mp_flow(a, T) for a in ANGLES])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- (c) flow identities


@pytest.mark.parametrize("T", [0.1, 1.0, 5.0])
def test_flow_identities_by_finite_differences(T):
    theta0 = np.linspace(0.1, 3.0, 12)
    h = 1e-4
    thetaT = lib_flow(theta0, T)

    dT = (lib_flow(theta0, T + h) - lib_flow(theta0, T - h)) / (2 * h)
    np.testing.assert_allclose(dT, F(thetaT), rtol=1e-7)

    dtheta0 = (lib_flow(theta0 + h, T) - lib_flow(theta0 - h, T)) / (2 * h)
    np.testing.assert_allclose(dtheta0, F(thetaT) / F(theta0), rtol=1e-7)

    # semigroup property of an autonomous flow
    np.testing.assert_allclose(lib_flow(lib_flow(theta0, T / 3), 2 * T / 3), thetaT, rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- the NTK table


def _ntk_reference(theta0, T, a, b):
    """Theta_T / (n_a n_b) of abrelu(a, b) for unit inputs at angle theta0: the pair flow
    (q_aa, q_bb, q_ab, Theta) in the covariances, closed-form arc-cosine duals, scipy's DOP853 at
    rtol 1e-13 (no angle flow, no table)."""
    from scipy.integrate import solve_ivp

    c, m = (a - b) ** 2 / (2 * np.pi), (a * a + b * b) / 2

    def rhs(t, y):
        q11, q22, q12, th = y
        s = np.sqrt(q11 * q22)
        ang = np.arccos(np.clip(q12 / s, -1.0, 1.0))
        dual = c * s * np.sin(ang) + (m - c * ang) * q12
        return [m * q11, m * q22, dual, dual + th * (m - c * ang)]

    y0 = [1.0, 1.0, np.cos(theta0), np.cos(theta0)]
    return solve_ivp(rhs, (0, T), y0, method="DOP853", rtol=1e-13, atol=1e-15).y[3, -1]


@pytest.mark.parametrize("T", [0.01, 1.0, 4.0, 30.0])
@pytest.mark.parametrize("a,b", [(0.0, 1.0), (0.2, 1.0), (-1.0, 1.0)])
def test_ntk_table_against_the_pair_flow(T, a, b):
    """psi_S = U_S + (m/c) V_S from the table, at S = 2 pi c T, against an independent pair flow
    at angles across (0, pi) (both halves of the panels), and the closed form of the diagonal,
    e^{mT}(1 + mT)."""
    c, m = (a - b) ** 2 / (2 * np.pi), (a * a + b * b) / 2
    theta0 = np.array([0.05, 0.3, 1.0, 1.5, 2.0, 2.8, 3.1])
    rho = np.cos(theta0)
    coefs = relu_flow.ntk_table(2 * np.pi * c * T)
    with x64():
        v = jnp.sqrt(1.0 - jnp.abs(jnp.asarray(rho)))
        rows = np.asarray(relu_flow.lookup_v(jnp.asarray(coefs), v, jnp.asarray(rho) < 0))
        diag = np.asarray(relu_flow.lookup_v(jnp.asarray(coefs), jnp.zeros(1), jnp.zeros(1) < 0))
    got = np.exp(m * T) * (rows[:, 0] + m / c * rows[:, 1])
    want = np.array([_ntk_reference(t, T, a, b) for t in theta0])
    scale = np.exp(m * T) * (1 + m * T)  # the diagonal: the entries' scale
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-11 * scale)
    np.testing.assert_allclose(np.exp(m * T) * (diag[:, 0] + m / c * diag[:, 1]), scale,
                               rtol=1e-12)
