r"""Verification suite: random finite networks against resgp's kernels (THEORY.md's experiments).

``resgp verify`` (or :func:`run`) samples many randomly initialised finite ResNets and MLPs and
checks what THEORY.md says about them:

1. **Covariance convergence** - the output covariance of a width-``n``, depth-``L`` ResNet over
   random initialisations approaches the infinite-width-and-depth kernel ``resnet_nngp(depth=None)``
   (relative Frobenius error per ``(n, L)`` with Monte-Carlo standard errors), and Neural
   Tangents' own ``monte_carlo_kernel_fn`` agrees with the direct estimate.
2. **Commutativity** - the error vanishes along the paths "n first", "L first" and "n = L"; the
   MLP's correlation of two inputs collapses to 1 with depth while the ResNet's does not.
3. **Gaussianity** - one output neuron is close to ``N(0, K(x, x))`` (Kolmogorov-Smirnov), two
   neurons are uncorrelated; the MLP of the same size is heavy-tailed.
4. **Finite width, infinite depth** - at widths 1..8 the output follows the diffusion
   ``dY_t = n^{-1/2} |phi(Y_t)| dB_t`` (solved here by Euler-Maruyama), not a Gaussian.

Two samplers of the same random networks are used (ReLU, no biases):

- :func:`sample_nt`: the network of :mod:`resgp.nt`, run by Neural Tangents' ``apply_fn``.
  Parameters are drawn i.i.d. N(0, 1) in the shapes ``init_fn`` declares - exactly NT's
  ``init_fn`` in its default 'ntk' parameterisation (every ``Dense`` draws ``W`` and ``b`` with
  ``random.normal``), drawn with NumPy so that no initialiser is compiled per network shape.
  Cost per network: ``L n^2`` Gaussian draws.
- :func:`sample_projected`: the same law sampled ``n / P`` times faster for ``P`` inputs. Given
  the previous layer, ``W_l`` is independent of ``H = phi(Y_{l-1})`` (an ``n x P`` matrix), so the
  rows of ``W_l H`` are i.i.d. ``N(0, H^T H / n)``: ``W_l H`` has the law of ``Z R / sqrt(n)``
  with ``Z`` an ``n x min(n, P)`` standard Gaussian matrix and ``R`` the triangular factor of
  ``H = Q R``. This is an identity in distribution, not an approximation; the report checks it
  against :func:`sample_nt` wherever the latter is affordable. With one input the ResNet update
  is then exactly one Euler-Maruyama step of size ``1/L`` of the diffusion of experiment 4.

Everything is seeded (``numpy.random.SeedSequence`` from ``seed`` and a tag per experiment and
grid point). Networks are simulated in float32 (Monte-Carlo errors here are >= 1e-3, float32
rounding ~1e-6); kernels, statistics and the SDE are float64. ``neural_tangents``, ``matplotlib``
and ``tqdm`` are imported inside the functions that use them; ``import resgp`` does not import
this module.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
import zlib
from pathlib import Path

import numpy as np

from ._progress import _progress

__all__ = [
    "CONFIGS",
    "fixed_inputs",
    "pair_inputs",
    "sample_nt",
    "sample_projected",
    "simulate_sde",
    "sample_width1_exact",
    "covariance_stats",
    "correlation_stats",
    "covariance_point",
    "covariance_grid",
    "nt_monte_carlo_check",
    "commutativity",
    "correlation_vs_depth",
    "gaussianity",
    "finite_width_sde",
    "run",
]

# ----------------------------------------------------------------------------- configurations

CONFIGS = {
    "quick": dict(
        grid=dict(widths=(16, 64, 256), depths=(4, 16, 64), n_nets=48,
                  nt_budget=2 ** 12, nt_nets=16),
        mc_check=dict(width=32, depth=8, n_samples=16, n_direct=64, exact_keys=0),
        correlation=dict(width=64, depths=(1, 4, 16, 64), n_nets=32, angle=90.0,
                         analytic_depths=(1, 2, 4, 8, 16, 32, 64, 128, 256)),
        gaussianity=dict(widths=(4, 16, 64), depths=(4, 16, 64), n_nets=1000,
                         hist_depth=16, joint=((64, 16), (4, 16)),
                         nt_check=dict(width=16, depth=16, n_nets=500)),
        sde=dict(widths=tuple(range(1, 9)), depth=32, n_samples=1000, sde_steps=128),
    ),
    "full": dict(
        grid=dict(widths=(16, 64, 256, 1024), depths=(4, 16, 64, 256, 1024), n_nets=256,
                  nt_budget=2 ** 22, nt_nets=64),
        mc_check=dict(width=64, depth=16, n_samples=64, n_direct=256, exact_keys=8),
        correlation=dict(width=256, depths=(1, 2, 4, 8, 16, 32, 64, 128, 256), n_nets=128,
                         angle=90.0,
                         analytic_depths=tuple(int(v) for v in np.unique(np.geomspace(1, 4096, 25).round()))),
        gaussianity=dict(widths=(2, 8, 32, 128), depths=(4, 16, 64, 256), n_nets=10000,
                         hist_depth=64, joint=((128, 64), (2, 64)),
                         nt_check=dict(width=16, depth=16, n_nets=4000)),
        sde=dict(widths=tuple(range(1, 9)), depth=256, n_samples=10000, sde_steps=1024),
    ),
}

_RELU = lambda y: np.maximum(y, 0.0)  # noqa: E731


def _rng(seed, *tags) -> np.random.Generator:
    """An independent, reproducible stream for (seed, tag, tag, ...); tags may be strings."""
    words = [int(seed)]
    for t in tags:
        words.append(zlib.crc32(t.encode()) if isinstance(t, str) else int(t))
    return np.random.default_rng(np.random.SeedSequence(words))


# ----------------------------------------------------------------------------- inputs


def fixed_inputs(dim: int = 8, seed: int = 0) -> np.ndarray:
    """Four inputs in R^dim with q_0(x, x) = |x|^2 / dim = 1 and varied angles.

    Angles to x1: 30 deg (x2), 90 deg (x3), 150 deg (x4); x2-x4 at ~139 deg, x3 orthogonal to all.
    The Gram matrix is full rank; the orientation is a random rotation fixed by ``seed``.
    """
    if dim < 4:
        raise ValueError("fixed_inputs needs dim >= 4")
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    e = Q.T[:4]
    c, s = np.cos(np.radians([30.0, 150.0])), np.sin(np.radians([30.0, 150.0]))
    X = np.stack([e[0], c[0] * e[0] + s[0] * e[1], e[2], c[1] * e[0] + s[1] * e[3]])
    return X * np.sqrt(dim)


def pair_inputs(angle: float = 90.0, dim: int = 8, seed: int = 0) -> np.ndarray:
    """Two inputs with q_0(x, x) = 1 at ``angle`` degrees from each other."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    a = np.radians(angle)
    return np.stack([Q[:, 0], np.cos(a) * Q[:, 0] + np.sin(a) * Q[:, 1]]) * np.sqrt(dim)


# ----------------------------------------------------------------------------- samplers


def _check_arch(arch):
    if arch not in ("resnet", "mlp"):
        raise ValueError(f"arch must be 'resnet' or 'mlp', got {arch!r}")


