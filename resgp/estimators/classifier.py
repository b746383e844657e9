"""Exact Bayesian classification with the ResNet NNGP kernel: :class:`ResNetGPClassifier`.

The numerics after the GP fit (leave-one-out posterior, temperature, probabilities) are the
public functions of :mod:`resgp.estimators.posterior`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .base import _ATTRIBUTES_DOC, _PARAMETERS_DOC, _ResNetGPBase, validate_data
from .posterior import class_probabilities, fit_temperature, gp_posterior, loo_posterior

__all__ = ["ResNetGPClassifier"]


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
        random_state=None,
        ard=False,
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
        self.ard = ard

    def fit(self, X, y):
        """Fit the GP to the centred one-hot targets, then the temperature by leave-one-out.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (standardised by the estimator).
        y : array-like of shape (n_samples,)
            Class labels, at least two distinct ones.

        Returns
        -------
        self : ResNetGPClassifier
            The fitted estimator.
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
        mean_loo, var_loo = loo_posterior(self.gpr_)
        self.temperature_, self.loo_log_loss_ = fit_temperature(mean_loo, var_loo, codes)
        return self

    def _loo_posterior(self):
        """Leave-one-out posterior on the training set, ``loo_posterior(self.gpr_)``.

        Returns
        -------
        mean_loo : ndarray of shape (n_samples, n_classes)
        var_loo : ndarray of shape (n_samples,)
        """
        return loo_posterior(self.gpr_)

    def _posterior(self, X, want_var=True):
        """Posterior means (n, C) and the shared variances (n,) at X (noise included)."""
        check_is_fitted(self)
        return gp_posterior(self.gpr_, self._standardise(X), want_var)

    def decision_function(self, X):
        """Posterior mean of the centred one-hot targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query inputs, in the units of the training inputs.

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
        """The class of largest posterior mean, ``classes_[argmax(mean)]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query inputs, in the units of the training inputs.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Elements of ``classes_``.
        """
        mean, _ = self._posterior(X, want_var=False)
        return self.classes_[np.argmax(mean, axis=1)]

    def predict_proba(self, X):
        """Posterior class probabilities E[softmax(f / ``temperature_``)], f ~ the GP posterior.

        Monte Carlo with 512 fixed draws, rearranged into the order of the posterior means (see
        the class docstring): deterministic, rows sum to 1, argmax equal to :meth:`predict`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query inputs, in the units of the training inputs.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes), columns in the order of ``classes_``.
        """
        mean, var = self._posterior(X)
        return class_probabilities(mean, var, self.temperature_)

