"""resgp.gpjax.ResNetKernel: GPJax 1.0 kernel values against resgp.resnet_nngp, exact gradients of
GPJax objectives, and the kernel at work in exact, classification and sparse variational GPs."""

import jax

# The user's choice, as GPJax recommends: the ResNet kernel needs 64-bit JAX.
jax.config.update("jax_enable_x64", True)

import subprocess
import sys

import equinox as eqx
import gpjax as gpx
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import optax as ox
import paramax
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import resgp
from resgp.gpjax import ResNetKernel, ResNetKernelComputation

RTOL = 1e-12
FD_RTOL = 1e-6
FD_STEP = 1e-3  # in the unconstrained (softplus) coordinate, 5-point central stencil


def _disable_x64():
    """Context manager turning 64-bit JAX off for the calling thread (jax 0.5 and newer)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(False)
    from jax.experimental import disable_x64

    return disable_x64()


def rel_err(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def X():
    """Awkward rows: near duplicates, a zero row, antipodal and parallel pairs, a large row."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 4))
    X[1] = X[0] + 1e-8
    X[2] = 0.0
    X[3] = -X[4]
    X[5] = 3.0 * X[6]
    X[7] *= 100.0
    return X


@pytest.fixture(scope="module")
def Y():
    return np.random.default_rng(1).normal(size=(9, 4)) * 2.0


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("bias_variance", [0.0, 0.7])
@pytest.mark.parametrize("branch_variance", [0.3, 1.0, 4.0])
def test_gram_and_cross_covariance_match_resnet_nngp(X, Y, bias_variance, branch_variance):
    variance = 1.7
    k = ResNetKernel(variance=variance, branch_variance=branch_variance, bias_variance=bias_variance)
    ref = dict(branch_variance=branch_variance, weight_variance=1.0, bias_variance=bias_variance)

    K = np.asarray(k.gram(jnp.asarray(X)).as_matrix())
    K_ref = variance * resgp.resnet_nngp(X, **ref)
    assert rel_err(K, K_ref) < RTOL
    np.testing.assert_array_equal(K, K.T)  # exactly symmetric

    C = np.asarray(k.cross_covariance(jnp.asarray(X), jnp.asarray(Y)))
    assert C.shape == (25, 9)
    assert rel_err(C, variance * resgp.resnet_nngp(X, Y, **ref)) < RTOL

    diag = np.asarray(lx.diagonal(k.diagonal(jnp.asarray(X))))
    assert rel_err(diag, variance * resgp.resnet_nngp_diag(X, **ref)) < RTOL


def test_single_points_and_vmap_engine_agree(X, Y):
    k = ResNetKernel(variance=0.9, branch_variance=1.3, bias_variance=0.4)
    K_ref = 0.9 * resgp.resnet_nngp(X, Y, branch_variance=1.3, bias_variance=0.4)
    assert abs(float(k(jnp.asarray(X[3]), jnp.asarray(Y[2]))) - K_ref[3, 2]) < RTOL * np.abs(K_ref).max()

    dense = ResNetKernel(
        variance=0.9,
        branch_variance=1.3,
        bias_variance=0.4,
        compute_engine=gpx.kernels.computations.DenseKernelComputation(),
    )
    assert rel_err(dense.cross_covariance(jnp.asarray(X), jnp.asarray(Y)), K_ref) < RTOL
    # GPJax's combination kernels go through __call__ as well
    both = k + gpx.kernels.RBF()
    expected = K_ref + np.asarray(gpx.kernels.RBF().cross_covariance(jnp.asarray(X), jnp.asarray(Y)))
    assert rel_err(both.cross_covariance(jnp.asarray(X), jnp.asarray(Y)), expected) < RTOL


def test_active_dims_and_float32_inputs(X):
    k = ResNetKernel(active_dims=[0, 2], branch_variance=0.5)
    K = k.gram(jnp.asarray(X, dtype=jnp.float32)).as_matrix()
    assert K.dtype == jnp.float64
    Xs = X[:, [0, 2]].astype(np.float32).astype(np.float64)
    # the same defaults as resgp.resnet_nngp (bias-free)
    assert rel_err(K, resgp.resnet_nngp(Xs, branch_variance=0.5)) < RTOL


