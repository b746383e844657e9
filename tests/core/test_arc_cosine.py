"""Rectified monomials max(0, x)^n (step, relu, requ, ...) and sign: duals, derivative duals and
their JAX derivatives against references that share no code with resgp (mpmath at 30 digits,
central finite differences, a NumPy layer recursion, scipy's DOP853 on the limit ODE), and the
kernels built from them (finite and infinite depth, NTK, scikit-learn gradients)."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import resgp
from resgp import activations as act
from resgp.core.x64 import enable_x64
from resgp.sklearn_kernel import ResNetKernel

# ----------------------------------------------------------------------------- mpmath reference

DPS = 30


def _truncated_moment(n, mu, s):
    """E[max(0, v)^n] for v ~ N(mu, s^2): s^n sum_k C(n, k) m^(n-k) M_k(-m), m = mu / s, with
    M_k(a) = int_a^inf z^k phi(z) dz = a^(k-1) phi(a) + (k-1) M_(k-2)(a)."""
    if s == 0:
        return mu**n if mu > 0 else mp.mpf(0)
    m = mu / s
    M = [mp.ncdf(m), mp.npdf(m)]
    for k in range(2, n + 1):
        M.append((-m) ** (k - 1) * mp.npdf(m) + (k - 1) * M[k - 2])
    return s**n * mp.fsum(mp.binomial(n, k) * m ** (n - k) * M[k] for k in range(n + 1))


def _sign_mean(mu, s):
    """E[sign v] for v ~ N(mu, s^2)."""
    return mp.sign(mu) if s == 0 else 2 * mp.ncdf(mu / s) - 1


@functools.lru_cache(maxsize=None)
def G(kind, rho):
    """E[f(x) f(y)], (x, y) standard normal with correlation rho, f = max(0, .)^kind or sign.

    1-D reduction: y | x ~ N(rho x, 1 - rho^2), the inner expectation in closed form (above),
    the outer by mpmath's tanh-sinh quadrature over 0 < x < 16 (f(x) = 0 for x < 0; for the
    sign, the two halves folded together; the tail beyond 16 is < 1e-45 for kind <= 4)."""
    with mp.workdps(DPS + 5):
        r = mp.mpf(rho)
        s = mp.sqrt(1 - r * r) if abs(r) < 1 else mp.mpf(0)
        if kind == "sign":
            def g(x):
                return (_sign_mean(r * x, s) - _sign_mean(-r * x, s)) * mp.npdf(x)
        else:
            def g(x):
                return x**kind * _truncated_moment(kind, r * x, s) * mp.npdf(x)
        return mp.quad(g, [0, 16])


def G_prime(kind, rho):
    """dG/drho: Price's theorem n^2 G_(n-1) for n >= 1; the densities at 0 for the step
    (1 / 2 pi sqrt(1 - rho^2)) and the sign (2 / pi sqrt(1 - rho^2))."""
    if kind == "sign":
        return 2 / (mp.pi * mp.sqrt(1 - mp.mpf(rho) ** 2))
    if kind == 0:
        return 1 / (2 * mp.pi * mp.sqrt(1 - mp.mpf(rho) ** 2))
    return kind**2 * G(kind - 1, rho)


def reference(kind, q11, q22, q12, rho):
    """E[f(u) f(v)] at the float64 inputs (q11, q22, q12), nominal correlation ``rho``.

    Exact scaling (q11 q22)^(n/2) G_n(rho_exact), where rho_exact = q12 / sqrt(q11 q22) in
    exact arithmetic differs from ``rho`` by rounding (~1e-16): G at rho_exact is G(rho) plus a
    first-order Taylor step (the second-order term is < 1e-24 at these points). At |rho| = 1
    the inputs are collinear to rounding (resgp's angle is exactly 0 or pi there, checked) and
    the reference is the collinear value."""
    n = 0 if kind == "sign" else kind
    a, b = mp.mpf(q11), mp.mpf(q22)
    g = G(kind, rho)
    if abs(rho) < 1:
        g = g + G_prime(kind, rho) * (mp.mpf(q12) / (mp.sqrt(a) * mp.sqrt(b)) - mp.mpf(rho))
    return (a * b) ** (mp.mpf(n) / 2) * g


QS = [1e-4, 0.01, 1.0, 25.0, 100.0, 1e4]
RHOS = [-1.0, -0.999999, -0.5, 0.0, 0.3, 0.999999, 1.0]
PAIRS = [(q, q) for q in QS] + [(1e-4, 1e4), (1e4, 0.01), (0.01, 1.0), (25.0, 100.0),
                                (1.0, 1e4), (100.0, 1e-4)]
POINTS = [(a, b, rho * math.sqrt(a) * math.sqrt(b), rho) for (a, b), rho in
          itertools.product(PAIRS, RHOS)]
KINDS = {"step": 0, "relu": 1, "requ": 2, "rectified_monomial(3)": 3, "rectified_monomial(4)": 4,
         "sign": "sign"}
RTOL_DUAL = 1e-13


def _activation(name):
    return act.SIGN if name == "sign" else act.rectified_monomial(KINDS[name])


def _columns(points):
    P = np.asarray(points, dtype=np.float64)
    return jnp.asarray(P[:, 0]), jnp.asarray(P[:, 1]), jnp.asarray(P[:, 2])


def _max_error(values, kind, scale_kind, factor=1):
    """max |values - factor * ref| / (factor * sqrt(ref(q11, q11, q11) ref(q22, q22, q22)))."""
    n = 0 if scale_kind == "sign" else scale_kind
    worst = 0.0
    for v, (a, b, c, rho) in zip(np.asarray(values), POINTS):
        ref = factor * reference(kind, a, b, c, rho)
        scale = factor * (mp.mpf(a) * mp.mpf(b)) ** (mp.mpf(n) / 2) * G(kind, 1.0)
        worst = max(worst, float(abs(mp.mpf(float(v)) - ref) / scale))
    return worst


def test_angle_is_exact_at_the_collinear_points(x64):
    """The |rho| = 1 points of the grid are exactly collinear for resgp's angle helper."""
    from resgp.core.activations import _angle

    q11, q22, q12 = _columns([p for p in POINTS if abs(p[3]) == 1])
    theta = np.asarray(_angle(q11, q22, q12))
    assert set(theta.tolist()) == {0.0, math.pi}


@pytest.mark.parametrize("name", list(KINDS))
def test_dual_and_derivative_dual_match_mpmath(x64, name):
    a = _activation(name)
    kind = KINDS[name]
    q11, q22, q12 = _columns(POINTS)
    assert _max_error(a.dual(q11, q22, q12), kind, kind) < RTOL_DUAL
    if kind in (0, "sign"):
        assert a.derivative_dual is None
    else:  # E[phi'(u) phi'(v)] with phi' = n max(0, x)^(n-1)
        err = _max_error(a.derivative_dual(q11, q22, q12), kind - 1, kind - 1, factor=kind**2)
        assert err < RTOL_DUAL


def test_activation_objects():
    assert act.rectified_monomial(1) is act.RELU
    assert act.rectified_monomial(0) is act.STEP is act.get_activation("step")
    assert act.rectified_monomial(2) is act.REQU is act.get_activation("ReQU")
    assert act.get_activation("sign") is act.SIGN
    assert act.FACTORIES["rectified_monomial"] is act.rectified_monomial
    assert act.rectified_monomial(np.int64(3)) is act.rectified_monomial(3)
    assert act.rectified_monomial(3).name == "rectified_monomial(3)"
    for a in (act.STEP, act.REQU, act.SIGN, act.rectified_monomial(3)):
        assert a.homogeneous is False and a.analytic is False
    assert act.STEP.spec == ("rectified_monomial", (0,)) and act.SIGN.spec == ("sign", ())
    x = jnp.asarray([-2.0, -0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(act.STEP.fn(x), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(act.REQU.fn(x), [0, 0, 0, 0.25, 9])
    np.testing.assert_array_equal(act.rectified_monomial(3).fn(x), [0, 0, 0, 0.125, 27])
    np.testing.assert_array_equal(act.SIGN.fn(x), [-1, 0, 0, 1, 1])
    for bad in (-1, 1.0, True, "2"):
        with pytest.raises(ValueError, match="integer >= 0"):
            act.rectified_monomial(bad)


def test_duals_at_zero_variance(x64):
    """u = 0 almost surely: max(0, 0)^n = 0 and sign(0) = 0, so every dual is 0."""
    for a in (act.STEP, act.REQU, act.SIGN, act.rectified_monomial(3)):
        for q11, q22 in [(0.0, 2.0), (2.0, 0.0), (0.0, 0.0)]:
            assert float(a.dual(q11, q22, 0.0)) == 0.0


# ----------------------------------------------------------------------------- derivatives

GRAD_ACTIVATIONS = ["step", "requ", "rectified_monomial(3)", "rectified_monomial(4)", "sign"]


def _grads(dual, q):
    """jax.grad of the dual in (q11, q22, q12) at a point (3,) or at each row of an (m, 3) array."""
    with enable_x64():
        q = jnp.asarray(q, dtype=jnp.float64)
        grad = jax.grad(lambda p: dual(p[0], p[1], p[2]))
        return np.asarray(grad(q) if q.ndim == 1 else jax.vmap(grad)(q))


def _fd(dual, Q, h):
    """Central differences (5-point stencil) in each argument at the rows of Q (m, 3), relative
    step h; the dual is evaluated on arrays."""
    Q = np.asarray(Q, dtype=np.float64)
    out = np.empty_like(Q)
    with enable_x64():
        for i in range(3):
            e = np.zeros_like(Q)
            e[:, i] = h * np.abs(Q[:, i])

            def at(s):
                P = Q + s * e
                return np.asarray(dual(jnp.asarray(P[:, 0]), jnp.asarray(P[:, 1]),
                                       jnp.asarray(P[:, 2])))

            out[:, i] = (8 * (at(1) - at(-1)) - (at(2) - at(-2))) / (12 * e[:, i])
    return out


GRAD_POINTS = [(q11, q22, rho * math.sqrt(q11 * q22)) for (q11, q22), rho in itertools.product(
    [(1.0, 1.0), (0.3, 2.5), (25.0, 0.04)], [-0.9, -0.3, 0.2, 0.8])]


@pytest.mark.parametrize("name", GRAD_ACTIVATIONS)
def test_gradients_match_finite_differences(name):
    """At interior points (3 variance pairs x 4 correlations), each partial derivative, relative
    to the gradient's size there or at rho = 1 (the dual's own scale: near rho = -1 the duals
    of high order are tiny and their differences are rounding noise)."""
    a = _activation(name)
    Q = np.asarray(GRAD_POINTS)
    collinear = Q.copy()
    collinear[:, 2] = np.sqrt(Q[:, 0]) * np.sqrt(Q[:, 1])
    for dual in (a.dual, a.derivative_dual):  # the NTK's velocity is differentiated too
        if dual is None:
            continue
        g, f = _grads(dual, Q), _fd(dual, Q, 1e-4)
        scale = np.maximum(np.abs(g).max(axis=1), np.abs(_grads(dual, collinear)).max(axis=1))
        assert (np.abs(g - f).max(axis=1) / scale).max() < 1e-10


@pytest.mark.parametrize("name", ["requ", "rectified_monomial(3)"])
@pytest.mark.parametrize("q11,q22,sign", [(1.0, 1.0, 1), (0.3, 2.5, 1), (4.0, 4.0, -1),
                                          (0.3, 2.5, -1)])
def test_exact_partials_at_collinear_pairs(name, q11, q22, sign):
    """rho = +-1, where autodiff through the angle gives NaN: the custom JVP's exact partials
    equal one-sided differences into the interior (3-point; the dual is smooth plus a
    (1 -+ rho)^(n + 1/2) term, so their error is O(h^(n - 1/2)) there). At rho = -1 all
    partials are 0 (the dual vanishes like (1 + rho)^(n + 1/2))."""
    a = _activation(name)
    q12 = sign * math.sqrt(q11) * math.sqrt(q22)
    g = _grads(a.dual, [q11, q22, q12])
    assert np.isfinite(g).all()
    scale = np.abs(_grads(a.dual, [q11, q22, abs(q12)])).max()
    if sign < 0:
        assert np.abs(g).max() < 1e-15 * scale
    with enable_x64():
        f = jax.jit(lambda *x: a.dual(*x))
        # perturbations that keep |q12| <= sqrt(q11 q22): q11, q22 up; |q12| down
        steps = [(1, 0, 0), (0, 1, 0), (0, 0, -sign)]
        for i, d in enumerate(steps):
            h = 1e-5 * [q11, q22, abs(q12)][i]
            at = [float(f(q11 + s * h * d[0], q22 + s * h * d[1], q12 + s * h * d[2]))
                  for s in (0, 1, 2)]
            one_sided = (-3 * at[0] + 4 * at[1] - at[2]) / (2 * h) * (d[0] + d[1] + d[2])
            assert abs(g[i] - one_sided) < 1e-6 * scale


@pytest.mark.parametrize("name", GRAD_ACTIVATIONS)
def test_gradients_finite_at_the_boundary(name):
    """Finite at rho = +-1 and at zero variances; along the collinear direction (q, q, q) the
    derivative is the exact one (d/ds of dual(s q) at rho = 1 is n dual / s: homogeneity)."""
    a = _activation(name)
    n = 0 if name == "sign" else KINDS[name]
    for q in [(2.0, 2.0, 2.0), (2.0, 2.0, -2.0), (0.5, 8.0, 2.0), (0.5, 8.0, -2.0),
              (0.0, 3.0, 0.0), (3.0, 0.0, 0.0), (0.0, 0.0, 0.0)]:
        g = _grads(a.dual, list(q))
        assert np.isfinite(g).all(), (q, g)
        if a.derivative_dual is not None:
            assert np.isfinite(_grads(a.derivative_dual, list(q))).all()
    with enable_x64():
        q = jnp.asarray([2.0, 2.0, 2.0])
        value, slope = jax.jvp(lambda s: a.dual(*(s * q)), (1.0,), (1.0,))
        assert abs(float(slope) - n * float(value)) < 1e-14 * max(abs(float(value)), 1.0)
    # a zero variance: requ's d/dq11 at q11 = 0 is q22 / 4 (dual(h, q22, 0) = h q22 / 4)
    if name == "requ":
        np.testing.assert_allclose(_grads(a.dual, [0.0, 3.0, 0.0]), [0.75, 0.0, 0.0], atol=1e-16)


# ----------------------------------------------------------------------------- finite depth


def np_angle(q11, q22, q12):
    return np.arctan2(np.sqrt(np.maximum(q11 * q22 - q12 * q12, 0.0)), q12)


def np_dual(kind, q11, q22, q12):
    """NumPy duals (broadcasting), written from the closed forms of docs/theory.md."""
    t = np_angle(q11, q22, q12)
    s, c, r = np.sin(t), np.cos(t), np.pi - t
    pos = (q11 > 0) & (q22 > 0)
    if kind == "step":
        return np.where(pos, r / (2 * np.pi), 0.0)
    if kind == "sign":
        return np.where(pos, 1 - 2 * t / np.pi, 0.0)
    if kind == "relu":
        return np.sqrt(q11 * q22) * (s + r * c) / (2 * np.pi)
    if kind == "requ":
        return q11 * q22 * (3 * s * c + r * (1 + 2 * c * c)) / (2 * np.pi)
    raise ValueError(kind)


def np_resnet(kind, X, depth, T, w=1.0, b=0.0, ntk=False):
    """q_l = q_(l-1) + (T/L) dual(q_(l-1)), q_0 = w X X^T / d + b (docs/theory.md), and the NTK
    Theta_l = Theta_(l-1) + (T/L)(dual + Theta_(l-1) derivative_dual), Theta_0 = q_0."""
    q = w * (X @ X.T) / X.shape[1] + b
    d = np.diag(q).copy()
    theta = q.copy()
    h = T / depth
    for _ in range(depth):
        q11, q22 = d[:, None], d[None, :]
        v = np_dual(kind, q11, q22, q)
        np.fill_diagonal(v, np_dual(kind, d, d, d))  # identical inputs: exactly rho = 1
        if ntk:
            dv = 4.0 * np_dual("relu", q11, q22, q)
            np.fill_diagonal(dv, 4.0 * np_dual("relu", d, d, d))
            theta = theta + h * (v + theta * dv)
        q = q + h * v
        d = np.diag(q).copy()
    return theta if ntk else q


@pytest.fixture(scope="module")
def X():
    """Random rows, a parallel row (2 x row 0) and an antiparallel row (-row 1), exactly
    collinear in floating point too; scaled so that ReQU's variances stay moderate."""
    X = np.random.default_rng(0).normal(size=(7, 4)) * 0.5
    X = np.vstack([X, 2.0 * X[0], -X[1]])
    X.flags.writeable = False
    return X


@pytest.mark.parametrize("kind", ["step", "requ", "sign"])
@pytest.mark.parametrize("depth,bias_variance", [(1, 0.0), (5, 0.0), (5, 0.3)])
def test_finite_depth_nngp_matches_numpy_recursion(X, kind, depth, bias_variance):
    kw = dict(depth=depth, activation=kind, branch_variance=0.7, weight_variance=1.3,
              bias_variance=bias_variance)
    ref = np_resnet(kind, X, depth, 0.7, 1.3, bias_variance)
    K = resgp.resnet_nngp(X, **kw)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert (np.abs(K - ref) / scale).max() < 1e-13
    np.testing.assert_allclose(resgp.resnet_nngp_diag(X, **kw), np.diag(ref), rtol=1e-14)
    Y = np.random.default_rng(1).normal(size=(4, 4))
    ref_xy = np_resnet(kind, np.vstack([X, Y]), depth, 0.7, 1.3, bias_variance)[:len(X), len(X):]
    Kxy = resgp.resnet_nngp(X, Y, **kw)
    assert (np.abs(Kxy - ref_xy) / np.abs(ref_xy).max()).max() < 1e-13


@pytest.mark.parametrize("depth", [1, 5])
def test_finite_depth_requ_ntk_matches_numpy_recursion(X, depth):
    ref = np_resnet("requ", X, depth, 0.7, b=0.2, ntk=True)
    K = resgp.resnet_ntk(X, depth=depth, activation="requ", branch_variance=0.7, bias_variance=0.2)
    assert (np.abs(K - ref) / np.abs(ref).max()).max() < 1e-13
    np.testing.assert_allclose(
        resgp.resnet_ntk_diag(X, depth=depth, activation="requ", branch_variance=0.7,
                              bias_variance=0.2), np.diag(ref), rtol=1e-14)


def test_no_ntk_for_step_and_sign(X):
    for kind in ("step", "sign"):
        with pytest.raises(ValueError, match="no derivative dual"):
            resgp.resnet_ntk(X, depth=3, activation=kind)
        with pytest.raises(ValueError, match="no derivative dual"):
            resgp.resnet_ntk(X, activation=kind)


# ----------------------------------------------------------------------------- infinite depth


def scipy_limit(kind, q11, q22, q12, T, same=False):
    """The limit ODE of one pair by scipy's DOP853: dq_aa/dt = dual(q_aa, q_aa, q_aa),
    dq_bb/dt likewise, dq_ab/dt = dual(q_aa, q_bb, q_ab) (``same``: the pair (a, a))."""
    def f(t, y):
        a, b, c = y
        v_ab = np_dual(kind, a, a, a) if same else np_dual(kind, a, b, c)
        return [np_dual(kind, a, a, a), np_dual(kind, b, b, b), v_ab]

    sol = solve_ivp(f, (0.0, T), [q11, q22, q12], method="DOP853", rtol=1e-13, atol=1e-16)
    assert sol.success
    return sol.y[:, -1]


@pytest.fixture(scope="module")
def X_limit():
    """Rows 0-3 random, 4 = row 0 + 1e-3 noise (angle ~1e-3 with it), 5 = -row 1; variances
    q_0 <= 1 (ReQU at T = 0.5 then stays below its blow-up at t = 2 / 3 q_0 >= 2/3)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(4, 3))
    X = np.vstack([X, X[0] + 1e-3 * rng.normal(size=3), -X[1]])
    return X / np.sqrt((X**2).sum(axis=1) / 3).max()


def _limit_reference(kind, X, T):
    q0 = X @ X.T / X.shape[1]
    N = len(X)
    ref = np.empty((N, N))
    for i, j in itertools.product(range(N), repeat=2):
        if j >= i:
            ref[i, j] = ref[j, i] = scipy_limit(kind, q0[i, i], q0[j, j], q0[i, j], T, i == j)[2]
    return ref


# measured: max |K - ref| / sqrt(K_aa K_bb) at the defaults (rtol 1e-10, atol 1e-12): step
# 3.9e-10 (the antiparallel pair), requ 2.4e-11 (the largest variance), sign 3.6e-11 (the pair at
# angle ~1e-3)
LIMIT_TOL = {"step": 1e-9, "requ": 1e-10, "sign": 1e-10}


EXACT_DIAGONAL = {  # the variance flow q' = dual(q, q, q) solved in closed form
    "step": lambda q0, t: q0 + t / 2,  # dual(q, q, q) = 1/2
    "sign": lambda q0, t: q0 + t,  # 1
    "requ": lambda q0, t: q0 / (1 - 1.5 * q0 * t),  # 3 q^2 / 2
}


@pytest.mark.parametrize("kind", ["step", "requ", "sign"])
def test_infinite_depth_matches_scipy(X_limit, kind):
    T = 0.5
    ref = _limit_reference(kind, X_limit, T)
    K = resgp.resnet_nngp(X_limit, activation=kind, branch_variance=T)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert (np.abs(K - ref) / scale).max() < LIMIT_TOL[kind]
    exact = EXACT_DIAGONAL[kind]((X_limit**2).sum(axis=1) / X_limit.shape[1], T)
    np.testing.assert_allclose(np.diag(K), exact, rtol=LIMIT_TOL[kind])
    np.testing.assert_allclose(np.diag(ref), exact, rtol=1e-12)


def test_infinite_depth_nearly_identical_pair_tight_tolerance():
    """Inputs at angle ~1e-6: the step's velocity is not Lipschitz at rho = 1 (d dual / d q12 =
    1 / 2 pi sqrt(q11 q22 - q12^2)), so the pair's flow is ill-conditioned there (at the default
    tolerances resgp is ~4e-6 off for this pair); with tight solver tolerances resgp and scipy
    agree to ~1e-10."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=3)
    x = x / np.sqrt((x**2).sum() / 3) * 0.9
    X = np.vstack([x, x + 1e-6 * rng.normal(size=3)])
    q0 = X @ X.T / 3
    a, b, c = scipy_limit("step", q0[0, 0], q0[1, 1], q0[0, 1], 0.5)
    K = resgp.resnet_nngp(X, activation="step", branch_variance=0.5, rtol=1e-13, atol=1e-15)
    assert abs(K[0, 1] - c) / math.sqrt(a * b) < 2e-9


# ----------------------------------------------------------------------------- scikit-learn


def _stencil(f, h=1e-3):
    return (8.0 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12.0 * h)


@pytest.mark.parametrize("params", [dict(activation="requ", depth=5, bias_variance=0.3),
                                    dict(activation="requ", depth=5, ntk=True, bias_variance=0.1),
                                    dict(activation="step", depth=5, bias_variance=0.5)],
                         ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_sklearn_kernel_gradient_matches_finite_differences(X, params):
    kernel = ResNetKernel(branch_variance=0.7, **params)
    K, G = kernel(X, eval_gradient=True)
    function = resgp.resnet_ntk if params.get("ntk") else resgp.resnet_nngp
    kw = {k: v for k, v in params.items() if k != "ntk"}
    np.testing.assert_allclose(K, function(X, branch_variance=0.7, **kw), rtol=1e-12)
    theta = kernel.theta
    for i in range(len(theta)):
        def K_at(s, i=i):
            t = theta.copy()
            t[i] += s
            return kernel.clone_with_theta(t)(X)

        F = _stencil(K_at)
        scale = np.abs(G[..., i]).max()
        assert np.isfinite(G[..., i]).all() and scale > 0
        assert np.abs(G[..., i] - F).max() / scale < 1e-9
