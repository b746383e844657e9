#!/usr/bin/env python
"""Speed of ``resgp.sklearn_kernel.ResNetKernel`` against scikit-learn's ``RBF``.

Run from the repository root::

    .venv/bin/python benchmarks/sklearn_kernel.py            # full, a few minutes; writes benchmarks/results/sklearn_kernel.md
    .venv/bin/python benchmarks/sklearn_kernel.py --quick    # N=500, well under a minute

Machines are noisy, so every target is a ratio against a reference measured in the same run:

1. Kernel and gradient, ``ResNetKernel()(X, eval_gradient=True)`` against
   ``RBF()(X, eval_gradient=True)``, N=2000 (500 quick), d=16: each warmed up once (JAX compiles
   on the first call), then the median of 3 interleaved repeats. Target: ratio <= 2 (full mode;
   at N=500 a fixed per-call cost of a few ms, JAX dispatch and transfers, dominates).
2. A full ``GaussianProcessRegressor`` fit, kernel ``ConstantKernel() * K + WhiteKernel()``,
   ``normalize_y=True``, ``n_restarts_optimizer=0``, on ``make_friedman1`` (same N, d=16,
   standardised X), K = ResNetKernel() against K = RBF(). The optimiser is scikit-learn's default
   (``scipy.optimize.minimize``, L-BFGS-B, ``jac=True``) wrapped to record ``res.nit`` and
   ``res.nfev``; one fit each (after a warm-up fit on 200 rows that compiles the JAX code).
   Target: fit-time ratio <= 2. Iteration counts, time per objective evaluation and held-out
   R^2 are reported for information.
3. The same two measurements with ARD (issue 14): ``ResNetKernel(weight_variance=np.ones(16))``
   (one weight variance per feature, 16 more hyperparameters) against ``RBF(np.ones(16))`` (one
   length scale per feature): kernel and gradient (3.k, information) and the full fit.
   Target: fit-time ratio <= 2.

Prints one Markdown table (PASS/FAIL per row with a target) and exits with status 1 if a target
is missed. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common
from _common import Table, finish, fmt_s, header, logger, timed  # noqa: E402
log = logger("sklearn_kernel")

import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from resgp.sklearn_kernel import ResNetKernel  # noqa: E402

D = 16
SEED = 0
TARGET_GRADIENT_RATIO = 2.0
TARGET_FIT_RATIO = 2.0
FULL = dict(n=2000, n_test=1000, repeats=3)
QUICK = dict(n=500, n_test=500, repeats=3)


# ----------------------------------------------------------------------------- row 1


def row_gradient(table: Table, n: int, repeats: int, check: bool) -> None:
    X = np.random.default_rng(SEED).standard_normal((n, D))
    kernels = {"resnet": ResNetKernel(), "rbf": RBF(), "resnet_bias": ResNetKernel(bias_variance=1.0)}
    log(f"row 1: warm-up, N={n}")
    for k in kernels.values():
        K, G = k(X, eval_gradient=True)
        assert K.shape == (n, n) and G.shape == (n, n, k.n_dims)
    times = {name: [] for name in kernels}
    for _ in range(repeats):  # interleaved, so slow phases of a noisy machine hit both
        for name, k in kernels.items():
            times[name].append(timed(lambda: k(X, eval_gradient=True))[0])
    a, b = statistics.median(times["resnet"]), statistics.median(times["rbf"])
    table.add(
        "1",
        f"`K(X, eval_gradient=True)`, N={n}, d={D} (median of {repeats}, interleaved)",
        f"{fmt_s(a)} (`ResNetKernel()`: 1 hyperparameter, T)",
        f"{fmt_s(b)} (1 hyperparameter)",
        f"{a / b:.2f}x",
        f"≤ {TARGET_GRADIENT_RATIO:g}x" + ("" if check else " (at N=2000, full mode only)"),
        (a / b <= TARGET_GRADIENT_RATIO) if check else None,
    )
    c = statistics.median(times["resnet_bias"])
    table.add("1.b", "the same with the bias variance tuned too",
              f"{fmt_s(c)} (`ResNetKernel(bias_variance=1.0)`: 2 hyperparameters)", fmt_s(b),
              f"{c / b:.2f}x")


# ----------------------------------------------------------------------------- row 2


class RecordingLBFGSB:
    """scikit-learn's default GP optimiser (L-BFGS-B on the log marginal likelihood, exact
    gradients), recording the iterations and objective evaluations of each run."""

    def __init__(self):
        self.runs = []

    def __call__(self, obj_func, initial_theta, bounds):
        res = scipy.optimize.minimize(obj_func, initial_theta, method="L-BFGS-B", jac=True,
                                      bounds=bounds)
        self.runs.append(dict(nit=res.nit, nfev=res.nfev, success=res.success,
                              message=str(res.message)))
        return res.x, res.fun


def friedman(n: int, n_test: int):
    X, y = make_friedman1(n_samples=n + n_test, n_features=D, noise=1.0, random_state=SEED)
    scaler = StandardScaler().fit(X[:n])
    return scaler.transform(X[:n]), y[:n], scaler.transform(X[n:]), y[n:]


def fit(base, X, y, Xte, yte):
    opt = RecordingLBFGSB()
    gp = GaussianProcessRegressor(ConstantKernel() * base + WhiteKernel(), normalize_y=True,
                                  n_restarts_optimizer=0, optimizer=opt, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a hyperparameter at its bound
        t, _ = timed(lambda: gp.fit(X, y))
    pred = gp.predict(Xte)
    r2 = 1.0 - ((yte - pred) ** 2).sum() / ((yte - yte.mean()) ** 2).sum()
    return t, opt.runs[0], r2, gp.kernel_


def row_fit(table: Table, n: int, n_test: int) -> None:
    X, y, Xte, yte = friedman(n, n_test)
    log("row 2: warm-up fits on 200 rows (JAX compilation)")
    bases = {"resnet": ResNetKernel(), "rbf": RBF(), "resnet_bias": ResNetKernel(bias_variance=1.0)}
    for base in bases.values():
        fit(base, X[:200], y[:200], Xte[:50], yte[:50])
    results = {}
    for name, base in bases.items():
        log(f"row 2: GaussianProcessRegressor fit, {name}, N={n}")
        results[name] = fit(base, X, y, Xte, yte)
        t, run, r2, kernel = results[name]
        log(f"row 2: {name}: {fmt_s(t)}, nit {run['nit']}, nfev {run['nfev']}, "
            f"R² {r2:.3f}, {kernel} ({run['message']})")
    (ta, ra, r2a, ka), (tb, rb, r2b, kb) = results["resnet"], results["rbf"]
    table.add(
        "2",
        f"`GaussianProcessRegressor` fit, `ConstantKernel()*K + WhiteKernel()`, "
        f"make_friedman1 N={n}, d={D}, 0 restarts (1 fit each)",
        fmt_s(ta),
        fmt_s(tb),
        f"{ta / tb:.2f}x",
        f"≤ {TARGET_FIT_RATIO:g}x",
        ta / tb <= TARGET_FIT_RATIO,
    )
    table.add("2.it", "L-BFGS-B iterations (`res.nit`)", str(ra["nit"]), str(rb["nit"]),
              f"{ra['nit'] / max(rb['nit'], 1):.2f}x")
    table.add("2.ev", "objective evaluations (`res.nfev`); time per evaluation",
              f"{ra['nfev']}; {fmt_s(ta / ra['nfev'])}", f"{rb['nfev']}; {fmt_s(tb / rb['nfev'])}",
              f"{(ta / ra['nfev']) / (tb / rb['nfev']):.2f}x per evaluation")
    table.add("2.r2", f"held-out R² ({n_test} test rows); fitted kernel",
              f"{r2a:.3f}; `{ka}`", f"{r2b:.3f}; `{kb}`", "—")
    tc, rc, r2c, kc = results["resnet_bias"]
    table.add("2.b", "the same fit with the bias variance tuned too (`ResNetKernel(bias_variance=1.0)`): "
              "time; iterations / evaluations; R²; fitted kernel",
              f"{fmt_s(tc)}; {rc['nit']} / {rc['nfev']}; {r2c:.3f}; `{kc}`", fmt_s(tb),
              f"{tc / tb:.2f}x")


# ----------------------------------------------------------------------------- row 3


def row_ard(table: Table, n: int, n_test: int, repeats: int) -> None:
    X, y, Xte, yte = friedman(n, n_test)
    bases = {"resnet": lambda: ResNetKernel(weight_variance=np.ones(D)),
             "rbf": lambda: RBF(np.ones(D))}
    log("row 3: warm-up (JAX compilation)")
    for make in bases.values():
        fit(make(), X[:200], y[:200], Xte[:50], yte[:50])
        make()(X, eval_gradient=True)
    times = {name: [] for name in bases}
    for _ in range(repeats):  # interleaved
        for name, make in bases.items():
            k = make()
            times[name].append(timed(lambda: k(X, eval_gradient=True))[0])
    a, b = statistics.median(times["resnet"]), statistics.median(times["rbf"])
    table.add("3.k", f"ARD: `K(X, eval_gradient=True)`, N={n}, d={D} (median of {repeats}, "
              "interleaved)", f"{fmt_s(a)} (`ResNetKernel(weight_variance=np.ones({D}))`)",
              f"{fmt_s(b)} (`RBF(np.ones({D}))`)", f"{a / b:.2f}x")
    results = {}
    for name, make in bases.items():
        log(f"row 3: ARD GaussianProcessRegressor fit, {name}, N={n}")
        results[name] = fit(make(), X, y, Xte, yte)
        t, run, r2, kernel = results[name]
        log(f"row 3: {name}: {fmt_s(t)}, nit {run['nit']}, nfev {run['nfev']}, R² {r2:.3f}, "
            f"{kernel} ({run['message']})")
    (ta, ra, r2a, ka), (tb, rb, r2b, kb) = results["resnet"], results["rbf"]
    table.add("3", f"ARD fit: `ConstantKernel()*K + WhiteKernel()`, make_friedman1 N={n}, "
              f"d={D} (5 informative features), 0 restarts (1 fit each)", fmt_s(ta), fmt_s(tb),
              f"{ta / tb:.2f}x", f"≤ {TARGET_FIT_RATIO:g}x", ta / tb <= TARGET_FIT_RATIO)
    table.add("3.ev", "ARD: iterations / objective evaluations; time per evaluation",
              f"{ra['nit']} / {ra['nfev']}; {fmt_s(ta / ra['nfev'])}",
              f"{rb['nit']} / {rb['nfev']}; {fmt_s(tb / rb['nfev'])}",
              f"{(ta / ra['nfev']) / (tb / rb['nfev']):.2f}x per evaluation")
    table.add("3.r2", "ARD: held-out R²; fitted kernel", f"{r2a:.3f}; `{ka}`",
              f"{r2b:.3f}; `{kb}`", "—")


# ----------------------------------------------------------------------------- main


NOTES = """\
Notes: row 1 on standard normal X (seed 0); ResNetKernel() is ReLU, infinite depth, \
branch_variance=1, no bias (the default: one hyperparameter, like RBF), RBF() has length_scale=1; \
rows 1.b and 2.b tune the bias variance as well (two hyperparameters: the marginal likelihood is \
flat in it, so L-BFGS-B takes more iterations). Row 2: make_friedman1(noise=1, random_state=0), X standardised with the training \
rows' scaler, normalize_y=True; both fits start from the kernels' default hyperparameters and use \
the same recording L-BFGS-B optimiser (scikit-learn's default settings). Default BLAS and XLA \
threading; timings on a shared machine are noisy, ratios are taken within one run."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=500, well under a minute")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    t_start = time.perf_counter()

    table = Table("ResNetKernel", "RBF (same run)", "Ratio")
    row_gradient(table, cfg["n"], cfg["repeats"], check=not args.quick)
    row_fit(table, cfg["n"], cfg["n_test"])
    row_ard(table, cfg["n"], cfg["n_test"], cfg["repeats"])

    return finish("sklearn_kernel", f"resgp scikit-learn kernel benchmark ({header(args.quick)})",
                  [table.markdown(), NOTES], table.failed, t_start, args.quick)



if __name__ == "__main__":
    sys.exit(main())
