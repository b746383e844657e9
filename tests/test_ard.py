"""Per-feature input weight variances (ARD, issue 14): q_0(a, b) = sum_i w_i a_i b_i / d + b."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel

import resgp
from resgp.core import engine, network

RNG = np.random.default_rng(11)
X = RNG.normal(size=(7, 3))
W = np.array([0.5, 2.0, 1.3])

CASES = [dict(), dict(depth=4), dict(activation="erf"), dict(ntk=True),
         dict(activation="erf", depth=3, ntk=True), dict(activation="tanh", depth=2),
         pytest.param(dict(activation="gelu", ntk=True), marks=pytest.mark.heavy)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items())
                         or "relu")
def test_values_equal_the_scaled_inputs_and_gradients_finite_differences(case):
    """K with weights w equals K of the inputs scaled by sqrt(w) (an independent route through
    the isotropic input layer); dK/dw_i against central differences of K."""
    case = dict(case)
    ntk = case.pop("ntk", False)
    fn = resgp.resnet_ntk if ntk else resgp.resnet_nngp
    K = fn(X, weight_variance=W, bias_variance=0.2, **case)
    np.testing.assert_allclose(K, fn(X * np.sqrt(W), bias_variance=0.2, **case), rtol=1e-12,
                               atol=1e-14 * np.abs(K).max())
    diag = (resgp.resnet_ntk_diag if ntk else resgp.resnet_nngp_diag)(
        X, weight_variance=W, bias_variance=0.2, **case)
    np.testing.assert_allclose(diag, np.diag(K), rtol=1e-12)
    net = network.resnet(weight_variance=W, bias_variance=0.2, ntk=ntk, **case)
    K2, G = engine.gram_and_gradients(net, X, ("branch_variance", "weight_variance",
                                               "bias_variance"))
    assert G.shape == (5, 7, 7)
    np.testing.assert_allclose(K2, K, rtol=1e-12, atol=1e-14 * np.abs(K).max())
    h = 1e-5
    for i in range(3):
        up, down = W.copy(), W.copy()
        up[i] *= 1 + h
        down[i] *= 1 - h
        fd = (fn(X, weight_variance=up, bias_variance=0.2, **case)
              - fn(X, weight_variance=down, bias_variance=0.2, **case)) / (2 * h * W[i])
        assert np.abs(G[1 + i] - fd).max() <= 1e-8 * np.abs(fd).max(), i
    iso = network.resnet(bias_variance=0.2, ntk=ntk, **case)
    _, G_iso = engine.gram_and_gradients(iso, X * np.sqrt(W), ("branch_variance",
                                                                "bias_variance"))
    np.testing.assert_allclose(G[[0, 4]], G_iso, rtol=1e-9, atol=1e-12 * np.abs(G_iso).max())


def test_sklearn_kernel_vector_hyperparameter():
    k = resgp.ResNetKernel(weight_variance=np.ones(3), bias_variance=0.1)
    names = [h.name for h in k.hyperparameters]
    assert names == ["bias_variance", "branch_variance", "weight_variance"]
    assert k.hyperparameter_weight_variance.n_elements == 3 and k.theta.shape == (5,)
    assert resgp.ResNetKernel().hyperparameter_weight_variance.fixed  # a scalar is fixed
    K, G = k(X, eval_gradient=True)
    theta, h = k.theta, 1e-6
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        fd = (k.clone_with_theta(up)(X) - k.clone_with_theta(down)(X)) / (2 * h)
        assert np.abs(G[..., i] - fd).max() <= 1e-7 * np.abs(fd).max(), i
    with pytest.raises(ValueError, match="one variance per feature"):
        resgp.ResNetKernel(weight_variance=np.ones(4))(X)
    with pytest.raises(ValueError, match="one variance per feature"):
        resgp.resnet_nngp(X, weight_variance=np.ones(2))
    with pytest.raises(ValueError, match="> 0"):
        resgp.resnet_nngp(X, weight_variance=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="outside"):
        resgp.ResNetKernel(weight_variance=[1.0, 1e3, 1.0])(X, eval_gradient=True)
    rebuilt = eval(repr(resgp.ResNetKernel(weight_variance=[0.5, 2.0, 1.0])),  # noqa: S307
                   {"ResNetKernel": resgp.ResNetKernel})
    np.testing.assert_array_equal(rebuilt(X), resgp.resnet_nngp(X, weight_variance=[0.5, 2, 1]))


def test_ard_finds_the_relevant_feature():
    """y depends on the first of four features: ARD raises the marginal likelihood over the
    isotropic kernel and gives that feature the largest weight variance."""
    Z = RNG.normal(size=(60, 4))
    y = np.sin(2.0 * Z[:, 0]) + 0.05 * RNG.normal(size=60)
    fits = {}
    for key, w in (("iso", 1.0), ("ard", np.ones(4))):
        kernel = ConstantKernel() * resgp.ResNetKernel(weight_variance=w, bias_variance=0.1) \
            + WhiteKernel(1e-2)
        fits[key] = GaussianProcessRegressor(kernel, normalize_y=True).fit(Z, y)
    assert fits["ard"].log_marginal_likelihood_value_ > \
        fits["iso"].log_marginal_likelihood_value_ + 10
    w = np.asarray(fits["ard"].kernel_.k1.k2.weight_variance)
    assert np.argmax(w) == 0 and w[0] > 10 * np.max(w[1:])


def test_traced_ard():
    import jax
    import jax.numpy as jnp

    from resgp.core.x64 import enable_x64

    with enable_x64():
        K = jax.jit(lambda x: resgp.resnet_nngp(x, weight_variance=W, activation="erf"))(
            jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(K), resgp.resnet_nngp(X, weight_variance=W,
                                                                activation="erf"), rtol=1e-12)
