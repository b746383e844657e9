r"""The compute engine: kernel matrices, diagonals and named gradients of a :class:`Network`.

Host entry points (NumPy in, NumPy float64 out, tiled by :mod:`resgp.core.tiling`):
:func:`gram`, :func:`diagonal`, :func:`gram_and_gradients` and :func:`gram_and_vjp`. Each
picks one path (docs/theory.md):

* finite depth: the recursion of :mod:`resgp.core.recursion`; gradients by forward mode (the
  values of the ReLU family's NTK and of the step's and sign's NNGP: the same recursion
  carrying each pair's distances, for near-identical pairs);
* infinite depth, ReLU NNGP: the exact angle flow of :mod:`resgp.core.relu_flow`; gradients
  from its flow identities;
* infinite depth, the ReLU family's NTK values: the NTK table of :mod:`resgp.core.relu_flow`
  along the same angle flow, the angle taken from each pair's difference;
* infinite depth, smooth activations: the tabulated flow map of :mod:`resgp.core.flow_table`;
  gradients from its derivative tables, the diagonal from :mod:`resgp.core.diagonal`;
* otherwise (the ReLU family's NTK gradients, tables that cannot be built): the pair flow of
  :mod:`resgp.core.limit` for every pair; gradients from its sensitivities (the step's and
  sign's values: a pair flow carrying each pair's distances).

Gradients are keyed by hyperparameter name and follow from the partials by the chain rule
through :math:`q_0`: a bias variance moves every entry of :math:`q_0` by one, a weight variance
scales its input part, :math:`\partial q_0/\partial\sigma_w^2 = (q_0 - \sigma_b^2)/\sigma_w^2`;
the branch variance (depth time) T moves the flow's end, :math:`\partial_T K = v(q_T)`. Each
name's derivative is computed from the same partials whatever else is asked for, so leaving a
hyperparameter out leaves the others bit for bit unchanged.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import flow_table, limit, ode, recursion, relu_flow
from .arc_cosine import order_zero
from .activations import (RELU, SERIES_MARGIN, at_order, non_finite_message, relu_family,
                          series_for, series_orders)
from .diagonal import diagonal as _diagonal_flow
from .inputs import covariance, features, pair_correlations
from .tiling import bucket, tiled
from .validation import check_features
from .velocity import diagonal_velocity, velocity
from .x64 import float64

__all__ = ["gram", "diagonal", "gram_and_gradients", "gram_and_vjp", "PAIR_CHUNK", "TABLE_TILE",
           "NEAR_PARALLEL", "MAX_GRADED_PAIRS", "PARTIALS", "LAYER_WEIGHT"]

PAIR_CHUNK = 4096  # pairs integrated together (each with its own steps)
MAX_GRADED_PAIRS = 20_000  # pairs whose duals need the graded rule (a clear error beyond)
MIXTURE_FACTOR = 10  # ... times this for tanh and the sigmoid (their direct sum is cheaper)
TABLE_TILE = 512  # table evaluations: the column-side factors stay in cache


PARTIALS = ("q_aa", "q_bb", "q_ab")  # dK / dq_0(a, a), dq_0(b, b), dq_0(a, b): the chain rule of
# any input-layer hyperparameter (per-feature weight variances, ARD) in one place
LAYER_WEIGHT = "layer_weight_variance"  # dK / d sigma_w^2 of the MLP's hidden layers alone
# (q_0 held): with the partials, an ARD MLP's dK/dw_i (its hidden sigma_w^2 is the mean of w)


def _mirror(names):
    """The permutation of the stack (value, *names) under a transpose of K(X, X): the partials
    with respect to q(a, a) and q(b, b) exchange places (None when not both are there)."""
    stack = ("value",) + tuple(names)
    if "q_aa" not in stack or "q_bb" not in stack:
        return None
    perm = np.arange(len(stack))
    i, j = stack.index("q_aa"), stack.index("q_bb")
    perm[i], perm[j] = j, i
    return perm


def _names_ok(net, names):
    allowed = {"branch_variance", "weight_variance", "bias_variance", *PARTIALS}
    if net.architecture == "mlp":
        allowed.add(LAYER_WEIGHT)
    if net.architecture == "mlp" or net.branch_scales is not None:
        allowed.discard("branch_variance")
    for name in names:
        if name not in allowed:
            raise ValueError(f"no gradient with respect to {name!r} for this network; "
                             f"known: {sorted(allowed)}")


# ----------------------------------------------------------------------------- finite depth


def _q0_tangent(name, q_aa, q_bb, q_ab, b, w):
    """d q_0 / d name for the three entries (bias: all ones; weight: the input part / w)."""
    if name == "bias_variance":
        return jnp.ones_like(q_aa), jnp.ones_like(q_bb), jnp.ones_like(q_ab)
    if name == "weight_variance":
        return (q_aa - b) / w, (q_bb - b) / w, (q_ab - b) / w
    zeros = (jnp.zeros_like(q_aa), jnp.zeros_like(q_bb), jnp.zeros_like(q_ab))
    if name in PARTIALS:  # a unit perturbation of one entry of q_0
        k = PARTIALS.index(name)
        return tuple(jnp.ones_like(z) if i == k else z for i, z in enumerate(zeros))
    return zeros


def _layers_tangent(name, layers, architecture, T):
    skips, gains, shifts = layers
    zero = jnp.zeros_like(gains)
    if architecture == "resnet":
        return (zero, gains / T if name == "branch_variance" else zero, zero)
    return (zero, jnp.ones_like(gains) if name in ("weight_variance", LAYER_WEIGHT) else zero,
            jnp.ones_like(shifts) if name == "bias_variance" else zero)


def _unit(act, architecture):
    """The ReLU family in a ResNet (no shifts): K(a, b) = n_a n_b K(z_a, z_b) exactly (its duals
    are degree-one homogeneous in each input), so the recursion runs on the unit rows and the
    norms multiply on the host: no underflow or overflow of n^2 for tiny or huge inputs (XLA on
    CPU flushes subnormal numbers to zero)."""
    return act.homogeneous and architecture == "resnet"


@partial(jax.jit, static_argnames=("act", "ntk", "diagonal", "names", "architecture"))
def _recursion_tile(z1, n1, z2, n2, layers, b, w, T, *, act, ntk, diagonal, names,
                    architecture):
    rho, q_ab = covariance(z1, n1, z2, n2, diagonal, xp=jnp)
    q_aa, q_bb = n1 * n1, n2 * n2
    # the ReLU family in a ResNet: on unit rows (_unit), the host multiplies by n_a n_b
    unit = _unit(act, architecture)
    norms = n1[:, None] * n2[None, :] if unit else 1.0  # (the norms multiply on the host)

    def f(q_aa, q_bb, q_ab, layers):
        out = recursion.run(act, q_aa, q_bb, q_ab, q_ab if ntk else None, layers,
                            symmetric=diagonal)
        return out[1] if ntk else out[0]

    start = (jnp.ones_like(n1), jnp.ones_like(n2), rho) if unit else (q_aa, q_bb, q_ab)
    stack = [f(*start, layers)]
    for name in names:  # one forward-mode pass per name: independent of the others
        t_aa, t_bb, t_ab = _q0_tangent(name, q_aa, q_bb, q_ab, b, w)
        if unit:  # the tangents of the unit rows' covariances (0 for a zero row: padding)
            over = lambda t, n: jnp.where(n > 0, t / jnp.where(n > 0, n, 1.0), 0.0)  # noqa: E731
            t_aa, t_bb, t_ab = over(t_aa, n1 * n1), over(t_bb, n2 * n2), over(t_ab, norms)
        tangent = (t_aa, t_bb, t_ab, _layers_tangent(name, layers, architecture, T))
        stack.append(jax.jvp(f, start + (layers,), tangent)[1])
    return jnp.stack(stack)


NEAR_PARALLEL = 1e-4  # 1 - |rho| below which a pair's difference is formed explicitly


def _differences(z1, z2):
    """|z_a - z_b|^2 and |z_a + z_b|^2 of unit rows (host, (N, M) each) with relative digits at
    any angle: 2 -+ 2 z_a . z_b (one matrix product) is exact to absolute rounding, enough where
    1 - |rho| >= NEAR_PARALLEL; the nearly parallel and antiparallel pairs (the diagonal of
    K(X, X) among them) are formed from the pair's own difference and sum."""
    z1, z2 = np.asarray(z1), np.asarray(z2)
    rho = z1 @ z2.T
    minus, plus = 2.0 - 2.0 * rho, 2.0 + 2.0 * rho
    I, J = np.nonzero(np.abs(rho) > 1.0 - NEAR_PARALLEL)
    if I.size:
        minus[I, J] = np.sum((z1[I] - z2[J]) ** 2, axis=-1)
        plus[I, J] = np.sum((z1[I] + z2[J]) ** 2, axis=-1)
    return minus, plus


