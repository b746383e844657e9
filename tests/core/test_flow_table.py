"""The tabulated flow map (resgp.core.flow_table) against the adaptive ODE
(resgp.core.limit.pair_flow), directly (tabulate + FlowTable.evaluate_tile) and as the engine
uses it (resgp.core.engine.gram: tiles, exact symmetry, the diagonal from the diagonal flow)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resgp.core import engine, flow_table, limit, network, tiling
from resgp.core.activations import Activation, erf, from_callable, get_activation
from resgp.core.diagonal import diagonal as diagonal_flow
from resgp.core.inputs import features
from resgp.core.x64 import enable_x64

ACCURACY = 1e-9  # documented: about tol = 1e-10 relative to max|K|; this leaves 10x margin


def _silu(x):
    return x * jax.nn.sigmoid(x)


SILU = from_callable(_silu, name="silu")
ACTIVATIONS = ["erf", "gelu", "tanh", "sin", SILU]
NNGP = ("nngp", (("value", 1.0),))
NTK = ("ntk", (("value", 1.0),))


def _data(n, d=8, seed=0, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale


def _inputs(n, d=8, bias=0.0, seed=0, scale=1.0):
    X = _data(n, d, seed, scale)
    return np.c_[X / np.sqrt(d), np.full(n, np.sqrt(bias))]


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


_pair_flow = jax.jit(limit.pair_flow, static_argnames=("activation", "rtol", "atol", "symmetric"))


def reference(q11, q22, q12, theta=None, *, T, activation, rtol=1e-13, atol=1e-14,
              symmetric=False):
    """(q11_T, q22_T, q12_T, theta_T or None) of the adaptive pair flow, NumPy."""
    act = get_activation(activation)
    with enable_x64():
        y, _, info = _pair_flow(act, jnp.float64(T), jnp.asarray(q11), jnp.asarray(q22),
                                jnp.asarray(q12), None if theta is None else jnp.asarray(theta),
                                rtol=rtol, atol=atol, symmetric=symmetric)
        limit.host_status(info, "reference")
        y = [np.asarray(v) for v in y]
    return y[0], y[1], y[2], (y[3] if theta is not None else None)


def table_kernel(q11, q22, q12, *, T, activation, ntk=False, tol=flow_table.TOL):
    """(K, Theta or None) from one table of all variances, or None when it is not built."""
    table = flow_table.tabulate(np.concatenate([q11, q22]), T=T, activation=activation, ntk=ntk,
                                tol=tol)
    if table is None:
        return None
    rho = np.clip(q12 / np.sqrt(np.outer(q11, q22)), -1.0, 1.0)
    out = table.evaluate_tile(q11, q22, rho, [NNGP, NTK] if ntk else [NNGP])
    return out[0], (out[1] if ntk else None)


@pytest.fixture
def spy_tabulate(monkeypatch):
    """Records what flow_table.tabulate returned to the engine (the table path was taken)."""
    calls = []
    original = flow_table.tabulate

    def spy(*args, **kwargs):
        calls.append(original(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(flow_table, "tabulate", spy)
    return calls


def _q(X, bias):
    """The engine's variances of the inputs X (weight variance 1)."""
    return features(X, 1.0, bias)[1] ** 2


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: getattr(a, "name", a))
@pytest.mark.parametrize("bias", [0.0, 0.5])
def test_symmetric_matches_ode(activation, bias, spy_tabulate):
    act = get_activation(activation)
    X = _data(60, seed=1)
    A = _inputs(60, bias=bias, seed=1)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    ntk = bias == 0.0  # the NTK once per activation (it doubles the reference solve)
    net = network.resnet(activation=act, bias_variance=bias)
    K = engine.gram(net, X)
    ref = reference(q, q, q12, q12 if ntk else None, T=1.0, activation=act, symmetric=True)
    assert spy_tabulate and spy_tabulate[-1] is not None  # the tabulated path
    assert "ntk" not in spy_tabulate[-1].coefficients  # an NNGP table has no NTK part
    assert _rel(K, ref[2]) <= ACCURACY
    # exactly symmetric, diagonal exactly the diagonal flow
    assert np.array_equal(K, K.T)
    qe = _q(X, bias)
    np.testing.assert_allclose(qe, q, rtol=1e-14)
    assert np.array_equal(np.diag(K), diagonal_flow(act, 1.0, qe)[0])
    assert np.array_equal(np.diag(K), engine.diagonal(net, X))
    if ntk:
        net_ntk = network.resnet(activation=act, bias_variance=bias, ntk=True)
        theta = engine.gram(net_ntk, X)
        assert "ntk" in spy_tabulate[-1].coefficients
        assert _rel(theta, ref[3]) <= ACCURACY
        assert np.array_equal(theta, theta.T)
        qT, thT = diagonal_flow(act, 1.0, qe, ntk=True)
        # the NNGP matrix comes from its own (NNGP-only) solve: the variances that ride along
        # with the NTK agree to the solver's tolerance, not bit for bit (different steps)
        np.testing.assert_allclose(np.diag(K), qT, rtol=limit.ode.RTOL, atol=0)
        assert np.array_equal(np.diag(theta), thT)
        assert np.array_equal(np.diag(theta), engine.diagonal(net_ntk, X))


@pytest.mark.parametrize("activation", ["erf", "gelu", "tanh"])
def test_rectangular_and_ntk(activation):
    act = get_activation(activation)
    A, B = _inputs(50, bias=0.2, seed=2), _inputs(35, bias=0.2, seed=3, scale=1.5)
    q11, q22, q12 = (A * A).sum(1), (B * B).sum(1), A @ B.T
    K, theta = table_kernel(q11, q22, q12, T=0.7, activation=act, ntk=True)
    ref = reference(q11, q22, q12, q12, T=0.7, activation=act)
    assert K.shape == theta.shape == (50, 35)
    assert _rel(K, ref[2]) <= ACCURACY
    assert _rel(theta, ref[3]) <= ACCURACY
    # the NTK alone: the same numbers as next to the NNGP
    table = flow_table.tabulate(np.concatenate([q11, q22]), T=0.7, activation=act, ntk=True)
    rho = np.clip(q12 / np.sqrt(np.outer(q11, q22)), -1.0, 1.0)
    (only,) = table.evaluate_tile(q11, q22, rho, [NTK])
    assert only is not None and np.array_equal(only, theta)


def test_table_reports_accuracy_and_nodes():
    A = _inputs(80, seed=4)
    q = (A * A).sum(1)
    q12 = A @ A.T
    rho = np.clip(q12 / np.sqrt(np.outer(q, q)), -1.0, 1.0)
    key = "nngp:" + str(NNGP[1])
    table = flow_table.tabulate(q, T=1.0, activation="erf", tol=1e-10)
    table.evaluate_tile(q, q, rho, [NNGP])
    info = table.info
    assert info["n_s"] >= 2 and info["n_rho"] >= 2
    assert 0 < info["error_estimate"] <= 2e-10
    assert info["terms"][key] > 0
    assert table.covers(q) and not table.covers(q * 10.0)
    loose = flow_table.tabulate(q, T=1.0, activation="erf", tol=1e-6)
    (K,) = loose.evaluate_tile(q, q, rho, [NNGP])
    assert loose.info["terms"][key] < info["terms"][key]
    ref = reference(q, q, q12, T=1.0, activation=erf(), rtol=1e-12, atol=1e-13)[2]
    assert _rel(K, ref) <= 1e-6


def test_equal_variances_use_one_node():
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(40, 6))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    q12 = 1.3 * Z @ Z.T
    q = np.full(40, 1.3)
    table = flow_table.tabulate(q, T=1.0, activation="gelu")
    assert table.info["n_s"] == 1
    K, _ = table_kernel(q, q, q12, T=1.0, activation="gelu")
    ref = reference(q, q, q12, T=1.0, activation="gelu", symmetric=True)[2]
    assert _rel(K, ref) <= ACCURACY
    # and through the engine (inputs of equal norms: variances equal up to rounding)
    X = Z * np.sqrt(1.3 * 6)
    net = network.resnet(activation="gelu")
    assert _rel(engine.gram(net, X), ref) <= ACCURACY


def test_fallbacks_return_none():
    A = _inputs(20, seed=7)
    A[3] = 0.0  # a zero input without bias: q_aa = 0, no log-variance
    q = (A * A).sum(1)
    assert flow_table.tabulate(q, T=1.0, activation="erf") is None
    B = _inputs(20, seed=8)
    q = (B * B).sum(1)
    # homogeneous activations are not tabulated (non-analytic at rho = +-1; ReLU has its table)
    assert flow_table.tabulate(q, T=1.0, activation="relu") is None
    bad = q.copy()
    bad[0] = np.inf
    assert flow_table.tabulate(bad, T=1.0, activation="erf") is None
    assert flow_table.tabulate(np.array([1.0, np.nan]), T=1.0, activation="erf") is None
    # variances spanning more than MAX_LOG_RANGE (a factor 1e6)
    assert flow_table.tabulate(np.array([1e-4, 1e3]), T=1.0, activation="erf") is None
    assert flow_table.tabulate(np.array([0.1, 10.0]), T=1.0, activation="erf") is not None


def test_engine_falls_back_to_the_pair_flow(spy_tabulate):
    """A zero row without bias: no table; the engine integrates every pair instead."""
    X = _data(20, seed=7)
    X[3] = 0.0
    A = _inputs(20, seed=7)
    A[3] = 0.0
    q12 = A @ A.T
    q = np.diag(q12).copy()
    K = engine.gram(network.resnet(activation="erf"), X)
    assert spy_tabulate == [None]
    assert np.array_equal(K, K.T) and np.all(K[3] == 0)
    ref = reference(q, q, q12, T=1.0, activation="erf", symmetric=True)[2]
    assert _rel(K, ref) <= ACCURACY


