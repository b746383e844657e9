r"""Activations as their dual functions.

An activation :math:`\phi` enters the NNGP kernel only through its dual

.. math:: \check\phi(q_{11}, q_{22}, q_{12}) = E[\phi(u)\phi(v)],\quad
          (u, v) \sim N\left(0, \begin{pmatrix} q_{11} & q_{12} \\ q_{12} & q_{22}\end{pmatrix}\right),

and the NTK also through the derivative dual :math:`\check{\phi'}(q_{11}, q_{22}, q_{12}) =
E[\phi'(u)\phi'(v)]`. Both are functions of three broadcastable arrays (``jax.numpy``,
float64; variances in the units of the pre-activations squared, the dual in units of
:math:`\phi` squared). Every kernel in resgp is written against this one interface, so a new
activation is one new :class:`Activation`.

Closed forms (the conventions of Neural Tangents' ``stax`` layers of the same name):

* ``relu``; ``leaky_relu(slope)`` = :math:`\max(x,0) + s\min(x,0)`;
  ``abrelu(a, b)`` = :math:`a\min(x,0) + b\max(x,0)` (NT's ``ABRelu``; the name ``"abrelu"``
  alone means a = -1, b = 1, the absolute value). With :math:`\theta = \arccos\rho`,
  :math:`\check\phi = \frac{(a-b)^2}{2\pi}\sqrt{q_{11}q_{22}}\sin\theta +
  (\frac{a^2+b^2}{2} - \frac{(a-b)^2}{2\pi}\theta) q_{12}` and
  :math:`\check{\phi'} = \frac{a^2+b^2}{2} - \frac{(a-b)^2}{2\pi}\theta`.
* ``erf(a, b, c)`` = :math:`a\,\mathrm{erf}(bx) + c`:
  :math:`\check\phi = a^2\frac{2}{\pi}\arcsin\frac{2b^2q_{12}}{\sqrt{(1+2b^2q_{11})(1+2b^2q_{22})}} + c^2`.
* ``sin(a, b, c)`` = :math:`a\sin(bx + c)`:
  :math:`\check\phi = \frac{a^2}{2}e^{-b^2(q_{11}+q_{22})/2}(e^{b^2q_{12}} - e^{-b^2q_{12}}\cos 2c)`.
* ``gelu`` = :math:`x\Phi(x)` (Tsuchida et al. 2020, as NT's ``Gelu``).
* ``tanh`` and ``sigmoid`` = :math:`1/(1 + e^{-x})`: Gaussian scale mixtures of erf
  (:mod:`resgp.core.scale_mixture`), sums of erf's closed forms over a 31-node rule, 5e-16
  relative in the dual and the derivative dual at every variance.

Everything else (any callable via :func:`from_callable`) is integrated by
:mod:`resgp.core.quadrature`, per entry: the Mehler series
:math:`\sum_{k<K} c_k(q_{11}) c_k(q_{22}) \rho^k` (K = ``order`` terms, default 256) where both
variances are at most the activation's ``mehler_max`` (the largest variance at which the
series' tail meets the target, found once per activation), and a graded composite
Gauss-Legendre product rule beyond it. Accuracy (tested against mpmath and adaptive
quadrature, tests/test_exactness.py): 1e-10 relative in the dual and the derivative dual for
every variance from 1e-4 to 1e4 when the callable is smooth except at 0 (a RuntimeWarning from
:func:`from_callable` otherwise). See docs/theory.md, "Activations and duals".
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

from . import quadrature, scale_mixture
from .x64 import float64

# the Parameters section of every dual E[f(u) g(v)] (u, v) ~ N(0, [[q11, q12], [q12, q22]]):
# docstrings write "{dual parameters}" in its place (dual_parameters fills it in)
DUAL_PARAMETERS = r"""    Parameters
    ----------
    q11 : broadcastable float64 array
        Variances of u (:math:`\ge 0`).
    q22 : broadcastable float64 array
        Variances of v (:math:`\ge 0`).
    q12 : broadcastable float64 array
        Covariances of u and v, :math:`|q_{12}| \le \sqrt{q_{11}q_{22}}`.