@partial(jax.jit, static_argnames=("cross", "mean"))
def _family_ntk_tile(dm, dp, layers, *, cross, mean):
    r"""The NTK of a ReLU-family ResNet at finite depth on unit rows (the host multiplies by
    n_a n_b), carrying :math:`\delta^\mp = q_{aa} + q_{bb} \mp 2q_{ab}` instead of q_ab
    (docs/theory.md, "The ReLU family's NTK"): per block,
    :math:`\delta^\mp \leftarrow s\delta^\mp + g(m\delta^\mp \mp 2cQ D(\theta))` with
    :math:`\theta = 2\,\mathrm{atan2}(\sqrt{\delta^-}, \sqrt{\delta^+})`, so the angle keeps its
    relative digits for near-identical pairs. ``dm``, ``dp``: :func:`_differences`."""
    Q = jnp.ones_like(dm)  # q_aa = q_bb on unit rows, through every block

    def block(carry, schedule):
        Q, dm, dp, th = carry
        s, g, _ = schedule  # a ResNet's blocks have no shift
        angle = 2.0 * jnp.arctan2(jnp.sqrt(dm), jnp.sqrt(dp))
        slope = mean - cross * angle  # the derivative dual
        dual = cross * Q * jnp.sin(angle) + slope * 0.25 * (dp - dm)
        bend = 2.0 * cross * Q * relu_flow.big_d(angle)
        return (s * Q + g * mean * Q, s * dm + g * (mean * dm - bend),
                s * dp + g * (mean * dp + bend), s * th + g * (dual + th * slope)), None

    (_, _, _, theta), _ = jax.lax.scan(block, (Q, dm, dp, 0.25 * (dp - dm)), layers)
    return theta


@partial(jax.jit, static_argnames=("cross", "mean"))
def _order_zero_tile(dm, dp, n1, n2, layers, *, cross, mean):
    r"""The NNGP of the step or the sign at finite depth (any architecture), carrying with q_ab
    the pair's distances :math:`\delta^\mp = q_{aa} + q_{bb} \mp 2q_{ab}` and Gram determinant
    :math:`G = q_{aa}q_{bb} - q_{ab}^2`, so that the angle
    :math:`\theta = \mathrm{atan2}(\sqrt G, q_{ab})` keeps its digits for near-identical and
    near-opposite pairs (docs/theory.md, "Nearly parallel pairs"). With the dual
    :math:`m - c\theta` at positive variances, a layer (s, g, shift) has
    :math:`A - B = gc\theta` and :math:`A + B = g(2m - c\pi) + gc(\pi - \theta) + 2\,\mathrm{shift}`
    (A, B: what it adds to a variance and to q_ab), and updates without cancellation
    :math:`\delta^\mp \leftarrow s\delta^\mp + 2(A \mp B)` (no shift in the minus one),
    :math:`G \leftarrow s^2G + s(A\delta^\mp \pm 2(A \mp B)q_{ab}) + (A - B)(A + B)` (the upper
    signs for :math:`q_{ab} \ge 0`). ``dm``, ``dp``: :func:`_differences` of the unit rows; a
    zero-variance row gives 0 (the step and the sign are 0 at 0)."""
    nn = n1[:, None] * n2[None, :]
    a = jnp.broadcast_to((n1 * n1)[:, None], nn.shape)
    b = jnp.broadcast_to((n2 * n2)[None, :], nn.shape)
    gap = (n1[:, None] - n2[None, :]) ** 2
    state = (a, b, 0.25 * nn * (dp - dm), gap + nn * dm, gap + nn * dp,
             0.25 * nn * nn * dm * dp)  # G = n_a^2 n_b^2 sin^2, sin^2 = |z_a - z_b|^2 |z_a + z_b|^2 / 4

    def layer(carry, schedule):
        a, b, q_ab, d_minus, d_plus, G = carry
        s, g, shift = schedule
        live = (a > 0) & (b > 0)  # a zero variance: u = 0, where the step and the sign are 0
        near = jnp.arctan2(jnp.sqrt(jnp.maximum(G, 0.0)), jnp.abs(q_ab))  # min(theta, pi - theta)
        positive = q_ab >= 0
        theta, rest = jnp.where(positive, near, jnp.pi - near), jnp.where(positive, jnp.pi - near,
                                                                             near)
        A = g * mean + shift
        minus = jnp.where(live, g * cross * theta, 0.0)  # A - B
        plus = jnp.where(live, g * (2.0 * mean - cross * jnp.pi) + g * cross * rest + 2.0 * shift,
                         2.0 * shift)  # A + B
        v_a, v_b = g * jnp.where(a > 0, mean, 0.0), g * jnp.where(b > 0, mean, 0.0)
        a2, b2, q2 = s * a + v_a + shift, s * b + v_b + shift, s * q_ab + 0.5 * (plus - minus)
        side = jnp.where(positive, A * d_minus + 2.0 * minus * q_ab, A * d_plus - 2.0 * plus * q_ab)
        G2 = jnp.where(live, s * s * G + s * side + minus * plus, a2 * b2 - q2 * q2)
        d_minus2 = s * d_minus + jnp.where(live, 2.0 * minus, v_a + v_b)
        d_plus2 = s * d_plus + jnp.where(live, 2.0 * plus, v_a + v_b + 4.0 * shift)
        return (a2, b2, q2, d_minus2, d_plus2, G2), None

    return jax.lax.scan(layer, state, layers)[0][2]


