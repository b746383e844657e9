r"""Preconditioned conjugate gradients for :math:`\hat K X = B`, several right-hand sides.

Each column runs its own CG recurrence (its own step lengths) on the one batched product
:math:`\hat K V`; a column stops when its relative residual
:math:`\|b - \hat K x\| / \|b\|` reaches ``tol`` (docs/theory.md, "Matrix-free inference").
The recurrences run on the host in float64 NumPy; the product (a jit-compiled JAX function,
possibly sharded over devices) is the only heavy step. No library CG is used: matfree has
none, ``jax.scipy.sparse.linalg.cg`` reports neither the iteration count nor the residual,
and lineax pulls in equinox and pins different jax versions per release.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["CGResult", "pcg"]

_log = logging.getLogger("resgp.solvers")


@dataclass
class CGResult:
    """The outcome of :func:`pcg`.

    Parameters
    ----------
    x : ndarray (N, m)
        The solutions.
    n_iter : int
        Iterations run (products with the matrix), the largest over the columns.
    residual : ndarray (m,)
        Relative residuals :math:`\\|b - A x\\| / \\|b\\|` reached, per column (recomputed
        from the recurrence's residual vectors).
    converged : bool
        Whether every column reached ``tol``.
    """

    x: np.ndarray
    n_iter: int
    residual: np.ndarray
    converged: bool


def pcg(matvec, B, precondition=None, *, tol=1e-8, max_iter=1000, progress=None):
    r"""Solve :math:`A X = B` for a symmetric positive definite A by preconditioned CG.

    Parameters
    ----------
    matvec : callable
        ``matvec(V (N, m)) -> (N, m)``, the product with A.
    B : ndarray (N,) or (N, m)
        Right-hand sides.
    precondition : callable or None
        ``precondition(R (N, m)) -> (N, m)``, the product with :math:`P^{-1}` for a symmetric
        positive definite :math:`P \approx A`; None: none.
    tol : float > 0
        Relative residual at which a column stops.
    max_iter : int >= 1
        Most iterations.
    progress : callable or None
        ``progress(iteration, max_relative_residual)`` after every iteration (a progress
        bar); the solve also logs to the ``resgp.solvers`` logger every 10 s.

    Returns
    -------
    result : CGResult
        Solutions (the shape of B), iterations, residuals, convergence flag.
    """
    B = np.asarray(B, dtype=np.float64)
    flat = B.ndim == 1
    B2 = B.reshape(B.shape[0], -1)
    norms = np.linalg.norm(B2, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    prec = (lambda R: R) if precondition is None else precondition  # noqa: E731
    X = np.zeros_like(B2)
    R = B2.copy()
    Z = np.asarray(prec(R))
    Pd = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    active = norms > 0
    rel = np.linalg.norm(R, axis=0) / scale
    active &= rel > tol
    it, last_log = 0, time.monotonic()
    while active.any() and it < max_iter:
        AP = np.asarray(matvec(Pd))
        it += 1
        pap = np.einsum("ij,ij->j", Pd, AP)
        alpha = np.where(active, rz / np.where(pap > 0, pap, 1.0), 0.0)
        X += alpha * Pd
        R -= alpha * AP
        rel = np.linalg.norm(R, axis=0) / scale
        active &= rel > tol
        if not active.any():
            break
        Z = np.asarray(prec(R))
        rz_new = np.einsum("ij,ij->j", R, Z)
        beta = np.where(active, rz_new / np.where(rz != 0, rz, 1.0), 0.0)
        Pd = np.where(active, Z + beta * Pd, 0.0)
        rz = rz_new
        if progress is not None:
            progress(it, float(rel.max()))
        if time.monotonic() - last_log > 10:
            _log.info("CG iteration %d: largest relative residual %.3g", it, rel.max())
            last_log = time.monotonic()
    return CGResult(X[:, 0] if flat else X, it, rel, bool((rel <= tol).all()))
