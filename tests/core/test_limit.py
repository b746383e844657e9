"""resgp.core.limit: the infinite-depth flow of a block of pairs (pair_flow), of the variances
(diagonal_flow) and the differentiable flow map (flow_map)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resgp.core import limit, ode, relu_flow
from resgp.core.activations import RELU, get_activation

pytestmark = pytest.mark.usefixtures("x64")


def _inputs(n, d=8, bias=0.0, seed=0, scale=1.0):
    X = np.random.default_rng(seed).normal(size=(n, d)) * scale
    return np.c_[X / np.sqrt(d), np.full(n, np.sqrt(bias))]


def _cov(A, B=None):
    B = A if B is None else B
    return (jnp.asarray((A * A).sum(1)), jnp.asarray((B * B).sum(1)), jnp.asarray(A @ B.T))


_pair_flow = jax.jit(limit.pair_flow, static_argnames=("activation", "rtol", "atol", "symmetric"))


def test_zero_depth_time_is_identity():
    A = _inputs(10, seed=6)
    q, _, q12 = _cov(A)
    act = get_activation("erf")
    y, _, info = limit.pair_flow(act, 0.0, q, q, q12, q12)
    assert int(info["status"]) == ode.OK
    assert np.array_equal(y[2], q12) and np.array_equal(y[3], q12)
    K_aa, K_bb, K, theta = limit.flow_map(act, 0.0, q, q, q12, q12)
    assert np.array_equal(K, q12) and np.array_equal(theta, q12)
    assert np.array_equal(K_aa, q) and np.array_equal(K_bb, q)


@pytest.mark.parametrize("T", [0.5, 3.0])
def test_relu_pair_flow_matches_the_exact_angle_flow(T):
    """The general ODE on ReLU's dual against ReLU's tabulated angle flow (resgp.core.relu_flow)."""
    A, B = _inputs(7, bias=0.2, seed=1), _inputs(5, bias=0.2, seed=2, scale=1.4)
    q11, q22, q12 = _cov(A, B)
    y, _, info = _pair_flow(RELU, jnp.float64(T), q11, q22, q12, rtol=1e-13, atol=1e-14)
    assert int(info["status"]) == ode.OK
    want = relu_flow.kernel(q12, jnp.sqrt(q11)[:, None], jnp.sqrt(q22)[None, :], jnp.float64(T))
    np.testing.assert_allclose(np.asarray(y[2]), np.asarray(want), rtol=1e-11,
                               atol=1e-13 * float(jnp.abs(want).max()))
    np.testing.assert_allclose(np.asarray(y[0]), np.asarray(q11) * np.exp(T / 2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(y[1]), np.asarray(q22) * np.exp(T / 2), rtol=1e-12)


@pytest.mark.parametrize("name", ["erf", "gelu"])
def test_symmetric_pairs_follow_the_variances(name):
    act = get_activation(name)
    _, _, q12 = _cov(_inputs(9, bias=0.3, seed=3))
    q = jnp.diag(q12)  # the pairs (a, a) start on the variances exactly
    (qa, qb, K, theta), _, _ = _pair_flow(act, jnp.float64(1.2), q, q, q12, q12, symmetric=True)
    assert np.array_equal(np.diag(np.asarray(K)), np.asarray(qa))  # exactly on the diagonal flow
    (qd, thd), _, _ = limit.diagonal_flow(act, jnp.float64(1.2), q, q)
    np.testing.assert_allclose(np.asarray(qa), np.asarray(qd), rtol=1e-12)
    np.testing.assert_allclose(np.diag(np.asarray(theta)), np.asarray(thd), rtol=1e-11)
    # the non-symmetric solve agrees off the diagonal to the tolerance
    (_, _, K2, th2), _, _ = _pair_flow(act, jnp.float64(1.2), q, q, q12, q12)
    np.testing.assert_allclose(np.asarray(K2), np.asarray(K), rtol=1e-10,
                               atol=1e-12 * float(jnp.abs(K).max()))


def test_ntk_is_affine_in_its_start():
    """Theta_T = A(q_0) + B(q_0) Theta_0: the NTK flow is linear in Theta_0."""
    act = get_activation("tanh")
    q11, q22, q12 = _cov(_inputs(4, seed=4), _inputs(3, seed=5))
    T = jnp.float64(0.8)
    th = lambda t0: np.asarray(_pair_flow(act, T, q11, q22, q12, t0)[0][3])  # noqa: E731
    a, b, c = th(0.0 * q12), th(q12), th(2.0 * q12)
    scale = np.abs(c).max()
    np.testing.assert_allclose(a + c, 2 * b, rtol=0, atol=1e-11 * scale)


def test_tangents_are_the_sensitivities():
    """pair_flow's tangents against central differences of the flow along the same direction."""
    act = get_activation("erf")
    q11, q22, q12 = _cov(_inputs(4, bias=0.1, seed=6), _inputs(3, bias=0.1, seed=7))
    T = jnp.float64(1.1)
    d = (jnp.ones_like(q11), jnp.ones_like(q22), jnp.ones_like(q12), jnp.ones_like(q12))
    _, S, _ = _pair_flow(act, T, q11, q22, q12, q12, tangents=tuple(x[None] for x in d),
                         rtol=1e-13, atol=1e-14)
    h = 1e-5

    def at(eps):
        y, _, _ = _pair_flow(act, T, q11 + eps, q22 + eps, q12 + eps, q12 + eps, rtol=1e-13,
                             atol=1e-14)
        return [np.asarray(v) for v in y]

    plus, minus = at(h), at(-h)
    for k in range(4):
        fd = (plus[k] - minus[k]) / (2 * h)
        np.testing.assert_allclose(np.asarray(S[k][0]), fd, rtol=1e-7, atol=1e-9)


