"""The tabulated flow map (resgp.core.flow_table) against the adaptive ODE
(resgp.core.limit.pair_flow), directly (flow_table.table per pair of panels +
FlowTable.evaluate_tile) and as the engine uses it (resgp.core.engine.gram: blocks of panels,
tiles, exact symmetry, the diagonal from the diagonal flow, the pair flow where a block has no
table)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resgp.core import engine, flow_table, limit, network, tiling
from resgp.core.activations import (Activation, at_order, erf, from_callable, get_activation,
                                    series_only, sin as sin_activation, SERIES_MARGIN,
                                    SERIES_ORDERS)
from resgp.core.diagonal import diagonal as diagonal_flow
from resgp.core.inputs import features
from resgp.core.x64 import enable_x64

# tables at tol = 1e-12 (the engine's: its ODE tolerance) against the ODE at rtol 1e-13:
# measured at most 4e-13 relative to max|K| (1.3e-12 per entry to its own scale at variances
# up to 2e3); this leaves about 10x margin
ACCURACY = 1e-11


def _silu(x):
    return x * jax.nn.sigmoid(x)


SILU = from_callable(_silu, name="silu")
ACTIVATIONS = ["erf", "gelu", "tanh", "sin", SILU]
# the costliest tables (tanh's mixture series, a callable's graded rule): main environment only
HEAVY = ("tanh", SILU)


def _marked(activations):
    return [pytest.param(a, marks=pytest.mark.heavy) if a in HEAVY else a for a in activations]
NNGP = ("nngp", (("value", 1.0),))
NTK = ("ntk", (("value", 1.0),))


def _data(n, d=8, seed=0, scale=1.0, band=None):
    """Gaussian rows; ``band=(lo, hi)``: rescaled so that |x|^2 / d is log-uniform in it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * scale
    if band is not None:
        q = np.exp(rng.uniform(np.log(band[0]), np.log(band[1]), n))
        X *= np.sqrt(d * q / (X * X).sum(1))[:, None]
    return X


def _inputs(n, d=8, bias=0.0, seed=0, scale=1.0, band=None):
    X = _data(n, d, seed, scale, band)
    return np.c_[X / np.sqrt(d), np.full(n, np.sqrt(bias))]


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


_pair_flow = jax.jit(limit.pair_flow, static_argnames=("activation", "rtol", "atol", "symmetric"))


def reference(q11, q22, q12, theta=None, *, T, activation, rtol=1e-13, atol=1e-14,
              symmetric=False):
    """(q11_T, q22_T, q12_T, theta_T or None) of the adaptive pair flow, NumPy.

    Quadrature activations (callables) are integrated with their Mehler series alone, at the
    smallest order of activations.SERIES_ORDERS whose range ``mehler_max`` covers the flow's
    variances (accurate to its target there): the graded rule beyond it is accurate too, but
    far too slow for a reference of thousands of pairs. tanh takes its own duals (the series
    where they meet 2e-15, the exact double sum beyond)."""
    act = get_activation(activation)
    if act.quadrature is None:
        return _reference(act, q11, q22, q12, theta, T, rtol, atol, symmetric)
    for order in sorted({act.order, *SERIES_ORDERS}):
        series = series_only(at_order(act, order))
        if series.mehler_max >= SERIES_MARGIN * max(np.max(q11), np.max(q22)):
            out = _reference(series, q11, q22, q12, theta, T, rtol, atol, symmetric)
            if SERIES_MARGIN * max(out[0].max(), out[1].max()) <= series.mehler_max:
                return out
    raise AssertionError("no Mehler order covers the reference flow")


def _reference(act, q11, q22, q12, theta, T, rtol, atol, symmetric):
    with enable_x64():
        y, _, info = _pair_flow(act, jnp.float64(T), jnp.asarray(q11), jnp.asarray(q22),
                                jnp.asarray(q12), None if theta is None else jnp.asarray(theta),
                                rtol=rtol, atol=atol, symmetric=symmetric)
        limit.host_status(info, "reference")
        y = [np.asarray(v) for v in y]
    return y[0], y[1], y[2], (y[3] if theta is not None else None)


def _unit(A):
    """Features (unit rows, norms) of rows A that already hold the bias column (q_0 = A A^T)."""
    n = np.sqrt((A * A).sum(1))
    return A / n[:, None], n


def evaluate_blocks(A, B, requests, *, T, activation, ntk=False, tol=flow_table.TOL,
                    derivatives=False, tables=None):
    """The matrices (len(A), len(B)) of ``requests`` evaluated block by block of panels, each
    block from the table of its own pair of panels; None when any block's table is None.
    ``B=None``: K(A, A), the blocks on the diagonal evaluated as diagonal tiles (rho = 1
    exactly on the diagonal). ``tables``: a list that receives the tables used."""
    za, na = _unit(A)
    zb, nb = (za, na) if B is None else _unit(B)
    pa, pb = flow_table.panel(na * na), flow_table.panel(nb * nb)
    out = [np.full((na.size, nb.size), np.nan) for _ in requests]
    for i in np.unique(pa):
        rows = np.flatnonzero(pa == i)
        for j in np.unique(pb):
            cols = np.flatnonzero(pb == j)
            table = flow_table.table(i, j, T=T, activation=activation, ntk=ntk, tol=tol,
                                     derivatives=derivatives)
            if table is None:
                return None
            assert table.panels == (i, j) and table.covers(na[rows] ** 2, nb[cols] ** 2)
            if tables is not None:
                tables.append(table)
            # padded like the engine's tiles (zero-norm rows): the same few compiled shapes
            values = table.evaluate_tile(*tiling.cut((za[rows], na[rows]), 0, rows.size, True),
                                         *tiling.cut((zb[cols], nb[cols]), 0, cols.size, True),
                                         requests, diagonal=B is None and i == j)
            for o, v in zip(out, values):
                o[rows[:, None], cols[None, :]] = np.asarray(v)[: rows.size, : cols.size]
    return out


def table_kernel(A, B, *, T, activation, ntk=False, tol=flow_table.TOL):
    """(K, Theta or None) from the tables of the panels of A and B, or None when one is not
    built (``B=None``: K(A, A))."""
    out = evaluate_blocks(A, B, [NNGP, NTK] if ntk else [NNGP], T=T, activation=activation,
                          ntk=ntk, tol=tol)
    if out is None:
        return None
    return out[0], (out[1] if ntk else None)


@pytest.fixture
def fresh_tables(monkeypatch):
    """An empty table cache for this test (restored afterwards): tables built under patched
    node levels must not be served to other tests, and cached tables not to this one."""
    monkeypatch.setattr(flow_table, "_TABLES", {})


