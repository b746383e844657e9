r"""Scikit-learn estimators built on the ResNet NNGP kernel: exact GP regression and classification.

* :class:`ResNetGPRegressor`: Gaussian-process regression with the kernel
  ``ConstantKernel * ResNetKernel + WhiteKernel`` on standardised inputs, every hyperparameter
  fitted by the marginal likelihood (a thin, pipeline-friendly wrapper of scikit-learn's
  ``GaussianProcessRegressor``).
* :class:`ResNetGPClassifier`: exact Bayesian classification with the NNGP, as in Lee et al.
  (2018), "Deep Neural Networks as Gaussian Processes", and Neural Tangents'
  ``predict.gp_inference``: the exact GP posterior given centred one-hot targets, one kernel shared
  by all classes; probabilities from the posterior through a softmax with a temperature fitted by
  closed-form leave-one-out (no held-out split).

Both follow the scikit-learn API (``get_params``/``set_params``, ``clone``, ``Pipeline``,
``GridSearchCV``, ``cross_val_score``, feature names from data frames) and pass scikit-learn's
``check_estimator``::

    from sklearn.model_selection import GridSearchCV
    from resgp.estimators import ResNetGPClassifier, ResNetGPRegressor

    reg = ResNetGPRegressor().fit(X, y)
    mean, std = reg.predict(X_test, return_std=True)
    clf = GridSearchCV(ResNetGPClassifier(), {"depth": [None, 3]}).fit(X, labels)

Waived scikit-learn checks (:func:`expected_failed_checks`, to pass to
``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)`` or to
``check_estimator(est, expected_failed_checks=expected_failed_checks(est))``): none. In particular
``check_decision_proba_consistency`` (the ranks of ``predict_proba[:, 1]`` and of
``decision_function`` agree over rows) holds on its data but is not a theorem here: the decision
function is the posterior mean, while the probability also integrates the posterior variance, so
two test points with close means and very different uncertainties may swap ranks. Within one row
the order is exact: ``argmax(predict_proba) == predict`` always (see
:class:`ResNetGPClassifier`).

Two conventions to know:

* ``noise_variance`` and the amplitude are in the units of the (standardised, with
  ``normalize_y=True``) targets; the inputs are always standardised (``StandardScaler``) before
  the kernel sees them, so ``kernel_`` applies to ``scaler_.transform(X)``.
* Predictive standard deviations and covariances include the fitted white noise, as scikit-learn's
  ``GaussianProcessRegressor`` does with a ``WhiteKernel``: they describe a new noisy observation.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .sklearn_kernel import ResNetKernel

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


__all__ = ["ResNetGPRegressor", "ResNetGPClassifier", "expected_failed_checks"]

JITTER = 1e-10  # added to the diagonal of K(X, X) (scikit-learn's ``alpha``), on top of the noise
MC_SAMPLES = 512  # posterior samples per test point for predict_proba (antithetic pairs)
MC_SEED = 0
TEMPERATURE_BOUNDS = (1e-3, 1e2)  # search interval of the softmax temperature
_CHUNK = 1 << 21  # floats per block of Monte Carlo logits
_BOUNDS_RTOL = 1e-8  # exp(log(bound)) may round a hair outside the bound


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn checks that the estimator is known to fail, ``{check name: reason}``.

    Empty for both estimators of this module: they pass every check of scikit-learn's
    ``check_estimator``. Kept as the single place to list a waiver, for
    ``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)``.
    """
    return {}


# ----------------------------------------------------------------------------- shared machinery


