r"""Reference Gaussian expectations (duals) of activations, by numerical integration only.

For an activation :math:`\phi` (a plain NumPy function and its mpmath twin) and a covariance
:math:`Q = [[q_{11}, q_{12}], [q_{12}, q_{22}]]`, the dual is
:math:`E[f(u)g(v)]`, :math:`(u, v) \sim N(0, Q)`, with :math:`f = g = \phi` (the dual) or
:math:`f = g = \phi'` (the derivative dual). Both references integrate in the conditional
coordinates

.. math:: u = a x, \qquad v = b x + s y, \qquad x, y \sim N(0, 1) \text{ independent},

    a = \sqrt{q_{11}}, \quad b = q_{12}/\sqrt{q_{11}}, \quad
    s = \sqrt{c}, \quad c = q_{22} - q_{12}^2/q_{11} = (q_{11}q_{22} - q_{12}^2)/q_{11}

(:math:`b = \rho\sqrt{q_{22}}`, :math:`s = \sqrt{1-\rho^2}\sqrt{q_{22}}`). The conditional
variance c is computed *exactly* from the float inputs (rational arithmetic), so that the
angle of a near-identical pair (:math:`1 - \rho \approx 10^{-14}`) is known to full relative
precision, not to the ~1% that ``q11 * q22 - q12**2`` in floats gives. :math:`\rho = \pm 1`
(c = 0) reduces to the 1-D integral :math:`E[f(ax)g(bx)]`.

The integration ranges are split where the integrand changes character: at x = 0 (where
:math:`f(ax)` has its kink or transition, and where the inner mean
:math:`G(x) = E_y[g(bx + sy)]` has its transition, of width :math:`\max(w_g, s)/|b|`), and, in y,
at :math:`y_0 = -bx/s` (where :math:`g` has its kink or transition, width :math:`w_g/s`).
Kinks and jumps (the ReLU family, the step, the sign, ReQU) are split exactly; smooth
transitions of width w (tanh, erf, GELU, softplus: w = 1 in the activation's argument) are
graded geometrically, breakpoints at :math:`\pm 2^k w` for :math:`k \ge -1` up to the Gaussian
panels (width 2 on [-10, 10]); the oscillating sine gets uniform panels of width
:math:`\min(2, 8/\text{frequency})`. This is what keeps the rules exact at large variances
(q = 1e4: :math:`\tanh(100 x)`), tiny ones, and near-identical pairs (s ~ 1e-7).

Two independent rules:

* :func:`mp_expect`: ``mpmath.quad`` (tanh-sinh, adaptive) at 30 digits, nested (the inner
  y-integral's breakpoints depend on x) on [-13, 13]^2. Seconds to a minute per 2-D point; the
  1-D case (:math:`\rho = \pm 1`) is fast.
* :func:`pair_moments` and the vectorised :func:`dual` / :func:`derivative_dual`: composite
  Gauss-Legendre with ``NODES`` nodes per panel on the same breakpoints in NumPy float64 on
  [-10, 10]^2 (the truncated mass is :math:`< 10^{-22}`). Checked against :func:`mp_expect`
  in ``tests/test_exactness.py``; typically 1e-16 to 1e-15 relative to the scale
  :math:`\sqrt{E f(u)^2\,E g(v)^2}`.

Nothing here imports resgp, and where resgp has a closed form the reference still integrates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, NamedTuple

import mpmath
import numpy as np
import scipy.special

__all__ = ["RefActivation", "REFERENCE", "reference", "exact_conditional_variance", "dual",
           "derivative_dual", "pair_moments", "diagonal_moments", "mp_expect", "mp_dual",
           "mp_derivative_dual", "NODES", "RANGE"]

RANGE = 10.0  # the NumPy rule integrates x, y over [-RANGE, RANGE]
MP_RANGE = 13.0  # the mpmath rule (phi(13) ~ 2e-37)
MP_DPS = 30
NODES = 12  # Gauss-Legendre nodes per panel
NODES_OSC = 32  # per panel for an oscillating activation (panels of phase OSC_PHASE)
OSC_PHASE = 24.0
GRADE = 2.0  # ratio of the geometric grading towards a transition
GRADE_KINK = 2.0  # ... towards the smoothed kink of the inner mean G(x) (4 loses 1e-11)
COLLINEAR = 1e-28  # c / q22 = sin(theta)^2 below this: treated as exactly collinear
GAUSS_STEP = 2.0  # panel width that resolves the Gaussian weight itself
_GAUSS_BREAKS = np.arange(-RANGE, RANGE + 0.5 * GAUSS_STEP, GAUSS_STEP)
_RULES = {n: np.polynomial.legendre.leggauss(n) for n in range(2, 41)}
_SQRT2PI = math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class RefActivation:
    """An activation as plain functions. ``f``/``df``: NumPy, elementwise on float64 arrays;
    ``mp_f``/``mp_df``: the same on mpmath numbers (None: no derivative, e.g. a jump).
    ``kind``: "kink" (non-smooth only at 0: split exactly there), "smooth" (a transition of
    width ~1 around 0: graded panels) or "oscillating" (uniform panels)."""

    name: str
    f: Callable
    df: Callable | None
    mp_f: Callable
    mp_df: Callable | None
    kind: str


def _np_abrelu(a, b):
    return (lambda x: np.where(x > 0, b * x, a * x),
            lambda x: np.where(x > 0, b, a) + 0.0 * x)


def _mp_abrelu(a, b):
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    return (lambda x: b * x if x > 0 else a * x), (lambda x: b if x > 0 else a)


def _abrelu(name, a, b):
    f, df = _np_abrelu(a, b)
    mf, mdf = _mp_abrelu(a, b)
    return RefActivation(name, f, df, mf, mdf, "kink")


def _np_sech2(x):
    e = np.exp(-2.0 * np.abs(x))  # no overflow, accurate in the tails
    return 4.0 * e / (1.0 + e) ** 2


def _np_gelu(x):
    return x * scipy.special.ndtr(x)


def _np_gelu_prime(x):
    return scipy.special.ndtr(x) + x * np.exp(-0.5 * x * x) / _SQRT2PI


def _mp_gelu(x):
    return x * mpmath.ncdf(x)


def _mp_gelu_prime(x):
    return mpmath.ncdf(x) + x * mpmath.npdf(x)


def _mp_heaviside(x):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)


def _mp_sign(x):
    return mpmath.mpf(mpmath.sign(x))


def _mp_requ(x):
    return x * x if x > 0 else mpmath.mpf(0)


def _mp_softplus(x):
    return mpmath.log1p(mpmath.exp(x)) if x < 0 else x + mpmath.log1p(mpmath.exp(-x))


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)

REFERENCE = {
    "relu": _abrelu("relu", 0.0, 1.0),
    "leaky_relu": _abrelu("leaky_relu", 0.01, 1.0),  # resgp's default slope 0.01
    "leaky_relu(0.1)": _abrelu("leaky_relu(0.1)", 0.1, 1.0),
    "abrelu": _abrelu("abrelu", -1.0, 1.0),  # default a = -1, b = 1: |x|
    "erf": RefActivation("erf", scipy.special.erf,
                         lambda x: _TWO_OVER_SQRTPI * np.exp(-x * x), mpmath.erf,
                         lambda x: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x), "smooth"),
    "sin": RefActivation("sin", np.sin, np.cos, mpmath.sin, mpmath.cos, "oscillating"),
    "gelu": RefActivation("gelu", _np_gelu, _np_gelu_prime, _mp_gelu, _mp_gelu_prime, "smooth"),
    "tanh": RefActivation("tanh", np.tanh, _np_sech2, mpmath.tanh,
                          lambda x: mpmath.sech(x) ** 2, "smooth"),
    "sigmoid": RefActivation("sigmoid", scipy.special.expit, lambda x: 0.25 * _np_sech2(0.5 * x),
                             _mp_sigmoid, lambda x: mpmath.sech(x / 2) ** 2 / 4, "smooth"),
    "step": RefActivation("step", lambda x: (x > 0).astype(np.float64), None, _mp_heaviside,
                          None, "kink"),
    "requ": RefActivation("requ", lambda x: np.where(x > 0, x * x, 0.0),
                          lambda x: np.where(x > 0, 2.0 * x, 0.0), _mp_requ,
                          lambda x: 2 * x if x > 0 else mpmath.mpf(0), "kink"),
    "sign": RefActivation("sign", np.sign, None, _mp_sign, None, "kink"),
    # the callables of the tests (resgp sees them as jax.numpy functions)
    "softplus": RefActivation("softplus", lambda x: np.logaddexp(0.0, x), scipy.special.expit,
                              _mp_softplus, _mp_sigmoid, "smooth"),
    "tanh+0.1x^2": RefActivation("tanh+0.1x^2", lambda x: np.tanh(x) + 0.1 * x * x,
                                 lambda x: _np_sech2(x) + 0.2 * x,
                                 lambda x: mpmath.tanh(x) + x * x / 10,
                                 lambda x: mpmath.sech(x) ** 2 + x / 5, "smooth"),
    "gelu(callable)": RefActivation("gelu(callable)", _np_gelu, _np_gelu_prime, _mp_gelu,
                                    _mp_gelu_prime, "smooth"),
}


def reference(name) -> RefActivation:
    """The :class:`RefActivation` called ``name`` (a key of :data:`REFERENCE`)."""
    return REFERENCE[name]


# ----------------------------------------------------------------------------- exact inputs


def exact_conditional_variance(q11, q22, q12) -> float:
    r""":math:`c = (q_{11}q_{22} - q_{12}^2)/q_{11}` of the float inputs, in exact rational
    arithmetic, rounded once (clipped at 0 for an inconsistent input)."""
    f11, f22, f12 = Fraction(float(q11)), Fraction(float(q22)), Fraction(float(q12))
    if f11 <= 0:
        raise ValueError("q11 must be > 0")
    gap = f11 * f22 - f12 * f12
    return float(gap / f11) if gap > 0 else 0.0


# ----------------------------------------------------------------------------- NumPy rule


def _offsets(width, ratio=None):
    """0 and +-width * ratio^k (k >= -1) below the Gaussian panel width; just 0 for a kink.
    (A transition of width w has its complex singularities ~w/2 off the real axis; a panel of
    width w/2 next to it, or one at distance >= its width, converges geometrically.)"""
    if width is None or not np.isfinite(width) or width <= 0:
        return np.zeros(1)
    d = width * (GRADE if ratio is None else ratio) ** np.arange(-1.0, 64.0)
    d = d[d < GAUSS_STEP]
    return np.concatenate([[0.0], d, -d])


def _uniform(freq):
    """Breakpoints on [-RANGE, RANGE] spaced min(GAUSS_STEP, OSC_PHASE / freq): panels of
    NODES_OSC nodes for an oscillating integrand of angular frequency ``freq``."""
    h = GAUSS_STEP if freq <= 0 else min(GAUSS_STEP, OSC_PHASE / freq)
    n = int(math.ceil(2 * RANGE / h))
    return np.linspace(-RANGE, RANGE, n + 1)


def _nodes(act, freq):
    """Nodes per panel: NODES_OSC for an oscillating integrand of frequency > 3 (panels of
    phase up to OSC_PHASE), else NODES (Gaussian panels of phase <= 6)."""
    return NODES_OSC if act.kind == "oscillating" and freq * GAUSS_STEP > 6.0 else NODES


def _panels(breaks, n=NODES):
    """Gauss-Legendre nodes and weights (standard normal weight included) on the panels
    between sorted ``breaks`` (..., m), ``n`` nodes each; returns (..., (m - 1) * n) arrays."""
    t, w = _RULES[n]
    lo, hi = breaks[..., :-1, None], breaks[..., 1:, None]
    half = 0.5 * (hi - lo)
    nodes = (lo + hi) * 0.5 + half * t
    weights = half * w * np.exp(-0.5 * nodes * nodes) / _SQRT2PI
    shape = breaks.shape[:-1] + (-1,)
    return nodes.reshape(shape), weights.reshape(shape)


def _breaks(*parts):
    b = np.unique(np.clip(np.concatenate([_GAUSS_BREAKS, *parts]), -RANGE, RANGE))
    return b


class Moments(NamedTuple):
    """Expectations of one pair (see :func:`pair_moments`)."""

    v: float  # E[phi(u) phi(v)]
    dv: float  # E[phi'(u) phi'(v)] (nan without a derivative)
    e: float  # E[(phi(v) - lam phi(u))^2], lam = q12/q11: the velocity of c
    w: float  # E[(phi(v) - mu phi(u))^2], mu = v11/v12 on the same nodes: Gram det / v11
    v11: float  # E[phi(u)^2] on the same nodes


def _grid(act, a, b, s):
    """Nodes and weights: (xs, wx) 1-D and, for s > 0, (ys, wy) (nx, ny) per x node."""
    smooth, osc = act.kind == "smooth", act.kind == "oscillating"
    if s == 0.0:
        if osc:  # f(a x) g(b x) oscillates with frequency a + |b|
            x_br = _breaks(_uniform(a + abs(b)))
        else:
            width = min(1.0 / a, 1.0 / abs(b) if b != 0 else np.inf) if smooth else None
            x_br = _breaks(_offsets(width))
        xs, wx = _panels(x_br, _nodes(act, a + abs(b)))
        return xs, wx, None, None
    # x: f(a x) (kink or transition at 0, width 1/a) and G(x) = E_y[g(b x + s y)]
    # (transition at 0 of width max(w_g, s) / |b|)
    if osc:
        x_br = _breaks(_uniform(a + abs(b)))
    else:
        if smooth:  # f's own transition and G's, ratio GRADE
            widths = [1.0 / a] + ([max(1.0, s) / abs(b)] if b != 0 else [])
            x_br = _breaks(_offsets(min(widths)))
        else:  # G(x) = (g * N(0, s^2))(b x) is entire, of width s / |b|
            x_br = _breaks(_offsets(s / abs(b) if b != 0 else None, GRADE_KINK))
    xs, wx = _panels(x_br, _nodes(act, a + abs(b)))
    # y: g(b x + s y) has its kink or transition at y0 = -b x / s, width 1 / s
    if osc:
        row = _breaks(_uniform(s))
        y_br = np.broadcast_to(row, (xs.size, row.size))
    else:
        offs = _offsets(1.0 / s if smooth else None)
        y0 = -(b * xs) / s
        extra = np.clip(y0[:, None] + offs[None, :], -RANGE, RANGE)
        y_br = np.sort(np.concatenate([np.broadcast_to(_GAUSS_BREAKS, (xs.size,
                                                                         _GAUSS_BREAKS.size)),
                                       extra], axis=1), axis=1)
    ys, wy = _panels(y_br, _nodes(act, s))
    return xs, wx, ys, wy


def _coordinates(q11, q22, q12, c):
    q11, q22, q12 = float(q11), float(q22), float(q12)
    if not q11 > 0 or not q22 > 0:
        raise ValueError("the reference needs positive variances")
    if c is None:
        c = exact_conditional_variance(q11, q22, q12)
    a = math.sqrt(q11)
    c = float(c)
    if c < COLLINEAR * q22:  # sin(theta) < 1e-14: collinear to rounding, the 1-D rule
        c = 0.0
    return a, q12 / a, math.sqrt(c), q12 / q11


def pair_moments(act: RefActivation, q11, q22, q12, c=None, *, derivative=True,
                 gram=True) -> Moments:
    r"""All expectations of one pair on one grid (composite Gauss-Legendre, NumPy float64).

    ``c`` is the conditional variance :math:`q_{22} - q_{12}^2/q_{11}` (default: exact from
    the floats; the flows pass their own, tracked accurately). Returns :class:`Moments`:
    the dual v, the derivative dual dv, :math:`e = E[(\phi(v) - \lambda\phi(u))^2]` with
    :math:`\lambda = q_{12}/q_{11}` (so that :math:`\dot c = e` along the flow),
    :math:`w = E[(\phi(v) - \mu\phi(u))^2]` with :math:`\mu = v_{12}/v_{11}` (the Gram
    determinant of the velocities over :math:`v_{11}`; nan unless ``gram``), and
    :math:`v_{11}` on the same nodes: squares integrated directly, so that they are accurate
    when small. ``derivative=False`` skips dv (nan)."""
    a, b, s, lam = _coordinates(q11, q22, q12, c)
    xs, wx, ys, wy = _grid(act, a, b, s)
    u = a * xs
    fu = act.f(u)
    if ys is None:
        v = b * xs
        gv = act.f(v)
        v12 = float(np.sum(wx * fu * gv))
        v11 = float(np.sum(wx * fu * fu))
        e = float(np.sum(wx * (gv - lam * fu) ** 2))
        mu = v12 / v11 if v11 > 0 else 0.0
        w = float(np.sum(wx * (gv - mu * fu) ** 2))
        dv = float(np.sum(wx * act.df(u) * act.df(v))) if derivative and act.df else math.nan
        return Moments(v12, dv, e, w, v11)
    v = (b * xs)[:, None] + s * ys
    gv = act.f(v)
    inner = np.sum(wy * gv, axis=1)
    v12 = float(np.sum(wx * fu * inner))
    v11 = float(np.sum(wx * fu * fu * np.sum(wy, axis=1)))
    e = float(np.sum(wx[:, None] * wy * (gv - lam * fu[:, None]) ** 2))
    if gram:
        mu = v12 / v11 if v11 > 0 else 0.0
        w = float(np.sum(wx[:, None] * wy * (gv - mu * fu[:, None]) ** 2))
    else:
        w = math.nan
    if derivative and act.df is not None:
        dv = float(np.sum(wx * act.df(u) * np.sum(wy * act.df(v), axis=1)))
    else:
        dv = math.nan
    return Moments(v12, dv, e, w, v11)


def diagonal_moments(act: RefActivation, q, *, derivative=True):
    """(E[phi(u)^2], E[phi'(u)^2]) for u ~ N(0, q): the 1-D rule."""
    m = pair_moments(act, q, q, q, 0.0, derivative=derivative)
    return m.v, m.dv


def _points(fn, q11, q22, q12):
    q11, q22, q12 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64)
                                          for v in (q11, q22, q12)))
    out = np.empty(q11.shape)
    for i in np.ndindex(q11.shape):
        out[i] = fn(q11[i], q22[i], q12[i])
    return out