def test_parameters_are_positive_reals_and_zero_bias_is_frozen():
    k = ResNetKernel(variance=2.0, branch_variance=0.5, bias_variance=0.25)
    for name, value in [("variance", 2.0), ("branch_variance", 0.5), ("bias_variance", 0.25)]:
        assert isinstance(getattr(k, name), gpx.parameters.PositiveReal)
        assert float(gpx.parameters.val(getattr(k, name))) == pytest.approx(value, rel=1e-14)
    assert isinstance(k.weight_variance, paramax.NonTrainable)  # frozen at the default 1
    assert float(gpx.parameters.val(k.weight_variance)) == 1.0
    assert ResNetKernel.name == "ResNet"
    assert isinstance(k.compute_engine, ResNetKernelComputation)

    no_bias = ResNetKernel(bias_variance=0.0)
    assert isinstance(no_bias.bias_variance, paramax.NonTrainable)
    grads = eqx.filter_grad(lambda k: jnp.sum(k.gram(jnp.eye(3)).as_matrix()))(no_bias)
    assert float(grads.bias_variance.tree) == 0.0
    assert np.isfinite(float(grads.branch_variance._unconstrained))

    frozen = ResNetKernel(branch_variance=paramax.non_trainable(jnp.asarray(2.0)))
    assert float(gpx.parameters.val(frozen.branch_variance)) == 2.0


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"branch_variance": 0.0}, ValueError),
        ({"branch_variance": -1.0}, ValueError),
        ({"variance": float("nan")}, ValueError),
        ({"bias_variance": -0.1}, ValueError),
        ({"variance": "1"}, TypeError),
        ({"branch_variance": True}, TypeError),
        ({"bias_variance": [1.0]}, TypeError),
    ],
)
def test_invalid_parameters(kwargs, error):
    with pytest.raises(error):
        ResNetKernel(**kwargs)


def test_needs_64_bit_jax():
    k = ResNetKernel()
    x = np.ones((3, 2))
    with _disable_x64():
        for evaluate in (
            lambda: k.gram(jnp.asarray(x)),
            lambda: k.cross_covariance(jnp.asarray(x), jnp.asarray(x)),
            lambda: k.diagonal(jnp.asarray(x)),
            lambda: k(jnp.asarray(x[0]), jnp.asarray(x[1])),
        ):
            with pytest.raises(RuntimeError, match="jax_enable_x64"):
                evaluate()
    assert np.isfinite(np.asarray(k.gram(jnp.asarray(x)).as_matrix())).all()


def test_import_resgp_does_not_import_gpjax():
    code = "import sys, resgp; assert 'gpjax' not in sys.modules, 'gpjax imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("activation", sorted(resgp.ACTIVATIONS))
@pytest.mark.parametrize("depth", [None, 5])
@pytest.mark.parametrize("ntk", [False, True])
def test_every_activation_depth_and_ntk_match_the_kernel_functions(X, Y, activation, depth, ntk):
    """Same kernel as resnet_nngp / resnet_ntk for every built-in activation and depth; a clear
    error for the NTK of an activation without a derivative dual (step, sign)."""
    # moderate scales: the pair ODE is integrated for each pair; ReQU's variance flow
    # q' = 3 q^2 / 2 must not blow up before T = 0.7 (q_0 < 2 / (3 T))
    small = 2.0 if activation == "requ" else 1.0
    Xs, Ys = X[8:20] / (2.0 * small), Y[:5] / small
    kw = dict(activation=activation, depth=depth, branch_variance=0.7, bias_variance=0.3)
    if ntk and resgp.activations.get_activation(activation).derivative_dual is None:
        with pytest.raises(ValueError, match="no derivative dual"):
            ResNetKernel(variance=1.0, ntk=True, **kw).gram(jnp.asarray(Xs))
        with pytest.raises(ValueError, match="no derivative dual"):
            resgp.resnet_ntk(Xs, **kw)
        return
    k = ResNetKernel(variance=1.0, ntk=ntk, **kw)
    f = resgp.resnet_ntk if ntk else resgp.resnet_nngp
    tol = 1e-12 if (depth is not None or activation == "relu" and not ntk) else 1e-10
    assert rel_err(k.gram(jnp.asarray(Xs)).as_matrix(), f(Xs, **kw)) < tol
    assert rel_err(k.cross_covariance(jnp.asarray(Xs), jnp.asarray(Ys)), f(Xs, Ys, **kw)) < tol
    diag = (resgp.resnet_ntk_diag if ntk else resgp.resnet_nngp_diag)(Xs, **kw)
    assert rel_err(lx.diagonal(k.diagonal(jnp.asarray(Xs))), diag) < tol


