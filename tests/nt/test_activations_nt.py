"""Every activation, finite depth: resgp's NNGP and NTK equal Neural Tangents' analytic kernels."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import resgp
from resgp import activations as act
from resgp import nt as rnt
from resgp.core.x64 import enable_x64

RTOL = 1e-10


def nt_kernels(kernel_fn, X1, X2=None):
    with enable_x64(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = jax.jit(kernel_fn, static_argnames="get")(X1, X2, ("nngp", "ntk"))
        return np.asarray(k.nngp), np.asarray(k.ntk)


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def _custom(x):
    return jnp.sin(x) + 0.3 * x * jnp.exp(-0.1 * x * x) + 0.1


def _custom_derivative(x):
    return jnp.cos(x) + 0.3 * (1.0 - 0.2 * x * x) * jnp.exp(-0.1 * x * x)


ACTIVATIONS = {
    "relu": "relu",
    "leaky_relu": act.leaky_relu(0.1),
    "abrelu": act.abrelu(-0.4, 1.3),
    "abs": "abrelu",
    "erf": "erf",
    "erf_abc": act.erf(1.3, 0.7, 0.2),
    "sin": "sin",
    "sin_abc": act.sin(1.1, 0.9, 0.3),
    "gelu": "gelu",
    "tanh": "tanh",  # NT's Elementwise layer with resgp's duals (the scale mixture)
    "sigmoid": "sigmoid",
    "tanh_numerical": act.from_callable(jnp.tanh, name="tanh_numerical", order=96),  # NT: 192^2
    "custom": act.from_callable(_custom, name="custom", order=64, derivative=_custom_derivative),
}


QUADRATURE = ("tanh_numerical", "custom")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(10, 6)), rng.normal(size=(7, 6)) * 1.3


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_resnet_nngp_and_ntk_equal_nt(data, name):
    X1, X2 = data
    a = ACTIVATIONS[name]
    # quadrature duals (tanh, custom): variances kept <= ~1.5, where order 128 is < 1e-12
    wv = 0.6 if name in QUADRATURE else 1.1
    kw = dict(branch_variance=1.2, weight_variance=wv, bias_variance=0.2, activation=a)
    depth = 6
    n = len(X1)
    # one NT call on the stacked inputs gives K(X1, X2) and K(X1, X1) as blocks
    nngp, ntk = nt_kernels(rnt.resnet(16, depth, **kw)[2], np.concatenate([X1, X2]))
    assert rel_err(resgp.resnet_nngp(X1, X2, depth=depth, **kw), nngp[:n, n:]) < RTOL
    assert rel_err(resgp.resnet_ntk(X1, X2, depth=depth, **kw), ntk[:n, n:]) < RTOL
    # the NTK really differs from the NNGP (it is not a copy)
    assert rel_err(ntk, nngp) > 1e-3
    # symmetric case and the diagonals
    K = resgp.resnet_nngp(X1, depth=depth, **kw)
    assert rel_err(K, nngp[:n, :n]) < RTOL
    np.testing.assert_array_equal(K, K.T)
    assert rel_err(resgp.resnet_nngp_diag(X1, depth=depth, **kw), np.diag(nngp)[:n]) < RTOL
    ntk_diag = resgp.resnet_ntk_diag(X1, depth=depth, **kw)
    Theta = resgp.resnet_ntk(X1, depth=depth, **kw)
    assert rel_err(ntk_diag, np.diag(Theta)) < 1e-13
    # NT computes the angle of a pair (a, a) from a rounded correlation: ~1e-8 off for ReLU-like
    # derivative duals, whose angle is sqrt-sensitive at 0; resgp's is exactly 0 there.
    assert rel_err(ntk_diag, np.diag(ntk)[:n]) < 1e-8
    off = ~np.eye(n, dtype=bool)
    assert rel_err(Theta[off], ntk[:n, :n][off]) < RTOL


@pytest.mark.parametrize("name", ["leaky_relu", "erf_abc", "gelu", "tanh"])
def test_mlp_nngp_and_ntk_equal_nt(data, name):
    X1, X2 = data
    X2 = X2 / 1.3  # variances up to ~2: inside the accuracy range of the quadrature duals
    a = ACTIVATIONS[name]
    kw = dict(weight_variance=0.8, bias_variance=0.1, activation=a)
    nngp, ntk = nt_kernels(rnt.mlp(16, 3, **kw)[2], X1, X2)
    assert rel_err(resgp.mlp_nngp(X1, X2, depth=3, **kw), nngp) < RTOL
    assert rel_err(resgp.mlp_ntk(X1, X2, depth=3, **kw), ntk) < RTOL


def test_finite_network_uses_the_activation(data):
    """apply_fn of resgp.nt.resnet applies phi itself: a one-block net with a zero branch weight
    check is replaced by comparing two activations' outputs on the same parameters."""
    X1, _ = data
    init_fn, apply_fn, _ = rnt.resnet(32, 2, activation="erf")
    _, apply_relu, _ = rnt.resnet(32, 2, activation="relu")
    _, params = init_fn(jax.random.PRNGKey(0), X1.shape)
    out_erf, out_relu = apply_fn(params, X1), apply_relu(params, X1)
    assert out_erf.shape == (10, 32)
    assert np.abs(np.asarray(out_erf) - np.asarray(out_relu)).max() > 1e-3
