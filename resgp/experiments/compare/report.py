"""The kernel comparison as Markdown: ``report_template.md`` (package data) filled with the
tables (mean ± standard error over the splits, best mean in bold) and the mean ranks."""

from __future__ import annotations

import math
import re
from importlib import resources

import numpy as np
from scipy.stats import rankdata

from .metrics import ECE_BINS, METRICS, TIMES
from .models import ARD_BOUNDS, LENGTH_SCALE_BOUNDS

__all__ = ["fmt_mean_se", "fmt_s", "ranks", "ranked_datasets", "critical_difference",
           "to_markdown", "template"]


def template() -> str:
    """The comparison's Markdown template, read as package data."""
    return resources.files(__package__).joinpath("report_template.md").read_text(encoding="utf-8")


def fmt_mean_se(x, se=None):
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


def fmt_s(t):
    if t is None:
        return "failed"
    return f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.1f} s"


def ranked_datasets(bench: dict, task: str) -> list:
    """The data sets of ``task`` that the ranks count: those with results of every kernel (of
    all splits, when the run was interrupted: a part-done data set is left out)."""
    keys = set(bench["config"]["kernels"])
    want = bench["config"]["n_splits"] if bench.get("interrupted") else 1
    names = []
    for name in dict.fromkeys(r["dataset"] for r in bench["results"] if r["task"] == task):
        done = {r["kernel"] for r in bench["results"] if r["dataset"] == name
                and len(r["splits"]) >= want}
        if done >= keys:
            names.append(name)
    return sorted(names)


def ranks(bench: dict) -> dict:
    """Mean rank of each kernel over the data sets of each task (:func:`ranked_datasets`), per
    metric (1 = best)."""
    out = {}
    for task, metrics in METRICS.items():
        rows = [r for r in bench["results"] if r["task"] == task]
        names = ranked_datasets(bench, task)
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


def critical_difference(n_kernels: int, n_datasets: int, alpha: float = 0.05) -> float:
    r"""Nemenyi's critical difference of mean ranks (Demšar 2006, JMLR 7, eq. 5).

    :math:`CD = q_\alpha \sqrt{k(k+1) / (6N)}` for k kernels ranked on N data sets, with
    :math:`q_\alpha` the studentized range quantile of k means at infinite degrees of freedom
    over :math:`\sqrt 2` (3.031 for k = 8 at alpha = 0.05). Two kernels whose mean ranks differ
    by more than CD differ significantly at level alpha.
    """
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, n_kernels, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(n_kernels * (n_kernels + 1) / (6 * n_datasets)))


def _dataset_list(bench):
    return "; ".join(
        f"{d['name']} ({d['source']}; {d['rows']} rows"
        + (f" of {d['rows_available']}" if d["rows"] < d["rows_available"] else "")
        + f", {d['features']} features" + (f", {d['classes']} classes" if "classes" in d else "")
        + ")"
        for d in bench["datasets"])


def _best(rows, metrics):
    """The best mean of each (data set, metric)."""
    best = {}
    for r in rows:
        for m, _, better in metrics:
            v = r["summary"][m]["mean"]
            if v is None:
                continue
            b = best.get((r["dataset"], m))
            if b is None or (v < b if better == "min" else v > b):
                best[(r["dataset"], m)] = v
    return best


def _task_table(task, rows, n_splits=None):
    metrics = METRICS[task]
    lines = [f"## {task.capitalize()}", "",
             "| Data | Kernel | " + " | ".join(h for _, h, _ in metrics) + " | Fit | Predict |",
             "|---|---|" + "---:|" * (len(metrics) + 2)]
    best = _best(rows, metrics)
    for r in rows:
        s = r["summary"]
        cells = []
        for m, _, _ in metrics:
            text = fmt_mean_se(s[m]["mean"], s[m]["se"])
            if s[m]["mean"] is not None and s[m]["mean"] == best.get((r["dataset"], m)):
                text = f"**{text}**"
            cells.append(text)
        cells += [fmt_s(s[t]["mean"]) for t, _ in TIMES]
        done = s[metrics[0][0]]["n"]
        label = r["label"] + (f" ({done} of {n_splits} splits)"
                              if n_splits is not None and done < n_splits else "")
        lines.append(f"| {r['dataset']} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rank_table(bench):
    rk = ranks(bench)
    if not rk:
        return ""
    lines = ["## Mean rank over the data sets (1 = best)", "",
             "Data sets ranked: " + "; ".join(f"{t} {', '.join(ranked_datasets(bench, t))}"
                                              for t in rk) + ".", "",
             "| Kernel | " + " | ".join(
                 f"{h} ({t[:5]}.)" for t in rk for _, h, _ in METRICS[t]) + " |",
             "|---|" + "---:|" * sum(len(METRICS[t]) for t in rk)]
    for key in bench["config"]["kernels"]:
        cells = [f"{rk[t][key][m]:.1f}" if m in rk[t].get(key, {}) else "-"
                 for t in rk for m, _, _ in METRICS[t]]
        lines.append(f"| {bench['kernels'][key]['label']} | " + " | ".join(cells) + " |")
    k = len(bench["config"]["kernels"])
    counts = {t: len(ranked_datasets(bench, t)) for t in rk}
    if k > 1:
        lines += ["", "Nemenyi critical difference of the mean ranks at alpha = 0.05 (Demšar 2006): "
                  + "; ".join(f"{t} {critical_difference(k, n):.2f} ({k} kernels, {n} data sets)"
                              for t, n in counts.items()) + "."]
    return "\n".join(lines)


def _failures(bench):
    errors = [(r["dataset"], r["kernel"], e) for r in bench["results"] for e in r["errors"]]
    if not errors:
        return ""
    return "\n".join(["Failures:", ""] + [f"- {d} / {k}: {e}" for d, k, e in errors])


def to_markdown(bench: dict, title="resgp kernel comparison") -> str:
    """The results as Markdown: one table per task (mean ± standard error over the splits,
    best mean per data set and metric in bold), the mean ranks, and the notes."""
    by_task = {}
    for r in bench["results"]:
        by_task.setdefault(r["task"], []).append(r)
    tables = [_task_table(task, by_task[task], bench["config"]["n_splits"])
              for task in ("regression", "classification") if by_task.get(task)]
    cfg = bench["config"]
    text = template().format(
        title=title, env=bench["environment"], cfg=cfg, train_share=1 - cfg["test_size"],
        runtime_s=bench["runtime_s"], datasets=_dataset_list(bench),
        jobs=("one fit" if bench.get("jobs", 1) == 1
              else f"{bench['jobs']} fits (worker processes)"),
        rows_text=("whole data sets" if cfg["max_rows"] is None
                   else f"at most {cfg['max_rows']} rows per data set"),
        ard_note=(f" ARD variants have one weight variance (ResNet, MLP; bounds "
                  f"{ARD_BOUNDS[0]:g} to {ARD_BOUNDS[1]:g}, starting at the isotropic value) or "
                  f"one length scale (RBF, Matérn; bounds {LENGTH_SCALE_BOUNDS[0]:g} to "
                  f"{LENGTH_SCALE_BOUNDS[1]:g}, starting at 1) per feature."
                  if any(k.get("ard") for k in bench["kernels"].values()) else ""),
        task_tables="\n\n".join(tables), rank_table=_rank_table(bench), ece_bins=ECE_BINS,
        note=bench["note"], failures=_failures(bench))
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"