"""


def dual_parameters(*functions):
    """Write :data:`DUAL_PARAMETERS` into the docstrings of ``functions`` (in place)."""
    for f in functions:
        f.__doc__ = f.__doc__.replace("    {dual parameters}\n", DUAL_PARAMETERS)


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation known to resgp.

    Parameters
    ----------
    name : str
        The string users pass (or a description).
    dual : callable
        :math:`(q_{11}, q_{22}, q_{12}) \\mapsto E[\\phi(u)\\phi(v)]`, elementwise on arrays
        of variances and covariances (in the units of :math:`q`).
    homogeneous : bool
        True when :math:`\\phi(cx) = c\\,\\phi(x)` for c > 0; the infinite-depth flow then
        reduces to a flow of the angle alone.
    derivative_dual : callable or None, default=None
        :math:`E[\\phi'(u)\\phi'(v)]`, same arguments (needed by the NTK; None: no NTK).
    fn : callable or None, default=None
        :math:`\\phi` itself, elementwise on ``jax.numpy`` arrays (finite networks).
    spec : tuple, default=()
        ``(kind, parameters)``, how :mod:`resgp.nt` builds the matching stax layer.
    analytic : bool, default=True
        True when the duals are analytic in the covariance on the whole closed correlation
        range (the infinite-depth flow map may then be tabulated); False for duals with a
        branch point at :math:`\\rho = \\pm 1` (rectified monomials, the sign function).
    quadrature : tuple or None, default=None
        ``(fn, derivative, target)`` for activations integrated numerically (None for closed
        forms).
    mehler_max : float, default=inf
        The largest variance at which their Mehler series meets the target
        (:mod:`resgp.core.quadrature`; inf for closed forms).
    variance_duals : callable or None, default=None
        q -> (E[phi(u)^2], E[phi'(u)^2]) at u ~ N(0, q) by a 1-D rule (None: the duals at
        (q, q, q)).
    order : int or None, default=None
        The number of terms of its Mehler series in :math:`\\rho` (tanh, the sigmoid,
        callables; :func:`at_order`, :func:`series_for`); None for closed forms.
    """

    name: str
    dual: Callable
    homogeneous: bool
    derivative_dual: Callable | None = None
    fn: Callable | None = None
    spec: tuple = ()
    analytic: bool = True
    quadrature: tuple | None = None
    mehler_max: float = math.inf
    variance_duals: Callable | None = None
    order: int | None = None

    def __reduce__(self):
        """Pickle by what rebuilds it: the name of a built-in or parameterised activation
        (e.g. ``"leaky_relu(slope=0.2)"``), or a callable's function by reference (its module
        and name; ``jax.numpy`` functions included); activations built by hand pickle their
        fields."""
        try:
            if get_activation(self.name) is self:
                return get_activation, (self.name,)
        except (ValueError, TypeError):
            pass
        if self.spec and self.spec[0] == "numerical" and self.quadrature is not None:
            fn, order, derivative = self.spec[1]
            return _rebuild_callable, (_by_reference(fn), self.name, order,
                                       None if derivative is None else _by_reference(derivative))
        return object.__reduce__(self)

    def __repr__(self):
        return f"Activation({self.name!r})"


def _correlation(q11, q22, q12):
    """sqrt(q11 q22) and the clipped correlation q12 / sqrt(q11 q22) (0 where a variance is 0)."""
    scale = jnp.sqrt(q11) * jnp.sqrt(q22)  # not sqrt(q11 * q22): no overflow for huge inputs
    safe = jnp.where(scale > 0, scale, 1.0)
    return scale, jnp.where(scale > 0, _clip_unit(q12 / safe), 0.0)


_clip_unit = quadrature.clip_unit


def _two_product(x, y):
    """x y = p + e exactly (Dekker's error-free product, by Veltkamp splitting)."""
    def split(z):
        t = 134217729.0 * z  # 2^27 + 1
        hi = t - (t - z)
        return hi, z - hi

    p = x * y
    (xh, xl), (yh, yl) = split(x), split(y)
    return p, ((xh * yh - p) + xh * yl + xl * yh) + xl * yl


def _scaled_gap(q11, q22, q12):
    r"""(g, s): :math:`q_{11}q_{22} - q_{12}^2 = g / s^2` with a power of two s (exact scaling),
    the products error-free (:func:`_two_product`): accurate to rounding however nearly parallel
    the pair and however large or small its variances (no overflow, no underflow in g). g >= 0;
    exactly 0 when :math:`|q_{12}| \ge \sqrt{q_{11}}\sqrt{q_{22}}`."""
    m = jnp.maximum(q11, q22)
    _, exponent = jnp.frexp(jnp.where(m > 0, m, 1.0))
    scale = jnp.ldexp(jnp.ones_like(m), -exponent)
    a, b, c = q11 * scale, q22 * scale, q12 * scale
    (p1, e1), (p2, e2) = _two_product(a, b), _two_product(c, c)
    gap = (p1 - p2) + (e1 - e2)
    parallel = jnp.abs(q12) >= jnp.sqrt(q11) * jnp.sqrt(q22)
    return jnp.where(parallel, 0.0, jnp.maximum(gap, 0.0)), scale


@jax.custom_jvp
def gap(q11, q22, q12):
    r""":math:`q_{11}q_{22} - q_{12}^2 \ge 0`, accurate to rounding (:func:`_scaled_gap`); its
    derivative is that of the polynomial, :math:`q_{22}dq_{11} + q_{11}dq_{22} -
    2q_{12}dq_{12}` (also at parallel pairs, where the value is snapped to 0)."""
    g, scale = _scaled_gap(q11, q22, q12)
    return g / scale / scale


@gap.defjvp
def _gap_jvp(primals, tangents):
    q11, q22, q12 = primals
    t11, t22, t12 = tangents
    return gap(q11, q22, q12), q22 * t11 + q11 * t22 - 2.0 * q12 * t12


