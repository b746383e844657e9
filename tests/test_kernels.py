"""The public kernel functions (resgp.resnet_nngp, resgp.resnet_ntk, resgp.mlp_*, their
diagonals and resgp.resnet_limit).

* Limits: infinite depth against Richardson extrapolation of the exact finite-depth recursion
  (every activation, NNGP and NTK), the finite-depth error O(1/L), branch scalings, closed forms
  (the depth-1 arc-cosine kernel, the infinite-depth diagonals) and ReLU at infinite depth
  against an independent high-precision (mpmath) solution of the ODE.
* Structural properties: symmetry, PSD, diagonals, homogeneity, blocks, dtypes and JAX
  settings, tiling. Hypothesis draws the inputs; a few explicit cases pin the extremes
  (huge/tiny norms, zero rows, d = 2000).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import resgp
from resgp import activations as act
from resgp.core import engine, tiling
from resgp.core.x64 import enable_x64

SETTINGS = settings(max_examples=25, deadline=None)


# ----------------------------------------------------------------------------- other activations: infinite depth

CASES = {
    "leaky_relu": act.leaky_relu(0.1),
    "abrelu": act.abrelu(-0.4, 1.3),
    "erf": "erf",
    "erf_abc": act.erf(1.3, 0.7, 0.2),
    "sin": act.sin(1.1, 0.9, 0.3),
    "gelu": "gelu",
    "tanh": "tanh",
    "custom": lambda x: jnp.sin(x) + 0.3 * x * jnp.exp(-0.1 * x * x),
}


def richardson(f, X, Y, depths=(250, 500, 1000), **kw):
    K = [f(X, Y, depth=L, **kw) for L in depths]
    return (8 * K[2] - 6 * K[1] + K[0]) / 3, K[2]  # cancels the 1/L and 1/L^2 terms


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.heavy)
                                  if n in ("tanh", "custom") else n for n in CASES])
def test_infinite_depth_matches_richardson(name, normal_inputs):
    X, Y = normal_inputs(7, 5), normal_inputs(5, 5, seed=2, scale=1.2)
    kw = dict(activation=CASES[name], branch_variance=1.3, weight_variance=0.9, bias_variance=0.1)
    K_inf = resgp.resnet_nngp(X, Y, **kw)
    R, K_deep = richardson(resgp.resnet_nngp, X, Y, **kw)
    scale = np.abs(K_inf).max()
    rel = np.abs(R - K_inf).max() / scale
    assert rel <= 1e-7, rel
    assert rel < 1e-2 * np.abs(K_deep - K_inf).max() / scale  # the limit is not the deep net
    # the symmetric case: exactly symmetric, its diagonal equals the diagonal solve
    K = resgp.resnet_nngp(X, **kw)
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(np.diag(K), resgp.resnet_nngp_diag(X, **kw), rtol=1e-10)


def test_tolerances_control_the_error(normal_inputs):
    X = normal_inputs(12, 5, seed=3)
    tight = resgp.resnet_nngp(X, activation="erf", rtol=1e-13, atol=1e-15)
    errs = [np.abs(resgp.resnet_nngp(X, activation="erf", rtol=r, atol=1e-15) - tight).max()
            / np.abs(tight).max() for r in (1e-6, 1e-9)]
    assert errs[0] < 1e-6 and errs[1] < 1e-9, errs
    assert errs[1] < errs[0]
    with pytest.raises(ValueError, match="rtol"):
        resgp.resnet_nngp(X, activation="erf", rtol=0.5)
    with pytest.raises(TypeError, match="atol"):
        resgp.resnet_nngp(X, activation="erf", atol="small")


def test_large_inputs_tiled_and_symmetric(monkeypatch, normal_inputs):
    """Several tiles (shrunk tile sizes): the same matrix as one tile, exactly symmetric."""
    X = normal_inputs(40, 5, seed=4)
    one = resgp.resnet_nngp(X, activation="gelu", rtol=1e-12)
    monkeypatch.setattr(engine, "PAIR_CHUNK", 16)
    monkeypatch.setattr(engine, "TABLE_TILE", 16)  # gelu takes the tabulated flow map
    assert len(tiling.blocks(40, engine.TABLE_TILE)) == 3  # really tiled
    tiled = resgp.resnet_nngp(X, activation="gelu", rtol=1e-12)
    np.testing.assert_array_equal(tiled, tiled.T)
    np.testing.assert_allclose(tiled, one, rtol=0, atol=1e-11 * np.abs(one).max())
    cross = resgp.resnet_nngp(X[:25], X[10:], activation="gelu", rtol=1e-12)
    np.testing.assert_allclose(cross, one[:25, 10:], rtol=0, atol=1e-11 * np.abs(one).max())


def test_resnet_limit_from_covariances_matches_kernel(normal_inputs):
    X, Y = normal_inputs(7, 5), normal_inputs(4, 5, seed=5)
    d = X.shape[1]
    q11, q22, q12 = (X * X).sum(1) / d, (Y * Y).sum(1) / d, X @ Y.T / d
    # relu: the same table and ODE; erf: resnet_limit integrates the ODE, the kernel functions
    # evaluate the tabulated flow (resgp.core.flow_table), both accurate to ~1e-10
    for a, rtol in (("relu", 1e-12), ("erf", 1e-9)):
        out = resgp.resnet_limit(q11, q22, q12, q12, activation=a)
        np.testing.assert_allclose(out[2], resgp.resnet_nngp(X, Y, activation=a), rtol=rtol)
        np.testing.assert_allclose(out[3], resgp.resnet_ntk(X, Y, activation=a), rtol=rtol)
        np.testing.assert_allclose(out[0], resgp.resnet_nngp_diag(X, activation=a), rtol=1e-10)
    with pytest.raises(ValueError, match="q12 must have shape"):
        resgp.resnet_limit(q11, q22, q12.T)
    with pytest.raises(ValueError, match="variances"):
        resgp.resnet_limit(-q11, q22, q12)


# ----------------------------------------------------------------------------- ReLU: depth -> infinity


@pytest.mark.parametrize(
    "T, bias", [(0.5, 0.0), (1.0, 0.0), (3.0, 0.0), (1.0, 0.3), (3.0, 0.7)]
)
def test_limit_matches_richardson_extrapolation(T, bias, normal_inputs):
    X = normal_inputs(6, 4)
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
def test_finite_depth_error_is_order_one_over_L(T, normal_inputs):
    X = normal_inputs(6, 4, seed=2)
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


# ----------------------------------------------------------------------------- branch scales


def _decaying_scales(L, p):
    a = np.arange(1, L + 1, dtype=float) ** -p
    return a / np.sqrt((a**2).sum())  # sum alpha^2 = 1


def test_nonuniform_branch_scales_approach_limit(normal_inputs):
    """alpha_l^2 ~ l^-0.7 (alpha_l ~ l^-0.35), sum = 1: max alpha -> 0, so the limit is q_1."""
    X = normal_inputs(6, 4, seed=3)
    K_inf = resgp.resnet_nngp(X)  # T = 1
    scale = np.abs(K_inf).max()
    errs = [
        np.abs(resgp.resnet_nngp(X, depth=L, branch_scales=_decaying_scales(L, 0.35)) - K_inf).max() / scale
        for L in (10, 100, 1000, 4000)
    ]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-3, errs


def test_summable_branch_scales_do_not_approach_limit(normal_inputs):
    """alpha_l ~ l^-0.7: sum alpha^2 converges, so alpha_1^2 stays ~ 1/zeta(1.4) and the
    recursion is NOT an Euler scheme with vanishing steps; the error plateaus (docs/theory.md)."""
    X = normal_inputs(6, 4, seed=3)
    K_inf = resgp.resnet_nngp(X)
    scale = np.abs(K_inf).max()
    errs = [
        np.abs(resgp.resnet_nngp(X, depth=L, branch_scales=_decaying_scales(L, 0.7)) - K_inf).max() / scale
        for L in (100, 1000, 4000)
    ]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs  # still decreasing ...
    assert errs[-1] > 5e-3, errs  # ... but to a non-zero plateau


@pytest.mark.parametrize("T, L, bias", [(1.0, 7, 0.0), (2.5, 40, 0.2)])
def test_uniform_branch_scales_equal_depth(T, L, bias, normal_inputs):
    X = normal_inputs(6, 4, seed=4)
    a = resgp.resnet_nngp(X, depth=L, branch_scales=[np.sqrt(T / L)] * L, bias_variance=bias)
    b = resgp.resnet_nngp(X, depth=L, branch_variance=T, bias_variance=bias)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    # without depth, branch_scales sets the depth itself
    c = resgp.resnet_nngp(X, branch_scales=[np.sqrt(T / L)] * L, bias_variance=bias)
    np.testing.assert_allclose(c, b, rtol=1e-14, atol=0)


# ----------------------------------------------------------------------------- ReLU closed forms


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


def test_mlp_correlation_collapses_resnet_does_not(mp_flow):
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


# ----------------------------------------------------------------------------- NTK

def _arccos_ntk(Q11, Q22, Q12):
    s = np.sqrt(np.outer(Q11, Q22))
    th = np.arccos(np.clip(Q12 / s, -1, 1))
    return s * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi), (np.pi - th) / (2 * np.pi)


@pytest.mark.parametrize("T, wv, bv", [(1.0, 1.0, 0.0), (0.4, 2.0, 0.3)])
def test_ntk_depth_one_closed_form(T, wv, bv, normal_inputs):
    X1, X2 = normal_inputs(5, 3, seed=2), normal_inputs(4, 3, seed=3)
    d = X1.shape[1]
    q11, q22 = wv * (X1 * X1).sum(1) / d + bv, wv * (X2 * X2).sum(1) / d + bv
    q12 = wv * X1 @ X2.T / d + bv
    dual, ddual = _arccos_ntk(q11, q22, q12)
    want = q12 + T * (dual + q12 * ddual)  # Theta_0 = q_0, one block
    got = resgp.resnet_ntk(X1, X2, depth=1, branch_variance=T, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * np.abs(want).max())
    # MLP, one hidden layer: wv (dual + q0 ddual) + bv
    want = wv * (dual + q12 * ddual) + bv
    got = resgp.mlp_ntk(X1, X2, depth=1, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * np.abs(want).max())


@pytest.mark.parametrize("T", [0.5, 2.0])
def test_relu_infinite_depth_ntk_diagonal_closed_form(T, normal_inputs):
    """Theta'(a,a) = q/2 + Theta/2 with q = q0 e^{t/2}: Theta_T = q0 e^{T/2} (1 + T/2)."""
    X = normal_inputs(5, 4) * np.logspace(-2, 2, 5)[:, None]
    q0 = (X * X).sum(1) / X.shape[1] + 0.2
    want = q0 * np.exp(T / 2) * (1 + T / 2)
    kw = dict(branch_variance=T, bias_variance=0.2)
    np.testing.assert_allclose(resgp.resnet_ntk_diag(X, **kw), want, rtol=1e-10)
    np.testing.assert_allclose(np.diag(resgp.resnet_ntk(X, **kw)), want, rtol=1e-10)
    # finite depth: (1 + g/2)^L q0 (1 + L g / (2 + g)), g = T / L
    L = 40
    g = T / L
    np.testing.assert_allclose(resgp.resnet_ntk_diag(X, depth=L, **kw),
                               q0 * (1 + g / 2) ** L * (1 + L * g / (2 + g)), rtol=1e-13)


