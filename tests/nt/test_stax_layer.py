"""resgp.nt.InfiniteResNet: a stax layer whose kernel is the infinite-depth ResNet's."""

import warnings

import jax
import numpy as np
import pytest
from neural_tangents import stax

import resgp
from resgp import nt as rnt
from resgp.core.x64 import enable_x64

WV, BV, T = 1.44, 0.09, 1.3


def kernels(kernel_fn, X1, X2=None, jit=False):
    fn = jax.jit(kernel_fn, static_argnames="get") if jit else kernel_fn
    with enable_x64(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = fn(X1, X2, ("nngp", "ntk"))
        return np.asarray(k.nngp), np.asarray(k.ntk)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 5)), rng.normal(size=(6, 5)) * 1.2


@pytest.mark.parametrize("activation", ["relu", "erf", "gelu", "tanh"])
def test_after_dense_equals_resgp(data, activation):
    X1, X2 = data
    layer = rnt.InfiniteResNet(branch_variance=T, activation=activation)
    _, _, kernel_fn = stax.serial(stax.Dense(32, W_std=np.sqrt(WV), b_std=np.sqrt(BV)), layer)
    kw = dict(branch_variance=T, weight_variance=WV, bias_variance=BV, activation=activation)
    K, Theta = resgp.resnet_nngp(X1, X2, **kw), resgp.resnet_ntk(X1, X2, **kw)
    nngp, ntk = kernels(kernel_fn, X1, X2)
    np.testing.assert_allclose(nngp, K, rtol=0, atol=1e-10 * np.abs(K).max())
    np.testing.assert_allclose(ntk, Theta, rtol=0, atol=1e-10 * np.abs(Theta).max())
    # under jit (the flow is JAX code, no host callback), symmetric case
    nngp, ntk = kernels(kernel_fn, X1, None, jit=True)
    K, Theta = resgp.resnet_nngp(X1, **kw), resgp.resnet_ntk(X1, **kw)
    np.testing.assert_allclose(nngp, K, rtol=0, atol=1e-10 * np.abs(K).max())
    np.testing.assert_allclose(ntk, Theta, rtol=0, atol=1e-10 * np.abs(Theta).max())
    assert np.abs(Theta - K).max() > 0.05 * np.abs(K).max()  # really the NTK


def test_cov1_is_the_output_variance(data):
    X1, X2 = data
    _, _, kernel_fn = stax.serial(stax.Dense(8, W_std=np.sqrt(WV), b_std=np.sqrt(BV)),
                                  rnt.InfiniteResNet(branch_variance=T, activation="erf"))
    with enable_x64():
        k = kernel_fn(X1, X2)  # the whole Kernel
    kw = dict(branch_variance=T, weight_variance=WV, bias_variance=BV, activation="erf")
    np.testing.assert_allclose(np.asarray(k.cov1), resgp.resnet_nngp_diag(X1, **kw), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(k.cov2), resgp.resnet_nngp_diag(X2, **kw), rtol=1e-10)
    assert k.is_gaussian


def test_after_conv_front_end_is_the_flow_of_its_kernel():
    """Any front end: the layer applies resnet_limit to the front end's own Kernel."""
    X = np.random.default_rng(1).normal(size=(5, 6, 6, 2))
    front = stax.serial(stax.Conv(16, (3, 3), W_std=1.1, b_std=0.2), stax.Relu(), stax.Flatten(),
                        stax.Dense(16, W_std=1.0, b_std=0.1))
    nngp0, ntk0 = kernels(front[2], X)
    nngp, ntk = kernels(stax.serial(front, rnt.InfiniteResNet(activation="gelu"))[2], X)
    q = np.diag(nngp0)
    _, _, K, Theta = resgp.resnet_limit(q, q, nngp0, ntk0, activation="gelu", symmetric=True)
    np.testing.assert_allclose(nngp, K, rtol=1e-12)
    np.testing.assert_allclose(ntk, Theta, rtol=1e-12)
    assert np.abs(ntk - nngp).max() > 0.1  # the front end's NTK entered


