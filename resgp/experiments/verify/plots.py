"""The verification report's figures (matplotlib's object API: no pyplot, no global state)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_covariance", "plot_commutativity", "plot_gaussianity", "plot_joint", "plot_sde",
           "plot_ntk", "plot_sde_phi", "plot_norms"]


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
        _heat_map(fig, ax, rows, key, W, D, title)
    return _save(fig, path)


def _heat_map(fig, ax, rows, key, W, D, title):
    """``rows[key]`` over the (width, depth) grid, log colour scale, values written in."""
    from matplotlib.colors import LogNorm

    M = np.array([[next(r[key] for r in rows if r["width"] == n and r["depth"] == L)
                   for L in D] for n in W])
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


def plot_ntk(ntk, path):
    """Experiment 5: per activation (rows) the pooled and one-network heat maps of the empirical
    NTK's error against the limit, and the pooled error along the three paths."""
    acts = ntk["activations"]
    W, D = ntk["widths"], ntk["depths"]
    fig = _figure(figsize=(16, 4.3 * len(acts)))
    axes = np.atleast_2d(fig.subplots(len(acts), 3))
    fig.subplots_adjust(wspace=0.3, hspace=0.45)
    styles = dict(n_first=("n first (L = %d, n grows)", "o-"),
                  L_first=("L first (n = %d, L grows)", "s-"), diagonal=("n = L", "^-"))
    for (ax0, ax1, ax2), act in zip(axes, acts):
        res = ntk["results"][act]
        rows = res["rows"]
        _heat_map(fig, ax0, rows, "rel_err", W, D,
                  f"{act}: pooled empirical NTK vs limit $\\Theta_T$\n"
                  r"$\|\bar\Theta - \Theta_T\|_F/\|\Theta_T\|_F$ (%d nets / cell)" % ntk["n_nets"])
        _heat_map(fig, ax1, rows, "per_net_err", W, D,
                  f"{act}: one network's empirical NTK vs $\\Theta_T$\n"
                  r"mean $\|\hat\Theta_i - \Theta_T\|_F/\|\Theta_T\|_F$")
        paths = res["paths"]
        for name, (label, fmt) in styles.items():
            pts = paths[name]
            if not pts:
                continue
            xs = [p["width"] if name != "L_first" else p["depth"] for p in pts]
            fixed = pts[0]["depth"] if name == "n_first" else pts[0]["width"]
            ax2.errorbar(xs, [p["rel_err"] for p in pts], yerr=[p["rel_err_se"] for p in pts],
                         fmt=fmt, capsize=3, label=label % fixed if "%" in label else label)
        gaps = [next(r["depth_gap"] for r in rows if r["depth"] == L) for L in D]
        ax2.plot(D, gaps, ":", color="k",
                 label=r"n = $\infty$, L grows: $|\Theta_L - \Theta_T|$ (exact)")
        pts = paths["L_first"]
        ax2.plot([p["depth"] for p in pts], [p["noise"] for p in pts], "-", color="gray", lw=0.8,
                 label="Monte-Carlo noise level (L first)")
        ax2.set_xscale("log", base=2)
        ax2.set_yscale("log")
        ax2.set_xlabel("n or L along the path")
        ax2.set_ylabel(f"{act}: pooled rel. error of the NTK vs $\\Theta_T$")
        ax2.legend(fontsize=7, loc="best")
    return _save(fig, path)


def plot_sde_phi(phi, path):
    """Experiment 6: per activation (rows), the law of Y_T / sqrt(q_T) for networks and SDE at a
    few widths, and the KS statistics against width."""
    acts, widths = phi["activations"], phi["widths"]
    show = [n for n in (1, 2, 4, 8) if n in widths] or widths[:4]
    ncols = len(show) + 1
    fig = _figure(figsize=(3.3 * ncols, 2.7 * len(acts)))
    axes = np.atleast_2d(fig.subplots(len(acts), ncols))
    grid = np.linspace(-5, 5, 400)
    dens = np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi)
    crit = 1.36 * np.sqrt(2.0 / phi["n_samples"])
    for i, act in enumerate(acts):
        res = phi["results"][act]
        rows = {r["width"]: r for r in res["rows"]}
        for ax, n in zip(axes[i], show):
            h = res["hists"][n]
            e = np.asarray(h["net"]["edges"])
            ax.stairs(np.maximum(h["net"]["density"], 1e-5), e, fill=True, alpha=0.45,
                      color="C0", label=f"ResNet, L={phi['depth']} (NT)")
            ax.stairs(np.maximum(h["sde"]["density"], 1e-5), e, color="C3", lw=1.2, label="SDE")
            ax.plot(grid, dens, "k--", lw=0.8, label="N(0, q_T)")
            _log_y(ax, 1e-4, 2.0)
            ax.set_title(f"{act}, n = {n}: KS = {rows[n]['ks_net_sde']:.3f}", fontsize=8)
            if i == 0 and n == show[0]:
                ax.legend(fontsize=6)
        ax = axes[i, -1]
        ns = [r["width"] for r in res["rows"]]
        ax.plot(ns, [r["ks_net_sde"] for r in res["rows"]], "^-", label="net vs SDE")
        ax.plot(ns, [r["ks_net_gauss"] for r in res["rows"]], "o-", label="net vs Gaussian")
        ex = [(r["width"], r["ks_sde_exact"]) for r in res["rows"] if "ks_sde_exact" in r]
        if ex:
            ax.plot(*zip(*ex), "kx", label="SDE vs exact law")
        ax.axhline(crit, color="gray", ls=":", label="5% critical (2-sample)")
        ax.set_yscale("log")
        ax.set_xlabel("width n", fontsize=8)
        ax.set_title(f"{act}: KS statistics", fontsize=8)
        if i == 0:
            ax.legend(fontsize=6)
    fig.subplots_adjust(hspace=0.6, wspace=0.3)
    return _save(fig, path)