def _order_zero_host(z1, n1, z2, n2, *, diagonal, layers, cross, mean):
    return np.asarray(_order_zero_tile(*_differences(z1, z2), n1, n2, layers, cross=cross,
                                       mean=mean))[None]


def _family_ntk_host(z1, n1, z2, n2, *, diagonal, layers, cross, mean):
    return (np.asarray(_family_ntk_tile(*_differences(z1, z2), layers, cross=cross, mean=mean))
            * (np.asarray(n1)[:, None] * np.asarray(n2)[None, :]))[None]


@partial(jax.jit, static_argnames=("act", "ntk", "names", "architecture"))
def _recursion_pairs(q_aa, q_bb, q_ab, layers, b, w, T, *, act, ntk, names, architecture):
    """:func:`_recursion_tile` for flat (P,) pairs, (1 + len(names), P): the entries of a tile
    that need the costly graded rule, and no others."""

    def one(a, c, ab):
        def f(a, c, ab, layers):
            out = recursion.run(act, a[None], c[None], ab[None, None],
                                ab[None, None] if ntk else None, layers)
            return (out[1] if ntk else out[0])[0, 0]

        stack = [f(a, c, ab, layers)]
        for name in names:
            tangent = _q0_tangent(name, a, c, ab, b, w) + (
                _layers_tangent(name, layers, architecture, T),)
            stack.append(jax.jvp(f, (a, c, ab, layers), tangent)[1])
        return jnp.stack(stack)

    return jax.vmap(one)(q_aa, q_bb, q_ab).T


@partial(jax.jit, static_argnames=("act",))
def _recursion_tops(n, layers, *, act):
    """The largest variance of each input over the layers (1-D duals)."""
    def step(carry, schedule):
        q, top = carry
        s, g, c = schedule
        q = s * q + g * diagonal_velocity(act, q)[0] + c
        return (q, jnp.maximum(top, q)), None

    (_, top), _ = jax.lax.scan(step, (n * n, n * n), layers)
    return top


def _recursion_tile_host(z1, n1, z2, n2, *, diagonal, rules, layers, **kwargs):
    """The finite-depth tile with the cheapest rule that every entry's variances allow: each
    needed rule computes the tile, and each entry takes its own (its value depends on its own
    inputs only)."""
    if len(rules) == 1:
        out = np.asarray(_recursion_tile(z1, n1, z2, n2, layers, diagonal=diagonal,
                                         act=rules[0], **kwargs))
        if _unit(rules[0], kwargs["architecture"]):
            out = out * (np.asarray(n1)[:, None] * np.asarray(n2)[None, :])
        return out
    with float64():
        k = [_rule_index(rules, np.asarray(_recursion_tops(jnp.asarray(n), layers, act=rules[-1])))
             for n in (n1, n2)]
    # an entry's rule is its inputs' larger one; a zero-norm row (the tile's padding, or q_0 = 0)
    # keeps q = 0 through the layers, so its entries need no costly rule
    k = np.where((np.asarray(n1)[:, None] > 0) & (np.asarray(n2)[None, :] > 0),
                 np.maximum(k[0][:, None], k[1][None, :]), 0)
    out = None
    for r in np.unique(k):
        if r < len(rules) - 1 or out is None:
            tile = np.array(_recursion_tile(z1, n1, z2, n2, layers, diagonal=diagonal,
                                            act=rules[min(r, len(rules) - 2)], **kwargs))
            out = tile if out is None else np.where(k == r, tile, out)
    if np.any(k == len(rules) - 1):  # the graded rule: only for the entries that need it
        I, J = np.nonzero(k == len(rules) - 1)
        rho = np.where(diagonal & (I == J), 1.0, pair_correlations(z1[I], z2[J]))
        pad = np.concatenate([np.arange(I.size), np.zeros(_pair_bucket(I.size) - I.size, int)])
        qa, qb, qab = (n1[I] ** 2)[pad], (n2[J] ** 2)[pad], (n1[I] * n2[J] * rho)[pad]
        values = _recursion_pairs(qa, qb, qab, layers, kwargs["b"], kwargs["w"], kwargs["T"],
                                  act=rules[-1], ntk=kwargs["ntk"], names=kwargs["names"],
                                  architecture=kwargs["architecture"])
        out[:, I, J] = np.asarray(values)[:, :I.size]
    return out


@partial(jax.jit, static_argnames=("act", "ntk", "unit"))
def _recursion_diagonal(n, layers, *, act, ntk, unit):
    """K(x, x) at finite depth; ``unit`` (:func:`_unit`): K(z, z), the host multiplies by n^2."""
    q = jnp.ones_like(n) if unit else n * n
    out = recursion.run_diagonal(act, q, q if ntk else None, layers)
    return out[1] if ntk else out[0]


# ----------------------------------------------------------------------------- ReLU limit


_relu_table = jax.jit(relu_flow.table)


@partial(jax.jit, static_argnames=("diagonal",))
def _correlations(z1, n1, z2, n2, *, diagonal):
    return covariance(z1, n1, z2, n2, diagonal, xp=jnp)[0]


# One jitted function per output: XLA's CPU backend runs several outputs of one fusion, or a
# matrix product fused into the table lookup, several times slower.


@jax.jit
def _relu_value(rho, n1, n2, coefs, T):
    return jnp.exp(0.5 * T) * n1[:, None] * n2[None, :] * relu_flow.lookup(coefs[relu_flow.VALUE], rho)


@jax.jit
def _relu_d_T(rho, n1, n2, K, coefs, T):
    """dK/dT = K/2 + e^{T/2} n_a n_b dR/dT (relu_flow's row D_DT)."""
    R_t = relu_flow.lookup(coefs[relu_flow.D_DT], rho)
    return 0.5 * K + jnp.exp(0.5 * T) * n1[:, None] * n2[None, :] * R_t


