"""Per-feature input weight variances (ARD, issue 14): q_0(a, b) = sum_i w_i a_i b_i / d + b
(the ResNet; the MLP, whose hidden layers then take sigma_w^2 = mean(w), below)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel

import resgp
from resgp.core import engine, network

RNG = np.random.default_rng(11)
X = RNG.normal(size=(7, 3))
Y = RNG.normal(size=(4, 3))
W = np.array([0.5, 2.0, 1.3])

def _log_gradient_errors(kernel, G, h=1e-6):
    """Per component of theta: max |G - FD| / max |FD| with FD the central differences of the
    kernel on X in log space (sklearn's theta)."""
    theta, errors = kernel.theta, []
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        fd = (kernel.clone_with_theta(up)(X) - kernel.clone_with_theta(down)(X)) / (2 * h)
        errors.append(np.abs(G[..., i] - fd).max() / np.abs(fd).max())
    return errors


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
    assert max(_log_gradient_errors(k, G)) <= 1e-7
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


@pytest.mark.parametrize("make", [
    lambda w: resgp.ResNetKernel(weight_variance=w, bias_variance=0.1),
    lambda w: resgp.MLPKernel(weight_variance=2.0 * w, bias_variance=0.1, activation="erf"),
], ids=["resnet", "mlp"])
def test_ard_finds_the_relevant_feature(make):
    """y depends on the first of four features: ARD raises the marginal likelihood over the
    isotropic kernel and gives that feature the largest weight variance."""
    rng = np.random.default_rng(11)
    Z = rng.normal(size=(60, 4))
    y = np.sin(2.0 * Z[:, 0]) + 0.05 * rng.normal(size=60)
    fits = {}
    for key, w in (("iso", 1.0), ("ard", np.ones(4))):
        kernel = ConstantKernel() * make(w) + WhiteKernel(1e-2)
        fits[key] = GaussianProcessRegressor(kernel, normalize_y=True).fit(Z, y)
    assert fits["ard"].kernel_.theta.size == fits["iso"].kernel_.theta.size + 4
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
        # the MLP: its traced layers take one sigma_w^2, the ARD input layer rescales the inputs
        mlp = dict(depth=3, weight_variance=W, bias_variance=0.2, activation="erf")
        M = jax.jit(lambda x, y: resgp.mlp_ntk(x, y, **mlp))(jnp.asarray(X), jnp.asarray(Y))
        m = jax.jit(lambda x: resgp.mlp_nngp_diag(x, **mlp))(jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(K), resgp.resnet_nngp(X, weight_variance=W,
                                                                activation="erf"), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(M), resgp.mlp_ntk(X, Y, **mlp), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(m), resgp.mlp_nngp_diag(X, **mlp), rtol=1e-12)


# ----------------------------------------------------------------------------- MLP

MLP = dict(nngp=resgp.mlp_nngp, ntk=resgp.mlp_ntk)
MLP_DIAG = dict(nngp=resgp.mlp_nngp_diag, ntk=resgp.mlp_ntk_diag)
MLP_CASES = [("relu", 0.0), ("relu", 0.3), ("erf", 0.0), ("erf", 0.3)]


def _mlp_id(case):
    return f"{case[0]}-b{case[1]}"


@pytest.mark.parametrize("case", MLP_CASES, ids=_mlp_id)
def test_mlp_equal_weights_are_the_isotropic_kernel(case):
    """w = (c, c, c) is the scalar c bit for bit (c = 0.7: the plain mean of three 0.7 is not
    0.7), and the d ARD gradients sum to the scalar's weight-variance gradient."""
    act, b = case
    c = 0.7
    kw = dict(depth=3, bias_variance=b, activation=act)
    for kind in ("nngp", "ntk"):
        np.testing.assert_array_equal(MLP[kind](X, weight_variance=np.full(3, c), **kw),
                                      MLP[kind](X, weight_variance=c, **kw))
        np.testing.assert_array_equal(MLP[kind](X, Y, weight_variance=np.full(3, c), **kw),
                                      MLP[kind](X, Y, weight_variance=c, **kw))
        np.testing.assert_array_equal(MLP_DIAG[kind](X, weight_variance=np.full(3, c), **kw),
                                      MLP_DIAG[kind](X, weight_variance=c, **kw))
        names = ("bias_variance", "weight_variance") if b else ("weight_variance",)
        nets = [network.mlp(weight_variance=w, ntk=kind == "ntk", **kw) for w in (np.full(3, c), c)]
        (K_ard, G_ard), (K_iso, G_iso) = (engine.gram_and_gradients(n, X, names) for n in nets)
        np.testing.assert_array_equal(K_ard, K_iso)
        np.testing.assert_allclose(G_ard[-3:].sum(axis=0), G_iso[-1], rtol=1e-12,
                                   atol=1e-14 * np.abs(G_iso[-1]).max())
        if b:  # the other directions do not depend on how the weight one is asked for
            np.testing.assert_array_equal(G_ard[0], G_iso[0])


@pytest.mark.parametrize("case", MLP_CASES, ids=_mlp_id)
def test_mlp_ard_equals_the_isotropic_kernel_of_rescaled_inputs(case):
    """An independent route: features scaled by sqrt(w_i / mean(w)) through the isotropic MLP of
    sigma_w^2 = mean(w) (its hidden layers' variance)."""
    act, b = case
    kw = dict(depth=3, bias_variance=b, activation=act)
    s = np.sqrt(W / W.mean())
    for kind in ("nngp", "ntk"):
        K = MLP[kind](X, weight_variance=W, **kw)
        ref = MLP[kind](X * s, weight_variance=W.mean(), **kw)
        assert np.abs(K - ref).max() <= 1e-12 * np.abs(ref).max()
        cross = MLP[kind](X, Y, weight_variance=W, **kw)
        assert np.abs(cross - MLP[kind](X * s, Y * s, weight_variance=W.mean(), **kw)).max() \
            <= 1e-12 * np.abs(cross).max()
        np.testing.assert_allclose(MLP_DIAG[kind](X, weight_variance=W, **kw), np.diag(K),
                                   rtol=1e-12)
        assert not np.allclose(K, MLP[kind](X, weight_variance=W.mean(), **kw))  # w matters


@pytest.mark.parametrize("ntk", [False, True], ids=["nngp", "ntk"])
@pytest.mark.parametrize("case", MLP_CASES, ids=_mlp_id)
def test_mlp_kernel_ard_gradients(case, ntk):
    """MLPKernel's gradient in log space, every ARD component (and the bias), against central
    differences of the kernel."""
    act, b = case
    k = resgp.MLPKernel(depth=3, weight_variance=W, bias_variance=b, activation=act, ntk=ntk)
    K, G = k(X, eval_gradient=True)
    np.testing.assert_array_equal(K, MLP["ntk" if ntk else "nngp"](
        X, depth=3, weight_variance=W, bias_variance=b, activation=act))
    assert G.shape == (7, 7, 4 if b else 3)
    np.testing.assert_allclose(np.exp(k.theta[-3:]), W, rtol=1e-15)
    assert max(_log_gradient_errors(k, G)) <= 1e-6


def test_mlp_wrong_length_is_refused():
    pattern = "weight_variance has 4 entries but X1? has 3 features: give one variance per"
    for fn in (*MLP.values(), *MLP_DIAG.values()):
        with pytest.raises(ValueError, match=pattern):
            fn(X, depth=2, weight_variance=np.ones(4))
    kernel = resgp.MLPKernel(weight_variance=np.ones(4))
    for call in (kernel, kernel.diag, lambda Z: kernel(Z, eval_gradient=True)):
        with pytest.raises(ValueError, match=pattern):
            call(X)
    with pytest.raises(ValueError, match="finite variances > 0"):
        resgp.mlp_nngp(X, depth=2, weight_variance=[1.0, 0.0, 1.0])


def test_mlp_kernel_vector_hyperparameter():
    k = resgp.MLPKernel(depth=2, weight_variance=np.ones(3), bias_variance=0.1)
    assert [h.name for h in k.hyperparameters] == ["bias_variance", "weight_variance"]
    assert k.hyperparameter_weight_variance.n_elements == 3 and k.anisotropic
    assert k.theta.shape == (4,) and k.bounds.shape == (4, 2)
    np.testing.assert_allclose(np.exp(k.bounds[1:]), [[1e-2, 1e2]] * 3, rtol=1e-15)
    assert resgp.MLPKernel(weight_variance=np.ones(3)).theta.shape == (3,)  # bias-free
    assert resgp.MLPKernel(weight_variance=np.ones(3), bias_variance=0.1,
                           weight_variance_bounds="fixed").theta.shape == (1,)
    assert resgp.MLPKernel().hyperparameter_weight_variance.fixed  # a scalar stays fixed
    assert k.get_params()["weight_variance_bounds"] is None
    np.testing.assert_array_equal(k.get_params()["weight_variance"], np.ones(3))
    twin = clone(k)
    assert twin is not k and twin == k
    np.testing.assert_array_equal(twin(X), k(X))
    moved = k.clone_with_theta(k.theta + 0.1)
    np.testing.assert_allclose(moved.weight_variance, np.exp(0.1) * np.ones(3), rtol=1e-15)
    np.testing.assert_allclose(moved(X), resgp.mlp_nngp(
        X, depth=2, weight_variance=np.exp(0.1) * np.ones(3), bias_variance=0.1 * np.exp(0.1)),
        rtol=1e-14)
    rebuilt = eval(repr(resgp.MLPKernel(weight_variance=[0.5, 2.0, 1.0])),  # noqa: S307
                   {"MLPKernel": resgp.MLPKernel})
    np.testing.assert_array_equal(rebuilt(X), resgp.mlp_nngp(X, depth=3,
                                                             weight_variance=[0.5, 2, 1]))


@pytest.mark.parametrize("ntk", [False, True], ids=["nngp", "ntk"])
def test_tabulated_partials_equal_the_pair_flow(ntk):
    """Per-feature weight variances at infinite depth (smooth activations): the flow tables'
    d/dq_0(a, a) (part "aa") and d/dq_0(b, b) = "diag" - "aa" against each pair's own ODE
    sensitivities, on inputs whose variances span several panels (so blocks are mirrored and
    the two partials exchange places); then dK/dw_i through the same contraction."""
    from resgp.core.inputs import features

    rng = np.random.default_rng(5)
    Z = rng.normal(size=(12, 3)) * np.repeat([0.4, 3.0], 6)[:, None]
    net = network.resnet(activation="erf", weight_variance=W, bias_variance=0.1, ntk=ntk)
    names = ("branch_variance", "bias_variance") + engine.PARTIALS
    f = features(Z, net.weight_variance, net.bias_variance)
    assert len(np.unique(engine.flow_table.panel(f[1] ** 2))) >= 2
    with engine.float64():
        tabulated = engine._table_gram(net, f, None, names)
        reference = engine._pair_gram(net, f, None, names)
    for k, name in enumerate(("value",) + names):
        scale = np.abs(reference[k]).max()
        assert np.abs(tabulated[k] - reference[k]).max() <= 1e-8 * scale, name
    off = ~np.eye(len(Z), dtype=bool)  # (the diagonal's q_0(a, a) is all three at once)
    np.testing.assert_array_equal(tabulated[3][off], tabulated[4].T[off])  # P_aa = P_bb^T
    K, G = engine.gram_and_gradients(net, Z, ("weight_variance",))
    P_aa, P_bb, P_ab = reference[3:]
    d = Z.shape[1]
    for i in range(d):
        x = Z[:, i]
        expected = (P_aa * x[:, None] ** 2 + P_bb * x[None, :] ** 2 + P_ab * np.outer(x, x)) / d
        assert np.abs(G[i] - expected).max() <= 1e-8 * np.abs(expected).max()
