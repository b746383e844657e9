"""Structural properties of the kernels: symmetry, PSD, diagonals, homogeneity, blocks,
dtypes and JAX settings, tiling. Hypothesis draws the inputs; a few explicit cases pin the
extremes (huge/tiny norms, zero rows, d = 2000)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import resgp
import resgp.kernels
from resgp._x64 import enable_x64

SETTINGS = settings(max_examples=25, deadline=None)

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


# ----------------------------------------------------------------------------- symmetry and PSD


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


@pytest.fixture
def restore_x64():
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)


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
    monkeypatch.setattr(resgp.kernels, "TILE", 7)
    assert len(resgp.kernels._blocks(20)) == 3  # really tiled
    Kt, KYt = kernel(net, X, **kw), kernel(net, X, Y, **kw)
    assert np.array_equal(Kt, Kt.T)
    atol = 1e-14 * np.abs(K).max()
    np.testing.assert_allclose(Kt, K, rtol=1e-13, atol=atol)
    np.testing.assert_allclose(KYt, KY, rtol=1e-13, atol=atol)
    np.testing.assert_allclose(Kt[5], Kt[17], rtol=1e-13, atol=atol)  # same input, other tile
    assert_psd(Kt)
    if kw.get("bias_variance", 0.0) == 0:
        assert np.all(Kt[9] == 0)