@pytest.mark.parametrize("name", ["relu", "leaky", "erf", "gelu",
                                  pytest.param("tanh", marks=pytest.mark.heavy), "sin"])
def test_infinite_depth_ntk_matches_richardson(name, normal_inputs):
    a = {"leaky": act.leaky_relu(0.2), "sin": act.sin(1.0, 1.2, 0.4)}.get(name, name)
    X, Y = normal_inputs(6, 4), normal_inputs(5, 4, seed=4, scale=1.3)
    kw = dict(activation=a, branch_variance=1.5, weight_variance=0.9, bias_variance=0.1)
    Th_inf = resgp.resnet_ntk(X, Y, **kw)
    Th = [resgp.resnet_ntk(X, Y, depth=L, **kw) for L in (250, 500, 1000)]
    R = (8 * Th[2] - 6 * Th[1] + Th[0]) / 3
    scale = np.abs(Th_inf).max()
    rel = np.abs(R - Th_inf).max() / scale
    assert rel <= 1e-7, rel
    assert rel < 1e-2 * np.abs(Th[2] - Th_inf).max() / scale
    # the NTK is not the NNGP
    assert np.abs(Th_inf - resgp.resnet_nngp(X, Y, **kw)).max() > 0.05 * scale
    K = resgp.resnet_ntk(X, **kw)
    np.testing.assert_array_equal(K, K.T)
    assert np.all(np.linalg.eigvalsh(K) > -1e-12 * scale)


