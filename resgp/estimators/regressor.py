"""Exact Gaussian-process regression with the ResNet NNGP kernel: :class:`ResNetGPRegressor`."""

from __future__ import annotations

from sklearn.base import RegressorMixin

from .base import _ATTRIBUTES_DOC, _PARAMETERS_DOC, _ResNetGPBase, validate_data

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

    Attributes
    ----------"""
        + _ATTRIBUTES_DOC
        + """

    Notes
    -----
    ``predict(X, return_std=True)`` and ``return_cov`` include the fitted white noise (the
    predictive distribution of a new observation), as ``GaussianProcessRegressor`` does.
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
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True)
        self._fit_gp(X, y, normalize_y=bool(self.normalize_y))
        return self

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
        Xs = self._standardise(X)
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

