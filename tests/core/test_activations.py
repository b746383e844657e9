"""resgp.core.activations: closed-form duals against quadrature, the Mehler quadrature's
accuracy, and the errors of bad activations (also as seen through the public kernels)."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special

import resgp
from resgp.core import activations as act
from resgp.core.x64 import enable_x64


def gauss_2d(f, q11, q22, q12, n=200):
    """E[f(u) g(v)] by a 2-D Gauss-Hermite rule in NumPy (f returns a pair (f(u), g(v)))."""
    x, w = scipy.special.roots_hermitenorm(n)
    w = w / np.sqrt(2 * np.pi)
    rho = q12 / np.sqrt(q11 * q22)
    u = np.sqrt(q11) * x[:, None]
    v = np.sqrt(q22) * (rho * x[:, None] + np.sqrt(1 - rho * rho) * x[None, :])
    fu, fv = f(u, v)
    return np.einsum("i,j,ij->", w, w, fu * fv)


def _np_gelu(x):
    return 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))


def _np_gelu_prime(x):
    return 0.5 * (1 + scipy.special.erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)


# (activation, phi, phi') in NumPy, written independently of resgp
SMOOTH = {
    "erf": (act.erf(1.3, 0.7, 0.2), lambda x: 1.3 * scipy.special.erf(0.7 * x) + 0.2,
            lambda x: 1.3 * 0.7 * 2 / np.sqrt(np.pi) * np.exp(-0.49 * x * x)),
    "sin": (act.sin(1.1, 0.9, 0.3), lambda x: 1.1 * np.sin(0.9 * x + 0.3),
            lambda x: 1.1 * 0.9 * np.cos(0.9 * x + 0.3)),
    "gelu": (act.get_activation("gelu"), _np_gelu, _np_gelu_prime),
    "tanh": (act.get_activation("tanh"), np.tanh, lambda x: 1 / np.cosh(x) ** 2),
}
COVS = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.8), (1.5, 0.7, 1.0), (0.2, 0.3, 0.0), (1.0, 1.0, 1.0)]


def _dual(a, q11, q22, q12, derivative=False):
    f = a.derivative_dual if derivative else a.dual
    with enable_x64():
        return float(f(jnp.float64(q11), jnp.float64(q22), jnp.float64(q12)))


@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_duals_against_quadrature(name):
    a, phi, dphi = SMOOTH[name]
    for q11, q22, r in COVS:
        q12 = r * np.sqrt(q11 * q22) * (1 - 1e-15 if abs(r) == 1 else 1)
        want = gauss_2d(lambda u, v: (phi(u), phi(v)), q11, q22, q12)
        assert abs(_dual(a, q11, q22, q12) - want) <= 1e-12 * max(1, abs(want)), (q11, q22, r)
        want = gauss_2d(lambda u, v: (dphi(u), dphi(v)), q11, q22, q12)
        assert abs(_dual(a, q11, q22, q12, True) - want) <= 1e-11 * max(1, abs(want)), (q11, q22, r)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # quad at 1e-13
@pytest.mark.parametrize("a, b", [(0.1, 1.0), (-1.0, 1.0), (-0.4, 1.3), (0.5, -2.0)])
def test_abrelu_duals_against_quadrature(a, b):
    """Kinked: the 2-D rule converges slowly, so compare to adaptive quadrature in the angle."""
    A = act.abrelu(a, b)
    for q11, q22, r in [(1.0, 2.0, 0.3), (0.5, 0.5, -0.7), (2.0, 1.0, 0.0)]:
        q12 = r * np.sqrt(q11 * q22)
        # E[phi(u) phi(v)] in polar coordinates: radial part closed form, angle by quad
        L = np.linalg.cholesky([[q11, q12], [q12, q22]])

        def integrand(t, f, p):
            e = L @ np.array([np.cos(t), np.sin(t)])
            return f(e[0]) * f(e[1]) * p / (2 * np.pi)

        t0 = np.arctan2(-L[1, 0], L[1, 1]) % np.pi  # the kinks: where e[0] or e[1] is 0
        kinks = np.sort(np.array([np.pi / 2, 3 * np.pi / 2, t0, t0 + np.pi]))
        phi = lambda x: a * min(x, 0) + b * max(x, 0)  # noqa: E731
        dphi = lambda x: a if x < 0 else b  # noqa: E731
        # E over radius R ~ Rayleigh: E[R^2] = 2 for the product of two linear parts, 1 for slopes
        want = scipy.integrate.quad(integrand, 0, 2 * np.pi, args=(phi, 2.0), limit=200,
                                    epsabs=1e-14, epsrel=1e-13, points=kinks)[0]
        dwant = scipy.integrate.quad(integrand, 0, 2 * np.pi, args=(dphi, 1.0), limit=200,
                                     epsabs=1e-14, epsrel=1e-13, points=kinks)[0]
        assert abs(_dual(A, q11, q22, q12) - want) < 1e-12
        assert abs(_dual(A, q11, q22, q12, True) - dwant) < 1e-12
    assert A.homogeneous


def test_leaky_relu_is_abrelu_and_relu_special_cases():
    assert act.leaky_relu(0.0) is act.RELU and act.abrelu(0.0, 1.0) is act.RELU
    assert act.leaky_relu(0.2) is act.leaky_relu(0.2)  # cached: jit reuses compilations
    assert _dual(act.leaky_relu(0.2), 1.0, 2.0, 0.4) == _dual(act.abrelu(0.2, 1.0), 1.0, 2.0, 0.4)
    # relu's derivative dual: (pi - theta) / 2 pi, exactly 1/2 on the diagonal
    assert _dual(act.RELU, 2.0, 2.0, 2.0, True) == 0.5
    assert abs(_dual(act.RELU, 1.0, 1.0, 0.0, True) - 0.25) < 1e-16


def _sech2(x):
    return 1.0 / jnp.cosh(x) ** 2


QUADRATURE_TARGET = 3e-13  # the Mehler tail at which the graded rule takes over in these tests


def quadrature_tanh(order):
    """tanh integrated by resgp's quadrature rules (Mehler series, graded rule beyond) with a
    Mehler tail target of 3e-13: the machinery behind callables, at a built-in's accuracy."""
    return act._from_callable(jnp.tanh, f"tanh (quadrature, order {order})", order, _sech2,
                              QUADRATURE_TARGET)