# ----------------------------------------------------------------------------- NTK: mpmath reference


@functools.lru_cache(maxsize=None)
def mp_relu_ntk(A: float, B: float, C: float, T: float):
    """(K_T, Theta_T) of one pair for ReLU, by mpmath's Taylor ODE solver at 25 digits.

    Independent of resgp: q_aa = A e^{t/2}, q_bb = B e^{t/2} exactly; the state (c, Theta) obeys
    c' = s (sin th + (pi - th) cos th) / 2 pi, Theta' = c' + Theta (pi - th) / 2 pi with
    s = sqrt(A B) e^{t/2}, cos th = c / s.
    """
    with mpmath.workdps(25):
        A, B, C = mpmath.mpf(A), mpmath.mpf(B), mpmath.mpf(C)

        def F(t, y):
            c, theta_ntk = y
            s = mpmath.sqrt(A * B) * mpmath.exp(t / 2)
            th = mpmath.acos(c / s)
            dual = s * (mpmath.sin(th) + (mpmath.pi - th) * mpmath.cos(th)) / (2 * mpmath.pi)
            return [dual, dual + theta_ntk * (mpmath.pi - th) / (2 * mpmath.pi)]

        sol = mpmath.odefun(F, 0, [C, C])
        return tuple(float(v) for v in sol(mpmath.mpf(T)))