def _angle(q11, q22, q12):
    """theta = angle between u and v: arctan2(sqrt(q11 q22 - q12^2), q12) from the exact gap
    (:func:`_scaled_gap`): accurate to rounding for nearly parallel pairs (theta ~ 1e-7 keeps
    its digits), no overflow for huge variances; exactly 0 when |q12| >= sqrt(q11) sqrt(q22)
    (how the flows snap parallel pairs, also for unequal variances); pi/2 where a variance
    is 0."""
    g, scale = _scaled_gap(q11, q22, q12)
    both = (q11 > 0) & (q22 > 0)
    return jnp.where(both, jnp.arctan2(jnp.sqrt(g), q12 * scale), 0.5 * jnp.pi)


_smooth_angle = jax.custom_jvp(_angle)


@_smooth_angle.defjvp
def _smooth_angle_jvp(primals, tangents):
    r""":math:`d\theta = -d\rho / \sin\theta`, with :math:`d\rho = dq_{12}/\sqrt{q_{11}q_{22}} -
    \rho\,(dq_{11}/q_{11} + dq_{22}/q_{22})/2`; 0 where :math:`\sin\theta = 0` or a variance is 0
    (identical inputs stay identical along the perturbations hyperparameters make, so the
    derivative there is the limit 0 instead of autodiff's 0 * inf = NaN)."""
    q11, q22, q12 = primals
    t11, t22, t12 = tangents
    theta = _angle(q11, q22, q12)
    scale, rho = _correlation(q11, q22, q12)
    sin = jnp.sin(theta)
    ok = (scale > 0) & (sin > 0)
    one = lambda x: jnp.where(ok, x, 1.0)  # noqa: E731
    d_rho = t12 / one(scale) - 0.5 * rho * (t11 / one(q11) + t22 / one(q22))
    return theta, jnp.where(ok, -d_rho / one(sin), 0.0)


def _family_constants(a, b):
    r"""(cross, mean) of :math:`a\min(x,0) + b\max(x,0)`: :math:`(a-b)^2/2\pi`, :math:`(a^2+b^2)/2`."""
    return (a - b) ** 2 / (2.0 * math.pi), (a * a + b * b) / 2.0


def _relu_family(cross: float, mean: float):
    r"""Dual and derivative dual of :math:`a\min(x,0) + b\max(x,0)` with
    ``cross`` :math:`= (a-b)^2/2\pi`, ``mean`` :math:`= (a^2+b^2)/2`:
    :math:`\check\phi = c\sqrt{q_{11}q_{22}}\sin\theta + (m - c\theta) q_{12}`,
    :math:`\check{\phi'} = m - c\theta`. The dual's JVP is written out,
    :math:`\partial_{q_{12}}\check\phi = \check{\phi'}`, :math:`\partial_{q_{11}}\check\phi =
    \tfrac{c}{2}\sqrt{q_{22}/q_{11}}\sin\theta`, finite everywhere (autodiff through arccos
    gives NaN at :math:`\rho = \pm 1`: every diagonal entry)."""

    def derivative_dual(q11, q22, q12):
        return mean - cross * _smooth_angle(q11, q22, q12)

    @jax.custom_jvp
    def dual(q11, q22, q12):
        scale, rho = _correlation(q11, q22, q12)
        return cross * scale * jnp.sqrt(1.0 - rho * rho) + (mean - cross * jnp.arccos(rho)) * q12

    @dual.defjvp
    def _dual_jvp(primals, tangents):
        q11, q22, q12 = primals
        t11, t22, t12 = tangents
        scale, _ = _correlation(q11, q22, q12)
        half_sin = 0.5 * cross * jnp.sin(_angle(q11, q22, q12))
        positive = scale > 0
        s11, s22 = jnp.sqrt(q11), jnp.sqrt(q22)
        d11 = jnp.where(positive, s22 / jnp.where(positive, s11, 1.0) * half_sin, 0.0)
        d22 = jnp.where(positive, s11 / jnp.where(positive, s22, 1.0) * half_sin, 0.0)
        d12 = mean - cross * _angle(q11, q22, q12)
        return dual(q11, q22, q12), d11 * t11 + d22 * t22 + d12 * t12

    return dual, derivative_dual


relu_dual, relu_derivative_dual = _relu_family(*_family_constants(0.0, 1.0))
relu_dual.__doc__ = r"""Arc-cosine kernel of degree 1 (Cho & Saul 2009):
    :math:`\sqrt{q_{11}q_{22}}\,(\sin\theta + (\pi-\theta)\cos\theta) / 2\pi`; the derivative
    dual is :math:`E[\mathbb 1(u>0)\mathbb 1(v>0)] = (\pi - \theta) / 2\pi`.

    {dual parameters}

    Returns
    -------
    array
        The expectation, elementwise, in the units of :math:`q`.
    """
relu_derivative_dual.__doc__ = r"""The ReLU derivative dual :math:`E[\mathbb 1(u>0)\mathbb 1(v>0)] =
    (\pi - \theta) / 2\pi` (the arc-cosine kernel of order 0, for the NTK).

    {dual parameters}

    Returns
    -------
    array
        Dimensionless, in [0, 1/2].
    """


RELU = Activation("relu", relu_dual, homogeneous=True, derivative_dual=relu_derivative_dual,
                  fn=jax.nn.relu, spec=("abrelu", (0.0, 1.0)))


