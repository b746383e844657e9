r"""The input layer and the layer schedules (docs/theory.md, "Network and input layer").

The input layer gives :math:`q_0(a, b) = \sum_i w_i a_i b_i / d + \sigma_b^2 =
\langle\tilde a, \tilde b\rangle` with augmented inputs
:math:`\tilde a = (\sqrt{w/d}\odot a, \sigma_b)` (isotropic: one :math:`w = \sigma_w^2`; ARD:
one weight per feature, and the MLP's hidden layers take their mean as :math:`\sigma_w^2`).
Rows are kept as unit vectors ``z`` and norms ``n`` (:math:`q_0(a, b) = n_a n_b \langle z_a,
z_b\rangle`), which keeps correlations exact for very large or very small inputs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["features", "resnet_layers", "mlp_layers", "layer_weight_variance", "covariance",
           "pair_correlations"]

_ULPS = 4 * np.finfo(np.float64).eps


def features(X, weight_variance, bias_variance):
    """Unit rows z (N, d+1) and norms n (N,) of the augmented inputs.

    Parameters
    ----------
    X : ndarray (N, d)
        Validated inputs.
    weight_variance : float or ndarray (d,)
        :math:`\\sigma_w^2` or per-feature :math:`w_i`.
    bias_variance : float
        :math:`\\sigma_b^2 \\ge 0`.
    """
    A = np.empty((X.shape[0], X.shape[1] + 1))
    A[:, :-1] = X * np.sqrt(np.asarray(weight_variance, dtype=np.float64) / X.shape[1])
    A[:, -1] = np.sqrt(bias_variance)
    peak = np.abs(A).max(axis=1)  # scale first: no overflow or underflow in the squares
    A /= np.where(peak > 0, peak, 1.0)[:, None]
    unit_norm = np.sqrt(np.einsum("ij,ij->i", A, A))
    A /= np.where(unit_norm > 0, unit_norm, 1.0)[:, None]
    return A, peak * unit_norm


def covariance(z1, n1, z2, n2, diagonal=False, xp=np):
    """(correlations, q_0) of a tile from features; ``diagonal``: a diagonal tile of K(X, X),
    whose correlations are then exactly 1 on the diagonal (the tiling makes it symmetric)."""
    rho = _snap(xp.clip(z1 @ z2.T, -1.0, 1.0), xp)
    if diagonal:
        idx = xp.arange(rho.shape[0])
        rho = rho.at[idx, idx].set(1.0) if xp is not np else _set_diag(rho)
    return rho, n1[:, None] * n2[None, :] * rho


def _snap(rho, xp):
    """Within rounding of +-1 (identical or opposite directions, 1 - |rho| < 4 ulp) is exactly
    +-1: K(X, X) then equals K(X) also where a kernel is not smooth at rho = 1 (ReLU's NTK)."""
    return xp.where(rho > 1.0 - _ULPS, 1.0, xp.where(rho < _ULPS - 1.0, -1.0, rho))


def pair_correlations(za, zb):
    """Correlations of the row pairs (za[p], zb[p]) (P,), each from its own two rows (as in
    :func:`covariance`)."""
    return _snap(np.clip(np.einsum("ij,ij->i", za, zb), -1.0, 1.0), np)


def _set_diag(rho):
    np.fill_diagonal(rho, 1.0)
    return rho


def resnet_layers(depth, T, branch_scales=None):
    """(skips, gains, shifts) of the ResNet's blocks: s = 1, g = alpha_l^2, c = 0.

    ``branch_scales`` (alpha_1..alpha_L) when given, else alpha_l^2 = T / depth.
    """
    gains = (np.asarray(branch_scales, dtype=np.float64) ** 2 if branch_scales is not None
             else np.full(depth, T / depth))
    return np.ones_like(gains), gains, np.zeros_like(gains)


def layer_weight_variance(weight_variance):
    """sigma_w^2 of the MLP's hidden layers: ``weight_variance`` itself, or the mean of
    per-feature variances w (ARD), exactly c when every w_i is c (then the scalar c's kernel)."""
    w = np.asarray(weight_variance, dtype=np.float64).reshape(-1)
    return float(w[0]) if np.all(w == w[0]) else math.fsum(w) / w.size


def mlp_layers(depth, weight_variance, bias_variance):
    """(skips, gains, shifts) of the MLP's layers: s = 0, g = sigma_w^2 (ARD: the mean of the
    per-feature variances, :func:`layer_weight_variance`), c = sigma_b^2."""
    return (np.zeros(depth), np.full(depth, layer_weight_variance(weight_variance)),
            np.full(depth, float(bias_variance)))
