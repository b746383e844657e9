"""One vocabulary: every public entry point, called with no arguments, computes the same kernel."""

import numpy as np

import resgp


def test_every_entry_point_has_the_same_default_kernel():
    X = np.random.default_rng(0).normal(size=(12, 4))
    K = resgp.resnet_nngp(X)
    np.testing.assert_array_equal(resgp.ResNetKernel()(X), K)
    np.testing.assert_allclose(resgp.resnet_nngp_diag(X), np.diag(K), rtol=1e-13)
    np.testing.assert_allclose(resgp.ResNetKernel().diag(X), np.diag(K), rtol=1e-13)
    # the same network: bias-free input layer of weight variance 1, T = 1, ReLU, infinite depth
    np.testing.assert_array_equal(
        resgp.resnet_nngp(X, depth=None, branch_variance=1.0, weight_variance=1.0,
                          bias_variance=0.0, activation="relu"), K)
    # the NTK is asked for one way: ntk=True or the *_ntk functions
    np.testing.assert_array_equal(resgp.ResNetKernel(ntk=True)(X), resgp.resnet_ntk(X))
    np.testing.assert_array_equal(resgp.MLPKernel()(X), resgp.mlp_nngp(X, depth=3))
    np.testing.assert_array_equal(resgp.MLPKernel(ntk=True)(X), resgp.mlp_ntk(X, depth=3))
    np.testing.assert_allclose(resgp.mlp_ntk_diag(X, depth=3), np.diag(resgp.mlp_ntk(X, depth=3)),
                               rtol=1e-13)


def test_top_level_names():
    from resgp.estimators import ResNetGPClassifier, ResNetGPRegressor
    from resgp.sklearn_kernel import MLPKernel

    assert resgp.MLPKernel is MLPKernel
    assert resgp.ResNetGPRegressor is ResNetGPRegressor
    assert resgp.ResNetGPClassifier is ResNetGPClassifier
