"""The ResNet's NTK: closed forms, finite depth -> infinite depth (Richardson), and ReLU at
infinite depth against an independent high-precision (mpmath) solution of the ODE."""

import functools

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import resgp
from resgp import activations as act


def _X(n=6, d=4, seed=1, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale


def _arccos(Q11, Q22, Q12):
    s = np.sqrt(np.outer(Q11, Q22))
    th = np.arccos(np.clip(Q12 / s, -1, 1))
    return s * (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi), (np.pi - th) / (2 * np.pi)


@pytest.mark.parametrize("T, wv, bv", [(1.0, 1.0, 0.0), (0.4, 2.0, 0.3)])
def test_depth_one_closed_form(T, wv, bv):
    X1, X2 = _X(5, 3, seed=2), _X(4, 3, seed=3)
    d = X1.shape[1]
    q11, q22 = wv * (X1 * X1).sum(1) / d + bv, wv * (X2 * X2).sum(1) / d + bv
    q12 = wv * X1 @ X2.T / d + bv
    dual, ddual = _arccos(q11, q22, q12)
    want = q12 + T * (dual + q12 * ddual)  # Theta_0 = q_0, one block
    got = resgp.resnet_ntk(X1, X2, depth=1, branch_variance=T, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * np.abs(want).max())
    # MLP, one hidden layer: wv (dual + q0 ddual) + bv
    want = wv * (dual + q12 * ddual) + bv
    got = resgp.mlp_ntk(X1, X2, depth=1, weight_variance=wv, bias_variance=bv)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * np.abs(want).max())


@pytest.mark.parametrize("T", [0.5, 2.0])
def test_relu_infinite_depth_diagonal_closed_form(T):
    """Theta'(a,a) = q/2 + Theta/2 with q = q0 e^{t/2}: Theta_T = q0 e^{T/2} (1 + T/2)."""
    X = _X(5) * np.logspace(-2, 2, 5)[:, None]
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


@pytest.mark.parametrize("name", ["relu", "leaky", "erf", "gelu", "tanh", "sin"])
def test_infinite_depth_ntk_matches_richardson(name):
    a = {"leaky": act.leaky_relu(0.2), "sin": act.sin(1.0, 1.2, 0.4)}.get(name, name)
    X, Y = _X(), _X(5, seed=4, scale=1.3)
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


# ----------------------------------------------------------------------------- mpmath reference


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


def test_ntk_errors():
    with pytest.raises(ValueError, match="unknown activation"):
        resgp.resnet_ntk(_X(3), activation="softsign")
    no_derivative = resgp.Activation("plain", act.relu_dual, homogeneous=True)
    with pytest.raises(ValueError, match="no derivative dual"):
        resgp.resnet_ntk(_X(3), depth=2, activation=no_derivative)
    with pytest.raises(ValueError, match="no derivative dual"):
        resgp.resnet_ntk(_X(3), activation=no_derivative)
    with pytest.raises(TypeError, match="depth"):
        resgp.mlp_ntk(_X(3), depth=None)
    # a JAX input gives a JAX output
    out = resgp.resnet_ntk(jnp.asarray(_X(3)), depth=2)
    assert hasattr(out, "devices") and out.shape == (3, 3)
