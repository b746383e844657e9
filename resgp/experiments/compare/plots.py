"""The kernel comparison's figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .metrics import METRICS
from .report import critical_difference, ranked_datasets, ranks

__all__ = ["plot", "plot_ranks"]

FAMILY_COLORS = {"resnet": "C3", "resnet-finite": "C1", "mlp": "C2", "stationary": "C0"}


def plot(bench: dict, path) -> Path | None:
    """One panel per data set: the main metric (RMSE or accuracy) ± standard error per kernel,
    and a last panel of the mean fit times. Returns the path, or None without matplotlib."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return None
    names = [d["name"] for d in bench["datasets"]
             if any(r["dataset"] == d["name"] for r in bench["results"])]
    keys = bench["config"]["kernels"]
    labels = [bench["kernels"][k]["label"] for k in keys]
    n = len(names) + 1
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 0.28 * len(keys) * nrows + 1.6
                                                    * nrows), squeeze=False)
    res = {(r["dataset"], r["kernel"]): r for r in bench["results"]}
    ypos = np.arange(len(keys))[::-1]
    for ax, name in zip(axes.flat, names):
        task = next(r["task"] for r in bench["results"] if r["dataset"] == name)
        metric, header, _ = METRICS[task][0]
        for y0, k in zip(ypos, keys):
            if (name, k) not in res:  # an interrupted run: not fitted yet
                continue
            s = res[(name, k)]["summary"][metric]
            if s["mean"] is not None:
                color = FAMILY_COLORS[bench["kernels"][k]["family"]]
                ax.errorbar(s["mean"], y0, xerr=s["se"], fmt="o", color=color,
                            markerfacecolor="white" if bench["kernels"][k].get("ard") else color)
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.set_title(f"{name}: test {header}" + (" (lower is better)" if task == "regression"
                                                   else " (higher is better)"), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    ax = axes.flat[len(names)]
    for y0, k in zip(ypos, keys):
        t = [res[(nm, k)]["summary"]["fit_s"]["mean"] for nm in names if (nm, k) in res]
        t = [v for v in t if v is not None]
        if t:
            ax.plot(np.mean(t), y0, "s", color=FAMILY_COLORS[bench["kernels"][k]["family"]])
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set_title("fit time, mean over data sets (s)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"GP kernels, {bench['config']['n_splits']} random splits (mean ± s.e.); "
                 "red: ResNet NNGP L=inf, orange: finite-depth ResNet (= NT), green: MLP NNGP, "
                 "blue: stationary; hollow: ARD", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ranks(bench: dict, path) -> Path | None:
    """Critical-difference style figure: one panel per (task, metric), the kernels sorted by mean
    rank over the data sets (1 = best), each with a bar of half Nemenyi's critical difference on
    either side, so kernels whose bars do not overlap differ significantly (alpha = 0.05).
    ARD kernels are drawn hollow. Returns the path, or None without matplotlib or ranks."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        return None
    rk = ranks(bench)
    panels = [(t, m, h) for t in rk for m, h, _ in METRICS[t]]
    keys = bench["config"]["kernels"]
    if not panels or len(keys) < 2:
        return None
    tasks = list(rk)
    ncols = max(len(METRICS[t]) for t in tasks)
    fig, axes = plt.subplots(len(tasks), ncols, squeeze=False,
                             figsize=(5.4 * ncols, (0.3 * len(keys) + 1.3) * len(tasks)))
    cells = [axes[tasks.index(t), [m for m, _, _ in METRICS[t]].index(m)] for t, m, _ in panels]
    for ax in set(axes.flat) - set(cells):
        ax.axis("off")
    for ax, (task, metric, header) in zip(cells, panels):
        n = len(ranked_datasets(bench, task))
        cd = critical_difference(len(keys), n)
        order = sorted((k for k in keys if metric in rk[task].get(k, {})),
                       key=lambda k: rk[task][k][metric])
        for y0, k in enumerate(order[::-1]):
            info = bench["kernels"][k]
            color = FAMILY_COLORS[info["family"]]
            ax.errorbar(rk[task][k][metric], y0, xerr=cd / 2, fmt="o", color=color, capsize=3,
                        markerfacecolor="white" if info.get("ard") else color)
        ax.set_yticks(range(len(order)), [bench["kernels"][k]["label"] for k in order[::-1]],
                      fontsize=8)
        ax.set_xlim(0.5, len(keys) + 0.5)
        ax.set_xlabel("mean rank (1 = best)", fontsize=8)
        ax.set_title(f"{task}: {header} ({n} data sets)\nNemenyi CD = {cd:.2f}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
