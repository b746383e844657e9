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

from .base import JITTER, expected_failed_checks
from .classifier import ResNetGPClassifier
from .likelihood import GaussianProcessRegressor, gram_and_vjp
from .posterior import (
    MC_SAMPLES,
    MC_SEED,
    TEMPERATURE_BOUNDS,
    class_probabilities,
    fit_temperature,
    gp_posterior,
    loo_posterior,
)
from .regressor import ResNetGPRegressor

__all__ = [
    "ResNetGPRegressor",
    "ResNetGPClassifier",
    "GaussianProcessRegressor",
    "gram_and_vjp",
    "expected_failed_checks",
    "gp_posterior",
    "loo_posterior",
    "fit_temperature",
    "class_probabilities",
    "JITTER",
    "MC_SAMPLES",
    "MC_SEED",
    "TEMPERATURE_BOUNDS",
]
