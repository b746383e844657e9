#!/usr/bin/env python
"""The one compute core against scikit-learn's RBF: the targets of the core redesign.

Run from the repository root::

    .venv/bin/python benchmarks/core_engine.py           # a few minutes; writes benchmarks/results/core_engine.md
    .venv/bin/python benchmarks/core_engine.py --quick   # smaller N, under a minute

Every target is a ratio against a reference timed in the same run, interleaved (median of the
repeats, each warmed up once so that JAX compilation is not timed):

1. ReLU at infinite depth, d = 64, N in {1000, 2000, 4000, 8000}: ``resgp.resnet_nngp(X)``
   against ``RBF()(X)``; target <= 1x at every N. The ratio to the bare ``X @ X.T`` (NumPy) is
   reported too (the floor is one matrix product plus O(1) work per entry).
2. The scikit-learn kernel with its gradient, N = 2000, d = 16: ``ResNetKernel(activation=a)
   (X, eval_gradient=True)`` against ``RBF()(X, eval_gradient=True)``; target <= 3x for erf,
   GELU and tanh at infinite depth; ReLU reported (the old engine measured 1.14x).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common
from _common import ROOT, Table, finish, fmt_s, header, interleaved, logger  # noqa: E402
log = logger("core_engine")

import numpy as np  # noqa: E402
from sklearn.gaussian_process.kernels import RBF  # noqa: E402

import resgp  # noqa: E402

FULL = dict(sizes=(1000, 2000, 4000, 8000), n_grad=2000, repeats=5)
QUICK = dict(sizes=(1000, 2000), n_grad=1000, repeats=3)
TARGET_VALUE, TARGET_GRADIENT = 1.0, 3.0


def row_values(table, sizes, repeats, failed):
    rng = np.random.default_rng(0)
    for i, n in enumerate(sizes):
        X = rng.normal(size=(n, 64))
        t, t_rbf, ratio, _ = interleaved(lambda: resgp.resnet_nngp(X), lambda: RBF()(X), repeats)
        t_mm, _, _, _ = interleaved(lambda: X @ X.T, lambda: None, repeats)
        ok = ratio <= TARGET_VALUE
        if not ok:
            failed.append(f"1.{i + 1}")
        table.add(f"1.{i + 1}", f"`resnet_nngp(X)`, ReLU, N={n}, d=64 (vs `X @ X.T`: "
                  f"{t / t_mm:.1f}x)", fmt_s(t), fmt_s(t_rbf), f"{ratio:.2f}x",
                  f"<= {TARGET_VALUE:g}x", ok)
        log(f"values N={n}: {ratio:.2f}x RBF, {t / t_mm:.1f}x matmul")


def row_gradients(table, n, repeats, failed):
    X = np.random.default_rng(1).normal(size=(n, 16))
    for i, act in enumerate(("relu", "erf", "gelu", "tanh")):
        kernel = resgp.ResNetKernel(activation=act)
        t, t_rbf, ratio, _ = interleaved(lambda: kernel(X, eval_gradient=True),
                                         lambda: RBF()(X, eval_gradient=True), repeats)
        target = None if act == "relu" else TARGET_GRADIENT
        ok = None if target is None else ratio <= target
        if ok is False:
            failed.append(f"2.{i + 1}")
        table.add(f"2.{i + 1}", f"`ResNetKernel(activation={act!r})(X, eval_gradient=True)`, "
                  f"N={n}, d=16", fmt_s(t), fmt_s(t_rbf), f"{ratio:.2f}x",
                  "—" if target is None else f"<= {target:g}x", ok)
        log(f"gradient {act}: {ratio:.2f}x RBF with gradient")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller N, under a minute")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    start = time.perf_counter()
    table, failed = Table(reference="RBF (same run)"), []
    row_values(table, cfg["sizes"], cfg["repeats"], failed)
    row_gradients(table, cfg["n_grad"], cfg["repeats"], failed)
    blocks = [header(args.quick), table.markdown()]
    return finish("core_engine", "The compute core against RBF", blocks, failed, start,
                  args.quick)


if __name__ == "__main__":
    sys.exit(main())
