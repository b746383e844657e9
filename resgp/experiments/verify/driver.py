"""``resgp verify``: run the four experiments, draw the figures, write the report and the JSON."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from . import plots
from .experiments import (
    CONFIGS,
    commutativity,
    correlation_vs_depth,
    covariance_grid,
    finite_width_sde,
    gaussianity,
    nt_monte_carlo_check,
)
from .report import render
from .statistics import jsonable

__all__ = ["run"]


def _environment() -> dict:
    import jax
    import neural_tangents
    import scipy

    return dict(python=platform.python_version(), numpy=np.__version__,
                scipy=scipy.__version__, jax=jax.__version__,
                neural_tangents=getattr(neural_tangents, "__version__", "?"),
                cpus=os.cpu_count())


def _experiments(cfg, seed, progress, timed) -> dict:
    grid = timed("covariance", covariance_grid, **cfg["grid"], seed=seed, progress=progress)
    mc = timed("nt_monte_carlo", nt_monte_carlo_check, **cfg["mc_check"], seed=seed)
    paths = commutativity(grid)
    corr = timed("correlation", correlation_vs_depth, **cfg["correlation"], seed=seed,
                 progress=progress)
    gauss = timed("gaussianity", gaussianity, **cfg["gaussianity"], seed=seed, progress=progress)
    sde = timed("sde", finite_width_sde, **cfg["sde"], seed=seed, progress=progress)
    return dict(covariance=grid, nt_monte_carlo=mc, commutativity=paths, correlation=corr,
                gaussianity=gauss, sde=sde)


def _figures(res, outdir, timed) -> dict:
    grid, gauss = res["covariance"], res["gaussianity"]
    return dict(
        covariance=timed("fig_covariance", plots.plot_covariance, grid, outdir / "covariance.png"),
        commutativity=timed("fig_commutativity", plots.plot_commutativity, grid,
                            res["commutativity"], res["correlation"],
                            outdir / "commutativity.png"),
        gaussianity=timed("fig_gaussianity", plots.plot_gaussianity, gauss,
                          outdir / "gaussianity.png"),
        joint=timed("fig_joint", plots.plot_joint, gauss, outdir / "joint_histogram.png"),
        sde=timed("fig_sde", plots.plot_sde, res["sde"], outdir / "finite_width_sde.png"),
        json=outdir / "results.json",
    )


def run(outdir, quick=False, seed=0, *, report=None, progress=True) -> dict:
    """Run the four experiments and write ``report`` (Markdown; default
    ``outdir/verification.md``), the figures (PNG) and ``results.json`` into ``outdir``.

    ``quick``: small grids and few samples (under a minute on 2 cores); otherwise the full mode
    (about four minutes on 2 cores). Returns the results dict (what ``results.json`` holds, plus ``files``).
    """
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

    res = _experiments(cfg, seed, progress, timed)
    figs = _figures(res, outdir, timed)
    gauss = res["gaussianity"]
    results = dict(quick=bool(quick), seed=int(seed), config=jsonable(cfg),
                   environment=_environment(), **res, timings=timings)
    results["gaussianity"] = {k: v for k, v in gauss.items() if k not in ("joints",)}
    results["gaussianity"]["joints"] = {k: {kk: vv for kk, vv in v.items() if kk not in ("y0", "y1")}
                                        for k, v in gauss["joints"].items()}
    results["runtime_s"] = time.perf_counter() - start
    md_path.write_text(render(dict(results, gaussianity=gauss), figs, md_path))
    figs["report"] = md_path
    results["runtime_s"] = time.perf_counter() - start
    results["files"] = {k: str(v) for k, v in figs.items()}
    with open(figs["json"], "w") as fh:
        json.dump(jsonable(results), fh, indent=1, allow_nan=False)
    return results
