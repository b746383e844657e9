"""``resgp verify``: run the seven experiments (or some: ``only``), draw the figures, write the
report and the JSON."""

from __future__ import annotations

import json
import os
import pickle
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
    ntk_grid,
)
from .widths import finite_width_activations, norm_regime
from .report import MAIN_EXPERIMENTS, render
from .statistics import jsonable

__all__ = ["run", "Journal", "EXPERIMENTS"]

#: the experiments, in the order they run (``run(only=...)`` takes any of these names)
EXPERIMENTS = MAIN_EXPERIMENTS + ("ntk", "sde_phi", "norms")


def _environment() -> dict:
    import jax
    import neural_tangents
    import scipy

    return dict(python=platform.python_version(), numpy=np.__version__,
                scipy=scipy.__version__, jax=jax.__version__,
                neural_tangents=getattr(neural_tangents, "__version__", "?"),
                cpus=os.cpu_count())


class Journal:
    """Each finished experiment pickled to ``folder/NAME.pkl`` as it comes, beside
    ``config.json`` (the settings it belongs to); :meth:`load` returns those of an earlier run
    with the same settings (for ``--resume``; other settings are a ValueError)."""

    def __init__(self, folder, config, resume, keep=False):
        self.folder = Path(folder)
        self.done = {}
        header = self.folder / "config.json"
        if keep and header.exists() and json.loads(header.read_text()) != config:
            keep = False  # --only on a journal of other settings: start it afresh
        if (resume or keep) and header.exists():
            if json.loads(header.read_text()) != config:
                raise ValueError(f"{self.folder} holds the results of other settings; remove it "
                                 f"or run without --resume")
            for path in self.folder.glob("*.pkl"):
                try:
                    self.done[path.stem] = pickle.loads(path.read_bytes())
                except (pickle.UnpicklingError, EOFError):  # cut by an interruption
                    pass
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            for path in self.folder.glob("*.pkl"):
                path.unlink()
            header.write_text(json.dumps(config))

    def save(self, name, value):
        tmp = self.folder / f"{name}.tmp"
        tmp.write_bytes(pickle.dumps(value))
        tmp.replace(self.folder / f"{name}.pkl")  # whole or not at all


def _experiments(cfg, seed, progress, timed, journal, only=None) -> dict:
    res = {}
    steps = [
        ("covariance", lambda: covariance_grid(**cfg["grid"], seed=seed, progress=progress)),
        ("nt_monte_carlo", lambda: nt_monte_carlo_check(**cfg["mc_check"], seed=seed)),
        ("commutativity", lambda: commutativity(res["covariance"])),
        ("correlation", lambda: correlation_vs_depth(**cfg["correlation"], seed=seed,
                                                     progress=progress)),
        ("gaussianity", lambda: gaussianity(**cfg["gaussianity"], seed=seed, progress=progress)),
        ("sde", lambda: finite_width_sde(**cfg["sde"], seed=seed, progress=progress)),
        ("ntk", lambda: ntk_grid(**cfg["ntk"], seed=seed, progress=progress)),
        ("sde_phi", lambda: finite_width_activations(**cfg["sde_phi"], seed=seed,
                                                     progress=progress)),
        ("norms", lambda: norm_regime(**cfg["norms"], seed=seed, progress=progress)),
    ]
    for name, fn in steps:
        if only is not None and name not in only:
            if name in journal.done:  # from an earlier run with the same settings
                res[name] = journal.done[name]
            continue
        if name in journal.done and only is None:
            res[name] = journal.done[name]
            continue
        res[name] = timed(name, fn)
        journal.save(name, res[name])
    return res


def _figures(res, outdir, timed) -> dict:
    figs = dict(json=outdir / "results.json")
    if "ntk" in res:
        figs["ntk"] = timed("fig_ntk", plots.plot_ntk, res["ntk"], outdir / "ntk.png")
    if "sde_phi" in res:
        figs["sde_phi"] = timed("fig_sde_phi", plots.plot_sde_phi, res["sde_phi"],
                                outdir / "finite_width_activations.png")
    if "norms" in res:
        figs["norms"] = timed("fig_norms", plots.plot_norms, res["norms"],
                              outdir / "post_activation_norms.png")
    if not all(k in res for k in MAIN_EXPERIMENTS):
        return figs
    grid, gauss = res["covariance"], res["gaussianity"]
    return dict(figs,
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


def run(outdir, quick=False, seed=0, *, report=None, progress=True, resume=False,
        only=None) -> dict:
    """Run the seven experiments and write ``report`` (Markdown; default
    ``outdir/verification.md``), the figures (PNG) and ``results.json`` into ``outdir``.

    ``only``: names from :data:`EXPERIMENTS` to run (again); the others are taken from
    ``outdir/journal`` where an earlier run with the same settings left them, else left out, and
    the report then holds the sections of what is there (``only=["ntk"]``: section 5 alone;
    "sde_phi" and "norms" are sections 6 and 7).
    "commutativity" needs "covariance".

    Each finished experiment is kept in ``outdir/journal`` as it comes (:class:`Journal`);
    ``resume``: take those of an earlier, interrupted run with the same settings instead of
    running them again. Ctrl-C keeps the finished ones and says how to resume.

    ``quick``: small grids and few samples (about a minute and a half on 2 cores, of which
    section 5, the NTK, ~25 s, and sections 6 and 7 ~30 s); otherwise the full mode (about 13
    minutes on 2 cores: the covariance grid to n = 2048 and L = 4096 ~6, the NTK ~3, sections
    6 and 7 ~2.5). Returns the results dict (what ``results.json`` holds, plus ``files``).
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

    if only is not None:
        unknown = sorted(set(only) - set(EXPERIMENTS))
        if unknown:
            raise ValueError(f"unknown experiments {unknown}; choose from {list(EXPERIMENTS)}")
        only = [name for name in EXPERIMENTS if name in set(only)]
        if "commutativity" in only and "covariance" not in only:
            only.insert(0, "covariance")
    journal = Journal(outdir / "journal", dict(quick=bool(quick), seed=int(seed)), resume,
                      keep=only is not None)
    try:
        res = _experiments(cfg, seed, progress, timed, journal, only)
    except KeyboardInterrupt:
        done = sorted(p.stem for p in journal.folder.glob("*.pkl"))
        raise KeyboardInterrupt(f"resgp verify interrupted; finished experiments {done} are in "
                                f"{journal.folder}: rerun with --resume to complete") from None
    figs = _figures(res, outdir, timed)
    results = dict(quick=bool(quick), seed=int(seed), config=jsonable(cfg),
                   environment=_environment(), **res, timings=timings)
    if only is not None:
        results["only"] = only
    if "gaussianity" in res:
        gauss = res["gaussianity"]
        results["gaussianity"] = {k: v for k, v in gauss.items() if k not in ("joints",)}
        results["gaussianity"]["joints"] = {
            k: {kk: vv for kk, vv in v.items() if kk not in ("y0", "y1")}
            for k, v in gauss["joints"].items()}
    results["runtime_s"] = time.perf_counter() - start
    full = {k: res[k] for k in ("gaussianity",) if k in res}  # with the joint samples
    md_path.write_text(render(dict(results, **full), figs, md_path))
    figs["report"] = md_path
    results["runtime_s"] = time.perf_counter() - start
    results["files"] = {k: str(v) for k, v in figs.items()}
    with open(figs["json"], "w") as fh:
        json.dump(jsonable(results), fh, indent=1, allow_nan=False)
    return results