@jax.jit
def _relu_d_bias(rho, n1, n2, K, coefs, T):
    """dK/d sigma_b^2 = dK/dq + dK/dn_a / (2 n_a) + dK/dn_b / (2 n_b), with
    dK/dq = e^{T/2} R', dK/dn_a = e^{T/2} n_b (R - rho R') (relu_flow's partials)."""
    a, c = n1[:, None], n2[None, :]
    growth = jnp.exp(0.5 * T)
    positive = (a > 0) & (c > 0)
    safe = lambda n: jnp.where(positive, n, 1.0)  # noqa: E731
    R = K / (growth * safe(a) * safe(c))
    R_rho = relu_flow.lookup(coefs[relu_flow.D_DRHO], rho)
    ratio = 0.5 * (safe(a) / safe(c) + safe(c) / safe(a))  # (n_a^2 + n_b^2) / (2 n_a n_b)
    return jnp.where(positive, growth * (ratio * (R - rho * R_rho) + R_rho), 0.0)


@jax.jit
def _relu_partials(rho, n1, n2, coefs, T):
    """dK/dq_aa, dK/dq_bb, dK/dq_ab of K = e^{T/2} n_a n_b R(rho), rho = q_ab / (n_a n_b):
    e^{T/2} n_b (R - rho R') / (2 n_a), the same with a, b exchanged, and e^{T/2} R'."""
    a, c = n1[:, None], n2[None, :]
    growth = jnp.exp(0.5 * T)
    positive = (a > 0) & (c > 0)
    safe = lambda n: jnp.where(positive, n, 1.0)  # noqa: E731
    R = relu_flow.lookup(coefs[relu_flow.VALUE], rho)
    R_rho = relu_flow.lookup(coefs[relu_flow.D_DRHO], rho)
    side = growth * (R - rho * R_rho) * 0.5
    return (jnp.where(positive, side * safe(c) / safe(a), 0.0),
            jnp.where(positive, side * safe(a) / safe(c), 0.0),
            jnp.where(positive, growth * R_rho, 0.0))


@jax.jit
def _relu_ntk_value(d_minus, d_plus, n1, n2, coefs, growth, ratio):
    """NTK of the ReLU family at infinite depth: growth n_a n_b (U + ratio V) at v = sqrt(1 - |rho|)
    = sqrt(min(|z_a - z_b|^2, |z_a + z_b|^2) / 2) (relu_flow's NTK table; :func:`_differences`,
    exact to rounding for near-identical pairs)."""
    rows = relu_flow.lookup_v(coefs, jnp.sqrt(0.5 * jnp.minimum(d_minus, d_plus)),
                              d_plus < d_minus)
    return growth * n1[:, None] * n2[None, :] * (rows[..., relu_flow.NTK_U]
                                                 + ratio * rows[..., relu_flow.NTK_V])


def _relu_ntk_tile(z1, n1, z2, n2, *, diagonal, coefs, growth, ratio):
    return np.asarray(_relu_ntk_value(*_differences(z1, z2), n1, n2, coefs, growth, ratio))[None]


def _relu_tile(z1, n1, z2, n2, *, diagonal, coefs, T, b, w, names):
    rho = _correlations(z1, n1, z2, n2, diagonal=diagonal)
    K = _relu_value(rho, n1, n2, coefs, T)
    if not names:
        return np.asarray(K)[None]
    stack = [K]
    d_bias = None
    if "bias_variance" in names or "weight_variance" in names:
        d_bias = _relu_d_bias(rho, n1, n2, K, coefs, T)
    partials = _relu_partials(rho, n1, n2, coefs, T) if set(names) & set(PARTIALS) else None
    for name in names:
        if name == "branch_variance":
            stack.append(_relu_d_T(rho, n1, n2, K, coefs, T))
        elif name == "bias_variance":
            stack.append(d_bias)
        elif name in PARTIALS:
            stack.append(partials[PARTIALS.index(name)])
        else:  # degree-one homogeneity: the scale direction of q_0 gives K itself
            stack.append((K - b * d_bias) / w)
    return np.stack([np.asarray(x) for x in stack])


# ----------------------------------------------------------------------------- pair flow


_INNER = ("bias_variance", "weight_variance")  # the input-layer directions (tangents of q_0)
_EVERY = ("branch_variance",) + _INNER


@partial(jax.jit, static_argnames=("act", "ntk", "names", "rtol", "atol"))
def _pair_chunk(q_aa, q_bb, q_ab, parallel, T, b, w, *, act, ntk, names, rtol, atol):
    """The pair flow of P pairs given flat (P,) covariances, each pair with its OWN steps
    (``vmap`` over the pairs: a pair's value never depends on the others); ``parallel``
    flags the pairs kept exactly parallel (:func:`resgp.core.limit.pair_flow`). Returns
    (1 + len(names), P) values and derivatives, and the worst solver status."""

    inner = [nm for nm in _INNER + PARTIALS if nm in names]

    def one(a, c, ab, par):
        tangents = None
        if inner:
            d = [_q0_tangent(nm, a, c, ab, b, w) for nm in inner]
            pair = jnp.stack([x[2] for x in d])[:, None, None]
            tangents = (jnp.stack([x[0] for x in d])[:, None],
                        jnp.stack([x[1] for x in d])[:, None], pair,
                        pair if ntk else jnp.zeros_like(pair))
        y, S, info = limit.pair_flow(act, T, a[None], c[None], ab[None, None],
                                     ab[None, None] if ntk else None, rtol=rtol, atol=atol,
                                     tangents=tangents, parallel=par[None, None])
        part = 3 if ntk else 2
        out = [y[part][0, 0]]
        for name in names:
            if name == "branch_variance":
                v = velocity(act, y[0][:, None], y[1][None, :], y[2], y[3] if ntk else None)
                out.append((v[1] if ntk else v[0])[0, 0])
            else:
                out.append(S[part][inner.index(name), 0, 0])
        return jnp.stack(out), info["status"]

    out, status = jax.vmap(one)(q_aa, q_bb, q_ab, parallel)
    return out.T, jnp.max(status)


def _order_zero_rhs(cross, mean):
    """The continuous form of :func:`_order_zero_tile`'s layer (s = 1, g = dt, no shift), for
    one pair: the state (q_aa, q_bb, q_ab, delta^-, delta^+, G)."""
    def rhs(y):
        a, b, q_ab, d_minus, d_plus, G = y
        live = (a > 0) & (b > 0)
        near = jnp.arctan2(jnp.sqrt(jnp.maximum(G, 0.0)), jnp.abs(q_ab))
        positive = q_ab >= 0
        theta, rest = jnp.where(positive, near, jnp.pi - near), jnp.where(positive, jnp.pi - near,
                                                                             near)
        minus = jnp.where(live, cross * theta, 0.0)  # m - dual
        plus = jnp.where(live, 2.0 * mean - cross * jnp.pi + cross * rest, 0.0)  # m + dual
        v_a, v_b = jnp.where(a > 0, mean, 0.0), jnp.where(b > 0, mean, 0.0)
        dG = jnp.where(positive, mean * d_minus + 2.0 * minus * q_ab,
                       mean * d_plus - 2.0 * plus * q_ab)
        return (v_a, v_b, 0.5 * (plus - minus), jnp.where(live, 2.0 * minus, v_a + v_b),
                jnp.where(live, 2.0 * plus, v_a + v_b), jnp.where(live, dG, v_a * b + a * v_b))
    return rhs


