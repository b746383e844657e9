r"""Rectified monomials and the sign function: closed-form duals (Cho & Saul 2009).

The rectified monomial of order :math:`n \ge 0` is :math:`\phi_n(x) = \max(0, x)^n`
(:math:`n = 0`: the Heaviside step :math:`\mathbb 1(x > 0)`; :math:`n = 1`: ReLU;
:math:`n = 2`: ReQU). With :math:`\theta \in [0, \pi]` the angle between the two
pre-activations (:math:`\cos\theta = \rho = q_{12}/\sqrt{q_{11}q_{22}}`), its dual is the
arc-cosine kernel of order n,

.. math:: \check\phi_n(q_{11}, q_{22}, q_{12}) = E[\phi_n(u)\phi_n(v)]
          = \frac{(q_{11}q_{22})^{n/2}}{2\pi} J_n(\theta),

    J_0 = \pi - \theta, \quad J_1 = \sin\theta + (\pi-\theta)\cos\theta, \quad
    J_2 = 3\sin\theta\cos\theta + (\pi-\theta)(1 + 2\cos^2\theta),

    J_n = (2n-1)\cos\theta\, J_{n-1} + (n-1)^2\sin^2\theta\, J_{n-2} \quad (n \ge 2),

and, by Price's theorem (:math:`\phi_n' = n\,\phi_{n-1}` for :math:`n \ge 1`), its derivative
dual is :math:`\check{\phi_n'} = n^2\check\phi_{n-1}` (none for :math:`n = 0`, whose derivative is
a delta). The sign function :math:`\mathrm{sign}(x)` has the dual
:math:`(2/\pi)\arcsin\rho = 1 - 2\theta/\pi` and no NTK.

Units: variances in squared pre-activation units; :math:`\check\phi_n` in those units to the
power n (the step and the sign: dimensionless). All duals take three broadcastable
``jax.numpy`` float64 arrays and return their broadcast shape. Conventions at a zero variance
(:math:`u = 0` almost surely): :math:`\phi_n(0) = 0` (so the step is :math:`\mathbb 1(x > 0)`)
and :math:`\mathrm{sign}(0) = 0`, hence every dual is 0 there.

The duals are not analytic at :math:`\rho = \pm 1` (:math:`J_n` has a branch point
:math:`(1-\rho)^{n+1/2}`), so these activations are marked ``analytic=False`` and the engine
integrates the infinite-depth flow pair by pair instead of tabulating it; they are not
degree-one homogeneous (``homogeneous=False``) except ReLU. Derivatives are written out
(``jax.custom_jvp``), finite everywhere, including :math:`\rho = \pm 1` and zero variances:

* :math:`\partial_{q_{12}}\check\phi_n = n^2\check\phi_{n-1}` (Price);
* :math:`\partial_{q_{11}}\check\phi_n = \frac{n}{4\pi}\, q_{11}^{n/2-1}q_{22}^{n/2}\,
  (J_n - n\cos\theta\, J_{n-1})`, from the scaling identity
  :math:`2q_{11}\partial_{q_{11}}\check\phi_n + q_{12}\partial_{q_{12}}\check\phi_n = n\check\phi_n`
  (and symmetrically for :math:`q_{22}`); it is finite at :math:`q_{11} = 0` for :math:`n \ge 2`.
* The step and the sign depend on :math:`\theta` alone; their derivatives are those of
  :math:`\theta` (``_smooth_angle``): exact for :math:`|\rho| < 1`, and 0 at :math:`\rho = \pm 1`
  and at a zero variance, where the true derivative across the boundary is infinite; 0 is the
  derivative along every perturbation that keeps the pair collinear (what hyperparameters do
  to identical inputs).

The math and the tests' references are in docs/theory.md, "Rectified monomials and the sign
function".
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .activations import (RELU, Activation, _angle, _correlation, _smooth_angle, dual_parameters,
                          relu_dual)

__all__ = ["rectified_monomial", "arc_cosine_J", "STEP", "REQU", "SIGN", "step_dual",
           "requ_dual", "requ_derivative_dual", "sign_dual"]

_TWO_PI = 2.0 * np.pi


def arc_cosine_J(n: int, theta):
    r"""The angular parts :math:`(J_{n-1}(\theta), J_n(\theta))` of the arc-cosine kernels.

    Parameters
    ----------
    n : int >= 1
        Order (static).
    theta : array
        Angles in :math:`[0, \pi]` (radians).

    Returns
    -------
    (J_{n-1}, J_n) : arrays of the shape of ``theta``
        :math:`J_0 = \pi - \theta`, :math:`J_1 = \sin\theta + (\pi - \theta)\cos\theta`,
        :math:`J_2 = 3\sin\theta\cos\theta + (\pi-\theta)(1 + 2\cos^2\theta)`, then the
        recurrence :math:`J_k = (2k-1)\cos\theta\,J_{k-1} + (k-1)^2\sin^2\theta\,J_{k-2}`.
        Each is :math:`(2\pi / (q_{11}q_{22})^{k/2})\,E[\max(0,u)^k\max(0,v)^k]`; they are
        non-negative, :math:`J_k(0) = \pi\,(2k-1)!!` and :math:`J_k(\pi) = 0`.
    """
    c, s = jnp.cos(theta), jnp.sin(theta)
    rest = jnp.pi - theta
    prev, cur = rest, s + rest * c  # J_0, J_1
    if n >= 2:
        prev, cur = cur, 3.0 * s * c + rest * (1.0 + 2.0 * c * c)
    s2 = s * s
    for k in range(3, n + 1):
        prev, cur = cur, (2 * k - 1) * c * cur + (k - 1) ** 2 * s2 * prev
    return prev, cur


# ----------------------------------------------------------------------------- order 0 and sign


def _theta(q11, q22, q12, smooth=True):
    """The angle between u and v; pi/2 where a variance is 0 (rho = 0 there: the limit of the
    duals and of their partial derivatives as that variance goes to 0 at q12 = 0).
    ``smooth``: through ``_smooth_angle`` (finite derivatives, 0 at rho = +-1)."""
    scale, _ = _correlation(q11, q22, q12)
    theta = (_smooth_angle if smooth else _angle)(q11, q22, q12)
    return jnp.where(scale > 0, theta, 0.5 * jnp.pi)


def step_dual(q11, q22, q12):
    r""":math:`E[\mathbb 1(u>0)\mathbb 1(v>0)] = (\pi - \theta)/2\pi` (arc-cosine kernel, order 0).

    {dual parameters}

    Returns
    -------
    array (broadcast shape)
        Dimensionless, in [0, 1/2]; 0 where a variance is 0 (u = 0 there, and the step is 0 at
        0). Derivatives: those of :math:`\theta` (0 at :math:`\rho = \pm 1`).
    """
    scale, _ = _correlation(q11, q22, q12)
    return jnp.where(scale > 0, (jnp.pi - _theta(q11, q22, q12)) / _TWO_PI, 0.0)


def sign_dual(q11, q22, q12):
    r""":math:`E[\mathrm{sign}(u)\,\mathrm{sign}(v)] = (2/\pi)\arcsin\rho = 1 - 2\theta/\pi`.

    {dual parameters}

    Returns
    -------
    array (broadcast shape)
        Dimensionless, in [-1, 1]; 0 where a variance is 0 (:math:`\theta = \pi/2` there).
        Derivatives: those of :math:`\theta`.
    """
    return 1.0 - (2.0 / jnp.pi) * _theta(q11, q22, q12)


# ----------------------------------------------------------------------------- order n >= 2


def _powers(q11, q22, n):
    """q11^(n/2), q22^(n/2), q11^(n/2-1), q22^(n/2-1) (n >= 2: finite at 0; exact powers of q
    for even n, of sqrt(q) for odd n)."""
    if n % 2 == 0:
        h = n // 2
        return q11**h, q22**h, q11 ** (h - 1), q22 ** (h - 1)
    s11, s22 = jnp.sqrt(q11), jnp.sqrt(q22)
    return s11**n, s22**n, s11 ** (n - 2), s22 ** (n - 2)


@functools.lru_cache(maxsize=None)
def _monomial_dual(n: int):
    """The dual of max(0, x)^n for n >= 0 (n = 1: ReLU's), a function of (q11, q22, q12)."""
    if n == 0:
        return step_dual
    if n == 1:
        return relu_dual
    lower = _monomial_dual(n - 1)

    @jax.custom_jvp
    def dual(q11, q22, q12):
        p11, p22, _, _ = _powers(q11, q22, n)
        _, J = arc_cosine_J(n, _theta(q11, q22, q12, smooth=False))
        return p11 * p22 * jnp.maximum(J, 0.0) / _TWO_PI

    @dual.defjvp
    def _dual_jvp(primals, tangents):
        q11, q22, q12 = primals
        t11, t22, t12 = tangents
        theta = _theta(q11, q22, q12)  # differentiable again (finite at rho = +-1)
        J_lower, J = arc_cosine_J(n, theta)
        p11, p22, r11, r22 = _powers(q11, q22, n)
        bracket = (n / (2.0 * _TWO_PI)) * (J - n * jnp.cos(theta) * J_lower)
        d11 = r11 * p22 * bracket
        d22 = p11 * r22 * bracket
        d12 = n * n * lower(q11, q22, q12)
        return dual(q11, q22, q12), d11 * t11 + d22 * t22 + d12 * t12

    dual.__doc__ = (
        f"Arc-cosine kernel of order {n}: E[max(0,u)^{n} max(0,v)^{n}] = "
        f"(q11 q22)^({n}/2) J_{n}(theta) / 2 pi (see resgp.core.arc_cosine)."
    )
    return dual


def requ_dual(q11, q22, q12):
    r""":math:`E[\max(0,u)^2\max(0,v)^2] = q_{11}q_{22}\,J_2(\theta)/2\pi`,
    :math:`J_2 = 3\sin\theta\cos\theta + (\pi-\theta)(1+2\cos^2\theta)`.

    {dual parameters}

    Returns
    -------
    array (broadcast shape)
        In squared-variance units; :math:`3q^2/2` on the diagonal.
    """
    return _monomial_dual(2)(q11, q22, q12)


def requ_derivative_dual(q11, q22, q12):
    r""":math:`E[2\max(0,u)\,2\max(0,v)] = 4\,\check\phi_{\mathrm{relu}}`.

    {dual parameters}

    Returns
    -------
    array (broadcast shape)
        In variance units (the derivative dual of ReQU, for its NTK).
    """
    return 4.0 * relu_dual(q11, q22, q12)


def _monomial_fn(n):
    if n == 0:
        return lambda x: jnp.heaviside(x, 0.0)
    return lambda x: jnp.maximum(x, 0.0) ** n


def _monomial_derivative_dual(n):
    if n == 0:
        return None
    if n == 2:
        return requ_derivative_dual
    lower, n2 = _monomial_dual(n - 1), float(n * n)
    return lambda q11, q22, q12: n2 * lower(q11, q22, q12)


_NAMES = {0: "step", 1: "relu", 2: "requ"}


@functools.lru_cache(maxsize=None)
def _rectified_monomial(n: int) -> Activation:
    if n == 1:
        return RELU
    dual = requ_dual if n == 2 else _monomial_dual(n)
    return Activation(_NAMES.get(n, f"rectified_monomial({n})"), dual, homogeneous=False,
                      derivative_dual=_monomial_derivative_dual(n), fn=_monomial_fn(n),
                      spec=("rectified_monomial", (n,)), analytic=False)


def rectified_monomial(n: int) -> Activation:
    r"""The activation :math:`\phi_n(x) = \max(0, x)^n` (arc-cosine kernel of order n).

    Parameters
    ----------
    n : int >= 0
        Order: 0 the step :math:`\mathbb 1(x > 0)` (no NTK), 1 ReLU (the ``RELU`` object),
        2 ReQU, ...

    Returns
    -------
    Activation
        Dual :math:`(q_{11}q_{22})^{n/2}J_n(\theta)/2\pi`, derivative dual
        :math:`n^2\check\phi_{n-1}` (None for n = 0), ``homogeneous=False``,
        ``analytic=False``, spec ``("rectified_monomial", (n,))`` (Neural Tangents'
        ``stax.RectifiedMonomial(n)``).
    """
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"the order n of a rectified monomial must be an integer >= 0, got {n!r}")
    return _rectified_monomial(int(n))


dual_parameters(step_dual, sign_dual, requ_dual, requ_derivative_dual)

STEP = rectified_monomial(0)


def order_zero(act):
    r"""(cross c, mean m) of the step and the sign, whose duals are :math:`m - c\theta` at
    positive variances (step: :math:`(1/2\pi, 1/2)`, sign: :math:`(2/\pi, 1)`); None otherwise."""
    if act is STEP:
        return 1.0 / _TWO_PI, 0.5
    if act is SIGN:
        return 2.0 / np.pi, 1.0
    return None
REQU = rectified_monomial(2)
SIGN = Activation("sign", sign_dual, homogeneous=False, derivative_dual=None, fn=jnp.sign,
                  spec=("sign", ()), analytic=False)