def dual(act: RefActivation, q11, q22, q12):
    """E[phi(u) phi(v)] at broadcastable arrays of points (the NumPy rule, c exact)."""
    return _points(lambda *p: pair_moments(act, *p, derivative=False).v, q11, q22, q12)


def derivative_dual(act: RefActivation, q11, q22, q12):
    """E[phi'(u) phi'(v)] at broadcastable arrays of points (the NumPy rule, c exact)."""
    if act.df is None:
        raise ValueError(f"{act.name} has no derivative")
    return _points(lambda *p: pair_moments(act, *p).dv, q11, q22, q12)


# ----------------------------------------------------------------------------- mpmath rule


def _mp_graded(center, width, lo, hi):
    """center and center +- width * 4^k (k >= -1) inside (lo, hi), below GAUSS_STEP."""
    pts = [center]
    if width is not None and width > 0:
        d = width / 4
        while d < GAUSS_STEP:
            pts += [center - d, center + d]
            d *= 4
    return [p for p in pts if lo < p < hi]


def _mp_breaks(lo, hi, extra):
    gauss = [mpmath.mpf(k) for k in range(-12, 13, 3)]
    pts = sorted(set([lo, hi] + [p for p in gauss + extra if lo < p < hi]))
    return pts


def mp_expect(f, g, q11, q22, q12, *, kind="smooth", dps=MP_DPS, method="tanh-sinh"):
    r""":math:`E[f(u) g(v)]` by nested ``mpmath.quad`` (tanh-sinh) at ``dps`` digits.

    ``f``, ``g``: functions of an mpmath number. ``kind`` places the breakpoints (see the
    module docstring): "kink", "smooth" or "oscillating". The inputs are taken as the exact
    values of the given floats; :math:`\rho = \pm 1` is a 1-D integral. Returns an mpf."""
    with mpmath.workdps(dps):
        m11, m22, m12 = (mpmath.mpf(float(v)) for v in (q11, q22, q12))
        with mpmath.workprec(400):
            gap = m11 * m22 - m12 * m12
        a = mpmath.sqrt(m11)
        b = m12 / a
        s = mpmath.sqrt(gap / m11) if gap > 0 else mpmath.mpf(0)
        R = mpmath.mpf(MP_RANGE)
        smooth, osc = kind == "smooth", kind == "oscillating"

        def density(t):
            return mpmath.exp(-t * t / 2) / mpmath.sqrt(2 * mpmath.pi)

        def uniform(freq):
            if freq <= 0:
                return []
            h = min(mpmath.mpf(GAUSS_STEP), 3 / freq)
            n = int(mpmath.ceil(2 * R / h))
            return [-R + 2 * R * k / n for k in range(1, n)]

        if s == 0:
            if osc:
                extra = uniform(a + abs(b))
            else:
                width = min(1 / a, 1 / abs(b) if b != 0 else mpmath.inf) if smooth else None
                extra = _mp_graded(mpmath.mpf(0), width, -R, R)
            pts = _mp_breaks(-R, R, extra)
            return mpmath.quad(lambda x: density(x) * f(a * x) * g(b * x), pts, method=method)
        if osc:
            x_extra = uniform(a + abs(b))
            y_pts = _mp_breaks(-R, R, uniform(s))
        else:
            widths = [1 / a] if smooth else []
            if b != 0:
                widths.append(max(1 if smooth else 0, s) / abs(b))
            x_extra = _mp_graded(mpmath.mpf(0), min(widths) if widths else None, -R, R)
            y_pts = None
        x_pts = _mp_breaks(-R, R, x_extra)

        def inner(x):
            if y_pts is not None:
                pts = y_pts
            else:
                y0 = -b * x / s
                pts = _mp_breaks(-R, R, _mp_graded(y0, 1 / s if smooth else None, -R, R))
            return mpmath.quad(lambda y: density(y) * g(b * x + s * y), pts, method=method)

        return mpmath.quad(lambda x: density(x) * f(a * x) * inner(x), x_pts, method=method)


