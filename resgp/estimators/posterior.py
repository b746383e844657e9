r"""The exact GP posterior and the numerics of :class:`~resgp.estimators.ResNetGPClassifier`.

* :func:`gp_posterior`: posterior means and shared variances of a fitted
  ``GaussianProcessRegressor`` at new inputs.
* :func:`loo_posterior`: the closed-form leave-one-out posterior on its training set.
* :func:`fit_temperature`: the softmax temperature minimising the leave-one-out log loss.
* :func:`class_probabilities`: :math:`E[\mathrm{softmax}(f / \tau)]` under the Gaussian
  posterior, by Monte Carlo with fixed draws, rearranged into the order of the means.

They apply to any ``GaussianProcessRegressor`` fitted with zero prior mean and unnormalised
(centred one-hot) targets, whatever its kernel.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize_scalar

__all__ = [
    "MC_SAMPLES",
    "MC_SEED",
    "TEMPERATURE_BOUNDS",
    "gp_posterior",
    "loo_posterior",
    "fit_temperature",
    "class_probabilities",
]

MC_SAMPLES = 512  # posterior samples per test point for predict_proba (antithetic pairs)
MC_SEED = 0
TEMPERATURE_BOUNDS = (1e-3, 1e2)  # search interval of the softmax temperature
_CHUNK = 1 << 21  # floats per block of Monte Carlo logits


def gp_posterior(gpr, X, want_var=True):
    """Posterior means and shared variances of a fitted ``GaussianProcessRegressor``.

    The regressor must have zero prior mean and unnormalised targets; the variances include the
    noise, as the fitted kernel's diagonal does.

    Parameters
    ----------
    gpr : GaussianProcessRegressor
        The fitted GP.
    X : ndarray of shape (n_samples, n_features)
        Inputs as the kernel sees them (already standardised where the GP was fitted on
        standardised inputs).
    want_var : bool, default=True
        Also compute the variances.

    Returns
    -------
    mean : ndarray of shape (n_samples, n_outputs)
        The posterior means.
    var : ndarray of shape (n_samples,) or None
        The posterior variance, shared by all outputs; None unless ``want_var``.
    """
    K_trans = gpr.kernel_(X, gpr.X_train_)
    mean = K_trans @ gpr.alpha_
    if not want_var:
        return mean, None
    V = solve_triangular(gpr.L_, K_trans.T, lower=True, check_finite=False)
    var = gpr.kernel_.diag(X) - np.einsum("ij,ij->j", V, V)
    return mean, np.maximum(var, 0.0)


def loo_posterior(gpr):
    """Closed-form leave-one-out posterior on the training set (Rasmussen & Williams, 5.12).

    Means :math:`Y_i - [K^{-1}Y]_i / [K^{-1}]_{ii}` and variances :math:`1 / [K^{-1}]_{ii}`, with
    K the training kernel matrix including the noise.

    Parameters
    ----------
    gpr : GaussianProcessRegressor
        The fitted GP, with zero prior mean and unnormalised targets.

    Returns
    -------
    mean_loo : ndarray of shape (n_samples, n_outputs)
        The leave-one-out posterior means.
    var_loo : ndarray of shape (n_samples,)
        The leave-one-out posterior variances, shared by all outputs.
    """
    # K^-1 = L^-T L^-1, so [K^-1]_ii is the sum of squares of column i of L^-1
    L_inv = solve_triangular(gpr.L_, np.eye(len(gpr.L_)), lower=True, check_finite=False)
    K_inv_diag = np.einsum("ij,ij->j", L_inv, L_inv)
    return gpr.y_train_ - gpr.alpha_ / K_inv_diag[:, None], 1.0 / K_inv_diag


def fit_temperature(mean_loo, var_loo, codes):
    r"""The softmax temperature minimising the leave-one-out log loss.

    Minimises the log loss of :func:`class_probabilities` over :math:`\log\tau` in
    ``log(TEMPERATURE_BOUNDS)`` (``scipy.optimize.minimize_scalar``, bounded); the end points of
    the interval are also tried, since the bounded search never evaluates them.

    Parameters
    ----------
    mean_loo : ndarray of shape (n_samples, n_classes)
        The leave-one-out posterior means (see :func:`loo_posterior`).
    var_loo : ndarray of shape (n_samples,)
        The leave-one-out posterior variances.
    codes : ndarray of int of shape (n_samples,)
        The class index of each training sample.

    Returns
    -------
    temperature : float
        The fitted temperature tau.
    loo_log_loss : float
        The leave-one-out log loss at that temperature.
    """
    rows = np.arange(len(codes))

    def loss(log_tau):
        p = class_probabilities(mean_loo, var_loo, np.exp(log_tau))[rows, codes]
        return -np.mean(np.log(np.maximum(p, np.finfo(float).tiny)))

    bounds = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(loss, bounds=bounds, method="bounded", options={"xatol": 1e-3})
    # the bounded search never evaluates the end points: keep one if it is better
    best = min([(result.fun, result.x)] + [(loss(b), b) for b in bounds])
    return float(np.exp(best[1])), float(best[0])


def _draws(n_classes):
    """Fixed standard normal draws (MC_SAMPLES, n_classes), in antithetic pairs."""
    half = np.random.default_rng(MC_SEED).standard_normal((MC_SAMPLES // 2, n_classes))
    return np.concatenate([half, -half])


def class_probabilities(mean, var, tau):
    r"""Class probabilities :math:`E[\mathrm{softmax}((\mu + \sqrt{v}\,\epsilon) / \tau)]`.

    The expectation is over ``MC_SAMPLES`` fixed standard normal draws :math:`\epsilon`
    (antithetic pairs from ``MC_SEED``, the same for every row); each row is then rearranged to
    decrease with the mean (ties: the lower class index first) and normalised to sum to 1.

    Parameters
    ----------
    mean : ndarray of shape (n_samples, n_classes)
        The posterior means.
    var : ndarray of shape (n_samples,)
        The posterior variances, shared by all classes.
    tau : float
        The softmax temperature.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The probabilities, rows summing to 1, ordered like the means within each row.
    """
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
