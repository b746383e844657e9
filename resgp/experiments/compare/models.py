"""The kernels compared (:data:`KERNELS`, :func:`kernel_zoo`) and the classifier used for all.

Each kernel is ``ConstantKernel(1, (1e-3, 1e3)) * k + WhiteKernel(1e-2, (1e-6, 1e1))``, every
hyperparameter fitted by the log marginal likelihood. :class:`ExactGPClassifier` is the
inference of :class:`resgp.estimators.ResNetGPClassifier` with any kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    Kernel,
    Matern,
    RationalQuadratic,
    WhiteKernel,
)

from resgp.estimators import (GaussianProcessRegressor, class_probabilities, fit_temperature,
                              gp_posterior, loo_posterior)

__all__ = ["JITTER", "ARD_BOUNDS", "LENGTH_SCALE_BOUNDS", "ExactGPClassifier", "KernelSpec",
           "KERNELS", "FULL_KERNELS", "DEPTH_KERNELS", "kernel_zoo"]


JITTER = 1e-10  # scikit-learn's ``alpha``: added to the diagonal on top of the WhiteKernel


# ----------------------------------------------------------------------------- classifier


class ExactGPClassifier(ClassifierMixin, BaseEstimator):
    r"""Exact GP classification with any scikit-learn kernel (Lee et al. 2018).

    The inference of :class:`resgp.estimators.ResNetGPClassifier`, with the kernel given: GP
    regression (``GaussianProcessRegressor``, zero prior mean, no target normalisation, every
    hyperparameter fitted by the marginal likelihood summed over the C outputs) on the centred
    one-hot targets :math:`e_{y_i} - 1/C`; probabilities
    :math:`E[\mathrm{softmax}(f/\tau)]` under the Gaussian posterior of the C latent outputs
    (fixed Monte Carlo draws), with the temperature :math:`\tau` fitted by closed-form
    leave-one-out on the training set. Inputs are used as given (standardise them first).
    ``optimizer=None`` keeps the kernel's hyperparameters as given.
    """

    def __init__(self, kernel=None, optimizer="fmin_l_bfgs_b"):
        self.kernel = kernel
        self.optimizer = optimizer

    def fit(self, X, y):
        X = np.asarray(X, float)
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(classes) < 2:
            raise ValueError("ExactGPClassifier needs at least 2 classes")
        self.classes_ = classes
        Y = np.eye(len(classes))[codes] - 1.0 / len(classes)
        self.gpr_ = GaussianProcessRegressor(self.kernel, alpha=JITTER, optimizer=self.optimizer,
                                             normalize_y=False)
        self.gpr_.fit(X, Y)
        self.kernel_ = self.gpr_.kernel_
        # the same leave-one-out temperature fit as ResNetGPClassifier: both stay one inference
        mean_loo, var_loo = loo_posterior(self.gpr_)
        self.temperature_, self.loo_log_loss_ = fit_temperature(mean_loo, var_loo, codes)
        return self

    def _posterior(self, X):
        return gp_posterior(self.gpr_, np.asarray(X, float))

    def predict_proba(self, X):
        mean, var = self._posterior(X)
        return class_probabilities(mean, var, self.temperature_)

    def predict(self, X):
        return self.classes_[np.argmax(self._posterior(X)[0], axis=1)]


# ----------------------------------------------------------------------------- kernels


ARD_BOUNDS = (1e-5, 1e3)  # per-feature weight variances: a feature can switch itself off
LENGTH_SCALE_BOUNDS = (1e-2, 1e3)  # stationary kernels, per feature with ARD


def _mlp_kernel(depth, n_features=None):
    from resgp.sklearn_kernel import MLPKernel

    ard = {} if n_features is None else dict(weight_variance=np.full(n_features, 2.0),
                                             weight_variance_bounds=ARD_BOUNDS)
    return MLPKernel(depth=depth, bias_variance=0.1, bias_variance_bounds=(1e-5, 1e2), **ard)


def _resnet(depth=None, n_features=None):
    from resgp.sklearn_kernel import ResNetKernel

    ard = {} if n_features is None else dict(weight_variance=np.ones(n_features),
                                             weight_variance_bounds=ARD_BOUNDS)
    return ResNetKernel(branch_variance=1.0, bias_variance=0.1, depth=depth,
                        branch_variance_bounds=(1e-2, 1e1), bias_variance_bounds=(1e-5, 1e2),
                        **ard)


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of the comparison: ``make(n_features)`` builds the base kernel (before
    amplitude and noise) for data with that many features; ``ard`` kernels have one
    hyperparameter per feature, the others ignore ``n_features``."""

    key: str
    label: str
    family: str
    make: Callable[[int], Kernel]
    ard: bool = False

    def full(self, n_features: int) -> Kernel:
        """``ConstantKernel(1, (1e-3, 1e3)) * make(n_features) + WhiteKernel(1e-2, (1e-6, 1e1))``."""
        return (ConstantKernel(1.0, (1e-3, 1e3)) * self.make(n_features)
                + WhiteKernel(1e-2, (1e-6, 1e1)))


