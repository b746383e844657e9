r"""The tiled kernel product with its tiles split over devices (``shard_map``).

The tile pairs (i <= j) of :math:`K(X, X)` (:func:`resgp.solvers.products.tile_pairs`) are
split into equal contiguous shares, one per device; each device holds all of X and V, runs the
same symmetric tiled loop as one device (:func:`resgp.solvers.products.symmetric_product`) over
its share, and the partial products are summed (``psum``). The same code runs on one CPU,
several GPUs, or several hosts after ``jax.distributed.initialize()`` (a mesh over
``jax.devices()``). ``jax.shard_map`` (jax >= 0.6) or
``jax.experimental.shard_map.shard_map`` (jax 0.5), whichever exists.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ..core.x64 import float64
from .products import (TILE, _as_2d, _diagonal_tile, _kernel_tile, static_network,
                       symmetric_product, tile_pairs)

__all__ = ["device_mesh", "sharded_kernel_product"]

AXIS = "tiles"

if hasattr(jax, "shard_map"):  # jax >= 0.6
    shard_map = jax.shard_map
    _NO_CHECK = {"check_vma": False}
else:  # pragma: no cover - jax 0.5
    from jax.experimental.shard_map import shard_map
    _NO_CHECK = {"check_rep": False}
# the replication check has no rule for while loops (jax 0.5) and cannot see that the
# replicated X, V stay replicated; the output is replicated by the psum, so it is off


def device_mesh(devices=None):
    """A 1-D mesh (axis ``"tiles"``) over ``devices`` (default: all of ``jax.devices()``).

    Parameters
    ----------
    devices : sequence of jax.Device or None
        The devices the tiles are split over.

    Returns
    -------
    mesh : jax.sharding.Mesh
    """
    return Mesh(np.asarray(jax.devices() if devices is None else devices), (AXIS,))


@partial(jax.jit, static_argnames=("net", "tile", "mesh"))
def _sharded(net, h, X, V, tile, mesh):
    pairs = tuple(jnp.asarray(a) for a in tile_pairs(-(-X.shape[0] // tile), mesh.devices.size))
    diagonal = _diagonal_tile(net, h)(X)

    def share(i, j, w, X_all, V_all, D_all):
        K_V = symmetric_product(_kernel_tile(net, h), X_all, V_all, tile, D_all, (i, j, w))
        return jax.lax.psum(K_V, AXIS)

    spec, rep = PartitionSpec(AXIS), PartitionSpec()
    f = shard_map(share, mesh=mesh, in_specs=(spec, spec, spec, rep, rep, rep), out_specs=rep,
                  **_NO_CHECK)
    return h["amplitude"] * f(*pairs, X, V, diagonal) + h["noise_variance"] * V


def sharded_kernel_product(net, h, X, V, mesh=None, tile=TILE):
    r""":math:`(a K(X, X) + s I) V` with the tiles split over the devices of ``mesh``.

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`resgp.solvers.products.hyperparameters`).
    X : array (N, d)
        Inputs.
    V : array (N,) or (N, m)
        Right-hand sides.
    mesh : jax.sharding.Mesh or None
        A 1-D mesh with axis ``"tiles"`` (:func:`device_mesh`); None: all devices.
    tile : int, default=TILE
        Rows and columns of one kernel tile.

    Returns
    -------
    KV : jax.Array (N,) or (N, m)
    """
    with float64():
        X = jnp.asarray(X, dtype=jnp.float64)
        V2, flat = _as_2d(V, X.shape[0], "V")
        out = _sharded(static_network(net), h, X, V2, tile, device_mesh() if mesh is None
                       else mesh)
        return out[:, 0] if flat else out
