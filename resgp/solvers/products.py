r"""Matrix-free kernel products :math:`K(X, X) V` and :math:`K(X_*, X) V`, tile by tile.

The kernel matrix is never formed: :math:`K(X, X) V` sums over the tile pairs on and above the
diagonal, each evaluated once and used for both of its blocks (:func:`symmetric_product`), and
:math:`K(X_*, X) V` computes row tiles (``jax.lax.map``), each summing its column tiles
(``jax.lax.scan``, :func:`tiled_product`); at most one (tile, tile) block of the kernel and its
intermediates is alive at a time, so memory is O(N m + tile^2) for N inputs and m right-hand
sides (docs/theory.md, "Matrix-free inference").
Every tile is :func:`resgp.core.traceable.kernel_matrix`, the same math as every other entry
point, so any kernel the traceable core supports works here (ReLU at infinite and finite
depth, NNGP and NTK; other activations through the traceable flow map, more slowly).

Hyperparameters are a dict of JAX scalars (the keys of :data:`HYPERPARAMETERS`): the kernel's
``branch_variance``, ``weight_variance`` (scalar or (d,) with ARD) and ``bias_variance``, an
outer ``amplitude`` :math:`a` and a ``noise_variance`` :math:`s`; the regularised operator is

.. math::  \hat K = a\,K(X, X) + s\,I .

Products are differentiable in the hyperparameters (forward mode keeps memory at a few tiles:
:func:`bilinear_gradient`; reverse mode works too, with each tile re-computed,
``jax.checkpoint``). All math is float64 (:func:`resgp.core.x64.float64`).
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..core import traceable
from ..core.x64 import float64

__all__ = ["HYPERPARAMETERS", "TILE", "hyperparameters", "kernel_product", "cross_product",
           "kernel_diagonal", "bilinear_gradient", "tiled_product", "symmetric_product",
           "tile_pairs", "static_network"]

TILE = 256  # rows (and columns) of one kernel tile: 256^2 entries, a few MB of intermediates
HYPERPARAMETERS = ("amplitude", "noise_variance", "branch_variance", "weight_variance",
                   "bias_variance")
KERNEL_HYPERPARAMETERS = ("branch_variance", "weight_variance", "bias_variance")


def hyperparameters(*, amplitude=1.0, noise_variance=0.0, branch_variance=1.0,
                    weight_variance=1.0, bias_variance=0.0):
    r"""The hyperparameter dict of the products, as float64 JAX arrays.

    Parameters
    ----------
    amplitude : float > 0
        Outer scale :math:`a` of the kernel (units of the targets squared).
    noise_variance : float >= 0
        :math:`s`, added to the diagonal of K(X, X) only (units of the targets squared).
    branch_variance : float > 0
        The ResNet's total branch variance T (ignored by the MLP).
    weight_variance : float > 0 or array (d,)
        :math:`\sigma_w^2`, or one weight variance per feature (ARD).
    bias_variance : float >= 0
        :math:`\sigma_b^2`.

    Returns
    -------
    h : dict of str to jax.Array
        Float64 arrays, keys :data:`HYPERPARAMETERS`.
    """
    with float64():
        values = dict(amplitude=amplitude, noise_variance=noise_variance,
                      branch_variance=branch_variance, weight_variance=weight_variance,
                      bias_variance=bias_variance)
        return {k: jnp.asarray(v, dtype=jnp.float64) for k, v in values.items()}


def static_network(net):
    """``net`` with its own hyperparameter values replaced by fixed ones.

    The values are not used by the products (they come in ``h``), and a Network is hashed
    by all its fields: without this every new value would compile the products again.

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel's description.

    Returns
    -------
    Network
        The same architecture, activation and depth with T = 1, unit weight variances and no
        bias (the static part of the compiled products).
    """
    w = tuple(1.0 for _ in net.weight_variance) if net.ard else 1.0
    return dataclasses.replace(net, branch_variance=1.0, branch_scales=net.branch_scales,
                               weight_variance=w, bias_variance=0.0)


def _tiles(A, tile):
    """A (n, d) padded to whole tiles with copies of its first row: (n_tiles, tile, d).

    Copies of a real row keep every padded kernel entry finite (a zero row without a bias has
    zero norm); their weights in V are zero, so they add nothing."""
    n = A.shape[0]
    rows = -(-n // tile) * tile
    pad = jnp.broadcast_to(A[:1], (rows - n,) + A.shape[1:])
    return jnp.concatenate([A, pad]).reshape((rows // tile, tile) + A.shape[1:])


def _padded(V, rows):
    """V (p, m) with zero rows appended, to ``rows`` rows in all."""
    return jnp.concatenate([V, jnp.zeros((rows - V.shape[0], V.shape[1]), V.dtype)])


def tiled_product(tile_fn, A, B, V, tile=TILE):
    r""":math:`\sum_j F(A, B_j) V_j`: a (n, m) product with a (n, p) matrix given by tiles.

    Parameters
    ----------
    tile_fn : callable
        ``tile_fn(a (t, d), b (t, d)) -> (t, t)`` array: the block of the matrix for a row
        tile and a column tile (traceable).
    A : array (n, d)
        Row inputs.
    B : array (p, d)
        Column inputs.
    V : array (p, m)
        Right-hand sides.
    tile : int
        Rows and columns of one tile.

    Returns
    -------
    out : array (n, m)
    """
    n, m = A.shape[0], V.shape[1]
    At, Bt = _tiles(A, tile), _tiles(B, tile)
    Vt = _padded(V, Bt.shape[0] * tile).reshape(Bt.shape[0], tile, m)
    block = jax.checkpoint(lambda a, b, v: tile_fn(a, b) @ v)

    def row(a):
        def column(acc, bv):
            return acc + block(a, *bv), None

        return jax.lax.scan(column, jnp.zeros((tile, m), V.dtype), (Bt, Vt))[0]

    return jax.lax.map(row, At).reshape(-1, m)[:n]


def tile_pairs(n_tiles, parts=1):
    """The tile pairs (i, j), i <= j, of a symmetric matrix, row by row, split into ``parts``.

    Parameters
    ----------
    n_tiles : int
        Row (and column) tiles.
    parts : int, default=1
        The list is padded to a multiple of ``parts`` with weight-0 copies of (0, 0), so that
        it splits into equal contiguous shares (one per device).

    Returns
    -------
    i, j : ndarray of int (P,)
        Row and column tile of each pair.
    weight : ndarray (P,)
        1.0 for a real pair, 0.0 for padding.
    """
    i, j = np.triu_indices(n_tiles)
    pad = (-len(i)) % parts
    zeros = np.zeros(pad, dtype=i.dtype)
    return (np.concatenate([i, zeros]), np.concatenate([j, zeros]),
            np.concatenate([np.ones(len(i)), np.zeros(pad)]))


def symmetric_product(tile_fn, X, V, tile=TILE, diagonal=None, pairs=None):
    r""":math:`F(X, X) V` for a symmetric F, from the tiles on and above the diagonal only.

    Each pair of tiles :math:`i < j` is evaluated once and used twice,
    :math:`(FV)_i \mathrel{+}= F_{ij} V_j` and :math:`(FV)_j \mathrel{+}= F_{ij}^\top V_i`;
    a diagonal tile adds :math:`\tfrac12 (F_{ii} + F_{ii}^\top) V_i`. So half the kernel
    entries of :func:`tiled_product` are computed, and the operator is exactly symmetric:
    with V = I the result equals its transpose bit for bit (what CG and Lanczos assume).
    Memory: the (N, m) output and one tile.

    Parameters
    ----------
    tile_fn : callable
        ``tile_fn(a (t, d), b (t, d)) -> (t, t)``, traceable.
    X : array (N, d)
        Inputs (rows and columns).
    V : array (N, m)
        Right-hand sides.
    tile : int
        Rows and columns of one tile.
    diagonal : array (N,) or None
        The exact entries F(x, x), put on the diagonal (the cross formula rounds q(x, x)
        differently, and the NTK's derivative dual has a square-root singularity at
        correlation 1: 1e-8 errors there otherwise); None: F's own.
    pairs : tuple of arrays or None
        ``(i, j, weight)`` from :func:`tile_pairs`, or a share of them (one device's, in
        :mod:`resgp.solvers.sharding`, whose shares are then summed); None: all pairs.

    Returns
    -------
    out : array (N, m)
    """
    n, m = V.shape
    Xt = _tiles(X, tile)
    n_t = Xt.shape[0]
    Vt = _padded(V, n_t * tile).reshape(n_t, tile, m)
    I, J, W = (jnp.asarray(a) for a in (tile_pairs(n_t) if pairs is None else pairs))
    Dt = None if diagonal is None else _padded(diagonal[:, None], n_t * tile).reshape(n_t, tile)
    idx = jnp.arange(tile)

    def block(i, j, w):
        F = tile_fn(Xt[i], Xt[j])
        if Dt is not None:
            F = F.at[idx, idx].set(jnp.where(i == j, Dt[i], F[idx, idx]))
        return w * (F @ Vt[j]), w * (F.T @ Vt[i])

    block = jax.checkpoint(block)

    def step(out, ijw):
        i, j, _ = ijw
        left, right = block(*ijw)
        out = out.at[i].add(jnp.where(i == j, 0.5 * (left + right), left))
        return out.at[j].add(jnp.where(i == j, 0.0, right)), None

    out = jax.lax.scan(step, jnp.zeros((n_t, tile, m), V.dtype), (I, J, W))[0]
    return out.reshape(-1, m)[:n]


def _kernel_tile(net, h):
    return lambda a, b: traceable.kernel_matrix(  # noqa: E731
        net, a, b, branch_variance=h["branch_variance"], weight_variance=h["weight_variance"],
        bias_variance=h["bias_variance"])


def _diagonal_tile(net, h):
    return lambda a: traceable.kernel_diagonal(  # noqa: E731
        net, a, branch_variance=h["branch_variance"], weight_variance=h["weight_variance"],
        bias_variance=h["bias_variance"])


@partial(jax.jit, static_argnames=("net", "tile"))
def _gram(net, h, X, V, tile):
    return h["amplitude"] * symmetric_product(_kernel_tile(net, h), X, V, tile,
                                              _diagonal_tile(net, h)(X)) + \
        h["noise_variance"] * V


@partial(jax.jit, static_argnames=("net", "tile"))
def _cross(net, h, Xs, X, V, tile):
    return h["amplitude"] * tiled_product(_kernel_tile(net, h), Xs, X, V, tile)


def _as_2d(V, n, name):
    V = jnp.asarray(V, dtype=jnp.float64)
    if V.ndim not in (1, 2) or V.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, m) to multiply a kernel "
                         f"matrix with {n} columns, got shape {V.shape}")
    return V.reshape(n, -1), V.ndim == 1


def kernel_product(net, h, X, V, tile=TILE):
    r""":math:`(a K(X, X) + s I) V` without forming K (docs/theory.md, "Matrix-free inference").

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel (architecture, activation, depth, NNGP or NTK); its own hyperparameter
        values are not used.
    h : dict
        Hyperparameters (:func:`hyperparameters`); may hold tracers.
    X : array (N, d)
        Inputs.
    V : array (N,) or (N, m)
        Right-hand sides.
    tile : int, default=TILE
        Rows and columns of one kernel tile.

    Returns
    -------
    KV : jax.Array (N,) or (N, m)
        Float64, the shape of V.
    """
    with float64():
        X = jnp.asarray(X, dtype=jnp.float64)
        V2, flat = _as_2d(V, X.shape[0], "V")
        out = _gram(static_network(net), h, X, V2, tile)
        return out[:, 0] if flat else out


def cross_product(net, h, Xs, X, V, tile=TILE):
    r""":math:`a K(X_*, X) V` without forming K (no noise: the inputs differ).

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`hyperparameters`).
    Xs : array (M, d)
        Query inputs (rows of the output).
    X : array (N, d)
        Training inputs (columns of K).
    V : array (N,) or (N, m)
        Right-hand sides.
    tile : int, default=TILE
        Rows and columns of one kernel tile.

    Returns
    -------
    KV : jax.Array (M,) or (M, m)
    """
    with float64():
        Xs, X = (jnp.asarray(A, dtype=jnp.float64) for A in (Xs, X))
        V2, flat = _as_2d(V, X.shape[0], "V")
        out = _cross(static_network(net), h, Xs, X, V2, tile)
        return out[:, 0] if flat else out


def kernel_diagonal(net, h, X):
    r""":math:`a\,k(x, x)` for the rows of X (N,), noise excluded.

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`hyperparameters`).
    X : array (N, d)
        Inputs.

    Returns
    -------
    diag : jax.Array (N,)
    """
    with float64():
        return h["amplitude"] * traceable.kernel_diagonal(
            net, jnp.asarray(X, dtype=jnp.float64), branch_variance=h["branch_variance"],
            weight_variance=h["weight_variance"], bias_variance=h["bias_variance"])


@partial(jax.jit, static_argnames=("net", "tile"))
def _bilinear_kernel_grad(net, h, X, U, W, tile):
    kern = {k: h[k] for k in KERNEL_HYPERPARAMETERS}

    def f(kh):
        full = dict(h, **kh)
        return jnp.vdot(U, symmetric_product(_kernel_tile(net, full), X, W, tile,
                                             _diagonal_tile(net, full)(X)))

    return f(kern), jax.jacfwd(f)(kern)


def bilinear_gradient(net, h, X, U, W, tile=TILE):
    r"""Gradient of :math:`\sum_k u_k^\top (a K(X, X) + s I) w_k` in the hyperparameters.

    Forward mode (``jax.jacfwd``) through the tiled product: memory stays at a few tiles.
    With :math:`B = \sum_k u_k^\top K w_k`, the amplitude's derivative is B and the noise's
    :math:`\sum_k u_k^\top w_k`; the kernel hyperparameters' are :math:`a\,\partial B`.

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`hyperparameters`).
    X : array (N, d)
        Inputs.
    U : array (N, m)
        Left vectors.
    W : array (N, m)
        Right vectors.
    tile : int, default=TILE
        Rows and columns of one kernel tile.

    Returns
    -------
    grad : dict of str to jax.Array
        One entry per key of ``h`` (``weight_variance`` (d,) with ARD).
    """
    with float64():
        X, U, W = (jnp.asarray(A, dtype=jnp.float64) for A in (X, U, W))
        U, W = U.reshape(X.shape[0], -1), W.reshape(X.shape[0], -1)
        B, dB = _bilinear_kernel_grad(static_network(net), h, X, U, W, tile)
        out = {k: h["amplitude"] * v for k, v in dB.items()}
        out["amplitude"] = B
        out["noise_variance"] = jnp.vdot(U, W)
        return out