def test_relu_infinite_depth_ntk_against_mpmath():
    X = np.array([[1.0, 0.0, 0.5], [0.3, 1.2, -0.4], [-1.0, 0.2, 0.1]])
    T, bv = 1.5, 0.1
    d = X.shape[1]
    Q = X @ X.T / d + bv
    Theta = resgp.resnet_ntk(X, branch_variance=T, bias_variance=bv)
    K = resgp.resnet_nngp(X, branch_variance=T, bias_variance=bv)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        k_ref, th_ref = mp_relu_ntk(Q[i, i], Q[j, j], Q[i, j], T)
        assert abs(K[i, j] - k_ref) < 1e-13 * abs(K).max(), (i, j)
        assert abs(Theta[i, j] - th_ref) < 1e-10 * abs(Theta).max(), (i, j, Theta[i, j] - th_ref)


def test_ntk_errors(normal_inputs):
    X3 = normal_inputs(3, 4)
    with pytest.raises(ValueError, match="unknown activation"):
        resgp.resnet_ntk(X3, activation="softsign")
    no_derivative = resgp.Activation("plain", act.relu_dual, homogeneous=True)
    with pytest.raises(ValueError, match="no derivative dual"):
        resgp.resnet_ntk(X3, depth=2, activation=no_derivative)
    with pytest.raises(ValueError, match="no derivative dual"):
        resgp.resnet_ntk(X3, activation=no_derivative)
    with pytest.raises(TypeError, match="depth"):
        resgp.mlp_ntk(X3, depth=None)
    # a JAX input gives a JAX output
    out = resgp.resnet_ntk(jnp.asarray(X3), depth=2)
    assert hasattr(out, "devices") and out.shape == (3, 3)


KINDS = ["random", "duplicated", "collinear", "huge", "tiny", "mixed", "zero_rows"]