def mp_dual(act: RefActivation, q11, q22, q12, dps=MP_DPS):
    """E[phi(u) phi(v)] by :func:`mp_expect` (an mpf)."""
    return mp_expect(act.mp_f, act.mp_f, q11, q22, q12, kind=act.kind, dps=dps)


def mp_derivative_dual(act: RefActivation, q11, q22, q12, dps=MP_DPS):
    """E[phi'(u) phi'(v)] by :func:`mp_expect` (an mpf)."""
    if act.mp_df is None:
        raise ValueError(f"{act.name} has no derivative")
    return mp_expect(act.mp_df, act.mp_df, q11, q22, q12, kind=act.kind, dps=dps)


# ----------------------------------------------------------------------------- stored 2-D values


def _near_identical(q):
    """A near-identical covariance at level q: 1 - rho ~ 1e-14, c > 0 exactly."""
    return q, q * (1 + 2e-7), q * (1 + 1e-7 - 1e-14)


def mp_2d_points(name):
    """The 2-D points of :data:`MP_2D` for activation ``name``: a generic pair at q = 1e-4, a
    near-identical one at q = 25 and a generic one at q = 1e4 (the sine: q = 25, rho = -0.8;
    its mpmath integral at q = 1e4 would take hours)."""
    large = (1e4, 1.5e4, 0.6 * math.sqrt(1.5) * 1e4)
    if name == "sin":
        large = (25.0, 37.5, -0.8 * math.sqrt(1.5) * 25.0)
    return [(1e-4, 2e-4, -0.5 * math.sqrt(2) * 1e-4), _near_identical(25.0), large]


