"""Tiles of a kernel matrix (docs/theory.md, "Tiling").

A (N, M) output is computed in tiles of at most ``TILE`` rows and columns, so memory stays
within the output plus a few tiles. For K(X, X) only tiles on and above the diagonal are
computed and mirrored, and each diagonal tile is averaged with its transpose: the result is
exactly symmetric. Tile shapes are padded up to a few bucketed sizes (:func:`bucket`) so that
JAX compiles a handful of shapes, not one per input size; padded rows have zero norm.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TILE", "blocks", "bucket", "cut", "tiled"]

TILE = 512  # small tiles: the mirror copies stay in cache, and K(X, X) needs ~N^2/2 entries


def blocks(n: int, tile: int | None = None):
    """[(start, stop)]: ``n`` rows in about equal blocks of at most ``tile`` (default TILE)."""
    tile = TILE if tile is None else tile  # read at call time: tests shrink TILE
    count = -(-n // tile)
    size = -(-n // count)
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def bucket(rows: int) -> int:
    """Padded size: powers of two up to 256 (at least 64), then multiples of 256."""
    return max(64, 1 << (rows - 1).bit_length()) if rows <= 256 else -(-rows // 256) * 256


def cut(features, start, stop, pad):
    """Rows start:stop of the features ``(z (N, k), n (N,))``, padded to :func:`bucket` rows
    (zero rows, zero norms) when ``pad``."""
    z, n = features
    if not pad:
        return z[start:stop], n[start:stop]
    rows = bucket(stop - start)
    zp = np.zeros((rows, z.shape[1]))
    npad = np.zeros(rows)
    zp[: stop - start], npad[: stop - start] = z[start:stop], n[start:stop]
    return zp, npad


def tiled(tile_fn, f1, f2, tile: int | None = None, pad: bool = True, mirror=None):
    """Assemble the (..., N, M) output tile by tile; ``f2=None`` means K(X1, X1), symmetric.

    ``tile_fn(z1, n1, z2, n2, diagonal=bool)`` returns a (..., b1, b2) array for a tile (a
    leading axis for a stack of matrices, e.g. a kernel and its gradients); ``diagonal`` is
    True for the tiles on the diagonal of K(X, X). ``mirror``: a permutation of the leading
    axis applied with every transpose of K(X, X) (the partials with respect to q(a, a) and
    q(b, b) exchange places there); None for the identity.
    """
    flip = (lambda b: b) if mirror is None else (lambda b: b[mirror])  # noqa: E731
    f2_ = f2 if f2 is not None else f1
    out = None
    rows, cols = blocks(len(f1[1]), tile), blocks(len(f2_[1]), tile)
    for bi, (i0, i1) in enumerate(rows):
        for bj, (j0, j1) in enumerate(cols):
            if f2 is None and bj < bi:
                continue
            diagonal = f2 is None and bi == bj
            block = np.asarray(tile_fn(*cut(f1, i0, i1, pad), *cut(f2_, j0, j1, pad),
                                       diagonal=diagonal))[..., : i1 - i0, : j1 - j0]
            if out is None:
                out = np.empty(block.shape[:-2] + (len(f1[1]), len(f2_[1])))
            view = out[..., i0:i1, j0:j1]
            if diagonal:  # XLA may round an entry and its mirror image differently: average
                np.add(block, flip(block).swapaxes(-1, -2), out=view)
                view *= 0.5
            else:
                view[...] = block
            if f2 is None and bj > bi:
                out[..., j0:j1, i0:i1] = flip(out[..., i0:i1, j0:j1]).swapaxes(-1, -2)
    return out