def sample_projected(X, width, depth, n_nets, *, arch="resnet", seed=0, branch_variance=1.0,
                     weight_variance=None, max_elems=2 ** 22, dtype=np.float32):
    r"""Outputs (n_nets, width, P) of ``n_nets`` random networks on the P rows of ``X``.

    ReLU, no biases, the networks of :mod:`resgp.nt` (``weight_variance`` defaults to 1 for the
    ResNet, 2 for the MLP; the ResNet's branches are scaled by ``sqrt(branch_variance / depth)``).
    Each layer's product ``W_l phi(Y_{l-1})`` is drawn from its exact conditional law
    ``Z R / sqrt(n)`` (module docstring): ``depth * width * P`` Gaussian draws per network
    instead of ``depth * width^2``.
    """
    _check_arch(arch)
    X = np.asarray(X, dtype=np.float64)
    P, d = X.shape
    wv = (1.0 if arch == "resnet" else 2.0) if weight_variance is None else float(weight_variance)
    rng = _rng(seed)
    Xs = (X.T * np.sqrt(wv / d)).astype(dtype)  # Y_0 = W_0 x with W_0 ~ N(0, wv / d)
    m = min(width, P)
    if arch == "resnet":
        scale = dtype(np.sqrt(branch_variance / depth / width))
    else:
        scale = dtype(np.sqrt(wv / width))
    out = np.empty((n_nets, width, P), dtype)
    chunk = max(1, min(n_nets, max_elems // (width * max(P, d))))
    for s in range(0, n_nets, chunk):
        c = min(chunk, n_nets - s)
        Y = rng.standard_normal((c, width, d), dtype=dtype) @ Xs
        for _ in range(depth):
            H = _RELU(Y)
            if P == 1:
                R = np.sqrt(np.einsum("cip,cip->cp", H, H))[:, :, None]  # (c, 1, 1): |phi(Y)|
            else:
                R = np.linalg.qr(H, mode="r")  # (c, m, P), R^T R = H^T H
            inc = rng.standard_normal((c, width, m), dtype=dtype) @ R
            if arch == "resnet":
                Y += scale * inc
            else:
                Y = scale * inc
        out[s:s + c] = Y
    return out


def sample_nt(X, width, depth, n_nets, *, arch="resnet", seed=0, max_elems=2 ** 24,
              **net_kwargs):
    """Outputs (n_nets, width, P) of ``n_nets`` random networks built by :mod:`resgp.nt`.

    The forward pass is Neural Tangents' ``apply_fn`` (jitted, vmapped over networks); the
    parameters are i.i.d. standard normal leaves in the shapes of ``init_fn`` (what NT's 'ntk'
    ``init_fn`` draws). ``net_kwargs`` go to :func:`resgp.nt.resnet` / :func:`resgp.nt.mlp`.
    About ``max_elems`` parameters are held in memory at a time.
    """
    import jax

    from . import nt as rnt

    _check_arch(arch)
    net = rnt.resnet(width, depth, **net_kwargs) if arch == "resnet" else rnt.mlp(width, depth,
                                                                                 **net_kwargs)
    init_fn, apply_fn, _ = net
    X = np.asarray(X)
    shapes = jax.eval_shape(lambda k: init_fn(k, X.shape)[1], jax.random.PRNGKey(0))
    leaves, treedef = jax.tree_util.tree_flatten(shapes)
    size = sum(math.prod(leaf.shape) for leaf in leaves)
    dtype = np.dtype(leaves[0].dtype)
    count = -(-n_nets // max(1, min(n_nets, max_elems // size)))  # balanced chunks: one shape
    chunk = -(-n_nets // count)
    forward = jax.jit(jax.vmap(apply_fn, in_axes=(0, None)))
    rng = _rng(seed)
    Xd = X.astype(dtype)
    out = np.empty((n_nets, width, X.shape[0]), dtype)
    for s in range(0, n_nets, chunk):
        params = treedef.unflatten(
            [rng.standard_normal((chunk,) + tuple(leaf.shape), dtype=np.float32).astype(dtype)
             for leaf in leaves])
        Y = np.asarray(forward(params, Xd))  # (chunk, P, width)
        c = min(chunk, n_nets - s)
        out[s:s + c] = Y[:c].transpose(0, 2, 1)
    return out


def simulate_sde(width, n_paths, n_steps, *, q0=1.0, T=1.0, seed=0, activation=_RELU):
    r"""Euler-Maruyama for :math:`dY_t = n^{-1/2} |\phi(Y_t)| dB_t`, :math:`Y_0 \sim N(0, q_0 I_n)`.

    Returns :math:`Y_T`, float64 (n_paths, width). ``activation`` acts elementwise on NumPy arrays.
    """
    rng = _rng(seed)
    Y = np.sqrt(q0) * rng.standard_normal((n_paths, width))
    step = np.sqrt(T / n_steps / width)
    for _ in range(n_steps):
        norm = np.sqrt(np.einsum("pi,pi->p", *(activation(Y),) * 2))[:, None]
        Y += step * norm * rng.standard_normal((n_paths, width))
    return Y


def sample_width1_exact(n_samples, *, q0=1.0, T=1.0, seed=0):
    """Exact law of the width-1 ReLU diffusion: Y_T = Y_0 if Y_0 < 0, else Y_0 exp(B_T - T/2)
    (below zero phi vanishes and Y is frozen; above zero dY = Y dB, a geometric Brownian motion)."""
    rng = _rng(seed)
    y0 = np.sqrt(q0) * rng.standard_normal(n_samples)
    b = np.sqrt(T) * rng.standard_normal(n_samples)
    return np.where(y0 < 0, y0, y0 * np.exp(b - T / 2))


# ----------------------------------------------------------------------------- statistics


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
      single network's empirical kernel is from K (THEORY.md's concentration, ~ 1/sqrt(n));
    - with ``K_depth`` (the infinite-width kernel at the networks' depth): ``max_z_depth``, the
      largest :math:`|\bar C - K_L| / se` over entries, and ``rel_err_depth``.
    """
    C = _per_network_cov(Y)
    N = len(C)
    K = np.asarray(K, dtype=np.float64)
    normK = np.linalg.norm(K)
    mean = C.mean(axis=0)
    se = C.std(axis=0, ddof=1) / np.sqrt(N)
    loo = (N * mean - C) / (N - 1)
    loo_err = np.linalg.norm(loo - K, axis=(1, 2)) / normK
    per_net = np.linalg.norm(C - K, axis=(1, 2)) / normK
    out = dict(
        n_nets=N, width=int(np.shape(Y)[1]), mean=mean, se=se,
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


def _z(mean1, se1, mean2, se2):
    """z-scores of the difference of two independent estimates, distinct entries only."""
    iu = np.triu_indices(mean1.shape[0])
    return (mean1 - mean2)[iu] / np.sqrt(se1 ** 2 + se2 ** 2)[iu]


def _max_z(mean1, se1, mean2, se2):
    return float(np.max(np.abs(_z(mean1, se1, mean2, se2))))


def _ks_normal(sample, var):
    from scipy import stats

    res = stats.kstest(sample, stats.norm(scale=np.sqrt(var)).cdf)
    return float(res.statistic), float(res.pvalue)


def _ks_2samp(a, b):
    from scipy import stats

    res = stats.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


def _excess_kurtosis(y):
    y = np.asarray(y, dtype=np.float64)
    m2 = np.mean(y * y)
    return float(np.mean(y ** 4) / m2 ** 2 - 3.0) if m2 > 0 else float("nan")


def _corr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _public(stats: dict) -> dict:
    """JSON-friendly copy of a stats dict (matrices as nested lists)."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()}


# ----------------------------------------------------------------------------- experiment 1


def covariance_point(X, width, depth, n_nets, *, sampler="projected", seed=0, K=None):
    """Covariance statistics (:func:`covariance_stats`) of ``n_nets`` ResNets of one size against
    the limit kernel ``K`` (default ``resnet_nngp(X)``), with ``K_depth = resnet_nngp(X, depth)``."""
    from .kernels import resnet_nngp

    K = resnet_nngp(X) if K is None else K
    sample = {"projected": sample_projected, "nt": sample_nt}[sampler]
    Y = sample(X, width, depth, n_nets, seed=seed)
    return covariance_stats(Y, K, K_depth=resnet_nngp(X, depth=depth))


def covariance_grid(widths, depths, n_nets, *, seed=0, nt_budget=0, nt_nets=32, progress=False):
    """Experiment 1: for every (width n, depth L) the covariance statistics of ``n_nets`` ResNets
    (:func:`sample_projected`) against the limit kernel; where ``L n^2 <= nt_budget`` also those
    of ``nt_nets`` networks run by Neural Tangents (:func:`sample_nt`) and the largest z-score
    of the difference between the two estimates (same law: |z| should look like |N(0,1)|)."""
    from .kernels import resnet_nngp

    X = fixed_inputs()
    K = resnet_nngp(X)
    gaps = {L: float(np.linalg.norm(resnet_nngp(X, depth=L) - K) / np.linalg.norm(K))
            for L in depths}
    rows = []
    cells = [(n, L) for n in widths for L in depths]
    for n, L in _progress(cells, "covariance grid", progress):
        st = covariance_point(X, n, L, n_nets, seed=_seed(seed, "grid", n, L), K=K)
        row = dict(_public(st), depth=L, depth_gap=gaps[L])
        if L * n * n <= nt_budget:
            st_nt = covariance_point(X, n, L, nt_nets, sampler="nt",
                                     seed=_seed(seed, "grid-nt", n, L), K=K)
            row["nt"] = _public(st_nt)
            z = _z(st["mean"], st["se"], st_nt["mean"], st_nt["se"])
            row["nt_vs_projected_z"] = z.tolist()
            row["nt_vs_projected_max_z"] = float(np.max(np.abs(z)))
        rows.append(row)
    return dict(inputs=X.tolist(), limit_kernel=K.tolist(), widths=list(widths),
                depths=list(depths), n_nets=n_nets, nt_nets=nt_nets, nt_budget=nt_budget,
                rows=rows, fit=_fit_concentration(rows))


def _fit_concentration(rows):
    """Least squares with non-negative coefficients: one network's error ~ C1/sqrt(n) + C2/sqrt(L)
    (the form of the bound reported in the paper)."""
    from scipy.optimize import nnls

    A = np.array([[1 / np.sqrt(r["width"]), 1 / np.sqrt(r["depth"])] for r in rows])
    y = np.array([r["per_net_err"] for r in rows])
    coef, _ = nnls(A / y[:, None], np.ones_like(y))  # relative residuals: all cells count alike
    resid = A @ coef / y - 1
    return dict(C1=float(coef[0]), C2=float(coef[1]), max_rel_resid=float(np.abs(resid).max()))


def _seed(seed, *tags):
    return int(_rng(seed, *tags).integers(2 ** 31))


def nt_monte_carlo_check(width, depth, n_samples, *, n_direct=256, exact_keys=0, seed=0):
    """NT's ``monte_carlo_kernel_fn`` (``n_samples`` networks from NT's own ``init_fn``) against
    the direct estimate from ``n_direct`` independent networks (:func:`sample_nt`).

    ``max_z``: largest |difference| / its standard error over kernel entries. With
    ``exact_keys = k > 0`` it also replays NT's key sequence for the first k networks (init_fn,
    apply_fn, Y^T Y / n) and reports the relative difference to NT's k-sample estimate, which
    should be float32 rounding.
    """
    import jax
    import neural_tangents as nt

    from . import nt as rnt
    from .kernels import resnet_nngp

    X = fixed_inputs()
    Xf = X.astype(np.float32)
    K, K_L = resnet_nngp(X), resnet_nngp(X, depth=depth)
    init_fn, apply_fn, _ = rnt.resnet(width, depth)
    key = jax.random.PRNGKey(seed)
    counts = sorted({n_samples} | ({exact_keys} if exact_keys else set()))
    mc = nt.monte_carlo_kernel_fn(init_fn, apply_fn, key, counts)
    estimates = {n: np.asarray(k, dtype=np.float64) for n, k in zip(counts, mc(Xf, None, "nngp"))}
    K_mc = estimates[n_samples]
    direct = covariance_stats(sample_nt(X, width, depth, n_direct, seed=_seed(seed, "mc-direct")),
                              K, K_depth=K_L)
    se_mc = direct["se"] * np.sqrt(n_direct / n_samples)  # same law, n_samples networks
    out = dict(
        width=width, depth=depth, n_samples=n_samples, n_direct=n_direct,
        monte_carlo_kernel=K_mc.tolist(), direct=_public(direct),
        max_z=_max_z(K_mc, se_mc, direct["mean"], direct["se"]),
        mc_rel_err=float(np.linalg.norm(K_mc - K) / np.linalg.norm(K)),
        mc_rel_err_depth=float(np.linalg.norm(K_mc - K_L) / np.linalg.norm(K_L)),
    )
    if exact_keys:
        init = jax.jit(lambda k: init_fn(k, Xf.shape)[1])
        forward = jax.jit(apply_fn)
        acc, _key = 0.0, key
        for _ in range(exact_keys):  # NT's sequence: _key, split = split(_key); init_key = split(split)[0]
            _key, split = jax.random.split(_key)
            Y = np.asarray(forward(init(jax.random.split(split)[0]), Xf), dtype=np.float64)
            acc = acc + Y @ Y.T / width
        replay = acc / exact_keys
        out["exact_keys"] = exact_keys
        out["replay_rel_diff"] = float(np.linalg.norm(replay - estimates[exact_keys])
                                       / np.linalg.norm(estimates[exact_keys]))
    return out


# ----------------------------------------------------------------------------- experiment 2


def commutativity(grid: dict) -> dict:
    """Experiment 2a: the grid's errors along three paths to the limit.

    n first: L = max depth, n growing; L first: n = max width, L growing; diagonal: n = L."""
    rows = grid["rows"]
    nmax, Lmax = max(grid["widths"]), max(grid["depths"])
    keep = ("width", "depth", "rel_err", "rel_err_se", "noise", "per_net_err", "per_net_err_se")
    pick = lambda cond, key: [{k: r[k] for k in keep} for r in sorted(  # noqa: E731
        (r for r in rows if cond(r)), key=lambda r: r[key])]
    return dict(
        n_first=pick(lambda r: r["depth"] == Lmax, "width"),
        L_first=pick(lambda r: r["width"] == nmax, "depth"),
        diagonal=pick(lambda r: r["width"] == r["depth"], "width"),
    )


def correlation_vs_depth(width, depths, n_nets, *, angle=90.0, analytic_depths=(1, 10, 100),
                         seed=0, progress=False) -> dict:
    """Experiment 2b: correlation of two inputs ``angle`` degrees apart against depth.

    Analytic: ``mlp_nngp`` (He-initialised ReLU MLP, weight variance 2) and ``resnet_nngp`` at
    finite depth and in the limit. Monte Carlo: finite MLPs and ResNets of width ``width``
    (:func:`sample_projected`, ``n_nets`` networks), pooled correlation with its standard error.
    """
    from .kernels import mlp_nngp, resnet_nngp

    X = pair_inputs(angle)
    rho = lambda K: float(K[0, 1] / np.sqrt(K[0, 0] * K[1, 1]))  # noqa: E731
    out = dict(width=width, angle=angle, n_nets=n_nets, resnet_limit=rho(resnet_nngp(X)),
               analytic=dict(depths=list(analytic_depths),
                             mlp=[rho(mlp_nngp(X, depth=L)) for L in analytic_depths],
                             resnet=[rho(resnet_nngp(X, depth=L)) for L in analytic_depths]),
               mc=[])
    for L in _progress(depths, "correlation vs depth", progress):
        row = dict(depth=L)
        for arch in ("mlp", "resnet"):
            Y = sample_projected(X, width, L, n_nets, arch=arch, seed=_seed(seed, "corr", arch, L))
            row[arch], row[arch + "_se"] = correlation_stats(Y)
        K_mlp, K_res = mlp_nngp(X, depth=L), resnet_nngp(X, depth=L)
        row["mlp_analytic"], row["resnet_analytic"] = rho(K_mlp), rho(K_res)
        for arch in ("mlp", "resnet"):
            row[arch + "_z"] = (row[arch] - row[arch + "_analytic"]) / row[arch + "_se"]
        out["mc"].append(row)
    return out


# ----------------------------------------------------------------------------- experiment 3


def _hist(y, bins):
    counts, edges = np.histogram(y, bins=bins, density=True)
    return dict(density=counts.tolist(), edges=edges.tolist())


def gaussianity(widths, depths, n_nets, *, hist_depth=None, joint=(), nt_check=None, seed=0,
                progress=False) -> dict:
    """Experiment 3: one output neuron (coordinate 0, one per network, so samples are i.i.d.) of
    ``n_nets`` ResNets and MLPs of each (width, depth) on one input x with q_0(x, x) = 1.

    Per cell and architecture: KS statistic and p-value against ``N(0, K(x, x))`` (ResNet: the
    limit kernel; MLP: ``mlp_nngp`` at that depth), excess kurtosis, and for neurons 0 and 1 of
    the same networks their correlation and the correlation of their squares (0 for independent
    neurons). Histograms are kept at depth ``hist_depth`` and 2-D histograms for the (width,
    depth) pairs in ``joint``. ``nt_check`` = dict(width, depth, n_nets): two-sample KS between
    :func:`sample_projected` and :func:`sample_nt` for both architectures.
    """
    from .kernels import mlp_nngp, resnet_nngp

    x = pair_inputs()[:1]
    var = dict(resnet=float(resnet_nngp(x)[0, 0]))
    cells, hists, joints = [], {}, {}
    bins = np.linspace(-6, 6, 61)
    for n, L in _progress([(n, L) for n in widths for L in depths], "gaussianity", progress):
        var["mlp"] = float(mlp_nngp(x, depth=L)[0, 0])
        cell = dict(width=n, depth=L)
        for arch in ("resnet", "mlp"):
            Y = sample_projected(x, n, L, n_nets, arch=arch, seed=_seed(seed, "gauss", arch, n, L))
            y = Y[:, 0, 0]
            ks, p = _ks_normal(y, var[arch])
            cell[arch] = dict(ks=ks, p=p, kurtosis=_excess_kurtosis(y), var=float(np.mean(y * y)),
                              ref_var=var[arch], frac_zero=float(np.mean(y == 0)))
            if n >= 2:
                cell[arch]["corr"] = _corr(Y[:, 0, 0], Y[:, 1, 0])
                prod = Y[:, 0, 0].astype(np.float64) * Y[:, 1, 0]
                sd = prod.std(ddof=1)
                cell[arch]["corr_z"] = float(prod.mean() / sd * np.sqrt(len(prod))) if sd > 0 else float("nan")
                cell[arch]["corr_sq"] = _corr(Y[:, 0, 0] ** 2, Y[:, 1, 0] ** 2)
            if L == hist_depth:
                hists[f"{arch}/{n}"] = dict(width=n, depth=L, ks=ks, **_hist(
                    y / np.sqrt(var[arch]), bins))
            if (n, L) in {tuple(j) for j in joint} and arch == "resnet":
                joints[f"{n}/{L}"] = dict(width=n, depth=L, y0=Y[:, 0, 0].tolist(),
                                          y1=Y[:, 1, 0].tolist(), var=var[arch],
                                          corr=cell[arch]["corr"],
                                          corr_sq=cell[arch]["corr_sq"])
        cells.append(cell)
    out = dict(widths=list(widths), depths=list(depths), n_nets=n_nets, cells=cells,
               hist_depth=hist_depth, hists=hists, joints=joints)
    if nt_check:
        n, L, M = nt_check["width"], nt_check["depth"], nt_check["n_nets"]
        out["nt_check"] = dict(width=n, depth=L, n_nets=M)
        for arch in ("resnet", "mlp"):
            a = sample_projected(x, n, L, M, arch=arch, seed=_seed(seed, "gauss-proj", arch))[:, 0, 0]
            b = sample_nt(x, n, L, M, arch=arch, seed=_seed(seed, "gauss-nt", arch))[:, 0, 0]
            ks, p = _ks_2samp(a, b)
            out["nt_check"][arch] = dict(ks=ks, p=p)
    return out


# ----------------------------------------------------------------------------- experiment 4


def finite_width_sde(widths, depth, n_samples, sde_steps, *, seed=0, progress=False) -> dict:
    """Experiment 4: finite width n, large depth L. Per width: one output coordinate of
    ``n_samples`` ResNets run by Neural Tangents (:func:`sample_nt`) against the diffusion
    (:func:`simulate_sde`, ``sde_steps`` Euler-Maruyama steps) by two-sample KS, and both
    against the Gaussian N(0, q_T(x, x)) of infinite width. Width 1 also checks the SDE solver
    against the exact law (:func:`sample_width1_exact`)."""
    from .kernels import resnet_nngp

    x = pair_inputs()[:1]
    q0, qT = 1.0, float(resnet_nngp(x)[0, 0])
    rows, hists = [], {}
    bins = np.linspace(-5, 5, 51)
    for n in _progress(widths, "finite width SDE", progress):
        Y_net = sample_nt(x, n, depth, n_samples, seed=_seed(seed, "sde-net", n))[:, :, 0]
        Y_sde = simulate_sde(n, n_samples, sde_steps, q0=q0, seed=_seed(seed, "sde", n))
        y_net, y_sde = Y_net[:, 0].astype(np.float64), Y_sde[:, 0]
        row = dict(width=n)
        row["ks_net_sde"], row["p_net_sde"] = _ks_2samp(y_net, y_sde)
        row["ks_net_gauss"], row["p_net_gauss"] = _ks_normal(y_net, qT)
        row["ks_sde_gauss"], row["p_sde_gauss"] = _ks_normal(y_sde, qT)
        row["var_net"], row["var_sde"] = float(np.mean(y_net ** 2)), float(np.mean(y_sde ** 2))
        row["kurtosis_net"], row["kurtosis_sde"] = _excess_kurtosis(y_net), _excess_kurtosis(y_sde)
        row["frozen_net"] = float(np.mean(np.all(Y_net <= 0, axis=1)))
        row["frozen_sde"] = float(np.mean(np.all(Y_sde <= 0, axis=1)))
        if n == 1:
            exact = sample_width1_exact(n_samples, q0=q0, seed=_seed(seed, "sde-exact"))
            row["ks_sde_exact"], row["p_sde_exact"] = _ks_2samp(y_sde, exact)
            row["ks_net_exact"], row["p_net_exact"] = _ks_2samp(y_net, exact)
        rows.append(row)
        s = np.sqrt(qT)
        hists[n] = dict(net=_hist(y_net / s, bins), sde=_hist(y_sde / s, bins))
    return dict(widths=list(widths), depth=depth, n_samples=n_samples, sde_steps=sde_steps,
                q0=q0, qT=qT, rows=rows, hists=hists)


# ----------------------------------------------------------------------------- figures


def _figure(*args, **kwargs):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(*args, **kwargs)


def _save(fig, path):
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _log_y(ax, lo, hi):
    """Log y-axis with one tick per decade and no minor ticks (tick layout dominates drawing)."""
    from matplotlib.ticker import LogLocator, NullLocator

    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    ax.yaxis.set_major_locator(LogLocator(numticks=6))
    ax.yaxis.set_minor_locator(NullLocator())


def plot_covariance(grid, path):
    rows = grid["rows"]
    W, D = grid["widths"], grid["depths"]
    fig = _figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, key, title in [
        (axes[0], "rel_err", "pooled estimate vs limit $q_T$\n"
                              r"$\|\bar C - q_T\|_F/\|q_T\|_F$ (%d nets / cell)" % grid["n_nets"]),
        (axes[1], "per_net_err", "one network's empirical kernel vs $q_T$\n"
                                 r"mean $\|C_i - q_T\|_F/\|q_T\|_F$"),
    ]:
        M = np.array([[next(r[key] for r in rows if r["width"] == n and r["depth"] == L)
                       for L in D] for n in W])
        from matplotlib.colors import LogNorm

        im = ax.imshow(M, norm=LogNorm(), cmap="viridis_r", origin="lower", aspect="auto")
        ax.set_xticks(range(len(D)), [str(L) for L in D])
        ax.set_yticks(range(len(W)), [str(n) for n in W])
        ax.set_xlabel("depth L")
        ax.set_ylabel("width n")
        ax.set_title(title, fontsize=10)
        for i in range(len(W)):
            for j in range(len(D)):
                ax.text(j, i, f"{M[i, j]:.3f}", ha="center", va="center", fontsize=8,
                        color="white" if M[i, j] > np.sqrt(M.max() * M.min()) else "black")
        fig.colorbar(im, ax=ax)
    return _save(fig, path)


def plot_commutativity(grid, paths, corr, path):
    fig = _figure(figsize=(15, 4.4))
    axes = fig.subplots(1, 3)
    fig.subplots_adjust(wspace=0.3)
    styles = dict(n_first=("n first (L = %d, n grows)", "o-"),
                  L_first=("L first (n = %d, L grows)", "s-"), diagonal=("n = L", "^-"))
    for ax, key, ylabel in [(axes[0], "rel_err", "pooled rel. error vs $q_T$"),
                            (axes[1], "per_net_err", "one network's rel. error vs $q_T$")]:
        for name, (label, fmt) in styles.items():
            pts = paths[name]
            if not pts:
                continue
            xs = [p["width"] if name != "L_first" else p["depth"] for p in pts]
            fixed = pts[0]["depth"] if name == "n_first" else pts[0]["width"]
            ax.errorbar(xs, [p[key] for p in pts], yerr=[p[key + "_se"] for p in pts], fmt=fmt,
                        capsize=3, label=label % fixed if "%" in label else label)
        if key == "rel_err":
            D = grid["depths"]
            gaps = [next(r["depth_gap"] for r in grid["rows"] if r["depth"] == L) for L in D]
            ax.plot(D, gaps, ":", color="k", label=r"n = $\infty$, L grows: $|q_L - q_T|$ (exact)")
            pts = paths["L_first"]
            ax.plot([p["depth"] for p in pts], [p["noise"] for p in pts], "-", color="gray",
                    lw=0.8, label="Monte-Carlo noise level (L first)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n or L along the path")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7, loc="best")
    ax = axes[2]
    a = corr["analytic"]
    ax.plot(a["depths"], a["mlp"], "-", color="C3", label="MLP, infinite width (mlp_nngp)")
    ax.plot(a["depths"], a["resnet"], "-", color="C0", label="ResNet, infinite width, depth L")
    ax.axhline(corr["resnet_limit"], color="C0", ls="--", label="ResNet limit $q_T$")
    Ls = [r["depth"] for r in corr["mc"]]
    for arch, color, marker in [("mlp", "C3", "o"), ("resnet", "C0", "s")]:
        ax.errorbar(Ls, [r[arch] for r in corr["mc"]], yerr=[r[arch + "_se"] for r in corr["mc"]],
                    fmt=marker, color=color, capsize=3,
                    label=f"{arch.upper() if arch == 'mlp' else 'ResNet'}, width {corr['width']} (MC)")
    ax.set_xscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel("correlation of two inputs (%g deg apart)" % corr["angle"])
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7, loc="center right")
    return _save(fig, path)


def plot_gaussianity(gauss, path):
    widths = [n for n in gauss["widths"]]
    sel = widths if len(widths) <= 4 else widths[:: max(1, len(widths) // 4)][:4]
    fig = _figure(figsize=(4 * (len(sel) + 1), 7))
    axes = fig.subplots(2, len(sel) + 1)
    grid = np.linspace(-6, 6, 400)
    dens = np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi)
    for r, arch in enumerate(("resnet", "mlp")):
        label = "scaled ResNet" if arch == "resnet" else "MLP (weight var. 2)"
        for c, n in enumerate(sel):
            h = gauss["hists"].get(f"{arch}/{n}")
            ax = axes[r, c]
            if h is None:
                continue
            e = np.asarray(h["edges"])
            ax.stairs(np.maximum(h["density"], 1e-5), e, fill=True, alpha=0.5, color=f"C{r * 3}")
            ax.plot(grid, dens, "k-", lw=1, label="N(0, K(x,x))")
            _log_y(ax, 1e-4, 1.0)
            ax.set_title(f"{label}: n={n}, L={h['depth']}\nKS = {h['ks']:.3f}", fontsize=9)
            ax.set_xlabel("output / sqrt(K(x,x))")
            if c == 0:
                ax.legend(fontsize=7)
        ax = axes[r, -1]
        W, D = gauss["widths"], gauss["depths"]
        M = np.array([[next(cl[arch]["ks"] for cl in gauss["cells"] if cl["width"] == n
                            and cl["depth"] == L) for L in D] for n in W])
        from matplotlib.colors import LogNorm

        im = ax.imshow(M, norm=LogNorm(vmin=3e-3, vmax=0.6), cmap="magma_r", origin="lower",
                       aspect="auto")
        ax.set_xticks(range(len(D)), [str(L) for L in D])
        ax.set_yticks(range(len(W)), [str(n) for n in W])
        ax.set_xlabel("depth L")
        ax.set_ylabel("width n")
        ax.set_title(f"KS statistic, {label}", fontsize=9)
        for i in range(len(W)):
            for j in range(len(D)):
                ax.text(j, i, f"{M[i, j]:.3f}", ha="center", va="center", fontsize=8,
                        color="white" if M[i, j] > 0.05 else "black")
        fig.colorbar(im, ax=ax)
    fig.subplots_adjust(hspace=0.45, wspace=0.3)
    return _save(fig, path)


def plot_joint(gauss, path):
    joints = list(gauss["joints"].values())
    fig = _figure(figsize=(4.6 * max(1, len(joints)), 4.2))
    axes = np.atleast_1d(fig.subplots(1, max(1, len(joints))))
    for ax, j in zip(axes, joints):
        s = np.sqrt(j["var"])
        y0, y1 = np.asarray(j["y0"]) / s, np.asarray(j["y1"]) / s
        ax.hist2d(y0, y1, bins=np.linspace(-4, 4, 41), cmap="Blues")
        t = np.linspace(0, 2 * np.pi, 200)
        for r in (1, 2, 3):  # contours of the isotropic standard 2-D Gaussian
            ax.plot(r * np.cos(t), r * np.sin(t), "k--", lw=0.7)
        ax.set_aspect("equal")
        ax.set_xlabel("neuron 1 / sqrt(K(x,x))")
        ax.set_ylabel("neuron 2 / sqrt(K(x,x))")
        ax.set_title(f"ResNet n={j['width']}, L={j['depth']}: corr {j['corr']:+.3f},\n"
                     f"corr of squares {j['corr_sq']:+.3f}", fontsize=9)
    return _save(fig, path)


def plot_sde(sde, path):
    widths = sde["widths"]
    ncols = 3
    nrows = -(-(len(widths) + 1) // ncols)
    fig = _figure(figsize=(4.2 * ncols, 3.3 * nrows))
    axes = fig.subplots(nrows, ncols).ravel()
    grid = np.linspace(-5, 5, 400)
    dens = np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi)
    for ax, row in zip(axes, sde["rows"]):
        n = row["width"]
        h = sde["hists"][n]
        e = np.asarray(h["net"]["edges"])
        ax.stairs(np.maximum(h["net"]["density"], 1e-5), e, fill=True, alpha=0.45, color="C0",
                  label=f"ResNet, L={sde['depth']} (NT)")
        ax.stairs(np.maximum(h["sde"]["density"], 1e-5), e, color="C3", lw=1.3,
                  label="SDE (Euler-Maruyama)")
        ax.plot(grid, dens, "k--", lw=1, label="N(0, q_T(x,x))")
        _log_y(ax, 1e-4, 2.0)
        ax.set_title(f"n = {n}: KS(net, SDE) = {row['ks_net_sde']:.3f}, "
                     f"KS(net, Gauss) = {row['ks_net_gauss']:.3f}", fontsize=8)
        ax.set_xlabel("Y_T / sqrt(q_T(x,x))")
        if n == widths[0]:
            ax.legend(fontsize=7)
    ax = axes[len(widths)]
    ns = [r["width"] for r in sde["rows"]]
    ax.plot(ns, [r["ks_net_gauss"] for r in sde["rows"]], "o-", label="network vs Gaussian")
    ax.plot(ns, [r["ks_sde_gauss"] for r in sde["rows"]], "s--", label="SDE vs Gaussian")
    ax.plot(ns, [r["ks_net_sde"] for r in sde["rows"]], "^-", label="network vs SDE")
    crit = 1.36 * np.sqrt(2.0 / sde["n_samples"])
    ax.axhline(crit, color="gray", ls=":", label="two-sample 5% critical value")
    ax.set_yscale("log")
    ax.set_xlabel("width n")
    ax.set_ylabel("KS statistic")
    ax.legend(fontsize=7)
    for ax in axes[len(widths) + 1:]:
        ax.set_visible(False)
    fig.subplots_adjust(hspace=0.5, wspace=0.3)
    return _save(fig, path)


# ----------------------------------------------------------------------------- report


def _f(v, digits=3):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}"


def _g(v):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.2g}" if abs(v) < 1e-3 else f"{v:.3f}"


def _cell(rows, n, L):
    return next(r for r in rows if r["width"] == n and r["depth"] == L)


def _z_summary(zs):
    """(count, share of |z| > 2, largest |z|) of a list of z-scores."""
    z = np.abs(np.asarray(zs, dtype=np.float64))
    return len(z), float(np.mean(z > 2)), float(z.max())


def _report(res: dict, figs: dict, md_path: Path) -> str:
    rel = lambda p: os.path.relpath(p, md_path.parent).replace(os.sep, "/")  # noqa: E731
    grid, mc = res["covariance"], res["nt_monte_carlo"]
    paths, corr, gauss, sde = res["commutativity"], res["correlation"], res["gaussianity"], res["sde"]
    rows = grid["rows"]
    out = []
    w = out.append
    w("# Verification: random finite ResNets against resgp's kernels\n")
    w(f"Generated by `resgp verify{' --quick' if res['quick'] else ''} --seed {res['seed']}` "
      f"({'quick' if res['quick'] else 'full'} mode) in {res['runtime_s']:.0f} s on "
      f"{res['environment']['cpus']} CPU cores; every number below is in "
      f"[`{rel(figs['json'])}`]({rel(figs['json'])}). The experiments are those THEORY.md lists "
      "under \"Experiments the papers report\". Networks: ReLU, no biases, input-layer weight "
      "variance 1, branches scaled by 1/sqrt(L) (total branch variance T = 1), Neural Tangents' "
      "'ntk' parameterisation; the MLP comparator is He-initialised (weight variance 2). Inputs "
      "have q_0(x, x) = |x|^2/d = 1 in d = 8, so the limit's diagonal is q_T(x, x) = e^(1/2).\n")
    w("**Sampling.** Two samplers of the same random networks. *NT*: the networks of "
      "`resgp.nt` run by Neural Tangents' `apply_fn`, with i.i.d. N(0, 1) parameters in the "
      "shapes `init_fn` declares (what NT's 'ntk' `init_fn` draws); L n^2 Gaussian draws per "
      "network. *Projected*: given the previous layer, the rows of W_l phi(Y_{l-1}) are i.i.d. "
      "N(0, phi^T phi / n) (W_l is independent of the past), so each block is drawn from that "
      "exact conditional law with P Gaussians per neuron instead of n (P = number of inputs). "
      "This is an identity in distribution, not an approximation, and it is checked against NT "
      "below wherever NT is affordable. Each network contributes its n output neurons "
      "(exchangeable) to a covariance estimate; standard errors (se) are over networks, which "
      "are independent (jackknife for the relative errors).\n")
    w("## Summary\n")
    for line in _key_findings(res):
        w(f"- {line}")
    w("")

    # ---- experiment 1
    w("## 1. The output covariance converges to the limit kernel\n")
    K = np.asarray(grid["limit_kernel"])
    w("Four inputs x1..x4, at 30, 90 and 150 degrees from x1 (x3 orthogonal to all). The limit "
      "kernel `resnet_nngp(X)` (depth=None) is\n")
    w("```\n" + np.array2string(K, precision=4, suppress_small=True) + "\n```\n")
    w(f"Each cell: {grid['n_nets']} random ResNets (projected sampler); pooled covariance "
      "C-bar = mean over networks of Y^T Y / n. Columns: *rel. err* = ||C-bar - q_T||_F / "
      "||q_T||_F and its se; *MC noise* = the error Monte-Carlo noise alone would give "
      "(||se||_F / ||q_T||_F); *gap* = |q_L - q_T| relative, the exact finite-depth gap of the "
      "infinite-width kernel `resnet_nngp(X, depth=L)`; *max z vs q_L* = largest "
      "|C-bar - q_L| / se over the 10 distinct entries (the finite network's covariance differs "
      "from q_L only by a finite-width bias of order 1/n); *one net* = mean over networks of "
      "||C_i - q_T||_F / ||q_T||_F, the distance of a single network's empirical kernel to q_T "
      f"(THEORY.md's concentration). Where L n^2 <= {grid['nt_budget']:.3g}, "
      f"{grid['nt_nets']} networks were also run through Neural Tangents: *NT rel. err* and "
      "*NT vs proj. max z* (largest |z| of the difference of the two estimates).\n")
    w("| n | L | rel. err | se | MC noise | gap | max z vs q_L | one net | NT rel. err "
      "| NT vs proj. max z |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        nt_ = r.get("nt")
        w(f"| {r['width']} | {r['depth']} | {_f(r['rel_err'], 4)} | {_f(r['rel_err_se'], 4)} | "
          f"{_f(r['noise'], 4)} | {_f(r['depth_gap'], 4)} | {_f(r['max_z_depth'], 1)} | "
          f"{_f(r['per_net_err'], 3)} | {_f(nt_['rel_err'], 4) if nt_ else '-'} | "
          f"{_f(r['nt_vs_projected_max_z'], 1) if nt_ else '-'} |")
    w("")
    w(f"![covariance error heat maps]({rel(figs['covariance'])})\n")
    w(_summary_covariance(grid))
    w("**Neural Tangents' Monte-Carlo kernel.** `nt.monte_carlo_kernel_fn(init_fn, apply_fn, key, "
      f"{mc['n_samples']})` for `resgp.nt.resnet({mc['width']}, {mc['depth']})` (networks from "
      f"NT's own `init_fn`) against the direct estimate from {mc['n_direct']} independent "
      f"networks: largest |z| of their difference {mc['max_z']:.2f} over the 10 entries. NT's "
      f"estimate is {mc['mc_rel_err']:.4f} from q_T and {mc['mc_rel_err_depth']:.4f} from q_L "
      f"(the direct one, with {mc['n_direct'] // mc['n_samples']}x more networks: "
      f"{mc['direct']['rel_err']:.4f} and {mc['direct']['rel_err_depth']:.4f})."
      + ("" if "replay_rel_diff" not in mc else
         f" Replaying NT's key sequence for its first {mc['exact_keys']} networks (`init_fn`, "
          f"`apply_fn`, Y^T Y / n) reproduces NT's {mc['exact_keys']}-network estimate to "
          f"{mc['replay_rel_diff']:.1e} (relative, float32): the direct estimator computes "
          "exactly what NT's does.") + "\n")

    # ---- experiment 2
    w("## 2. Width and depth limits commute for the ResNet, not for the MLP\n")
    Lmax, nmax = max(grid["depths"]), max(grid["widths"])
    w(f"Errors along three paths through the grid: *n first* (L = {Lmax} fixed, close to the "
      f"depth limit; n grows), *L first* (n = {nmax} fixed, close to the width limit; L grows) "
      "and *n = L*. The dotted black line in the left panel is the exact infinite-width path "
      "(n = infinity, L grows): the gap |q_L - q_T| of `resnet_nngp(X, depth=L)`.\n")
    w("| path | (n, L) | rel. err ± se | MC noise | one net ± se |")
    w("|---|---|---:|---:|---:|")
    for name, label in [("n_first", "n first"), ("L_first", "L first"), ("diagonal", "n = L")]:
        for p in paths[name]:
            w(f"| {label} | ({p['width']}, {p['depth']}) | {p['rel_err']:.4f} ± "
              f"{p['rel_err_se']:.4f} | {p['noise']:.4f} | {p['per_net_err']:.4f} ± "
              f"{p['per_net_err_se']:.4f} |")
    w("")
    w(f"![commutativity]({rel(figs['commutativity'])})\n")
    w(_summary_paths(grid, paths))
    w(f"**MLP against ResNet** (right panel): correlation of two inputs {corr['angle']:g} degrees "
      f"apart against depth; infinite width (lines) and Monte Carlo at width {corr['width']} "
      f"({corr['n_nets']} networks per depth, projected sampler; z = (MC - analytic) / se).\n")
    w("| L | MLP: mlp_nngp | MLP: MC ± se | z | ResNet: resnet_nngp(depth=L) | ResNet: MC ± se "
      "| z |")
    w("|---:|---:|---:|---:|---:|---:|---:|")
    for r in corr["mc"]:
        w(f"| {r['depth']} | {r['mlp_analytic']:.4f} | {r['mlp']:.4f} ± {r['mlp_se']:.4f} | "
          f"{r['mlp_z']:+.1f} | {r['resnet_analytic']:.4f} | {r['resnet']:.4f} ± "
          f"{r['resnet_se']:.4f} | {r['resnet_z']:+.1f} |")
    w("")
    w(_summary_correlation(corr))

    # ---- experiment 3
    w("## 3. Gaussian output, independent neurons\n")
    crit = 1.36 / np.sqrt(gauss["n_nets"])
    w(f"One input x, {gauss['n_nets']} networks per cell, one output neuron per network (i.i.d. "
      "samples). *KS* = Kolmogorov-Smirnov statistic against N(0, K(x,x)), with K(x,x) = "
      f"{gauss['cells'][0]['resnet']['ref_var']:.4f} (ResNet, limit kernel) and "
      "`mlp_nngp(x, depth=L)` = 1 (MLP); 5% critical value "
      f"{crit:.3f}. *kurt.* = excess kurtosis (0 for a Gaussian). For neurons 1 and 2 of the same "
      "ResNets: *corr* = their correlation and *z* its test statistic (mean of the product over "
      "its se; their covariance is exactly 0 in theory, as each block adds independent rows), "
      "*corr sq.* = correlation of their squares (0 if independent). *MLP = 0*: share of MLPs "
      "whose output is exactly 0 (every ReLU off in some layer: without skip connections the "
      "signal cannot come back).\n")
    w("| n | L | ResNet KS | p | kurt. | corr | z | corr sq. | MLP KS | p | kurt. | MLP = 0 |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in gauss["cells"]:
        r, m = c["resnet"], c["mlp"]
        w(f"| {c['width']} | {c['depth']} | {r['ks']:.3f} | {_g(r['p'])} | {_f(r['kurtosis'], 2)} "
          f"| {_f(r.get('corr'), 3)} | {_f(r.get('corr_z'), 1)} | {_f(r.get('corr_sq'), 3)} | "
          f"{m['ks']:.3f} | {_g(m['p'])} | {_f(m['kurtosis'], 1)} | {m['frac_zero']:.3f} |")
    w("")
    if "nt_check" in gauss:
        ck = gauss["nt_check"]
        w(f"Sampler check at n = {ck['width']}, L = {ck['depth']} ({ck['n_nets']} networks each): "
          f"two-sample KS between the projected sampler and NT's `apply_fn`: ResNet "
          f"{ck['resnet']['ks']:.3f} (p = {_g(ck['resnet']['p'])}), MLP {ck['mlp']['ks']:.3f} "
          f"(p = {_g(ck['mlp']['p'])}).\n")
    w(f"![gaussianity]({rel(figs['gaussianity'])})\n")
    w(f"![joint histogram]({rel(figs['joint'])})\n")
    w(_summary_gaussianity(gauss))

    # ---- experiment 4
    w("## 4. Finite width, infinite depth: a diffusion, not a Gaussian\n")
    w(f"Widths n = {sde['widths'][0]}..{sde['widths'][-1]} at depth L = {sde['depth']}, "
      f"{sde['n_samples']} networks per width run by Neural Tangents (one output coordinate "
      "each), against the SDE dY_t = n^(-1/2) |relu(Y_t)| dB_t, Y_0 ~ N(0, q_0 I_n), t in [0, 1], "
      f"solved by Euler-Maruyama with {sde['sde_steps']} steps ({sde['n_samples']} paths), and "
      f"against the infinite-width Gaussian N(0, q_T(x,x) = {sde['qT']:.4f}). Two-sample 5% "
      f"critical KS value {1.36 * np.sqrt(2 / sde['n_samples']):.3f}, one-sample "
      f"{1.36 / np.sqrt(sde['n_samples']):.3f}. *frozen* = share of networks/paths with every "
      "coordinate <= 0 at the end (then relu(Y) = 0 and nothing moves again; a share 2^-n "
      "starts that way).\n")
    w("| n | KS net vs SDE | p | KS net vs Gauss | p | KS SDE vs Gauss | E[Y^2] net | E[Y^2] SDE "
      "| kurt. net | kurt. SDE | frozen net | frozen SDE | 2^-n |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sde["rows"]:
        w(f"| {r['width']} | {r['ks_net_sde']:.3f} | {_g(r['p_net_sde'])} | "
          f"{r['ks_net_gauss']:.3f} | {_g(r['p_net_gauss'])} | {r['ks_sde_gauss']:.3f} | "
          f"{r['var_net']:.3f} | {r['var_sde']:.3f} | {r['kurtosis_net']:.2f} | "
          f"{r['kurtosis_sde']:.2f} | {r['frozen_net']:.3f} | {r['frozen_sde']:.3f} | "
          f"{2.0 ** -r['width']:.3f} |")
    w("")
    r1 = next((r for r in sde["rows"] if r["width"] == 1), None)
    if r1 is not None:
        w("Width 1 has an exact law: below 0 relu vanishes and Y is frozen, above 0 dY = Y dB, so "
          "Y_T = Y_0 if Y_0 < 0, else Y_0 exp(B_T - 1/2), and E[Y_T^2] = (1 + e)/2 = "
          f"{(1 + np.e) / 2:.3f} rather than e^(1/2). KS of the SDE solver against it "
          f"{r1['ks_sde_exact']:.3f} (p = {_g(r1['p_sde_exact'])}), of the network "
          f"{r1['ks_net_exact']:.3f} (p = {_g(r1['p_net_exact'])}).\n")
    w(f"![finite width SDE]({rel(figs['sde'])})\n")
    w(_summary_sde(sde))

    w("## Not reproduced here\n")
    w("- The paper's PDE solver for q_T (step 1e-4): resgp evaluates the ODE's angle flow "
      "(`resnet_nngp(depth=None)`); this report checks it against finite networks only.")
    if res["quick"]:
        w("- Larger grids and samples: this is the quick mode; run `resgp verify` without "
          "`--quick` for the full one.")
    else:
        w(f"- Depth 5000 and widths beyond {nmax}: CPU time (this run took "
          f"{res['runtime_s'] / 60:.1f} minutes on {res['environment']['cpus']} cores).")
    w("- The change of regime of the post-activation norms between widths 3 and 4 and the two "
      "activations with closed-form laws (Hayou 2022): THEORY.md gives no details; "
      "experiment 4 covers ReLU only.")
    return "\n".join(out) + "\n"


def _key_findings(res):
    grid, mc, corr, gauss, sde = (res["covariance"], res["nt_monte_carlo"], res["correlation"],
                                  res["gaussianity"], res["sde"])
    rows, fit = grid["rows"], grid["fit"]
    nmax, Lmax = max(grid["widths"]), max(grid["depths"])
    corner = _cell(rows, nmax, Lmax)
    count, share, zmax = _z_summary([z for r in rows for z in r["z_depth"]])
    nt_z = [z for r in rows if "nt" in r for z in r["nt_vs_projected_z"]]
    lines = [
        f"Covariance: at (n, L) = ({nmax}, {Lmax}) the pooled estimate is {corner['rel_err']:.4f} "
        f"± {corner['rel_err_se']:.4f} from q_T (Monte-Carlo noise level {corner['noise']:.4f}). "
        f"A single network's empirical kernel is off by C1/sqrt(n) with C1 = {fit['C1']:.2f}, "
        f"independent of depth (fitted C2/sqrt(L) term: C2 = {fit['C2']:.3f}). Against the "
        f"infinite-width kernel at the same depth, q_L: {100 * share:.0f}% of {count} z-scores "
        f"exceed 2, largest {zmax:.1f}.",
    ]
    if nt_z:
        c2, s2, m2 = _z_summary(nt_z)
        lines.append(f"Samplers: Neural Tangents' `apply_fn` and the projected sampler agree "
                     f"({100 * s2:.0f}% of {c2} z-scores above 2, largest {m2:.1f}); "
                     f"`monte_carlo_kernel_fn` agrees with the direct estimate (largest |z| "
                     f"{mc['max_z']:.1f}).")
    last = corr["mc"][-1]
    paths = res["commutativity"]
    falls = [name for name in ("n_first", "L_first", "diagonal")
             if paths[name] and paths[name][-1]["rel_err"] < paths[name][0]["rel_err"]]
    lines.append(
        ("Commutativity: the error falls along n first, L first and n = L alike (section 2). "
         if len(falls) == 3 else
         f"Commutativity: the error falls along {len(falls)} of the 3 paths (section 2). ") +
        f"Correlation of two inputs {corr['angle']:g} degrees apart at depth {last['depth']}: ResNet "
        f"{last['resnet']:.3f} ± {last['resnet_se']:.3f} (limit {corr['resnet_limit']:.3f}); MLP "
        f"{last['mlp']:.3f} ± {last['mlp_se']:.3f} at width {corr['width']}, "
        f"{last['mlp_analytic']:.4f} at infinite width (-> 1).")
    big = [c for c in gauss["cells"] if c["width"] == max(gauss["widths"])]
    small = [c for c in gauss["cells"] if c["width"] == min(gauss["widths"])]
    lines.append(
        f"Gaussianity: KS of one ResNet neuron against N(0, q_T(x,x)) is "
        f"{min(c['resnet']['ks'] for c in big):.3f}-{max(c['resnet']['ks'] for c in big):.3f} at "
        f"n = {max(gauss['widths'])} and {min(c['resnet']['ks'] for c in small):.3f}-"
        f"{max(c['resnet']['ks'] for c in small):.3f} at n = {min(gauss['widths'])}; the MLP's is "
        f"larger in {sum(c['mlp']['ks'] > c['resnet']['ks'] for c in gauss['cells'])} of "
        f"{len(gauss['cells'])} cells (up to {max(c['mlp']['ks'] for c in gauss['cells']):.3f}).")
    ks = [r["ks_net_sde"] for r in sde["rows"]]
    lines.append(
        f"Finite width, depth {sde['depth']}: the network's output matches the SDE at every width "
        f"n = {sde['widths'][0]}..{sde['widths'][-1]} (two-sample KS {min(ks):.3f}-{max(ks):.3f}, "
        f"critical {1.36 * np.sqrt(2 / sde['n_samples']):.3f}) and departs from the Gaussian, by "
        f"KS {sde['rows'][0]['ks_net_gauss']:.3f} at n = {sde['rows'][0]['width']} down to "
        f"{sde['rows'][-1]['ks_net_gauss']:.3f} at n = {sde['rows'][-1]['width']}."
        if max(ks) <= 1.36 * np.sqrt(2 / sde["n_samples"]) else
        f"Finite width, depth {sde['depth']}: two-sample KS network vs SDE {min(ks):.3f}-"
        f"{max(ks):.3f} (critical {1.36 * np.sqrt(2 / sde['n_samples']):.3f}); KS against the "
        f"Gaussian {sde['rows'][0]['ks_net_gauss']:.3f} at n = {sde['rows'][0]['width']}, "
        f"{sde['rows'][-1]['ks_net_gauss']:.3f} at n = {sde['rows'][-1]['width']}.")
    return lines


def _summary_covariance(grid):
    rows, W, D = grid["rows"], grid["widths"], grid["depths"]
    Lmax, nmax, nmin = max(D), max(W), min(W)
    lo, hi = _cell(rows, nmin, Lmax), _cell(rows, nmax, Lmax)
    fit = grid["fit"]
    s = [(f"**One network.** Its empirical kernel's distance to q_T falls from "
          f"{lo['per_net_err']:.3f} (n = {nmin}) to {hi['per_net_err']:.3f} (n = {nmax}) at "
          f"L = {Lmax}, a ratio {lo['per_net_err'] / hi['per_net_err']:.1f} for a width ratio "
          f"{nmax // nmin} (sqrt: {np.sqrt(nmax / nmin):.1f}), and hardly moves with L. Fitting "
          f"C1/sqrt(n) + C2/sqrt(L) (the form of the paper's bound) over the grid gives "
          f"C1 = {fit['C1']:.3f}, C2 = {fit['C2']:.4f} (largest relative residual "
          f"{fit['max_rel_resid']:.2f}): width dominates, as THEORY.md says.")]
    s.append(f"**Pooled estimate.** At n = {nmax} its error against L is "
             + ", ".join(f"{_cell(rows, nmax, L)['rel_err']:.4f}" for L in D)
             + f" (L = {', '.join(str(L) for L in D)}), against the exact depth gap "
             + ", ".join(f"{_cell(rows, nmax, L)['depth_gap']:.4f}" for L in D)
             + f" and a Monte-Carlo noise level of about {hi['noise']:.4f}; gap and noise "
             "combined, sqrt(gap^2 + noise^2), predict "
             + ", ".join(f"{np.hypot(_cell(rows, nmax, L)['depth_gap'], _cell(rows, nmax, L)['noise']):.4f}"
                         for L in D)
             + ". Once the width is large the error is the depth gap until that falls below the "
               "noise. L x gap = "
             + ", ".join(f"{L * _cell(rows, nmax, L)['depth_gap']:.3f}" for L in D)
             + " (the O(1/L) rate).")
    count, share, zmax = _z_summary([z for r in rows for z in r["z_depth"]])
    worst = max(rows, key=lambda r: r["max_z_depth"])
    if zmax < 4.5 and share < 0.12:
        s.append(f"**Against q_L** (infinite width, same depth): {100 * share:.0f}% of the "
                 f"{count} z-scores exceed 2 (about 5% expected from noise), the largest is "
                 f"{zmax:.1f}: at these sample sizes no finite-width bias (O(1/n)) is resolved, "
                 "even at n = " + f"{nmin}.")
    else:
        s.append(f"**Against q_L** (infinite width, same depth): {100 * share:.0f}% of the "
                 f"{count} z-scores exceed 2 (about 5% expected from noise); the largest, "
                 f"{zmax:.1f}, is at (n, L) = ({worst['width']}, {worst['depth']}).")
    nt_rows = [r for r in rows if "nt" in r]
    if nt_rows:
        c2, s2, m2 = _z_summary([z for r in nt_rows for z in r["nt_vs_projected_z"]])
        s.append(f"**Samplers.** At the {len(nt_rows)} cells where both ran, the projected and NT "
                 f"estimates differ by more than 2 se in {100 * s2:.0f}% of {c2} entries "
                 f"(largest |z| {m2:.1f}; with {grid['nt_nets']} NT networks per cell the se "
                 "are themselves uncertain by about "
                 f"{100 / np.sqrt(2 * (grid['nt_nets'] - 1)):.0f}%).")
    return "\n\n".join(s) + "\n"


def _summary_paths(grid, paths):
    out = []
    for name, label in [("n_first", "n first"), ("L_first", "L first"), ("diagonal", "n = L")]:
        p = paths[name]
        if p:
            out.append(f"{label} {p[0]['rel_err']:.4f} at ({p[0]['width']}, {p[0]['depth']}) to "
                       f"{p[-1]['rel_err']:.4f} at ({p[-1]['width']}, {p[-1]['depth']})")
    s = "Pooled error along the paths: " + "; ".join(out) + ". "
    end = paths["n_first"][-1] if paths["n_first"] else None
    if end is not None:
        z = end["rel_err"] / max(end["noise"], 1e-300)
        s += (f"The paths meet at ({end['width']}, {end['depth']}), where the error "
              f"({end['rel_err']:.4f}) is {z:.1f} times the Monte-Carlo noise level, and none of "
              "them stalls at another kernel on the way: the order in which n and L grow does not "
              "matter. They approach differently: at large fixed n the error is the depth gap "
              "O(1/L); at large fixed L it is the width effect (for one network ~1/sqrt(n), "
              "middle panel, where the L-first curve is flat because n is fixed).")
    return s + "\n"


def _summary_correlation(corr):
    mc = corr["mc"]
    res_z = max(abs(r["resnet_z"]) for r in mc)
    off = [r for r in mc if abs(r["mlp_z"]) > 3]
    a = corr["analytic"]
    s = (f"The ResNet's Monte-Carlo correlation follows `resnet_nngp(depth=L)` at every depth "
         f"(largest |z| {res_z:.1f}) and settles at the limit {corr['resnet_limit']:.4f}; the "
         f"infinite-width MLP's correlation climbs to 1 (at depth {a['depths'][-1]}: "
         f"1 - rho = {1 - a['mlp'][-1]:.1e}), so its kernel degenerates with depth. ")
    if off:
        r0 = off[0]
        s += (f"The finite MLP of width {corr['width']} follows `mlp_nngp` at small depth, then "
              f"falls short of it: at L = {r0['depth']} {r0['mlp']:.4f} ± {r0['mlp_se']:.4f} "
              f"against {r0['mlp_analytic']:.4f} (z = {r0['mlp_z']:+.1f}), at L = "
              f"{mc[-1]['depth']} {mc[-1]['mlp']:.4f} against {mc[-1]['mlp_analytic']:.4f} "
              f"(z = {mc[-1]['mlp_z']:+.1f}). At finite width the MLP does not follow its "
              "infinite-width kernel down the depth axis: for the MLP the order of the limits "
              "matters.")
    else:
        s += (f"At width {corr['width']} the finite MLP still follows `mlp_nngp` at the depths "
              f"sampled (largest |z| {max(abs(r['mlp_z']) for r in mc):.1f}).")
    return s + "\n"


def _summary_gaussianity(gauss):
    cells = gauss["cells"]
    W, D = gauss["widths"], gauss["depths"]
    crit = 1.36 / np.sqrt(gauss["n_nets"])
    s = ["ResNet KS by width (over L = " + ", ".join(str(L) for L in D) + "): " + "; ".join(
        f"n = {n}: " + ", ".join(f"{_cell(cells, n, L)['resnet']['ks']:.3f}" for L in D)
        for n in W) + "."]
    gauss_ok = [n for n in W if all(_cell(cells, n, L)["resnet"]["ks"] <= crit for L in D)]
    spread = {n: max(_cell(cells, n, L)["resnet"]["ks"] for L in D)
              - min(_cell(cells, n, L)["resnet"]["ks"] for L in D) for n in W}
    mean_ks = {n: np.mean([_cell(cells, n, L)["resnet"]["ks"] for L in D]) for n in W}
    s.append(
        ("The output becomes Gaussian as the width grows" if mean_ks[max(W)] < mean_ks[min(W)]
         else "Over these widths the KS statistic does not decrease with n")
        + (f" (no KS above the 5% critical value {crit:.3f} from n = {gauss_ok[0]} on)"
           if gauss_ok else "")
        + ". At fixed width the statistic "
        + ("changes little with depth" if max(spread.values()) < 2 * crit else "varies with depth")
        + f" (largest spread over L: {max(spread.values()):.3f}): the depth limit at finite width "
          "is the non-Gaussian diffusion of section 4, so depth alone does not make the output "
          "Gaussian; width does.")
    worse = sum(c["mlp"]["ks"] > c["resnet"]["ks"] for c in cells)
    kurt = [c["mlp"]["kurtosis"] for c in cells if np.isfinite(c["mlp"]["kurtosis"])]
    s.append(f"The MLP of the same size is further from its Gaussian in {worse} of {len(cells)} "
             f"cells, with excess kurtosis up to {max(kurt):.0f} (ResNet: up to "
             f"{max(c['resnet']['kurtosis'] for c in cells):.1f})"
             + ("; at small width most MLPs output exactly 0." if
                max(c["mlp"]["frac_zero"] for c in cells) > 0.5 else "."))
    zs = [abs(c["resnet"]["corr_z"]) for c in cells if np.isfinite(c["resnet"].get("corr_z", np.nan))]
    if zs:
        sq = {n: np.mean([_cell(cells, n, L)["resnet"]["corr_sq"] for L in D]) for n in W if n >= 2}
        s.append(f"Two neurons of the same ResNet are uncorrelated (largest |z| {max(zs):.1f} "
                 f"over {len(zs)} cells) but not independent at small width: the correlation of "
                 "their squares (they share the random scale |phi(Y)|) averages "
                 + ", ".join(f"{v:.3f} at n = {n}" for n, v in sq.items())
                 + ", vanishing as n grows (joint histograms above).")
    return "\n\n".join(s) + "\n"


def _summary_sde(sde):
    rows = sde["rows"]
    crit = 1.36 * np.sqrt(2 / sde["n_samples"])
    ok = [r["width"] for r in rows if r["ks_net_sde"] <= crit]
    nongauss = [r["width"] for r in rows if r["p_net_gauss"] < 0.01]
    s = (f"The network matches the diffusion at {len(ok)} of {len(rows)} widths at the 5% level "
         f"(KS net vs SDE {min(r['ks_net_sde'] for r in rows):.3f}-"
         f"{max(r['ks_net_sde'] for r in rows):.3f}), and is non-Gaussian (p < 0.01 against "
         f"N(0, q_T)) at widths {', '.join(map(str, nongauss)) if nongauss else 'none'}; its KS "
         f"distance to the Gaussian falls from {rows[0]['ks_net_gauss']:.3f} at "
         f"n = {rows[0]['width']} to {rows[-1]['ks_net_gauss']:.3f} at n = {rows[-1]['width']}, "
         "the heavy tails (kurtosis) and the frozen share 2^-n fading as n grows. ")
    s += ("Why the match is so close: with one input, one block of the 1/sqrt(L)-scaled ResNet "
          "is in law exactly one Euler-Maruyama step of size 1/L of this SDE "
          "(given Y, W_l phi(Y) ~ N(0, |phi(Y)|^2/n I)), so the network converges to the "
          "diffusion weakly at the Euler rate O(1/L).\n")
    return s


# ----------------------------------------------------------------------------- driver


def run(outdir, quick=False, seed=0, *, report=None, progress=True) -> dict:
    """Run the four experiments and write ``report`` (Markdown; default
    ``outdir/verification.md``), the figures (PNG) and ``results.json`` into ``outdir``.

    ``quick``: small grids and few samples (under a minute on 2 cores); otherwise the full mode
    (about four minutes on 2 cores). Returns the results dict (what ``results.json`` holds, plus ``files``).
    """
    import jax
    import scipy

    start = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    md_path = Path(report) if report is not None else outdir / "verification.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    cfg = CONFIGS["quick" if quick else "full"]
    timings = {}

    def timed(name, fn, *args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - t
        return out

    grid = timed("covariance", covariance_grid, **cfg["grid"], seed=seed, progress=progress)
    mc = timed("nt_monte_carlo", nt_monte_carlo_check, **cfg["mc_check"], seed=seed)
    paths = commutativity(grid)
    corr = timed("correlation", correlation_vs_depth, **cfg["correlation"], seed=seed,
                 progress=progress)
    gauss = timed("gaussianity", gaussianity, **cfg["gaussianity"], seed=seed, progress=progress)
    sde = timed("sde", finite_width_sde, **cfg["sde"], seed=seed, progress=progress)

    figs = dict(
        covariance=timed("fig_covariance", plot_covariance, grid, outdir / "covariance.png"),
        commutativity=timed("fig_commutativity", plot_commutativity, grid, paths, corr,
                            outdir / "commutativity.png"),
        gaussianity=timed("fig_gaussianity", plot_gaussianity, gauss, outdir / "gaussianity.png"),
        joint=timed("fig_joint", plot_joint, gauss, outdir / "joint_histogram.png"),
        sde=timed("fig_sde", plot_sde, sde, outdir / "finite_width_sde.png"),
        json=outdir / "results.json",
    )
    import neural_tangents

    results = dict(
        quick=bool(quick), seed=int(seed), config=_jsonable(cfg),
        environment=dict(python=platform.python_version(), numpy=np.__version__,
                         scipy=scipy.__version__, jax=jax.__version__,
                         neural_tangents=getattr(neural_tangents, "__version__", "?"),
                         cpus=os.cpu_count()),
        covariance=grid, nt_monte_carlo=mc, commutativity=paths, correlation=corr,
        gaussianity={k: v for k, v in gauss.items() if k not in ("joints",)}, sde=sde,
        timings=timings,
    )
    results["gaussianity"]["joints"] = {k: {kk: vv for kk, vv in v.items() if kk not in ("y0", "y1")}
                                        for k, v in gauss["joints"].items()}
    results["runtime_s"] = time.perf_counter() - start
    md = _report(dict(results, gaussianity=gauss), figs, md_path)
    md_path.write_text(md)
    figs["report"] = md_path
    results["runtime_s"] = time.perf_counter() - start
    results["files"] = {k: str(v) for k, v in figs.items()}
    with open(figs["json"], "w") as fh:
        json.dump(_jsonable(results), fh, indent=1, allow_nan=False)
    return results


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj
