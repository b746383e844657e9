"""The trained-network posterior (resgp.predict) against Neural Tangents'
``gradient_descent_mse_ensemble`` on NT's own finite-depth kernels, and its limit in depth."""

from __future__ import annotations

import neural_tangents as ntl
import numpy as np
import pytest

import resgp
from resgp import nt as rnt
from resgp import predict
from resgp.core.x64 import enable_x64

RNG = np.random.default_rng(3)
X_TRAIN, X_TEST = RNG.normal(size=(12, 3)), RNG.normal(size=(5, 3))
Y_TRAIN = np.sin(X_TRAIN[:, :1]) + 0.1 * RNG.normal(size=(12, 1))
NET = dict(activation="erf", bias_variance=0.1, branch_variance=1.3)


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


@pytest.mark.parametrize("get", ["ntk", "nngp"])
@pytest.mark.parametrize("t", [None, 0.7, 25.0])
def test_matches_neural_tangents_at_finite_depth(get, t):
    depth = 6
    kernel_fn = rnt.resnet(512, depth, **NET)[2]
    settings = dict(learning_rate=0.8, diag_reg=1e-3)
    with enable_x64():
        fn = ntl.predict.gradient_descent_mse_ensemble(kernel_fn, X_TRAIN, Y_TRAIN, **settings)
        want_mean, want_cov = fn(t=t, x_test=X_TEST, get=get, compute_cov=True)
        want_train = fn(t=t, x_test=None, get=get)
    mean, cov = predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, t=t, get=get,
                                             compute_cov=True, depth=depth, **settings, **NET)
    assert rel(mean, want_mean) <= 1e-10
    assert rel(cov, want_cov) <= 1e-10
    k_dd = {g: f(X_TRAIN, depth=depth, **NET) for g, f in
            (("nngp", resgp.resnet_nngp), ("ntk", resgp.resnet_ntk))}
    train = predict.gradient_descent_mse_posterior(k_dd, Y_TRAIN, t=t, get=get, **settings)
    assert rel(train, want_train) <= 1e-10


def test_converges_to_the_infinite_depth_posterior():
    """Finite depths L approach the limit's posterior at the kernels' O(1/L) rate."""
    args = dict(t=3.0, get="ntk", compute_cov=True, **NET)
    mean_inf, cov_inf = predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, **args)
    errors = []
    for depth in (8, 32, 128):
        mean, cov = predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, depth=depth, **args)
        errors.append(max(rel(mean, mean_inf), rel(cov, cov_inf)))
    assert errors[0] > errors[1] > errors[2]
    assert 2.5 < errors[0] / errors[1] < 6 and 2.5 < errors[1] / errors[2] < 6  # ~4 = 32/8


def test_infinite_time_nngp_is_the_gp_posterior():
    """get="nngp" at t = inf is the exact GP posterior with noise diag_reg (absolute)."""
    K = resgp.resnet_nngp(X_TRAIN) + 0.01 * np.eye(12)
    Ks, Kss = resgp.resnet_nngp(X_TEST, X_TRAIN), resgp.resnet_nngp(X_TEST)
    mean, cov = predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, get="nngp",
                                             compute_cov=True, diag_reg=0.01,
                                             diag_reg_absolute_scale=True)
    np.testing.assert_allclose(mean, Ks @ np.linalg.solve(K, Y_TRAIN), rtol=1e-10)
    np.testing.assert_allclose(cov, Kss - Ks @ np.linalg.solve(K, Ks.T), rtol=1e-9, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="get must be"):
        predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, get="nope")
    with pytest.raises(ValueError, match="t must be"):
        predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, t=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        predict.gradient_descent_mse(X_TRAIN, Y_TRAIN, X_TEST, learning_rate=0.0)
    with pytest.raises(ValueError, match="shape"):
        predict.gradient_descent_mse_posterior({"ntk": np.eye(3)}, np.ones(4))


@pytest.mark.parametrize("train_time", [None, 2.0])
def test_regressor_ntk_posterior_matches_neural_tangents(train_time):
    """ResNetGPRegressor(posterior="ntk") with fixed hyperparameters = NT's ensemble on the
    standardised inputs, ridge = noise variance (absolute), plus the noise in the variance."""
    depth, noise = 5, 0.05
    y = Y_TRAIN[:, 0]
    model = resgp.ResNetGPRegressor(depth=depth, posterior="ntk", train_time=train_time,
                                    optimizer=None, normalize_y=False, noise_variance=noise,
                                    activation="erf", bias_variance=0.1).fit(X_TRAIN, y)
    A, B = model.scaler_.transform(X_TRAIN), model.scaler_.transform(X_TEST)
    kernel_fn = rnt.resnet(512, depth, activation="erf", bias_variance=0.1)[2]
    with enable_x64():
        fn = ntl.predict.gradient_descent_mse_ensemble(
            kernel_fn, A, y[:, None], diag_reg=noise + 1e-10, diag_reg_absolute_scale=True)
        want_mean, want_cov = fn(t=train_time, x_test=B, get="ntk", compute_cov=True)
    mean, cov = model.predict(X_TEST, return_cov=True)
    assert rel(mean, np.asarray(want_mean)[:, 0]) <= 1e-10
    assert rel(cov, np.asarray(want_cov) + noise * np.eye(5)) <= 1e-10
    _, std = model.predict(X_TEST, return_std=True)
    np.testing.assert_allclose(std, np.sqrt(np.diag(cov)), rtol=1e-12)