def mp_key(name, quantity, q11, q22, q12):
    """``"name|dual|q11|q22|q12"`` (quantity "dual" or "dd"; floats by repr, exact)."""
    return f"{name}|{quantity}|{q11!r}|{q22!r}|{q12!r}"


def parse_mp_key(key):
    """(name, quantity, q11, q22, q12) of an :data:`MP_2D` key."""
    name, quantity, *q = key.split("|")
    return (name, quantity, *(float(v) for v in q))


def generate_mp_2d(names=None, out=print):  # pragma: no cover - hours; run by hand
    """Recompute :data:`MP_2D` (nested Gauss-Legendre ``mpmath.quad`` at 30 digits):
    ``python -c "import sys; sys.path.insert(0, 'tests'); from reference import duals;
    duals.generate_mp_2d()"`` prints the entries."""
    for name in names or [n for n in REFERENCE if n != "gelu(callable)"]:
        act = REFERENCE[name]
        for p in mp_2d_points(name):
            for quantity, fn in (("dual", act.mp_f), ("dd", act.mp_df)):
                if fn is None:
                    continue
                value = mp_expect(fn, fn, *p, kind=act.kind, method="gauss-legendre")
                out(f"    {mp_key(name, quantity, *p)!r}: {mpmath.nstr(value, 30)!r},")


