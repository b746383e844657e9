r"""The tiled kernel product with the rows of X split over devices (``shard_map``).

Each device holds a contiguous block of the rows of the output (its rows of X), all of X and
V, and computes its block of :math:`(a K(X, X) + s I) V` with the same tiled loop as one
device (:func:`resgp.solvers.products.tiled_product`); the blocks are concatenated. The same
code runs on one CPU, several GPUs, or several hosts after ``jax.distributed.initialize()``
(a mesh over ``jax.devices()``). ``jax.shard_map`` (jax >= 0.6) or
``jax.experimental.shard_map.shard_map`` (jax 0.5), whichever exists.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from ..core.x64 import float64
from .products import TILE, _as_2d, _diagonal_tile, _kernel_tile, static_network, tiled_product

__all__ = ["device_mesh", "sharded_kernel_product"]

AXIS = "rows"

if hasattr(jax, "shard_map"):  # jax >= 0.6
    shard_map = jax.shard_map
    _NO_CHECK = {"check_vma": False}
else:  # pragma: no cover - jax 0.5
    from jax.experimental.shard_map import shard_map
    _NO_CHECK = {"check_rep": False}
# the replication check has no rule for while loops (jax 0.5) and cannot see that the
# replicated X, V stay replicated; the output is sharded by construction, so it is off


def device_mesh(devices=None):
    """A 1-D mesh (axis ``"rows"``) over ``devices`` (default: all of ``jax.devices()``).

    Parameters
    ----------
    devices : sequence of jax.Device or None
        The devices the rows are split over.

    Returns
    -------
    mesh : jax.sharding.Mesh
    """
    return Mesh(np.asarray(jax.devices() if devices is None else devices), (AXIS,))


@partial(jax.jit, static_argnames=("net", "tile", "mesh"))
def _sharded(net, h, X, V, tile, mesh):
    n_dev = mesh.devices.size
    n = X.shape[0]
    rows = -(-n // (n_dev * tile)) * n_dev * tile  # every device gets whole tiles
    Xr = jnp.concatenate([X, jnp.broadcast_to(X[:1], (rows - n, X.shape[1]))])
    Vr = jnp.concatenate([V, jnp.zeros((rows - n, V.shape[1]), V.dtype)])

    per_device = rows // (n_dev * tile)  # tiles per device

    def block(x_rows, v_rows, X_all, V_all):
        offset = jax.lax.axis_index(AXIS) * per_device  # global index of the first row tile
        K_V = tiled_product(_kernel_tile(net, h), x_rows, X_all, V_all, tile,
                            _diagonal_tile(net, h), offset)
        return h["amplitude"] * K_V + h["noise_variance"] * v_rows

    spec, rep = PartitionSpec(AXIS), PartitionSpec()
    f = shard_map(block, mesh=mesh, in_specs=(spec, spec, rep, rep), out_specs=spec, **_NO_CHECK)
    return f(Xr, Vr, X, V)[:n]


def sharded_kernel_product(net, h, X, V, mesh=None, tile=TILE):
    r""":math:`(a K(X, X) + s I) V` with the rows split over the devices of ``mesh``.

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
        A 1-D mesh with axis ``"rows"`` (:func:`device_mesh`); None: all devices.
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
