r"""NNGP kernels of the scaled ResNet and of the MLP comparator, as plain functions.

Inputs ``X1`` (N, d) and ``X2`` (M, d), NumPy or JAX; out a float64 (N, M) matrix, a NumPy array
(a JAX array when ``X1`` is one), whatever the caller's JAX x64 setting.

Every kernel starts from the input layer's covariance
:math:`q_0(a, b) = \sigma_w^2 \langle a, b\rangle / d + \sigma_b^2 = \langle\tilde a, \tilde b\rangle`
with augmented inputs :math:`\tilde a = (\sigma_w a/\sqrt d, \sigma_b)`. Rows are kept as unit
vectors ``z`` and norms ``n`` (:math:`q_0(a,b) = n_a n_b \langle z_a, z_b\rangle`), which keeps
correlations exact for very large or very small inputs.

Finite depth uses one recursion for both networks (THEORY.md), layer by layer,

.. math:: q_l = s_l\, q_{l-1} + g_l\, \check\phi(q_{l-1}) + c_l,

ResNet: :math:`s_l = 1, g_l = \alpha_l^2, c_l = 0`; MLP: :math:`s_l = 0, g_l = \sigma_w^2,
c_l = \sigma_b^2`; the NTK (Neural Tangents' 'ntk' parameterisation) rides along,
:math:`\Theta_0 = q_0,\ \Theta_l = s_l\Theta_{l-1} + g_l(\check\phi(q_{l-1}) +
\Theta_{l-1}\check{\phi'}(q_{l-1})) + c_l`. Any activation of :mod:`resgp.activations`.

Infinite depth goes through one core function, :func:`resnet_limit` (input covariances in,
output covariances and NTK out; also behind :func:`resgp.nt.InfiniteResNet`): ReLU's NNGP
evaluates the tabulated angle flow of :mod:`resgp.relu_flow`,
:math:`K(a,b) = n_a n_b e^{T/2} \cos\theta_T(\theta_0)`; everything else integrates the ODE
of THEORY.md with :mod:`resgp.ode` (adaptive, error-controlled; ``rtol``/``atol``).

Large inputs are computed in tiles of at most ``TILE`` rows and columns, so memory stays within
the output matrix plus a few tiles; for ``X2=None`` only tiles on and above the diagonal are
computed and the result is exactly symmetric. ODE tiles are smaller (``ODE_TILE``) and not
padded.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import flow_table, ode, relu_flow
from ._validation import (
    check_branch_scales,
    check_depth,
    check_inputs,
    check_pair,
    check_variance,
)
from ._x64 import float64
from .activations import RELU, Activation, get_activation

TILE = 2048

__all__ = [
    "resnet_nngp",
    "resnet_nngp_diag",
    "resnet_ntk",
    "resnet_ntk_diag",
    "resnet_limit",
    "mlp_nngp",
    "mlp_nngp_diag",
    "mlp_ntk",
]


# ----------------------------------------------------------------------------- settings


def _resnet_layers(depth, branch_variance, branch_scales):
    """Per-layer (skip, gain, shift) of the ResNet recursion, or None for infinite depth."""
    depth = check_depth(depth, allow_none=True)
    if branch_scales is not None:
        if branch_variance != 1.0:
            raise ValueError(
                "give branch_variance or branch_scales, not both: branch_scales fixes the "
                "branch variances alpha_l^2 (their sum plays the role of branch_variance)"
            )
        gains = check_branch_scales(branch_scales, depth) ** 2
    else:
        T = check_variance("branch_variance", branch_variance)
        if depth is None:
            return None, T
        gains = np.full(depth, T / depth)
    return (np.ones_like(gains), gains, np.zeros_like(gains)), float(gains.sum())


def _mlp_layers(depth, weight_variance, bias_variance):
    depth = check_depth(depth, allow_none=False)
    return np.zeros(depth), np.full(depth, weight_variance), np.full(depth, bias_variance)


def _features(X: np.ndarray, weight_variance: float, bias_variance: float):
    """Unit rows z (N, d+1) and norms n (N,) of the augmented inputs (sigma_w x / sqrt d, sigma_b)."""
    A = np.empty((X.shape[0], X.shape[1] + 1))
    A[:, :-1] = X * np.sqrt(weight_variance / X.shape[1])
    A[:, -1] = np.sqrt(bias_variance)
    peak = np.abs(A).max(axis=1)  # scale first: no overflow or underflow in the squares
    A /= np.where(peak > 0, peak, 1.0)[:, None]
    unit_norm = np.sqrt(np.einsum("ij,ij->i", A, A))
    A /= np.where(unit_norm > 0, unit_norm, 1.0)[:, None]
    return A, peak * unit_norm


# ----------------------------------------------------------------------------- tile kernels


def _correlations(z1, z2, diagonal: bool):
    rho = jnp.clip(z1 @ z2.T, -1.0, 1.0)
    if diagonal:  # a diagonal tile of K(X, X): exactly symmetric, exactly 1 on the diagonal
        rho = 0.5 * (rho + rho.T)
        rho = rho.at[jnp.diag_indices(rho.shape[0])].set(1.0)
    return rho


@partial(jax.jit, static_argnames=("diagonal",))
def _relu_limit_tile(z1, n1, z2, n2, coefs, T, *, diagonal):
    # the barrier keeps XLA from re-running the matmul inside the fused table lookup
    rho = jax.lax.optimization_barrier(_correlations(z1, z2, diagonal))
    return relu_flow.kernel_value(coefs, rho, n1[:, None], n2[None, :], T)


@partial(jax.jit, static_argnames=("diagonal",))
def _relu_limit_grad_tile(z1, n1, z2, n2, coefs, T, *, diagonal):
    """Stack (3, b1, b2) of K, dK/dT and dK/d sigma_b^2 (ReLU, infinite depth).

    A bias variance adds 1 to q_0(a, b), q_0(a, a) and q_0(b, b), so with n = sqrt(q_0(a, a)):
    dK/d sigma_b^2 = dK/dq + dK/dn_a / (2 n_a) + dK/dn_b / (2 n_b).
    """
    rho = jax.lax.optimization_barrier(_correlations(z1, z2, diagonal))
    a, b = n1[:, None], n2[None, :]
    K, d_q, d_a, d_b, d_T = relu_flow.kernel_partials(coefs, rho, a, b, T)
    safe = lambda n: jnp.where(n > 0, 2.0 * n, jnp.inf)  # zero rows (no bias): K = 0 near them
    return jnp.stack([K, d_T, d_q + d_a / safe(a) + d_b / safe(b)])


def _recursion(q11, q22, q12, layers, dual):
    """Run q_l = s q + g dual(q) + c over the layers for row variances and the cross term."""
    skips, gains, shifts = layers

    def step(carry, layer):
        a, b, ab = carry
        s, g, c = layer
        ab = s * ab + g * dual(a[:, None], b[None, :], ab) + c
        a = s * a + g * dual(a, a, a) + c
        b = s * b + g * dual(b, b, b) + c
        return (a, b, ab), None

    (_, _, q12), _ = jax.lax.scan(step, (q11, q22, q12), (skips, gains, shifts))
    return q12


def _recursion_ntk(q11, q22, q12, theta12, layers, dual, derivative_dual):
    """NNGP and NTK together: Theta_l = s Theta + g (dual(q) + Theta dual'(q)) + c, with the
    duals at q_{l-1}; returns (q12_L, theta12_L)."""
    skips, gains, shifts = layers

    def step(carry, layer):
        a, b, ab, th = carry
        s, g, c = layer
        d_ab = dual(a[:, None], b[None, :], ab)
        th = s * th + g * (d_ab + th * derivative_dual(a[:, None], b[None, :], ab)) + c
        ab = s * ab + g * d_ab + c
        a = s * a + g * dual(a, a, a) + c
        b = s * b + g * dual(b, b, b) + c
        return (a, b, ab, th), None

    (_, _, q12, theta12), _ = jax.lax.scan(step, (q11, q22, q12, theta12), (skips, gains, shifts))
    return q12, theta12


@partial(jax.jit, static_argnames=("dual", "derivative_dual", "diagonal"))
def _recursion_ntk_tile(z1, n1, z2, n2, layers, *, dual, derivative_dual, diagonal):
    q12 = n1[:, None] * n2[None, :] * _correlations(z1, z2, diagonal)
    return _recursion_ntk(n1 * n1, n2 * n2, q12, q12, layers, dual, derivative_dual)[1]


@partial(jax.jit, static_argnames=("dual", "derivative_dual"))
def _recursion_ntk_diag(n, layers, *, dual, derivative_dual):
    def step(carry, layer):
        q, th = carry
        s, g, c = layer
        d = dual(q, q, q)
        return (s * q + g * d + c, s * th + g * (d + th * derivative_dual(q, q, q)) + c), None

    (_, th), _ = jax.lax.scan(step, (n * n, n * n), layers)
    return th


@partial(jax.jit, static_argnames=("dual", "diagonal"))
def _recursion_tile(z1, n1, z2, n2, layers, *, dual, diagonal):
    q12 = n1[:, None] * n2[None, :] * _correlations(z1, z2, diagonal)
    return _recursion(n1 * n1, n2 * n2, q12, layers, dual)


@partial(jax.jit, static_argnames=("dual",))
def _recursion_diag(n, layers, *, dual):
    def step(q, layer):
        s, g, c = layer
        return s * q + g * dual(q, q, q) + c, None

    q, _ = jax.lax.scan(step, n * n, layers)
    return q


_relu_table = jax.jit(relu_flow.table)


# ----------------------------------------------------------------------------- driver


def _blocks(n: int, tile: int | None = None):
    tile = TILE if tile is None else tile  # read at call time: tests shrink TILE
    count = -(-n // tile)
    size = -(-n // count)
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _bucket(rows: int) -> int:
    """Tile shapes are padded up to a few sizes (powers of two to 256, then multiples of 256),
    so JAX compiles a handful of shapes instead of one per input size."""
    return max(64, 1 << (rows - 1).bit_length()) if rows <= 256 else -(-rows // 256) * 256


def _padded(z, n, start, stop):
    rows = _bucket(stop - start)
    zp = np.zeros((rows, z.shape[1]))
    npad = np.zeros(rows)  # padded rows have zero norm: their kernel entries are 0, then dropped
    zp[: stop - start], npad[: stop - start] = z[start:stop], n[start:stop]
    return zp, npad


def _tiled(tile_fn, f1, f2, tile: int | None = None, pad: bool = True):
    """Assemble the (N, M) matrix tile by tile; f2=None means K(X1, X1), computed symmetric.

    pad=False hands tiles over at their true size (the ODE tiles: padded rows would dilute
    the solver's RMS error norm)."""
    cut = _padded if pad else (lambda z, n, i0, i1: (z[i0:i1], n[i0:i1]))
    (z1, n1), (z2, n2) = f1, (f2 if f2 is not None else f1)
    out = None  # (..., N, M): tile functions may return a stack of matrices
    rows, cols = _blocks(len(n1), tile), _blocks(len(n2), tile)
    for bi, (i0, i1) in enumerate(rows):
        for bj, (j0, j1) in enumerate(cols):
            if f2 is None and bj < bi:
                continue
            diagonal = f2 is None and bi == bj
            block = np.asarray(tile_fn(*cut(z1, n1, i0, i1), *cut(z2, n2, j0, j1),
                                       diagonal=diagonal))[..., : i1 - i0, : j1 - j0]
            if out is None:
                out = np.empty(block.shape[:-2] + (len(n1), len(n2)))
            view = out[..., i0:i1, j0:j1]
            if diagonal:  # XLA may round an entry and its mirror image differently: average them
                np.add(block, block.swapaxes(-1, -2), out=view)
                view *= 0.5
            else:
                view[...] = block
            if f2 is None and bj > bi:
                out[..., j0:j1, i0:i1] = out[..., i0:i1, j0:j1].swapaxes(-1, -2)
    return out


def relu_limit_with_gradients(X1, X2=None, *, branch_variance=1.0, weight_variance=1.0,
                              bias_variance=0.0):
    """ReLU, infinite depth: (K, dK/d branch_variance, dK/d bias_variance), each float64 (N, M).

    Exact derivatives from the flow identities (no finite differences); used by the
    scikit-learn kernel. Same inputs and checks as :func:`resnet_nngp`.
    """
    A, B = check_pair(X1, X2)
    _, wv, bv = _common(weight_variance, bias_variance, "relu")
    T = check_variance("branch_variance", branch_variance)
    f1 = _features(A, wv, bv)
    f2 = None if B is None else _features(B, wv, bv)
    with float64():
        T = jnp.float64(T)
        tile_fn = partial(_relu_limit_grad_tile, coefs=_relu_table(T), T=T)
        K, dT, dbias = _tiled(tile_fn, f1, f2)
    return K, dT, dbias


def _output(K: np.ndarray, like):
    if isinstance(like, jax.Array):
        with float64():
            return jnp.asarray(K)
    return K


@partial(jax.jit, static_argnames=("diagonal",))
def _covariance_tile(z1, n1, z2, n2, *, diagonal):
    return n1[:, None] * n2[None, :] * _correlations(z1, z2, diagonal)


def _relu_table_limit(q11, q22, q12, T):
    """ReLU, infinite depth, from covariances: e^{T/2} n_a n_b cos theta_T (tabulated flow)."""
    with float64():
        n1, n2 = jnp.sqrt(jnp.asarray(q11)), jnp.sqrt(jnp.asarray(q22))
        rho = relu_flow._correlation(jnp.asarray(q12), n1[:, None], n2[None, :])
        T = jnp.float64(T)
        return np.asarray(relu_flow.kernel_value(_relu_table(T)[relu_flow.VALUE], rho,
                                                 n1[:, None], n2[None, :], T))


def resnet_limit(q11, q22, q12, theta12=None, *, branch_variance=1.0, activation="relu",
                 rtol=ode.RTOL, atol=ode.ATOL, symmetric=False):
    r"""The infinite-depth ResNet's output covariances (and NTK) from its input covariances.

    The core of every infinite-depth kernel: runs the limit flow of THEORY.md for depth time
    T = ``branch_variance`` from arbitrary input covariances, e.g. those of a Neural Tangents
    front end (:func:`resgp.nt.InfiniteResNet`).

    Parameters
    ----------
    q11 : (N,) variances :math:`q(a, a)`; q22 : (M,) variances :math:`q(b, b)`;
    q12 : (N, M) covariances :math:`q(a, b)`; theta12 : (N, M) NTK :math:`\Theta(a, b)` of the
        front end, or None (NNGP only). All in the same units (squared pre-activation units).
    activation : a name, an :class:`~resgp.activations.Activation` or a callable.
    rtol, atol : tolerances of the adaptive ODE solve (:mod:`resgp.ode`; ``atol`` relative to
        the largest input variance). ReLU's NNGP uses the exact tabulated flow instead.
    symmetric : True when rows and columns are the same inputs (q22 = q11, q12 symmetric with
        diagonal q11); the diagonal pairs then stay exactly on the diagonal flow.

    Returns
    -------
    (q11_T (N,), q22_T (M,), q12_T (N, M), theta12_T (N, M) or None), float64 NumPy arrays.
    """
    act = get_activation(activation)
    T = check_variance("branch_variance", branch_variance)
    rtol, atol = ode.check_tolerances(rtol, atol)
    q11, q22 = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (q11, q22))
    q12 = np.asarray(q12, dtype=np.float64)
    if q12.shape != (q11.size, q22.size):
        raise ValueError(f"q12 must have shape (len(q11), len(q22)) = {(q11.size, q22.size)}, "
                         f"got {q12.shape}")
    if theta12 is not None and np.shape(theta12) != q12.shape:
        raise ValueError(f"theta12 must have the shape of q12 {q12.shape}, got {np.shape(theta12)}")
    if np.any(q11 < 0) or np.any(q22 < 0):
        raise ValueError("q11 and q22 are variances: they must be >= 0")
    if act is RELU:
        growth = np.exp(0.5 * T)  # q_T(a, a) = q_0(a, a) e^{T/2}
        K = _relu_table_limit(q11, q22, q12, T)
        theta = None
        if theta12 is not None:
            theta = ode.limit_flow(q11, q22, q12, theta12, T=T, activation=act,
                                   rtol=rtol, atol=atol, symmetric=symmetric)[3]
        return q11 * growth, q22 * growth, K, theta
    if symmetric and q11.size != q22.size:
        raise ValueError("symmetric=True needs len(q11) == len(q22)")
    return ode.limit_flow(q11, q22, q12, theta12, T=T, activation=act, rtol=rtol, atol=atol,
                          symmetric=symmetric)


def _limit_tile(z1, n1, z2, n2, *, diagonal, T, activation, ntk, rtol, atol):
    q12 = np.asarray(_covariance_tile(z1, n1, z2, n2, diagonal=diagonal))
    out = resnet_limit(n1 * n1, n2 * n2, q12, q12 if ntk else None, branch_variance=T,
                       activation=activation, rtol=rtol, atol=atol, symmetric=diagonal)
    return out[3] if ntk else out[2]


ODE_TILE = 512  # smaller tiles than TILE: only tiles on and above the diagonal are integrated


def _table_tile(z1, n1, z2, n2, *, diagonal, table, ntk):
    q12 = np.asarray(_covariance_tile(z1, n1, z2, n2, diagonal=diagonal))
    K, theta = table.evaluate(n1 * n1, n2 * n2, q12, nngp=not ntk, ntk=ntk, symmetric=diagonal)
    return theta if ntk else K


def _table_gram(f1, f2, T, activation, *, ntk, rtol, atol):
    """Infinite depth, non-homogeneous activation: the flow map tabulated once for these inputs'
    variances (:mod:`resgp.flow_table`, accurate to max(rtol, atol) relative), evaluated per
    entry; the diagonal of K(X, X) is exactly the diagonal flow, as in :func:`_diag`. None when
    the table does not apply (then the ODE is integrated for every pair)."""
    tol = max(rtol, atol)
    if not 1e-12 <= tol <= 1e-3:
        return None
    n_all = f1[1] if f2 is None else np.concatenate([f1[1], f2[1]])
    table = flow_table.tabulate(n_all * n_all, T=T, activation=activation, ntk=ntk, tol=tol)
    if table is None:
        return None
    out = _tiled(partial(_table_tile, table=table, ntk=ntk), f1, f2, pad=False)
    if f2 is None:
        n = f1[1]
        q = n * n
        d = (ode.diagonal_flow(q, q, T=T, activation=activation, rtol=rtol, atol=atol)[1] if ntk
             else ode.diagonal_flow(q, T=T, activation=activation, rtol=rtol, atol=atol))
        np.fill_diagonal(out, d)
    return out


def _gram(X1, X2, layers, T, activation: Activation, weight_variance, bias_variance, *,
          ntk=False, rtol=ode.RTOL, atol=ode.ATOL):
    f1 = _features(X1, weight_variance, bias_variance)
    f2 = None if X2 is None else _features(X2, weight_variance, bias_variance)
    if ntk and activation.derivative_dual is None:
        raise ValueError(f"activation {activation.name!r} has no derivative dual: no NTK")
    with float64():
        if layers is not None:
            layers = tuple(jnp.asarray(a) for a in layers)
            if ntk:
                tile_fn = partial(_recursion_ntk_tile, layers=layers, dual=activation.dual,
                                  derivative_dual=activation.derivative_dual)
            else:
                tile_fn = partial(_recursion_tile, layers=layers, dual=activation.dual)
        elif activation is RELU and not ntk:
            T = jnp.float64(T)
            tile_fn = partial(_relu_limit_tile, coefs=_relu_table(T)[relu_flow.VALUE], T=T)
        else:
            out = _table_gram(f1, f2, T, activation, ntk=ntk, rtol=rtol, atol=atol)
            if out is not None:
                return out
            tile_fn = partial(_limit_tile, T=T, activation=activation, ntk=ntk, rtol=rtol,
                              atol=atol)
            return _tiled(tile_fn, f1, f2, tile=ODE_TILE, pad=False)
        return _tiled(tile_fn, f1, f2)


def _diag(X, layers, T, activation: Activation, weight_variance, bias_variance, *,
          ntk=False, rtol=ode.RTOL, atol=ode.ATOL):
    _, n = _features(X, weight_variance, bias_variance)
    if ntk and activation.derivative_dual is None:
        raise ValueError(f"activation {activation.name!r} has no derivative dual: no NTK")
    if layers is None:
        if ntk:  # Theta(a, a) needs only q(a, a): Theta_0 = q_0
            return ode.diagonal_flow(n * n, n * n, T=T, activation=activation, rtol=rtol,
                                     atol=atol)[1]
        if activation is RELU:
            return n * n * np.exp(0.5 * T)  # q_T(a, a) = q_0(a, a) e^{T/2}
        return ode.diagonal_flow(n * n, T=T, activation=activation, rtol=rtol, atol=atol)
    with float64():
        layers = tuple(jnp.asarray(a) for a in layers)
        if ntk:
            return np.asarray(_recursion_ntk_diag(jnp.asarray(n), layers, dual=activation.dual,
                                                  derivative_dual=activation.derivative_dual))
        return np.asarray(_recursion_diag(jnp.asarray(n), layers, dual=activation.dual))


def _common(weight_variance, bias_variance, activation):
    return (
        get_activation(activation),
        check_variance("weight_variance", weight_variance),
        check_variance("bias_variance", bias_variance, allow_zero=True),
    )


def _resnet_settings(depth, branch_variance, weight_variance, bias_variance, activation,
                     branch_scales, rtol, atol):
    """The validated keyword arguments of :func:`_gram` / :func:`_diag` for a ResNet."""
    act, wv, bv = _common(weight_variance, bias_variance, activation)
    layers, T = _resnet_layers(depth, branch_variance, branch_scales)
    rtol, atol = ode.check_tolerances(rtol, atol)
    return dict(layers=layers, T=T, activation=act, weight_variance=wv, bias_variance=bv,
                rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- public API


def resnet_nngp(
    X1,
    X2=None,
    *,
    depth=None,
    branch_variance=1.0,
    weight_variance=1.0,
    bias_variance=0.0,
    activation="relu",
    branch_scales=None,
    rtol=ode.RTOL,
    atol=ode.ATOL,
):
    r"""NNGP kernel of the infinitely wide ResNet with branches scaled by :math:`\alpha_{l,L}`.

    Parameters
    ----------
    X1 : array (N, d); X2 : array (M, d) or None (then X2 = X1 and K is exactly symmetric).
    depth : None for the infinite-width-and-depth limit (the ODE of THEORY.md integrated to
        T = ``branch_variance``); an integer L for the exact infinite-width recursion over L
        blocks with :math:`\alpha_l^2 = T / L`.
    branch_variance : T > 0, the total branch variance :math:`\sum_l \alpha_l^2`
        (T = 1 is Hayou & Yang's :math:`1/\sqrt{L}` scaling).
    weight_variance, bias_variance : :math:`\sigma_w^2 > 0, \sigma_b^2 \ge 0` of the input layer,
        :math:`q_0(a,b) = \sigma_w^2\langle a,b\rangle/d + \sigma_b^2`.
    activation : a name ("relu", "leaky_relu", "abrelu", "erf", "sin", "gelu", "tanh"), an
        :class:`~resgp.activations.Activation` (e.g. ``resgp.activations.leaky_relu(0.1)``) or
        an elementwise ``jax.numpy`` callable (Gauss-Hermite duals, see
        :mod:`resgp.activations`).
    branch_scales : optional :math:`(\alpha_1, ..., \alpha_L)`, any non-uniform scaling
        (length ``depth`` when ``depth`` is given; replaces ``branch_variance``).
    rtol, atol : tolerances of the adaptive ODE solver (:mod:`resgp.ode`), used at infinite
        depth for every activation but ReLU (which has an exact tabulated flow); ``atol`` is
        relative to the largest input variance. The defaults (1e-10, 1e-12) give 1e-12 to 1e-10
        relative error (measured against 100x tighter solves and Richardson extrapolation).

    Returns
    -------
    K : float64 array (N, M), in the units of :math:`q_0` (squared input units times
        :math:`\sigma_w^2/d`, plus :math:`\sigma_b^2`).
    """
    A, B = check_pair(X1, X2)
    settings = _resnet_settings(depth, branch_variance, weight_variance, bias_variance,
                                activation, branch_scales, rtol, atol)
    return _output(_gram(A, B, **settings), X1)


def resnet_nngp_diag(
    X,
    *,
    depth=None,
    branch_variance=1.0,
    weight_variance=1.0,
    bias_variance=0.0,
    activation="relu",
    branch_scales=None,
    rtol=ode.RTOL,
    atol=ode.ATOL,
):
    """The diagonal K(x, x) of :func:`resnet_nngp`, shape (N,), without forming the matrix."""
    Xc = check_inputs(X, "X")
    settings = _resnet_settings(depth, branch_variance, weight_variance, bias_variance,
                                activation, branch_scales, rtol, atol)
    return _output(_diag(Xc, **settings), X)


def resnet_ntk(
    X1,
    X2=None,
    *,
    depth=None,
    branch_variance=1.0,
    weight_variance=1.0,
    bias_variance=0.0,
    activation="relu",
    branch_scales=None,
    rtol=ode.RTOL,
    atol=ode.ATOL,
):
    r"""Neural tangent kernel of the same ResNet (Neural Tangents' 'ntk' parameterisation).

    Finite depth: :math:`\Theta_0 = q_0`, :math:`\Theta_l = \Theta_{l-1} + \alpha_l^2
    (\check\phi(q_{l-1}) + \Theta_{l-1}\check{\phi'}(q_{l-1}))` (NT's analytic 'ntk' of
    :func:`resgp.nt.resnet` exactly). Infinite depth: :math:`\dot\Theta = \check\phi(q_t) +
    \Theta\,\check{\phi'}(q_t)` integrated jointly with the NNGP flow (:mod:`resgp.ode`).
    Same parameters, shapes and units as :func:`resnet_nngp` (the NTK has the units of
    :math:`q_0`: each parameter's gradient contributes one kernel's worth).
    """
    A, B = check_pair(X1, X2)
    settings = _resnet_settings(depth, branch_variance, weight_variance, bias_variance,
                                activation, branch_scales, rtol, atol)
    return _output(_gram(A, B, **settings, ntk=True), X1)


def resnet_ntk_diag(
    X,
    *,
    depth=None,
    branch_variance=1.0,
    weight_variance=1.0,
    bias_variance=0.0,
    activation="relu",
    branch_scales=None,
    rtol=ode.RTOL,
    atol=ode.ATOL,
):
    """The diagonal Theta(x, x) of :func:`resnet_ntk`, shape (N,)."""
    Xc = check_inputs(X, "X")
    settings = _resnet_settings(depth, branch_variance, weight_variance, bias_variance,
                                activation, branch_scales, rtol, atol)
    return _output(_diag(Xc, **settings, ntk=True), X)


def mlp_nngp(X1, X2=None, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    r"""NNGP kernel of the infinitely wide MLP (no skip connections) with ``depth`` hidden layers.

    :math:`q_0 = \sigma_w^2\langle a,b\rangle/d + \sigma_b^2`,
    :math:`q_l = \sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2`, l = 1..depth. For ReLU with
    :math:`\sigma_w^2 = 2` the correlation of any two inputs tends to 1 as depth grows.
    Same inputs, outputs and units as :func:`resnet_nngp`; any activation.
    """
    A, B = check_pair(X1, X2)
    act, wv, bv = _common(weight_variance, bias_variance, activation)
    return _output(_gram(A, B, _mlp_layers(depth, wv, bv), None, act, wv, bv), X1)


def mlp_nngp_diag(X, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    """The diagonal K(x, x) of :func:`mlp_nngp`, shape (N,), without forming the matrix."""
    Xc = check_inputs(X, "X")
    act, wv, bv = _common(weight_variance, bias_variance, activation)
    return _output(_diag(Xc, _mlp_layers(depth, wv, bv), None, act, wv, bv), X)


def mlp_ntk(X1, X2=None, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    r"""NTK of the MLP of :func:`mlp_nngp` (NT 'ntk' parameterisation):
    :math:`\Theta_0 = q_0`, :math:`\Theta_l = \sigma_w^2(\check\phi(q_{l-1}) +
    \Theta_{l-1}\check{\phi'}(q_{l-1})) + \sigma_b^2`."""
    A, B = check_pair(X1, X2)
    act, wv, bv = _common(weight_variance, bias_variance, activation)
    return _output(_gram(A, B, _mlp_layers(depth, wv, bv), None, act, wv, bv, ntk=True), X1)