def make_X(kind: str, seed: int, n: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.normal(size=(n, d))
    if kind == "duplicated":
        base = rng.normal(size=(max(1, n // 2), d))
        return base[rng.integers(0, len(base), n)]
    if kind == "collinear":  # multiples of one vector, both signs
        return rng.normal(size=(n, 1)) * rng.normal(size=(1, d))
    if kind == "huge":
        return rng.normal(size=(n, d)) * 1e100
    if kind == "tiny":
        return rng.normal(size=(n, d)) * 1e-100
    if kind == "mixed":
        return rng.normal(size=(n, d)) * 10.0 ** rng.uniform(-50, 50, (n, 1))
    if kind == "zero_rows":
        X = rng.normal(size=(n, d))
        X[rng.permutation(n)[: max(1, n // 2)]] = 0.0
        return X
    raise AssertionError(kind)


def kernel(net, X1, X2=None, **kw):
    return (resgp.resnet_nngp if net == "resnet" else resgp.mlp_nngp)(X1, X2, **kw)


def kernel_diag(net, X, **kw):
    return (resgp.resnet_nngp_diag if net == "resnet" else resgp.mlp_nngp_diag)(X, **kw)


@st.composite
def configs(draw, bias=st.sampled_from([0.0, 0.5])):
    """(net, kwargs): resnet with depth None/1/5 or mlp with depth 1/5, with or without bias."""
    net = draw(st.sampled_from(["resnet", "mlp"]))
    depth = draw(st.sampled_from([None, 1, 5] if net == "resnet" else [1, 5]))
    kw = dict(depth=depth, bias_variance=draw(bias))
    if net == "resnet":
        kw["branch_variance"] = draw(st.sampled_from([1.0, 2.5]))
    return net, kw


def assert_psd(K):
    scale = np.abs(K).max()
    if scale == 0:
        return
    ev = np.linalg.eigvalsh(K / scale)  # relative criterion: scale-free, no overflow at 1e200
    assert ev.min() >= -1e-10 * ev.max(), (ev.min(), ev.max())


def check_gram(net, X, kw):
    K = kernel(net, X, **kw)
    assert isinstance(K, np.ndarray) and K.dtype == np.float64 and K.shape == (len(X), len(X))
    assert np.all(np.isfinite(K))
    assert np.array_equal(K, K.T)
    assert_psd(K)
    d = np.diag(K)
    assert np.all(d >= 0)
    # Cauchy-Schwarz, relative to the diagonals (a correlation never exceeds 1)
    assert np.all(np.abs(K) <= np.sqrt(d)[:, None] * np.sqrt(d)[None, :] * (1 + 1e-12))
    diag = kernel_diag(net, X, **kw)
    assert diag.dtype == np.float64 and diag.shape == (len(X),)
    np.testing.assert_allclose(diag, d, rtol=1e-13, atol=0)
    zero = ~X.any(axis=1)
    if kw["bias_variance"] == 0:
        assert np.all(K[zero] == 0) and np.all(K[:, zero] == 0)
        assert np.all(diag[zero] == 0)
        assert np.all(d[~zero] > 0)
    else:
        assert np.all(d > 0)
    return K


# ----------------------------------------------------------------------------- properties: symmetry and PSD


@SETTINGS
@given(
    kind=st.sampled_from(KINDS),
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([2, 5]),
    d=st.sampled_from([1, 3]),
    cfg=configs(),
)
def test_gram_symmetric_psd_and_diagonal(kind, seed, n, d, cfg):
    net, kw = cfg
    check_gram(net, make_X(kind, seed, n, d), kw)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "net, depth", [("resnet", None), ("resnet", 1), ("resnet", 5), ("mlp", 1), ("mlp", 5)]
)
@pytest.mark.parametrize("bias", [0.0, 0.5])
def test_gram_every_kind_explicitly(kind, net, depth, bias):
    """The grid Hypothesis samples from, covered exhaustively once (n = 5, d = 3)."""
    check_gram(net, make_X(kind, 7, 5, 3), dict(depth=depth, bias_variance=bias))


@pytest.mark.parametrize("depth", [None, 1, 5])
@pytest.mark.parametrize("bias", [0.0, 0.5])
def test_high_dimensional_inputs(depth, bias):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(6, 2000))
    X = np.vstack([X, X[:2], 3.0 * X[2:3], np.zeros((1, 2000))])  # duplicates, collinear, zero
    for net in ("resnet", "mlp") if depth is not None else ("resnet",):
        K = check_gram(net, X, dict(depth=depth, bias_variance=bias))
        # nearly orthogonal high-dimensional rows stay distinguishable from duplicates
        np.testing.assert_allclose(K[6:8, 6:8], K[:2, :2], rtol=1e-13)


def test_extreme_norms_scale_exactly():
    """Huge and tiny inputs give the kernel of the unit-scale inputs times the squared scale
    (ReLU, no bias): nothing overflows, underflows or loses the correlation."""
    X = np.random.default_rng(3).normal(size=(4, 3))
    for depth in (None, 1, 5):
        K = resgp.resnet_nngp(X, depth=depth)
        for s in (1e100, 1e-100):
            Ks = resgp.resnet_nngp(X * s, depth=depth)
            np.testing.assert_allclose(Ks / s**2, K, rtol=1e-12, atol=1e-13 * np.abs(K).max())
    K = resgp.mlp_nngp(X, depth=5)
    np.testing.assert_allclose(resgp.mlp_nngp(X * 1e100, depth=5) / 1e200, K, rtol=1e-12, atol=1e-13 * np.abs(K).max())


def test_zero_rows_with_and_without_bias():
    X = np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [-3.0, 0.5]])
    for depth in (None, 1, 5):
        K = resgp.resnet_nngp(X, depth=depth)
        assert np.all(K[[0, 2]] == 0) and np.all(K[:, [0, 2]] == 0)
        Kb = resgp.resnet_nngp(X, depth=depth, bias_variance=0.3, branch_variance=2.0)
        assert np.all(np.isfinite(Kb)) and np.all(np.diag(Kb) > 0)
        # two zero rows are the same input: identical rows and columns
        assert np.array_equal(Kb[0], Kb[2])
    # the limit's diagonal at a zero row is the bias propagated: sigma_b^2 e^{T/2}
    Kb = resgp.resnet_nngp(X, bias_variance=0.3, branch_variance=2.0)
    np.testing.assert_allclose(Kb[0, 0], 0.3 * np.exp(1.0), rtol=1e-13)
    # the MLP: q_l = 2 E[relu(u)^2] + b = q_{l-1} + b for a variance alone
    Km = resgp.mlp_nngp(X, depth=4, bias_variance=0.3)
    np.testing.assert_allclose(Km[0, 0], 5 * 0.3, rtol=1e-13)


# ----------------------------------------------------------------------------- homogeneity


@SETTINGS
@given(
    c=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**32 - 1),
    cfg=configs(bias=st.just(0.0)),
)
def test_relu_homogeneity(c, seed, cfg):
    net, kw = cfg
    rng = np.random.default_rng(seed)
    X1, X2 = rng.normal(size=(3, 3)), rng.normal(size=(2, 3))
    K = kernel(net, X1, X2, **kw)
    atol = 1e-13 * np.abs(c * K).max()  # entries near 0 carry ~1e-16 absolute error
    np.testing.assert_allclose(kernel(net, c * X1, X2, **kw), c * K, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(kernel(net, X1, c * X2, **kw), c * K, rtol=1e-12, atol=atol)
    np.testing.assert_allclose(kernel_diag(net, c * X1, **kw), c * c * kernel_diag(net, X1, **kw), rtol=1e-12)


def test_bias_breaks_homogeneity():
    """The property above can fail: with a bias, K(2a, b) != 2 K(a, b)."""
    X1, X2 = np.array([[1.0, 2.0]]), np.array([[0.5, -1.0]])
    K = resgp.resnet_nngp(X1, X2, bias_variance=1.0)
    assert abs(resgp.resnet_nngp(2 * X1, X2, bias_variance=1.0)[0, 0] - 2 * K[0, 0]) > 1e-3


# ----------------------------------------------------------------------------- cross blocks


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["random", "collinear", "mixed", "zero_rows"]),
    cfg=configs(),
)
def test_cross_kernel_blocks(seed, kind, cfg):
    net, kw = cfg
    X = make_X(kind, seed, 5, 3)
    X1, X2 = X[:2], X[2:]
    K12 = kernel(net, X1, X2, **kw)
    K21 = kernel(net, X2, X1, **kw)
    full = kernel(net, np.vstack([X1, X2]), **kw)
    assert K12.shape == (2, 3) and K12.dtype == np.float64
    atol = 1e-14 * np.abs(full).max()
    np.testing.assert_allclose(K12, K21.T, rtol=1e-13, atol=atol)
    np.testing.assert_allclose(K12, full[:2, 2:], rtol=1e-13, atol=atol)
    np.testing.assert_allclose(kernel(net, X1, X1, **kw), full[:2, :2], rtol=1e-13, atol=atol)


# ----------------------------------------------------------------------------- dtypes, JAX


@pytest.mark.parametrize("flag", [False, True])
def test_float64_whatever_the_x64_flag(flag, restore_x64):
    X = np.random.default_rng(4).normal(size=(4, 3))
    jax.config.update("jax_enable_x64", flag)
    for f, kw in [
        (resgp.resnet_nngp, {}),
        (resgp.resnet_nngp, dict(depth=5, bias_variance=0.2)),
        (resgp.mlp_nngp, dict(depth=3)),
        (resgp.resnet_nngp_diag, dict(depth=5)),
        (resgp.mlp_nngp_diag, dict(depth=3)),
    ]:
        out = f(X, **kw)
        assert jax.config.jax_enable_x64 is flag  # the call left the global flag alone
        assert isinstance(out, np.ndarray) and out.dtype == np.float64
    # float64 accuracy, not float32: the depth-1 closed form to 1e-13
    K1 = resgp.resnet_nngp(X, depth=1)
    assert jax.config.jax_enable_x64 is flag
    q = X @ X.T / 3
    s = np.sqrt(np.outer(np.diag(q), np.diag(q)))
    th = np.arccos(np.clip(q / s, -1, 1))
    np.testing.assert_allclose(K1, q + s * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi), rtol=1e-13)