def _tanh_squares(q):
    """E[tanh(u)^2] and E[sech^2(u)^2], u ~ N(0, q), by adaptive quadrature (SciPy)."""
    out = []
    for f in (lambda u: np.tanh(u) ** 2, lambda u: np.cosh(u) ** -4):
        out.append(scipy.integrate.quad(
            lambda x: f(np.sqrt(q) * x) * np.exp(-x * x / 2) / np.sqrt(2 * np.pi),
            -40, 40, epsabs=1e-17, epsrel=1e-14, limit=1000,
            points=[0] + [s / np.sqrt(q) for s in (-8, -2, -0.5, 0.5, 2, 8)])[0])
    return out


@pytest.mark.parametrize("q", [1.0, 4.0, 25.0, 1e4])
@pytest.mark.parametrize("order", [64, 256])
def test_quadrature_accurate_at_every_variance_and_order(q, order):
    """E[tanh(u)^2] and E[sech^2(u)^2] (rho = 1, the worst case for the Mehler series) by the
    quadrature rules against adaptive quadrature: 1e-12 whatever the order, which only moves
    where the graded rule takes over (mehler_max)."""
    for deriv, want in zip((False, True), _tanh_squares(q)):
        err = abs(_dual(quadrature_tanh(order), q, q, q, deriv) - want) / want
        assert err < 1e-12, (deriv, err)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_scale_mixtures_at_every_variance(name):
    """The built-in tanh and sigmoid (scale mixtures: the series, the direct sum beyond)
    against the graded Gauss-Legendre reference (tests/reference, no resgp code) at rho = 1,
    where the series' tail is largest, on both sides of every switch: 3e-15 relative."""
    from reference import duals as ref_duals

    a, ref = act.get_activation(name), ref_duals.reference(name)
    for q in [1e-4, 0.01, 1.0, 1.4, 1.5, 2.8, 3.0, 6.1, 6.3, 25.0, 1e4]:
        want = ref_duals.diagonal_moments(ref, q)
        for deriv in (False, True):
            err = abs(_dual(a, q, q, q, deriv) - want[int(deriv)]) / want[int(deriv)]
            assert err < 3e-15, (q, deriv, err)


