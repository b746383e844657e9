"""resgp.sklearn_kernel.ResNetKernel: exact gradients, scikit-learn's kernel protocol, and the
kernel at work in scikit-learn's estimators (GP regression and classification, SVC, KernelRidge)."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    Exponentiation,
    Hyperparameter,
    Sum,
    WhiteKernel,
)
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

import resgp
from resgp.core import relu_flow
from resgp.core.x64 import enable_x64
from resgp.sklearn_kernel import MLPKernel, ResNetKernel


def heavy(params):
    """A case that runs in the main environment only (pyproject.toml, marker "heavy")."""
    return pytest.param(params, marks=pytest.mark.heavy)

FD_RTOL = 1e-6  # |analytic - finite difference| / max|analytic|, per hyperparameter
FD_STEP = 1e-3  # in log space, 5-point central stencil (error O(h^4))


def relu_limit_with_gradients(X, *, branch_variance, bias_variance):
    """(K, dK/dT, dK/d bias) through the traceable ReLU limit kernel's custom JVP
    (relu_flow.kernel, three-row table lookups), independent of the engine's tiles."""
    import jax
    import jax.numpy as jnp

    with enable_x64():
        A = jnp.asarray(X) / np.sqrt(X.shape[1])
        q, n2 = A @ A.T, jnp.sum(A * A, axis=1)

        def k(T, b):
            n = jnp.sqrt(n2 + b)
            return relu_flow.kernel(q + b, n[:, None], n[None, :], T)

        args = (jnp.float64(branch_variance), jnp.float64(bias_variance))
        K, dT = jax.jvp(k, args, (1.0, 0.0))
        _, db = jax.jvp(k, args, (0.0, 1.0))
        return np.asarray(K), np.asarray(dT), np.asarray(db)


