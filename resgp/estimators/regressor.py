"""Exact Gaussian-process regression with the ResNet NNGP kernel: :class:`ResNetGPRegressor`."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin

from ..kernels import resnet_nngp, resnet_ntk
from ..predict import check_settings, gradient_descent_mse_posterior
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
        + """
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

    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + """

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

    def fit(self, X, y):
        """Fit the GP: standardise X, optimise the hyperparameters, condition on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self
        """
        if self.posterior not in ("nngp", "ntk"):
            raise ValueError(f"posterior must be 'nngp' or 'ntk', got {self.posterior!r}")
        if self.posterior == "ntk":
            check_settings(self.train_time, "ntk", 1.0, 0.0)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        self._fit_gp(X, y, normalize_y=bool(self.normalize_y))
        return self

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
        return_std : bool, default=False
        return_cov : bool, default=False
            At most one of the two.

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
        return self.gpr_.predict(Xs, return_std=return_std, return_cov=return_cov)

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw samples from the posterior predictive at X (noise included).

        Returns
        -------
        y_samples : ndarray of shape (n_samples_X, n_samples) or
            (n_samples_X, n_targets, n_samples)
        """
        Xs = self._standardise(X)
        return self.gpr_.sample_y(Xs, n_samples, random_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

