r"""The exact log marginal likelihood with a gradient that never stacks N x N x G arrays.

scikit-learn's ``GaussianProcessRegressor`` asks its kernel for ``K_gradient``, shape
(N, N, G), forms :math:`K^{-1}` by a triangular solve against the identity (:math:`2N^3`) and
contracts the two by einsum. With per-feature (ARD) hyperparameters G grows with the number
of features: on 2,000 rows and 33 features that is 1.2 GB and seconds per evaluation. The
gradient needs only one contraction per hyperparameter (Rasmussen & Williams 2006, eq. 5.9),

.. math:: \frac{\partial \log p(y)}{\partial\theta_j} = \tfrac12 \sum_{ab} M_{ab}
   \frac{\partial K_{ab}}{\partial\theta_j}, \qquad M = \alpha\alpha^\top - C K^{-1},
   \quad \alpha = K^{-1} Y

(C outputs, :math:`K^{-1}` from the Cholesky factor by LAPACK's ``potri``, :math:`N^3/3`
after the factorisation), the vector-Jacobian product of :math:`\theta\mapsto K`.
:func:`gram_and_vjp` computes it through the kernel expression: sums and products pass M on
(a product :math:`K_1\circ K_2` hands :math:`M\circ K_2` to :math:`K_1`), ``ConstantKernel``,
``WhiteKernel``, ``RBF`` and ``Matern`` (nu = 1.5, 2.5, inf) contract in closed form, resgp's
kernels through :func:`resgp.core.engine.gram_and_vjp`, any other kernel through its own
``K_gradient`` (what scikit-learn does). :class:`GaussianProcessRegressor` is scikit-learn's
estimator with this gradient; values and gradients equal scikit-learn's to rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_solve, cholesky
from scipy.linalg.lapack import dpotri
from scipy.spatial.distance import pdist, squareform
from sklearn import gaussian_process as _sklearn_gp
from sklearn.gaussian_process.kernels import (RBF, ConstantKernel, Matern, Product, Sum,
                                              WhiteKernel)

__all__ = ["GaussianProcessRegressor", "gram_and_vjp"]


def _radial(kernel, X, K):
    """For RBF and Matern (nu = 1.5, 2.5, inf): h(r) with dK/dlog l_i = h(r) (x_ai - x_bi)^2 / l_i^2
    (isotropic: h(r) r^2), and the scaled inputs X / l."""
    Z = X / kernel.length_scale
    nu = getattr(kernel, "nu", np.inf)
    if nu == np.inf:
        return K, Z
    r = np.sqrt(squareform(pdist(Z, metric="sqeuclidean")))
    if nu == 1.5:
        return 3.0 * np.exp(-np.sqrt(3.0) * r), Z
    return 5.0 / 3.0 * (1.0 + np.sqrt(5.0) * r) * np.exp(-np.sqrt(5.0) * r), Z  # nu = 2.5


def _stationary_vjp(kernel, X, K):
    H, Z = _radial(kernel, X, K)

    def vjp(M):
        S = M * H
        if not kernel.anisotropic:  # sum_i (z_ai - z_bi)^2 = r^2
            return np.array([np.vdot(S, squareform(pdist(Z, metric="sqeuclidean")))])
        Z2 = Z * Z  # sum_ab S_ab (z_ai - z_bi)^2, expanded: O(N^2 d)
        return Z2.T @ S.sum(1) + Z2.T @ S.sum(0) - 2.0 * np.einsum("ai,ai->i", S @ Z, Z)

    return vjp


def gram_and_vjp(kernel, X):
    r"""k(X, X) and :math:`M \mapsto \sum_{ab} M_{ab}\,\partial K_{ab}/\partial\theta_j`.

    Parameters
    ----------
    kernel : sklearn.gaussian_process.kernels.Kernel
        Any scikit-learn kernel expression (resgp's kernels included).
    X : ndarray of shape (n_samples, n_features)
        Inputs.

    Returns
    -------
    K : ndarray of shape (n_samples, n_samples)
        ``kernel(X)``.
    vjp : callable
        ``vjp(M)``, M of shape (n_samples, n_samples), returns an ndarray of shape (n_dims,) in
        the order of ``kernel.theta`` (log space): the contraction of ``kernel(X,
        eval_gradient=True)[1]`` with M over its first two axes, computed without it where the
        kernel's form is known.
    """
    if isinstance(kernel, (Sum, Product)) and type(kernel) in (Sum, Product):
        K1, vjp1 = gram_and_vjp(kernel.k1, X)
        K2, vjp2 = gram_and_vjp(kernel.k2, X)
        if type(kernel) is Sum:
            return K1 + K2, lambda M: np.concatenate([vjp1(M), vjp2(M)])
        return K1 * K2, lambda M: np.concatenate([vjp1(M * K2), vjp2(M * K1)])
    if hasattr(kernel, "gram_and_vjp"):  # resgp's kernels: the compute engine's contraction
        return kernel.gram_and_vjp(X)
    K = kernel(X)
    if type(kernel) is ConstantKernel:
        free = not kernel.hyperparameter_constant_value.fixed
        return K, lambda M: np.array([kernel.constant_value * M.sum()] if free else [])
    if type(kernel) is WhiteKernel:
        free = not kernel.hyperparameter_noise_level.fixed
        return K, lambda M: np.array([kernel.noise_level * np.trace(M)] if free else [])
    if type(kernel) in (RBF, Matern) and getattr(kernel, "nu", np.inf) in (1.5, 2.5, np.inf):
        if kernel.hyperparameter_length_scale.fixed:
            return K, lambda M: np.empty(0)
        return K, _stationary_vjp(kernel, X, K)
    K, K_gradient = kernel(X, eval_gradient=True)  # any other kernel: its own gradient
    return K, lambda M: np.einsum("ab,abj->j", M, K_gradient)


class GaussianProcessRegressor(_sklearn_gp.GaussianProcessRegressor):
    r"""scikit-learn's ``GaussianProcessRegressor`` with the contracted likelihood gradient.

    The same estimator, parameters, attributes and results (values and gradients of the log
    marginal likelihood equal scikit-learn's to rounding); only
    ``log_marginal_likelihood(theta, eval_gradient=True)`` is computed differently: the kernel's
    gradient is contracted by :func:`gram_and_vjp` instead of stacked, and :math:`K^{-1}` comes
    from the Cholesky factor by ``potri`` (the module docstring gives the formula). Fitting ARD
    kernels on thousands of rows is several times faster; memory stays a few N x N arrays
    whatever the number of hyperparameters.

    Parameters
    ----------
    kernel : Kernel or None, default=None
        The prior covariance; None is ``ConstantKernel(1.0, "fixed") * RBF(1.0, "fixed")``.
    alpha : float or ndarray of shape (n_samples,), default=1e-10
        Added to the diagonal of K(X, X).
    optimizer : "fmin_l_bfgs_b", callable or None, default="fmin_l_bfgs_b"
        Maximises the log marginal likelihood; None keeps the kernel's hyperparameters.
    n_restarts_optimizer : int, default=0
        Further starts drawn log-uniformly within the bounds.
    normalize_y : bool, default=False
        Standardise the targets (mean 0, variance 1) before fitting.
    copy_X_train : bool, default=True
        Store a copy of the training inputs.
    n_targets : int or None, default=None
        Number of outputs, for sampling from the prior before ``fit``.
    random_state : int, RandomState or None, default=None
        Seeds the restarts and ``sample_y``.
    """

    def log_marginal_likelihood(self, theta=None, eval_gradient=False, clone_kernel=True):
        r"""Log marginal likelihood :math:`\log p(y \mid X, \theta)`, summed over outputs.

        Parameters
        ----------
        theta : array-like of shape (n_kernel_params,) or None, default=None
            Log-space hyperparameters; None: those of the fitted kernel.
        eval_gradient : bool, default=False
            Also return the gradient with respect to theta.
        clone_kernel : bool, default=True
            Evaluate a copy of the kernel (False sets theta on ``kernel_`` in place).

        Returns
        -------
        log_likelihood : float
            The log marginal likelihood.
        log_likelihood_gradient : ndarray of shape (n_kernel_params,), optional
            Its gradient, when ``eval_gradient``.
        """
        if theta is None or not eval_gradient:
            return super().log_marginal_likelihood(theta, eval_gradient, clone_kernel)
        if clone_kernel:
            kernel = self.kernel_.clone_with_theta(theta)
        else:
            kernel = self.kernel_
            kernel.theta = theta
        K, vjp = gram_and_vjp(kernel, self.X_train_)
        K = K.copy()  # vjp may hold K
        K[np.diag_indices_from(K)] += self.alpha
        try:
            L = cholesky(K, lower=True, check_finite=False)
        except LinAlgError:
            return -np.inf, np.zeros_like(theta)
        Y = self.y_train_[:, np.newaxis] if self.y_train_.ndim == 1 else self.y_train_
        alpha = cho_solve((L, True), Y, check_finite=False)
        value = (-0.5 * np.einsum("ik,ik->k", Y, alpha) - np.log(np.diag(L)).sum()
                 - K.shape[0] / 2 * np.log(2 * np.pi)).sum()
        K_inv, info = dpotri(L, lower=1)
        if info != 0:
            return -np.inf, np.zeros_like(theta)
        K_inv += K_inv.T  # potri fills the lower triangle; the upper one is L's: zeros
        K_inv[np.diag_indices_from(K_inv)] *= 0.5
        M = alpha @ alpha.T
        M -= Y.shape[1] * K_inv
        return value, 0.5 * vjp(M)