@partial(jax.jit, static_argnames=("cross", "mean", "rtol", "atol"))
def _order_zero_chunk(n_a, n_b, dm, dp, T, *, cross, mean, rtol, atol):
    """The infinite-depth NNGP of the step or the sign for P flat pairs (norms n, unit rows'
    |z_a -+ z_b|^2), each pair with its own steps, carrying the distances and the Gram
    determinant (docs/theory.md, "Nearly parallel pairs"). Returns (P,) values and the worst
    solver status."""
    def one(na, nb, m_, p_):
        nn = na * nb
        gap = (na - nb) ** 2
        y0 = (na * na, nb * nb, 0.25 * nn * (p_ - m_), gap + nn * m_, gap + nn * p_,
              0.25 * nn * nn * m_ * p_)
        tiny = jnp.maximum(1e-30 * nn, 1e-300)  # delta and G: error control relative to themselves
        scale = (jnp.maximum(na * na, 1e-300), jnp.maximum(nb * nb, 1e-300),
                 jnp.maximum(nn, 1e-300), tiny, tiny, tiny * tiny)
        y, _, info = ode.solve(_order_zero_rhs(cross, mean), y0, T, scale=scale, rtol=rtol,
                               atol=atol)
        return y[2], info["status"]

    out, status = jax.vmap(one)(n_a, n_b, dm, dp)
    return out, jnp.max(status)


def _pair_bucket(count):
    """Padded chunk size: powers of two from 16 up to PAIR_CHUNK (few compiled shapes)."""
    return min(PAIR_CHUNK, max(16, 1 << (count - 1).bit_length()))


def _series_rules(act):
    """The rules of a series activation (tanh, the sigmoid, callables), cheapest first: its
    Mehler series alone at each order of :func:`series_orders` (each accurate up to its
    ``mehler_max``), then ``act`` itself (the direct sum or the graded rule beyond). [act] for
    closed forms."""
    if act.order is None or not np.isfinite(act.mehler_max):
        return [act]
    orders = series_orders(act)
    return [series_for(at_order(act, order), 0.0) for order in orders] + [act]


def _rule_index(rules, tops):
    """Per input: the first rule whose range covers SERIES_MARGIN * its largest variance. A
    pair takes the larger index of its two inputs: it depends on its own variances only."""
    limits = [r.mehler_max / SERIES_MARGIN for r in rules[:-1]]
    return np.searchsorted(np.asarray(limits), np.asarray(tops), side="left")


def _pair_rules(net, n1, n2, I, J):
    """[(activation, pair indices)]: the rule each pair's duals need along its flow. For a
    quadrature activation the variances grow along the flow, so a pair's largest variance is
    max(q_T(a), q_T(b)). A clear error when more than MAX_GRADED_PAIRS need the graded rule."""
    rules = _series_rules(net.activation)
    if len(rules) == 1:
        return [(rules[0], np.arange(I.size))]
    tops = [_diagonal_flow(net.activation, net.branch_variance, n * n, rtol=net.rtol,
                           atol=net.atol)[0] for n in (n1, n2)]
    k = np.maximum(_rule_index(rules, tops[0])[I], _rule_index(rules, tops[1])[J])
    count = int(np.sum(k == len(rules) - 1))
    mixture = net.activation.quadrature is None  # tanh, the sigmoid: the direct double sum
    if count > MAX_GRADED_PAIRS * (MIXTURE_FACTOR if mixture else 1):
        hi = np.maximum(tops[0][I], tops[1][J])
        rule = ("the direct double sum over their scale mixture (about 1 ms per pair)" if mixture
                else "the 2-D graded quadrature (tens of ms per pair on one CPU core)")
        raise ValueError(
            f"{count} pairs of inputs reach variances above {rules[-2].mehler_max:.3g} along "
            f"the infinite-depth flow (largest {hi.max():.3g}), where the duals of activation "
            f"{net.activation.name!r} need {rule}; at most "
            f"{MAX_GRADED_PAIRS * (MIXTURE_FACTOR if mixture else 1)} such pairs are "
            f"integrated. Standardise the inputs, or lower weight_variance, bias_variance or "
            f"branch_variance.")
    return [(rule, np.flatnonzero(k == r)) for r, rule in enumerate(rules) if np.any(k == r)]


@partial(jax.jit, static_argnames=("act", "rtol", "atol"))
def _variance_flow(q, T, *, act, rtol, atol):
    y, _, info = limit.diagonal_flow(act, T, q, rtol=rtol, atol=atol)
    return y[0], info["status"]


def _check_variances(net, q):
    r"""The variances' own flow must reach T before any pair is integrated: a flow that grows
    faster than linearly (ReQU: :math:`\dot q = 3q^2/2`, :math:`q_t = q_0/(1 - 3 q_0 t/2)`)
    blows up in finite depth time; an activation that is NaN where its duals sample it stops
    the flow; a flow that needs more than ode.MAX_STEPS steps is refused with its range."""
    padded = np.full(bucket(q.size), q[0])  # padding repeats a real variance
    padded[:q.size] = q
    qT, status = _variance_flow(padded, jnp.float64(net.branch_variance), act=net.activation,
                                rtol=net.rtol, atol=net.atol)
    status = int(status)
    if status == ode.OK:
        return
    reached = np.asarray(qT)[:q.size]
    reached = reached[np.isfinite(reached)]
    top = float(max(q.max(), reached.max() if reached.size else 0.0))
    what = (f"the variances' flow of activation {net.activation.name!r} does not reach depth "
            f"time branch_variance = {net.branch_variance:g} from input variances q_0 in "
            f"[{q.min():.3g}, {q.max():.3g}]")
    message = non_finite_message(net.activation, top)
    if message is not None:
        raise ValueError(f"{what}: {message}")
    if status == ode.TOO_MANY_STEPS:
        raise ValueError(
            f"{what}: it needs more than {ode.MAX_STEPS} ODE steps at rtol = {net.rtol:g} (the "
            f"variances grow by many orders of magnitude along it, or it blows up in finite "
            f"depth time); lower branch_variance, loosen rtol/atol, or standardise the inputs")
    raise ValueError(
        f"{what}: it grew to {top:.3g} and became infinite (it blows up in finite depth "
        f"time); lower branch_variance or the scale of the inputs")


def _identical(f1, f2):
    """(I, J): the pairs of a cross kernel whose augmented inputs are bitwise identical."""
    rows = {}
    for i, (z, n) in enumerate(zip(*f1)):
        rows.setdefault(z.tobytes() + n.tobytes(), []).append(i)
    pairs = [(i, j) for j, (z, n) in enumerate(zip(*f2))
             for i in rows.get(z.tobytes() + n.tobytes(), ())]
    return (np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64))


