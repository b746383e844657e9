"""Limits and closed forms: the ReLU angle flow, its table, depth -> infinity, branch scalings.

References are computed independently of the library: the flow against a 30-digit mpmath
solution of the angle ODE, the table against the flow and the formulas for its derivatives,
the infinite-depth kernel against Richardson extrapolation of the exact finite-depth recursion,
and the depth-1 kernel against the arc-cosine formula written out in NumPy.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import resgp
from resgp import _x64, relu_flow

x64 = _x64.enable_x64


# ----------------------------------------------------------------------------- references

_DPS = 30


def _mp_D(t):
    return mpmath.sin(t) - t * mpmath.cos(t)


def _mp_inverse_speed(t):
    """1 / |F(t)| = 2 pi sin t / D(t), the depth time spent per unit of angle."""
    return 2 * mpmath.pi * mpmath.sin(t) / _mp_D(t)


@functools.lru_cache(maxsize=None)
def mp_flow(theta0: float, T: float) -> float:
    """theta_T of d theta/dt = -D(theta) / (2 pi sin theta), theta(0) = theta0, to ~25 digits.

    The ODE is autonomous and separable: theta_T is the root of
    int_{theta_T}^{theta0} 2 pi sin t / D(t) dt = T, found by a bracketed Newton iteration
    with mpmath quadrature at 30 digits. (Checked against mpmath.odefun's Taylor integrator,
    which agrees to 20 digits but is ~30x slower; see test_mp_reference_matches_odefun.)
    """
    with mpmath.workdps(_DPS):
        th0, TT = mpmath.mpf(theta0), mpmath.mpf(T)

        def g(th):
            return mpmath.quad(_mp_inverse_speed, [th, th0]) - TT

        lo, hi = th0 / (1 + th0 * TT) / 2, th0  # 1/theta_T < 1/theta0 + T / (6 pi) + O(T)
        th = th0
        for _ in range(200):
            val = g(th)
            if val > 0:
                lo = th
            else:
                hi = th
            new = th + val / _mp_inverse_speed(th)  # Newton: g'(th) = -1/|F(th)|
            if not lo < new < hi:
                new = (lo + hi) / 2
            if abs(new - th) < mpmath.mpf(10) ** (-(_DPS - 4)):
                return float(new)
            th = new
        raise RuntimeError("mpmath reference did not converge")


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


def test_mp_reference_matches_odefun():
    """The quadrature reference is a solution of the ODE: compare to a direct ODE integration."""
    with mpmath.workdps(20):
        sol = mpmath.odefun(lambda t, th: -_mp_D(th) / (2 * mpmath.pi * mpmath.sin(th)), 0, mpmath.mpf(1))
        direct = float(sol(mpmath.mpf(1)))
    assert abs(direct - mp_flow(1.0, 1.0)) < 1e-15
    # and a fixed point check of the reference: theta_{s+t} = flow(flow(theta, s), t)
    assert abs(mp_flow(mp_flow(2.0, 0.5), 0.5) - mp_flow(2.0, 1.0)) < 1e-15


@pytest.mark.parametrize("T", [0.01, 1.0, 10.0])
def test_flow_matches_high_precision_ode(T):
    got = lib_flow(np.array(ANGLES), T)
    want = np.array([mp_flow(a, T) for a in ANGLES])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    # theta decreases along the flow (F < 0 on (0, pi])
    assert np.all(got < np.array(ANGLES))


def test_flow_at_pi_and_zero_time():
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
def test_table_value_against_mpmath_directly(T):
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


# ----------------------------------------------------------------------------- (d) depth -> infinity


def _X(n=6, d=4, seed=1):
    return np.random.default_rng(seed).normal(size=(n, d))


@pytest.mark.parametrize(
    "T, bias", [(0.5, 0.0), (1.0, 0.0), (3.0, 0.0), (1.0, 0.3), (3.0, 0.7)]
)
def test_limit_matches_richardson_extrapolation(T, bias):
    X = _X()
    kw = dict(branch_variance=T, bias_variance=bias, weight_variance=1.5)
    K_inf = resgp.resnet_nngp(X, **kw)
    K = {L: resgp.resnet_nngp(X, depth=L, **kw) for L in (1000, 2000, 4000)}
    R = (8 * K[4000] - 6 * K[2000] + K[1000]) / 3  # cancels the 1/L and 1/L^2 terms
    scale = np.abs(K_inf).max()
    rel = np.abs(R - K_inf).max() / scale
    assert rel <= 1e-8, rel
    # and the extrapolation really improves on the deepest finite network
    assert rel < 1e-2 * np.abs(K[4000] - K_inf).max() / scale


@pytest.mark.parametrize("T", [1.0, 3.0])
def test_finite_depth_error_is_order_one_over_L(T):
    X = _X(seed=2)
    K_inf = resgp.resnet_nngp(X, branch_variance=T)
    scale = np.abs(K_inf).max()
    c = np.array(
        [L * np.abs(resgp.resnet_nngp(X, depth=L, branch_variance=T) - K_inf).max() / scale for L in (250, 500, 1000, 2000)]
    )
    assert np.all(c > 0) and np.all(np.isfinite(c))
    assert c.max() / c.min() <= 1.05, c
    # the diagonal error is known exactly: q0 ((1 + T/(2L))^L - e^{T/2})
    L = 500
    d_L = resgp.resnet_nngp_diag(X, depth=L, branch_variance=T)
    q0 = np.einsum("ij,ij->i", X, X) / X.shape[1]
    np.testing.assert_allclose(d_L, q0 * (1 + T / (2 * L)) ** L, rtol=1e-12)


# ----------------------------------------------------------------------------- (e) branch scales


def _decaying_scales(L, p):
    a = np.arange(1, L + 1, dtype=float) ** -p
    return a / np.sqrt((a**2).sum())  # sum alpha^2 = 1


def test_nonuniform_branch_scales_approach_limit():
    """alpha_l^2 ~ l^-0.7 (alpha_l ~ l^-0.35), sum = 1: max alpha -> 0, so the limit is q_1."""
    X = _X(seed=3)
    K_inf = resgp.resnet_nngp(X)  # T = 1
    scale = np.abs(K_inf).max()
    errs = [
        np.abs(resgp.resnet_nngp(X, depth=L, branch_scales=_decaying_scales(L, 0.35)) - K_inf).max() / scale
        for L in (10, 100, 1000, 4000)
    ]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-3, errs


def test_summable_branch_scales_do_not_approach_limit():
    """alpha_l ~ l^-0.7: sum alpha^2 converges, so alpha_1^2 stays ~ 1/zeta(1.4) and the
    recursion is NOT an Euler scheme with vanishing steps; the error plateaus (THEORY.md)."""
    X = _X(seed=3)
    K_inf = resgp.resnet_nngp(X)
    scale = np.abs(K_inf).max()
    errs = [
        np.abs(resgp.resnet_nngp(X, depth=L, branch_scales=_decaying_scales(L, 0.7)) - K_inf).max() / scale
        for L in (100, 1000, 4000)
    ]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs  # still decreasing ...
    assert errs[-1] > 5e-3, errs  # ... but to a non-zero plateau


@pytest.mark.parametrize("T, L, bias", [(1.0, 7, 0.0), (2.5, 40, 0.2)])
def test_uniform_branch_scales_equal_depth(T, L, bias):
    X = _X(seed=4)
    a = resgp.resnet_nngp(X, depth=L, branch_scales=[np.sqrt(T / L)] * L, bias_variance=bias)
    b = resgp.resnet_nngp(X, depth=L, branch_variance=T, bias_variance=bias)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    # without depth, branch_scales sets the depth itself
    c = resgp.resnet_nngp(X, branch_scales=[np.sqrt(T / L)] * L, bias_variance=bias)
    np.testing.assert_allclose(c, b, rtol=1e-14, atol=0)


# ----------------------------------------------------------------------------- (f) ReLU closed forms


def _arccos_kernel(Q11, Q22, Q12):
    """E[relu(u) relu(v)] by Cho & Saul, written out independently."""
    s = np.sqrt(np.outer(Q11, Q22))
    cos = np.clip(Q12 / s, -1.0, 1.0)
    th = np.arccos(cos)
    return s * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi)


@pytest.mark.parametrize("T, wv, bv", [(1.0, 1.0, 0.0), (0.3, 2.0, 0.5), (4.0, 0.7, 0.1)])
def test_depth_one_closed_form(T, wv, bv):
    rng = np.random.default_rng(5)
    X1, X2 = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    d = X1.shape[1]
    q11 = wv * np.sum(X1 * X1, 1) / d + bv
    q22 = wv * np.sum(X2 * X2, 1) / d + bv
    q12 = wv * X1 @ X2.T / d + bv
    want = q12 + T * _arccos_kernel(q11, q22, q12)
    got = resgp.resnet_nngp(X1, X2, depth=1, branch_variance=T, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * np.abs(want).max())

    # MLP at depth 1: wv * arc-cosine + bv
    want_mlp = wv * _arccos_kernel(q11, q22, q12) + bv
    got_mlp = resgp.mlp_nngp(X1, X2, depth=1, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(got_mlp, want_mlp, rtol=1e-13, atol=1e-15 * np.abs(want_mlp).max())


@pytest.mark.parametrize("T, wv, bv", [(1.0, 1.0, 0.0), (0.2, 2.0, 0.4), (7.0, 0.5, 0.0)])
def test_infinite_depth_diagonal(T, wv, bv):
    X = np.random.default_rng(6).normal(size=(7, 5)) * np.logspace(-3, 3, 7)[:, None]
    q0 = wv * np.sum(X * X, 1) / X.shape[1] + bv
    want = q0 * np.exp(T / 2)
    kw = dict(branch_variance=T, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(resgp.resnet_nngp_diag(X, **kw), want, rtol=1e-14)
    # the matrix diagonal goes through the tabulated flow at rho = 1 (table accuracy 1e-13)
    np.testing.assert_allclose(np.diag(resgp.resnet_nngp(X, **kw)), want, rtol=1e-13)


def _corr(K):
    return K[0, 1] / np.sqrt(K[0, 0] * K[1, 1])


def test_mlp_correlation_collapses_resnet_does_not():
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # orthogonal pair
    mlp = [_corr(resgp.mlp_nngp(X, depth=L, weight_variance=2.0)) for L in (1, 10, 100)]
    assert 0 < mlp[0] < mlp[1] < mlp[2] < 1
    assert abs(mlp[0] - 1 / np.pi) < 1e-14  # arc-cosine kernel of orthogonal inputs
    assert mlp[2] > 0.99, mlp

    res_inf = _corr(resgp.resnet_nngp(X))  # T = 1
    # independent value: cos of the mpmath angle flow from pi/2
    assert abs(res_inf - np.cos(mp_flow(float(np.pi / 2), 1.0))) < 1e-13
    assert 0 < res_inf < 0.5
    res_L = [_corr(resgp.resnet_nngp(X, depth=L)) for L in (10, 100, 1000)]
    assert all(0 < r < 0.5 for r in res_L), res_L
    assert abs(res_L[-1] - res_inf) < 1e-3
    # even a long depth time leaves the ResNet limit away from 1, unlike the MLP at depth 100
    res_T10 = _corr(resgp.resnet_nngp(X, branch_variance=10.0))
    assert res_T10 < 0.9 < mlp[2]
