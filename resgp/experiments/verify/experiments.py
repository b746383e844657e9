"""The experiments of docs/theory.md (see :mod:`resgp.experiments.verify`), each returning a
plain, JSON-friendly dict; :data:`CONFIGS` holds their settings in the quick and full modes
(experiments 6 and 7, keys "sde_phi" and "norms", are in :mod:`.widths`)."""

from __future__ import annotations

import numpy as np

from resgp.experiments.progress import progress_bar

from .sampling import (
    fixed_inputs,
    pair_inputs,
    sample_nt,
    sample_ntk_nt,
    sample_ntk_projected,
    sample_projected,
    sample_width1_exact,
    seed_for,
    simulate_sde,
)
from .statistics import (
    as_lists,
    correlation_stats,
    covariance_stats,
    excess_kurtosis,
    fit_concentration,
    fit_rates,
    histogram,
    kernel_stats,
    ks_2samp,
    ks_normal,
    law_row,
    max_z,
    pearson,
    z_scores,
)

__all__ = [
    "CONFIGS",
    "covariance_point",
    "covariance_grid",
    "nt_monte_carlo_check",
    "commutativity",
    "correlation_vs_depth",
    "gaussianity",
    "finite_width_sde",
    "ntk_point",
    "ntk_grid",
]


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
        ntk=dict(widths=(16, 64, 256), depths=(4, 16, 64), n_nets=64, n_out=4,
                 activations=("relu", "erf"), nt_budget=2 ** 12, nt_nets=32),
        sde_phi=dict(activations=("erf", "gelu", "leaky_relu", "linear"),
                     widths=tuple(range(1, 9)), depth=32, n_samples=1000, sde_steps=128),
        norms=dict(widths=tuple(range(1, 9)), n_paths=1000, T=100.0, dt=0.05,
                   times=(0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)),
    ),
    "full": dict(
        grid=dict(widths=(16, 64, 256, 1024, 2048), depths=(4, 16, 64, 256, 1024, 4096),
                  n_nets=256,
                  nt_budget=2 ** 22, nt_nets=64),
        mc_check=dict(width=64, depth=16, n_samples=64, n_direct=256, exact_keys=8),
        correlation=dict(width=256, depths=(1, 2, 4, 8, 16, 32, 64, 128, 256), n_nets=128,
                         angle=90.0,
                         analytic_depths=tuple(int(v) for v in np.unique(np.geomspace(1, 4096, 25).round()))),
        gaussianity=dict(widths=(2, 8, 32, 128), depths=(4, 16, 64, 256), n_nets=10000,
                         hist_depth=64, joint=((128, 64), (2, 64)),
                         nt_check=dict(width=16, depth=16, n_nets=4000)),
        sde=dict(widths=tuple(range(1, 9)), depth=256, n_samples=10000, sde_steps=1024),
        ntk=dict(widths=(16, 64, 256, 1024), depths=(4, 16, 64, 256, 1024), n_nets=64, n_out=4,
                 activations=("relu", "erf"), nt_budget=2 ** 14, nt_nets=64),
        sde_phi=dict(activations=("erf", "tanh", "gelu", "leaky_relu", "linear"),
                     widths=tuple(range(1, 9)), depth=256, n_samples=10000, sde_steps=512),
        norms=dict(widths=tuple(range(1, 9)), n_paths=4000, T=200.0, dt=0.02,
                   times=(0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0),
                   hist_time=100.0),
    ),
}


# ----------------------------------------------------------------------------- experiment 1


def covariance_point(X, width, depth, n_nets, *, sampler="projected", seed=0, K=None):
    """Covariance statistics (:func:`covariance_stats`) of ``n_nets`` ResNets of one size against
    the limit kernel ``K`` (default ``resnet_nngp(X)``), with ``K_depth = resnet_nngp(X, depth)``."""
    from resgp import resnet_nngp

    K = resnet_nngp(X) if K is None else K
    sample = {"projected": sample_projected, "nt": sample_nt}[sampler]
    Y = sample(X, width, depth, n_nets, seed=seed)
    return covariance_stats(Y, K, K_depth=resnet_nngp(X, depth=depth))


def covariance_grid(widths, depths, n_nets, *, seed=0, nt_budget=0, nt_nets=32, progress=False):
    """Experiment 1: for every (width n, depth L) the covariance statistics of ``n_nets`` ResNets
    (:func:`sample_projected`) against the limit kernel; where ``L n^2 <= nt_budget`` also those
    of ``nt_nets`` networks run by Neural Tangents (:func:`sample_nt`) and the largest z-score
    of the difference between the two estimates (same law: |z| should look like |N(0,1)|)."""
    from resgp import resnet_nngp

    X = fixed_inputs()
    K = resnet_nngp(X)
    gaps = {L: float(np.linalg.norm(resnet_nngp(X, depth=L) - K) / np.linalg.norm(K))
            for L in depths}
    rows = []
    cells = [(n, L) for n in widths for L in depths]
    for n, L in progress_bar(cells, "covariance grid", progress):
        st = covariance_point(X, n, L, n_nets, seed=seed_for(seed, "grid", n, L), K=K)
        row = dict(as_lists(st), depth=L, depth_gap=gaps[L])
        if L * n * n <= nt_budget:
            st_nt = covariance_point(X, n, L, nt_nets, sampler="nt",
                                     seed=seed_for(seed, "grid-nt", n, L), K=K)
            row["nt"] = as_lists(st_nt)
            z = z_scores(st["mean"], st["se"], st_nt["mean"], st_nt["se"])
            row["nt_vs_projected_z"] = z.tolist()
            row["nt_vs_projected_max_z"] = float(np.max(np.abs(z)))
        rows.append(row)
    return dict(inputs=X.tolist(), limit_kernel=K.tolist(), widths=list(widths),
                depths=list(depths), n_nets=n_nets, nt_nets=nt_nets, nt_budget=nt_budget,
                rows=rows, fit=fit_concentration(rows))


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

    from resgp import nt as rnt
    from resgp import resnet_nngp

    X = fixed_inputs()
    Xf = X.astype(np.float32)
    K, K_L = resnet_nngp(X), resnet_nngp(X, depth=depth)
    init_fn, apply_fn, _ = rnt.resnet(width, depth)
    key = jax.random.PRNGKey(seed)
    counts = sorted({n_samples} | ({exact_keys} if exact_keys else set()))
    mc = nt.monte_carlo_kernel_fn(init_fn, apply_fn, key, counts)
    estimates = {n: np.asarray(k, dtype=np.float64) for n, k in zip(counts, mc(Xf, None, "nngp"))}
    K_mc = estimates[n_samples]
    direct = covariance_stats(sample_nt(X, width, depth, n_direct, seed=seed_for(seed, "mc-direct")),
                              K, K_depth=K_L)
    se_mc = direct["se"] * np.sqrt(n_direct / n_samples)  # same law, n_samples networks
    out = dict(
        width=width, depth=depth, n_samples=n_samples, n_direct=n_direct,
        monte_carlo_kernel=K_mc.tolist(), direct=as_lists(direct),
        max_z=max_z(K_mc, se_mc, direct["mean"], direct["se"]),
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
    from resgp import mlp_nngp, resnet_nngp

    X = pair_inputs(angle)
    rho = lambda K: float(K[0, 1] / np.sqrt(K[0, 0] * K[1, 1]))  # noqa: E731
    out = dict(width=width, angle=angle, n_nets=n_nets, resnet_limit=rho(resnet_nngp(X)),
               analytic=dict(depths=list(analytic_depths),
                             mlp=[rho(mlp_nngp(X, depth=L)) for L in analytic_depths],
                             resnet=[rho(resnet_nngp(X, depth=L)) for L in analytic_depths]),
               mc=[])
    for L in progress_bar(depths, "correlation vs depth", progress):
        row = dict(depth=L)
        for arch in ("mlp", "resnet"):
            Y = sample_projected(X, width, L, n_nets, arch=arch, seed=seed_for(seed, "corr", arch, L))
            row[arch], row[arch + "_se"] = correlation_stats(Y)
        K_mlp, K_res = mlp_nngp(X, depth=L), resnet_nngp(X, depth=L)
        row["mlp_analytic"], row["resnet_analytic"] = rho(K_mlp), rho(K_res)
        for arch in ("mlp", "resnet"):
            row[arch + "_z"] = (row[arch] - row[arch + "_analytic"]) / row[arch + "_se"]
        out["mc"].append(row)
    return out


# ----------------------------------------------------------------------------- experiment 3


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
    from resgp import mlp_nngp, resnet_nngp

    x = pair_inputs()[:1]
    var = dict(resnet=float(resnet_nngp(x)[0, 0]))
    cells, hists, joints = [], {}, {}
    bins = np.linspace(-6, 6, 61)
    for n, L in progress_bar([(n, L) for n in widths for L in depths], "gaussianity", progress):
        var["mlp"] = float(mlp_nngp(x, depth=L)[0, 0])
        cell = dict(width=n, depth=L)
        for arch in ("resnet", "mlp"):
            Y = sample_projected(x, n, L, n_nets, arch=arch, seed=seed_for(seed, "gauss", arch, n, L))
            y = Y[:, 0, 0]
            ks, p = ks_normal(y, var[arch])
            cell[arch] = dict(ks=ks, p=p, kurtosis=excess_kurtosis(y), var=float(np.mean(y * y)),
                              ref_var=var[arch], frac_zero=float(np.mean(y == 0)))
            if n >= 2:
                cell[arch]["corr"] = pearson(Y[:, 0, 0], Y[:, 1, 0])
                prod = Y[:, 0, 0].astype(np.float64) * Y[:, 1, 0]
                sd = prod.std(ddof=1)
                cell[arch]["corr_z"] = float(prod.mean() / sd * np.sqrt(len(prod))) if sd > 0 else float("nan")
                cell[arch]["corr_sq"] = pearson(Y[:, 0, 0] ** 2, Y[:, 1, 0] ** 2)
            if L == hist_depth:
                hists[f"{arch}/{n}"] = dict(width=n, depth=L, ks=ks, **histogram(
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
            a = sample_projected(x, n, L, M, arch=arch, seed=seed_for(seed, "gauss-proj", arch))[:, 0, 0]
            b = sample_nt(x, n, L, M, arch=arch, seed=seed_for(seed, "gauss-nt", arch))[:, 0, 0]
            ks, p = ks_2samp(a, b)
            out["nt_check"][arch] = dict(ks=ks, p=p)
    return out


# ----------------------------------------------------------------------------- experiment 4


def finite_width_sde(widths, depth, n_samples, sde_steps, *, seed=0, progress=False) -> dict:
    """Experiment 4: finite width n, large depth L. Per width: one output coordinate of
    ``n_samples`` ResNets run by Neural Tangents (:func:`sample_nt`) against the diffusion
    (:func:`simulate_sde`, ``sde_steps`` Euler-Maruyama steps) by two-sample KS, and both
    against the Gaussian N(0, q_T(x, x)) of infinite width. Width 1 also checks the SDE solver
    against the exact law (:func:`sample_width1_exact`)."""
    from resgp import resnet_nngp

    x = pair_inputs()[:1]
    q0, qT = 1.0, float(resnet_nngp(x)[0, 0])
    rows, hists = [], {}
    bins = np.linspace(-5, 5, 51)
    for n in progress_bar(widths, "finite width SDE", progress):
        Y_net = sample_nt(x, n, depth, n_samples, seed=seed_for(seed, "sde-net", n))[:, :, 0]
        Y_sde = simulate_sde(n, n_samples, sde_steps, q0=q0, seed=seed_for(seed, "sde", n))
        y_net, y_sde = Y_net[:, 0].astype(np.float64), Y_sde[:, 0]
        row = dict(width=n, **law_row(y_net, y_sde, qT))
        row["frozen_net"] = float(np.mean(np.all(Y_net <= 0, axis=1)))
        row["frozen_sde"] = float(np.mean(np.all(Y_sde <= 0, axis=1)))
        if n == 1:
            exact = sample_width1_exact(n_samples, q0=q0, seed=seed_for(seed, "sde-exact"))
            row["ks_sde_exact"], row["p_sde_exact"] = ks_2samp(y_sde, exact)
            row["ks_net_exact"], row["p_net_exact"] = ks_2samp(y_net, exact)
        rows.append(row)
        s = np.sqrt(qT)
        hists[n] = dict(net=histogram(y_net / s, bins), sde=histogram(y_sde / s, bins))
    return dict(widths=list(widths), depth=depth, n_samples=n_samples, sde_steps=sde_steps,
                q0=q0, qT=qT, rows=rows, hists=hists)


# ----------------------------------------------------------------------------- experiment 5


def ntk_point(X, width, depth, n_nets, *, activation="relu", sampler="projected", n_out=4,
              seed=0, K=None):
    """Statistics (:func:`kernel_stats`) of the empirical NTKs of ``n_nets`` ResNets of one size
    against ``K`` (default the limit ``resnet_ntk(X, activation=activation)``), with
    ``K_depth = resnet_ntk(X, depth=depth)``. ``sampler``: 'projected'
    (:func:`sample_ntk_projected`, the NTK of ``n_out`` output neurons per network) or 'nt'
    (:func:`sample_ntk_nt`, NT's ``empirical_ntk_fn`` averaged over all n outputs)."""
    from resgp import resnet_ntk

    K = resnet_ntk(X, activation=activation) if K is None else K
    if sampler == "projected":
        C = sample_ntk_projected(X, width, depth, n_nets, activation=activation, n_out=n_out,
                                 seed=seed)
    elif sampler == "nt":
        C = sample_ntk_nt(X, width, depth, n_nets, activation=activation, seed=seed)
    else:
        raise ValueError(f"sampler must be 'projected' or 'nt', got {sampler!r}")
    return kernel_stats(C, K, K_depth=resnet_ntk(X, depth=depth, activation=activation))


def _nt_analytic_gap(X, depth, activation):
    """Relative difference of NT's analytic ``kernel_fn(..., 'ntk')`` of ``resgp.nt.resnet`` and
    ``resnet_ntk(depth=depth)`` (the same kernel; float32 unless JAX runs in 64 bits)."""
    from resgp import nt as rnt
    from resgp import resnet_ntk

    kernel_fn = rnt.resnet(8, depth, activation=activation)[2]
    K_nt = np.asarray(kernel_fn(X, None, "ntk"), dtype=np.float64)
    K = resnet_ntk(X, depth=depth, activation=activation)
    return float(np.linalg.norm(K_nt - K) / np.linalg.norm(K))


def ntk_grid(widths, depths, n_nets, *, activations=("relu", "erf"), n_out=4, seed=0,
             nt_budget=0, nt_nets=32, progress=False):
    """Experiment 5: the empirical NTK of finite ResNets against ``resnet_ntk``.

    Per activation and (width n, depth L): :func:`ntk_point` of ``n_nets`` networks
    (projected sampler) against the limit ``resnet_ntk(depth=None)`` and ``resnet_ntk(depth=L)``;
    where ``L n^2 <= nt_budget`` also ``nt_nets`` networks through NT's ``empirical_ntk_fn`` and
    the largest z-score of the difference of the two estimates. Per activation also: the fit
    C1/sqrt(n) + C2/sqrt(L) and the power laws (:func:`fit_rates`) of one network's error, the
    exact depth gaps |Theta_L - Theta_T| / |Theta_T|, the power laws of one network's distance
    to Theta_L (``per_net_err_depth``), the three paths to the limit
    (:func:`commutativity`) and NT's analytic NTK against ``resnet_ntk(depth=L)``."""
    from resgp import resnet_ntk

    X = fixed_inputs()
    out = dict(inputs=X.tolist(), widths=list(widths), depths=list(depths), n_nets=n_nets,
               n_out=n_out, nt_nets=nt_nets, nt_budget=nt_budget, activations=list(activations),
               results={})
    cells = [(a, n, L) for a in activations for n in widths for L in depths]
    rows = {a: [] for a in activations}
    bar = progress_bar(cells, "NTK grid", progress)
    for act, n, L in bar:
        K = resnet_ntk(X, activation=act)
        st = ntk_point(X, n, L, n_nets, activation=act, n_out=n_out, K=K,
                       seed=seed_for(seed, "ntk", act, n, L))
        gap = float(np.linalg.norm(resnet_ntk(X, depth=L, activation=act) - K) / np.linalg.norm(K))
        row = dict(as_lists(st), width=n, depth=L, depth_gap=gap)
        if L * n * n <= nt_budget:
            st_nt = ntk_point(X, n, L, nt_nets, activation=act, sampler="nt", K=K,
                              seed=seed_for(seed, "ntk-nt", act, n, L))
            row["nt"] = as_lists(st_nt)
            z = z_scores(st["mean"], st["se"], st_nt["mean"], st_nt["se"])
            row["nt_vs_projected_z"] = z.tolist()
            row["nt_vs_projected_max_z"] = float(np.max(np.abs(z)))
        rows[act].append(row)
    for act in activations:
        K = resnet_ntk(X, activation=act)
        gaps = {r["depth"]: r["depth_gap"] for r in rows[act]}
        res = dict(limit_kernel=K.tolist(), rows=rows[act], fit=fit_concentration(rows[act]),
                   rates=fit_rates(rows[act], gaps, key="per_net_err_depth"),
                   nt_analytic_rel_diff=_nt_analytic_gap(X, min(depths), act))
        res["paths"] = commutativity(dict(rows=rows[act], widths=list(widths),
                                          depths=list(depths)))
        out["results"][act] = res
    return out
