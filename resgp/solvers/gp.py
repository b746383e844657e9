r"""Exact GP regression without the N x N matrix: marginal likelihood and posterior by CG.

:func:`log_marginal_likelihood` (value and gradient) and :func:`posterior` are what
``ResNetGPRegressor(solver="cg")`` calls; the math is in docs/theory.md, "Matrix-free
inference". For targets Y (N, p) (several outputs share the kernel),

.. math::  \log p(Y) = -\tfrac12 \sum_j y_j^\top \hat K^{-1} y_j
    - \tfrac p2 \log\det\hat K - \tfrac{Np}2 \log 2\pi,
    \qquad \hat K = a K(X, X) + s I,

:math:`\hat K^{-1} y_j` by preconditioned CG, :math:`\log\det\hat K` by SLQ
(:mod:`resgp.solvers.logdet`). Its gradient
:math:`\tfrac12\sum_j\alpha_j^\top\partial\hat K\alpha_j - \tfrac p2
\operatorname{tr}(\hat K^{-1}\partial\hat K)` uses the same solves plus those of the probes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .cg import pcg
from .logdet import nystrom_terms_gradient, slq_logdet
from .preconditioner import Preconditioner, pivoted_cholesky
from .products import TILE, bilinear_gradient, cross_product, kernel_diagonal, kernel_product

__all__ = ["SolverSettings", "log_marginal_likelihood", "posterior", "check_memory"]

BYTES_PER_FLOAT = 8
VAR_CHUNK = 128  # query points per solve of the predictive variances


@dataclass(frozen=True)
class SolverSettings:
    """Settings of the matrix-free solves.

    Parameters
    ----------
    tol : float
        Relative CG residual at which a solve stops.
    max_iter : int
        Most CG iterations per solve.
    rank : int
        Largest rank k of the pivoted-Cholesky preconditioner.
    n_probes : int
        Probe vectors m of the stochastic estimators (log-determinant and its gradient).
    lanczos_steps : int
        Lanczos steps per probe (SLQ).
    seed : int
        Seed of the probes (fixed: the estimated likelihood is then a deterministic function
        of the hyperparameters, so L-BFGS-B can optimise it).
    tile : int
        Rows and columns of one kernel tile.
    progress : callable or None
        ``progress(iteration, residual)`` after every CG iteration.
    mesh : jax.sharding.Mesh or None
        Split the tiles of the CG products over this mesh's devices
        (:func:`resgp.solvers.sharding.device_mesh`); None: one device.
    """

    tol: float = 1e-8
    max_iter: int = 1000
    rank: int = 100
    n_probes: int = 16
    lanczos_steps: int = 30
    seed: int = 0
    tile: int = TILE
    progress: object = field(default=None, compare=False)
    mesh: object = field(default=None, compare=False)


def check_memory(n, columns, settings, available=None):
    """Refuse, before any work, a problem whose O(N (columns + k + m * steps)) arrays do not fit.

    Parameters
    ----------
    n : int
        Training points N.
    columns : int
        Right-hand sides solved together (targets plus probes, or query points).
    settings : SolverSettings
        Rank, probes and Lanczos steps.
    available : int or None
        Bytes available; None: the machine's physical memory.

    Raises
    ------
    MemoryError
        Naming the estimate and what to reduce.
    """
    if available is None:
        try:
            import os
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf
            return
    per_row = 6 * columns + 2 * settings.rank + settings.n_probes * (settings.lanczos_steps + 4)
    need = n * per_row * BYTES_PER_FLOAT + 64 * settings.tile ** 2 * BYTES_PER_FLOAT
    if need > 0.8 * available:
        raise MemoryError(
            f"the matrix-free solve with N={n} needs about {need / 2**30:.1f} GiB "
            f"({columns} right-hand sides, preconditioner rank {settings.rank}, "
            f"{settings.n_probes} probes x {settings.lanczos_steps} Lanczos steps), more than "
            f"80% of the {available / 2**30:.1f} GiB here; use fewer points, probes or steps")


def _solve(net, h, X, B, pre, settings, what):
    if settings.mesh is None:
        def matvec(V):
            return kernel_product(net, h, X, V, settings.tile)
    else:
        from .sharding import sharded_kernel_product

        def matvec(V):
            return sharded_kernel_product(net, h, X, V, settings.mesh, settings.tile)
    res = pcg(matvec, B, pre.solve,
              tol=settings.tol, max_iter=settings.max_iter, progress=settings.progress)
    if not res.converged:
        warnings.warn(
            f"CG did not converge solving for the {what}: relative residual "
            f"{res.residual.max():.3g} > tol={settings.tol:g} after {res.n_iter} iterations "
            f"(max_iter={settings.max_iter}); raise max_iter or the preconditioner rank, or "
            f"loosen the tolerance", ConvergenceWarning, stacklevel=3)
    return res


def _probes(n, settings):
    rng = np.random.default_rng(settings.seed)
    return rng.choice([-1.0, 1.0], size=(n, settings.n_probes))


def log_marginal_likelihood(net, h, X, Y, settings, eval_gradient=False):
    r"""The GP log marginal likelihood, matrix-free (module docstring).

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`resgp.solvers.products.hyperparameters`); the noise variance
        includes any jitter.
    X : ndarray (N, d)
        Training inputs.
    Y : ndarray (N,) or (N, p)
        Training targets.
    settings : SolverSettings
        Tolerances, probes, preconditioner rank.
    eval_gradient : bool, default=False
        Also return the gradient in every hyperparameter of h.

    Returns
    -------
    value : float
        :math:`\log p(Y)` (natural log), summed over outputs.
    grad : dict of str to ndarray, only with eval_gradient
        :math:`\partial \log p(Y) / \partial h_k` for each key of h.
    info : dict
        ``alpha`` (N, p) :math:`\hat K^{-1} Y`, ``n_iter``, ``residual`` (largest relative CG
        residual), ``logdet``.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
    n, p = Y.shape
    m = settings.n_probes
    check_memory(n, p + (m if eval_gradient else 0), settings)
    L, pivots = pivoted_cholesky(net, h, X, settings.rank)
    pre = Preconditioner(L, float(h["noise_variance"]))
    Z = _probes(n, settings)
    B = np.concatenate([Y, Z], axis=1) if eval_gradient else Y
    res = _solve(net, h, X, B, pre, settings, "posterior weights"
                 if not eval_gradient else "posterior weights and probes")
    alpha = res.x[:, :p]
    logdet = slq_logdet(net, h, X, pre, Z, settings.lanczos_steps, settings.tile,
                        settings.rank)
    value = -0.5 * float(np.sum(Y * alpha)) - 0.5 * p * logdet - 0.5 * n * p * np.log(2 * np.pi)
    info = dict(alpha=alpha, n_iter=res.n_iter, residual=float(res.residual.max()),
                logdet=logdet)
    if not eval_gradient:
        return value, info
    W = res.x[:, p:]
    # 1/2 sum_j alpha_j' dK alpha_j - p/2 (1/m) sum_i w_i' dK z_i
    left = np.concatenate([0.5 * alpha, -0.5 * p / m * W], axis=1)
    right = np.concatenate([alpha, Z], axis=1)
    g_k = bilinear_gradient(net, h, X, left, right, settings.tile)
    # - p/2 [d logdet P - (1/m) sum_i u_i' dP z_i]
    g_p = nystrom_terms_gradient(net, h, X, pivots, pre.solve(Z), Z, settings.tile,
                                 settings.rank)
    grad = {k: np.asarray(g_k[k]) - 0.5 * p * np.asarray(g_p[k]) for k in h}
    return value, grad, info


