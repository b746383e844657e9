"""Test metrics of the kernel comparison, and which of them each task reports."""

from __future__ import annotations

import numpy as np

__all__ = ["ECE_BINS", "METRICS", "TIMES", "rmse", "nlpd", "expected_calibration_error",
           "log_loss"]


ECE_BINS = 15


METRICS = {
    "regression": [("rmse", "RMSE", "min"), ("nlpd", "NLPD", "min")],
    "classification": [("accuracy", "Accuracy", "max"), ("log_loss", "Log loss", "min"),
                       ("ece", "ECE", "min")],
}


TIMES = [("fit_s", "Fit"), ("predict_s", "Predict")]


def rmse(y, mean) -> float:
    """Root mean squared error of the predictive means."""
    y, mean = np.asarray(y, float), np.asarray(mean, float)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def nlpd(y, mean, std) -> float:
    r"""Negative log predictive density, in nats per test point.

    :math:`-\frac1n\sum_i \log N(y_i; \mu_i, s_i^2) = \frac1n\sum_i [\frac12\log(2\pi s_i^2) +
    \frac{(y_i-\mu_i)^2}{2 s_i^2}]`, with ``std`` the predictive standard deviation of a *new
    noisy observation* (the GP's latent variance plus the fitted noise), everything in the
    original units of y.
    """
    y, mean, std = (np.asarray(a, float) for a in (y, mean, std))
    var = std**2
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y - mean) ** 2 / var))


def expected_calibration_error(proba, y, n_bins: int = ECE_BINS) -> float:
    r"""Expected calibration error (top-label) of predicted class probabilities.

    Each test point has a confidence :math:`c_i = \max_k p_{ik}` and is correct when its label is
    the argmax class (ties: the first). The confidences are put in ``n_bins`` equal-width bins of
    [0, 1] (bin b holds :math:`(b-1)/B < c \le b/B`, the first also 0), and

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{n} \left| \mathrm{acc}_b - \mathrm{conf}_b \right|

    with :math:`\mathrm{acc}_b` the fraction correct and :math:`\mathrm{conf}_b` the mean
    confidence in bin b (Guo et al. 2017). 0 for calibrated probabilities; a model that always
    predicts the wrong class with confidence c has ECE = c.

    Parameters
    ----------
    proba : (n, C) probabilities, columns in class-code order 0..C-1.
    y : (n,) integer class codes.
    """
    proba, y = np.asarray(proba, float), np.asarray(y)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def log_loss(proba, y) -> float:
    """Mean negative log probability of the true class (probabilities clipped at 1e-15)."""
    p = np.asarray(proba, float)[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))
