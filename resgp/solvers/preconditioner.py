r"""The pivoted-Cholesky preconditioner :math:`P = L L^\top + s I` and what inference needs of it.

:math:`L` (N, k) is the partial pivoted Cholesky factor of :math:`a K(X, X)` (greedy: the
largest remaining diagonal is the next pivot; Harbrecht et al. 2012, Gardner et al. 2018), so
:math:`L L^\top` is the Nystrom approximation :math:`a K_{XS} K_{SS}^{-1} K_{SX}` on the pivots S.
With :math:`s` the noise variance (docs/theory.md, "Matrix-free inference"):

* solve: Woodbury, :math:`P^{-1} r = (r - L (s I_k + L^\top L)^{-1} L^\top r) / s`;
* :math:`P^{-1/2}` from the thin SVD :math:`L = U \Sigma W^\top`:
  :math:`P^{-1/2} = U ((\Sigma^2 + s)^{-1/2} - s^{-1/2}) U^\top + s^{-1/2} I`;
* :math:`\log\det P = \sum_i \log(\sigma_i^2 + s) + (N - k) \log s`.

Only diagonal entries and k columns of K are evaluated: O(N k) kernel entries, O(N k^2) work.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import cho_factor, cho_solve

from ..core import traceable
from ..core.x64 import float64
from .products import kernel_diagonal, static_network

__all__ = ["Preconditioner", "pivoted_cholesky"]

PIVOT_RTOL = 1e-8  # stop once the largest remaining diagonal is below this times the largest


@partial(jax.jit, static_argnames=("net",))
def _columns(net, h, X, Xp):
    return h["amplitude"] * traceable.kernel_matrix(
        net, X, Xp, branch_variance=h["branch_variance"], weight_variance=h["weight_variance"],
        bias_variance=h["bias_variance"])


def pivoted_cholesky(net, h, X, rank):
    r"""Partial pivoted Cholesky of :math:`a K(X, X)`: L (N, k) and the pivots (k,).

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`resgp.solvers.products.hyperparameters`).
    X : ndarray (N, d)
        Inputs.
    rank : int >= 0
        Largest k; fewer when the remaining diagonal falls below ``PIVOT_RTOL`` of the largest.

    Returns
    -------
    L : ndarray (N, k)
        The factor, :math:`L L^\top \approx a K(X, X)`, exact on the pivots' rows and columns.
    pivots : ndarray of int (k,)
        Row indices of the pivots, in order.
    """
    with float64():
        Xj, static = jnp.asarray(X, dtype=jnp.float64), static_network(net)
        d = np.array(kernel_diagonal(net, h, Xj), dtype=np.float64)
        n = len(d)
        rank = min(int(rank), n)
        L = np.zeros((n, rank))
        pivots = []
        top = d.max() if n else 0.0
        for j in range(rank):
            i = int(np.argmax(d))
            if not d[i] > PIVOT_RTOL * top:
                break
            col = np.asarray(_columns(static, h, Xj, Xj[i:i + 1]))[:, 0]
            col = col - L[:, :j] @ L[i, :j]
            L[:, j] = col / np.sqrt(d[i])
            d -= L[:, j] ** 2
            d[i] = 0.0
            pivots.append(i)
        return L[:, :len(pivots)], np.asarray(pivots, dtype=int)


class Preconditioner:
    r""":math:`P = L L^\top + s I`: its inverse, inverse square root and log-determinant.

    Parameters
    ----------
    L : ndarray (N, k)
        Low-rank factor (:func:`pivoted_cholesky`).
    noise : float > 0
        :math:`s` (noise variance plus jitter).
    """

    def __init__(self, L, noise):
        self.L = np.asarray(L, dtype=np.float64)
        self.noise = float(noise)
        k = self.L.shape[1]
        self._inner = cho_factor(self.noise * np.eye(k) + self.L.T @ self.L, lower=True)
        U, sig, _ = np.linalg.svd(self.L, full_matrices=False)
        self.U = U
        self._shrink = 1.0 / np.sqrt(sig ** 2 + self.noise) - 1.0 / np.sqrt(self.noise)
        n = self.L.shape[0]
        self.logdet = float(np.sum(np.log(sig ** 2 + self.noise)) + (n - k) * np.log(self.noise))

    def solve(self, R):
        r""":math:`P^{-1} R` (Woodbury).

        Parameters
        ----------
        R : ndarray (N,) or (N, m)
            Right-hand sides, in the units of the targets.

        Returns
        -------
        ndarray, the shape of R
        """
        R = np.asarray(R, dtype=np.float64)
        return (R - self.L @ cho_solve(self._inner, self.L.T @ R)) / self.noise

    def inverse_sqrt(self, R):
        r""":math:`P^{-1/2} R`; traceable (JAX in, JAX out).

        Parameters
        ----------
        R : array (N,) or (N, m)
            Vectors to whiten.

        Returns
        -------
        array, the shape of R
        """
        U, shrink = jnp.asarray(self.U), jnp.asarray(self._shrink)
        shrink = shrink if R.ndim == 1 else shrink[:, None]
        return U @ (shrink * (U.T @ R)) + R / np.sqrt(self.noise)
