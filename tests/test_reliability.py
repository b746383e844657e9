"""Reliability (issue 13): each defect's reproducer as a test, against an independent number or
a named error; a property test over activations x depth x T x input scale."""

from __future__ import annotations

import pickle
import time

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import resgp
from resgp import activations as A
from resgp.core.x64 import enable_x64

RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 4))


def nan_outside(x):  # NaN beyond |x| = 4.5, where the duals' quadrature samples it
    return jnp.where(jnp.abs(x) > 4.5, jnp.nan, jnp.tanh(x))


def softplus(x):
    return jnp.logaddexp(x, 0.0)


# ----------------------------------------------------------------------------- 1, 4: NaN


@pytest.mark.parametrize("call", [
    lambda: resgp.resnet_nngp(X, activation=nan_outside),
    lambda: resgp.resnet_ntk(X, activation=nan_outside),
    lambda: resgp.resnet_nngp_diag(X, activation=nan_outside),
    lambda: resgp.resnet_nngp(X, depth=5, activation=nan_outside),
    lambda: resgp.resnet_ntk_diag(X, depth=5, activation=nan_outside),
], ids=["nngp", "ntk", "diag", "depth5", "depth5-diag"])
def test_nan_activation_is_a_named_error_within_seconds(call):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"is NaN at x = -?4\.5"):
        call()
    assert time.perf_counter() - start < 60.0


def test_bounded_solver_errors_name_the_cause():
    with pytest.raises(ValueError, match="it is inf at x = 7"):  # exp overflows past 709.8
        resgp.resnet_nngp(X * 1e3, activation=jnp.exp)
    with pytest.raises(ValueError, match="blows up in finite depth time"):
        resgp.resnet_nngp(X * 3, activation="requ")
    with pytest.raises(ValueError, match="below 1e-300"):
        resgp.resnet_nngp(X * 1e-150, activation="tanh", branch_variance=1000)
    with pytest.raises(ValueError, match="below 1e-300"):
        resgp.resnet_nngp_diag(X * 1e-150, activation="sin")


# ----------------------------------------------------------------------------- 2: large T


def test_identical_rows_at_large_branch_variance():
    Y = RNG.normal(size=(3, 4))
    Y = np.vstack([Y, Y])
    for activation, T in (("sin", 100.0), ("erf", 1000.0)):
        K = resgp.resnet_nngp(Y, activation=activation, branch_variance=T)
        np.testing.assert_allclose(K[:3, 3:], K[:3, :3], rtol=1e-12)
        assert np.linalg.eigvalsh(K[:3, :3])[0] > 0


def test_sin_dual_at_tiny_and_large_variances():
    """E[sin(u + c) sin(v + c)] and E[cos cos] against mpmath (no cancellation at q = 1e-300,
    no overflow of sinh at q = 1e4)."""
    mp.mp.dps = 40
    for q in (1e-300, 1e-20, 1.0, 1e3, 1e4):
        for rho in (0.3, -0.7, 1.0):
            for c in (0.0, 0.4):
                q12 = rho * q
                m, x = -mp.mpf(q), mp.mpf(q12)
                want = mp.e ** m * mp.sinh(x) + mp.sin(c) ** 2 * mp.e ** (m - x)
                want_d = mp.e ** m * mp.cosh(x) - mp.sin(c) ** 2 * mp.e ** (m - x)
                act = A.sin(c=c)
                with enable_x64():
                    got = float(act.dual(q, q, q12))
                    got_d = float(act.derivative_dual(q, q, q12))
                assert abs(got - float(want)) <= 1e-14 * abs(float(want)) + 1e-300, (q, rho, c)
                assert abs(got_d - float(want_d)) <= 1e-14 * abs(float(want_d)) + 1e-300


# ----------------------------------------------------------------------------- 3: GPJax NaN


def test_traced_kernels_propagate_nan():
    """Under jit a NaN input gives NaN entries, not zeros (a where-guarded sqrt once masked it)."""
    Y = X.copy()
    Y[1, 2] = np.nan
    with enable_x64():
        for kw in (dict(), dict(depth=3)):
            K = np.asarray(jax.jit(lambda x: resgp.resnet_nngp(x, **kw))(jnp.asarray(Y)))
            assert np.isnan(K[1]).all() and np.isnan(K[:, 1]).all()
            assert np.isfinite(np.delete(np.delete(K, 1, 0), 1, 1)).all()


# ----------------------------------------------------------------------------- 5: resnet_limit


