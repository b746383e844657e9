"""Rectified monomials (step, requ, max(0, x)^n) and sign against Neural Tangents' own layers
(stax.RectifiedMonomial, stax.Sign: closed forms written independently of resgp), and the NT
adapters resgp.nt.resnet / InfiniteResNet with these activations."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from neural_tangents import stax

import resgp
from resgp import activations as act
from resgp import nt as rnt
from resgp.core.x64 import enable_x64

KW = dict(branch_variance=0.7, weight_variance=1.3, bias_variance=0.2)


def nt_kernels(kernel_fn, X1, X2=None):
    with enable_x64(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = jax.jit(kernel_fn, static_argnames="get")(X1, X2, ("nngp", "ntk", "cov1"))
        return np.asarray(k.nngp), np.asarray(k.ntk), np.asarray(k.cov1)


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 5)) * 0.6, rng.normal(size=(6, 5)) * 0.8


def _nt_resnet_block(layer, width=16):
    """Dense input layer and one residual block y = x + alpha Dense(phi(x)), NT's own layer."""
    alpha = np.sqrt(KW["branch_variance"])
    branch = stax.serial(layer, stax.Dense(width, W_std=alpha, b_std=None))
    return stax.serial(
        stax.Dense(width, W_std=np.sqrt(KW["weight_variance"]), b_std=np.sqrt(KW["bias_variance"])),
        stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())


@pytest.mark.parametrize("n", [0, 2, 3])
def test_depth_one_equals_nt_rectified_monomial(data, n):
    """NT's RectifiedMonomial(n) at one block, between distinct inputs (its diagonal is NaN in
    neural-tangents 0.6.5, which is why resgp's adapter does not use it)."""
    X1, X2 = data
    a = act.rectified_monomial(n)
    nngp, ntk, cov1 = nt_kernels(_nt_resnet_block(stax.RectifiedMonomial(n))[2], X1, X2)
    assert rel_err(resgp.resnet_nngp(X1, X2, depth=1, activation=a, **KW), nngp) < 1e-13
    if n > 0:
        assert rel_err(resgp.resnet_ntk(X1, X2, depth=1, activation=a, **KW), ntk) < 1e-13
    # NT's own layer on K(X1, X1): NaN on diagonal entries (wherever the rounded correlation
    # is 1, arccos(1) = 0 and (pi - 0) / sin 0; if this starts failing, NT fixed it)
    own = nt_kernels(_nt_resnet_block(stax.RectifiedMonomial(n))[2], X1)[0]
    assert np.isnan(np.diag(own)).any()


def test_sign_equals_nt_sign(data):
    """NT's Sign layer (its own arctan2 closed form) through several blocks, between distinct
    inputs and on the variances (cov1)."""
    X1, X2 = data
    for depth in (1, 5):
        _, _, kernel_fn = rnt.resnet(16, depth, activation="sign", **KW)
        nngp, _, cov1 = nt_kernels(kernel_fn, X1, X2)
        kw = dict(depth=depth, activation="sign", **KW)
        assert rel_err(resgp.resnet_nngp(X1, X2, **kw), nngp) < 1e-13
        assert rel_err(resgp.resnet_nngp_diag(X1, **kw), cov1) < 1e-13


@pytest.mark.parametrize("activation", ["step", "requ", act.rectified_monomial(3)],
                         ids=["step", "requ", "cube"])
@pytest.mark.parametrize("depth", [1, 5])
def test_resnet_adapter_equals_resgp(data, activation, depth):
    """resgp.nt.resnet(activation=...) (NT's Elementwise layer with resgp's closed forms):
    finite everywhere, and NT's kernel composition equals resgp's recursion."""
    X1, X2 = data
    _, _, kernel_fn = rnt.resnet(16, depth, activation=activation, **KW)
    for A, B in [(X1, None), (X1, X2)]:
        nngp, ntk, cov1 = nt_kernels(kernel_fn, A, B)
        assert np.isfinite(nngp).all() and np.isfinite(cov1).all()
        kw = dict(depth=depth, activation=activation, **KW)
        assert rel_err(resgp.resnet_nngp(A, B, **kw), nngp) < 1e-13
        assert rel_err(resgp.resnet_nngp_diag(A, **kw), cov1) < 1e-13
        if activation != "step":
            assert rel_err(resgp.resnet_ntk(A, B, **kw), ntk) < 1e-13


@pytest.mark.parametrize("activation", ["step", "requ", "sign"])
def test_finite_network_applies_the_activation(data, activation):
    X1, _ = data
    init_fn, apply_fn, _ = rnt.resnet(32, 3, activation=activation, **KW)
    with enable_x64():
        _, params = init_fn(jax.random.PRNGKey(0), X1.shape)
        out = np.asarray(apply_fn(params, jnp.asarray(X1)))
    assert out.shape == (8, 32) and np.isfinite(out).all()


def test_infinite_resnet_layer(data):
    """Inputs halved: ReQU's variance flow q' = 3 q^2 / 2 blows up at t = 2 / 3 q_0."""
    X1, X2 = data[0] / 2, data[1] / 2
    _, _, kernel_fn = stax.serial(stax.Dense(8, W_std=1.0), rnt.InfiniteResNet(
        branch_variance=0.5, activation="requ"))
    nngp, ntk, _ = nt_kernels(kernel_fn, X1, X2)
    assert rel_err(resgp.resnet_nngp(X1, X2, activation="requ", branch_variance=0.5), nngp) < 1e-10
    assert rel_err(resgp.resnet_ntk(X1, X2, activation="requ", branch_variance=0.5), ntk) < 1e-10
