#!/usr/bin/env python
"""Sparse variational GP training in GPJax: ``resgp.gpjax.ResNetKernel`` against GPJax's ``RBF``.

Run from the repository root::

    .venv/bin/python benchmarks/svgp.py            # full: N=100,000, a few minutes; writes benchmarks/results/svgp.md
    .venv/bin/python benchmarks/svgp.py --quick    # N=10,000, under a minute; writes nothing

Setting (identical for both kernels): a smooth function of d=8 standard-normal inputs plus noise
(std 0.1), ``WhitenedVariationalGaussian`` with M=128 inducing inputs drawn from the data,
Gaussian likelihood, constant mean, minibatches of B=1,000 drawn without replacement, Adam
(lr 0.02) on every parameter (inducing inputs, variational distribution, kernel and likelihood
hyperparameters) through ``gpx.objectives.elbo``. One epoch = N // B steps = one compiled
``lax.scan``; GPJax's default ``RBF()`` (one lengthscale) against ``ResNetKernel()``.

Each kernel runs in its own subprocess (so peak memory is its own), three times (once in
quick mode), interleaved (ResNet, RBF, ResNet, RBF, ...). A run compiles the epoch (timed
apart), runs one untimed warm-up epoch, then times 3 (quick: 2) epochs one by one. The machine
this was written on is shared, so the table's time is the fastest epoch over all runs (least
disturbed by other jobs, as ``timeit`` does) and the median is given beside it. Peak memory is the child's resident-set
high-water mark (``VmHWM`` from ``/proc/self/status``, per process image; falls back to
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` where /proc is missing, which may include the
parent's RSS at fork). ``tracemalloc`` does not see XLA's buffers and JAX's CPU device reports
no memory statistics, hence RSS. "Baseline" is the high-water mark after imports, data and
model set-up, before compiling; "training" is the peak minus that baseline. Held-out RMSE
(5,000 points) and the ELBO per point after the last epoch are for information: the ResNet
kernel has no lengthscale, so the two models are not the same model.

Prints one Markdown table (ratios ResNet / RBF); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _common
from _common import ROOT, fmt_s, logger  # noqa: E402
log = logger("svgp")
RESULTS = ROOT / "benchmarks" / "results" / "svgp.md"

D, INDUCING, BATCH, N_TEST, SEED, LR = 8, 128, 1_000, 5_000, 0, 0.02
FULL = dict(n=100_000, epochs=3, runs=3)
QUICK = dict(n=10_000, epochs=2, runs=1)
KERNELS = ("resnet", "rbf")
LABELS = {"resnet": "`resgp.gpjax.ResNetKernel()`", "rbf": "`gpx.kernels.RBF()`"}


# ----------------------------------------------------------------------------- child


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def child(kernel_name: str, n: int, epochs: int) -> dict:
    sys.path.insert(0, str(ROOT))  # benchmark the checkout, installed or not
    import jax

    jax.config.update("jax_enable_x64", True)
    import equinox as eqx
    import gpjax as gpx
    import jax.numpy as jnp
    import jax.random as jr
    import numpy as np
    import optax as ox

    from resgp.gpjax import ResNetKernel

    rng = np.random.default_rng(SEED)
    X_all = rng.normal(size=(n + N_TEST, D))
    f = (
        np.sin(X_all[:, 0])
        + 0.5 * np.cos(2.0 * X_all[:, 1])
        + 0.3 * X_all[:, 2] * X_all[:, 3]
        + 0.2 * X_all[:, 4:].sum(axis=1)
        + 0.3 * np.tanh(X_all[:, 5] * X_all[:, 6])
    )
    y_all = f + 0.1 * rng.normal(size=n + N_TEST)
    X, y = jnp.asarray(X_all[:n]), jnp.asarray(y_all[:n, None])
    X_test, y_test = jnp.asarray(X_all[n:]), y_all[n:]
    Z = X[rng.choice(n, INDUCING, replace=False)]

    kernel = ResNetKernel() if kernel_name == "resnet" else gpx.kernels.RBF()
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(), kernel=kernel)
    model = prior * gpx.likelihoods.Gaussian(obs_stddev=0.3)
    q = gpx.variational_families.WhitenedVariationalGaussian(model=model, inducing_inputs=Z)
    params, static = eqx.partition(q, eqx.is_array)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype), params)  # strong types
    optim = ox.adam(LR)
    opt_state = optim.init(params)
    steps = n // BATCH

    def epoch(params, opt_state, X, y, key):
        batches = jr.permutation(key, n)[: steps * BATCH].reshape(steps, BATCH)

        def step(carry, idx):
            params, opt_state = carry
            batch = gpx.Dataset(X=X[idx], y=y[idx], n_total=n)
            value, grads = jax.value_and_grad(
                lambda p: -gpx.objectives.elbo(eqx.combine(p, static), batch)
            )(params)
            updates, opt_state = optim.update(grads, opt_state, params)
            return (ox.apply_updates(params, updates), opt_state), -value

        (params, opt_state), elbos = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, jnp.mean(elbos)

    keys = jr.split(jr.key(1), epochs + 1)
    baseline = peak_rss_mib()
    t = time.perf_counter()
    compiled = jax.jit(epoch).lower(params, opt_state, X, y, keys[0]).compile()
    compile_s = time.perf_counter() - t

    t = time.perf_counter()
    params, opt_state, elbo = compiled(params, opt_state, X, y, keys[0])
    elbo.block_until_ready()
    warmup_s = time.perf_counter() - t
    epoch_s = []
    for key in keys[1:]:
        t = time.perf_counter()
        params, opt_state, elbo = compiled(params, opt_state, X, y, key)
        elbo.block_until_ready()
        epoch_s.append(time.perf_counter() - t)

    q = eqx.combine(params, static)
    mean = eqx.filter_jit(lambda q, x: q.condition(None)(x, covariance="diagonal").mean)(q, X_test)
    rmse = float(np.sqrt(np.mean((np.asarray(mean).ravel() - y_test) ** 2)))
    return dict(
        kernel=kernel_name,
        n=n,
        steps=steps,
        compile_s=compile_s,
        warmup_s=warmup_s,
        epoch_s=epoch_s,
        baseline_mib=baseline,
        peak_mib=peak_rss_mib(),
        rmse=rmse,
        elbo_per_point=float(elbo) / n,
        y_std=float(y_test.std()),
    )


# ----------------------------------------------------------------------------- parent


def run_child(kernel: str, n: int, epochs: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kernel, "--n", str(n), "--epochs", str(epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise SystemExit(f"child {kernel} failed with status {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def versions() -> str:
    from importlib.metadata import version

    parts = [f"resgp {version('resgp')}"] if _installed("resgp") else []
    parts += [f"{p} {version(p)}" for p in ("jax", "gpjax", "optax", "numpy") if _installed(p)]
    return ", ".join(parts)


def _installed(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=10,000, one run per kernel, no file")
    parser.add_argument("--child", choices=KERNELS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.epochs)))
        return 0

    cfg = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    start = time.perf_counter()
    load_before = _load()
    results = {k: [] for k in KERNELS}
    for r in range(cfg["runs"]):
        for k in KERNELS:
            log(f"run {r + 1}/{cfg['runs']}: {k}, N={cfg['n']:,}")
            res = run_child(k, cfg["n"], cfg["epochs"])
            log(
                f"  compile {res['compile_s']:.1f} s, warm-up epoch {res['warmup_s']:.2f} s, epochs "
                + ", ".join(f"{s:.2f}" for s in res["epoch_s"])
                + f" s, peak RSS {res['peak_mib']:.0f} MiB, RMSE {res['rmse']:.4f}"
            )
            results[k].append(res)

    def agg(k):
        rs = results[k]
        return dict(
            epoch=min(s for r in rs for s in r["epoch_s"]),
            epoch_median=statistics.median(s for r in rs for s in r["epoch_s"]),
            compile=min(r["compile_s"] for r in rs),
            peak=max(r["peak_mib"] for r in rs),
            baseline=max(r["baseline_mib"] for r in rs),
            train=max(r["peak_mib"] - r["baseline_mib"] for r in rs),
            rmse=rs[-1]["rmse"],
            elbo=rs[-1]["elbo_per_point"],
            steps=rs[0]["steps"],
        )

    a, b = agg("resnet"), agg("rbf")
    n_epochs = cfg["runs"] * cfg["epochs"]
    rows = [
        ("time per epoch (fastest)", fmt_s(a["epoch"]), fmt_s(b["epoch"]), f"{a['epoch'] / b['epoch']:.2f}x",
         f"fastest of {n_epochs} epochs of {a['steps']} steps; per step {a['epoch'] / a['steps'] * 1e3:.1f} "
         f"vs {b['epoch'] / b['steps'] * 1e3:.1f} ms"),
        ("time per epoch (median)", fmt_s(a["epoch_median"]), fmt_s(b["epoch_median"]),
         f"{a['epoch_median'] / b['epoch_median']:.2f}x", "sensitive to other jobs on the machine"),
        ("compile (one epoch function)", fmt_s(a["compile"]), fmt_s(b["compile"]),
         f"{a['compile'] / b['compile']:.2f}x", "jit lower + compile, fastest run"),
        ("peak RSS", f"{a['peak']:.0f} MiB", f"{b['peak']:.0f} MiB", f"{a['peak'] / b['peak']:.2f}x",
         "child's VmHWM, max over runs"),
        ("peak RSS − baseline (training)", f"{a['train']:.0f} MiB", f"{b['train']:.0f} MiB",
         f"{a['train'] / max(b['train'], 1e-9):.2f}x",
         f"baseline (imports, data, model) {a['baseline']:.0f} / {b['baseline']:.0f} MiB"),
        ("held-out RMSE (info)", f"{a['rmse']:.4f}", f"{b['rmse']:.4f}", f"{a['rmse'] / b['rmse']:.2f}x",
         f"after {1 + cfg['epochs']} epochs, 5,000 points; noise std 0.1, y std {results['rbf'][-1]['y_std']:.3f}"),
        ("ELBO / N, last epoch (info)", f"{a['elbo']:+.4f}", f"{b['elbo']:+.4f}", "—",
         "mean minibatch ELBO per point"),
    ]
    header = (
        f"# SVGP benchmark: ResNet kernel vs RBF in GPJax ({versions()}; Python "
        f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; mode {mode}; "
        f"{datetime.datetime.now().isoformat(timespec='seconds')})"
    )
    lines = [
        header,
        "",
        f"N = {cfg['n']:,} training points, d = {D}, M = {INDUCING} inducing inputs, batch {BATCH:,}, "
        f"Adam lr {LR}, float64.",
        "",
        f"| What | {LABELS['resnet']} | {LABELS['rbf']} | Ratio ResNet / RBF | Notes |",
        "|---|---|---|---|---|",
        *[f"| {w} | {x} | {y} | {r} | {note} |" for w, x, y, r, note in rows],
        "",
        f"Runs interleaved (ResNet, RBF) × {cfg['runs']}, each in its own subprocess; "
        f"{cfg['epochs']} timed epochs per run after one untimed warm-up epoch; load average "
        f"before / after: {load_before} / {_load()}. "
        f"Benchmark ran {time.perf_counter() - start:.0f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)
        log(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
