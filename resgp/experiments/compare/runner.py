"""The comparison's fit loop: every (data set, split, kernel), then :func:`run` writes the files."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

from resgp.estimators import GaussianProcessRegressor, gram_and_vjp
from resgp.experiments.progress import progress_bar

from .data import DEPTH_DATASETS, FULL_DATASETS, load_dataset
from .metrics import METRICS, TIMES, expected_calibration_error, log_loss, nlpd, rmse
from .models import DEPTH_KERNELS, FULL_KERNELS, JITTER, ExactGPClassifier, KernelSpec, kernel_zoo
from .plots import plot, plot_ranks
from .report import ranks, to_markdown

__all__ = ["NT_NOTE", "MODES", "evaluate", "aggregate", "run_benchmark", "run", "check_out",
           "read_journal"]


NT_NOTE = (
    "resgp's finite-depth ResNet kernel equals Neural Tangents' analytic kernel_fn of the same "
    "network to ~1e-15 (tests/nt/test_nt_agreement.py); resgp evaluates it here because it also "
    "gives the hyperparameter gradients."
)


MODES = {
    # the comparison a GP user would trust: isotropic and ARD variants, whole data sets
    "full": dict(datasets=FULL_DATASETS, kernels=FULL_KERNELS, n_splits=10, max_rows=None),
    # infinite against finite depth (= Neural Tangents' kernels) and MLP depths, 600-row samples
    "depths": dict(datasets=DEPTH_DATASETS, kernels=DEPTH_KERNELS, n_splits=5, max_rows=600),
    "quick": dict(datasets=FULL_DATASETS, kernels=["resnet", "resnet-L10", "mlp-L3", "rbf",
                                                   "matern52"], n_splits=2, max_rows=300),
    "demo": dict(datasets=["diabetes", "breast_cancer"],
                 kernels=["resnet", "mlp-L3", "rbf", "matern52", "rq"], n_splits=5,
                 max_rows=1000),
}


# ----------------------------------------------------------------------------- one split


def _splits(y, task, n_splits, test_size, seed):
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    cls = StratifiedShuffleSplit if task == "classification" else ShuffleSplit
    return list(cls(n_splits=n_splits, test_size=test_size, random_state=seed).split(
        np.zeros(len(y)), y))


def _warm_up(kernel, A, B):
    """Evaluate the kernel on the shapes the fit and prediction use (JAX compiles per shape)."""
    gram_and_vjp(kernel, A)
    kernel(B, A)
    kernel.diag(B)


def evaluate(spec: KernelSpec, task: str, X_train, y_train, X_test, y_test, warm_up=True) -> dict:
    """Fit one GP with ``spec``'s kernel and return its test metrics and times (seconds).

    Inputs are standardised with the training rows' statistics. Regression: ``rmse``, ``nlpd``;
    classification: ``accuracy``, ``log_loss``, ``ece``; both: ``fit_s``, ``predict_s``,
    ``kernel`` (the fitted kernel, as text).
    """
    scaler = StandardScaler().fit(X_train)
    A, B = scaler.transform(X_train), scaler.transform(X_test)
    kernel = spec.full(A.shape[1])
    if warm_up:
        _warm_up(kernel, A, B)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a hyperparameter at its bound
        if task == "regression":
            model = GaussianProcessRegressor(kernel, alpha=JITTER, normalize_y=True)
            t0 = time.perf_counter()
            model.fit(A, y_train)
            t1 = time.perf_counter()
            mean, std = model.predict(B, return_std=True)
            t2 = time.perf_counter()
            out = dict(rmse=rmse(y_test, mean), nlpd=nlpd(y_test, mean, std))
        else:
            model = ExactGPClassifier(kernel)
            t0 = time.perf_counter()
            model.fit(A, y_train)
            t1 = time.perf_counter()
            proba = model.predict_proba(B)
            t2 = time.perf_counter()
            codes = np.searchsorted(model.classes_, y_test)
            out = dict(accuracy=float(np.mean(proba.argmax(axis=1) == codes)),
                       log_loss=log_loss(proba, codes),
                       ece=expected_calibration_error(proba, codes))
    out.update(fit_s=t1 - t0, predict_s=t2 - t1, kernel=str(model.kernel_))
    return out


# ----------------------------------------------------------------------------- the loop


def _mean_se(values):
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if len(v) == 0:
        return dict(mean=None, se=None, n=0)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return dict(mean=float(v.mean()), se=se, n=int(len(v)))


def aggregate(split_results: list[dict], task: str) -> dict:
    """Mean and standard error (sample std / sqrt(n)) of each metric over the splits."""
    keys = [m for m, _, _ in METRICS[task]] + [t for t, _ in TIMES]
    return {k: _mean_se([r.get(k) for r in split_results]) for k in keys}


def _job_key(dataset, split, kernel):
    return f"{dataset}|{split}|{kernel}"


def read_journal(path, config) -> dict:
    """The finished results of an earlier run with the same ``config`` (JSON lines: a header
    with the configuration, then one line per finished (data set, split, kernel)), keyed by
    :func:`_job_key`. A missing file gives {}; another configuration is a ValueError."""
    path = Path(path)
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if header.get("config") != config:
        raise ValueError(f"{path} holds the results of another configuration "
                         f"({header.get('config')}); remove it or run without --resume")
    done = {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an interruption
            continue
        done[entry["key"]] = entry["result"]
    return done


def _fit_job(key, task, X_train, y_train, X_test, y_test) -> dict:
    """One (data set, split, kernel) on one BLAS thread: :func:`evaluate`'s results, or the
    error as text (recorded, the loop goes on). Top level: worker processes import it."""
    from threadpoolctl import threadpool_limits

    from .models import KERNELS

    with threadpool_limits(1):
        try:
            return evaluate(KERNELS[key], task, X_train, y_train, X_test, y_test)
        except Exception as err:  # noqa: BLE001 - record and go on
            return dict(error=f"{type(err).__name__}: {err}")


def _results_as_done(todo, arguments, jobs):
    """``(job, result)`` as each fit finishes: in order in this process (``jobs`` = 1), else
    from ``jobs`` spawned worker processes (each imports JAX and compiles on its own)."""
    if jobs == 1:
        for job in todo:
            yield job, _fit_job(*arguments(job))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_fit_job, *arguments(job)): job for job in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_benchmark(datasets, kernels=None, n_splits=5, test_size=0.3, max_rows=1000, seed=0,
                  progress=True, desc="resgp bench", journal=None, resume=False,
                  jobs=1) -> dict:
    """Every (data set, split, kernel): :func:`evaluate`. Returns the JSON-able results.

    ``journal``: a path where each finished result is appended as a JSON line as it comes
    (:func:`read_journal`); ``resume``: take the finished results of an earlier, interrupted
    run from it instead of fitting them again. ``jobs``: fits run at once, each in its own
    process on one BLAS thread (1: in this process). Ctrl-C stops the loop and returns what was
    done (``interrupted`` is then True)."""
    if not (isinstance(jobs, (int, np.integer)) and jobs >= 1):
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    specs = kernel_zoo(kernels)
    loaded = []
    for name in datasets:
        X, y, info = load_dataset(name, max_rows=max_rows, seed=seed)
        loaded.append((X, y, info, _splits(y, info["task"], n_splits, test_size, seed)))
    config = dict(datasets=list(datasets), kernels=[s.key for s in specs], n_splits=n_splits,
                  test_size=test_size, max_rows=max_rows, seed=seed)
    done = read_journal(journal, config) if (journal is not None and resume) else {}
    log = None
    if journal is not None:
        log = open(journal, "a" if done else "w")
        if not done:
            log.write(json.dumps(dict(config=config)) + "\n")
            log.flush()
    jobs_all = [(d, i, s) for d, (*_, sp) in enumerate(loaded) for i in range(len(sp))
                for s in specs]
    per_split: dict = {}
    todo = []
    for d, i, spec in jobs_all:
        key = _job_key(loaded[d][2]["name"], i, spec.key)
        if key in done:
            per_split.setdefault((loaded[d][2]["name"], spec.key, i), done[key])
        else:
            todo.append((d, i, spec))

    def arguments(job):
        d, i, spec = job
        X, y, info, splits = loaded[d]
        train, test = splits[i]
        return spec.key, info["task"], X[train], y[train], X[test], y[test]

    bar = progress_bar(_results_as_done(todo, arguments, jobs), desc, progress, total=len(todo),
                       leave=True)
    start = time.perf_counter()
    interrupted = False
    try:
        for (d, i, spec), r in bar:
            name = loaded[d][2]["name"]
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{name} split {i + 1} {spec.key}")
            per_split[(name, spec.key, i)] = r
            if log is not None:
                log.write(json.dumps(dict(key=_job_key(name, i, spec.key), result=r)) + "\n")
                log.flush()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if log is not None:
            log.close()
    runtime = time.perf_counter() - start
    results = []
    for X, y, info, splits in loaded:
        for spec in specs:
            rs = [per_split[(info["name"], spec.key, i)] for i in range(len(splits))
                  if (info["name"], spec.key, i) in per_split]  # in split order
            if not rs:
                continue
            results.append(dict(
                dataset=info["name"], task=info["task"], kernel=spec.key, label=spec.label,
                family=spec.family, summary=aggregate(rs, info["task"]),
                splits=rs, errors=[r["error"] for r in rs if "error" in r]))
    return dict(
        config=config,
        datasets=[info for *_, info, _ in loaded],
        kernels={s.key: dict(label=s.label, family=s.family, ard=s.ard,
                             kernel=repr(s.full(2)) + (" (shown for 2 features)" if s.ard else ""))
                 for s in specs},
        results=results,
        environment=_environment(),
        runtime_s=runtime,
        resumed=len(jobs_all) - len(todo),
        interrupted=interrupted,
        note=NT_NOTE,
    )


def _environment():
    import jax
    import sklearn

    from resgp import __version__

    return dict(resgp=__version__, jax=jax.__version__, sklearn=sklearn.__version__,
                numpy=np.__version__, python=platform.python_version(),
                machine=platform.machine(), cpus=os.cpu_count(),
                date=datetime.datetime.now().isoformat(timespec="seconds"))


# ----------------------------------------------------------------------------- entry point


def check_out(out) -> Path:
    """The output folder, created, or a ValueError naming the problem (before any fit)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".resgp-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"--out {out} cannot be written: {exc.strerror or exc}") from exc
    return out


