"""Statistics of sampled network outputs: covariances with standard errors, z-scores, KS tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "law_row",
    "covariance_stats",
    "kernel_stats",
    "correlation_stats",
    "z_scores",
    "max_z",
    "ks_normal",
    "ks_2samp",
    "excess_kurtosis",
    "pearson",
    "z_summary",
    "fit_concentration",
    "fit_rates",
    "histogram",
    "as_lists",
    "jsonable",
]


def _per_network_cov(Y):
    Y = np.asarray(Y, dtype=np.float64)
    return np.einsum("cip,ciq->cpq", Y, Y) / Y.shape[1]


def _jackknife(values):
    """Delete-one jackknife standard error: ``values`` are the N leave-one-out statistics."""
    N = len(values)
    return float(np.sqrt((N - 1) / N * np.sum((values - values.mean()) ** 2))) if N > 1 else np.nan


def covariance_stats(Y, K, K_depth=None) -> dict:
    r"""Empirical output covariance of the networks in ``Y`` (n_nets, width, P) against ``K``.

    Every network gives the per-network covariance :math:`C_i = Y_i^T Y_i / n` (its n output
    neurons are n exchangeable samples); the pooled estimate is their mean. Returned (NumPy
    arrays and floats):

    - ``mean``, ``se``: pooled estimate and its entrywise standard error (networks independent);
    - ``rel_err``: :math:`\|\bar C - K\|_F / \|K\|_F`, ``rel_err_se`` its jackknife standard error,
      ``noise``: :math:`\|se\|_F / \|K\|_F`, the error Monte-Carlo noise alone would produce;
    - ``per_net_err`` (+ ``_se``): mean over networks of :math:`\|C_i - K\|_F / \|K\|_F`, how far a
      single network's empirical kernel is from K (docs/theory.md's concentration, ~ 1/sqrt(n));
    - with ``K_depth`` (the infinite-width kernel at the networks' depth): ``max_z_depth``, the
      largest :math:`|\bar C - K_L| / se` over entries, and ``rel_err_depth``.
    """
    return dict(kernel_stats(_per_network_cov(Y), K, K_depth=K_depth), width=int(np.shape(Y)[1]))


def kernel_stats(C, K, K_depth=None) -> dict:
    """:func:`covariance_stats` for given per-network kernels ``C`` (n_nets, P, P), e.g.
    empirical NTKs; ``width`` is then absent."""
    C = np.asarray(C, dtype=np.float64)
    N = len(C)
    K = np.asarray(K, dtype=np.float64)
    normK = np.linalg.norm(K)
    mean = C.mean(axis=0)
    se = C.std(axis=0, ddof=1) / np.sqrt(N)
    loo = (N * mean - C) / (N - 1)
    loo_err = np.linalg.norm(loo - K, axis=(1, 2)) / normK
    per_net = np.linalg.norm(C - K, axis=(1, 2)) / normK
    out = dict(
        n_nets=N, mean=mean, se=se,
        rel_err=float(np.linalg.norm(mean - K) / normK), rel_err_se=_jackknife(loo_err),
        noise=float(np.linalg.norm(se) / normK),
        per_net_err=float(per_net.mean()), per_net_err_se=float(per_net.std(ddof=1) / np.sqrt(N)),
    )
    if K_depth is not None:
        K_depth = np.asarray(K_depth, dtype=np.float64)
        iu = np.triu_indices(K.shape[0])
        z = (mean - K_depth)[iu] / se[iu]
        out["z_depth"] = z.tolist()
        out["max_z_depth"] = float(np.max(np.abs(z)))
        out["rel_err_depth"] = float(np.linalg.norm(mean - K_depth) / np.linalg.norm(K_depth))
        per_net_L = np.linalg.norm(C - K_depth, axis=(1, 2)) / np.linalg.norm(K_depth)
        out["per_net_err_depth"] = float(per_net_L.mean())
        out["per_net_err_depth_se"] = float(per_net_L.std(ddof=1) / np.sqrt(N))
    return out


def correlation_stats(Y, a=0, b=1) -> tuple[float, float]:
    """Pooled correlation C_ab / sqrt(C_aa C_bb) of inputs a, b and its jackknife standard error."""
    C = _per_network_cov(Y)
    N = len(C)
    mean = C.mean(axis=0)
    rho = mean[a, b] / np.sqrt(mean[a, a] * mean[b, b])
    loo = (N * mean - C) / (N - 1)
    rho_loo = loo[:, a, b] / np.sqrt(loo[:, a, a] * loo[:, b, b])
    return float(rho), _jackknife(rho_loo)


def z_scores(mean1, se1, mean2, se2):
    """z-scores of the difference of two independent estimates, distinct entries only."""
    iu = np.triu_indices(mean1.shape[0])
    return (mean1 - mean2)[iu] / np.sqrt(se1 ** 2 + se2 ** 2)[iu]


def max_z(mean1, se1, mean2, se2):
    return float(np.max(np.abs(z_scores(mean1, se1, mean2, se2))))


def ks_normal(sample, var):
    from scipy import stats

    res = stats.kstest(sample, stats.norm(scale=np.sqrt(var)).cdf)
    return float(res.statistic), float(res.pvalue)


def ks_2samp(a, b):
    from scipy import stats

    res = stats.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def excess_kurtosis(y):
    y = np.asarray(y, dtype=np.float64)
    m2 = np.mean(y * y)
    return float(np.mean(y ** 4) / m2 ** 2 - 3.0) if m2 > 0 else float("nan")


def law_row(y_net, y_sde, var) -> dict:
    """Networks' and the SDE's samples of one output coordinate compared: two-sample KS of the
    two, one-sample KS of each against the Gaussian N(0, ``var``), second moments and excess
    kurtosis (keys ``ks_net_sde``, ``p_net_sde``, ``ks_net_gauss``, ... ``kurtosis_sde``)."""
    row = {}
    row["ks_net_sde"], row["p_net_sde"] = ks_2samp(y_net, y_sde)
    row["ks_net_gauss"], row["p_net_gauss"] = ks_normal(y_net, var)
    row["ks_sde_gauss"], row["p_sde_gauss"] = ks_normal(y_sde, var)
    row["var_net"], row["var_sde"] = float(np.mean(y_net ** 2)), float(np.mean(y_sde ** 2))
    row["kurtosis_net"], row["kurtosis_sde"] = excess_kurtosis(y_net), excess_kurtosis(y_sde)
    return row


def pearson(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def z_summary(zs):
    """(count, share of |z| > 2, largest |z|) of a list of z-scores."""
    z = np.abs(np.asarray(zs, dtype=np.float64))
    return len(z), float(np.mean(z > 2)), float(z.max())


def fit_concentration(rows):
    """Least squares with non-negative coefficients: one network's error ~ C1/sqrt(n) + C2/sqrt(L)
    (the form of the bound reported in the paper)."""
    from scipy.optimize import nnls

    A = np.array([[1 / np.sqrt(r["width"]), 1 / np.sqrt(r["depth"])] for r in rows])
    y = np.array([r["per_net_err"] for r in rows])
    coef, _ = nnls(A / y[:, None], np.ones_like(y))  # relative residuals: all cells count alike
    resid = A @ coef / y - 1
    return dict(C1=float(coef[0]), C2=float(coef[1]), max_rel_resid=float(np.abs(resid).max()))


def histogram(y, bins):
    counts, edges = np.histogram(y, bins=bins, density=True)
    return dict(density=counts.tolist(), edges=edges.tolist())


def as_lists(stats: dict) -> dict:
    """JSON-friendly copy of a stats dict (matrices as nested lists)."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()}


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def fit_rates(rows, gaps=None, key="per_net_err"):
    """Power laws over a grid: ``rows[key] ~ n^b_n L^b_L`` (least squares in logs over all
    cells; b_n = -1/2, b_L = 0 for a kernel concentrating like 1/sqrt(n) at every depth) and,
    with ``gaps`` ({L: |K_L - K| / |K|}), ``gap ~ L^b_gap`` (-1 for the O(1/L) Euler rate)."""
    A = np.array([[1.0, np.log(r["width"]), np.log(r["depth"])] for r in rows])
    y = np.log([r[key] for r in rows])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    out = dict(key=key, per_net_width_exponent=float(coef[1]),
               per_net_depth_exponent=float(coef[2]),
               per_net_max_log_resid=float(np.abs(A @ coef - y).max()))
    if gaps:
        Ls = np.array(sorted(gaps), dtype=float)
        g = np.array([gaps[L] for L in sorted(gaps)])
        keep = g > 0
        if keep.sum() >= 2:
            b = np.polyfit(np.log(Ls[keep]), np.log(g[keep]), 1)
            out["gap_depth_exponent"] = float(b[0])
            out["L_times_gap"] = (Ls * g).tolist()
    return out
