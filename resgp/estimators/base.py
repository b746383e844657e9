"""The machinery shared by both estimators of :mod:`resgp.estimators`.

The base class :class:`_ResNetGPBase` (kernel construction from the parameters, the GP fit on
standardised inputs, the fitted hyperparameters, the log marginal likelihood), the checks of the
parameters, the parameter and attribute sections of the estimators' docstrings, and
:func:`expected_failed_checks`.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..core.activations import clone_parameters, picklable_state
from ..sklearn_kernel import DEFAULT_BIAS_BOUNDS, ResNetKernel
from .likelihood import GaussianProcessRegressor

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


__all__ = ["JITTER", "expected_failed_checks"]

JITTER = 1e-10  # added to the diagonal of K(X, X) (scikit-learn's ``alpha``), on top of the noise
_BOUNDS_RTOL = 1e-8  # exp(log(bound)) may round a hair outside the bound


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn checks that the estimator is known to fail, ``{check name: reason}``.

    Empty for both estimators of :mod:`resgp.estimators`: they pass every check of scikit-learn's
    ``check_estimator``. Kept as the single place to list a waiver, for
    ``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)``.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator checked.

    Returns
    -------
    waivers : dict of str to str
        The known failures, ``{check name: reason}``; empty.
    """
    return {}