def test_mehler_range_is_where_the_series_meets_the_target():
    """Below mehler_max the Mehler series alone meets the target at rho = 1; just above it
    does not (so the switch is placed where it is needed, not earlier or later)."""
    from resgp.core import quadrature

    a = quadrature_tanh(128)
    for q, ok in ((a.mehler_max, True), (2.0 * a.mehler_max, False)):
        tail = quadrature.mehler_tail(_sech2, q, 128)[0]
        assert (tail <= QUADRATURE_TARGET) == ok, (q, tail)


def test_callable_gradient_derivative_matches_explicit():
    fn = lambda x: jnp.sin(x) + 0.3 * x  # noqa: E731
    a = act.from_callable(fn, name="auto")
    b = act.from_callable(fn, name="explicit", derivative=lambda x: jnp.cos(x) + 0.3)
    for q11, q22, r in COVS:
        q12 = r * np.sqrt(q11 * q22)
        assert abs(_dual(a, q11, q22, q12, True) - _dual(b, q11, q22, q12, True)) < 1e-14
    # sin(x) + 0.3 x against the closed-form sin dual: E[(s(u)+.3u)(s(v)+.3v)]
    q11, q22, q12 = 1.0, 2.0, 0.5
    want = (_dual(act.sin(), q11, q22, q12) + 0.09 * q12
            + 0.3 * q12 * (np.exp(-q11 / 2) + np.exp(-q22 / 2)))  # E[u sin v] = q12 e^{-q22/2}
    assert abs(_dual(a, q11, q22, q12) - want) < 1e-13


# ----------------------------------------------------------------------------- errors

_X3 = np.random.default_rng(1).normal(size=(3, 5))



def test_callable_passed_directly_equals_from_callable():
    fn = lambda x: jnp.tanh(x)  # noqa: E731
    X = np.random.default_rng(1).normal(size=(5, 5))
    a = resgp.resnet_nngp(X, depth=3, activation=fn)
    b = resgp.resnet_nngp(X, depth=3, activation="tanh")
    np.testing.assert_allclose(a, b, rtol=1e-13)


@pytest.mark.parametrize("fn, message", [
    (lambda x: jnp.log(x), "NaN"),
    (lambda x: 1.0 / x, "inf"),
    (lambda x: jnp.sum(x), "elementwise"),
    (lambda x: jnp.stack([x, x]), "elementwise"),
    (lambda x: x.undefined_method(), "raised AttributeError"),
])
def test_bad_callables_raise_clear_errors(fn, message):
    with pytest.raises(ValueError, match=message):
        act.from_callable(fn)
    with pytest.raises(ValueError, match=message):
        resgp.resnet_nngp(_X3, depth=2, activation=fn)


@pytest.mark.parametrize("fn", [np.tanh, lambda x: np.tanh(float(x[0])) * x])
def test_numpy_callables_are_rejected_as_untraceable(fn):
    with pytest.raises(TypeError, match="traceable by jax.jit"):
        resgp.resnet_nngp(_X3, depth=2, activation=fn)


def test_unknown_names_and_bad_arguments():
    with pytest.raises(ValueError, match="unknown activation 'swish'; known: \\['abrelu'"):
        resgp.resnet_nngp(_X3, activation="swish")
    with pytest.raises(TypeError, match="activation must be"):
        resgp.resnet_nngp(_X3, activation=3)
    with pytest.raises(ValueError, match="order"):
        act.from_callable(jnp.tanh, order=1)
    with pytest.raises(TypeError, match="slope"):
        act.leaky_relu("0.1")
    with pytest.raises(ValueError, match="finite"):
        act.erf(b=np.inf)
    with pytest.raises(TypeError, match="derivative must be callable"):
        act.from_callable(jnp.tanh, derivative=1.0)
    assert act.get_activation("TANH") is act.ACTIVATIONS["tanh"]
    assert sorted(act.ACTIVATIONS) == ["abrelu", "erf", "gelu", "leaky_relu", "relu", "requ",
                                       "sigmoid", "sign", "sin", "step", "tanh"]


def test_public_module_reexports_the_core():
    """resgp.activations is the public face of resgp.core.activations: the same objects."""
    import resgp.activations as public

    for name in public.__all__:
        assert getattr(public, name) is getattr(act, name), name
    assert resgp.ACTIVATIONS is act.ACTIVATIONS and resgp.Activation is act.Activation
    assert resgp.from_callable is act.from_callable