# ----------------------------------------------------------------------------- closed forms


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def relu_family(act):
    r"""(cross c, mean m) of a member :math:`a\min(x,0) + b\max(x,0)` of the ReLU family
    (:math:`c = (a-b)^2/2\pi`, :math:`m = (a^2+b^2)/2`), None for any other activation."""
    if not (act.homogeneous and act.spec and act.spec[0] == "abrelu"):
        return None
    return _family_constants(*act.spec[1])


@functools.lru_cache(maxsize=None)
def _abrelu(a: float, b: float, name: str) -> Activation:
    dual, derivative_dual = _relu_family(*_family_constants(a, b))

    def fn(x):
        return a * jnp.minimum(x, 0.0) + b * jnp.maximum(x, 0.0)

    return Activation(name, dual, True, derivative_dual, fn, ("abrelu", (a, b)))


def abrelu(a: float = -1.0, b: float = 1.0) -> Activation:
    """:math:`\\phi(x) = a\\min(x, 0) + b\\max(x, 0)` (NT's ``ABRelu(a, b)``); default :math:`|x|`.

    Parameters
    ----------
    a : float, default=-1.0
        Slope for negative inputs.
    b : float, default=1.0
        Slope for positive inputs.

    Returns
    -------
    Activation
        The activation (``RELU`` itself for a = 0, b = 1).
    """
    a, b = _real("a", a), _real("b", b)
    if (a, b) == (0.0, 1.0):
        return RELU
    return _abrelu(a, b, f"abrelu(a={a}, b={b})")


def leaky_relu(slope: float = 0.01) -> Activation:
    """:math:`\\phi(x) = \\max(x, 0) + s\\min(x, 0)` (NT's ``LeakyRelu(s)``).

    Parameters
    ----------
    slope : float, default=0.01
        s, the slope for negative inputs (0: ReLU, the ``RELU`` object).

    Returns
    -------
    Activation
        The activation.
    """
    slope = _real("slope", slope)
    return RELU if slope == 0.0 else _abrelu(slope, 1.0, f"leaky_relu(slope={slope})")


@functools.lru_cache(maxsize=None)
def _erf(a: float, b: float, c: float) -> Activation:
    b2 = b * b

    def dual(q11, q22, q12):
        # one square root per input, not per pair (q11 (N, 1) and q22 (1, M) broadcast)
        den = jnp.sqrt(1.0 + 2.0 * b2 * q11) * jnp.sqrt(1.0 + 2.0 * b2 * q22)
        return a * a * (2.0 / jnp.pi) * jnp.arcsin(jnp.clip(2.0 * b2 * q12 / den, -1.0, 1.0)) + c * c

    def derivative_dual(q11, q22, q12):
        # (1 + 2b^2 q11)(1 + 2b^2 q22) - 4b^4 q12^2, the determinant part exact (no cancellation
        # for large, nearly parallel variances)
        den = 1.0 + 2.0 * b2 * (q11 + q22) + 4.0 * b2 * b2 * gap(q11, q22, q12)
        return a * a * b2 * (4.0 / jnp.pi) / jnp.sqrt(den)

    def fn(x):
        return a * jax.scipy.special.erf(b * x) + c

    name = "erf" if (a, b, c) == (1.0, 1.0, 0.0) else f"erf(a={a}, b={b}, c={c})"
    return Activation(name, dual, False, derivative_dual, fn, ("erf", (a, b, c)))


def erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """:math:`\\phi(x) = a\\,\\mathrm{erf}(bx) + c` (NT's ``Erf(a, b, c)``).

    Parameters
    ----------
    a : float, default=1.0
        Output scale.
    b : float, default=1.0
        Input scale.
    c : float, default=0.0
        Output shift.

    Returns
    -------
    Activation
        The activation (closed-form duals).
    """
    return _erf(_real("a", a), _real("b", b), _real("c", c))


@functools.lru_cache(maxsize=None)
def _sin(a: float, b: float, c: float) -> Activation:
    b2, a2, sin2c = b * b, a * a, math.sin(c) ** 2

    def parts(q11, q22, q12):
        # e^m sinh(x), e^m cosh(x), e^(m - x) with m = -b^2 (q11 + q22) / 2, x = b^2 q12, |x| <= -m:
        # sinh(x) itself below |x| = 1 (no cancellation at tiny variances), (e^(m+x) - e^(m-x)) / 2
        # above (no overflow of sinh at large ones; every exponent <= 0)
        mean, x = -0.5 * b2 * (q11 + q22), b2 * q12
        up, down = jnp.exp(mean + x), jnp.exp(mean - x)
        small = jnp.abs(x) < 1.0
        sinh = jnp.where(small, jnp.exp(mean) * jnp.sinh(jnp.where(small, x, 0.0)),
                         0.5 * (up - down))
        return sinh, 0.5 * (up + down), down

    def dual(q11, q22, q12):
        # a^2 E[sin(bu + c) sin(bv + c)] = a^2 e^m (sinh x + sin^2 c e^(-x))
        sinh, _, down = parts(q11, q22, q12)
        return a2 * (sinh + sin2c * down)

    def derivative_dual(q11, q22, q12):
        # a^2 b^2 E[cos(bu + c) cos(bv + c)] = a^2 b^2 e^m (cosh x - sin^2 c e^(-x))
        _, cosh, down = parts(q11, q22, q12)
        return a2 * b2 * (cosh - sin2c * down)

    def fn(x):
        return a * jnp.sin(b * x + c)

    name = "sin" if (a, b, c) == (1.0, 1.0, 0.0) else f"sin(a={a}, b={b}, c={c})"
    return Activation(name, dual, False, derivative_dual, fn, ("sin", (a, b, c)))