def test_defaults_are_those_of_resnet_nngp(X):
    K = ResNetKernel().gram(jnp.asarray(X)).as_matrix()
    assert rel_err(K, resgp.resnet_nngp(X)) < RTOL


# ----------------------------------------------------------------------------- gradients


def _diabetes(n_train, n_test=0, seed=0):
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=n_train, test_size=n_test or None, random_state=seed
    )
    scaler = StandardScaler().fit(X_train)
    mu, sd = y_train.mean(), y_train.std()
    train = gpx.Dataset(X=jnp.asarray(scaler.transform(X_train)), y=jnp.asarray((y_train - mu) / sd)[:, None])
    return train, jnp.asarray(scaler.transform(X_test)), (y_test - mu) / sd


def _regression_model(**kernel_kwargs):
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(), kernel=ResNetKernel(**kernel_kwargs))
    return prior * gpx.likelihoods.Gaussian(obs_stddev=0.6)


PARAMETERS = {
    "variance": lambda m: m.prior.kernel.variance._unconstrained,
    "branch_variance": lambda m: m.prior.kernel.branch_variance._unconstrained,
    "bias_variance": lambda m: m.prior.kernel.bias_variance._unconstrained,
    "noise": lambda m: m.likelihood.obs_stddev._unconstrained,
}


def _mll_gradients_and_finite_differences(model, data):
    """{parameter: (jax.grad of the conjugate MLL, its 5-point finite difference)}."""
    mll = jax.jit(gpx.objectives.conjugate_mll)
    grads = eqx.filter_jit(eqx.filter_grad(gpx.objectives.conjugate_mll))(model, data)
    out = {}
    for name, where in PARAMETERS.items():
        u = where(model)

        def at(step, where=where, u=u):
            return float(mll(eqx.tree_at(where, model, u + step), data))

        h = FD_STEP
        out[name] = (float(where(grads)),
                     (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h))
    return out


def test_conjugate_mll_gradient_matches_finite_differences():
    data, _, _ = _diabetes(60)
    model = _regression_model(variance=1.3, branch_variance=0.8, bias_variance=0.6)
    for name, (analytic, fd) in _mll_gradients_and_finite_differences(model, data).items():
        assert abs(analytic - fd) <= FD_RTOL * abs(analytic), (name, analytic, fd)
        assert abs(analytic) > 1e-3, name  # a real test: every gradient is far from zero here


@pytest.mark.parametrize("activation, depth, ntk", [("erf", None, False), ("gelu", 5, False),
                                                   ("relu", None, True), ("tanh", None, True)])
def test_mll_gradient_every_path_matches_finite_differences(activation, depth, ntk):
    """jax.grad of the marginal likelihood through every path of the kernel (pair flow with its
    custom JVP, finite depth, the ReLU NTK) against finite differences."""
    data, _, _ = _diabetes(20)
    model = _regression_model(variance=1.3, branch_variance=0.8, bias_variance=0.6,
                              activation=activation, depth=depth, ntk=ntk)
    for name, (analytic, fd) in _mll_gradients_and_finite_differences(model, data).items():
        assert abs(analytic - fd) <= FD_RTOL * max(abs(analytic), 1e-2), (name, analytic, fd)


