"""Matrix-free inference (resgp.solvers): products, CG, SLQ, sharding, the CG regressor.

Every number is checked against an independent dense computation (the traceable kernel
matrix, a dense Cholesky / NumPy solve, JAX's autodiff of the dense log-likelihood).
"""

import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from resgp.core import network, traceable
from resgp.core.x64 import float64
from resgp.estimators import ResNetGPRegressor
from resgp.solvers import gp
from resgp.solvers import products as P

VALUES = dict(amplitude=1.3, noise_variance=0.05, branch_variance=0.7, bias_variance=0.2,
              weight_variance=1.0)
KERNEL = {k: VALUES[k] for k in P.KERNEL_HYPERPARAMETERS}


def _data(n, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sin(X @ np.ones(d)) + 0.1 * rng.standard_normal(n), rng


def _dense(net, X, X2=None, **kw):
    with float64():
        return np.asarray(traceable.kernel_matrix(
            net, jnp.asarray(X), None if X2 is None else jnp.asarray(X2), **(kw or KERNEL)))


NETS = [network.resnet(), network.resnet(depth=3), network.resnet(depth=2, ntk=True),
        network.resnet(depth=2, activation="erf")]


@pytest.mark.parametrize("net", NETS, ids=["relu-inf", "relu-3", "ntk-2", "erf-2"])
def test_products_equal_dense(net):
    X, _, rng = _data(300)
    V = rng.standard_normal((300, 3))
    h = P.hyperparameters(**VALUES)
    K = _dense(net, X)
    KV = np.asarray(P.kernel_product(net, h, X, V, tile=128))
    ref = 1.3 * K @ V + 0.05 * V
    assert np.abs(KV - ref).max() <= 1e-12 * np.abs(ref).max()
    v1 = np.asarray(P.kernel_product(net, h, X, V[:, 0], tile=128))
    assert v1.shape == (300,) and np.allclose(v1, KV[:, 0], rtol=0, atol=1e-12)
    Xs = rng.standard_normal((37, 4))
    cross = np.asarray(P.cross_product(net, h, Xs, X, V, tile=128))
    ref = 1.3 * _dense(net, Xs, X) @ V
    assert np.abs(cross - ref).max() <= 1e-12 * np.abs(ref).max()


def test_symmetric_product_is_exactly_symmetric():
    """K(X, X) V from the tiles on and above the diagonal: with V = I the operator equals its
    transpose bit for bit, agrees with every tile computed (tiled_product) to rounding, and the
    pair list covers each upper tile once (padded with weight-0 pairs for equal shares)."""
    net, (X, _, _) = network.resnet(depth=2, ntk=True), _data(300)
    h = P.hyperparameters(**VALUES)
    K = np.asarray(P.kernel_product(net, h, X, np.eye(300), tile=64))
    assert np.array_equal(K, K.T)
    with float64():
        full = np.asarray(P.tiled_product(P._kernel_tile(P.static_network(net), h),
                                          jnp.asarray(X), jnp.asarray(X), jnp.eye(300), 64))
    off = ~np.eye(300, dtype=bool)  # the diagonal is the exact k(x, x) in K only
    assert np.abs(1.3 * full + 0.05 * np.eye(300) - K)[off].max() <= 1e-13 * np.abs(K).max()
    i, j, w = P.tile_pairs(5, parts=4)
    assert len(i) == 16 and w.sum() == 15 and set(zip(i[w > 0], j[w > 0])) == {
        (a, b) for a in range(5) for b in range(a, 5)}


def test_products_differentiable():
    net, (X, _, rng) = network.resnet(), _data(200)
    U, W = rng.standard_normal((200, 2)), rng.standard_normal((200, 2))
    h = P.hyperparameters(**VALUES)
    g = P.bilinear_gradient(net, h, X, U, W, tile=64)
    with float64():
        def dense(hh):
            K = hh["amplitude"] * traceable.kernel_matrix(
                net, jnp.asarray(X), **{k: hh[k] for k in P.KERNEL_HYPERPARAMETERS})
            return jnp.vdot(U, K @ W + hh["noise_variance"] * W)
        ref = jax.grad(dense)(h)
        # reverse mode through the tiles (jax.checkpoint) agrees as well
        rev = jax.grad(lambda hh: jnp.vdot(U, P.kernel_product(net, hh, X, W, tile=64)))(h)
        ref, rev = ({k: np.asarray(v) for k, v in d.items()} for d in (ref, rev))
    for k in h:
        assert np.allclose(g[k], ref[k], rtol=1e-10, atol=1e-12), k
        assert np.allclose(rev[k], ref[k], rtol=1e-10, atol=1e-12), k


@pytest.fixture(scope="module")
def relu_problem():
    net, (X, y, rng) = network.resnet(), _data(800)
    h = P.hyperparameters(**VALUES)
    K = 1.3 * _dense(net, X) + 0.05 * np.eye(len(X))
    return net, X, y, rng, h, K


def test_cg_posterior_matches_cholesky(relu_problem):
    net, X, y, rng, h, K = relu_problem
    settings = gp.SolverSettings(tol=1e-10, rank=100)
    value, info = gp.log_marginal_likelihood(net, h, X, y, settings)
    assert info["residual"] <= 1e-10 and info["n_iter"] < 100
    Xs = rng.standard_normal((40, 4))
    mean, var, _ = gp.posterior(net, h, X, info["alpha"], Xs, settings, want="var")
    Ks = 1.3 * _dense(net, Xs, X)
    mean_ex = Ks @ np.linalg.solve(K, y)
    var_ex = 1.3 * np.diag(_dense(net, Xs)) - np.einsum("ij,ji->i", Ks, np.linalg.solve(K, Ks.T))
    assert np.abs(mean[:, 0] - mean_ex).max() <= 1e-6 * np.abs(mean_ex).max()
    assert np.abs(var - 0.05 - var_ex).max() <= 1e-4 * var_ex.max()


def test_slq_likelihood_and_gradient(relu_problem):
    net, X, y, rng, h, K = relu_problem
    settings = gp.SolverSettings(tol=1e-10, rank=100, n_probes=32, seed=0)
    value, grad, _ = gp.log_marginal_likelihood(net, h, X, y, settings, eval_gradient=True)
    with float64():
        def lml(hh):
            Kh = hh["amplitude"] * traceable.kernel_matrix(
                net, jnp.asarray(X), **{k: hh[k] for k in P.KERNEL_HYPERPARAMETERS}) \
                + hh["noise_variance"] * jnp.eye(len(X))
            L = jnp.linalg.cholesky(Kh)
            a = jax.scipy.linalg.cho_solve((L, True), jnp.asarray(y))
            return -0.5 * y @ a - jnp.sum(jnp.log(jnp.diag(L))) - 0.5 * len(X) * jnp.log(2 * jnp.pi)
        exact, exact_grad = jax.value_and_grad(lml)(h)
        exact, exact_grad = float(exact), {k: np.asarray(v) for k, v in exact_grad.items()}
    assert abs(value - exact) <= 1e-3 * abs(exact)
    for k in h:
        assert abs(grad[k] - exact_grad[k]) <= 1e-2 * abs(exact_grad[k]), k


def test_sharded_equals_single_device():
    code = textwrap.dedent("""
        import numpy as np, jax
        from resgp.core import network
        from resgp.solvers import products as P, sharding as S
        assert len(jax.devices()) == 4
        rng = np.random.default_rng(0)
        X, V = rng.standard_normal((700, 3)), rng.standard_normal((700, 5))
        h = P.hyperparameters(amplitude=1.3, noise_variance=0.1, branch_variance=0.7)
        for net in (network.resnet(), network.resnet(depth=2, ntk=True)):
            a = np.asarray(P.kernel_product(net, h, X, V, tile=64))
            b = np.asarray(S.sharded_kernel_product(net, h, X, V, tile=64))
            assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max(), np.abs(a - b).max()
        from resgp.solvers import gp
        y = np.sin(X[:, 0])
        one = gp.SolverSettings(tol=1e-10, rank=20, tile=64)
        four = gp.SolverSettings(tol=1e-10, rank=20, tile=64, mesh=S.device_mesh())
        a1 = gp.log_marginal_likelihood(network.resnet(), h, X, y, one)[1]["alpha"]
        a4 = gp.log_marginal_likelihood(network.resnet(), h, X, y, four)[1]["alpha"]
        assert np.abs(a1 - a4).max() <= 1e-12 * np.abs(a1).max()
        print("ok")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


FIXED = dict(amplitude=1.5, noise_variance=0.02, amplitude_bounds="fixed",
             branch_variance_bounds="fixed", noise_variance_bounds="fixed")


def test_regressor_cg_matches_cholesky():
    X, y, rng = _data(500, d=3)
    Xs = rng.standard_normal((30, 3))
    chol = ResNetGPRegressor(**FIXED).fit(X, y)
    cg = ResNetGPRegressor(solver="cg", solver_tol=1e-10, **FIXED).fit(X, y)
    assert cg.solver_ == "cg" and cg.gpr_ is None and cg.n_iter_ >= 1
    assert cg.solver_residual_ <= 1e-10
    m1, s1 = chol.predict(Xs, return_std=True)
    m2, s2 = cg.predict(Xs, return_std=True)
    assert np.abs(m1 - m2).max() <= 1e-6 * np.abs(m1).max()
    assert np.abs(s1 ** 2 - s2 ** 2).max() <= 1e-4 * (s1 ** 2).max()
    assert abs(chol.log_marginal_likelihood_value_ - cg.log_marginal_likelihood_value_) \
        <= 1e-3 * abs(chol.log_marginal_likelihood_value_)
    assert cg.sample_y(Xs[:4], 3).shape == (4, 3)
    assert ResNetGPRegressor(solver="auto", **FIXED).fit(X[:50], y[:50]).solver_ == "cholesky"


def test_regressor_cg_multioutput_ard():
    """Several targets, one weight variance per feature, return_cov, sample_y and the
    likelihood at given theta, against the Cholesky path (rank >= N: exact preconditioner)."""
    X, _, rng = _data(80, d=3)
    Y = np.c_[np.sin(X[:, 0]), np.cos(X[:, 1])]
    Xs = rng.standard_normal((7, 3))
    kw = dict(ard=True, noise_variance=0.05, amplitude_bounds="fixed",
              branch_variance_bounds="fixed", noise_variance_bounds="fixed")
    chol = ResNetGPRegressor(**kw).fit(X, Y)
    cg = ResNetGPRegressor(solver="cg", solver_tol=1e-12, optimizer=None, **kw).fit(X, Y)
    theta = chol.kernel_.theta
    l1, g1 = chol.log_marginal_likelihood(theta, eval_gradient=True)
    l2, g2 = cg.log_marginal_likelihood(theta, eval_gradient=True)
    assert abs(l1 - l2) <= 1e-9 * abs(l1)
    assert np.allclose(g1, g2, rtol=1e-2, atol=1e-6)  # at the optimum: gradients ~1e-4
    refit = ResNetGPRegressor(solver="cg", solver_tol=1e-12, optimizer=None,
                              **dict(kw, ard=False)).fit(X, Y)
    m2, c2 = refit.predict(Xs, return_cov=True)
    m0, c0 = ResNetGPRegressor(optimizer=None, **dict(kw, ard=False)).fit(X, Y).predict(
        Xs, return_cov=True)
    assert m2.shape == (7, 2) and c2.shape == (7, 7, 2)
    assert np.abs(m2 - m0).max() <= 1e-9 and np.abs(c2 - c0).max() <= 1e-9
    assert refit.sample_y(Xs, 2).shape == (7, 2, 2)


def test_non_convergence_warns():
    X, y, _ = _data(300, d=3)
    with pytest.warns(ConvergenceWarning, match="CG did not converge"):
        reg = ResNetGPRegressor(solver="cg", max_iter=1, solver_tol=1e-12,
                                preconditioner_rank=1, **FIXED).fit(X, y)
    assert reg.n_iter_ == 1 and reg.solver_residual_ > 1e-12


@pytest.mark.parametrize("kwargs, match", [
    (dict(solver="lu"), "solver must be"),
    (dict(solver="cg", posterior="ntk"), "posterior='ntk' needs solver='cholesky'"),
    (dict(solver="cg", solver_tol=0.0), "solver_tol must be"),
    (dict(solver="cg", max_iter=0), "max_iter must be"),
    (dict(solver="cg", n_probes=1.5), "n_probes must be"),
])
def test_regressor_errors(kwargs, match):
    X, y, _ = _data(20, d=2)
    with pytest.raises(ValueError, match=match):
        ResNetGPRegressor(**kwargs).fit(X, y)


def test_product_and_memory_errors():
    X, _, _ = _data(20, d=2)
    h = P.hyperparameters(**VALUES)
    with pytest.raises(ValueError, match=r"V must have shape \(20,\) or \(20, m\)"):
        P.kernel_product(network.resnet(), h, X, np.ones((19, 2)))
    with pytest.raises(MemoryError, match="N=10000000 needs about"):
        gp.check_memory(10_000_000, 17, gp.SolverSettings(), available=2 ** 30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gp.check_memory(1000, 17, gp.SolverSettings(), available=2 ** 30)
