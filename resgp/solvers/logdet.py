r"""The log-determinant of :math:`\hat K = a K + s I` and its gradient, matrix-free.

Value (docs/theory.md, "Matrix-free inference"): with the preconditioner
:math:`P = L L^\top + s I` (:mod:`resgp.solvers.preconditioner`),

.. math::  \log\det\hat K = \log\det P + \operatorname{tr}\log(P^{-1/2}\hat K P^{-1/2}),

the first term exact, the second by stochastic Lanczos quadrature (matfree's
``funm.monte_carlo_funm_sym_logdet`` with ``stochtrace.estimator_monte_carlo``: Rademacher
probes z, m Lanczos steps each,
:math:`z^\top \log(A) z \approx \|z\|^2 e_1^\top \log(T) e_1`). The whitened matrix is close to
I, so its log is small and so is the estimator's variance.

Gradient: :math:`\partial\log\det\hat K = \operatorname{tr}(\hat K^{-1}\partial\hat K)`, estimated
with the preconditioner as a control variate,

.. math::  \operatorname{tr}(P^{-1}\partial P) + \frac{1}{m}\sum_i
    \big[(\hat K^{-1} z_i)^\top \partial\hat K\, z_i - (P^{-1} z_i)^\top \partial P\, z_i\big],

where :math:`P(\theta) = a K_{XS} K_{SS}^{-1} K_{SX} + s I` is the Nystrom form of the same
preconditioner (pivots S fixed), differentiable in every hyperparameter and evaluated in
O(N k^2) (determinant lemma). The first bracket term needs the CG solves
:math:`\hat K^{-1} z_i`; both are forward-mode derivatives of bilinear forms.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..core import traceable
from ..core.x64 import float64
from .products import _gram, _tiles, static_network

__all__ = ["slq_logdet", "nystrom_terms_gradient"]


def _matfree():
    """matfree's modules (the ``solvers`` extra), imported on first use: ``import resgp`` does
    not need it."""
    try:
        from matfree import decomp, funm, stochtrace
    except ImportError as err:  # pragma: no cover - the test set-up installs it
        raise ImportError("solver='cg' needs matfree (stochastic Lanczos quadrature): "
                          "pip install 'resgp[solvers]'") from err
    return decomp, funm, stochtrace


@partial(jax.jit, static_argnames=("net", "steps", "tile"))
def _slq(net, h, X, U, shrink, noise, Z, steps, tile):
    def whiten(v):
        return U @ (shrink * (U.T @ v)) + v / jnp.sqrt(noise)

    def matvec(v):
        return whiten(_gram(net, h, X, whiten(v)[:, None], tile)[:, 0])

    decomp, funm, stochtrace = _matfree()
    integrand = funm.monte_carlo_funm_sym_logdet(decomp.tridiag_sym(steps, custom_vjp=False))
    estimate = stochtrace.estimator_monte_carlo(integrand, lambda key: Z.T)
    return estimate(matvec, jax.random.PRNGKey(0))


def slq_logdet(net, h, X, preconditioner, Z, steps, tile, rank=None):
    r""":math:`\log\det(a K(X, X) + s I)` by SLQ on the preconditioned matrix.

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (:func:`resgp.solvers.products.hyperparameters`), the noise
        including any jitter.
    X : array (N, d)
        Inputs.
    preconditioner : resgp.solvers.preconditioner.Preconditioner
        :math:`P = L L^\top + s I` for the same hyperparameters.
    Z : array (N, m)
        Probe vectors (Rademacher: entries +-1).
    steps : int
        Lanczos steps per probe (at most N).
    tile : int
        Rows and columns of one kernel tile.
    rank : int or None
        Pad the preconditioner's basis with zero columns to this many (one compiled program
        whatever its rank); None: its own rank.

    Returns
    -------
    logdet : float
        The estimate (natural log).
    """
    with float64():
        n = X.shape[0]
        steps = max(1, min(int(steps), n))
        U, shrink = preconditioner.U, preconditioner._shrink
        extra = 0 if rank is None else max(0, int(rank) - U.shape[1])
        U = np.concatenate([U, np.zeros((n, extra))], axis=1)
        shrink = np.concatenate([shrink, np.zeros(extra)])
        est = _slq(static_network(net), h, jnp.asarray(X, dtype=jnp.float64), jnp.asarray(U),
                   jnp.asarray(shrink), preconditioner.noise,
                   jnp.asarray(Z, dtype=jnp.float64), steps, tile)
        return preconditioner.logdet + float(est)


@partial(jax.jit, static_argnames=("net", "tile"))
def _nystrom(net, h, X, Xs, valid_s, U, Z, tile):
    kw = lambda hh: dict(branch_variance=hh["branch_variance"],  # noqa: E731
                         weight_variance=hh["weight_variance"], bias_variance=hh["bias_variance"])
    n, m = U.shape

    def g(hh):
        both = valid_s[:, None] & valid_s[None, :]  # padded pivots: an identity block
        Kss = jnp.where(both, traceable.kernel_matrix(net, Xs, **kw(hh)), jnp.eye(len(Xs)))
        Xt, UZ = _tiles(X, tile), jnp.concatenate([U, Z], axis=1)
        UZt = jnp.concatenate([UZ, jnp.zeros((Xt.shape[0] * tile - n, 2 * m))]).reshape(
            Xt.shape[0], tile, 2 * m)
        valid = (jnp.arange(Xt.shape[0] * tile) < n).reshape(Xt.shape[0], tile)

        def step(acc, t):
            x, uz, ok = t
            C = jnp.where(ok[:, None] & valid_s[None, :],
                          traceable.kernel_matrix(net, x, Xs, **kw(hh)), 0.0)
            return (acc[0] + C.T @ C, acc[1] + C.T @ uz), None

        k = Xs.shape[0]
        (CtC, CtUZ), _ = jax.lax.scan(step, (jnp.zeros((k, k)), jnp.zeros((k, 2 * m))),
                                      (Xt, UZt, valid))
        a, s = hh["amplitude"], hh["noise_variance"]
        Lss = jnp.linalg.cholesky(Kss)
        logdet = n * jnp.log(s) + 2 * jnp.sum(jnp.log(jnp.diag(
            jnp.linalg.cholesky(Kss + (a / s) * CtC)))) - 2 * jnp.sum(jnp.log(jnp.diag(Lss)))
        Cu, Cz = CtUZ[:, :m], CtUZ[:, m:]
        solve = jax.scipy.linalg.cho_solve((Lss, True), Cz)
        quad = s * jnp.vdot(U, Z) + a * jnp.vdot(Cu, solve)
        return logdet - quad / m

    return jax.jacfwd(g)(h)


def nystrom_terms_gradient(net, h, X, pivots, U, Z, tile, rank=None):
    r"""Gradient of :math:`\log\det P(\theta) - \frac1m\sum_i u_i^\top P(\theta) z_i`.

    :math:`P(\theta) = a K_{XS} K_{SS}^{-1} K_{SX} + s I` with the pivots S fixed; the
    :math:`u_i = P^{-1} z_i` are constants. Its gradient is the control-variate part of
    :math:`\partial\log\det\hat K` (module docstring).

    Parameters
    ----------
    net : resgp.core.network.Network
        The kernel.
    h : dict
        Hyperparameters (noise including jitter).
    X : array (N, d)
        Inputs.
    pivots : array of int (k,)
        The pivots S (:func:`resgp.solvers.preconditioner.pivoted_cholesky`).
    U : array (N, m)
        :math:`P^{-1} Z`.
    Z : array (N, m)
        The probes.
    tile : int
        Rows of one tile of :math:`K_{XS}`.
    rank : int or None
        Pad the pivots to this many (an identity block: one compiled program whatever the
        number of pivots found); None: len(pivots).

    Returns
    -------
    grad : dict of str to jax.Array
        One entry per hyperparameter of h.
    """
    with float64():
        X = jnp.asarray(X, dtype=jnp.float64)
        k = len(pivots)
        rank = max(k, 1) if rank is None else max(int(rank), k, 1)
        padded = np.concatenate([np.asarray(pivots, dtype=int), np.zeros(rank - k, dtype=int)])
        return _nystrom(static_network(net), h, X, X[jnp.asarray(padded)], jnp.arange(rank) < k,
                        jnp.asarray(U, dtype=jnp.float64), jnp.asarray(Z, dtype=jnp.float64),
                        tile)