class _ResNetGPBase(BaseEstimator):
    """Parameters, kernel construction and fitted hyperparameters shared by both estimators."""

    def __getstate__(self):
        """scikit-learn's state, plain callables (``activation=jnp.tanh``) by reference."""
        return picklable_state(super().__getstate__())

    def __sklearn_clone__(self):
        """An unfitted clone that keeps a callable activation itself (not a deep copy)."""
        return type(self)(**clone_parameters(self.get_params(deep=False)))

    def _kernel(self, n_features=None):
        """ConstantKernel * ResNetKernel + WhiteKernel from the (unmodified) parameters.

        Initial values outside their bounds are refused (scipy's L-BFGS-B would silently clip
        them); the ResNet kernel validates its own parameters when first evaluated."""
        for name, allow_zero in (("amplitude", False), ("noise_variance", True),
                                 ("branch_variance", False), ("bias_variance", True)):
            value = _check_positive(name, getattr(self, name), allow_zero)
            bounds = getattr(self, name + "_bounds")
            if name == "bias_variance" and bounds is None:  # as ResNetKernel: 0 is bias-free
                bounds = "fixed" if value == 0 else DEFAULT_BIAS_BOUNDS
            bounds = _check_bounds(name, bounds)
            if bounds == "fixed":
                continue
            if value == 0:
                raise ValueError(
                    f"{name}=0 requires {name}_bounds='fixed': hyperparameters are optimised "
                    f"in log space"
                )
            low, high = bounds
            if not low * (1 - _BOUNDS_RTOL) <= value <= high * (1 + _BOUNDS_RTOL):
                raise ValueError(
                    f"{name}={value!r} is outside {name}_bounds=({low:g}, {high:g}); widen the "
                    f"bounds or set them to 'fixed'"
                )
        if not isinstance(self.ard, (bool, np.bool_)):
            raise TypeError(f"ard must be True or False, got {self.ard!r}")
        resnet = ResNetKernel(
            branch_variance=self.branch_variance,
            bias_variance=self.bias_variance,
            activation=self.activation,
            depth=self.depth,
            branch_variance_bounds=self.branch_variance_bounds,
            bias_variance_bounds=self.bias_variance_bounds,
            weight_variance=np.ones(n_features) if self.ard and n_features else 1.0,
        )
        return ConstantKernel(self.amplitude, self.amplitude_bounds) * resnet + WhiteKernel(
            self.noise_variance, self.noise_variance_bounds
        )

    def _fit_gp(self, X, Y, normalize_y):
        """Standardise X, fit the GP on (X, Y) and set the fitted attributes."""
        restarts = self.n_restarts_optimizer
        if not isinstance(restarts, numbers.Integral) or isinstance(restarts, bool) or restarts < 0:
            raise ValueError(f"n_restarts_optimizer must be an integer >= 0, got {restarts!r}")
        kernel = self._kernel(X.shape[1])
        self.scaler_ = StandardScaler().fit(X)
        self.gpr_ = GaussianProcessRegressor(
            kernel=kernel,
            alpha=JITTER,
            optimizer=self.optimizer,
            n_restarts_optimizer=restarts,
            normalize_y=normalize_y,
            copy_X_train=False,  # the standardised copy is ours already
            random_state=self.random_state,
        ).fit(self.scaler_.transform(X), Y)
        self._set_hyperparameters(self.gpr_.kernel_)
        self.log_marginal_likelihood_value_ = float(self.gpr_.log_marginal_likelihood_value_)

    def _set_hyperparameters(self, kernel):
        """``kernel_`` and the fitted hyperparameter attributes from a fitted kernel."""
        self.kernel_ = kernel
        resnet = self.kernel_.k1.k2
        self.amplitude_ = float(self.kernel_.k1.k1.constant_value)
        self.branch_variance_ = float(resnet.branch_variance)
        self.bias_variance_ = float(resnet.bias_variance)
        self.weight_variance_ = (np.asarray(resnet.weight_variance, dtype=np.float64)
                                 if self.ard else 1.0)
        self.noise_variance_ = float(self.kernel_.k2.noise_level)

    def _standardise(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.scaler_.transform(X)

    def log_marginal_likelihood(self, theta=None, eval_gradient=False):
        """Log marginal likelihood of the fitted GP (summed over outputs), as scikit-learn's
        ``GaussianProcessRegressor.log_marginal_likelihood``.

        Parameters
        ----------
        theta : array of shape (4,) (3 + n_features with ard=True) or None
            Log-hyperparameters in the order of ``kernel_.theta``: log amplitude, log bias
            variance, log branch variance, log noise variance (those with fixed bounds left out).
            None: the value at the fitted hyperparameters.
        eval_gradient : bool, default=False
            Also return the gradient with respect to theta (theta must not be None).

        Returns
        -------
        log_likelihood : float
        log_likelihood_gradient : ndarray of shape (n_dims,), optional
        """
        check_is_fitted(self)
        return self.gpr_.log_marginal_likelihood(theta, eval_gradient, clone_kernel=True)


def _check_bounds(name, bounds):
    """'fixed', or a pair 0 < low <= high < inf."""
    if isinstance(bounds, str) and bounds == "fixed":
        return bounds
    try:
        low, high = (float(b) for b in np.asarray(bounds, dtype=np.float64).reshape(2))
    except (TypeError, ValueError):
        low = high = np.nan
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(
            f"{name}_bounds must be 'fixed' or a pair 0 < low <= high < inf, got {bounds!r}"
        )
    return low, high


def _check_positive(name, value, allow_zero=False):
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not np.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        need = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {need}, got {value!r}")
    return float(value)


_PARAMETERS_DOC = """
    branch_variance : float > 0, default=1.0
        Initial total branch variance T of the ResNet (the depth time of the kernel flow).
    bias_variance : float >= 0, default=0.0
        Initial bias variance of the input layer, q_0(a, b) = <a, b> / d + bias_variance; 0
        (the default, as in every resgp entry point) is a bias-free network and then fixed.
    depth : int >= 1 or None, default=None
        Number of residual blocks; None for the infinite-depth limit.
    noise_variance : float >= 0, default=1e-2
        Initial variance of the ``WhiteKernel`` (0 needs ``noise_variance_bounds="fixed"``).
    activation : str, Activation or callable, default="relu"
        Activation of the residual branches (see ``resgp.ACTIVATIONS``).
    amplitude : float > 0, default=1.0
        Initial value of the ``ConstantKernel`` in front of the ResNet kernel.
    branch_variance_bounds : pair of floats > 0 or "fixed", default=(1e-2, 1e1)
        Search bounds of the branch variance T (log scale), or "fixed" to keep the initial
        value.
    bias_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        Search bounds of the bias variance; None means "fixed" at 0 and (1e-5, 1e2) otherwise.
    amplitude_bounds : pair of floats > 0 or "fixed", default=(1e-3, 1e3)
        Search bounds of the amplitude (the ``ConstantKernel``'s value), or "fixed".
    noise_variance_bounds : pair of floats > 0 or "fixed", default=(1e-6, 1e1)
        Search bounds of the noise variance (the ``WhiteKernel``'s level), or "fixed".
    optimizer : "fmin_l_bfgs_b", callable or None, default="fmin_l_bfgs_b"
        As in ``GaussianProcessRegressor``; None keeps the initial hyperparameters.
    n_restarts_optimizer : int >= 0, default=0
        Extra optimiser runs from log-uniform random starts within the bounds.
    random_state : int, RandomState instance or None, default=None
        Seeds the restarts.
    ard : bool, default=False
        One input weight variance per feature (automatic relevance determination), fitted
        with the others (``ResNetKernel(weight_variance=np.ones(d))``, bounds (1e-2, 1e2)
        each, on the standardised inputs)."""

_ATTRIBUTES_DOC = """
    gpr_ : GaussianProcessRegressor
        The fitted GP, on standardised inputs.
    kernel_ : Kernel
        The fitted kernel ``ConstantKernel * ResNetKernel + WhiteKernel`` (``gpr_.kernel_``); it
        applies to ``scaler_.transform(X)``.
    scaler_ : StandardScaler
        The input standardisation.
    amplitude_, branch_variance_, bias_variance_, noise_variance_ : float
        The fitted hyperparameters.
    weight_variance_ : float or ndarray (n_features,)
        The fitted per-feature weight variances with ``ard=True`` (else 1.0).
    log_marginal_likelihood_value_ : float
        The log marginal likelihood at the fitted hyperparameters.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has feature names (a data frame)."""

