r"""The trained-network posterior: infinitely wide networks trained by gradient descent on MSE.

An infinitely wide network trained by full-batch gradient flow on the squared error from its
random initialisation has Gaussian outputs at every training time t (Lee et al. 2019, "Wide
neural networks of any depth evolve as linear models under gradient descent"; Neural Tangents'
``predict.gradient_descent_mse_ensemble``). Its mean and covariance are built from the NTK
:math:`\Theta` and the NNGP kernel K (docs/theory.md, "The trained-network posterior"). With
:math:`\tau = \eta t / n_y` (:math:`n_y` = ``y_train.size``, Neural Tangents' normalisation of the
mean squared error) and :math:`\Theta = V\Lambda V^\top` the (regularised) train-train NTK:

.. math::
    \mu_t(x) = \Theta(x, X)\,V \frac{1 - e^{-\Lambda\tau}}{\Lambda} V^\top y, \qquad
    \Sigma_t = K(x, x') + A^\top K(X, X) A - \bigl[\Theta(x, X) C\, K(X, x') + (\cdot)^\top\bigr]

with :math:`C = V (1 - e^{-\Lambda\tau})\Lambda^{-1} V^\top` and :math:`A = C\,\Theta(X, x')`;
at :math:`t = \infty` (``t=None``) :math:`C = \Theta^{-1}` by a Cholesky solve. ``get="nngp"``
trains the readout only (the NNGP in place of the NTK): :math:`\Sigma_t = K(x, x') -
K(x, X) V (1 - e^{-2\Lambda\tau})\Lambda^{-1} V^\top K(X, x')`, the exact GP posterior at
:math:`t = \infty`.

* :func:`gradient_descent_mse_posterior`: from kernel matrices (any kernels, e.g. Neural
  Tangents' or resgp's finite-depth ones);
* :func:`gradient_descent_mse`: from inputs, with resgp's ResNet kernels (infinite depth by
  default).

This is a Gaussian process, but not the Bayesian posterior of the NNGP prior (that is
``get="nngp"`` at ``t=None``). NumPy float64 throughout.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh

from .core.validation import check_variance

__all__ = ["gradient_descent_mse_posterior", "gradient_descent_mse", "check_settings"]


def _matrix(name, value, shape):
    a = np.asarray(value, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def check_settings(t, get, learning_rate, diag_reg):
    """(learning_rate, diag_reg) as floats, or a clear error for any bad setting.

    Parameters
    ----------
    t : float >= 0 or None
        Training time (None: infinity).
    get : {"ntk", "nngp"}
        Which kernel trains.
    learning_rate : float > 0
        The learning rate :math:`\\eta`.
    diag_reg : float >= 0
        The ridge added to the train-train kernel's diagonal.

    Returns
    -------
    (learning_rate, diag_reg) : tuple of float
        The validated values.

    Raises
    ------
    ValueError
        For any setting out of range.
    """
    if get not in ("ntk", "nngp"):
        raise ValueError(f"get must be 'ntk' or 'nngp', got {get!r}")
    if t is not None and (isinstance(t, bool) or not isinstance(t, numbers.Real)
                          or not t >= 0 or not np.isfinite(t)):
        raise ValueError(f"t must be a finite real >= 0 or None (infinity), got {t!r}")
    return (check_variance("learning_rate", learning_rate),
            check_variance("diag_reg", diag_reg, allow_zero=True))


def _regularised(k, diag_reg, absolute):
    """k + lambda I, lambda = diag_reg (absolute) or diag_reg * mean(diag k) (Neural Tangents'
    default)."""
    reg = diag_reg if absolute else diag_reg * np.trace(k) / k.shape[0]
    return k + reg * np.eye(k.shape[0])


def gradient_descent_mse_posterior(k_train_train, y_train, k_test_train=None,
                                   nngp_test_test=None, *, t=None, get="ntk",
                                   learning_rate=1.0, diag_reg=0.0,
                                   diag_reg_absolute_scale=False):
    r"""Mean (and covariance) of the outputs of infinitely wide networks trained by gradient
    descent on MSE, from kernel matrices.

    Parameters
    ----------
    k_train_train : dict
        ``{"nngp": (n, n), "ntk": (n, n)}`` on the training inputs (``"ntk"`` only needed for
        ``get="ntk"``; ``"nngp"`` only for a covariance or ``get="nngp"``).
    y_train : array (n,) or (n, k)
        Training targets (k outputs share the kernels).
    k_test_train : dict or None, default=None
        ``{"nngp": (m, n), "ntk": (m, n)}`` between test and training inputs; None for the
        training inputs themselves.
    nngp_test_test : array (m, m) or None, default=None
        K on the test inputs: give it for the covariance (None: the mean alone).
    t : float >= 0 or None, default=None
        Training time; None for :math:`t = \infty` (a Cholesky solve instead of an
        eigendecomposition).
    get : {"ntk", "nngp"}, default="ntk"
        Train every layer (the NTK) or the readout only (the NNGP).
    learning_rate : float > 0, default=1.0
        :math:`\eta`; the time scale is :math:`\eta t / n_y`, :math:`n_y` = ``y_train.size``.
    diag_reg : float >= 0, default=0.0
        Ridge added to the train-train kernel's diagonal.
    diag_reg_absolute_scale : bool, default=False
        False: the ridge is ``diag_reg`` times the mean of that diagonal (as Neural Tangents).

    Returns
    -------
    mean : array like ``y_train`` with m rows (n without ``k_test_train``)
    cov : array (m, m)
        Only when ``nngp_test_test`` is given; shared by the k outputs.
    """
    check_settings(t, get, learning_rate, diag_reg)
    y = np.asarray(y_train, dtype=np.float64)
    if y.ndim not in (1, 2) or not np.isfinite(y).all():
        raise ValueError("y_train must be a finite (n,) or (n, k) array")
    n = y.shape[0]
    k_dd = _matrix(f"k_train_train[{get!r}]", k_train_train[get], (n, n))
    eta, reg = check_settings(t, get, learning_rate, diag_reg)
    cov_wanted = nngp_test_test is not None
    k_td = None
    if k_test_train is not None:
        k_td = _matrix(f"k_test_train[{get!r}]", k_test_train[get],
                       (np.shape(k_test_train[get])[0], n))
    m = n if k_td is None else k_td.shape[0]
    a = _regularised(k_dd, reg, bool(diag_reg_absolute_scale))
    if t is None:
        factor = cho_factor(a, lower=True)
        C = C2 = lambda b: cho_solve(factor, b)  # noqa: E731
    else:
        lam, V = eigh(a)
        tau = eta * float(t) / y.size
        pos = np.maximum(lam, 0.0)
        over = lambda s: -np.expm1(-pos * s) / np.abs(lam)  # noqa: E731
        C = lambda b: V @ (over(tau)[:, None] * (V.T @ b.reshape(n, -1))).reshape(b.shape)  # noqa: E731
        C2 = lambda b: V @ (over(2 * tau)[:, None] * (V.T @ b.reshape(n, -1))).reshape(b.shape)  # noqa: E731
    if k_td is None:  # the training inputs: (I - e^{-Theta tau}) y, unregularised at t = inf
        mean = y.copy() if t is None else \
            (V @ (-np.expm1(-pos * tau)[:, None] * (V.T @ y.reshape(n, -1)))).reshape(y.shape)
        if not cov_wanted:
            return mean
        raise ValueError("the covariance needs k_test_train (pass the training kernels as the "
                         "test ones for the training inputs' posterior)")
    mean = k_td @ C(y)
    if not cov_wanted:
        return mean
    k_tt = _matrix("nngp_test_test", nngp_test_test, (m, m))
    nngp_td = _matrix("k_test_train['nngp']", k_test_train["nngp"], (m, n))
    if get == "nngp":
        cov = k_tt - k_td @ C2(k_td.T)
    else:
        nngp_dd = _matrix("k_train_train['nngp']", k_train_train["nngp"], (n, n))
        term_1 = C(k_td.T)  # (n, m): C Theta(X, x')
        term_2 = k_td @ C(nngp_td.T)  # Theta(x, X) C K(X, x')
        cov = term_1.T @ nngp_dd @ term_1 - (term_2 + term_2.T) + k_tt
    return mean, cov


def gradient_descent_mse(X_train, y_train, X_test, *, t=None, get="ntk", compute_cov=False,
                         learning_rate=1.0, diag_reg=0.0, diag_reg_absolute_scale=False,
                         **kernel):
    r"""The trained-network posterior of the ResNet of :func:`resgp.resnet_ntk` at inputs.

    Parameters
    ----------
    X_train : array (n, d)
        Training inputs.
    y_train : array (n,) or (n, k)
        Training targets.
    X_test : array (m, d)
        Test inputs.
    t : float >= 0 or None, default=None
        Training time (None: infinity).
    get : {"ntk", "nngp"}, default="ntk"
        As :func:`gradient_descent_mse_posterior`.
    compute_cov : bool, default=False
        Also return the (m, m) covariance.
    learning_rate : float > 0, default=1.0
        :math:`\eta`.
    diag_reg : float >= 0, default=0.0
        Ridge on the train-train kernel's diagonal.
    diag_reg_absolute_scale : bool, default=False
        As :func:`gradient_descent_mse_posterior`.
    **kernel
        The network: ``depth`` (None: infinite depth), ``branch_variance``,
        ``weight_variance``, ``bias_variance``, ``activation``, ``branch_scales``, as in
        :func:`resgp.resnet_nngp`.

    Returns
    -------
    mean : array (m,) or (m, k)
    cov : array (m, m)
        With ``compute_cov``.
    """
    from .kernels import resnet_nngp, resnet_ntk

    check_settings(t, get, learning_rate, diag_reg)  # before any kernel is computed
    need_nngp = compute_cov or get == "nngp"
    k_dd, k_td = {}, {}
    if get == "ntk":
        k_dd["ntk"], k_td["ntk"] = resnet_ntk(X_train, **kernel), resnet_ntk(X_test, X_train,
                                                                            **kernel)
    if need_nngp:
        k_dd["nngp"] = resnet_nngp(X_train, **kernel)
        k_td["nngp"] = resnet_nngp(X_test, X_train, **kernel)
    k_tt = resnet_nngp(X_test, **kernel) if compute_cov else None
    return gradient_descent_mse_posterior(
        k_dd, y_train, k_td, k_tt, t=t, get=get, learning_rate=learning_rate,
        diag_reg=diag_reg, diag_reg_absolute_scale=diag_reg_absolute_scale)