@pytest.fixture(scope="module")
def X():
    """Awkward rows: exact and near duplicates, a zero row, antipodal and parallel pairs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    X[1] = X[0] + 1e-8
    X[2] = X[0]
    X[3] = 0.0
    X[4] = -X[5]
    X[6] = 3.0 * X[7]
    X[8] = X[9] * (1 + 1e-12)
    X.flags.writeable = False
    return X


@pytest.fixture(scope="module")
def Y():
    return np.random.default_rng(1).normal(size=(7, 3))


def stencil(f, h=FD_STEP):
    return (8.0 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12.0 * h)


def fd_resnet(X, branch_variance, bias_variance, depth):
    """Finite differences of K in (log bias_variance, log branch_variance), sklearn's order.
    Evaluated with fixed bounds, so that points at a bound may be stepped across it."""

    def K(T, b):
        return ResNetKernel(T, b, depth=depth, branch_variance_bounds="fixed",
                            bias_variance_bounds="fixed")(X)

    d_bias = stencil(lambda s: K(branch_variance, bias_variance * np.exp(s)))
    d_branch = stencil(lambda s: K(branch_variance * np.exp(s), bias_variance))
    return np.stack([d_bias, d_branch], axis=-1)


def fd_theta(kernel, X):
    """Finite differences of any kernel in its theta (sklearn's parameterisation)."""
    theta = kernel.theta

    def column(i):
        def K(s):
            t = theta.copy()
            t[i] += s
            return kernel.clone_with_theta(t)(X)

        return stencil(K)

    return np.stack([column(i) for i in range(len(theta))], axis=-1)


def assert_gradient_close(G, F, rtol=FD_RTOL):
    assert G.shape == F.shape
    assert np.isfinite(G).all()
    for j in range(G.shape[-1]):
        scale = np.abs(G[..., j]).max()
        assert scale > 0
        err = np.abs(G[..., j] - F[..., j]).max() / scale
        assert err < rtol, f"hyperparameter {j}: relative error {err:.2e}"


# ----------------------------------------------------------------------------- gradients

BRANCH = [1e-2, 1.5e-2, 0.3, 1.0, 3.0, 10.0]  # the default bounds are (1e-2, 10)
BIAS = [1e-5, 1e-3, 0.1, 1.0, 30.0, 100.0]  # and (1e-5, 100)


@pytest.mark.parametrize("branch_variance,bias_variance", list(zip(BRANCH, BIAS))
                         + list(zip(BRANCH, BIAS[::-1])))
def test_gradient_infinite_depth_vs_finite_differences(X, branch_variance, bias_variance):
    kernel = ResNetKernel(branch_variance, bias_variance)
    K, G = kernel(X, eval_gradient=True)
    assert K.shape == (20, 20) and G.shape == (20, 20, 2)
    assert_gradient_close(G, fd_resnet(X, branch_variance, bias_variance, None))


@pytest.mark.parametrize("branch_variance,bias_variance",
                         [(1e-2, 1e-5), (0.3, 100.0), (1.0, 1.0), (10.0, 1e-3), (10.0, 100.0)])
def test_gradient_depth5_vs_finite_differences(X, branch_variance, bias_variance):
    kernel = ResNetKernel(branch_variance, bias_variance, depth=5)
    K, G = kernel(X, eval_gradient=True)
    assert_gradient_close(G, fd_resnet(X, branch_variance, bias_variance, 5))


@pytest.mark.parametrize("depth", [None, 5])
def test_gradient_without_bias(X, depth):
    """bias_variance=0 with fixed bounds: the bias-free network, one hyperparameter."""
    kernel = ResNetKernel(0.7, 0.0, depth=depth, bias_variance_bounds="fixed")
    K, G = kernel(X, eval_gradient=True)
    assert G.shape == (20, 20, 1)
    assert len(kernel.theta) == 1
    np.testing.assert_allclose(K, resgp.resnet_nngp(X, depth=depth, branch_variance=0.7),
                               rtol=1e-12, atol=1e-14)
    F = stencil(lambda s: ResNetKernel(0.7 * np.exp(s), 0.0, depth=depth,
                                       bias_variance_bounds="fixed")(X))
    assert_gradient_close(G, F[..., None])


@pytest.mark.parametrize("depth", [None, 1, 5])
def test_values_match_the_library(X, Y, depth):
    kw = dict(depth=depth, branch_variance=1.7, bias_variance=0.3)
    kernel = ResNetKernel(1.7, 0.3, depth=depth)
    K, G = kernel(X, eval_gradient=True)
    ref = resgp.resnet_nngp(X, **kw)
    np.testing.assert_allclose(K, ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(kernel(X), ref, rtol=1e-12)
    np.testing.assert_allclose(kernel(X, Y), resgp.resnet_nngp(X, Y, **kw), rtol=1e-12)
    np.testing.assert_allclose(kernel.diag(X), resgp.resnet_nngp_diag(X, **kw), rtol=1e-12)
    np.testing.assert_allclose(np.diag(K), kernel.diag(X), rtol=1e-12)
    if depth is None:  # the same formulas as the library's exact-gradient helper
        _, dT, dbias = relu_limit_with_gradients(X, branch_variance=1.7, bias_variance=0.3)
        np.testing.assert_allclose(G[..., 0], 0.3 * dbias, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(G[..., 1], 1.7 * dT, rtol=1e-11, atol=1e-13)


def test_gradient_larger_input_is_symmetric_and_matches_library():
    """Several hundred rows (other pair-vector sizes, many panels of the flow table)."""
    X = np.random.default_rng(3).normal(size=(300, 6))
    K, G = ResNetKernel(2.0, 0.5)(X, eval_gradient=True)
    _, dT, dbias = relu_limit_with_gradients(X, branch_variance=2.0, bias_variance=0.5)
    np.testing.assert_array_equal(G, G.transpose(1, 0, 2))
    np.testing.assert_allclose(G[..., 1], 2.0 * dT, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(G[..., 0], 0.5 * dbias, rtol=1e-11, atol=1e-13)
    one = ResNetKernel(bias_variance=1.0)(X[:1], eval_gradient=True)
    assert one[0].shape == (1, 1) and one[1].shape == (1, 1, 2)
    np.testing.assert_allclose(one[0], resgp.resnet_nngp(X[:1], bias_variance=1.0))


@pytest.mark.parametrize(
    "kernel",
    [
        ConstantKernel(2.0) * ResNetKernel(0.7, 0.3) + WhiteKernel(0.1),
        ResNetKernel(1.3, 0.05) ** 2,
        ResNetKernel(0.5, 2.0) + RBF(1.5),
        ConstantKernel(0.5) * ResNetKernel(2.0, 0.2, depth=5) + WhiteKernel(1e-3),
        ResNetKernel(0.7, 1.0, bias_variance_bounds="fixed") * RBF(2.0),
    ],
    ids=["const*resnet+white", "resnet**2", "resnet+rbf", "depth5-composite", "fixed-bias*rbf"],
)
def test_gradient_in_composite_kernels(X, kernel):
    K, G = kernel(X, eval_gradient=True)
    assert G.shape == (20, 20, kernel.n_dims)
    assert_gradient_close(G, fd_theta(kernel, X))


# ----------------------------------------------------------------------------- sklearn protocol


def test_hyperparameters_theta_bounds():
    kernel = ResNetKernel(branch_variance=2.0, bias_variance=0.5)
    names = [h.name for h in kernel.hyperparameters]
    assert names == ["bias_variance", "branch_variance", "weight_variance"]  # alphabetical
    assert kernel.hyperparameters[2].fixed  # a scalar weight variance only rescales (ReLU)
    assert kernel.hyperparameters[0] == Hyperparameter("bias_variance", "numeric", (1e-5, 1e2))
    assert kernel.hyperparameters[1] == Hyperparameter("branch_variance", "numeric", (1e-2, 1e1))
    np.testing.assert_array_equal(kernel.theta, np.log([0.5, 2.0]))
    np.testing.assert_allclose(kernel.bounds, np.log([[1e-5, 1e2], [1e-2, 1e1]]))
    assert kernel.n_dims == 2
    kernel.theta = np.log([3.0, 4.0])
    assert kernel.bias_variance == pytest.approx(3.0)
    assert kernel.branch_variance == pytest.approx(4.0)
    kernel.set_params(branch_variance=5.0)
    assert kernel.theta[1] == pytest.approx(np.log(5.0))
    other = kernel.clone_with_theta(np.log([0.2, 0.3]))
    assert other.bias_variance == pytest.approx(0.2) and kernel.bias_variance == pytest.approx(3.0)
    with pytest.raises(ValueError, match="theta has not the correct number"):
        kernel.theta = np.zeros(3)
    assert not kernel.is_stationary()
    assert kernel.requires_vector_input


def test_fixed_hyperparameter_drops_out(X):
    """As sklearn's test_kernel_theta: fixing one removes it from theta and the gradient."""
    for depth in (None, 5):
        kernel = ResNetKernel(0.8, 0.4, depth=depth)
        theta = kernel.theta
        _, G = kernel(X, eval_gradient=True)
        for i, h in enumerate(h for h in kernel.hyperparameters if not h.fixed):
            params = kernel.get_params()
            params[h.name + "_bounds"] = "fixed"
            fixed = ResNetKernel(**params)
            _, G_fixed = fixed(X, eval_gradient=True)
            assert len(fixed.theta) == 1 and G_fixed.shape == (20, 20, 1)
            keep = 1 - i
            assert fixed.theta[0] == theta[keep]
            np.testing.assert_allclose(G_fixed[..., 0], G[..., keep], rtol=1e-13, atol=1e-15)
            assert [p.name for p in fixed.hyperparameters if not p.fixed] == [
                kernel.hyperparameters[keep].name]
    both = ResNetKernel(branch_variance_bounds="fixed", bias_variance_bounds="fixed")
    K, G = both(X, eval_gradient=True)
    assert G.shape == (20, 20, 0) and both.theta.shape == (0,) and both.bounds.shape == (0,)


def test_clone_pickle_repr_equality_params(X):
    kernel = ResNetKernel(branch_variance=2.5, bias_variance=0.01, depth=3,
                          branch_variance_bounds=(0.1, 5.0))
    cloned = clone(kernel)
    assert cloned == kernel and cloned is not kernel
    assert cloned.get_params() == kernel.get_params()
    for a, b in zip(kernel.hyperparameters, cloned.hyperparameters):
        assert a == b
    restored = pickle.loads(pickle.dumps(kernel))
    assert restored == kernel
    np.testing.assert_array_equal(restored(X), kernel(X))
    assert repr(kernel) == "ResNetKernel(branch_variance=2.5, bias_variance=0.01, depth=3)"
    assert repr(ResNetKernel()) == "ResNetKernel(branch_variance=1, bias_variance=0)"
    assert "ResNetKernel" in repr(ConstantKernel() * kernel)
    assert kernel != ResNetKernel(branch_variance=2.5, bias_variance=0.01, depth=4,
                                  branch_variance_bounds=(0.1, 5.0))
    assert kernel != RBF()
    assert set(kernel.get_params()) == {"branch_variance", "bias_variance", "activation", "depth", "ntk",
                                        "branch_variance_bounds", "bias_variance_bounds",
                                        "weight_variance", "weight_variance_bounds"}
    kernel.set_params(depth=None, bias_variance=0.2)
    assert kernel.depth is None and kernel.bias_variance == 0.2
    with pytest.raises(ValueError, match="Invalid parameter"):
        kernel.set_params(weight=2.0)
    # nested, as inside a GP's kernel
    composite = ConstantKernel() * ResNetKernel()
    composite.set_params(k2__branch_variance=3.0)
    assert composite.k2.branch_variance == 3.0
    assert clone(composite) == composite


def test_auto_cross_diag_pairwise(X, Y):
    kernel = ResNetKernel(1.2, 0.3)
    np.testing.assert_allclose(kernel(X), kernel(X, X), rtol=1e-12)
    np.testing.assert_allclose(kernel.diag(X), np.diag(kernel(X)), rtol=1e-12)
    np.testing.assert_allclose(pairwise_kernels(X, Y, metric=kernel), kernel(X, Y), rtol=1e-12)
    np.testing.assert_allclose(pairwise_kernels(X, metric=kernel), kernel(X), rtol=1e-12)
    assert isinstance(kernel(X.tolist()), np.ndarray)  # nested lists work too
    # inputs are not modified, results are writable float64 arrays
    K, G = kernel(X, eval_gradient=True)
    assert K.dtype == G.dtype == np.float64 and K.flags.writeable


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "params,error,match",
    [
        (dict(branch_variance=-1.0), ValueError, "branch_variance must be > 0"),
        (dict(branch_variance=0.0), ValueError, "branch_variance must be > 0"),
        (dict(branch_variance=np.nan), ValueError, "branch_variance must be finite"),
        (dict(branch_variance="big"), TypeError, "branch_variance must be a real number"),
        (dict(bias_variance=-0.5), ValueError, "bias_variance must be >= 0"),
        (dict(bias_variance=0.0, bias_variance_bounds=(1e-5, 1.0)), ValueError, "bias_variance=0 requires bias_variance_bounds='fixed'"),
        (dict(branch_variance=50.0), ValueError, r"branch_variance=50.0 is outside branch_variance_bounds"),
        (dict(bias_variance=1e-7), ValueError, "bias_variance=1e-07 is outside bias_variance_bounds"),
        (dict(branch_variance_bounds=(1.0, 0.1)), ValueError, "branch_variance_bounds must satisfy"),
        (dict(bias_variance_bounds=(0.0, 1.0)), ValueError, "bias_variance_bounds must satisfy"),
        (dict(bias_variance_bounds=(1e-5, np.inf)), ValueError, "bias_variance_bounds must satisfy"),
        (dict(branch_variance_bounds="free"), ValueError, "branch_variance_bounds must be 'fixed' or a pair"),
        (dict(branch_variance_bounds=(1, 2, 3)), ValueError, "branch_variance_bounds must be 'fixed' or a pair"),
        (dict(depth=0), ValueError, "depth must be >= 1"),
        (dict(depth=2.5), TypeError, "depth must be an integer"),
        (dict(activation="swish"), ValueError, "unknown activation"),
    ],
)
def test_bad_hyperparameters(X, params, error, match):
    kernel = ResNetKernel(**params)
    for evaluate in (lambda: kernel(X), lambda: kernel(X, eval_gradient=True), lambda: kernel.diag(X)):
        with pytest.raises(error, match=match):
            evaluate()


def test_fixed_bounds_skip_the_range_check(X):
    """Out-of-range values are fine with fixed bounds (nothing is optimised)."""
    kernel = ResNetKernel(50.0, 1e-7, branch_variance_bounds="fixed", bias_variance_bounds="fixed")
    np.testing.assert_allclose(kernel(X), resgp.resnet_nngp(X, branch_variance=50.0,
                                                             bias_variance=1e-7), rtol=1e-12)


def test_zero_bias_with_free_bounds_is_refused_early(X):
    kernel = ResNetKernel(bias_variance=0.0, bias_variance_bounds=(1e-5, 1.0))
    with pytest.raises(ValueError, match="log"):
        kernel.theta
    assert "bias_variance=0" in repr(kernel)  # repr still works
    with pytest.raises(ValueError, match="bias_variance_bounds='fixed'"):
        GaussianProcessRegressor(kernel).fit(X, np.arange(20.0))


def test_default_bias_is_zero_and_fixed_until_positive(X):
    """The default is the bias-free network of Hayou & Yang with one hyperparameter, T; a
    positive bias variance makes it a second one, with bounds (1e-5, 100) unless given."""
    kernel = ResNetKernel()
    assert [h.name for h in kernel.hyperparameters if not h.fixed] == ["branch_variance"]
    K, G = kernel(X, eval_gradient=True)
    np.testing.assert_allclose(K, resgp.resnet_nngp(X), rtol=1e-13)
    assert G.shape == (20, 20, 1)
    assert_gradient_close(G, fd_resnet(X, 1.0, 0.0, None)[..., 1:])
    tuned = ResNetKernel(bias_variance=0.1)
    assert tuned.hyperparameter_bias_variance.bounds.tolist() == [[1e-5, 1e2]]
    assert tuned(X, eval_gradient=True)[1].shape == (20, 20, 2)
    assert ResNetKernel(bias_variance=0.1, bias_variance_bounds="fixed").n_dims == 1


def test_bad_inputs(X, Y):
    kernel = ResNetKernel()
    with pytest.raises(ValueError, match="Gradient can only be evaluated when Y is None"):
        kernel(X, Y, eval_gradient=True)
    with pytest.raises(ValueError, match="same number of features"):
        kernel(X, Y[:, :2])
    bad = np.array(X)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        kernel(bad, eval_gradient=True)
    with pytest.raises(ValueError, match="2-D"):
        kernel(np.ones(3))
    mine = resgp.Activation("mine", resgp.ACTIVATIONS["relu"].dual, True)  # no derivative dual
    with pytest.raises(ValueError, match="no derivative dual: no NTK"):
        ResNetKernel(activation=mine, ntk=True)(X)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module", autouse=False)
def one_blas_thread():
    """Small GP problems on a small shared machine: threaded BLAS only adds contention."""
    with threadpool_limits(1, user_api="blas"):
        yield


def split(X, y, **kw):
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0, **kw)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def r2(y, pred):
    return 1.0 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a hyperparameter at its bound
        return model.fit(X, y)


def test_gp_regression_diabetes(one_blas_thread):
    Xtr, Xte, ytr, yte = split(*load_diabetes(return_X_y=True))
    scores = {}
    for name, base in [("resnet", ResNetKernel()), ("rbf", RBF())]:
        gp = GaussianProcessRegressor(ConstantKernel() * base + WhiteKernel(), normalize_y=True,
                                      n_restarts_optimizer=2, random_state=0)
        fit_quietly(gp, Xtr, ytr)
        scores[name] = r2(yte, gp.predict(Xte))
        if name == "resnet":
            assert not np.allclose(gp.kernel_.theta, gp.kernel.theta)  # it was optimised
            mean, std = gp.predict(Xte, return_std=True)
            assert np.isfinite(std).all() and (std > 0).all()
    # a constant (training mean) predictor scores r2 <= 0 on held-out data
    assert r2(yte, np.full_like(yte, ytr.mean(), dtype=float)) < 0.01
    assert scores["resnet"] > 0.3
    assert scores["resnet"] > scores["rbf"] - 0.05, scores


def test_gp_classification_breast_cancer(one_blas_thread):
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = split(X, y, stratify=y)
    acc = {}
    for name, base in [("resnet", ResNetKernel()), ("rbf", RBF())]:
        gpc = fit_quietly(GaussianProcessClassifier(ConstantKernel() * base, random_state=0), Xtr, ytr)
        acc[name] = gpc.score(Xte, yte)
        if name == "resnet":
            assert not np.allclose(gpc.kernel_.theta, gpc.kernel.theta)  # the optimiser moved
            proba = gpc.predict_proba(Xte)
            assert np.allclose(proba.sum(axis=1), 1.0)
    assert acc["resnet"] > 0.93
    assert acc["resnet"] > acc["rbf"] - 0.03, acc


def test_gp_classification_digits_multiclass(one_blas_thread):
    # five classes, 300 training rows: one-vs-rest Laplace fits are slow; all ten classes on
    # 400 rows give the same picture (0.955 against RBF's 0.950) in about a minute
    X, y = load_digits(n_class=5, return_X_y=True)
    Xtr, Xte, ytr, yte = split(X, y, train_size=300, test_size=300, stratify=y)
    acc = {}
    for name, base in [("resnet", ResNetKernel()), ("rbf", RBF())]:
        gpc = fit_quietly(GaussianProcessClassifier(ConstantKernel() * base, random_state=0), Xtr, ytr)
        acc[name] = gpc.score(Xte, yte)
    assert len(gpc.classes_) == 5
    assert acc["resnet"] > 0.95
    assert acc["resnet"] > acc["rbf"] - 0.03, acc


def test_svc_and_kernel_ridge(one_blas_thread):
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = split(X, y, stratify=y)
    kernel = ResNetKernel()
    svc = SVC(C=1.0, kernel=kernel).fit(Xtr, ytr)  # SVC calls kernel(X, Y) on whole matrices
    pre = SVC(C=1.0, kernel="precomputed").fit(kernel(Xtr), ytr)
    np.testing.assert_array_equal(svc.predict(Xte), pre.predict(kernel(Xte, Xtr)))
    assert svc.score(Xte, yte) > 0.93
    assert svc.score(Xte, yte) > SVC(C=1.0).fit(Xtr, ytr).score(Xte, yte) - 0.03

    Xtr, Xte, ytr, yte = split(*load_diabetes(return_X_y=True))
    center = ytr.mean()
    krr = KernelRidge(alpha=3.0, kernel=kernel).fit(Xtr, ytr - center)  # sklearn's GP-kernel path
    pre = KernelRidge(alpha=3.0, kernel="precomputed").fit(kernel(Xtr), ytr - center)
    np.testing.assert_allclose(krr.predict(Xte), pre.predict(kernel(Xte, Xtr)), rtol=1e-8)
    assert r2(yte, krr.predict(Xte) + center) > 0.3


def test_kernel_types_in_composites(X):
    assert isinstance(ResNetKernel() ** 2, Exponentiation)
    assert isinstance(ResNetKernel() + RBF(), Sum)
    assert (ResNetKernel() + RBF()).requires_vector_input
    kernel = ConstantKernel() * ResNetKernel(bias_variance=1.0) * ResNetKernel(2.0, 0.5)
    assert kernel.n_dims == 5


# ----------------------------------------------------------------------------- MLPKernel


@pytest.mark.parametrize("depth,bias_variance", [(1, 1.1e-5), (3, 0.2), (3, 90.0), (8, 1.0)])
def test_mlp_kernel_values_and_gradient(X, Y, depth, bias_variance):
    kernel = MLPKernel(depth=depth, bias_variance=bias_variance)
    K, G = kernel(X, eval_gradient=True)
    expected = resgp.mlp_nngp(X, depth=depth, weight_variance=2.0, bias_variance=bias_variance)
    np.testing.assert_allclose(K, expected, rtol=1e-13, atol=0)
    np.testing.assert_allclose(kernel(X, Y), resgp.mlp_nngp(
        X, Y, depth=depth, weight_variance=2.0, bias_variance=bias_variance), rtol=1e-13)
    np.testing.assert_allclose(kernel.diag(X), np.diag(expected), rtol=1e-13)
    assert G.shape == (20, 20, 1)
    assert_gradient_close(G, fd_theta(kernel, X))
    composite = ConstantKernel(0.5) * kernel + WhiteKernel(0.1)
    assert_gradient_close(composite(X, eval_gradient=True)[1], fd_theta(composite, X))


def test_mlp_kernel_protocol(X):
    kernel = MLPKernel(depth=4, bias_variance=0.3)
    assert [h.name for h in kernel.hyperparameters] == ["bias_variance", "weight_variance"]
    assert kernel.hyperparameter_weight_variance.fixed  # a scalar only rescales (ReLU)
    np.testing.assert_array_equal(kernel.theta, np.log([0.3]))
    assert repr(kernel) == "MLPKernel(depth=4, bias_variance=0.3)"
    restored = pickle.loads(pickle.dumps(clone(kernel)))
    assert restored == kernel
    np.testing.assert_array_equal(restored(X), kernel(X))
    assert set(kernel.get_params()) == {"depth", "bias_variance", "activation", "ntk",
                                        "weight_variance", "bias_variance_bounds",
                                        "weight_variance_bounds"}
    fixed = MLPKernel(depth=2)  # bias-free by default: no hyperparameter
    assert fixed.n_dims == 0
    K, G = fixed(X, eval_gradient=True)
    assert G.shape == (20, 20, 0)
    np.testing.assert_allclose(K, resgp.mlp_nngp(X, depth=2), rtol=1e-13)
    with pytest.raises(ValueError, match="bias_variance=0 requires"):
        MLPKernel(bias_variance=0.0, bias_variance_bounds=(1e-3, 1.0))(X)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        MLPKernel(depth=0)(X)
    with pytest.raises(TypeError, match="depth"):
        MLPKernel(depth=None)(X)
    with pytest.raises(ValueError, match="weight_variance must be > 0"):
        MLPKernel(weight_variance=-1.0)(X)


# ----------------------------------------------------------------------------- other activations, NTK


@pytest.mark.parametrize(
    "params",
    [
        dict(activation="erf"),
        heavy(dict(activation="erf", bias_variance=0.3)),
        heavy(dict(activation="gelu", branch_variance=2.0, bias_variance=1.0)),
        heavy(dict(activation="tanh", bias_variance=0.1)),
        dict(ntk=True),
        dict(ntk=True, bias_variance=0.5, branch_variance=0.3),
        heavy(dict(ntk=True, activation="erf", bias_variance=2.0)),
        dict(ntk=True, depth=4, bias_variance=0.5),
        dict(ntk=True, depth=3, activation="leaky_relu", bias_variance=0.2),
        dict(depth=3, activation="sin", bias_variance=0.7),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_activations_and_ntk_values_and_gradients(X, Y, params):
    """Every activation and the NTK, finite and infinite depth: values equal the library's
    functions, diag the matrix's diagonal, and gradients (flow velocity, variational equation,
    forward mode) agree with finite differences."""
    kernel = ResNetKernel(**params)
    function = resgp.resnet_ntk if params.get("ntk") else resgp.resnet_nngp
    if params.get("ntk") and params.get("activation", "relu") in ("relu", "leaky_relu"):
        # the ReLU family's NTK is not differentiable at parallel inputs: its derivative dual
        # (pi - theta)/2 pi has slope -inf at theta = 0, so rounding-level angles there (also
        # between exact duplicates in different rows) move it by ~1e-8; the zero row and
        # antipodal pairs stay
        X = np.asarray(X)[[0, 3, 4, 5] + list(range(10, 20))]
    kwargs = dict(depth=params.get("depth"), activation=params.get("activation", "relu"),
                  branch_variance=params.get("branch_variance", 1.0),
                  bias_variance=params.get("bias_variance", 0.0))
    K, G = kernel(X, eval_gradient=True)
    np.testing.assert_allclose(K, function(X, **kwargs), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(kernel(X, Y), function(X, Y, **kwargs), rtol=1e-12)
    np.testing.assert_allclose(kernel.diag(X), np.diag(K), rtol=1e-9)
    assert G.shape == (len(X), len(X), kernel.n_dims)
    assert_gradient_close(G, fd_theta(kernel, X))


def test_ntk_option_protocol(X):
    kernel = ResNetKernel(ntk=True, depth=2)
    assert repr(kernel) == "ResNetKernel(branch_variance=1, bias_variance=0, depth=2, ntk=True)"
    assert clone(kernel).ntk is True and pickle.loads(pickle.dumps(kernel)) == kernel
    assert kernel != ResNetKernel(depth=2)
    with pytest.raises(TypeError, match="ntk must be True or False"):
        ResNetKernel(ntk="yes")(X)
    gp = GaussianProcessRegressor(ConstantKernel() * ResNetKernel(ntk=True) + WhiteKernel(),
                                  normalize_y=True)
    y = np.sin(X[:, 0]) + X[:, 1]
    fit_quietly(gp, X, y)
    assert gp.log_marginal_likelihood_value_ > gp.log_marginal_likelihood(gp.kernel.theta)


# ----------------------------------------------------------------------------- sklearn's contract


CONFIGURATIONS = [
    dict(cls=ResNetKernel, activation=a, depth=L, ntk=ntk)
    for a in ("relu", "erf", "gelu", "tanh") for L in (None, 3) for ntk in (False, True)
] + [dict(cls=MLPKernel, activation=a, ntk=ntk) for a in ("relu", "erf") for ntk in (False, True)]
# smooth activations at infinite depth build new flow tables at every finite-difference step;
# the NTK ones (and tanh's NNGP, at Mehler order 1024) are the heaviest cases of the file
# (tanh at every depth: its mixture duals are the costliest programs to compile; gelu and erf
# at infinite depth: their tables at every finite-difference step)
CONFIGURATIONS = [heavy(c) if c["cls"] is ResNetKernel and c["activation"] != "relu"
                  and (c["activation"] == "tanh" or c["depth"] is None)
                  else c for c in CONFIGURATIONS]


def _configured(cfg, **params):
    cfg = dict(cfg)
    cls = cfg.pop("cls")
    if cls is ResNetKernel:
        params.setdefault("branch_variance", 0.9)
    return cls(bias_variance=0.2, **cfg, **params)


@pytest.mark.parametrize("cfg", CONFIGURATIONS, ids=lambda c: "-".join(
    str(v) for v in (c["cls"].__name__, c["activation"], c.get("depth"), c["ntk"])))
def test_sklearn_kernel_contract(cfg):
    """The checks of sklearn/gaussian_process/tests/test_kernels.py, in every configuration."""
    from sklearn.metrics.pairwise import pairwise_kernels

    rng = np.random.default_rng(7)
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(4, 3))
    kernel = _configured(cfg)
    # theta is the log of every free hyperparameter, in the listed order (a scalar weight
    # variance is listed, fixed, as sklearn lists a fixed RBF length scale)
    names = [h.name for h in kernel.hyperparameters if not h.fixed]
    assert [h.name for h in kernel.hyperparameters if h.fixed] == ["weight_variance"]
    np.testing.assert_array_equal(kernel.theta, np.log([getattr(kernel, n) for n in names]))
    K, G = kernel(X, eval_gradient=True)
    # fixing one hyperparameter removes exactly its column, bit for bit
    for i, name in enumerate(names):
        fixed = clone(kernel).set_params(**{name + "_bounds": "fixed"})
        _, G_fixed = fixed(X, eval_gradient=True)
        np.testing.assert_array_equal(np.delete(G, i, axis=2), G_fixed)
    assert_gradient_close(G, fd_theta(kernel, X))
    # the gradient call's K (a table that also holds the derivatives) agrees to its tolerance
    np.testing.assert_allclose(kernel(X), K, rtol=1e-9, atol=1e-13)
    # solver paths: each call meets the tolerance (1e-10) on its own steps
    np.testing.assert_allclose(kernel(X), kernel(X, X), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(kernel.diag(X), np.diag(K), rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(pairwise_kernels(X, Y, metric=kernel), kernel(X, Y), rtol=1e-12)
    np.testing.assert_allclose(pairwise_kernels(X, metric=kernel), K, rtol=1e-9, atol=1e-13)
    other = clone(kernel).set_params(bias_variance=0.5)
    assert clone(other).get_params() == other.get_params() and other != kernel
    assert repr(kernel).startswith(type(kernel).__name__ + "(")


def test_default_kernels_have_no_log_zero():
    """The bias-free default lists only its free hyperparameter in theta."""
    kernel = ResNetKernel()
    assert np.isfinite(kernel.theta).all() and kernel.theta.shape == (1,)
    assert np.isfinite(kernel.bounds).all()
    assert MLPKernel().theta.shape == (0,)