def _set_identical(out, net, f1, f2, names):
    """Pairs of identical inputs in a cross kernel ARE the diagonal: the variance's own flow,
    exactly as K(X, X) has it, so that K(x, x) is one number whatever the call (infinite depth;
    a pair flow at rho = 1 also meets the ReLU family's non-smooth point with rounding)."""
    I, J = _identical(f1, f2)
    if I.size:
        rows = np.unique(I)
        diag = np.array(_diagonal_stack(net, f1[1][rows] ** 2, names))
        out[:, I, J] = diag[:, np.searchsorted(rows, I)]
    return out


def _pair_gram(net, f1, f2, names):
    """K(X1, X2) (and gradients) by the pair flow of every pair, flat, PAIR_CHUNK at a time;
    ``f2=None``: the pairs on and above the diagonal of K(X1, X1), mirrored."""
    z1, n1 = f1
    z2, n2 = f1 if f2 is None else f2
    if f2 is None:  # the diagonal is the variances' own flow (below)
        I, J = np.triu_indices(n1.size, k=1)
    else:
        I, J = (x.reshape(-1) for x in np.indices((n1.size, n2.size)))
    _check_variances(net, np.concatenate([n1, n2]) ** 2)
    # every direction whenever any is asked for: a gradient never depends on what else is
    # asked; per-feature weight variances take the partials of q_0 instead of the scale
    every = () if not names else ((_EVERY[:2] + PARTIALS) if net.ard else
                                  _EVERY + (PARTIALS if set(names) & set(PARTIALS) else ()))
    pick = [0] + [1 + every.index(nm) for nm in names]
    out = np.empty((1 + len(names), I.size))
    ident = np.zeros(I.size, bool)
    if f2 is not None:  # identical inputs: the diagonal's values (_set_identical, below)
        a, b = _identical(f1, f2)
        ident[a * n2.size + b] = True
    T = jnp.float64(net.branch_variance)
    work = np.flatnonzero(~ident)
    for act, idx in _pair_rules(net, n1, n2, I[work], J[work]):
        for start in range(0, idx.size, PAIR_CHUNK):
            sel = work[idx[start:start + PAIR_CHUNK]]
            i, j = I[sel], J[sel]
            pad = np.concatenate([np.arange(sel.size),  # padding repeats the first pair
                                  np.zeros(_pair_bucket(sel.size) - sel.size, np.int64)])
            if not names and order_zero(act) is not None:  # the angle from the pair's difference
                cross, mean = order_zero(act)
                res, status = _order_zero_chunk(
                    n1[i][pad], n2[j][pad], np.sum((z1[i] - z2[j]) ** 2, axis=-1)[pad],
                    np.sum((z1[i] + z2[j]) ** 2, axis=-1)[pad], T, cross=cross, mean=mean,
                    rtol=net.rtol, atol=net.atol)
                limit.host_status({"status": status},
                                  f"the infinite-depth flow of activation {act.name!r}")
                out[0, sel] = np.asarray(res)[:sel.size]
                continue
            rho = pair_correlations(z1[i], z2[j])
            qa, qb = n1[i][pad] ** 2, n2[j][pad] ** 2
            qab = (n1[i] * n2[j] * rho)[pad]
            # the ReLU family keeps exactly parallel pairs parallel (degree-one homogeneous)
            parallel = (rho[pad] == 1.0) & (act.spec is not None and act.spec[0] == "abrelu")
            res, status = _pair_chunk(qa, qb, qab, parallel, T, net.bias_variance,
                                      1.0 if net.ard else net.weight_variance, act=act,
                                      ntk=net.ntk, names=every,
                                      rtol=net.rtol, atol=net.atol)
            limit.host_status({"status": status},
                              f"the infinite-depth flow of activation {act.name!r}")
            out[:, sel] = np.asarray(res)[pick, :sel.size]
    K = np.empty((1 + len(names), n1.size, n2.size))
    K[:, I, J] = out
    if f2 is not None:
        _set_identical(K, net, f1, f2, names)
    if f2 is None:
        perm = _mirror(names)  # out's rows: the value, then names
        K[:, J, I] = out if perm is None else out[perm]
        idx = np.diag_indices(n1.size)
        for k, values in enumerate(_diagonal_stack(net, n1 ** 2, names)):
            K[k][idx] = values
    return K


# ----------------------------------------------------------------------------- flow table


def _table_requests(net, names):
    output = "ntk" if net.ntk else "nngp"
    b, w = net.bias_variance, net.weight_variance
    combos = {"branch_variance": (("T", 1.0),), "bias_variance": (("diag", 1.0), ("ab", 1.0)),
              # the partials of q_0 (per-feature weight variances): d/dq(b, b) = diag - aa
              "q_aa": (("aa", 1.0),), "q_bb": (("diag", 1.0), ("aa", -1.0)),
              "q_ab": (("ab", 1.0),)}
    if "weight_variance" in names:  # a scalar (per-feature ones come as the partials)
        combos["weight_variance"] = (("scale", 1.0 / w), ("diag", -b / w), ("ab", -b / w))
    return [(output, (("value", 1.0),))] + [(output, combos[nm]) for nm in names]


def _table_tile(z1, n1, z2, n2, *, diagonal, table, requests):
    return jnp.stack(table.evaluate_tile(z1, n1, z2, n2, requests, diagonal))


def _table_gram(net, f1, f2, names):
    """The tabulated path, block by block of panels (flow_table.panel); a block whose table
    cannot be built takes the pair flow. None when the table does not apply at all."""
    tol = max(net.rtol, net.atol)  # the table's tolerance is the solver's
    if not 1e-13 <= tol <= 1e-3:
        return None
    partials = bool(set(names) & set(PARTIALS))
    perm = _mirror(names)  # a transposed block exchanges d/dq(a, a) and d/dq(b, b)
    n1 = f1[1]
    n2 = n1 if f2 is None else f2[1]
    if not (np.all(n1 > 0) and np.all(n2 > 0) and np.all(np.isfinite(n1))
            and np.all(np.isfinite(n2))):
        return None
    p1, p2 = flow_table.panel(n1 * n1), flow_table.panel(n2 * n2)
    requests = _table_requests(net, names)
    out = np.empty((1 + len(names), n1.size, n2.size))
    for i in np.unique(p1):
        rows = np.flatnonzero(p1 == i)
        g1 = (f1[0][rows], n1[rows])
        for j in np.unique(p2):
            if f2 is None and j < i:
                continue
            cols = np.flatnonzero(p2 == j)
            same = f2 is None and i == j
            g2 = None if same else ((f1 if f2 is None else f2)[0][cols], n2[cols])
            table = flow_table.table(i, j, T=net.branch_variance, activation=net.activation,
                                     ntk=net.ntk, tol=tol, derivatives=bool(names),
                                     partials=partials)
            if table is not None:
                block = tiled(partial(_table_tile, table=table, requests=requests), g1, g2,
                              tile=TABLE_TILE, mirror=perm)
            else:
                block = _pair_gram(net, g1, g2, names)
            out[:, rows[:, None], cols[None, :]] = block
            if f2 is None and not same:
                out[:, cols[:, None], rows[None, :]] = np.swapaxes(
                    block if perm is None else block[perm], 1, 2)
    if f2 is None:  # the diagonal: exactly the diagonal flow, and its sensitivity
        q = n1 ** 2
        idx = np.diag_indices(q.size)
        for k, values in enumerate(_diagonal_stack(net, q, names)):
            out[k][idx] = values
    return out


