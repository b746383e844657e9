r"""The matrix-free path of :class:`~resgp.estimators.ResNetGPRegressor` (``solver="cg"``).

The same model as the Cholesky path (``ConstantKernel * ResNetKernel + WhiteKernel`` on
standardised inputs, the same log-space hyperparameters ``theta`` in the order of
``kernel_.theta``, the same bounds), with the marginal likelihood and the posterior computed by
:mod:`resgp.solvers` (CG, SLQ; docs/theory.md, "Matrix-free inference") instead of a dense
Cholesky factor.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.optimize import minimize
from sklearn.utils import check_random_state

from ..solvers import gp
from ..solvers.products import hyperparameters

__all__ = ["AUTO_CHOLESKY_MAX_N", "resolve_solver", "fit_cg", "lml_cg"]

AUTO_CHOLESKY_MAX_N = 5000  # solver="auto": dense Cholesky up to this many training points
_NAMES = {"k1__k1__constant_value": "amplitude", "k1__k2__bias_variance": "bias_variance",
          "k1__k2__branch_variance": "branch_variance",
          "k1__k2__weight_variance": "weight_variance", "k2__noise_level": "noise_variance"}


def resolve_solver(est, n_samples):
    """'cholesky' or 'cg' for the estimator's ``solver`` and N, the settings checked first."""
    solver = est.solver
    if solver not in ("cholesky", "cg", "auto"):
        raise ValueError(f"solver must be 'cholesky', 'cg' or 'auto', got {solver!r}")
    if solver == "auto":
        solver = "cholesky" if n_samples <= AUTO_CHOLESKY_MAX_N else "cg"
    if solver == "cg":
        if est.posterior != "nngp":
            raise ValueError("posterior='ntk' needs solver='cholesky' (the trained-network "
                             "posterior is not matrix-free)")
        tol = est.solver_tol
        if not isinstance(tol, numbers.Real) or isinstance(tol, bool) or not 0 < tol < 1:
            raise ValueError(f"solver_tol must be a number in (0, 1), got {tol!r}")
        for name in ("max_iter", "preconditioner_rank", "n_probes"):
            v = getattr(est, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return solver


def settings(est):
    """The :class:`resgp.solvers.gp.SolverSettings` of the estimator's parameters."""
    return gp.SolverSettings(tol=float(est.solver_tol), max_iter=int(est.max_iter),
                             rank=int(est.preconditioner_rank), n_probes=int(est.n_probes))


def _values(kernel, theta, jitter):
    """(Network, hyperparameter dict) of the kernel at log-hyperparameters theta."""
    k = kernel.clone_with_theta(theta)
    resnet = k.k1.k2
    h = hyperparameters(amplitude=k.k1.k1.constant_value,
                        noise_variance=k.k2.noise_level + jitter,
                        branch_variance=resnet.branch_variance,
                        weight_variance=np.asarray(resnet.weight_variance, dtype=np.float64),
                        bias_variance=resnet.bias_variance)
    return resnet._settings()[0], h, k


def lml_cg(kernel, theta, X, Y, solver_settings, jitter, eval_gradient=False):
    """Log marginal likelihood at theta (and its gradient in theta), matrix-free.

    Parameters
    ----------
    kernel : Kernel
        ``ConstantKernel * ResNetKernel + WhiteKernel``; only its structure and bounds are used.
    theta : ndarray (n_dims,)
        Log-hyperparameters in the order of ``kernel.theta``.
    X : ndarray (N, d)
        Standardised training inputs.
    Y : ndarray (N, p)
        (Normalised) targets.
    solver_settings : SolverSettings
        CG and estimator settings.
    jitter : float
        Added to the noise variance.
    eval_gradient : bool, default=False
        Also return the gradient in theta.

    Returns
    -------
    value : float
    grad : ndarray (n_dims,), only with eval_gradient
    info : dict
        As :func:`resgp.solvers.gp.log_marginal_likelihood`.
    """
    net, h, k = _values(kernel, theta, jitter)
    if not eval_gradient:
        return gp.log_marginal_likelihood(net, h, X, Y, solver_settings)
    value, grad, info = gp.log_marginal_likelihood(net, h, X, Y, solver_settings, True)
    out = []
    for hp in k.hyperparameters:  # sklearn's theta order; d/dlog(v) = v d/dv
        if hp.fixed:
            continue
        key = _NAMES[hp.name]
        v = np.asarray(h[key]) - (jitter if key == "noise_variance" else 0.0)
        out.append(np.ravel(v * grad[key]))
    return value, np.concatenate(out), info


def fit_cg(est, X, Y, kernel, jitter):
    """Optimise theta on the matrix-free likelihood and condition on (X, Y); sets attributes.

    Parameters
    ----------
    est : ResNetGPRegressor
        The estimator (its optimizer, restarts and random_state are used).
    X : ndarray (N, d)
        Standardised inputs.
    Y : ndarray (N, p)
        (Normalised) targets.
    kernel : Kernel
        The initial kernel.
    jitter : float
        Added to the noise variance.
    """
    s = settings(est)
    theta0, bounds = kernel.theta, kernel.bounds

    def objective(theta, eval_gradient=True):
        if eval_gradient:
            value, grad, _ = lml_cg(kernel, theta, X, Y, s, jitter, True)
            return -value, -grad
        return -lml_cg(kernel, theta, X, Y, s, jitter)[0]

    theta = theta0
    if est.optimizer is not None and len(theta0):
        starts = [theta0]
        rng = check_random_state(est.random_state)
        starts += [rng.uniform(bounds[:, 0], bounds[:, 1]) for _ in range(est.n_restarts_optimizer)]
        best = None
        for start in starts:
            if est.optimizer == "fmin_l_bfgs_b":
                r = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
                cand = (r.x, r.fun)
            elif callable(est.optimizer):
                cand = est.optimizer(objective, start, bounds=bounds)
            else:
                raise ValueError(f"Unknown optimizer {est.optimizer}.")
            if best is None or cand[1] < best[1]:
                best = cand
        theta = np.asarray(best[0])
    value, info = lml_cg(kernel, theta, X, Y, s, jitter)
    net, h, k = _values(kernel, theta, jitter)
    est.kernel_, est._cg_network, est._cg_h = k, net, h
    est.alpha_, est.X_train_ = info["alpha"], X
    est.n_iter_, est.solver_residual_ = int(info["n_iter"]), float(info["residual"])
    est.log_marginal_likelihood_value_ = float(value)
    return k