def test_same_values_with_either_x64_flag(restore_x64):
    X = np.random.default_rng(5).normal(size=(4, 3))
    out = {}
    for flag in (False, True):
        jax.config.update("jax_enable_x64", flag)
        out[flag] = (resgp.resnet_nngp(X), resgp.resnet_nngp(X, depth=5), resgp.mlp_nngp(X, depth=3))
    for a, b in zip(out[False], out[True]):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-16)


def test_x64_flag_unchanged_inside_enable_x64_context():
    before = jax.config.jax_enable_x64
    with enable_x64():
        K = resgp.resnet_nngp(np.eye(3))
        assert K.dtype == np.float64
    assert jax.config.jax_enable_x64 == before
    assert jnp.zeros(()).dtype == (jnp.float64 if before else jnp.float32)


@pytest.mark.parametrize("depth", [None, 4])
def test_jax_input_gives_jax_float64(depth):
    X = np.random.default_rng(6).normal(size=(5, 3))
    Y = np.random.default_rng(7).normal(size=(2, 3))
    with enable_x64():
        Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
    assert Xj.dtype == jnp.float64
    for got, want in [
        (resgp.resnet_nngp(Xj, depth=depth), resgp.resnet_nngp(X, depth=depth)),
        (resgp.resnet_nngp(Xj, Yj, depth=depth), resgp.resnet_nngp(X, Y, depth=depth)),
        (resgp.resnet_nngp(Xj, Y, depth=depth), resgp.resnet_nngp(X, Y, depth=depth)),
        (resgp.resnet_nngp_diag(Xj, depth=depth), resgp.resnet_nngp_diag(X, depth=depth)),
        (resgp.mlp_nngp(Xj, depth=3), resgp.mlp_nngp(X, depth=3)),
        (resgp.mlp_nngp_diag(Xj, depth=3), resgp.mlp_nngp_diag(X, depth=3)),
    ]:
        assert isinstance(got, jax.Array) and got.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(got), want)
    # numpy X1 with a jax X2 stays numpy (the type follows X1)
    assert isinstance(resgp.resnet_nngp(X, Yj, depth=depth), np.ndarray)
    # float32 JAX input (x64 off) is widened, not computed in float32
    X32 = jnp.asarray(X, dtype=jnp.float32)
    got = resgp.resnet_nngp(X32, depth=depth)
    assert got.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(got), resgp.resnet_nngp(X.astype(np.float32), depth=depth))


