#!/usr/bin/env python
"""Kernel evaluation time against N, peak memory, and NT's finite depths against the limit.

Run from the repository root::

    .venv/bin/python benchmarks/kernel_speed.py            # full, ~10 min; writes benchmarks/results/kernel_speed.{md,json,png}
    .venv/bin/python benchmarks/kernel_speed.py --quick    # small sizes, ~2 min; writes to --out (default: a temp folder)

Measured, on standard normal inputs (d=32, seed 0), the Gram matrix K(X, X) of N inputs:

1. **Time against N** (log-log plot), for
   * resgp's ResNet NNGP at infinite depth, ReLU: ``resnet_nngp(X)``, and with the gradient
     ``ResNetKernel(bias_variance=0.1)(X, eval_gradient=True)`` (the kernel and its derivatives
     with respect to log branch variance and log bias variance, as a GP hyperparameter fit needs
     them);
   * the same with a smooth activation (``activation="erf"``, infinite depth through the coupled
     ODE); recorded as "not available" where resgp raises ``NotImplementedError``;
   * Neural Tangents' analytic ``kernel_fn`` of the equivalent ResNet (``resgp.nt.resnet``) at
     depths 10, 100 and 1000, jitted and compiled ahead of time (``.lower().compile()``), 64-bit;
   * scikit-learn's ``RBF()(X)``, without and with ``eval_gradient=True``.

   Each method is warmed up at each N (JAX compiles per shape; compilation is not timed), then
   timed as the median of up to 3 runs within a few seconds. A method stops at the first N where
   one run takes longer than ``--budget`` seconds (default 20): larger N are not run.
2. **Peak memory** of one call at N=4000 (quick: 1000), each method in a subprocess of its own:
   after imports, the input and a warm-up call at that N (whose result is freed), the peak RSS
   is reset (``/proc/self/clear_refs``) and the peak during one call (VmHWM) minus the RSS before
   it is reported, against the output size N²·8 bytes (what the call must at least allocate).
   NT at depth 1000 is left out, and so is any method whose time at that N, extrapolated as N²
   from its timings, exceeds a minute.
3. **Accuracy**: NT's analytic kernel at depth L against resgp's infinite-depth limit,
   ``max|K_NT - K_inf| / max|K_inf|`` for L = 1 ... 1000 (N=200), and against resgp's own
   finite-depth kernel (the same network: rounding only).

Progress on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # neural_tangents imports TensorFlow

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common
from _common import ROOT, fmt_s, logger  # noqa: E402
log = logger("kernel_speed")

import numpy as np  # noqa: E402

import resgp  # noqa: E402
from resgp.experiments.progress import progress_bar  # noqa: E402

D = 32
SEED = 0
FULL = dict(ns=(125, 250, 500, 1000, 2000, 4000, 8000), n_mem=4000, n_acc=200,
            acc_depths=(1, 3, 10, 30, 100, 300, 1000), budget=20.0)
QUICK = dict(ns=(100, 200, 400), n_mem=1000, n_acc=50, acc_depths=(1, 10, 100), budget=5.0)
NT_DEPTHS = (10, 100, 1000)
SMOOTH = "erf"


def data(n: int, d: int = D, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


# ----------------------------------------------------------------------------- methods
# Each method: name -> (label, family, make), make(X) -> a zero-argument callable evaluating the
# kernel of X and blocking until the result is there (the first call of it is the warm-up).


def _nt_fn(depth):
    import jax
    import jax.numpy as jnp

    from resgp import nt as rnt
    from resgp._x64 import enable_x64

    kernel_fn = jax.jit(rnt.resnet(512, depth)[2], static_argnames="get")

    def make(X):
        with enable_x64():
            Xj = jnp.asarray(X)
            compiled = kernel_fn.lower(Xj, Xj, get="nngp").compile()

        def call():
            with enable_x64():
                return np.asarray(compiled(Xj, Xj).block_until_ready())

        return call

    return make


def methods() -> dict:
    from sklearn.gaussian_process.kernels import RBF

    from resgp import ResNetKernel

    out = {
        "resgp-relu": ("resgp ResNet L=inf, ReLU", "resgp", lambda X: lambda: resgp.resnet_nngp(X)),
        "resgp-relu-grad": ("resgp ResNet L=inf, ReLU, + gradient", "resgp-grad",
                            lambda X: lambda: ResNetKernel(bias_variance=0.1)(X, eval_gradient=True)),
        f"resgp-{SMOOTH}": (f"resgp ResNet L=inf, {SMOOTH}", "resgp",
                            lambda X: lambda: resgp.resnet_nngp(X, activation=SMOOTH)),
        f"resgp-{SMOOTH}-grad": (f"resgp ResNet L=inf, {SMOOTH}, + gradient", "resgp-grad",
                                 lambda X: lambda: ResNetKernel(bias_variance=0.1, activation=SMOOTH)(
                                     X, eval_gradient=True)),
    }
    for L in NT_DEPTHS:
        out[f"nt-L{L}"] = (f"NT analytic ResNet, L={L}", "nt", _nt_fn(L))
    out["rbf"] = ("sklearn RBF", "rbf", lambda X: (lambda k: lambda: k(X))(RBF()))
    out["rbf-grad"] = ("sklearn RBF, + gradient", "rbf-grad",
                       lambda X: (lambda k: lambda: k(X, eval_gradient=True))(RBF()))
    return out


# ----------------------------------------------------------------------------- 1. time vs N


def time_call(call, budget):
    """(median seconds, runs) of up to 3 runs of a warm ``call`` within ~budget/4 seconds."""
    times = []
    while True:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
        if len(times) >= 3 or sum(times) + times[-1] > budget / 4:
            return statistics.median(times), len(times)


def time_vs_n(ns, budget, progress=True, only=None) -> dict:
    table = {}
    chosen = [(k, m) for k, m in methods().items() if only is None or k in only]
    for key, (label, family, make) in progress_bar(chosen, "time vs N", progress):
        rows = []
        status = "ok"
        for n in ns:
            X = data(n)
            try:
                call = make(X)
                t0 = time.perf_counter()
                call()  # warm-up: JAX compiles for this shape
                t_first = time.perf_counter() - t0
            except NotImplementedError as err:
                status = f"not available: {err}"
                log(f"{key}: {status}")
                break
            if t_first > 2 * budget:  # one run is all there is time for
                rows.append(dict(n=n, seconds=t_first, runs=1, includes_compile=True))
                log(f"{key}: N={n} {t_first:.2f} s (first call, compile included); stop")
                break
            t, runs = time_call(call, budget)
            rows.append(dict(n=n, seconds=t, runs=runs, includes_compile=False))
            log(f"{key}: N={n} {t * 1e3:.1f} ms ({runs} runs)")
            if t > budget:
                break
        table[key] = dict(label=label, family=family, status=status, rows=rows)
    return table


# ----------------------------------------------------------------------------- 2. memory

_CHILD = textwrap.dedent(
    """
    import gc, json, os, sys, time, warnings
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, os.path.join(sys.argv[1], "benchmarks"))
    import numpy as np
    import kernel_speed as ks

    def status(field):  # bytes
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith(field)).split()[1]) * 1024

    key, n = sys.argv[2], int(sys.argv[3])
    X = ks.data(n)
    try:
        call = ks.methods()[key][2](X)
        call()  # warm-up at this N (compilation, allocator pools); its result is freed
    except NotImplementedError as err:
        print(json.dumps(dict(status="not available: " + str(err)))); sys.exit(0)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
    before = status("VmRSS:")
    t = time.perf_counter(); out = call(); t = time.perf_counter() - t
    print(json.dumps(dict(status="ok", before=before, after=status("VmHWM:"), seconds=t)))
    """
)


MEMORY_CALL_LIMIT_S = 60.0


def memory(n, keys, timings=None, progress=True) -> dict:
    """Peak memory of one call per method at N=n (subprocesses). With ``timings`` (the result of
    :func:`time_vs_n`), methods whose time at n, extrapolated as N² from their largest timed N,
    exceeds ``MEMORY_CALL_LIMIT_S`` are not run."""
    result = {}
    for key in progress_bar(keys, f"peak memory N={n}", progress):
        rows = (timings or {}).get(key, {}).get("rows")
        if rows:
            last = rows[-1]
            guess = last["seconds"] * (n / last["n"]) ** 2
            if guess > MEMORY_CALL_LIMIT_S:
                result[key] = dict(status=f"not run (about {guess:.0f} s per call at this N)")
                continue
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), key, str(n)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            result[key] = dict(status=f"failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if r["status"] == "ok":
            r["rise_bytes"] = r["after"] - r["before"]
            r["output_bytes"] = n * n * 8
            r["ratio"] = r["rise_bytes"] / r["output_bytes"]
            log(f"memory {key}: +{r['rise_bytes'] / 2**20:.0f} MiB = {r['ratio']:.2f}x output")
        result[key] = r
    return result


# ----------------------------------------------------------------------------- 3. accuracy


def accuracy(n, depths, progress=True) -> list:
    X = data(n)
    K_inf = resgp.resnet_nngp(X)
    scale = np.abs(K_inf).max()
    rows = []
    for L in progress_bar(list(depths), "NT vs limit", progress):
        K_nt = _nt_fn(L)(X)()
        K_L = resgp.resnet_nngp(X, depth=L)
        rows.append(dict(depth=L, nt_vs_limit=float(np.abs(K_nt - K_inf).max() / scale),
                         nt_vs_resgp_same_depth=float(np.abs(K_nt - K_L).max()
                                                      / np.abs(K_L).max())))
        log(f"accuracy L={L}: {rows[-1]}")
    return rows


# ----------------------------------------------------------------------------- output


def to_markdown(res) -> str:
    ns = res["config"]["ns"]
    env = res["environment"]
    lines = [
        "# resgp kernel speed",
        "",
        f"resgp {env['resgp']}, jax {env['jax']}, neural-tangents {env['nt']}, scikit-learn "
        f"{env['sklearn']}, numpy {env['numpy']}; Python {env['python']}, {env['machine']}, "
        f"{env['cpus']} CPUs; mode {res['config']['mode']}; {env['date']}; ran "
        f"{res['runtime_s']:.0f} s. Inputs standard normal, d={D}; K(X, X) of N inputs.",
        "",
    ]
    if res.get("updated"):
        up = res["updated"]
        lines += [f"Re-measured on {up['environment']['date']} (`--update`, same machine): "
                  + ", ".join(res["time"][k]["label"] for k in up["methods"]) + ".", ""]
    lines += [
        "## Time of K(X, X) against N",
        "",
        "| Method | " + " | ".join(f"N={n}" for n in ns) + " |",
        "|---|" + "---:|" * len(ns),
    ]
    for key, m in res["time"].items():
        by_n = {r["n"]: r for r in m["rows"]}
        cells = []
        for n in ns:
            r = by_n.get(n)
            cells.append("—" if r is None else fmt_s(r["seconds"]) + ("*" if r["includes_compile"]
                                                                        else ""))
        if m["status"] != "ok":
            cells = ["not available"] + [""] * (len(ns) - 1)
        lines.append(f"| {m['label']} | " + " | ".join(cells) + " |")
    lines += ["",
              f"Median of up to 3 warm runs; JAX compilation excluded; *: one first call, "
              f"compilation included; —: not run (the previous N took over "
              f"{res['config']['budget']:g} s).", ""]
    fast = res["time"]["resgp-relu"]["rows"]
    for key in (f"nt-L{L}" for L in NT_DEPTHS):
        common = {r["n"]: r["seconds"] for r in res["time"][key]["rows"]}
        both = [(r["n"], common[r["n"]] / r["seconds"]) for r in fast if r["n"] in common]
        if both:
            n, ratio = both[-1]
            lines.append(f"- {res['time'][key]['label']}: {ratio:,.0f}x the time of resgp's "
                         f"infinite-depth kernel at N={n}.")
    lines.append("")
    n = res["config"]["n_mem"]
    lines += [f"## Peak memory of one call, N={n} (output {n * n * 8 / 2**20:.0f} MiB)", "",
              "| Method | peak RSS rise | / output size |", "|---|---:|---:|"]
    for key, r in res["memory"].items():
        label = res["time"][key]["label"]
        if r.get("status") != "ok":
            lines.append(f"| {label} | {r.get('status')} | |")
        else:
            lines.append(f"| {label} | {r['rise_bytes'] / 2**20:.0f} MiB | {r['ratio']:.2f}x |")
    lines += ["", "Peak RSS during one call (VmHWM, reset just before it) minus the RSS before it, "
              "after imports, the input and a warm-up call at the same N (result freed), each "
              "method in its own subprocess; NT at depth 1000 and methods slower than a minute per call "
              "at this N not run. "
              "Gradient calls return K and dK/dθ (3 N×N arrays for the ResNet kernel, 2 for "
              "RBF): at least 3x and 2x the output.", "",
              "## Neural Tangents' finite depth against the infinite-depth limit", "",
              f"N={res['config']['n_acc']}, ReLU, branch variance 1.", "",
              "| depth L | max\\|K_NT − K_inf\\| / max\\|K_inf\\| | L × that | NT vs resgp depth=L |",
              "|---:|---:|---:|---:|"]
    for r in res["accuracy"]:
        lines.append(f"| {r['depth']} | {r['nt_vs_limit']:.2e} | "
                     f"{r['depth'] * r['nt_vs_limit']:.3f} | {r['nt_vs_resgp_same_depth']:.1e} |")
    lines += ["", "The finite-depth kernel approaches the limit at rate 1/L (constant third "
              "column); resgp's finite-depth kernel is NT's to rounding (last column).", ""]
    return "\n".join(lines)


def plot(res, path):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw=dict(width_ratios=[3, 2]))
    styles = {"resgp": "-", "resgp-grad": "--", "nt": ":", "rbf": "-", "rbf-grad": "--"}
    for i, (key, m) in enumerate(res["time"].items()):
        if not m["rows"]:
            continue
        ns = [r["n"] for r in m["rows"]]
        ts = [r["seconds"] for r in m["rows"]]
        color = ("C3" if key.startswith("resgp-relu") else "C1" if key.startswith("resgp")
                 else "C0" if key.startswith("rbf") else f"C{4 + NT_DEPTHS.index(int(key[4:]))}")
        ax.loglog(ns, ts, styles[m["family"]], marker="o", ms=4, color=color, label=m["label"])
    n = np.array(res["config"]["ns"], float)
    ax.loglog(n, 1e-8 * n**2, color="0.7", lw=0.8, label="∝ N² (reference)")
    ax.set_xticks(n, [str(int(v)) for v in n])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("N (inputs)")
    ax.set_ylabel("time of K(X, X) (s)")
    ax.set_title(f"kernel evaluation time, d={D}, {res['environment']['cpus']} CPUs", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    L = np.array([r["depth"] for r in res["accuracy"]], float)
    e = np.array([r["nt_vs_limit"] for r in res["accuracy"]])
    ax2.loglog(L, e, "o-", color="C4", label="NT analytic, depth L, vs resgp limit")
    ax2.loglog(L, e[0] * L[0] / L, color="0.7", lw=0.8, label="∝ 1/L")
    ax2.set_xlabel("depth L")
    ax2.set_ylabel("max|K_L − K_inf| / max|K_inf|")
    ax2.set_title(f"finite depth vs the limit, N={res['config']['n_acc']}", fontsize=10)
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def environment():
    import jax
    import sklearn

    try:
        from importlib.metadata import version

        nt = version("neural-tangents")
    except Exception:  # pragma: no cover
        nt = "?"
    return dict(resgp=resgp.__version__, jax=jax.__version__, nt=nt, sklearn=sklearn.__version__,
                numpy=np.__version__, python=platform.python_version(),
                machine=platform.machine(), cpus=os.cpu_count(),
                date=datetime.datetime.now().isoformat(timespec="seconds"))


def write(res, out):
    (out / "kernel_speed.json").write_text(json.dumps(res, indent=1) + "\n")
    md = to_markdown(res)
    (out / "kernel_speed.md").write_text(md)
    plot(res, out / "kernel_speed.png")
    return md


def update(out, keys) -> int:
    """Re-measure ``keys`` (time against N and memory) into an existing result; rewrite all."""
    res = json.loads((out / "kernel_speed.json").read_text())
    cfg = res["config"]
    start = time.perf_counter()
    if keys:
        unknown = set(keys) - set(methods())
        if unknown:
            raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {list(methods())}")
        timings = time_vs_n(cfg["ns"], cfg["budget"], only=keys)
        res["time"].update(timings)
        res["memory"].update(memory(cfg["n_mem"], keys, timings))
        res["updated"] = dict(methods=keys, environment=environment(),
                              runtime_s=time.perf_counter() - start)
    print(write(res, out))
    log(f"updated {out}/kernel_speed.{{md,json,png}}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--out", default=None,
                        help="output folder (default: benchmarks/results, quick: a temp folder)")
    parser.add_argument("--budget", type=float, default=None,
                        help="stop a method after the first N whose run takes longer (s)")
    parser.add_argument("--skip", nargs="*", default=[], help="parts to skip: time memory accuracy")
    parser.add_argument("--update", nargs="+", default=None, metavar="METHOD",
                        help="re-measure only these methods (e.g. resgp-erf-grad) and merge them "
                             "into OUT/kernel_speed.json; with 'none', only rewrite the table and "
                             "figure from that JSON")
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.budget is not None:
        cfg["budget"] = args.budget
    out = Path(args.out) if args.out else (
        Path(tempfile.mkdtemp(prefix="kernel_speed-")) if args.quick
        else ROOT / "benchmarks" / "results")
    out.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message=".*FanIn.*")
    if args.update:
        return update(out, [k for k in args.update if k != "none"])
    start = time.perf_counter()
    res = dict(config=dict(mode="quick" if args.quick else "full", **cfg), environment=environment())
    res["time"] = {} if "time" in args.skip else time_vs_n(cfg["ns"], cfg["budget"])
    keys = [k for k in methods() if k != "nt-L1000"]
    res["memory"] = {} if "memory" in args.skip else memory(cfg["n_mem"], keys, res["time"])
    res["accuracy"] = [] if "accuracy" in args.skip else accuracy(cfg["n_acc"], cfg["acc_depths"])
    res["runtime_s"] = time.perf_counter() - start
    res["config"]["ns"] = list(cfg["ns"])
    print(write(res, out))
    log(f"wrote {out}/kernel_speed.{{md,json,png}} ({res['runtime_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