def sin(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Activation:
    """:math:`\\phi(x) = a\\sin(bx + c)` (NT's ``Sin(a, b, c)``).

    Parameters
    ----------
    a : float, default=1.0
        Output scale.
    b : float, default=1.0
        Frequency (input scale).
    c : float, default=0.0
        Phase, in radians.

    Returns
    -------
    Activation
        The activation (closed-form duals).
    """
    return _sin(_real("a", a), _real("b", b), _real("c", c))


def _gelu_parts(q11, q22, q12):
    prod, prod1 = q11 * q22, (1.0 + q11) * (1.0 + q22)
    delta2 = 1.0 + q11 + q22 + gap(q11, q22, q12)  # (1 + q11)(1 + q22) - q12^2, no cancellation
    delta = jnp.sqrt(delta2)
    angle = jnp.arctan2(q12, delta)
    return prod, prod1, delta2, delta, angle


def gelu_dual(q11, q22, q12):
    r"""GELU :math:`x\Phi(x)` (Tsuchida et al. 2020): with :math:`\Delta^2 =
    (1+q_{11})(1+q_{22}) - q_{12}^2`, :math:`\check\phi = q_{12}/4 + [ (q_{12}^2 +
    q_{11}q_{22}\Delta^2) / ((1+q_{11})(1+q_{22})\Delta) + q_{12}\arctan(q_{12}/\Delta)] / 2\pi`.

    {dual parameters}

    Returns
    -------
    array
        The expectation, elementwise, in the units of :math:`q`.
    """
    prod, prod1, delta2, delta, angle = _gelu_parts(q11, q22, q12)
    return 0.25 * q12 + ((q12 * q12 + prod * delta2) / (prod1 * delta) + q12 * angle) / (2.0 * jnp.pi)


def gelu_derivative_dual(q11, q22, q12):
    """E[GELU'(u) GELU'(v)] (the same closed form as NT's ``Gelu`` NTK).

    {dual parameters}

    Returns
    -------
    array
        The expectation, elementwise, in the units of :math:`q`.
    """
    prod, prod1, delta2, delta, angle = _gelu_parts(q11, q22, q12)
    first = (1.0 / delta2 + (1.0 - prod) / prod1 + 1.0) * q12 / delta / (2.0 * jnp.pi)
    return first + 0.25 + angle / (2.0 * jnp.pi)


GELU = Activation("gelu", gelu_dual, False, gelu_derivative_dual,
                  functools.partial(jax.nn.gelu, approximate=False), ("gelu", ()))


# ----------------------------------------------------------------------------- quadrature


DEFAULT_ORDER = quadrature.DEFAULT_ORDER
MAX_ORDER = 1024
CALLABLE_TARGET = 3e-11  # relative Mehler tail at which the graded rule takes over (documented
# accuracy of callables: 1e-10)


def _check_order(order, cap=None):
    cap = MAX_ORDER if cap is None else cap
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 2:
        raise ValueError(f"order must be an integer >= 2 (Hermite terms), got {order!r}")
    if order > cap:
        raise ValueError(f"order must be <= {cap} (Mehler terms), got {order}")
    return int(order)


_PROBE = np.linspace(-4.0, 4.0, 9)


def _check_callable(fn, what: str):
    """Probe ``fn`` on a small float64 array: same shape out, finite values, traceable by jit."""
    with float64():
        probe = jnp.asarray(_PROBE)
        try:
            out = fn(probe)
        except Exception as exc:
            raise ValueError(f"{what} raised {type(exc).__name__} on a float64 array: {exc}") from exc
        out_shape = np.shape(out)
        if out_shape != probe.shape:
            raise ValueError(
                f"{what} must act elementwise: on an array of shape {probe.shape} it returned "
                f"shape {out_shape}"
            )
        values = np.asarray(out, dtype=np.float64) if np.asarray(out).dtype.kind in "biuf" else None
        if values is None:
            raise ValueError(f"{what} must return real numbers, got dtype {np.asarray(out).dtype}")
        if not np.isfinite(values).all():
            bad = "NaN" if np.isnan(values).any() else "inf"
            raise ValueError(f"{what} returned {bad} on inputs in [-4, 4]: it must be finite")
        # jit a lambda, not fn: jax 0.10 segfaults on the second jit of an object that takes
        # no weak references (a NumPy ufunc such as np.tanh)
        try:
            jax.jit(lambda x: fn(x))(probe)
        except Exception as exc:
            raise TypeError(
                f"{what} must be traceable by jax.jit (write it with jax.numpy): {exc}"
            ) from exc


PROBE_REACH = 50.0  # the quadrature rules sample phi where |x| <= about 50 sqrt(q)


def non_finite_point(act: Activation, q_top: float):
    r"""Where a quadrature activation (or its derivative) is NaN or infinite on the range its
    duals sample at variances up to ``q_top`` (:math:`|x| \le` PROBE_REACH :math:`\sqrt{q}`,
    4001 points, and powers of ten up to that reach): ``(x, "NaN" or "inf", "it" or
    "its derivative")``, or None (also for closed forms). A diagnosis for failed flows, not a proof
    of finiteness."""
    if act.quadrature is None or not np.isfinite(q_top) or q_top <= 0:
        return None
    fn, derivative, _ = act.quadrature
    deriv = derivative if derivative is not None else jnp.vectorize(jax.grad(fn))
    reach = PROBE_REACH * math.sqrt(q_top)
    grid = np.linspace(-reach, reach, 4001)
    powers = 10.0 ** np.arange(-300.0, math.log10(reach) + 1.0)
    x = np.concatenate([grid, powers, -powers])
    with float64():
        for what, f in (("it", fn), ("its derivative", deriv)):
            values = np.asarray(f(jnp.asarray(x)), dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                at = x[bad][np.argmin(np.abs(x[bad]))]
                return float(at), "NaN" if np.isnan(values[bad]).any() else "inf", what
    return None


def non_finite_message(act: Activation, q_top: float):
    """A clear error message when :func:`non_finite_point` finds a point, else None."""
    found = non_finite_point(act, q_top)
    if found is None:
        return None
    x, kind, what = found
    return (f"activation {act.name!r}: {what} is {kind} at x = {x:.4g}, where its duals "
            f"sample it (|x| up to about {PROBE_REACH:g} sqrt(q) = "
            f"{PROBE_REACH * math.sqrt(q_top):.3g} at the variances q <= {q_top:.3g} these "
            f"inputs reach); it must be finite on the whole real line (e.g. clip its argument)")


def _check_graded(fn, deriv, label):
    """Warn when the graded rule may not reach 1e-10 for a callable: its 1-D rule for
    E[f(u)^2] and E[f'(u)^2] against the same rule on twice the panels, at variances from
    0.01 to 1e4, and the same for E[f(u)] (an error estimate: smooth functions agree to
    round-off)."""
    import warnings

    q = jnp.asarray([0.01, 1.0, 25.0, 1e4])
    with float64():
        one = lambda x: jnp.ones_like(x)  # noqa: E731
        for name, f in (("dual", fn), ("derivative dual", deriv)):
            scale = np.asarray(quadrature.gaussian_square(f, f, refine=2)(q))
            err = 0.0
            for g in (f, one):  # E[f^2] and E[f]: a kink of f alone may square away
                coarse = np.asarray(quadrature.gaussian_square(f, g)(q))
                fine = np.asarray(quadrature.gaussian_square(f, g, refine=2)(q))
                err = max(err, float(np.max(np.abs(coarse - fine) / np.sqrt(
                    np.where(scale > 0, scale, 1.0)) / np.where(g is one, 1.0, np.sqrt(
                        np.where(scale > 0, scale, 1.0))))))
            if not err <= 1e-11:
                warnings.warn(
                    f"activation {label!r}: the graded quadrature of its {name} is only accurate "
                    f"to about {err:.1e} (relative), not the documented 1e-10: is it smooth "
                    "except at 0? (kinks and jumps elsewhere converge slowly)",
                    RuntimeWarning, stacklevel=4)


@functools.lru_cache(maxsize=None)
def _from_callable(fn, name, order, derivative, target):
    deriv = derivative if derivative is not None else jnp.vectorize(jax.grad(fn))
    mehler_max = quadrature.mehler_range((fn, deriv), order, target)
    return Activation(name, quadrature.dual(fn, fn, order, mehler_max), False,
                      quadrature.dual(deriv, deriv, order, mehler_max), fn,
                      ("numerical", (fn, order, derivative)), True,
                      quadrature=(fn, derivative, target), mehler_max=mehler_max,
                      variance_duals=_variance_duals(fn, deriv), order=order)


@functools.lru_cache(maxsize=None)
def _variance_duals(fn, deriv):
    square, square_d = quadrature.gaussian_square(fn, fn), quadrature.gaussian_square(deriv, deriv)
    return lambda q: (square(q), square_d(q))


def at_order(act: Activation, order: int) -> Activation:
    """The same series activation with ``order`` Mehler terms (itself for closed forms)."""
    if act.order is None or order == act.order:
        return act
    if act.quadrature is None:  # tanh, the sigmoid
        return _mixture(act.spec[0], _check_order(order, MIXTURE_MAX_ORDER))
    fn, derivative, target = act.quadrature
    return _from_callable(fn, act.name, _check_order(order), derivative, target)


@functools.lru_cache(maxsize=None)
def series_only(act: Activation) -> Activation:
    """``act`` with its Mehler series alone (no graded rule or direct sum beyond
    ``mehler_max``): for callers that keep every variance below ``mehler_max`` themselves (the
    flow tables, the engine's per-entry rules); its variances use the same series at (q, q, q),
    so that parallel pairs stay exactly on the variances' flow; itself for closed forms."""
    if act.order is None:
        return act
    if act.quadrature is None:
        value, derivative = _mixture_series(act.spec[0], act.order)
        return Activation(act.name, value, False, derivative, act.fn, act.spec, True,
                          mehler_max=act.mehler_max, order=act.order,
                          variance_duals=act.variance_duals)
    fn, derivative, _ = act.quadrature
    deriv = derivative if derivative is not None else jnp.vectorize(jax.grad(fn))
    return Activation(act.name, quadrature.mehler(fn, fn, act.order), False,
                      quadrature.mehler(deriv, deriv, act.order), fn, act.spec, True,
                      quadrature=act.quadrature, mehler_max=act.mehler_max, order=act.order)


SERIES_ORDERS = (256, 512, 1024)  # the Mehler orders a caller may switch to (series_for)
# tanh and the sigmoid: coefficients in closed form, so longer series stay cheap (4096 terms:
# variances up to 25; the direct sum costs about as much as 8192 terms per pair); few orders,
# since each is one more compiled program wherever the engine picks rules per entry
MIXTURE_ORDERS = (256, 1024, 4096)
SERIES_MARGIN = 1.05  # over the largest variance: an ODE's trial stages may overshoot a bit


def series_orders(act: Activation):
    """The Mehler orders ``act`` may switch to, its own first (ascending); () for closed
    forms."""
    if act.order is None:
        return ()
    ladder = SERIES_ORDERS if act.quadrature is not None else MIXTURE_ORDERS
    return tuple(sorted({act.order, *[o for o in ladder if o > act.order]}))


def series_for(act: Activation, q_top: float):
    """``act`` as the Mehler series alone, at the smallest order of :func:`series_orders`
    whose ``mehler_max`` covers ``SERIES_MARGIN * q_top``; None when none does (then only the
    graded rule or the direct sum is accurate there); itself for closed forms."""
    if act.order is None:
        return act
    if not np.isfinite(q_top):
        return None
    for order in series_orders(act):
        candidate = at_order(act, order)
        if candidate.mehler_max >= SERIES_MARGIN * q_top:
            return series_only(candidate)
    return None


# ----------------------------------------------------------------------------- scale mixtures

MIXTURE_MAX_ORDER = 4096


def _mixture_series(kind, order):
    """The Mehler series (dual, derivative dual) of tanh or the sigmoid with ``order`` terms."""
    return tuple(scale_mixture.scaled(kind, scale_mixture.series(order, d), d)
                 for d in (False, True))


@functools.lru_cache(maxsize=None)
def _mixture(kind: str, order: int) -> Activation:
    """tanh or the sigmoid (``kind``) with a Mehler series of ``order`` terms up to its range
    and the direct double sum beyond (:mod:`resgp.core.scale_mixture`), per entry."""
    mehler_max = scale_mixture.series_range(order) * scale_mixture.variance_scale(kind)
    duals = [quadrature.per_entry(part, scale_mixture.scaled(kind, scale_mixture.direct(d), d),
                                  mehler_max)
             for d, part in zip((False, True), _mixture_series(kind, order))]
    fn = jnp.tanh if kind == "tanh" else jax.nn.sigmoid
    return Activation(kind, duals[0], False, duals[1], fn, (kind, ()), True,
                      mehler_max=mehler_max, order=order,
                      variance_duals=scale_mixture.scaled_variance_duals(kind, order))


def from_callable(fn: Callable, *, name: str | None = None, order: int = DEFAULT_ORDER,
                  derivative: Callable | None = None) -> Activation:
    r"""An activation from an elementwise ``jax.numpy`` function, duals by quadrature.

    Accuracy: 1e-10 relative in the dual and the derivative dual at every variance; a
    RuntimeWarning says when the graded rule's error estimate for ``fn`` misses it.

    Parameters
    ----------
    fn : callable
        :math:`\phi`, elementwise on float64 arrays, traceable by ``jax.jit``, smooth except
        possibly at 0; checked on a small probe array (ValueError for NaN/inf output, a wrong
        shape or an exception; TypeError when it cannot be traced by ``jax.jit``, e.g. NumPy
        functions such as ``np.tanh``).
    name : str or None, default=None
        The activation's name (None: ``"callable(<fn's name>)"``).
    order : int, default=DEFAULT_ORDER
        K, the number of Mehler terms used where their tail meets the target
        (:mod:`resgp.core.quadrature`); the graded rule covers larger variances.
    derivative : callable or None, default=None
        :math:`\phi'` for the NTK (None: ``jax.grad(fn)``).

    Returns
    -------
    Activation
        The activation, duals by quadrature.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    order = _check_order(order)
    label = name if name is not None else f"callable({getattr(fn, '__name__', repr(fn))})"
    _check_callable(fn, f"activation {label!r}")
    if derivative is not None:
        if not callable(derivative):
            raise TypeError(f"derivative must be callable, got {type(derivative).__name__}")
        _check_callable(derivative, f"derivative of activation {label!r}")
    act = _from_callable(fn, label, order, derivative, CALLABLE_TARGET)
    if act not in _CHECKED:
        _CHECKED.add(act)
        _check_graded(fn, derivative if derivative is not None else jnp.vectorize(jax.grad(fn)),
                      label)
    return act


_CHECKED = set()


tanh_dual, tanh_derivative_dual = scale_mixture.tanh_dual, scale_mixture.tanh_derivative_dual
dual_parameters(tanh_dual, tanh_derivative_dual)
TANH = _mixture("tanh", DEFAULT_ORDER)
SIGMOID = _mixture("sigmoid", DEFAULT_ORDER)


# ----------------------------------------------------------------------------- lookup

# the rectified monomials and the sign function (arc-cosine kernels) live in their own module,
# which imports the angle helpers above: imported here, after everything it needs is defined
dual_parameters(relu_dual, relu_derivative_dual, gelu_dual, gelu_derivative_dual)

from .arc_cosine import (  # noqa: E402, F401  (re-exported by resgp.activations)
    REQU,
    SIGN,
    STEP,
    rectified_monomial,
    requ_derivative_dual,
    requ_dual,
    sign_dual,
    step_dual,
)

ACTIVATIONS = {
    "relu": RELU,
    "leaky_relu": leaky_relu(),
    "abrelu": abrelu(),
    "erf": erf(),
    "sin": sin(),
    "gelu": GELU,
    "tanh": TANH,
    "sigmoid": SIGMOID,
    "step": STEP,
    "requ": REQU,
    "sign": SIGN,
}
FACTORIES = {"leaky_relu": leaky_relu, "abrelu": abrelu, "erf": erf, "sin": sin,
             "rectified_monomial": rectified_monomial}


class _Reference:
    """A function by its module and qualified name (for pickling callables)."""

    _MODULES = ("jax.numpy", "jax.nn", "jax.scipy.special")

    def __init__(self, fn):
        self.fn = fn
        self.where = None
        name = getattr(fn, "__qualname__", getattr(fn, "__name__", None))
        if name is None or "<" in name:
            return
        for module in (getattr(fn, "__module__", None),) + self._MODULES:
            if module is None:
                continue
            try:
                found = functools.reduce(getattr, name.split("."), importlib.import_module(module))
            except (ImportError, AttributeError):
                continue
            if found is fn:
                self.where = (module, name)
                return

    def __reduce__(self):
        if self.where is None:  # pickle's own error for lambdas and local functions
            return _identity, (self.fn,)
        return _resolve, self.where


def _identity(x):
    return x


def _resolve(module, name):
    return functools.reduce(getattr, name.split("."), importlib.import_module(module))


def _by_reference(fn):
    return _Reference(fn)


def clone_parameters(params: dict) -> dict:
    """scikit-learn's clone of parameters, except callables, kept as they are: a deep copy of a
    jitted ``jax.numpy`` function is a new object without its name (it could not pickle by
    reference, and every copy would compile its own duals)."""
    import copy

    return {k: v if callable(v) else copy.deepcopy(v) for k, v in params.items()}


def picklable_state(state: dict) -> dict:
    """``state`` (an object's ``__dict__``) with plain callables (a user's activation, e.g.
    ``jnp.tanh``) pickled by reference: for the scikit-learn kernels and estimators, which
    keep their parameters as given."""
    return {k: _Reference(v) if callable(v) and not isinstance(v, (Activation, type)) else v
            for k, v in state.items()}


def _rebuild_callable(fn, name, order, derivative):
    return from_callable(fn, name=name, order=order, derivative=derivative)


def _parse_call(text):
    """``"factory(1, key=2.0)"`` -> (factory, args, kwargs) for a name of :data:`FACTORIES`
    with literal arguments, else None."""
    import ast

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in FACTORIES):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except ValueError:
        return None
    return FACTORIES[node.func.id], args, kwargs


def get_activation(activation) -> Activation:
    """An :class:`Activation` from a name (case-insensitive: a built-in such as ``"tanh"``, or
    a parameterised one as its ``name`` shows it, e.g. ``"leaky_relu(slope=0.2)"``,
    ``"erf(a=1.0, b=2.0, c=0.0)"``), an Activation, or a callable (wrapped by
    :func:`from_callable` with its defaults).

    Parameters
    ----------
    activation : str, Activation or callable
        What to look up or wrap.

    Returns
    -------
    Activation
        The activation (the same object for the same name).
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        found = ACTIVATIONS.get(activation.lower())
        if found is not None:
            return found
        call = _parse_call(activation)
        if call is not None:
            factory, args, kwargs = call
            try:
                return factory(*args, **kwargs)
            except TypeError as exc:
                raise ValueError(f"activation {activation!r}: {exc}") from exc
        raise ValueError(
            f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}; or pass an "
            "Activation (e.g. resgp.activations.leaky_relu(0.1)) or a jax.numpy callable"
        )
    if callable(activation):
        return from_callable(activation)
    raise TypeError(
        f"activation must be a name, one of {sorted(ACTIVATIONS)}, an Activation or a callable, "
        f"got {type(activation).__name__}"
    )
