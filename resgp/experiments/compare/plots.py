"""The kernel comparison's figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .metrics import METRICS

__all__ = ["plot"]


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
    names = [d["name"] for d in bench["datasets"]]
    keys = bench["config"]["kernels"]
    labels = [bench["kernels"][k]["label"] for k in keys]
    colors = {"resnet": "C3", "resnet-finite": "C1", "mlp": "C2", "stationary": "C0"}
    n = len(names) + 1
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 0.28 * len(keys) * nrows + 1.6
                                                    * nrows), squeeze=False)
    res = {(r["dataset"], r["kernel"]): r for r in bench["results"]}
    ypos = np.arange(len(keys))[::-1]
    for ax, name in zip(axes.flat, names):
        task = res[(name, keys[0])]["task"]
        metric, header, _ = METRICS[task][0]
        for y0, k in zip(ypos, keys):
            s = res[(name, k)]["summary"][metric]
            if s["mean"] is not None:
                ax.errorbar(s["mean"], y0, xerr=s["se"], fmt="o",
                            color=colors[bench["kernels"][k]["family"]])
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.set_title(f"{name}: test {header}" + (" (lower is better)" if task == "regression"
                                                   else " (higher is better)"), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    ax = axes.flat[len(names)]
    for y0, k in zip(ypos, keys):
        t = [res[(nm, k)]["summary"]["fit_s"]["mean"] for nm in names]
        t = [v for v in t if v is not None]
        if t:
            ax.plot(np.mean(t), y0, "s", color=colors[bench["kernels"][k]["family"]])
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
                 "blue: stationary", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