def plot_norms(norms, path):
    """Experiment 7: the post-activation norm of the width-n ReLU diffusion over long depth
    time: mean and quartiles of log |relu(Y_t)|^2, the initial drift against width, the shares of
    vanished and exploded paths, the law at the last time."""
    rows, times = norms["rows"], np.asarray(norms["times"])
    fig = _figure(figsize=(14, 8.4))
    axes = fig.subplots(2, 2).ravel()
    colors = {r["width"]: f"C{i % 10}" for i, r in enumerate(rows)}
    ax = axes[0]
    for r in rows:
        n = r["width"]
        t = np.concatenate([[0.0], times])
        m = np.concatenate([[r["mean_log0"]], [a["mean_log"] for a in r["at"]]])
        ax.plot(t, m, "-" if n >= 4 else "--", color=colors[n], label=f"n = {n}")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_ylim(-40, 25)
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("depth time t")
    ax.set_ylabel(r"$E[\log|\mathrm{relu}(Y_t)|^2 \mid Y_0^+ \neq 0]$")
    ax.set_title("mean log post-activation norm (dashed: n <= 3, decreasing from t = 0)",
                 fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[1]
    ns = [r["width"] for r in rows]
    nn = np.arange(1, max(ns) + 1)
    ax.plot(nn, [(k / (2 * (1 - 2.0 ** -k)) - 2) / k for k in nn], "k-", lw=1,
            label=r"derived: $(E[k \mid k \geq 1] - 2)/n$")
    ax.errorbar(ns, [r["early_drift"] for r in rows], yerr=[2 * r["early_drift_se"] for r in rows],
                fmt="o", color="C0", label=r"simulated $E\int_0^{t_1}(k-2)/n\,dt\,/\,t_1$")
    ax.errorbar(ns, [r["early_dlog"] for r in rows], yerr=[2 * r["early_dlog_se"] for r in rows],
                fmt="s", mfc="none", color="C3",
                label=r"simulated $E[\log S_{t_1} - \log S_0 - M_{t_1}]/t_1$")
    ax.axhline(0, color="gray", lw=0.8)
    ax.axvspan(3.5, max(ns) + 0.5, color="C2", alpha=0.08)
    ax.set_xlabel("width n")
    ax.set_ylabel(r"$d\,E[\log|\mathrm{relu}(Y_t)|^2]/dt$ at t = 0")
    ax.set_title(f"drift of the log norm at t = 0 (t_1 = {rows[0]['early_time']:g}): "
                 "sign change between n = 3 and n = 4", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[2]
    for r in rows:
        n = r["width"]
        ax.plot(times, [a["p_vanish"] for a in r["at"]], "-", color=colors[n], label=f"n = {n}")
        ax.plot(times, [a["p_explode"] for a in r["at"]], ":", color=colors[n])
    ax.set_xscale("log")
    ax.set_xlabel("depth time t")
    ax.set_ylabel("share of paths")
    ax.set_title(f"vanished (solid, |relu(Y_t)| < {norms['vanish']:g}) and exploded "
                 f"(dotted, > {norms['explode']:g})", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    ax = axes[3]
    for r in rows:
        n = r["width"]
        h = norms["hists"][n]
        ax.stairs(h["density"], np.asarray(h["edges"]), color=colors[n], label=f"n = {n}")
    ax.set_xlabel(r"$\log|\mathrm{relu}(Y_t)|^2$ at t = %g (paths with $Y_0^+ \neq 0$)"
                  % norms["hist_time"])
    ax.set_ylabel("density")
    ax.legend(fontsize=7, ncol=2)
    fig.subplots_adjust(hspace=0.35, wspace=0.25)
    return _save(fig, path)