# ----------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(
    "net, kw",
    [
        ("resnet", dict(depth=None)),
        ("resnet", dict(depth=3, bias_variance=0.4)),
        ("mlp", dict(depth=2, bias_variance=0.1)),
    ],
)
def test_tiled_equals_untiled(net, kw, monkeypatch):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(20, 3))
    X[5] = X[17]  # a duplicate across tiles
    X[9] = 0.0
    Y = rng.normal(size=(9, 3))
    K, KY = kernel(net, X, **kw), kernel(net, X, Y, **kw)
    monkeypatch.setattr(tiling, "TILE", 7)
    assert len(tiling.blocks(20)) == 3  # really tiled
    Kt, KYt = kernel(net, X, **kw), kernel(net, X, Y, **kw)
    assert np.array_equal(Kt, Kt.T)
    atol = 1e-14 * np.abs(K).max()
    np.testing.assert_allclose(Kt, K, rtol=1e-13, atol=atol)
    np.testing.assert_allclose(KYt, KY, rtol=1e-13, atol=atol)
    np.testing.assert_allclose(Kt[5], Kt[17], rtol=1e-13, atol=atol)  # same input, other tile
    assert_psd(Kt)
    if kw.get("bias_variance", 0.0) == 0:
        assert np.all(Kt[9] == 0)
