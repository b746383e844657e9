"""The ``resgp`` command line.

``resgp demo [--out DIR] [--check-nt]``: the README's main job. On built-in data (scikit-learn's
diabetes regression and breast-cancer classification, 5 random splits each) it fits Gaussian
processes with the ResNet NNGP kernel at infinite depth and with the usual kernels (MLP NNGP,
RBF, Matern 5/2, RationalQuadratic), prints the comparison table (a progress bar on stderr while
it runs) and writes it with a figure and JSON to DIR. ``--check-nt`` instead checks resgp's
kernels against Neural Tangents' analytic kernels of finite-depth ResNets (:func:`check_nt`).
``resgp bench [--quick | --depths] [--out DIR] [--resume]``: the kernel comparison
(:mod:`resgp.experiments.compare`): isotropic and ARD kernels on whole data sets, 10 splits,
mean ranks; ``--depths`` the infinite- against finite-depth comparison.
``resgp verify [--quick] [--out DIR] [--seed S] [--only EXPERIMENT ...]``: random finite
networks against the kernels (the experiments of docs/theory.md, "Finite width, infinite depth"), written as a Markdown report, PNG figures and JSON
(:mod:`resgp.experiments.verify`).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def check_nt(depths=(10, 100, 1000), out=sys.stdout) -> dict:
    """Kernel of the diabetes inputs: resgp's limit, resgp's finite depths, and NT's at those depths.

    Returns the numbers it prints: per depth, the gap between resgp and NT at equal depth
    (should be ~1e-15), each one's distance to the limit (should shrink like 1/L), and timings.
    """
    import jax
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    import resgp
    from resgp import nt as rnt
    from resgp.core.x64 import enable_x64

    X = StandardScaler().fit_transform(load_diabetes().data)
    resgp.resnet_nngp(X[:8])  # compile once, outside the timings
    K_inf, t_inf = _timed(resgp.resnet_nngp, X)
    print(f"diabetes: N={X.shape[0]}, d={X.shape[1]}; ResNet NNGP kernel at infinite depth "
          f"(ReLU, branch variance 1): {t_inf * 1e3:.1f} ms", file=out)
    print(f"  symmetric: {bool(np.array_equal(K_inf, K_inf.T))}, smallest eigenvalue / largest: "
          f"{np.linalg.eigvalsh(K_inf)[0] / np.linalg.eigvalsh(K_inf)[-1]:.2e}", file=out)
    print("\n| depth L | resgp vs NT (rel.) | L x |K_L - K_inf| (rel.) | resgp time | NT time |",
          file=out)
    print("|---:|---:|---:|---:|---:|", file=out)
    rows = []
    for L in depths:
        K_L, t_ours = _timed(resgp.resnet_nngp, X, depth=L)
        kernel_fn = jax.jit(rnt.resnet(512, L)[2], static_argnames="get")
        with enable_x64():
            K_nt, t_nt = _timed(lambda: np.asarray(kernel_fn(X, None, "nngp")))
        row = dict(depth=L, resgp_vs_nt=_rel(K_L, K_nt), scaled_gap=L * _rel(K_L, K_inf),
                   t_resgp=t_ours, t_nt=t_nt)
        rows.append(row)
        print(f"| {L} | {row['resgp_vs_nt']:.1e} | {row['scaled_gap']:.4f} | "
              f"{t_ours:.3f} s | {t_nt:.3f} s |", file=out)
    print("\nresgp's finite-depth kernel matches Neural Tangents to rounding, and the finite-depth "
          "kernels approach the limit at the O(1/L) rate (constant third column).", file=out)
    return dict(t_limit=t_inf, rows=rows)


def demo(out_dir="resgp-demo", out=sys.stdout, progress=True, **overrides) -> dict:
    """The main job: GPs with the ResNet NNGP and the usual kernels on built-in data.

    Runs :func:`resgp.experiments.compare.run` in its "demo" mode (diabetes and breast_cancer,
    5 random 70/30 splits; keyword arguments such as ``n_splits``, ``kernels``, ``datasets``,
    ``max_rows`` override it), prints the Markdown table to ``out`` and writes
    ``compare_kernels.{md,json,png}`` into ``out_dir``. Returns the results.
    """
    start = time.perf_counter()
    from .experiments import compare

    print("resgp demo: Gaussian processes with the infinite-depth ResNet NNGP kernel and the usual "
          "kernels on scikit-learn's diabetes (regression) and breast_cancer (classification) "
          "data; fitting (progress on stderr) ...", file=out, flush=True)
    result = compare.run(out_dir, mode="demo", stem="compare_kernels", progress=progress,
                         title="resgp demo: kernel comparison", **overrides)
    print(result["markdown"], file=out)
    elapsed = time.perf_counter() - start
    print(f"Written: {', '.join(result['files'].values())} ({elapsed:.0f} s). Full benchmark: "
          f"`resgp bench`; Neural Tangents check: `resgp demo --check-nt`.", file=out)
    result["elapsed_s"] = elapsed
    return result


def _at_least(low):
    """An argparse type: an integer >= ``low`` (argparse reports anything else, rc 2)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = f"integer >= {low}"
    return parse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="resgp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo", help="GPs with the ResNet NNGP and the usual kernels on built-in data")
    p_demo.add_argument("--out", default="resgp-demo",
                        help="folder for the table, JSON and figure (default: %(default)s)")
    p_demo.add_argument("--splits", type=_at_least(1), default=None,
                        help="random train/test splits per data set (default: 5)")
    p_demo.add_argument("--check-nt", action="store_true",
                        help="instead: resgp's kernels against Neural Tangents' analytic kernels "
                             "of finite-depth ResNets")
    p_demo.add_argument("--depths", type=_at_least(1), nargs="+", default=[10, 100, 1000],
                        help="depths for --check-nt (default: 10 100 1000)")
    p_bench = sub.add_parser(
        "bench", help="kernel comparison on regression and classification data: table, JSON, "
                      "figure")
    mode = p_bench.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="5 kernels, 2 splits, at most 300 rows per data set (~1.5 minutes) "
                           "instead of the full run (8 kernels, isotropic and ARD; 10 splits "
                           "of the whole data sets: hours on 2 cores, resumable)")
    mode.add_argument("--depths", action="store_true",
                      help="instead: infinite against finite depth (= Neural Tangents' "
                           "kernels) and MLP depths, 10 kernels, 5 splits, at most 600 rows "
                           "(~21 minutes); writes compare_depths.{md,json,png}")
    p_bench.add_argument("--out", default="resgp-bench",
                         help="folder for compare_kernels.{md,json,png} and the rank figure "
                              "compare_kernels_ranks.png (default: %(default)s)")
    from .experiments.compare.data import DATASETS
    from .experiments.compare.models import KERNELS

    p_bench.add_argument("--splits", type=_at_least(1), default=None,
                         help="random splits per data set")
    p_bench.add_argument("--max-rows", type=_at_least(20), default=None,
                         help="subsample larger data sets to this many rows (>= 20)")
    p_bench.add_argument("--datasets", nargs="+", default=None, choices=list(DATASETS),
                         metavar="DATASET",
                         help=f"data sets (default: all): {' '.join(DATASETS)}")
    p_bench.add_argument("--kernels", nargs="+", default=None, choices=list(KERNELS),
                         metavar="KERNEL",
                         help=f"kernel keys (default: all of the mode): {' '.join(KERNELS)}")
    p_bench.add_argument("--seed", type=_at_least(0), default=None,
                         help="random seed (default: 0)")
    p_bench.add_argument("--jobs", type=_at_least(1), default=None,
                         help="fits run at once, each in its own process on one BLAS thread "
                              "(default: 1; fit times are then per process)")
    p_bench.add_argument("--resume", action="store_true",
                         help="take the fits an interrupted run of the same settings wrote to "
                              "OUT/compare_kernels.jsonl instead of redoing them")
    p_verify = sub.add_parser(
        "verify", help="random finite networks against the kernels: report, figures, JSON")
    p_verify.add_argument("--quick", action="store_true",
                          help="small grids and few samples (about 1.5 minutes on 2 cores) "
                               "instead of the full run (about 13 minutes)")
    p_verify.add_argument("--out", default="resgp-verification",
                          help="folder for the figures (PNG), results.json and the report "
                               "(default: %(default)s)")
    p_verify.add_argument("--seed", type=_at_least(0), default=0,
                          help="random seed (default: 0)")
    p_verify.add_argument("--resume", action="store_true",
                          help="take the experiments an interrupted run of the same settings "
                               "left in OUT/journal instead of running them again")
    p_verify.add_argument("--report", default=None,
                          help="path of the Markdown report (default: OUT/verification.md)")
    p_verify.add_argument("--only", nargs="+", default=None, metavar="EXPERIMENT",
                          choices=["covariance", "nt_monte_carlo", "commutativity", "correlation",
                                   "gaussianity", "sde", "ntk", "sde_phi", "norms"],
                          help="run only these experiments (e.g. ntk); the others are taken "
                               "from OUT/journal if an earlier run of the same settings left "
                               "them there, and the report holds the sections of what is there")
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.check_nt:
            check_nt(tuple(args.depths))
        else:
            from .experiments import compare

            try:
                compare.check_out(args.out)
            except ValueError as exc:
                p_demo.error(str(exc))
            demo(args.out, n_splits=args.splits)
    elif args.command == "bench":
        from .experiments import compare

        try:
            compare.check_out(args.out)
            mode = "quick" if args.quick else "depths" if args.depths else "full"
            result = compare.run(args.out, mode=mode, n_splits=args.splits,
                                 max_rows=args.max_rows, datasets=args.datasets,
                                 kernels=args.kernels, seed=args.seed, resume=args.resume,
                                 jobs=args.jobs)
        except ValueError as exc:  # --out unusable, or --resume on other settings
            p_bench.error(str(exc))
        print(result["markdown"])
        print(f"resgp bench: {result['runtime_s']:.0f} s; written {', '.join(result['files'].values())}")
        if result["interrupted"]:
            print("resgp bench: interrupted; the tables hold the finished fits, `--resume` "
                  "completes them", file=sys.stderr)
            return 130
    elif args.command == "verify":
        from .experiments import compare, verify

        try:
            compare.check_out(args.out)
            result = verify.run(args.out, quick=args.quick, seed=args.seed, report=args.report,
                                resume=args.resume, **({"only": args.only} if args.only else {}))
        except ValueError as exc:  # --out unusable, or --resume on other settings
            p_verify.error(str(exc))
        except KeyboardInterrupt as exc:
            print(exc, file=sys.stderr)
            return 130
        print(f"resgp verify: {result['runtime_s']:.0f} s; report {result['files']['report']}, "
              f"figures and results.json in {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