def test_stand_in_network_is_the_documented_resnet(data):
    """apply_fn = stand_in_depth blocks x + sqrt(T/L) Dense(phi(x)): the same function as
    resgp.nt.resnet's network with those parameters."""
    X1, _ = data
    L = 4
    init_fn, apply_fn, _ = stax.serial(stax.Dense(24, W_std=np.sqrt(WV), b_std=np.sqrt(BV)),
                                       rnt.InfiniteResNet(branch_variance=T, activation="tanh",
                                                          stand_in_depth=L))
    _, params = init_fn(jax.random.PRNGKey(3), X1.shape)
    _, apply_ref, _ = rnt.resnet(24, L, branch_variance=T, weight_variance=WV, bias_variance=BV,
                                 activation="tanh")
    out = np.asarray(apply_fn(params, X1))
    assert out.shape == (8, 24)
    np.testing.assert_allclose(out, np.asarray(apply_ref(params, X1)), rtol=1e-6, atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="unknown activation"):
        rnt.InfiniteResNet(activation="swish")
    with pytest.raises(ValueError, match="branch_variance"):
        rnt.InfiniteResNet(branch_variance=-1.0)
    X = np.ones((2, 4, 4, 1))
    conv = stax.serial(stax.Conv(4, (3, 3)), rnt.InfiniteResNet())
    with pytest.raises(ValueError, match="Flatten"):
        conv[2](X, None, "nngp")
    not_gaussian = stax.serial(stax.Dense(4), stax.Relu(), rnt.InfiniteResNet())
    with pytest.raises(ValueError, match="Gaussian"):
        not_gaussian[2](np.ones((2, 3)), None, "nngp")


# ----------------------------------------------------------------------------- JAX transformations


def _head(activation, T=T):
    return stax.serial(stax.Dense(64, W_std=np.sqrt(WV), b_std=np.sqrt(BV)),
                       rnt.InfiniteResNet(branch_variance=T, activation=activation),
                       stax.Dense(1))[2]


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_grad_with_respect_to_inputs_matches_finite_differences(data, activation):
    X1, X2 = data
    kernel_fn = _head(activation)
    weights = np.random.default_rng(5).normal(size=(len(X1), len(X2)))

    def loss(x):
        k = kernel_fn(x, X2, ("nngp", "ntk"))
        return (k.nngp * weights).sum() + 0.3 * (k.ntk * weights).sum()

    with enable_x64():
        x0 = jax.numpy.asarray(X1)
        g = np.asarray(jax.jit(jax.grad(loss))(x0))
        f = jax.jit(loss)
        h = 1e-5
        for i, j in [(0, 0), (3, 2), (7, 4)]:
            e = np.zeros_like(X1)
            e[i, j] = h
            fd = (float(f(x0 + e)) - float(f(x0 - e))) / (2 * h)
            assert abs(g[i, j] - fd) <= 1e-6 * max(1.0, abs(fd)), (i, j, g[i, j], fd)


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_jit_has_no_host_callback_and_vmap_works(data, activation):
    X1, X2 = data
    kernel_fn = _head(activation)
    with enable_x64():
        jaxpr = str(jax.make_jaxpr(lambda x, y: kernel_fn(x, y, ("nngp", "ntk")))(X1, X2))
        assert "callback" not in jaxpr
        batched = jax.vmap(lambda x: kernel_fn(x[None], X2, "nngp"))(jax.numpy.asarray(X1))
        direct = kernel_fn(X1, X2, "nngp")
        # each row is integrated on its own steps under vmap: equal to the solver's tolerance
        np.testing.assert_allclose(np.asarray(batched)[:, 0], np.asarray(direct), rtol=1e-9)


def test_grad_with_respect_to_branch_variance(data):
    X1, _ = data
    kw = dict(weight_variance=WV, bias_variance=BV, activation="erf")

    def k_of(T):
        layer = rnt.InfiniteResNet(branch_variance=T, activation="erf")
        _, _, kernel_fn = stax.serial(stax.Dense(8, W_std=np.sqrt(WV), b_std=np.sqrt(BV)), layer)
        return kernel_fn(X1, None, "nngp").sum()

    with enable_x64():
        g = float(jax.grad(k_of)(jax.numpy.float64(T)))
    h = 1e-5
    fd = (resgp.resnet_nngp(X1, branch_variance=T + h, **kw).sum()
          - resgp.resnet_nngp(X1, branch_variance=T - h, **kw).sum()) / (2 * h)
    assert abs(g - fd) <= 1e-6 * abs(fd)