def _diagonal_stack(net, q, names):
    """Diagonal of K(X, X) and of each named gradient at infinite depth (non-ReLU NNGP)."""
    flow = partial(_diagonal_flow, net.activation, net.branch_variance, q, ntk=net.ntk,
                   rtol=net.rtol, atol=net.atol)
    (qT, thT), (S, S_th) = flow(sensitivity=True) if names else (flow(), (None, None))
    rows = [thT if net.ntk else qT]
    b, w = net.bias_variance, net.weight_variance
    for name in names:
        sens = S_th if net.ntk else S
        if name == "branch_variance":
            with float64():
                v = diagonal_velocity(net.activation, jnp.asarray(qT),
                                      jnp.asarray(thT) if net.ntk else None)
            rows.append(np.asarray(v[1] if net.ntk else v[0]))
        elif name == "bias_variance":
            rows.append(sens)
        elif name in PARTIALS:  # on the diagonal q_aa = q_bb = q_ab: only the sum counts
            rows.append(sens if name == "q_aa" else np.zeros_like(sens))
        else:
            rows.append(sens * (q - b) / w)
    return rows


# ----------------------------------------------------------------------------- public


def _tile_function(net, names):
    """(tile_fn, tile, pad) for the finite-depth and ReLU-angle paths (None: the pair flow)."""
    act, b, w, T = net.activation, net.bias_variance, net.weight_variance, net.branch_variance
    family = relu_family(act)
    if not net.infinite:
        layers = tuple(jnp.asarray(x) for x in net.layers())
        if net.ntk and not names and family is not None and family[0] > 0 \
                and _unit(act, net.architecture):
            return partial(_family_ntk_host, layers=layers, cross=family[0],
                           mean=family[1]), None, True
        if not names and order_zero(act) is not None:
            cross, mean = order_zero(act)
            return partial(_order_zero_host, layers=layers, cross=cross, mean=mean), None, True
        fn = partial(_recursion_tile_host, layers=layers, b=b, w=w, T=T if T > 0 else 1.0,
                     rules=_series_rules(act), ntk=net.ntk, names=names,
                     architecture=net.architecture)
        return fn, None, True
    if net.ntk and not names and family is not None and family[0] > 0:
        cross, mean = family  # the angle flow runs for S = 2 pi c T (relu_flow, "the NTK")
        coefs = jnp.asarray(relu_flow.ntk_table(2.0 * np.pi * cross * float(T)))
        return partial(_relu_ntk_tile, coefs=coefs, growth=jnp.float64(np.exp(mean * T)),
                       ratio=jnp.float64(mean / cross)), None, True
    if act is RELU and not net.ntk:
        T = jnp.float64(T)
        return partial(_relu_tile, coefs=_relu_table(T), T=T, b=b, w=w, names=names), None, True
    return None


TINY_NORM = 1e-150  # q_0 = n^2 below 1e-300 is refused where the variances enter the flows


def _check_scale(net, *norms):
    """Refuse input variances q_0 = n^2 in (0, 1e-300): near the subnormal range, which XLA on
    CPU flushes to zero, the flows and recursions lose every digit (the ReLU family's finite
    ResNet recursion, which runs on unit rows, takes any scale)."""
    if not net.infinite and _unit(net.activation, net.architecture):
        return
    for n in norms:
        small = (n > 0) & (n < TINY_NORM)
        if np.any(small):
            raise ValueError(
                f"{int(np.sum(small))} inputs have variance q_0 = sigma_w^2 |x|^2 / d + "
                f"sigma_b^2 below {TINY_NORM ** 2:g} (smallest {float(np.min(n[small])) ** 2:.3g}),"
                f" where float64 arithmetic under XLA flushes to zero; rescale the inputs or add "
                f"a bias_variance")


def _compute(net, X1, X2, names):
    _names_ok(net, names)
    names = tuple(names)
    for X, name in ((X1, "X1"), (X2, "X2")):
        if X is not None:
            check_features(X, net.weight_variance, name)
    f1 = features(X1, net.weight_variance, net.bias_variance)
    f2 = None if X2 is None else features(X2, net.weight_variance, net.bias_variance)
    _check_scale(net, f1[1], *(() if f2 is None else (f2[1],)))
    with float64():
        if net.infinite and not (net.activation is RELU and not net.ntk) \
                and not net.activation.homogeneous and net.activation.analytic:
            out = _table_gram(net, f1, f2, names)
            if out is not None:
                return out if f2 is None else _set_identical(out, net, f1, f2, names)
        tile_fn = _tile_function(net, names)
        if tile_fn is None:
            return _pair_gram(net, f1, f2, names)
        fn, tile, pad = tile_fn
        q_top = float(max(np.max(f1[1], initial=0.0), np.max((f1 if f2 is None else f2)[1],
                                                             initial=0.0))) ** 2
        out = tiled(fn, f1, f2, tile=tile, pad=pad, mirror=_mirror(names))
        return _finite(out, net, q_top)


def _finite(out, net, q_top):
    """The finite-depth recursion's output, or a clear error where it is not finite: an
    activation that is NaN or infinite where its duals sample it (``q_top``: the largest input
    variance), else an overflow (finite inputs: only a variance that grows too fast, e.g.
    ReQU's q -> q + g 3q^2/2, overflows)."""
    if not np.all(np.isfinite(out)):
        message = non_finite_message(net.activation, q_top)
        if message is not None:
            raise ValueError(message)
        raise OverflowError(
            f"the kernel of activation {net.activation.name!r} at depth {net.depth} overflowed "
            f"(the variances grow too fast through the layers); lower branch_variance or "
            f"weight_variance, the depth, or the scale of the inputs")
    return out


def gram(net, X1, X2=None):
    """K(X1, X2) of the network ``net``: float64 (N, M); ``X2=None``: exactly symmetric K(X1, X1).

    Parameters
    ----------
    net : Network
    X1 : ndarray (N, d)
        Validated inputs.
    X2 : ndarray (M, d) or None
    """
    return _compute(net, X1, X2, ())[0]