class _ResNetGPBase(BaseEstimator):
    """Parameters, kernel construction and fitted hyperparameters shared by both estimators."""

    def _kernel(self):
        """ConstantKernel * ResNetKernel + WhiteKernel from the (unmodified) parameters.

        Initial values outside their bounds are refused (scipy's L-BFGS-B would silently clip
        them); the ResNet kernel validates its own parameters when first evaluated."""
        for name, allow_zero in (("amplitude", False), ("noise_variance", True),
                                 ("branch_variance", False), ("bias_variance", True)):
            value = _check_positive(name, getattr(self, name), allow_zero)
            bounds = _check_bounds(name, getattr(self, name + "_bounds"))
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
        resnet = ResNetKernel(
            branch_variance=self.branch_variance,
            bias_variance=self.bias_variance,
            activation=self.activation,
            depth=self.depth,
            branch_variance_bounds=self.branch_variance_bounds,
            bias_variance_bounds=self.bias_variance_bounds,
        )
        return ConstantKernel(self.amplitude, self.amplitude_bounds) * resnet + WhiteKernel(
            self.noise_variance, self.noise_variance_bounds
        )

    def _fit_gp(self, X, Y, normalize_y):
        """Standardise X, fit the GP on (X, Y) and set the fitted attributes."""
        restarts = self.n_restarts_optimizer
        if not isinstance(restarts, numbers.Integral) or isinstance(restarts, bool) or restarts < 0:
            raise ValueError(f"n_restarts_optimizer must be an integer >= 0, got {restarts!r}")
        kernel = self._kernel()
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
        self.kernel_ = self.gpr_.kernel_
        resnet = self.kernel_.k1.k2
        self.amplitude_ = float(self.kernel_.k1.k1.constant_value)
        self.branch_variance_ = float(resnet.branch_variance)
        self.bias_variance_ = float(resnet.bias_variance)
        self.noise_variance_ = float(self.kernel_.k2.noise_level)
        self.log_marginal_likelihood_value_ = float(self.gpr_.log_marginal_likelihood_value_)

    def _standardise(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return self.scaler_.transform(X)

    def log_marginal_likelihood(self, theta=None, eval_gradient=False):
        """Log marginal likelihood of the fitted GP (summed over outputs), as scikit-learn's
        ``GaussianProcessRegressor.log_marginal_likelihood``.

        Parameters
        ----------
        theta : array of shape (4,) or None
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
    bias_variance : float > 0, default=0.1
        Initial bias variance of the input layer, q_0(a, b) = <a, b> / d + bias_variance.
    depth : int >= 1 or None, default=None
        Number of residual blocks; None for the infinite-depth limit (ReLU only, fastest).
    noise_variance : float >= 0, default=1e-2
        Initial variance of the ``WhiteKernel`` (0 needs ``noise_variance_bounds="fixed"``).
    activation : str, default="relu"
        Activation of the residual branches (see ``resgp.ACTIVATIONS``); other than "relu"
        needs a finite ``depth``.
    amplitude : float > 0, default=1.0
        Initial value of the ``ConstantKernel`` in front of the ResNet kernel.
    branch_variance_bounds, bias_variance_bounds, amplitude_bounds, noise_variance_bounds : \
pair of floats > 0 or "fixed"
        Search bounds of each hyperparameter (log scale), or "fixed" to keep the initial value.
        Defaults (1e-2, 1e1), (1e-5, 1e2), (1e-3, 1e3) and (1e-6, 1e1).
    optimizer : "fmin_l_bfgs_b", callable or None, default="fmin_l_bfgs_b"
        As in ``GaussianProcessRegressor``; None keeps the initial hyperparameters.
    n_restarts_optimizer : int >= 0, default=0
        Extra optimiser runs from log-uniform random starts within the bounds.
    random_state : int, RandomState instance or None, default=None
        Seeds the restarts."""

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
    log_marginal_likelihood_value_ : float
        The log marginal likelihood at the fitted hyperparameters.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X has feature names (a data frame)."""


# ----------------------------------------------------------------------------- regression


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
        bias_variance=0.1,
        depth=None,
        noise_variance=1e-2,
        activation="relu",
        amplitude=1.0,
        branch_variance_bounds=(1e-2, 1e1),
        bias_variance_bounds=(1e-5, 1e2),
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


# ----------------------------------------------------------------------------- classification


class ResNetGPClassifier(ClassifierMixin, _ResNetGPBase):
    __doc__ = (
        r"""Exact Bayesian classification with the ResNet NNGP kernel (Lee et al. 2018).

    The classification is treated as GP regression on centred one-hot targets, as in Lee et al.
    (2018) and Neural Tangents' ``predict.gp_inference``: with C classes, sample i's target is
    :math:`Y_i = e_{y_i} - 1/C` (a row of C numbers summing to 0). One kernel
    ``ConstantKernel * ResNetKernel + WhiteKernel`` on standardised inputs is shared by the C
    outputs, which are independent GPs a priori; its hyperparameters maximise the log marginal
    likelihood summed over the C outputs (``GaussianProcessRegressor`` with a 2-D y, zero prior
    mean, no target normalisation). The posterior is exact: for a test point x, the C latent
    outputs are independent Gaussians :math:`f_c \sim N(\mu_c(x), v(x))` with
    :math:`\mu(x) = k(x, X) K^{-1} Y` and one variance
    :math:`v(x) = k(x, x) - k(x, X) K^{-1} k(X, x)` for every class (K and k(x, x) include the
    fitted noise, so f is a noisy target: the same quantity as the leave-one-out predictions the
    temperature is fitted on).

    * ``decision_function(X)``: the posterior means :math:`\mu(x)`, shape (n, C); for two classes,
      scikit-learn's convention, shape (n,): :math:`\mu_1 - \mu_0`, positive for ``classes_[1]``.
    * ``predict(X)``: ``classes_[argmax_c mu_c(x)]``.
    * ``predict_proba(X)``: :math:`p_c(x) = E[\mathrm{softmax}(f / \tau)_c]` under the posterior,
      by Monte Carlo with 512 fixed draws (antithetic pairs from a fixed seed, the same draws
      for every point, so the result is deterministic and each row depends on its own point
      only). Since all classes share the variance v(x), the exact :math:`p_c` are ordered like the
      means :math:`\mu_c` (swap the noises of two classes: the softmax is increasing in its own
      logit); the Monte Carlo estimate is rearranged into that order (sorting the estimates by
      the order of the means), which can only bring it closer to the exact vector, in any
      :math:`\ell_p` norm (rearrangement inequality). So ``argmax(predict_proba) == predict``.
    * Temperature :math:`\tau` (``temperature_``): fitted on held-out predictions without a
      split, by the closed-form GP leave-one-out posterior on the training set,
      :math:`\mu^{loo}_i = Y_i - [K^{-1}Y]_i / [K^{-1}]_{ii}`,
      :math:`v^{loo}_i = 1 / [K^{-1}]_{ii}` (K with the noise), then :math:`\tau` minimises the
      leave-one-out log loss of the probabilities above, over :math:`\log\tau` in
      [log 1e-3, log 1e2] (``scipy.optimize.minimize_scalar``, bounded). The hyperparameters of
      the kernel are not refitted for it.

    Parameters
    ----------"""
        + _PARAMETERS_DOC
        + """

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (any sortable labels: integers, strings)."""
        + _ATTRIBUTES_DOC
        + """
    temperature_ : float
        The softmax temperature tau.
    loo_log_loss_ : float
        The leave-one-out log loss at ``temperature_``.
    """
    )

    def __init__(
        self,
        *,
        branch_variance=1.0,
        bias_variance=0.1,
        depth=None,
        noise_variance=1e-2,
        activation="relu",
        amplitude=1.0,
        branch_variance_bounds=(1e-2, 1e1),
        bias_variance_bounds=(1e-5, 1e2),
        amplitude_bounds=(1e-3, 1e3),
        noise_variance_bounds=(1e-6, 1e1),
        optimizer="fmin_l_bfgs_b",
        n_restarts_optimizer=0,
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
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the GP to the centred one-hot targets, then the temperature by leave-one-out.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels, at least two distinct ones.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                f"the data contains only 1 class: {classes[0]!r}"
            )
        self.classes_ = classes
        n_classes = len(classes)
        Y = np.eye(n_classes)[codes] - 1.0 / n_classes
        self._fit_gp(X, Y, normalize_y=False)
        self._fit_temperature(codes)
        return self

    def _loo_posterior(self):
        """Closed-form leave-one-out posterior on the training set (Rasmussen & Williams, 5.12):
        means Y - [K^-1 Y]_i / [K^-1]_ii (n, C) and variances 1 / [K^-1]_ii (n,), K with noise."""
        # K^-1 = L^-T L^-1, so [K^-1]_ii is the sum of squares of column i of L^-1
        L_inv = solve_triangular(self.gpr_.L_, np.eye(len(self.gpr_.L_)), lower=True,
                                 check_finite=False)
        K_inv_diag = np.einsum("ij,ij->j", L_inv, L_inv)
        return self.gpr_.y_train_ - self.gpr_.alpha_ / K_inv_diag[:, None], 1.0 / K_inv_diag

    def _fit_temperature(self, codes):
        mean_loo, var_loo = self._loo_posterior()
        rows = np.arange(len(codes))

        def loss(log_tau):
            p = _probabilities(mean_loo, var_loo, np.exp(log_tau))[rows, codes]
            return -np.mean(np.log(np.maximum(p, np.finfo(float).tiny)))

        bounds = np.log(TEMPERATURE_BOUNDS)
        result = minimize_scalar(loss, bounds=bounds, method="bounded", options={"xatol": 1e-3})
        # the bounded search never evaluates the end points: keep one if it is better
        best = min([(result.fun, result.x)] + [(loss(b), b) for b in bounds])
        self.loo_log_loss_ = float(best[0])
        self.temperature_ = float(np.exp(best[1]))

    def _posterior(self, X, want_var=True):
        """Posterior means (n, C) and the shared variances (n,) at X (noise included)."""
        check_is_fitted(self)
        return gp_posterior(self.gpr_, self._standardise(X), want_var)

    def decision_function(self, X):
        """Posterior mean of the centred one-hot targets.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes:
            the score of ``classes_[1]`` minus that of ``classes_[0]``.
        """
        mean, _ = self._posterior(X, want_var=False)
        if mean.shape[1] == 2:
            return mean[:, 1] - mean[:, 0]
        return mean

    def predict(self, X):
        """The class of largest posterior mean, ``classes_[argmax(mean)]``."""
        mean, _ = self._posterior(X, want_var=False)
        return self.classes_[np.argmax(mean, axis=1)]

    def predict_proba(self, X):
        """Posterior class probabilities E[softmax(f / temperature_)], f ~ the GP posterior.

        Monte Carlo with 512 fixed draws, rearranged into the order of the posterior means (see
        the class docstring): deterministic, rows sum to 1, argmax equal to :meth:`predict`.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), columns in the order of ``classes_``.
        """
        mean, var = self._posterior(X)
        return _probabilities(mean, var, self.temperature_)


def gp_posterior(gpr, X, want_var=True):
    """Posterior means (n, C) and shared variances (n,) of a fitted ``GaussianProcessRegressor``
    with zero prior mean and unnormalised targets, at inputs X as the kernel sees them (noise
    included, as the fitted kernel's diagonal); variances None unless ``want_var``."""
    K_trans = gpr.kernel_(X, gpr.X_train_)
    mean = K_trans @ gpr.alpha_
    if not want_var:
        return mean, None
    V = solve_triangular(gpr.L_, K_trans.T, lower=True, check_finite=False)
    var = gpr.kernel_.diag(X) - np.einsum("ij,ij->j", V, V)
    return mean, np.maximum(var, 0.0)


def _draws(n_classes):
    """Fixed standard normal draws (MC_SAMPLES, n_classes), in antithetic pairs."""
    half = np.random.default_rng(MC_SEED).standard_normal((MC_SAMPLES // 2, n_classes))
    return np.concatenate([half, -half])


def _probabilities(mean, var, tau):
    """Rows of E[softmax((mean + sqrt(var) eps) / tau)] over the fixed draws eps, rearranged to
    decrease with the mean (ties: the lower class index first), normalised to sum to 1."""
    n, n_classes = mean.shape
    eps = _draws(n_classes)
    sd = np.sqrt(var)
    out = np.empty((n, n_classes))
    step = max(1, _CHUNK // (len(eps) * n_classes))
    for a in range(0, n, step):
        b = min(a + step, n)
        z = (mean[a:b, None, :] + sd[a:b, None, None] * eps[None]) / tau
        z -= z.max(axis=2, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=2, keepdims=True)
        out[a:b] = z.mean(axis=1)
    order = np.argsort(-mean, axis=1, kind="stable")
    ranked = -np.sort(-out, axis=1)
    np.put_along_axis(out, order, ranked, axis=1)
    out /= out.sum(axis=1, keepdims=True)
    return out