def run(out, mode="full", stem=None, progress=True, title=None, resume=False,
        **overrides) -> dict:
    """Run a benchmark mode of :data:`MODES` (keyword arguments override its settings) and
    write ``out/stem.md``, ``.json`` and ``.png`` (``stem`` default: "compare_depths" for the
    depths mode, else "compare_kernels"). Returns the results with their ``files``.

    Each finished fit is appended to ``out/stem.jsonl`` as it comes; ``resume=True`` takes the
    fits already there (an interrupted run of the same settings) instead of redoing them;
    ``jobs=n`` runs n fits at once in worker processes (:func:`run_benchmark`). On
    Ctrl-C the files are written from the fits done (``interrupted`` True in the results)."""
    cfg = dict(MODES[mode])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    stem = stem or ("compare_depths" if mode == "depths" else "compare_kernels")
    jobs = cfg.get("jobs", 1)
    out = check_out(out)
    journal = out / f"{stem}.jsonl"
    bench = run_benchmark(cfg["datasets"], cfg["kernels"], n_splits=cfg["n_splits"],
                          max_rows=cfg["max_rows"], seed=cfg.get("seed", 0), progress=progress,
                          desc=f"resgp {'demo' if mode == 'demo' else 'bench'}",
                          journal=journal, resume=resume, jobs=jobs)
    bench["config"]["mode"] = mode
    bench["jobs"] = jobs
    bench["ranks"] = ranks(bench)
    files = dict(markdown=out / f"{stem}.md", json=out / f"{stem}.json", journal=journal)
    markdown = to_markdown(bench, title or f"resgp kernel comparison ({mode})")
    if bench["interrupted"]:
        markdown = ("**Interrupted**: the tables hold the fits finished before Ctrl-C; rerun "
                    "with `--resume` to complete them.\n\n" + markdown)
    files["markdown"].write_text(markdown)
    files["json"].write_text(json.dumps(bench, indent=1) + "\n")
    png = plot(bench, out / f"{stem}.png")
    if png is not None:
        files["png"] = png
    rank_png = plot_ranks(bench, out / f"{stem}_ranks.png")
    if rank_png is not None:
        files["ranks_png"] = rank_png
    bench["files"] = {k: str(v) for k, v in files.items()}
    bench["markdown"] = markdown
    return bench