KERNELS: dict[str, KernelSpec] = {}
for _spec in [
    KernelSpec("resnet", "ResNet NNGP, L=inf", "resnet", lambda d: _resnet()),
    KernelSpec("resnet-ard", "ResNet NNGP, L=inf, ARD", "resnet", lambda d: _resnet(None, d),
               ard=True),
    *[KernelSpec(f"resnet-L{L}", f"ResNet NNGP, L={L} (= NT)", "resnet-finite",
                 (lambda d, L=L: _resnet(L))) for L in (3, 10, 30)],
    *[KernelSpec(f"mlp-L{L}", f"MLP NNGP (arc-cos), L={L}", "mlp",
                 (lambda d, L=L: _mlp_kernel(L))) for L in (1, 3, 10)],
    KernelSpec("mlp-L1-ard", "MLP NNGP (arc-cos), L=1, ARD", "mlp", lambda d: _mlp_kernel(1, d),
               ard=True),
    KernelSpec("rbf", "RBF", "stationary", lambda d: RBF(1.0, LENGTH_SCALE_BOUNDS)),
    KernelSpec("rbf-ard", "RBF, ARD", "stationary",
               lambda d: RBF(np.ones(d), LENGTH_SCALE_BOUNDS), ard=True),
    KernelSpec("matern52", "Matern 5/2", "stationary",
               lambda d: Matern(1.0, LENGTH_SCALE_BOUNDS, nu=2.5)),
    KernelSpec("matern52-ard", "Matern 5/2, ARD", "stationary",
               lambda d: Matern(np.ones(d), LENGTH_SCALE_BOUNDS, nu=2.5), ard=True),
    KernelSpec("rq", "RationalQuadratic", "stationary",
               lambda d: RationalQuadratic(1.0, 1.0, LENGTH_SCALE_BOUNDS, (1e-2, 1e3))),
]:
    KERNELS[_spec.key] = _spec
del _spec


FULL_KERNELS = ["resnet", "resnet-ard", "mlp-L1", "mlp-L1-ard", "rbf", "rbf-ard", "matern52",
                "matern52-ard"]
DEPTH_KERNELS = ["resnet", "resnet-L3", "resnet-L10", "resnet-L30", "mlp-L1", "mlp-L3", "mlp-L10",
                 "rbf", "matern52", "rq"]


def kernel_zoo(keys=None) -> list[KernelSpec]:
    """The kernels to compare, by key (default: all of :data:`KERNELS`, in order)."""
    keys = list(KERNELS) if keys is None else list(keys)
    unknown = [k for k in keys if k not in KERNELS]
    if unknown:
        raise ValueError(f"unknown kernel(s) {unknown}; choose from {list(KERNELS)}")
    return [KERNELS[k] for k in keys]