def test_jax_grad_in_the_positive_parameters_matches_finite_differences():
    """jax.grad with respect to the constrained values themselves (the model built inside)."""
    data, _, _ = _diabetes(60)

    def mll(theta):
        variance, branch_variance, bias_variance, noise = theta
        kernel = ResNetKernel(variance=variance, branch_variance=branch_variance, bias_variance=bias_variance)
        prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Zero(), kernel=kernel)
        return gpx.objectives.conjugate_mll(prior * gpx.likelihoods.Gaussian(obs_stddev=noise), data)

    theta = jnp.array([1.3, 0.8, 0.6, 0.6])
    grad = np.asarray(jax.jit(jax.grad(mll))(theta))
    value = jax.jit(mll)
    for i, name in enumerate(["variance", "branch_variance", "bias_variance", "noise"]):
        h = FD_STEP * float(theta[i])
        e = jnp.zeros(4).at[i].set(h)
        fd = (-value(theta + 2 * e) + 8 * value(theta + e) - 8 * value(theta - e) + value(theta - 2 * e)) / (12 * h)
        assert abs(grad[i] - float(fd)) <= FD_RTOL * abs(grad[i]), (name, grad[i], float(fd))
        assert abs(grad[i]) > 1e-3, name


# ----------------------------------------------------------------------------- models


def test_exact_regression_fit_improves_objective_and_beats_the_mean():
    train, X_test, y_test = _diabetes(150, 100, seed=1)
    model = _regression_model(bias_variance=1.0)  # a trainable bias (the default is bias-free)
    nmll = lambda m, d: -gpx.objectives.conjugate_mll(m, d)  # noqa: E731
    fitted, history = gpx.fit(
        model=model, objective=nmll, train_data=train, optim=ox.adam(0.05), num_iters=80, verbose=False
    )
    history = np.asarray(history)
    assert np.isfinite(history).all()
    assert history[-1] < history[0] - 1.0
    assert float(nmll(fitted, train)) < float(nmll(model, train))

    kernel = fitted.prior.kernel
    for name in ("variance", "branch_variance", "bias_variance"):
        assert float(gpx.parameters.val(getattr(kernel, name))) > 0

    mean = np.asarray(fitted.predict(X_test, train, covariance="diagonal").mean).ravel()
    rmse = np.sqrt(np.mean((mean - y_test) ** 2))
    baseline = np.sqrt(np.mean(y_test**2))  # predicting the training mean (0 after scaling)
    assert rmse < 0.85 * baseline, (rmse, baseline)


def test_bernoulli_classification_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=200, test_size=200, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = jnp.asarray(scaler.transform(X_train)), jnp.asarray(scaler.transform(X_test))
    train = gpx.Dataset(X=X_train, y=jnp.asarray(y_train, dtype=jnp.float64)[:, None])

    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(),
                          kernel=ResNetKernel(bias_variance=1.0))
    model = prior * gpx.likelihoods.Bernoulli()
    q = gpx.variational_families.WhitenedVariationalGaussian(model=model, inducing_inputs=X_train[::5])
    negative_elbo = lambda q, d: -gpx.objectives.elbo(q, d)  # noqa: E731
    q_fit, history = gpx.fit(
        model=q, objective=negative_elbo, train_data=train, optim=ox.adam(0.05), num_iters=150, verbose=False
    )
    assert history[-1] < history[0]

    latent = q_fit.condition(train)(X_test, covariance="diagonal")
    probs = np.asarray(model.likelihood.link_function(latent.mean.ravel() / jnp.sqrt(1.0 + latent.variance)).probs)
    accuracy = np.mean((probs > 0.5) == y_test)
    assert accuracy > 0.9, accuracy


