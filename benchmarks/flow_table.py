#!/usr/bin/env python
"""The tabulated flow map (resgp.core.flow_table) at N = 2000, d = 16: time against RBF, error against the ODE.

Run from the repository root::

    .venv/bin/python benchmarks/flow_table.py           # full, about a minute, writes benchmarks/results/flow_table.md
    .venv/bin/python benchmarks/flow_table.py --quick   # N = 500, prints only

For erf, GELU and tanh, ``resgp.resnet_nngp(X, activation=...)`` at infinite depth (depth=None,
weight_variance=1, no bias, so the input covariances are ``q12 = X X^T / d``; the table of
resgp.core.flow_table built and evaluated with tol = max(rtol, atol) = 1e-10, the diagonal
replaced by the 1-D diagonal flow map of resgp.core.diagonal; all inside the timed call) is
timed against scikit-learn's ``RBF()(X)`` on the same data in the same run, the two calls
alternating (each warmed up once so that JAX compilation is not timed; the minimum of
``REPEATS`` calls each: the machine is shared). The NTK (``resgp.resnet_ntk``) is timed the same
way, and so is the table build alone (``resgp.core.flow_table.tabulate``, NNGP only; its
series are compressed lazily, at their first evaluation, so this is the grid solve and the
Chebyshev coefficients). Accuracy: ``max|K - K_ref| / max|K_ref|`` over the first ``SUBSET``
rows, with ``K_ref`` the per-pair ODE path (:func:`resgp.resnet_limit`, resgp.core.ode) at rtol
1e-12, atol 1e-14. Target: time <= 10 x RBF.

The former column "NNGP ratio, diagonal='table'" (the table's own value at rho = 1 on the
diagonal instead of the diagonal flow) is gone: that option no longer exists, the diagonal is
always resgp.core.diagonal.diagonal(activation, T, q, ntk=...).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common
from _common import ROOT, interleaved  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.gaussian_process.kernels import RBF  # noqa: E402

import resgp  # noqa: E402
from resgp.activations import get_activation  # noqa: E402
from resgp.core import flow_table  # noqa: E402

D = 16
SEED = 0
SUBSET = 300
REPEATS = 7
TARGET_RATIO = 10.0
VALUE = (("value", 1.0),)  # the kernel's own series (not a derivative) in FlowTable.series


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 500, no results file")
    args = parser.parse_args()
    n = 500 if args.quick else 2000
    X = np.random.default_rng(SEED).normal(size=(n, D))
    rows = []
    failed = False
    for name in ("erf", "gelu", "tanh"):
        print(f"{name} ...", file=sys.stderr, flush=True)
        act = get_activation(name)

        def table_path(ntk=False):
            # depth=None, weight_variance=1, bias 0: q12 = X X^T / d, T = 1, the table path
            return (resgp.resnet_ntk if ntk else resgp.resnet_nngp)(X, activation=act)

        def rbf():
            return RBF()(X)

        t, t_rbf, _, K = interleaved(table_path, rbf, REPEATS, stat=min)
        t_ntk, t_rbf_ntk, _, theta = interleaved(lambda: table_path(ntk=True), rbf, REPEATS,
                                                 stat=min)
        t_tab, t_tab_ref, _, _ = interleaved(
            lambda: flow_table.tabulate(np.diag(X @ X.T / D).copy(), T=1.0, activation=act), rbf,
            REPEATS, stat=min)
        q12 = X @ X.T / D
        q = np.diag(q12).copy()
        table = flow_table.tabulate(q, T=1.0, activation=act, ntk=True)
        for output in ("nngp", "ntk"):
            table.series(output, VALUE)  # compress: fills info["terms"], info["degree"]
        sub = slice(0, min(SUBSET, n))
        # (q11_T, q22_T, q12_T, theta_T), NTK started at Theta_0 = q_0 as in resnet_ntk
        ref = resgp.resnet_limit(q[sub], q, q12[sub], q12[sub], activation=act,
                                 rtol=1e-12, atol=1e-14)
        err = np.abs(K[sub] - ref[2]).max() / np.abs(ref[2]).max()
        err_ntk = np.abs(theta[sub] - ref[3]).max() / np.abs(ref[3]).max()
        ok = t / t_rbf <= TARGET_RATIO
        failed |= not ok
        info = dict(table.info)
        info["terms"] = {output: table.info["terms"][f"{output}:{VALUE}"]
                         for output in ("nngp", "ntk")}
        rows.append((name, t, t_rbf, t_ntk, t_rbf_ntk, err, err_ntk, info, ok, t_tab / t_tab_ref))

    lines = [
        f"# Infinite-depth kernels from the tabulated flow map (N={n}, d={D})",
        "",
        f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores (shared, timings "
        f"noisy), python {platform.python_version()}. `resgp.resnet_nngp(X)` / `resgp.resnet_ntk(X)` "
        "at depth=None (the table of `resgp.core.flow_table` with tol = max(rtol, atol) = 1e-10, "
        "the diagonal from `resgp.core.diagonal`), T = 1, X standard normal, "
        "q12 = X X^T / d (no bias); RBF timed in the same run, alternating with each "
        f"measurement; minima of {REPEATS} warm calls each. Error: max |K - K_ref| / max |K_ref| over the first "
        f"{min(SUBSET, n)} rows, K_ref = `resgp.resnet_limit` (per-pair ODE, `resgp.core.ode`) "
        "at rtol 1e-12, atol 1e-14. The former column diagonal='table' is gone (no such option).",
        "",
        "| activation | NNGP time (ms) | RBF (ms) | ratio | NNGP error | NTK time (ms) | ratio | "
        "NTK error | nodes n_s x n_rho (NNGP+NTK table) | terms NNGP / NTK | table build / RBF | "
        "target <= 10x |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t, t_rbf, t_ntk, t_rbf_ntk, err, err_ntk, info, ok, build in rows:
        lines.append(
            f"| {name} | {1e3 * t:.0f} | {1e3 * t_rbf:.1f} | {t / t_rbf:.1f} | {err:.1e} | "
            f"{1e3 * t_ntk:.0f} | {t_ntk / t_rbf_ntk:.1f} | {err_ntk:.1e} | "
            f"{info['n_s']} x {info['n_rho']} | {info['terms']['nngp']} / {info['terms']['ntk']} "
            f"| {build:.1f} | {'PASS' if ok else 'FAIL'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        out = ROOT / "benchmarks" / "results" / "flow_table.md"
        previous = out.read_text() if out.exists() else ""
        notes = previous[previous.index("\n## "):] if "\n## " in previous else ""
        out.write_text(text + notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