def test_flow_map_derivatives_against_finite_differences():
    """flow_map's custom JVP: in T, q_aa, q_bb, q_ab and Theta_0, under jit and grad."""
    act = get_activation("gelu")
    q11, q22, q12 = _cov(_inputs(3, bias=0.2, seed=8), _inputs(2, bias=0.2, seed=9))
    th0 = 1.5 * q12

    def loss(T, q11, q22, q12, th0):
        a, b, K, th = limit.flow_map(act, T, q11, q22, q12, th0, rtol=1e-13, atol=1e-14)
        return jnp.sum(jnp.sin(K)) + jnp.sum(th ** 2) + jnp.sum(a) + jnp.sum(b * b)

    args = (jnp.float64(0.9), q11, q22, q12, th0)
    grads = jax.jit(jax.grad(loss, argnums=tuple(range(5))))(*args)
    value = jax.jit(loss)  # compiled once: the finite differences call it many times
    h = 1e-5
    for i, g in enumerate(grads):
        g = np.asarray(g)
        base = np.asarray(args[i])
        fd = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            e = np.zeros_like(base)
            e[idx] = h
            plus = list(args)
            minus = list(args)
            plus[i], minus[i] = jnp.asarray(base + e), jnp.asarray(base - e)
            fd[idx] = (float(value(*plus)) - float(value(*minus))) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8, err_msg=f"argument {i}")


def test_flow_map_without_ntk_and_vmap():
    act = get_activation("erf")
    q11, q22, q12 = _cov(_inputs(3, seed=10), _inputs(4, seed=11))
    out = limit.flow_map(act, 1.0, q11, q22, q12)
    assert out[3] is None and out[2].shape == (3, 4)
    Ts = jnp.array([0.5, 1.0, 2.0])
    Ks = jax.vmap(lambda T: limit.flow_map(act, T, q11, q22, q12)[2])(Ts)
    np.testing.assert_allclose(np.asarray(Ks[1]), np.asarray(out[2]), rtol=1e-12)