def test_sparse_variational_gp_with_minibatches():
    rng = np.random.default_rng(3)
    n = 1500
    X = rng.uniform(-2.0, 2.0, size=(n, 3))
    y = np.sin(2.0 * X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=n)
    data = gpx.Dataset(X=jnp.asarray(X), y=jnp.asarray(y)[:, None])

    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(),
                          kernel=ResNetKernel(bias_variance=1.0))
    model = prior * gpx.likelihoods.Gaussian(obs_stddev=0.5)
    q = gpx.variational_families.VariationalGaussian(model=model, inducing_inputs=jnp.asarray(X[:32]))
    q = jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype), q)  # strong types: one compile below
    negative_elbo = lambda q, d: -gpx.objectives.elbo(q, d)  # noqa: E731
    q_fit, history = gpx.fit(
        model=q,
        objective=negative_elbo,
        train_data=data,
        optim=ox.adam(0.02),
        num_iters=200,
        batch_size=128,
        key=jr.key(0),
        verbose=False,
    )
    assert np.isfinite(np.asarray(history)).all()

    @eqx.filter_jit
    def evaluate(q):  # the full-data ELBO and predictions on 500 training points
        mean = q.condition(data)(data.X[:500], covariance="diagonal").mean
        return gpx.objectives.elbo(q, data), mean.ravel()

    (before, _), (after, mean) = evaluate(q), evaluate(q_fit)
    assert float(after) > float(before) + 0.5 * abs(float(before)), (before, after)
    # the inducing inputs moved and the kernel hyperparameters trained
    assert not np.allclose(np.asarray(q_fit.inducing_inputs.value), X[:32])
    assert float(gpx.parameters.val(q_fit.model.prior.kernel.branch_variance)) != pytest.approx(1.0)
    rmse = np.sqrt(np.mean((np.asarray(mean) - y[:500]) ** 2))
    assert rmse < 0.5 * y.std(), rmse


# ----------------------------------------------------------------------------- ARD


def test_ard_weight_variances(X, Y):
    """A (d,) weight variance: the Gram equals resgp's ARD kernel, its gradient matches finite
    differences, gpx.fit trains it towards the one relevant feature."""
    w = np.array([0.5, 2.0, 1.3, 0.8])
    kernel = ResNetKernel(weight_variance=w, bias_variance=0.3, activation="erf")
    want = resgp.resnet_nngp(X, weight_variance=w, bias_variance=0.3, activation="erf")
    assert rel_err(kernel.gram(jnp.asarray(X)).as_matrix(), want) <= RTOL
    assert rel_err(kernel.cross_covariance(jnp.asarray(Y), jnp.asarray(X)),
                   resgp.resnet_nngp(Y, X, weight_variance=w, bias_variance=0.3,
                                     activation="erf")) <= RTOL

    def total(v):
        k = ResNetKernel(weight_variance=v, bias_variance=0.3, activation="erf")
        return jnp.sum(k.cross_covariance(jnp.asarray(Y), jnp.asarray(X)))

    grad = np.asarray(jax.grad(total)(jnp.asarray(w)))
    for i in range(4):
        e = np.zeros(4)
        e[i] = 1e-5
        fd = (float(total(jnp.asarray(w + e))) - float(total(jnp.asarray(w - e)))) / 2e-5
        assert abs(grad[i] - fd) <= 1e-6 * abs(fd), i
    with pytest.raises(ValueError, match="one variance per feature"):
        ResNetKernel(weight_variance=np.ones(3)).gram(jnp.asarray(X)).as_matrix()

    rng = np.random.default_rng(4)
    Z = rng.normal(size=(60, 3))
    data = gpx.Dataset(X=jnp.asarray(Z), y=jnp.asarray(np.sin(2.0 * Z[:, :1])))
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Zero(),
                          kernel=ResNetKernel(weight_variance=np.ones(3), bias_variance=0.1))
    model = prior * gpx.likelihoods.Gaussian(obs_stddev=0.3)
    nmll = lambda m, d: -gpx.objectives.conjugate_mll(m, d)  # noqa: E731
    fitted, _ = gpx.fit(model=model, objective=nmll, train_data=data, optim=ox.adam(0.1),
                        num_iters=60, verbose=False)
    learnt = np.asarray(gpx.parameters.val(fitted.prior.kernel.weight_variance))
    assert learnt.shape == (3,) and np.argmax(learnt) == 0
    assert float(nmll(fitted, data)) < float(nmll(model, data)) - 5.0
