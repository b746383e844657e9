"""The tabulated flow map (resgp.flow_table) against the adaptive ODE (resgp.ode.limit_flow)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resgp import flow_table, ode
from resgp.activations import Activation, erf, from_callable, get_activation

ACCURACY = 1e-9  # documented: about tol = 1e-10 relative to max|K|; this leaves 10x margin


def _silu(x):
    return x * jax.nn.sigmoid(x)


SILU = from_callable(_silu, name="silu")
ACTIVATIONS = ["erf", "gelu", "tanh", "sin", SILU]


def _inputs(n, d=8, bias=0.0, seed=0, scale=1.0):
    X = np.random.default_rng(seed).normal(size=(n, d)) * scale
    A = np.c_[X / np.sqrt(d), np.full(n, np.sqrt(bias))]
    return A


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: getattr(a, "name", a))
@pytest.mark.parametrize("bias", [0.0, 0.5])
def test_symmetric_matches_ode(activation, bias):
    act = get_activation(activation)
    A = _inputs(60, bias=bias, seed=1)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    ntk = bias == 0.0  # the NTK once per activation (it doubles the reference solve)
    K, theta = flow_table.limit_kernel(q, q, q12, T=1.0, activation=act, ntk=ntk,
                                       symmetric=True)
    ref = ode.limit_flow(q, q, q12, q12 if ntk else None, T=1.0, activation=act, rtol=1e-13,
                         atol=1e-14, symmetric=True)
    assert _rel(K, ref[2]) <= ACCURACY
    # exactly symmetric, diagonal exactly the diagonal flow
    assert np.array_equal(K, K.T)
    if ntk:
        assert _rel(theta, ref[3]) <= ACCURACY
        assert np.array_equal(theta, theta.T)
        qT, thT = ode.diagonal_flow(q, q, T=1.0, activation=act)
        assert np.array_equal(np.diag(K), qT)
        assert np.array_equal(np.diag(theta), thT)
    else:
        assert theta is None
        assert np.array_equal(np.diag(K), ode.diagonal_flow(q, T=1.0, activation=act))


@pytest.mark.parametrize("activation", ["erf", "gelu", "tanh"])
def test_rectangular_and_ntk(activation):
    act = get_activation(activation)
    A, B = _inputs(50, bias=0.2, seed=2), _inputs(35, bias=0.2, seed=3, scale=1.5)
    q11, q22, q12 = (A * A).sum(1), (B * B).sum(1), A @ B.T
    K, theta = flow_table.limit_kernel(q11, q22, q12, T=0.7, activation=act, ntk=True)
    ref = ode.limit_flow(q11, q22, q12, q12, T=0.7, activation=act, rtol=1e-13, atol=1e-14)
    assert K.shape == theta.shape == (50, 35)
    assert _rel(K, ref[2]) <= ACCURACY
    assert _rel(theta, ref[3]) <= ACCURACY
    _, only = flow_table.limit_kernel(q11, q22, q12, T=0.7, activation=act, ntk=True,
                                      nngp=False)
    assert only is not None and np.array_equal(only, theta)


def test_table_reports_accuracy_and_nodes():
    A = _inputs(80, seed=4)
    q = (A * A).sum(1)
    table = flow_table.tabulate(q, T=1.0, activation="erf", tol=1e-10)
    info = table.info
    assert info["n_s"] >= 2 and info["n_rho"] >= 2
    assert 0 < info["error_estimate"] <= 2e-10
    assert info["terms"]["nngp"] > 0
    assert table.covers(q) and not table.covers(q * 10.0)
    loose = flow_table.tabulate(q, T=1.0, activation="erf", tol=1e-6)
    assert loose.info["terms"]["nngp"] < info["terms"]["nngp"]
    q12 = A @ A.T
    K, _ = loose.evaluate(q, q, q12)
    ref = ode.limit_flow(q, q, q12, T=1.0, activation=erf(), rtol=1e-12, atol=1e-13)[2]
    assert _rel(K, ref) <= 1e-6


def test_equal_variances_use_one_node():
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(40, 6))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    q12 = 1.3 * Z @ Z.T
    q = np.full(40, 1.3)
    table = flow_table.tabulate(q, T=1.0, activation="gelu")
    assert table.info["n_s"] == 1
    K, _ = flow_table.limit_kernel(q, q, q12, T=1.0, activation="gelu", symmetric=True)
    ref = ode.limit_flow(q, q, q12, T=1.0, activation=get_activation("gelu"), rtol=1e-13,
                         atol=1e-14, symmetric=True)[2]
    assert _rel(K, ref) <= ACCURACY


def test_zero_depth_time_is_identity():
    A = _inputs(10, seed=6)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    K, theta = flow_table.limit_kernel(q, q, q12, T=0.0, activation="erf", ntk=True)
    assert np.array_equal(K, q12) and np.array_equal(theta, q12)


def test_fallbacks_return_none():
    A = _inputs(20, seed=7)
    A[3] = 0.0  # a zero input without bias: q_aa = 0, no log-variance
    q12 = A @ A.T
    q = np.diag(q12).copy()
    assert flow_table.limit_kernel(q, q, q12, T=1.0, activation="erf", symmetric=True) is None
    B = _inputs(20, seed=8)
    q12 = B @ B.T
    q = np.diag(q12).copy()
    # homogeneous activations are not tabulated (non-analytic at rho = +-1; ReLU has its table)
    assert flow_table.limit_kernel(q, q, q12, T=1.0, activation="relu") is None
    bad = q.copy()
    bad[0] = np.inf
    assert flow_table.tabulate(bad, T=1.0, activation="erf") is None
    assert flow_table.tabulate(np.array([1.0, np.nan]), T=1.0, activation="erf") is None
    # variances spanning more than MAX_LOG_RANGE (a factor 1e6)
    assert flow_table.tabulate(np.array([1e-4, 1e3]), T=1.0, activation="erf") is None
    assert flow_table.tabulate(np.array([0.1, 10.0]), T=1.0, activation="erf") is not None


def test_no_convergence_returns_none(monkeypatch):
    """The grid cap reached without convergence (here a cap of 41 rho-nodes and erf at large
    variance, where the dual's branch point 1 + 1/2q is close to rho = 1)."""
    monkeypatch.setattr(flow_table, "RHO_NODES", (41,))
    assert flow_table.tabulate(np.array([50.0, 100.0]), T=1.0, activation="erf") is None


def test_errors():
    q = np.ones(3)
    with pytest.raises(ValueError, match="shape"):
        flow_table.limit_kernel(q, q, np.ones((3, 2)), T=1.0, activation="erf")
    with pytest.raises(ValueError, match="tol"):
        flow_table.tabulate(q, T=1.0, activation="erf", tol=1.0)
    no_derivative = Activation("noderiv", erf().dual, False, None)
    with pytest.raises(ValueError, match="derivative"):
        flow_table.limit_kernel(q, q, np.eye(3), T=1.0, activation=no_derivative, ntk=True)
    table = flow_table.tabulate(q * np.array([1.0, 2.0, 3.0]), T=1.0, activation="erf")
    with pytest.raises(ValueError, match="ntk"):
        table.evaluate(q, q, np.eye(3), ntk=True)


def test_large_symmetric_blocks_exact():
    """N >= 256 takes the blocked upper-triangle path: still exactly symmetric and accurate."""
    A = _inputs(300, d=12, seed=9)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    K, _ = flow_table.limit_kernel(q, q, q12, T=1.0, activation="erf", symmetric=True)
    assert np.array_equal(K, K.T)
    rows = slice(0, 40)
    ref = ode.limit_flow(q[rows], q, q12[rows], T=1.0, activation=erf(), rtol=1e-13,
                         atol=1e-14)[2]
    assert _rel(K[rows], ref) <= ACCURACY
    K2, _ = flow_table.limit_kernel(q, q, q12, T=1.0, activation="erf")  # full, non-symmetric
    assert _rel(K2, K) <= ACCURACY
    assert jnp.isfinite(K).all()


def test_table_diagonal_option():
    A = _inputs(70, bias=0.3, seed=10)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    K, theta = flow_table.limit_kernel(q, q, q12, T=1.0, activation="tanh", ntk=True,
                                       symmetric=True, diagonal="table")
    assert np.array_equal(K, K.T) and np.array_equal(theta, theta.T)
    qT, thT = ode.diagonal_flow(q, q, T=1.0, activation=get_activation("tanh"), rtol=1e-13,
                                atol=1e-14)
    assert np.abs(np.diag(K) - qT).max() <= ACCURACY * qT.max()
    assert np.abs(np.diag(theta) - thT).max() <= ACCURACY * thT.max()
    with pytest.raises(ValueError, match="diagonal"):
        flow_table.limit_kernel(q, q, q12, T=1.0, activation="tanh", diagonal="exact")


@pytest.mark.parametrize("name", ["tanh", "erf", "gelu", "sin"])
def test_diagonal_flow_map_matches_the_solve_of_every_variance(name):
    """Many variances go through the interpolated 1-D diagonal flow map (resgp.ode): it agrees
    with integrating every variance at tight tolerance, NNGP and NTK alike."""
    act = get_activation(name)
    q = np.exp(np.random.default_rng(2).uniform(np.log(0.01), np.log(20.0), 300))
    exact = ode._diagonal_solve(q, None, T=1.3, activation=act, rtol=1e-13, atol=1e-15)
    table = ode.diagonal_flow(q, T=1.3, activation=act)
    assert np.abs(table - exact).max() <= 1e-10 * np.abs(exact).max()
    exact_ntk = ode._diagonal_solve(q, q, T=1.3, activation=act, rtol=1e-13, atol=1e-15)
    table_ntk = ode.diagonal_flow(q, q, T=1.3, activation=act)
    for a, b in zip(table_ntk, exact_ntk):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
    # a general NTK start (Theta_0 != q_0) is integrated variance by variance
    theta = 2.0 * q
    direct = ode._diagonal_solve(q, theta, T=1.3, activation=act, rtol=ode.RTOL, atol=ode.ATOL)
    for a, b in zip(ode.diagonal_flow(q, theta, T=1.3, activation=act), direct):
        np.testing.assert_array_equal(a, b)