def test_no_convergence_returns_none(monkeypatch):
    """The grid cap reached without convergence (here a cap of 41 rho-nodes and erf at large
    variance, where the dual's branch point 1 + 1/2q is close to rho = 1)."""
    monkeypatch.setattr(flow_table, "RHO_NODES", (41,))
    assert flow_table.tabulate(np.array([50.0, 100.0]), T=1.0, activation="erf") is None


def test_errors():
    q = np.ones(3)
    with pytest.raises(ValueError, match="tol"):
        flow_table.tabulate(q, T=1.0, activation="erf", tol=1.0)
    no_derivative = Activation("noderiv", erf().dual, False, None)
    with pytest.raises(ValueError, match="derivative"):
        flow_table.tabulate(q, T=1.0, activation=no_derivative, ntk=True)
    table = flow_table.tabulate(q * np.array([1.0, 2.0, 3.0]), T=1.0, activation="erf")
    with pytest.raises(ValueError, match="ntk"):
        table.evaluate_tile(q, q, np.eye(3), [NTK])
    with pytest.raises(ValueError, match="derivatives=True"):
        table.evaluate_tile(q, q, np.eye(3), [("nngp", (("bias", 1.0),))])


def test_large_symmetric_blocks_exact(monkeypatch):
    """K(X, X) in several tiles (the upper triangle mirrored): still exactly symmetric and
    accurate, and equal to the full non-symmetric evaluation K(X, X2=X)."""
    monkeypatch.setattr(engine, "TABLE_TILE", 128)
    assert len(tiling.blocks(300, engine.TABLE_TILE)) == 3  # really tiled
    X = _data(300, d=12, seed=9)
    A = _inputs(300, d=12, seed=9)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    net = network.resnet(activation="erf")
    K = engine.gram(net, X)
    assert np.array_equal(K, K.T)
    rows = slice(0, 40)
    ref = reference(q[rows], q, q12[rows], T=1.0, activation=erf())[2]
    assert _rel(K[rows], ref) <= ACCURACY
    K2 = engine.gram(net, X, X)  # full, non-symmetric
    assert _rel(K2, K) <= ACCURACY
    assert jnp.isfinite(K).all()


def test_table_diagonal():
    """The table's own diagonal (the pairs at rho = 1) agrees with the diagonal flow; the
    engine puts the diagonal flow itself there (exactly symmetric matrices)."""
    A = _inputs(70, bias=0.3, seed=10)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    K, theta = table_kernel(q, q, q12, T=1.0, activation="tanh", ntk=True)
    qT, thT = diagonal_flow(get_activation("tanh"), 1.0, q, ntk=True, rtol=1e-13, atol=1e-14)
    assert np.abs(np.diag(K) - qT).max() <= ACCURACY * qT.max()
    assert np.abs(np.diag(theta) - thT).max() <= ACCURACY * thT.max()
    X = _data(70, seed=10)
    net = partial(network.resnet, activation="tanh", bias_variance=0.3)
    Ke, Te = engine.gram(net(), X), engine.gram(net(ntk=True), X)
    assert np.array_equal(Ke, Ke.T) and np.array_equal(Te, Te.T)
    assert _rel(Ke, K) <= ACCURACY and _rel(Te, theta) <= ACCURACY


def test_derivative_tables_against_finite_differences():
    """derivatives=True: the 'T', 'diag' + 'ab' and 'scale' tables are the derivatives of the
    value along T, "every q_0 entry + 1" and "q_0 scaled"."""
    A = _inputs(12, bias=0.4, seed=11)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    rho = np.clip(q12 / np.sqrt(np.outer(q, q)), -1.0, 1.0)
    T, h = 0.8, 1e-4
    table = flow_table.tabulate(q, T=T, activation="gelu", derivatives=True)
    requests = [("nngp", (("value", 1.0),)), ("nngp", (("T", 1.0),)),
                ("nngp", (("diag", 1.0), ("ab", 1.0))), ("nngp", (("scale", 1.0),))]
    value, d_T, d_bias, d_scale = table.evaluate_tile(q, q, rho, requests)

    def K(T=T, shift=0.0, factor=1.0):
        qq, c = factor * q + shift, factor * q12 + shift
        return reference(qq, qq, c, T=T, activation="gelu")[2]

    assert _rel(value, K()) <= ACCURACY
    for got, plus, minus in [(d_T, K(T=T + h), K(T=T - h)), (d_bias, K(shift=h), K(shift=-h)),
                             (d_scale, K(factor=1 + h), K(factor=1 - h))]:
        assert _rel(got, (plus - minus) / (2 * h)) <= 1e-7
