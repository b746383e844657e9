"""Exact Gaussian-process regression with the ResNet NNGP kernel: :class:`ResNetGPRegressor`."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state

from ..kernels import resnet_nngp, resnet_ntk
from ..predict import check_settings, gradient_descent_mse_posterior
from . import matrix_free
from .base import _ATTRIBUTES_DOC, _PARAMETERS_DOC, JITTER, _ResNetGPBase, validate_data

__all__ = ["ResNetGPRegressor"]


class ResNetGPRegressor(RegressorMixin, _ResNetGPBase):
    __doc__ = (
        r"""Exact Gaussian-process regression with the ResNet NNGP kernel.

    Inputs are standardised, then modelled with
    ``ConstantKernel(amplitude) * ResNetKernel(branch_variance, bias_variance, depth) +
    WhiteKernel(noise_variance)``; the four hyperparameters are fitted by maximising the log
    marginal likelihood (scikit-learn's ``GaussianProcessRegressor``, L-BFGS-B with exact
    gradients). Several targets (y of shape (n, k)) share the kernel.

    Parameters
    ----------"""
        + _PARAMETERS_DOC
        + r"""
    normalize_y : bool, default=True
        Standardise the targets before fitting (the noise and amplitude are then in units of the
        standardised targets); predictions are returned in the original units.
    posterior : {"nngp", "ntk"}, default="nngp"
        "nngp": the Bayesian posterior of the GP prior (the NNGP kernel). "ntk": the
        trained-network posterior (Lee et al. 2019, :mod:`resgp.predict`): the infinitely wide
        ResNet trained by gradient descent on MSE for time ``train_time``, with the NTK of the
        same network scaled by the fitted amplitude, the fitted noise variance as its ridge
        (absolute) and the hyperparameters fitted by the NNGP marginal likelihood.
    train_time : float >= 0 or None, default=None
        With ``posterior="ntk"``: the training time :math:`\eta t` (learning rate times time,
        Neural Tangents' convention); None: trained to convergence.
    solver : {"cholesky", "cg", "auto"}, default="cholesky"
        "cholesky": scikit-learn's dense GP (O(N^2) memory, O(N^3) time). "cg": matrix-free
        (:mod:`resgp.solvers`; docs/theory.md, "Matrix-free inference"): solves by
        preconditioned conjugate gradients on tiled kernel products, the log-determinant and
        its gradient by stochastic Lanczos quadrature with fixed probes, O(N) memory;
        ``gpr_`` is then None. "auto": "cholesky" up to
        ``resgp.estimators.matrix_free.AUTO_CHOLESKY_MAX_N`` (5000) training points, "cg"
        beyond.
    solver_tol : float in (0, 1), default=1e-8
        With CG: relative residual :math:`\|b - \hat K x\| / \|b\|` at which a solve stops.
    max_iter : int >= 1, default=1000
        With CG: most iterations per solve (a ``ConvergenceWarning`` when reached).
    preconditioner_rank : int >= 1, default=100
        With CG: rank of the pivoted-Cholesky preconditioner.
    n_probes : int >= 1, default=16
        With CG: Rademacher probe vectors of the log-determinant and gradient estimators.

    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + r"""
    solver_ : str
        The solver used, "cholesky" or "cg".
    n_iter_ : int
        With CG: iterations of the final solve for the posterior weights; 1 with Cholesky
        (one direct solve).
    solver_residual_ : float
        With CG: the largest relative residual that solve reached.
    alpha_ : ndarray (n_samples, n_targets)
        With CG: :math:`\hat K^{-1} y` (normalised targets).

    Notes
    -----
    ``predict(X, return_std=True)`` and ``return_cov`` include the fitted white noise (the
    predictive distribution of a new observation), as ``GaussianProcessRegressor`` does;
    ``sample_y`` and ``log_marginal_likelihood`` are those of the NNGP posterior whatever
    ``posterior``.
    """
    )

    def __init__(
        self,
        *,
        branch_variance=1.0,
        bias_variance=0.0,
        depth=None,
        noise_variance=1e-2,
        activation="relu",
        amplitude=1.0,
        branch_variance_bounds=(1e-2, 1e1),
        bias_variance_bounds=None,
        amplitude_bounds=(1e-3, 1e3),
        noise_variance_bounds=(1e-6, 1e1),
        optimizer="fmin_l_bfgs_b",
        n_restarts_optimizer=0,
        normalize_y=True,
        random_state=None,
        ard=False,
        posterior="nngp",
        train_time=None,
        solver="cholesky",
        solver_tol=1e-8,
        max_iter=1000,
        preconditioner_rank=100,
        n_probes=16,
    ):
        self.branch_variance = branch_variance
        self.bias_variance = bias_variance
        self.depth = depth
        self.noise_variance = noise_variance
        self.activation = activation
        self.amplitude = amplitude
        self.branch_variance_bounds = branch_variance_bounds
        self.bias_variance_bounds = bias_variance_bounds
        self.amplitude_bounds = amplitude_bounds
        self.noise_variance_bounds = noise_variance_bounds
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.random_state = random_state
        self.ard = ard
        self.posterior = posterior
        self.train_time = train_time
        self.solver = solver
        self.solver_tol = solver_tol
        self.max_iter = max_iter
        self.preconditioner_rank = preconditioner_rank
        self.n_probes = n_probes

    def fit(self, X, y):
        """Fit the GP: standardise X, optimise the hyperparameters, condition on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (standardised by the estimator).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Training targets; several targets share the kernel.

        Returns
        -------
        self : ResNetGPRegressor
            The fitted estimator.
        """
        if self.posterior not in ("nngp", "ntk"):
            raise ValueError(f"posterior must be 'nngp' or 'ntk', got {self.posterior!r}")
        if self.posterior == "ntk":
            check_settings(self.train_time, "ntk", 1.0, 0.0)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        self.solver_ = matrix_free.resolve_solver(self, X.shape[0])
        if self.solver_ == "cg":
            self._fit_cg(X, y)
        else:
            self._fit_gp(X, y, normalize_y=bool(self.normalize_y))
            self.n_iter_ = 1  # one direct (Cholesky) solve
        return self

    def _fit_cg(self, X, y):
        """The matrix-free fit (:mod:`resgp.estimators.matrix_free`)."""
        restarts = self.n_restarts_optimizer
        if (not isinstance(restarts, (int, np.integer)) or isinstance(restarts, bool)
                or restarts < 0):
            raise ValueError(f"n_restarts_optimizer must be an integer >= 0, got {restarts!r}")
        kernel = self._kernel(X.shape[1])
        self.scaler_ = StandardScaler().fit(X)
        y = np.asarray(y, dtype=np.float64)
        if self.normalize_y:
            self._y_mean, std = y.mean(axis=0), y.std(axis=0)
            self._y_std = np.where(std > 0, std, 1.0)
        else:
            self._y_mean, self._y_std = np.zeros(y.shape[1:]), np.ones(y.shape[1:])
        Y = ((y - self._y_mean) / self._y_std).reshape(len(y), -1)
        self._y_ndim, self._y_train, self.gpr_ = y.ndim, Y, None
        self._set_hyperparameters(matrix_free.fit_cg(self, self.scaler_.transform(X), Y,
                                                     kernel, JITTER))

    def _predict_cg(self, Xs, return_std, return_cov):
        """The matrix-free posterior in the original units (noise included)."""
        from ..solvers import gp
        want = "cov" if return_cov else "var" if return_std else "mean"
        out = gp.posterior(self._cg_network, self._cg_h, self.X_train_, self.alpha_, Xs,
                           matrix_free.settings(self), want=want)
        mean, scale = out if want == "mean" else out[0], self._y_std
        mean = mean * scale + self._y_mean
        if self._y_ndim == 1:
            mean = mean[:, 0]
        if want == "mean":
            return mean
        extra = out[1]
        if want == "cov":
            return mean, (extra[..., None] * scale ** 2 if mean.ndim == 2 else extra * scale ** 2)
        return mean, (np.sqrt(extra[:, None] * scale ** 2) if mean.ndim == 2
                      else np.sqrt(extra) * scale)

    def _fitted_network(self):
        """The keyword arguments of the fitted network for resgp's kernel functions."""
        return dict(depth=self.depth, branch_variance=self.branch_variance_,
                    bias_variance=self.bias_variance_, weight_variance=self.weight_variance_,
                    activation=self.activation)

    def _network_kernels(self, A, B=None):
        """(amplitude * NTK, amplitude * NNGP) of the fitted network, K(A, B) (B=None: K(A, A))."""
        kw, a = self._fitted_network(), self.amplitude_
        return a * resnet_ntk(A, B, **kw), a * resnet_nngp(A, B, **kw)

    def _predict_ntk(self, Xs, return_std, return_cov):
        """The trained-network posterior in the original units (noise included, as the NNGP
        posterior's ``predict``)."""
        gpr = self.gpr_
        A = gpr.X_train_
        y = np.asarray(gpr.y_train_)  # standardised when normalize_y
        ntk_dd, nngp_dd = self._network_kernels(A)
        ntk_td, nngp_td = self._network_kernels(Xs, A)
        k_dd, k_td = {"ntk": ntk_dd, "nngp": nngp_dd}, {"ntk": ntk_td, "nngp": nngp_td}
        settings = dict(t=self.train_time, get="ntk", diag_reg=self.noise_variance_ + JITTER,
                        diag_reg_absolute_scale=True)
        want = return_std or return_cov
        k_tt = self.amplitude_ * resnet_nngp(Xs, **self._fitted_network()) if want else None
        out = gradient_descent_mse_posterior(k_dd, y, k_td, k_tt, **settings)
        mean, cov = out if want else (out, None)
        scale = np.asarray(gpr._y_train_std)
        mean = mean * scale + np.asarray(gpr._y_train_mean)
        if not want:
            return mean
        cov = cov + self.noise_variance_ * np.eye(cov.shape[0])
        if return_cov:
            return mean, (cov[..., None] * scale ** 2 if mean.ndim == 2 else cov * scale ** 2)
        var = np.maximum(np.diag(cov), 0.0)
        std = np.sqrt(var[:, None] * scale ** 2) if mean.ndim == 2 else np.sqrt(var) * scale
        return mean, std

    def predict(self, X, return_std=False, return_cov=False):
        """Posterior predictive mean, and optionally its standard deviation or covariance.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query inputs, in the units of the training inputs.
        return_std : bool, default=False
            Also return the predictive standard deviation.
        return_cov : bool, default=False
            Also return the predictive covariance. At most one of the two.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray of shape (n_samples,) or (n_samples, n_targets), optional
        y_cov : ndarray of shape (n_samples, n_samples) or (n_samples, n_samples, n_targets),
            optional. Both include the fitted noise variance.
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        Xs = self._standardise(X)
        if self.posterior == "ntk":
            return self._predict_ntk(Xs, return_std, return_cov)
        if getattr(self, "solver_", "cholesky") == "cg":
            return self._predict_cg(Xs, return_std, return_cov)
        return self.gpr_.predict(Xs, return_std=return_std, return_cov=return_cov)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw samples from the posterior predictive at X (noise included).

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
            Query inputs, in the units of the training inputs.
        n_samples : int, default=1
            Number of samples drawn at each query input.
        random_state : int, RandomState instance or None, default=0
            Seed of the draws (scikit-learn's convention).

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples) or
            (n_samples_X, n_targets, n_samples)
        """
        Xs = self._standardise(X)
        if getattr(self, "solver_", "cholesky") == "cg":  # as GaussianProcessRegressor's
            rng = check_random_state(random_state)
            mean, cov = self._predict_cg(Xs, False, True)
            if mean.ndim == 1:
                return rng.multivariate_normal(mean, cov, n_samples).T
            return np.stack([rng.multivariate_normal(mean[:, j], cov[..., j], n_samples).T
                             for j in range(mean.shape[1])], axis=1)
        return self.gpr_.sample_y(Xs, n_samples, random_state)

    def log_marginal_likelihood(self, theta=None, eval_gradient=False):
        """Log marginal likelihood of the fitted GP (summed over outputs), as scikit-learn's
        ``GaussianProcessRegressor.log_marginal_likelihood``; with ``solver_="cg"`` the
        matrix-free estimate (SLQ, fixed probes).

        Parameters
        ----------
        theta : array of shape (n_dims,) or None
            Log-hyperparameters in the order of ``kernel_.theta``; None: the fitted value.
        eval_gradient : bool, default=False
            Also return the gradient with respect to theta (theta must not be None).

        Returns
        -------
        log_likelihood : float
        log_likelihood_gradient : ndarray of shape (n_dims,), optional
        """
        if getattr(self, "solver_", "cholesky") != "cg":
            return super().log_marginal_likelihood(theta, eval_gradient)
        if theta is None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated for theta!=None")
            return self.log_marginal_likelihood_value_
        out = matrix_free.lml_cg(self.kernel_, np.asarray(theta, dtype=np.float64),
                                 self.X_train_, self._y_train, matrix_free.settings(self),
                                 JITTER, eval_gradient)
        return (out[0], out[1]) if eval_gradient else out[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