def posterior(net, h, X, alpha, Xs, settings, want="mean", noise=True):
    r"""Posterior mean, and variances or covariance, at query points, by CG.

    Mean :math:`a K(X_*, X)\alpha`; covariance
    :math:`a K(X_*, X_*) - a^2 K(X_*, X)\hat K^{-1}K(X, X_*)` (plus the noise with
    ``noise``), the solve with the columns of :math:`K(X, X_*)` as right-hand sides.

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (noise including jitter).
    X : ndarray (N, d)
        Training inputs.
    alpha : ndarray (N, p)
        :math:`\hat K^{-1} Y`.
    Xs : ndarray (M, d)
        Query inputs.
    settings : SolverSettings
        Tolerances and preconditioner rank.
    want : {"mean", "var", "cov"}
        What besides the mean.
    noise : bool, default=True
        Add the noise variance to the variances (the predictive distribution of a new
        observation).

    Returns
    -------
    mean : ndarray (M, p)
    extra : ndarray (M,) or (M, M), absent with want="mean"
        Variances or covariance (shared by all outputs).
    info : dict
        ``n_iter`` and ``residual`` of the variance solve (absent with want="mean").
    """
    X, Xs = (np.asarray(A, dtype=np.float64) for A in (X, Xs))
    mean = np.asarray(cross_product(net, h, Xs, X, alpha, settings.tile))
    if want == "mean":
        return mean
    L, _ = pivoted_cholesky(net, h, X, settings.rank)
    pre = Preconditioner(L, float(h["noise_variance"]))
    s = float(h["noise_variance"]) if noise else 0.0
    if want == "var":  # query points in chunks: O(N * VAR_CHUNK) memory
        check_memory(X.shape[0], min(VAR_CHUNK, len(Xs)), settings)
        var, n_iter, resid = np.empty(len(Xs)), 0, 0.0
        for a in range(0, len(Xs), VAR_CHUNK):
            chunk = Xs[a:a + VAR_CHUNK]
            Kxs = np.asarray(cross_product(net, h, X, chunk, np.eye(len(chunk)), settings.tile))
            res = _solve(net, h, X, Kxs, pre, settings, "predictive variances")
            var[a:a + len(chunk)] = np.asarray(kernel_diagonal(net, h, chunk)) - np.einsum(
                "ij,ij->j", Kxs, res.x)
            n_iter, resid = max(n_iter, res.n_iter), max(resid, float(res.residual.max()))
        return mean, np.maximum(var, 0.0) + s, dict(n_iter=n_iter, residual=resid)
    check_memory(X.shape[0], Xs.shape[0], settings)
    Kxs = np.asarray(cross_product(net, h, X, Xs, np.eye(Xs.shape[0]), settings.tile))
    res = _solve(net, h, X, Kxs, pre, settings, "predictive covariance")
    Kss = np.asarray(kernel_product(net, dict(h, noise_variance=0.0), Xs, np.eye(Xs.shape[0]),
                                    settings.tile))
    cov = Kss - Kxs.T @ res.x
    cov = 0.5 * (cov + cov.T) + s * np.eye(len(cov))
    return mean, cov, dict(n_iter=res.n_iter, residual=float(res.residual.max()))