# E[f(u) f(v)] at 30 digits (mp_expect, method="gauss-legendre"), generated by generate_mp_2d.
# ("gelu(callable)" is the same function as "gelu".)
MP_2D = {
    'relu|dual|0.0001|0.0002|-7.071067811865475e-05': '0.00000770730701106611129851721976924',
    'relu|dd|0.0001|0.0002|-7.071067811865475e-05': '0.166666666666666669043731364963',
    'relu|dual|25.0|25.000004999999998|25.000002499999752': '12.5000012499998760517895831051',
    'relu|dd|25.0|25.000004999999998|25.000002499999752': '0.499999984282220027061265603661',
    'relu|dual|10000.0|15000.0|7348.469228349533': '4149.11454372940689929750488348',
    'relu|dd|10000.0|15000.0|7348.469228349533': '0.352416382349566709601205615355',
    'leaky_relu|dual|0.0001|0.0002|-7.071067811865475e-05':
        '0.00000684682482035934812578598194867',
    'leaky_relu|dd|0.0001|0.0002|-7.071067811865475e-05': '0.173350000000000002469232878269',
    'leaky_relu|dual|25.0|25.000004999999998|25.000002499999752':
        '12.5012512501248760394467782234',
    'leaky_relu|dd|25.0|25.000004999999998|25.000002499999752':
        '0.500049984595003848524828092797',
    'leaky_relu|dual|10000.0|15000.0|7348.469228349533': '4140.03185659268703477945977148',
    'leaky_relu|dd|10000.0|15000.0|7348.469228349533': '0.355403296340810332143052875432',
    'leaky_relu(0.1)|dual|0.0001|0.0002|-7.071067811865475e-05':
        '-0.000000828149132901925717679687174797',
    'leaky_relu(0.1)|dd|0.0001|0.0002|-7.071067811865475e-05':
        '0.235000000000000005811202991808',
    'leaky_relu(0.1)|dual|25.0|25.000004999999998|25.000002499999752':
        '12.6250012624998748261850126369',
    'leaky_relu(0.1)|dd|25.0|25.000004999999998|25.000002499999752':
        '0.50499998726859822247473680833',
    'leaky_relu(0.1)|dual|10000.0|15000.0|7348.469228349533': '4095.62970325577291734929076371',
    'leaky_relu(0.1)|dd|10000.0|15000.0|7348.469228349533': '0.385457269703149036806744634107',
    'abrelu|dual|0.0001|0.0002|-7.071067811865475e-05': '0.000101539906162919199193509411108',
    'abrelu|dd|0.0001|0.0002|-7.071067811865475e-05': '-0.333333333333333323825074540149',
    'abrelu|dual|25.0|25.000004999999998|25.000002499999752': '25.0000024999997521035817211587',
    'abrelu|dd|25.0|25.000004999999998|25.000002499999752': '0.999999937128880108245062414643',
    'abrelu|dual|10000.0|15000.0|7348.469228349533': '9247.98894656809430134906326324',
    'abrelu|dd|10000.0|15000.0|7348.469228349533': '0.409665529398266838404822461422',
    'step|dual|0.0001|0.0002|-7.071067811865475e-05': '0.166666666666666669043731364963',
    'step|dual|25.0|25.000004999999998|25.000002499999752': '0.499999984282220027061265603661',
    'step|dual|10000.0|15000.0|7348.469228349533': '0.352416382349566709601205615355',
    'requ|dual|0.0001|0.0002|-7.071067811865475e-05': '8.65033284336559767966357749864e-10',
    'requ|dd|0.0001|0.0002|-7.071067811865475e-05': '0.000030829228044264445194068879077',
    'requ|dual|25.0|25.000004999999998|25.000002499999752': '937.500187499993830607023278451',
    'requ|dd|25.0|25.000004999999998|25.000002499999752': '50.0000049999995042071583324206',
    'requ|dual|10000.0|15000.0|7348.469228349533': '125300894.35403759121309794337',
    'requ|dd|10000.0|15000.0|7348.469228349533': '16596.4581749176275971900195339',
    'sign|dual|0.0001|0.0002|-7.071067811865475e-05': '-0.333333333333333323825074540149',
    'sign|dual|25.0|25.000004999999998|25.000002499999752': '0.999999937128880108245062414643',
    'sign|dual|10000.0|15000.0|7348.469228349533': '0.409665529398266838404822461422',
    'erf|dual|0.0001|0.0002|-7.071067811865475e-05': '-0.0000900046309762313912180093148112',
    'erf|dd|0.0001|0.0002|-7.071067811865475e-05': '1.27285770651034918026487927679',
    'erf|dual|25.0|25.000004999999998|25.000002499999752': '0.873723595465560428509544207949',
    'erf|dd|25.0|25.000004999999998|25.000002499999752': '0.126692063633852731329805934401',
    'erf|dual|10000.0|15000.0|7348.469228349533': '0.409645636108962984683864328576',
    'erf|dd|10000.0|15000.0|7348.469228349533': '0.0000649705036387323369615325865146',
    'gelu|dual|0.0001|0.0002|-7.071067811865475e-05': '-0.0000176728958361010263287343533505',
    'gelu|dd|0.0001|0.0002|-7.071067811865475e-05': '0.249954997685355289719966478062',
    'gelu|dual|25.0|25.000004999999998|25.000002499999752': '12.4643418258809771904897557791',
    'gelu|dd|25.0|25.000004999999998|25.000002499999752': '0.509498205854275840561723501942',
    'gelu|dual|10000.0|15000.0|7348.469228349533': '4148.98460201824596245713758382',
    'gelu|dd|10000.0|15000.0|7348.469228349533': '0.352426327541130284304605076695',
    'tanh|dual|0.0001|0.0002|-7.071067811865475e-05': '-0.0000706894736314684516605840153012',
    'tanh|dd|0.0001|0.0002|-7.071067811865475e-05': '0.999700129925054319017530699576',
    'tanh|dual|25.0|25.000004999999998|25.000002499999752': '0.842961767168787765815333312971',
    'tanh|dd|25.0|25.000004999999998|25.000002499999752': '0.105706322838277062546033275196',
    'tanh|dual|10000.0|15000.0|7348.469228349533': '0.409632808223811384630919651973',
    'tanh|dd|10000.0|15000.0|7348.469228349533': '0.0000649677762790761161062377462302',
    'softplus|dual|0.0001|0.0002|-7.071067811865475e-05': '0.48046132919518057656725364573',
    'softplus|dd|0.0001|0.0002|-7.071067811865475e-05': '0.249995580914039826042523949519',
    'softplus|dual|25.0|25.000004999999998|25.000002499999752':
        '12.6756053408163350576672002408',
    'softplus|dd|25.0|25.000004999999998|25.000002499999752': '0.42485514891601678262914390401',
    'softplus|dual|10000.0|15000.0|7348.469228349533': '4149.54208561075690151278090219',
    'softplus|dd|10000.0|15000.0|7348.469228349533': '0.352383672414972373276609170154',
    'tanh+0.1x^2|dual|0.0001|0.0002|-7.071067811865475e-05':
        '-0.0000706891736314684516605604360817',
    'tanh+0.1x^2|dd|0.0001|0.0002|-7.071067811865475e-05': '0.999697301497929572827370721955',
    'tanh+0.1x^2|dual|25.0|25.000004999999998|25.000002499999752':
        '19.592965517168664377955798882',
    'tanh+0.1x^2|dd|25.0|25.000004999999998|25.000002499999752':
        '1.10570642283826714668909772567',
    'tanh+0.1x^2|dual|10000.0|15000.0|7348.469228349533': '2580000.40963280793023977560291',
    'tanh+0.1x^2|dd|10000.0|15000.0|7348.469228349533': '293.938834101757610909754357069',
    'sin|dual|0.0001|0.0002|-7.071067811865475e-05': '-0.0000707000723713090382974880428267',
    'sin|dd|0.0001|0.0002|-7.071067811865475e-05': '0.999850013749062550251034362594',
    'sin|dual|25.0|25.000004999999998|25.000002499999752': '0.499999999999876543199565260824',
    'sin|dd|25.0|25.000004999999998|25.000002499999752': '0.499999999999876543199758134844',
    'sin|dual|25.0|37.5|-24.49489742783178': '-0.000582460169893128743177264825012',
    'sin|dd|25.0|37.5|-24.49489742783178': '0.000582460169893128743177881844176',
}