@pytest.fixture
def spy_table(monkeypatch):
    """Records what flow_table.table returned to the engine (one entry per block of panels)."""
    calls = []
    original = flow_table.table

    def spy(*args, **kwargs):
        calls.append(original(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(flow_table, "table", spy)
    return calls


def _q(X, bias):
    """The engine's variances of the inputs X (weight variance 1)."""
    return features(X, 1.0, bias)[1] ** 2


@pytest.mark.parametrize("activation", _marked(ACTIVATIONS), ids=lambda a: getattr(a, "name", a))
@pytest.mark.parametrize("bias", [0.0, 0.1])
def test_symmetric_matches_ode(activation, bias, spy_table):
    act = get_activation(activation)
    # variances in panels -2 and -1 with or without bias (three blocks, the same tables: few
    # programs to compile); below 1, where tanh's tables need only its first Mehler order
    X = _data(60, seed=1, band=(0.2, 0.85))
    A = _inputs(60, bias=bias, seed=1, band=(0.2, 0.85))
    q12 = A @ A.T
    q = np.diag(q12).copy()
    ntk = bias == 0.0  # the NTK once per activation (it doubles the reference solve)
    net = network.resnet(activation=act, bias_variance=bias)
    K = engine.gram(net, X)
    ref = reference(q, q, q12, q12 if ntk else None, T=1.0, activation=act, symmetric=True)
    panels = np.unique(flow_table.panel(q))
    assert panels.tolist() == [-2, -1]  # several blocks of panels
    # the tabulated path for every block (the upper triangle of blocks: one table per pair)
    assert len(spy_table) == panels.size * (panels.size + 1) // 2
    assert all(t is not None for t in spy_table)
    assert all("ntk" not in t.coefficients for t in spy_table)  # NNGP tables: no NTK part
    assert _rel(K, ref[2]) <= ACCURACY
    # exactly symmetric, diagonal exactly the diagonal flow
    assert np.array_equal(K, K.T)
    qe = _q(X, bias)
    np.testing.assert_allclose(qe, q, rtol=1e-14)
    assert np.array_equal(np.diag(K), diagonal_flow(act, 1.0, qe)[0])
    assert np.array_equal(np.diag(K), engine.diagonal(net, X))
    if ntk:
        net_ntk = network.resnet(activation=act, bias_variance=bias, ntk=True)
        spy_table.clear()
        theta = engine.gram(net_ntk, X)
        assert len(spy_table) == 3
        assert all(t is not None and "ntk" in t.coefficients for t in spy_table)
        assert _rel(theta, ref[3]) <= ACCURACY
        assert np.array_equal(theta, theta.T)
        qT, thT = diagonal_flow(act, 1.0, qe, ntk=True)
        # the NNGP matrix comes from its own (NNGP-only) solve: the variances that ride along
        # with the NTK agree to the solver's tolerance, not bit for bit (different steps)
        np.testing.assert_allclose(np.diag(K), qT, rtol=limit.ode.RTOL, atol=0)
        assert np.array_equal(np.diag(theta), thT)
        assert np.array_equal(np.diag(theta), engine.diagonal(net_ntk, X))


@pytest.mark.parametrize("activation", _marked(["erf", "gelu", "tanh"]))
def test_rectangular_and_ntk(activation):
    act = get_activation(activation)
    A = _inputs(50, bias=0.05, seed=2, band=(0.15, 0.9))
    B = _inputs(35, bias=0.05, seed=3, band=(0.04, 0.9))
    q11, q22, q12 = (A * A).sum(1), (B * B).sum(1), A @ B.T
    assert np.unique(flow_table.panel(q11)).size == 2
    assert np.unique(flow_table.panel(q22)).size == 3
    K, theta = table_kernel(A, B, T=0.7, activation=act, ntk=True)
    ref = reference(q11, q22, q12, q12, T=0.7, activation=act)
    assert K.shape == theta.shape == (50, 35)
    assert _rel(K, ref[2]) <= ACCURACY
    assert _rel(theta, ref[3]) <= ACCURACY
    # the NTK alone: the same numbers as next to the NNGP
    (only,) = evaluate_blocks(A, B, [NTK], T=0.7, activation=act, ntk=True)
    assert np.array_equal(only, theta)


@pytest.mark.heavy
def test_table_reports_accuracy_and_nodes():
    A = _inputs(60, seed=4, band=(0.2, 0.85))
    q = (A * A).sum(1)
    q12 = A @ A.T
    key = "nngp:" + str(NNGP[1])
    tight, loose = [], []
    evaluate_blocks(A, None, [NNGP], T=1.0, activation="erf", tol=1e-10, tables=tight)
    (K,) = evaluate_blocks(A, None, [NNGP], T=1.0, activation="erf", tol=1e-6, tables=loose)
    assert len(tight) == len(loose) == 4  # the pairs of panels -2 and -1
    p = flow_table.panel(q)
    for table, coarse in zip(tight, loose):
        assert table is not coarse and table.tol == 1e-10 and coarse.tol == 1e-6
        info = table.info
        assert set(info) >= {"n_s", "n_rho", "order", "terms", "degree", "error_estimate",
                             "max_value"}
        assert info["n_s"] >= 2 and info["n_rho"] >= 2 and info["order"] is None  # erf: exact dual
        # the estimate: two trailing coefficients (<= tol each), the dropped terms, the ODE
        assert 0 < info["error_estimate"] <= 3.1e-10
        assert info["terms"][key] > 0 and info["degree"][key] >= 1
        i, j = table.panels
        rows, cols = q[p == i], q[p == j]
        assert table.covers(rows, cols) and not table.covers(rows * 10.0, cols)
        assert not table.covers(rows, cols / 10.0)
        if i != j:
            assert not table.covers(cols, rows)
        block = K[np.ix_(p == i, p == j)]
        assert info["max_value"] >= np.abs(block).max() * (1 - 1e-6)
        # a looser tolerance: fewer nodes and terms
        assert coarse.info["n_s"] <= info["n_s"] and coarse.info["n_rho"] <= info["n_rho"]
        assert coarse.info["terms"][key] < info["terms"][key]
        assert coarse.info["error_estimate"] <= 3.1e-6
    ref = reference(q, q, q12, T=1.0, activation=erf(), symmetric=True)[2]
    assert _rel(K, ref) <= 1e-6
    # callables: the smallest Mehler order whose range covers the panel's flow (SiLU: 11, 23
    # and 49 at 256, 512 and 1024 terms; its variance grows like q e^(T/2) along the flow)
    for panels, order in (((-2, -2), 256), ((1, 1), 512), ((2, 2), 1024)):
        assert flow_table.table(*panels, T=1.0, activation=SILU).info["order"] == order
    # tanh and the sigmoid: one order in every table (one compiled grid solve)
    for panels in ((-2, -2), (1, 1)):
        table = flow_table.table(*panels, T=1.0, activation="tanh")
        assert table.info["order"] == flow_table.MIXTURE_TABLE_ORDER


def test_equal_variances_in_one_panel(spy_table):
    """Equal variances: one panel, one table, accurate (no degenerate one-node tables)."""
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(40, 6))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    q12 = 1.3 * Z @ Z.T
    q = np.full(40, 1.3)
    tables = []
    (K,) = evaluate_blocks(np.sqrt(1.3) * Z, None, [NNGP], T=1.0, activation="gelu",
                           tables=tables)
    assert len(tables) == 1 and tables[0].panels == (0, 0) and tables[0].info["n_s"] >= 2
    ref = reference(q, q, q12, T=1.0, activation="gelu", symmetric=True)[2]
    assert _rel(K, ref) <= ACCURACY
    # and through the engine (inputs of equal norms: variances equal up to rounding)
    spy_table.clear()
    X = Z * np.sqrt(1.3 * 6)
    net = network.resnet(activation="gelu")
    assert _rel(engine.gram(net, X), ref) <= ACCURACY
    assert len(spy_table) == 1 and spy_table[0].panels == (0, 0)


def test_fallbacks_return_none():
    net = network.resnet(activation="erf")
    A = _data(20, seed=7)
    A[3] = 0.0  # a zero input without bias: q_aa = 0, no log-variance, no panel
    assert engine._table_gram(net, features(A, 1.0, 0.0), None, ()) is None
    B = _data(20, seed=8)
    f = features(B, 1.0, 0.0)
    assert engine._table_gram(net, f, features(A, 1.0, 0.0), ()) is None  # in either argument
    for bad in (np.inf, np.nan):  # non-finite variances
        n = f[1].copy()
        n[0] = bad
        assert engine._table_gram(net, (f[0], n), None, ()) is None
    with enable_x64():  # as inside engine.gram
        assert engine._table_gram(net, f, None, ()) is not None
    # homogeneous activations are not tabulated (non-analytic at rho = +-1; ReLU has its table)
    for i, j in [(0, 0), (-2, 1)]:
        assert flow_table.table(i, j, T=1.0, activation="relu") is None
        assert flow_table.table(i, j, T=1.0, activation="erf") is not None
    # a callable beyond e^3: the flow's variances pass the Mehler range of every order (49 at
    # 1024 for SiLU); tanh's direct sum covers every variance
    assert flow_table.table(4, 4, T=1.0, activation=SILU) is None
    assert flow_table.table(1, 1, T=1.0, activation="tanh") is not None
    # variances 0.1 and 10: panels far apart, one table
    table = flow_table.table(flow_table.panel(0.1), flow_table.panel(10.0), T=1.0,
                             activation="erf")
    assert table is not None and table.covers(np.array([0.1]), np.array([10.0]))


def _wide(d=5):
    """Inputs of norms 1e-2 to 1e2 (variances 2e-5 to 2e3, six panels), with correlated
    pairs in one panel, in neighbouring panels and in neighbouring panels at large variance
    (where the tables need many nodes; the panel of 2e3 has no table)."""
    rng = np.random.default_rng(12)
    norms = np.array([1e-2, 1.0, 10.0, 1e2])
    X = rng.normal(size=(7, d))
    X[:4] *= (norms / np.linalg.norm(X[:4], axis=1))[:, None]
    X[4] = X[0] + 0.1 * X[4] * norms[0] / np.linalg.norm(X[4])  # the same panel
    X[5] = 1.6 * X[1] + 0.3 * X[5] * norms[1] / np.linalg.norm(X[5])  # panels apart
    X[6] = 1.1 * X[2] + 0.2 * X[6] * norms[2] / np.linalg.norm(X[6])  # panels apart, large
    return X


@pytest.mark.heavy
def test_wide_variance_range_through_panels(spy_table):
    """Variances from 2e-5 to 2e3 (beyond any single table): every block of panels takes its
    own table (or the pair flow where the table cannot be built), and K matches the ODE."""
    X = _wide()
    A = np.c_[X / np.sqrt(X.shape[1]), np.zeros(len(X))]
    q12 = A @ A.T
    q = np.diag(q12).copy()
    assert q.min() < 1e-4 and q.max() > 1e3
    panels = np.unique(flow_table.panel(q))
    assert panels.size >= 6
    for activation in ("erf", "gelu"):
        spy_table.clear()
        K = engine.gram(network.resnet(activation=activation), X)
        built = [t for t in spy_table if t is not None]
        assert len(spy_table) == panels.size * (panels.size + 1) // 2
        assert 0.5 * len(spy_table) <= len(built) < len(spy_table)  # both paths taken
        ref = reference(q, q, q12, T=1.0, activation=activation, symmetric=True)[2]
        # each entry to its own scale sqrt(K_aa K_bb): the scales span many decades
        scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
        err = np.abs(K - ref) / scale
        assert err.max() <= ACCURACY
        assert np.array_equal(K, K.T)


@pytest.mark.parametrize("activation", ["erf", "gelu"])
def test_batch_independence(activation):
    """An entry of K does not depend on the rest of the batch: K(x, y) alone equals the
    entry of K(X) for a batch X of norms from 1e-2 to 1e2 that contains x and y."""
    X = _wide()
    net = network.resnet(activation=activation)
    K = engine.gram(net, X)
    worst = 0.0
    for a, b in [(0, 4), (4, 0), (1, 5), (5, 1), (2, 6), (6, 2), (0, 3), (3, 2), (1, 1)]:
        # K(x, x) alone: the symmetric call (the diagonal flow, as on K(X)'s diagonal)
        alone = engine.gram(net, X[a][None], None if a == b else X[b][None])[0, 0]
        worst = max(worst, abs(alone - K[a, b]) / abs(K[a, b]))
    assert worst <= 1e-14


def test_table_cache():
    """A second call returns the same table; one with derivatives serves a later call
    without; the tolerance, the NTK flag, T and the panels are part of the key."""
    first = flow_table.table(-2, -1, T=1.0, activation="erf")
    assert first is not None and flow_table.table(-2, -1, T=1.0, activation="erf") is first
    assert flow_table.table(-2, -1, T=1.0, activation=get_activation("erf")) is first
    for other in [flow_table.table(-1, -2, T=1.0, activation="erf"),
                  flow_table.table(-2, -1, T=1.0, activation="erf", tol=1e-10),
                  flow_table.table(-2, -1, T=0.7, activation="erf"),
                  flow_table.table(-2, -1, T=1.0, activation="erf", ntk=True),
                  flow_table.table(-2, -1, T=1.0, activation="gelu")]:
        assert other is not None and other is not first
    assert "ntk" in flow_table.table(-2, -1, T=1.0, activation="erf", ntk=True).coefficients
    # derivatives=True first (at a T no other test uses): it serves the call without
    rich = flow_table.table(-2, -1, T=0.9, activation="gelu", derivatives=True)
    assert rich is not None and "scale" in rich.coefficients["nngp"]
    assert flow_table.table(-2, -1, T=0.9, activation="gelu") is rich
    assert flow_table.table(-2, -1, T=0.9, activation="gelu", derivatives=True) is rich
    # a call without first builds its own; a later rich one serves the calls after it
    plain = flow_table.table(-2, -1, T=0.95, activation="gelu")
    assert "scale" not in plain.coefficients["nngp"]
    rich = flow_table.table(-2, -1, T=0.95, activation="gelu", derivatives=True)
    assert rich is not plain and "scale" in rich.coefficients["nngp"]
    assert flow_table.table(-2, -1, T=0.95, activation="gelu") is rich


def test_engine_falls_back_to_the_pair_flow(spy_table):
    """A zero row without bias: no table; the engine integrates every pair instead."""
    X = _data(20, seed=7)
    X[3] = 0.0
    A = _inputs(20, seed=7)
    A[3] = 0.0
    q12 = A @ A.T
    q = np.diag(q12).copy()
    K = engine.gram(network.resnet(activation="erf"), X)
    assert spy_table == []  # the table path was not tried
    assert np.array_equal(K, K.T) and np.all(K[3] == 0)
    ref = reference(q, q, q12, T=1.0, activation="erf", symmetric=True)[2]
    assert _rel(K, ref) <= ACCURACY


def test_no_convergence_returns_none(monkeypatch, fresh_tables):
    """The grid cap reached without convergence (here a cap of 41 rho-nodes and erf at large
    variance, where the dual's branch point 1 + 1/2q is close to rho = 1)."""
    monkeypatch.setattr(flow_table, "RHO_NODES", (41,))
    i, j = flow_table.panel(50.0), flow_table.panel(100.0)
    assert flow_table.table(i, j, T=1.0, activation="erf") is None
    assert flow_table.table(-3, -3, T=1.0, activation="erf") is not None  # small: converges


def test_errors(fresh_tables):
    with pytest.raises(ValueError, match="tol"):
        flow_table.table(0, 0, T=1.0, activation="erf", tol=1.0)
    no_derivative = Activation("noderiv", erf().dual, False, None)
    with pytest.raises(ValueError, match="derivative"):
        flow_table.table(0, 0, T=1.0, activation=no_derivative, ntk=True)
    table = flow_table.table(0, 0, T=1.0, activation="erf")
    z, n = np.eye(3), np.sqrt(np.array([1.0, 1.5, 2.5]))
    with pytest.raises(ValueError, match="ntk"):
        table.evaluate_tile(z, n, z, n, [NTK])
    with pytest.raises(ValueError, match="derivatives=True"):
        table.evaluate_tile(z, n, z, n, [("nngp", (("diag", 1.0),))])


def test_large_symmetric_blocks_exact(monkeypatch):
    """K(X, X) in several tiles per block of panels (the upper triangle mirrored): still
    exactly symmetric and accurate, and equal to the full non-symmetric evaluation K(X, X2=X)."""
    monkeypatch.setattr(engine, "TABLE_TILE", 64)
    X = _data(300, d=12, seed=9)
    A = _inputs(300, d=12, seed=9)
    q12 = A @ A.T
    q = np.diag(q12).copy()
    counts = np.unique(flow_table.panel(q), return_counts=True)[1]
    assert counts.size >= 3 and len(tiling.blocks(counts.max(), engine.TABLE_TILE)) >= 3
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
    A = _inputs(70, bias=0.3, seed=10, band=(0.05, 0.65))
    q12 = A @ A.T
    q = np.diag(q12).copy()
    assert np.unique(flow_table.panel(q)).size == 2 and q.max() < 1.0  # tanh: one order
    K, theta = table_kernel(A, None, T=1.0, activation="tanh", ntk=True)
    qT, thT = diagonal_flow(get_activation("tanh"), 1.0, q, ntk=True, rtol=1e-13, atol=1e-14)
    assert np.abs(np.diag(K) - qT).max() <= ACCURACY * qT.max()
    assert np.abs(np.diag(theta) - thT).max() <= ACCURACY * thT.max()
    X = _data(70, seed=10, band=(0.05, 0.65))
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
    T, h = 0.8, 1e-4
    requests = [("nngp", (("value", 1.0),)), ("nngp", (("T", 1.0),)),
                ("nngp", (("diag", 1.0), ("ab", 1.0))), ("nngp", (("scale", 1.0),))]
    value, d_T, d_bias, d_scale = evaluate_blocks(A, None, requests, T=T, activation="gelu",
                                                  derivatives=True)

    def K(T=T, shift=0.0, factor=1.0):
        qq, c = factor * q + shift, factor * q12 + shift
        return reference(qq, qq, c, T=T, activation="gelu")[2]

    assert _rel(value, K()) <= ACCURACY
    for got, plus, minus in [(d_T, K(T=T + h), K(T=T - h)), (d_bias, K(shift=h), K(shift=-h)),
                             (d_scale, K(factor=1 + h), K(factor=1 - h))]:
        assert _rel(got, (plus - minus) / (2 * h)) <= 1e-7


def test_parity_is_a_property_of_the_activation(monkeypatch):
    """Whether only rho_0 >= 0 is solved is decided once per activation at fixed variances: a
    first table where GELU's even part underflows (q ~ 1e-200: its dual is q_ab / 4 + O(q^2))
    must not make GELU odd for every later table."""
    monkeypatch.setattr(flow_table, "_ODD", {})
    tiny = int(flow_table.panel(np.array([1e-200]))[0])
    flow_table.table(tiny, tiny, T=1.0, activation="gelu")
    assert not flow_table._is_odd(get_activation("gelu"), False)
    assert flow_table._is_odd(get_activation("erf"), True)
    assert flow_table._is_odd(get_activation("tanh"), True)
    assert not flow_table._is_odd(sin_activation(c=0.4), False)