def _gram_and_partials(net, X, names):
    """(stack, {name: dK/dname}, ard): the stack (K, *derivatives) and its derivatives by name,
    with the input-layer partials (PARTIALS, and LAYER_WEIGHT for the MLP) in place of
    "weight_variance" when ``net.ard``."""
    names = tuple(names)
    ard = net.ard and "weight_variance" in names
    asked = tuple(n for n in names if n != "weight_variance") if ard else names
    if ard:
        chain = PARTIALS + ((LAYER_WEIGHT,) if net.architecture == "mlp" else ())
        asked += tuple(p for p in chain if p not in asked)
    out = _compute(net, X, None, asked)
    return out, dict(zip(asked, out[1:])), ard


def gram_and_gradients(net, X, names):
    r"""K(X, X) and its derivatives with respect to the hyperparameters ``names``.

    Parameters
    ----------
    net : Network
    X : ndarray (N, d)
    names : sequence of str
        Among "branch_variance", "weight_variance", "bias_variance" (and the partials
        "q_aa", "q_bb", "q_ab" with respect to the input layer's covariances; for the MLP
        "layer_weight_variance", the hidden layers' :math:`\sigma_w^2` with :math:`q_0` held).

    Returns
    -------
    K : ndarray (N, N)
    gradients : ndarray (G, N, N)
        :math:`\partial K/\partial\,\mathrm{name}` (not in log space), in the order of ``names``;
        per-feature weight variances (``net.ard``) give d of them in place of
        "weight_variance", :math:`\partial K/\partial w_i = (P_{aa} x_{ai}^2 + P_{bb}
        x_{bi}^2 + P_{ab} x_{ai}x_{bi}) / d` from the partials P, plus :math:`G/d` for the MLP,
        whose hidden layers have :math:`\sigma_w^2 = \bar w` (G: "layer_weight_variance";
        docs/theory.md, "Gradients").
    """
    names = tuple(names)
    out, got, ard = _gram_and_partials(net, X, names)
    K = out[0]
    if not ard:
        return K, out[1:]
    P_aa, P_bb, P_ab = (got[p] for p in PARTIALS)
    d = X.shape[1]
    gradients = np.empty((len(names) - 1 + d,) + K.shape)  # filled in place: d N^2 floats
    tmp = np.empty(K.shape)
    layer = got[LAYER_WEIGHT] / d if LAYER_WEIGHT in got else None  # d mean(w) / d w_i = 1/d
    row = 0
    for name in names:
        if name != "weight_variance":
            gradients[row] = got[name]
            row += 1
            continue
        for i in range(d):
            x = X[:, i]
            xx = x * x / d
            ard = gradients[row + i]
            np.multiply(P_aa, xx[:, None], out=ard)
            np.multiply(P_bb, xx[None, :], out=tmp)
            ard += tmp
            np.multiply(P_ab, (x / d)[:, None], out=tmp)
            tmp *= x[None, :]
            ard += tmp
            if layer is not None:
                ard += layer
        row += d
    return K, gradients


def gram_and_vjp(net, X, names):
    r"""K(X, X) and its vector-Jacobian product: :math:`M \mapsto \sum_{ab} M_{ab}\,
    \partial K_{ab}/\partial\,\mathrm{name}`, without the (G, N, N) gradient stack.

    A marginal-likelihood gradient needs only this contraction, :math:`\tfrac12\mathrm{tr}
    ((\alpha\alpha^\top - K^{-1})\,\partial K)`. With per-feature weight variances the d
    derivatives contract through the partials in :math:`O(N^2 d)` (one matrix product):

    .. math:: \sum_{ab} M_{ab}\frac{\partial K_{ab}}{\partial w_i} = \frac1d\Big[\sum_a
       x_{ai}^2 (M\circ P_{aa}\mathbf 1)_a + \sum_b x_{bi}^2 (\mathbf 1^\top M\circ
       P_{bb})_b + ((M\circ P_{ab}) X \circ X)^\top \mathbf 1\Big]_i

    (plus :math:`\sum M\circ G / d` for the MLP), the contraction of :func:`gram_and_gradients`.

    Parameters
    ----------
    net : Network
    X : ndarray (N, d)
    names : sequence of str
        As in :func:`gram_and_gradients`.

    Returns
    -------
    K : ndarray (N, N)
    vjp : callable
        ``vjp(M)``, M an ndarray (N, N), returns an ndarray (G,) in the order of
        :func:`gram_and_gradients` (d entries for "weight_variance" under ARD).
    """
    names = tuple(names)
    out, got, ard = _gram_and_partials(net, X, names)

    def vjp(M):
        grads = []
        for name in names:
            if not (ard and name == "weight_variance"):
                grads.append([np.vdot(M, got[name])])
                continue
            P_aa, P_bb, P_ab = (got[p] for p in PARTIALS)
            rows = np.einsum("ab,ab->a", M, P_aa)
            cols = np.einsum("ab,ab->b", M, P_bb)
            X2 = X * X
            g = X2.T @ rows + X2.T @ cols + np.einsum("ai,ai->i", (M * P_ab) @ X, X)
            if LAYER_WEIGHT in got:
                g = g + np.vdot(M, got[LAYER_WEIGHT])
            grads.append(g / X.shape[1])
        return np.concatenate(grads) if grads else np.empty(0)

    return out[0], vjp


def diagonal(net, X):
    """K(x, x) for the rows of ``X`` (N,), without forming the matrix."""
    check_features(X, net.weight_variance)
    _, n = features(X, net.weight_variance, net.bias_variance)
    _check_scale(net, n)
    act, T = net.activation, net.branch_variance
    if not net.infinite:
        with float64():
            layers = tuple(jnp.asarray(x) for x in net.layers())
            rules = _series_rules(act)
            k = _rule_index(rules, np.asarray(_recursion_tops(jnp.asarray(n), layers, act=act))) \
                if len(rules) > 1 else np.zeros(n.size, np.int64)
            out = np.empty(n.size)
            for r in np.unique(k):  # each variance with the rule of its own range
                unit = _unit(act, net.architecture)
                out[k == r] = np.asarray(_recursion_diagonal(
                    jnp.asarray(n[k == r]), layers, act=rules[r], ntk=net.ntk, unit=unit)) \
                    * (n[k == r] ** 2 if unit else 1.0)
            return _finite(out, net, float(np.max(n, initial=0.0)) ** 2)
    if act is RELU and not net.ntk:
        return n * n * np.exp(0.5 * T)  # q_T(a, a) = q_0(a, a) e^{T/2}
    try:
        qT, thT = _diagonal_flow(act, T, n * n, ntk=net.ntk, rtol=net.rtol, atol=net.atol)
    except (FloatingPointError, RuntimeError):
        with float64():
            _check_variances(net, n * n)  # the cause, named (NaN activation, blow-up, steps)
        raise
    return thT if net.ntk else qT
