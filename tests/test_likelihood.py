"""The contracted marginal-likelihood gradient (resgp.estimators.likelihood) against
scikit-learn's own (stacked K_gradient, K^-1 by cho_solve), and the fits it drives."""

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor as SklearnGPR
from sklearn.gaussian_process.kernels import (RBF, ConstantKernel, DotProduct, Matern,
                                              RationalQuadratic, WhiteKernel)

from resgp.estimators import GaussianProcessRegressor, gram_and_vjp
from resgp.sklearn_kernel import MLPKernel, ResNetKernel

W = np.array([1.0, 2.0, 0.5, 3.0])  # per-feature weight variances / length scales (d = 4)

KERNELS = {
    "rbf-ard": lambda: ConstantKernel(2.0) * RBF(W) + WhiteKernel(0.1),
    "rbf": lambda: ConstantKernel(2.0) * RBF(1.3) + WhiteKernel(0.1),
    "matern52-ard": lambda: ConstantKernel(2.0) * Matern(W, nu=2.5) + WhiteKernel(0.1),
    "matern15-iso-right": lambda: Matern(0.7, nu=1.5) * ConstantKernel(0.5) + WhiteKernel(0.1),
    "matern15-ard-fixed-noise": lambda: (ConstantKernel(2.0) * Matern(W, nu=1.5)
                                         + WhiteKernel(0.1, "fixed")),
    "matern05-generic": lambda: ConstantKernel(2.0) * Matern(W, nu=0.5) + WhiteKernel(0.1),
    "rq-generic": lambda: ConstantKernel(2.0) * RationalQuadratic() + WhiteKernel(0.1),
    "fixed-rbf-plus-dot": lambda: RBF(W, "fixed") + DotProduct() + WhiteKernel(0.1),
    "resnet-relu-ard": lambda: (ConstantKernel() * ResNetKernel(bias_variance=0.1,
                                                                weight_variance=W)
                                + WhiteKernel(0.1)),
    "resnet-erf-ard": lambda: (ConstantKernel() * ResNetKernel(bias_variance=0.1, activation="erf",
                                                               weight_variance=W)
                               + WhiteKernel(0.1)),
    "resnet-L3-ntk-ard": lambda: (ConstantKernel() * ResNetKernel(bias_variance=0.1, depth=3,
                                                                  ntk=True, weight_variance=W)
                                  + WhiteKernel(0.1)),
    "mlp-ard": lambda: (ConstantKernel() * MLPKernel(depth=2, bias_variance=0.1, weight_variance=W)
                        + WhiteKernel(0.1)),
    "resnet-times-rbf": lambda: (ConstantKernel() * ResNetKernel(bias_variance=0.1)
                                 + RBF(2.0) * ResNetKernel(depth=3, ntk=True) + WhiteKernel(0.1)),
}


def _data(n=50, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    Y = np.c_[np.sin(2 * X[:, 0]), X[:, 1] ** 2] + 0.1 * rng.standard_normal((n, 2))
    return X, Y


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("outputs", [1, 2])
def test_likelihood_and_gradient_equal_sklearns(name, outputs):
    X, Y = _data()
    y = Y[:, 0] if outputs == 1 else Y
    ours = GaussianProcessRegressor(KERNELS[name](), optimizer=None, normalize_y=True).fit(X, y)
    ref = SklearnGPR(KERNELS[name](), optimizer=None, normalize_y=True).fit(X, y)
    theta = ref.kernel_.theta + 0.2 * np.random.default_rng(2).standard_normal(len(ref.kernel_.theta))
    value, grad = ours.log_marginal_likelihood(theta, eval_gradient=True)
    ref_value, ref_grad = ref.log_marginal_likelihood(theta, eval_gradient=True)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert grad.shape == ref_grad.shape == theta.shape
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-11 * np.max(np.abs(ref_grad)))


@pytest.mark.parametrize("name", ["rbf-ard", "matern52-ard", "resnet-relu-ard", "resnet-erf-ard",
                                  "mlp-ard", "resnet-times-rbf"])
def test_vjp_is_the_contraction_of_the_stacked_gradient(name):
    """Any M, not only symmetric ones: the contraction over the first two axes of K_gradient."""
    X, _ = _data(30)
    kernel = KERNELS[name]()
    K_ref, K_gradient = kernel(X, eval_gradient=True)
    K, vjp = gram_and_vjp(kernel, X)
    np.testing.assert_allclose(K, K_ref, rtol=1e-14, atol=0)
    M = np.random.default_rng(3).standard_normal(K.shape)
    expect = np.einsum("ab,abj->j", M, K_gradient)
    np.testing.assert_allclose(vjp(M), expect, rtol=0, atol=1e-12 * np.max(np.abs(expect)))


def test_fit_reaches_sklearns_optimum():
    """The same L-BFGS-B path: the fitted hyperparameters and likelihood agree with sklearn's."""
    X, Y = _data(80)
    kernel = ConstantKernel() * ResNetKernel(bias_variance=0.1, weight_variance=np.ones(4)) \
        + WhiteKernel(0.1)
    ours = GaussianProcessRegressor(kernel, normalize_y=True).fit(X, Y[:, 0])
    ref = SklearnGPR(kernel, normalize_y=True).fit(X, Y[:, 0])
    assert ours.log_marginal_likelihood_value_ == pytest.approx(
        ref.log_marginal_likelihood_value_, rel=1e-8)
    np.testing.assert_allclose(ours.kernel_.theta, ref.kernel_.theta, atol=1e-4)
    np.testing.assert_allclose(ours.predict(X[:5]), ref.predict(X[:5]), rtol=1e-6)


def test_a_matrix_that_is_not_positive_definite_gives_minus_infinity():
    X = np.repeat(_data(10)[0], 2, axis=0)  # duplicated rows, no noise: K is singular
    gp = GaussianProcessRegressor(RBF(1.0), alpha=0.0, optimizer=None).fit(
        X[:1], np.zeros(1))
    gp.X_train_, gp.y_train_ = X, np.arange(len(X), dtype=float)
    value, grad = gp.log_marginal_likelihood(np.array([0.0]), eval_gradient=True)
    assert value == -np.inf and np.array_equal(grad, np.zeros(1))