def test_resnet_limit_validates_its_covariances():
    q = np.ones(2)
    good = np.array([[1.0, 0.5], [0.5, 1.0]])
    with pytest.raises(ValueError, match="NaN or inf"):
        resgp.resnet_limit(q, q, np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(TypeError, match="real numbers"):
        resgp.resnet_limit(q, q, good.astype(complex))
    with pytest.raises(ValueError, match="Cauchy-Schwarz"):
        resgp.resnet_limit(q, q, np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric q12"):
        resgp.resnet_limit(q, q, np.array([[1.0, 0.5], [0.2, 1.0]]), symmetric=True)
    with pytest.raises(ValueError, match=">= 0"):
        resgp.resnet_limit(-q, q, good)
    with pytest.raises(ValueError, match="shape"):
        resgp.resnet_limit(q, q, np.ones((3, 2)))


# ----------------------------------------------------------------------------- 6: pickle, repr


@pytest.mark.parametrize("activation", [
    A.leaky_relu(0.2), A.erf(b=2.0), A.sin(c=0.3), A.abrelu(-0.5, 1.0), A.rectified_monomial(3),
    A.TANH, A.SIGMOID, resgp.from_callable(jnp.tanh, order=512), jnp.tanh, softplus,
    resgp.from_callable(softplus),
], ids=lambda a: getattr(a, "name", getattr(a, "__name__", "?")))
def test_activations_kernels_and_estimators_pickle(activation):
    act = A.get_activation(activation)
    assert pickle.loads(pickle.dumps(act)) is act
    Y = RNG.normal(size=(12, 3))
    y = Y[:, 0] - Y[:, 1]
    kernel = resgp.ResNetKernel(activation=activation, depth=3)
    again = pickle.loads(pickle.dumps(kernel))
    np.testing.assert_array_equal(again(Y), kernel(Y))
    model = resgp.ResNetGPRegressor(activation=activation, depth=3).fit(Y, y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(Y), model.predict(Y))


def test_parameterised_names_round_trip():
    for act in (A.leaky_relu(0.2), A.erf(a=2.0, b=0.5), A.sin(c=0.3), A.TANH, A.SIGMOID,
                A.abrelu(-0.5, 1.0), A.rectified_monomial(3)):
        assert A.get_activation(act.name) is act
        assert repr(act) == f"Activation({act.name!r})"
    kernel = resgp.ResNetKernel(activation=A.leaky_relu(0.2), bias_variance=0.5)
    rebuilt = eval(repr(kernel), {"ResNetKernel": resgp.ResNetKernel})  # noqa: S307
    np.testing.assert_array_equal(rebuilt(X), kernel(X))
    with pytest.raises(ValueError, match="unknown activation"):
        A.get_activation("leaky_relu(slope=")
    with pytest.raises(ValueError, match="leaky_relu"):
        A.get_activation("leaky_relu(nope=1)")


# ----------------------------------------------------------------------------- 8: overflow


@pytest.mark.parametrize("call", [
    lambda: resgp.resnet_nngp(X, branch_variance=1419),
    lambda: resgp.resnet_nngp(X, branch_variance=1e6),
    lambda: resgp.resnet_nngp(X, branch_scales=[1e200] * 3),
    lambda: resgp.mlp_nngp(X, depth=3, weight_variance=1e300),
], ids=["T1419", "T1e6", "scales", "mlp"])
def test_overflow_is_an_overflow_error(call):
    with pytest.raises(OverflowError, match="overflowed"):
        call()


def test_erf_at_large_branch_variance_is_finite_and_psd():
    K = resgp.resnet_nngp(X, branch_variance=1419, activation="erf")
    assert np.isfinite(K).all() and np.linalg.eigvalsh(K)[0] > 0


# ----------------------------------------------------------------------------- 9: cancellation


def _mp_q0(A_, B_):
    d = A_.shape[1]
    return [[sum(mp.mpf(float(a)) * mp.mpf(float(b)) for a, b in zip(ra, rb)) / d for rb in B_]
            for ra in A_]


def _mp_erf(q11, q22, q12):
    return (2 / mp.pi * mp.asin(2 * q12 / mp.sqrt((1 + 2 * q11) * (1 + 2 * q22))),
            4 / mp.pi / mp.sqrt((1 + 2 * q11) * (1 + 2 * q22) - 4 * q12 ** 2))


def _mp_gelu(q11, q22, q12):
    """Tsuchida et al. (2020): the GELU dual and derivative dual, written from the paper."""
    p1 = (1 + q11) * (1 + q22)
    d2 = p1 - q12 ** 2
    d = mp.sqrt(d2)
    ang = mp.atan(q12 / d)
    v = q12 / 4 + ((q12 ** 2 + q11 * q22 * d2) / (p1 * d) + q12 * ang) / (2 * mp.pi)
    vd = (1 / d2 + (1 - q11 * q22) / p1 + 1) * q12 / d / (2 * mp.pi) + mp.mpf(1) / 4 \
        + ang / (2 * mp.pi)
    return v, vd


def _mp_resnet_ntk(duals, Y, depth):
    """The finite-depth ResNet NTK recursion at 50 digits: q += g v(q), Theta += g (v +
    Theta v'), g = 1/depth, Theta_0 = q_0."""
    mp.mp.dps = 50
    q = _mp_q0(Y, Y)
    th = [row[:] for row in q]
    n = len(Y)
    g = mp.mpf(1) / depth
    for _ in range(depth):
        vals = [[duals(q[i][i], q[j][j], q[i][j]) for j in range(n)] for i in range(n)]
        th = [[th[i][j] + g * (vals[i][j][0] + th[i][j] * vals[i][j][1]) for j in range(n)]
              for i in range(n)]
        q = [[q[i][j] + g * vals[i][j][0] for j in range(n)] for i in range(n)]
    return np.array([[float(x) for x in row] for row in th])


@pytest.mark.parametrize("activation, scale, duals", [("gelu", 1e6, _mp_gelu),
                                                      ("erf", 1e9, _mp_erf)])
def test_ntk_closed_forms_at_huge_variances(activation, scale, duals):
    Y = X[:4] * scale
    want = _mp_resnet_ntk(duals, Y, 3)
    got = resgp.resnet_ntk(Y, depth=3, activation=activation)
    norm = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    assert np.max(np.abs(got - want) / norm) <= 1e-10


# ----------------------------------------------------------------------------- 10, 11: scales


def test_relu_finite_depth_at_tiny_and_huge_scales():
    """K(cX) = c^2 K(X) for the ReLU ResNet (c a power of two: exact in floats)."""
    for ntk in (False, True):
        fn = resgp.resnet_ntk if ntk else resgp.resnet_nngp
        diag = resgp.resnet_ntk_diag if ntk else resgp.resnet_nngp_diag
        K = fn(X, depth=7)
        for c in (2.0 ** -512, 2.0 ** -500, 2.0 ** 500):
            np.testing.assert_allclose(fn(X * c, depth=7), K * c * c, rtol=1e-12)
            np.testing.assert_allclose(diag(X * c, depth=7), np.diag(K) * c * c, rtol=1e-12)
    e = np.linalg.eigvalsh(resgp.resnet_nngp(X * 1e-150, depth=7) * 1e300)
    assert e[0] / e[-1] > 1e-3


def test_relu_ntk_near_duplicates_fit():
    from sklearn.gaussian_process import GaussianProcessRegressor

    Y = RNG.normal(size=(30, 3))
    Y = np.vstack([Y, Y + 1e-7 * RNG.normal(size=Y.shape)])
    GaussianProcessRegressor(resgp.ResNetKernel(ntk=True), optimizer=None).fit(Y, Y[:, 0])
    np.testing.assert_allclose(resgp.resnet_ntk(Y, Y), resgp.resnet_ntk(Y), rtol=1e-12)


# ----------------------------------------------------------------------------- 12, 13: inputs


def test_kernel_functions_under_jit():
    for kw in (dict(), dict(activation="erf"), dict(activation="tanh", depth=4),
               dict(depth=3, bias_variance=0.2)):
        with enable_x64():
            traced = jax.jit(lambda x: resgp.resnet_ntk(x, **kw))(jnp.asarray(X))
            diag = jax.jit(lambda x: resgp.resnet_ntk_diag(x, **kw))(jnp.asarray(X))
        want = resgp.resnet_ntk(X, **kw)
        np.testing.assert_allclose(np.asarray(traced), want, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(diag), np.diag(want), rtol=1e-12)
    if not jax.config.jax_enable_x64:
        with pytest.raises(TypeError, match="64-bit JAX"):
            jax.jit(resgp.resnet_nngp)(X)


def test_pandas_nullable_and_sparse_inputs():
    import pandas as pd
    import scipy.sparse

    frame = pd.DataFrame(X).astype("Float64")
    np.testing.assert_array_equal(resgp.resnet_nngp(frame), resgp.resnet_nngp(X))
    frame.iloc[1, 1] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        resgp.resnet_nngp(frame)
    with pytest.raises(TypeError, match=r"toarray\(\)"):
        resgp.resnet_nngp(scipy.sparse.csr_matrix(X))
    with pytest.raises(TypeError, match=r"toarray\(\)"):
        resgp.ResNetKernel()(scipy.sparse.csr_matrix(X))


# ----------------------------------------------------------------------------- property


ACTIVATIONS = ["relu", "leaky_relu", "erf", "sin", "gelu", "tanh", "step", "requ", "sign"]


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(activation=st.sampled_from(ACTIVATIONS), depth=st.sampled_from([None, 1, 4, 20]),
       T=st.sampled_from([0.1, 1.0, 10.0]), log_scale=st.integers(-40, 40),
       ntk=st.booleans())
def test_every_matrix_is_finite_symmetric_psd_or_a_named_error(activation, depth, T,
                                                                log_scale, ntk):
    Y = RNG.normal(size=(6, 3)) * 10.0 ** (log_scale / 4)
    fn = resgp.resnet_ntk if ntk else resgp.resnet_nngp
    try:
        K = fn(Y, depth=depth, branch_variance=T, activation=activation)
    except (ValueError, OverflowError) as exc:
        message = str(exc)
        assert any(s in message for s in ("blows up", "overflowed", "ODE steps", "below 1e-300",
                                          "no derivative dual", "graded")), message
        return
    assert np.isfinite(K).all()
    np.testing.assert_array_equal(K, K.T)
    e = np.linalg.eigvalsh(K)
    assert e[0] >= -1e-10 * e[-1]
