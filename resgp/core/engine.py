r"""The compute engine: kernel matrices, diagonals and named gradients of a :class:`Network`.

Host entry points (NumPy in, NumPy float64 out, tiled by :mod:`resgp.core.tiling`):
:func:`gram`, :func:`diagonal` and :func:`gram_and_gradients`. Each picks one path
(docs/theory.md):

* finite depth: the recursion of :mod:`resgp.core.recursion`; gradients by forward mode;
* infinite depth, ReLU NNGP: the exact angle flow of :mod:`resgp.core.relu_flow`; gradients
  from its flow identities;
* infinite depth, smooth activations: the tabulated flow map of :mod:`resgp.core.flow_table`;
  gradients from its derivative tables, the diagonal from :mod:`resgp.core.diagonal`;
* otherwise (the ReLU family's NTK, tables that cannot be built): the pair flow of
  :mod:`resgp.core.limit` for every pair; gradients from its sensitivities.

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

from . import flow_table, limit, recursion, relu_flow
from .activations import RELU
from .diagonal import diagonal as _diagonal_flow
from .inputs import covariance, features
from .tiling import tiled
from .velocity import diagonal_velocity, velocity
from .x64 import float64

__all__ = ["gram", "diagonal", "gram_and_gradients", "ODE_TILE", "TABLE_TILE"]

ODE_TILE = 512  # pairs integrated together (only tiles on and above the diagonal)
TABLE_TILE = 512  # table evaluations: the column-side factors stay in cache


def _names_ok(net, names):
    allowed = {"branch_variance", "weight_variance", "bias_variance"}
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
    return jnp.zeros_like(q_aa), jnp.zeros_like(q_bb), jnp.zeros_like(q_ab)


def _layers_tangent(name, layers, architecture, T):
    skips, gains, shifts = layers
    zero = jnp.zeros_like(gains)
    if architecture == "resnet":
        return (zero, gains / T if name == "branch_variance" else zero, zero)
    return (zero, jnp.ones_like(gains) if name == "weight_variance" else zero,
            jnp.ones_like(shifts) if name == "bias_variance" else zero)


@partial(jax.jit, static_argnames=("act", "ntk", "diagonal", "names", "architecture"))
def _recursion_tile(z1, n1, z2, n2, layers, b, w, T, *, act, ntk, diagonal, names,
                    architecture):
    _, q_ab = covariance(z1, n1, z2, n2, diagonal, xp=jnp)
    q_aa, q_bb = n1 * n1, n2 * n2

    def f(q_aa, q_bb, q_ab, layers):
        out = recursion.run(act, q_aa, q_bb, q_ab, q_ab if ntk else None, layers,
                            symmetric=diagonal)
        return out[1] if ntk else out[0]

    K = f(q_aa, q_bb, q_ab, layers)
    stack = [K]
    for name in names:  # one forward-mode pass per name: independent of the others
        tangent = _q0_tangent(name, q_aa, q_bb, q_ab, b, w) + (
            _layers_tangent(name, layers, architecture, T),)
        stack.append(jax.jvp(f, (q_aa, q_bb, q_ab, layers), tangent)[1])
    return jnp.stack(stack)


@partial(jax.jit, static_argnames=("act", "ntk"))
def _recursion_diagonal(n, layers, *, act, ntk):
    q = n * n
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


def _relu_tile(z1, n1, z2, n2, *, diagonal, coefs, T, b, w, names):
    rho = _correlations(z1, n1, z2, n2, diagonal=diagonal)
    K = _relu_value(rho, n1, n2, coefs, T)
    if not names:
        return np.asarray(K)[None]
    stack = [K]
    d_bias = None
    if "bias_variance" in names or "weight_variance" in names:
        d_bias = _relu_d_bias(rho, n1, n2, K, coefs, T)
    for name in names:
        if name == "branch_variance":
            stack.append(_relu_d_T(rho, n1, n2, K, coefs, T))
        elif name == "bias_variance":
            stack.append(d_bias)
        else:  # degree-one homogeneity: the scale direction of q_0 gives K itself
            stack.append((K - b * d_bias) / w)
    return np.stack([np.asarray(x) for x in stack])


# ----------------------------------------------------------------------------- pair flow


@partial(jax.jit, static_argnames=("act", "ntk", "diagonal", "names", "rtol", "atol"))
def _pair_tile(z1, n1, z2, n2, T, b, w, *, act, ntk, diagonal, names, rtol, atol):
    _, q_ab = covariance(z1, n1, z2, n2, diagonal, xp=jnp)
    q_aa, q_bb = n1 * n1, n2 * n2
    # both input-layer directions ride along whenever any does: the same program (and so the
    # same rounding) whichever of them is asked for
    inner = ("bias_variance", "weight_variance")
    tangents = None
    if any(nm in inner for nm in names):
        directions = [_q0_tangent(nm, q_aa, q_bb, q_ab, b, w) for nm in inner]
        tangents = tuple(jnp.stack(x) for x in zip(*directions))
        tangents = tangents + (tangents[2] if ntk else jnp.zeros_like(tangents[2]),)
    y, S, info = _each_pair(act, T, q_aa, q_bb, q_ab, ntk, rtol, atol, tangents)
    if diagonal:  # the pairs (a, a) are the variances, exactly
        idx = jnp.diag_indices(q_aa.shape[0])
        y = (y[0], y[1], y[2].at[idx].set(jnp.diagonal(y[0])), y[3])
        if S is not None:
            S = (S[0], S[1], S[2].at[(slice(None),) + idx].set(
                jnp.diagonal(S[0], axis1=1, axis2=2)), S[3])
    part = 3 if ntk else 2
    K = y[part]
    stack = [K]
    for name in names:
        if name == "branch_variance":
            v = velocity(act, y[0], y[1], y[2], y[3] if ntk else None)
            stack.append(v[1] if ntk else v[0])
        else:
            stack.append(S[part][inner.index(name)])
    return jnp.stack(stack), info["status"]


def _each_pair(act, T, q_aa, q_bb, q_ab, ntk, rtol, atol, tangents):
    """The pair flow of every pair of a tile with its OWN steps (vmapped over the pairs): a
    pair's value never depends on the other pairs of the batch. Returns the state with the
    variances broadcast to the tile, (q_aa (b1, b2), q_bb, q_ab, theta), its tangents and
    the worst status."""
    b1, b2 = q_ab.shape
    a = jnp.broadcast_to(q_aa[:, None], (b1, b2)).reshape(-1)
    c = jnp.broadcast_to(q_bb[None, :], (b1, b2)).reshape(-1)
    ab = q_ab.reshape(-1)
    if tangents is not None:
        k = tangents[0].shape[0]
        flat = (jnp.broadcast_to(tangents[0][:, :, None], (k, b1, b2)).reshape(k, -1),
                jnp.broadcast_to(tangents[1][:, None, :], (k, b1, b2)).reshape(k, -1),
                tangents[2].reshape(k, -1), tangents[3].reshape(k, -1))

    def one(a, c, ab, t):
        tan = None if t is None else (t[0][:, None], t[1][:, None], t[2][:, None, None],
                                      t[3][:, None, None])
        y, S, info = limit.pair_flow(act, T, a[None], c[None], ab[None, None],
                                     ab[None, None] if ntk else None, rtol=rtol, atol=atol,
                                     tangents=tan)
        y = (y[0][0], y[1][0], y[2][0, 0], y[3][0, 0])
        S = None if S is None else (S[0][:, 0], S[1][:, 0], S[2][:, 0, 0], S[3][:, 0, 0])
        return y, S, info["status"]

    if tangents is None:
        y, _, status = jax.vmap(lambda a, c, ab: one(a, c, ab, None))(a, c, ab)
        S = None
    else:
        y, S, status = jax.vmap(one, in_axes=(0, 0, 0, (1, 1, 1, 1)))(a, c, ab, flat)
        S = tuple(x.T.reshape((-1, b1, b2)) for x in S)
    y = tuple(x.reshape(b1, b2) for x in y)
    return y, S, {"status": jnp.max(status)}


def _pair_tile_host(*args, names, **kwargs):
    """One program for every request: all three derivatives are computed whenever any is asked
    for (then picked), so a derivative is bit for bit the same whichever others come with it."""
    every = ("branch_variance", "bias_variance", "weight_variance") if names else ()
    out, status = _pair_tile(*args, names=every, **kwargs)
    limit.host_status({"status": status},
                      f"the infinite-depth flow of activation {kwargs['act'].name!r}")
    return np.asarray(out)[[0] + [1 + every.index(n) for n in names]]


# ----------------------------------------------------------------------------- flow table


def _table_requests(net, names):
    output = "ntk" if net.ntk else "nngp"
    b, w = net.bias_variance, net.weight_variance
    combos = {"branch_variance": (("T", 1.0),), "bias_variance": (("diag", 1.0), ("ab", 1.0)),
              "weight_variance": (("scale", 1.0 / w), ("diag", -b / w), ("ab", -b / w))}
    return [(output, (("value", 1.0),))] + [(output, combos[nm]) for nm in names]


def _table_tile(z1, n1, z2, n2, *, diagonal, table, requests):
    return jnp.stack(table.evaluate_tile(z1, n1, z2, n2, requests, diagonal))


def _table_gram(net, f1, f2, names):
    """The tabulated path, block by block of panels (flow_table.panel); a block whose table
    cannot be built takes the pair flow. None when the table does not apply at all."""
    tol = max(net.rtol, net.atol)  # the table's tolerance is the solver's
    if not 1e-13 <= tol <= 1e-3:
        return None
    n1 = f1[1]
    n2 = n1 if f2 is None else f2[1]
    if not (np.all(n1 > 0) and np.all(n2 > 0) and np.all(np.isfinite(n1))
            and np.all(np.isfinite(n2))):
        return None
    p1, p2 = flow_table.panel(n1 * n1), flow_table.panel(n2 * n2)
    requests = _table_requests(net, names)
    out = np.empty((1 + len(names), n1.size, n2.size))
    pair_fn = None
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
                                     ntk=net.ntk, tol=tol, derivatives=bool(names))
            if table is not None:
                fn, tile, pad = partial(_table_tile, table=table, requests=requests), \
                    TABLE_TILE, True
            else:
                if pair_fn is None:
                    pair_fn = _tile_function(net, names)
                fn, tile, pad = pair_fn
            block = tiled(fn, g1, g2, tile=tile, pad=pad)
            out[:, rows[:, None], cols[None, :]] = block
            if f2 is None and not same:
                out[:, cols[:, None], rows[None, :]] = np.swapaxes(block, 1, 2)
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
        else:
            rows.append(sens * (q - b) / w)
    return rows


# ----------------------------------------------------------------------------- public


def _tile_function(net, names):
    """(tile_fn, tile, pad) for the finite-depth, ReLU and pair-flow paths."""
    act, b, w, T = net.activation, net.bias_variance, net.weight_variance, net.branch_variance
    if not net.infinite:
        layers = tuple(jnp.asarray(x) for x in net.layers())
        fn = partial(_recursion_tile, layers=layers, b=b, w=w, T=T if T > 0 else 1.0, act=act,
                     ntk=net.ntk, names=names, architecture=net.architecture)
        return fn, None, True
    if act is RELU and not net.ntk:
        T = jnp.float64(T)
        return partial(_relu_tile, coefs=_relu_table(T), T=T, b=b, w=w, names=names), None, True
    fn = partial(_pair_tile_host, T=jnp.float64(T), b=b, w=w, act=act, ntk=net.ntk,
                 names=names, rtol=net.rtol, atol=net.atol)
    return fn, ODE_TILE, True  # padded rows (zero variances) have their own error scale


def _compute(net, X1, X2, names):
    _names_ok(net, names)
    names = tuple(names)
    f1 = features(X1, net.weight_variance, net.bias_variance)
    f2 = None if X2 is None else features(X2, net.weight_variance, net.bias_variance)
    with float64():
        if net.infinite and not (net.activation is RELU and not net.ntk) \
                and not net.activation.homogeneous and net.activation.analytic:
            out = _table_gram(net, f1, f2, names)
            if out is not None:
                return out
        fn, tile, pad = _tile_function(net, names)
        return tiled(fn, f1, f2, tile=tile, pad=pad)


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


def gram_and_gradients(net, X, names):
    """K(X, X) and its derivatives with respect to the hyperparameters ``names``.

    Parameters
    ----------
    net : Network
    X : ndarray (N, d)
    names : sequence of str
        Among "branch_variance", "weight_variance", "bias_variance".

    Returns
    -------
    K : ndarray (N, N)
    gradients : ndarray (len(names), N, N)
        :math:`\\partial K/\\partial\\,\\mathrm{name}` (not in log space), in the order of ``names``.
    """
    out = _compute(net, X, None, names)
    return out[0], out[1:]


def diagonal(net, X):
    """K(x, x) for the rows of ``X`` (N,), without forming the matrix."""
    _, n = features(X, net.weight_variance, net.bias_variance)
    act, T = net.activation, net.branch_variance
    if not net.infinite:
        with float64():
            layers = tuple(jnp.asarray(x) for x in net.layers())
            return np.asarray(_recursion_diagonal(jnp.asarray(n), layers, act=act, ntk=net.ntk))
    if act is RELU and not net.ntk:
        return n * n * np.exp(0.5 * T)  # q_T(a, a) = q_0(a, a) e^{T/2}
    qT, thT = _diagonal_flow(act, T, n * n, ntk=net.ntk, rtol=net.rtol, atol=net.atol)
    return thT if net.ntk else qT
