"""Helpers shared by the benchmark scripts: logging, time formatting, Markdown tables, the
environment line, and one interleaved timer.

Importing this module puts the repository root on ``sys.path`` (the scripts benchmark the
checkout, installed or not). A script imports it with::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import ROOT, ...  # noqa: E402
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["ROOT", "logger", "fmt_s", "timed", "interleaved", "markdown_table", "Table", "header",
           "finish"]


def logger(name: str):
    """``log(msg)``: print ``[name HH:MM:SS] msg`` to stderr, flushed."""

    def log(msg: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


def fmt_s(t) -> str:
    """Seconds as text: ``12.3 s``, ``1.23 s``, ``12.3 ms``, ``123 µs``; ``—`` for None."""
    if t is None:
        return "—"
    if t >= 10:
        return f"{t:.1f} s"
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.0f} µs"


def timed(fn):
    """``(seconds, result)`` of one call of ``fn()``."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fn, reference, repeats: int, stat=statistics.median):
    """Time ``fn`` against ``reference``: each is called once to warm up (JAX compilation is not
    timed), then the two alternate ``repeats`` times, so that the slow phases of a shared machine
    hit both. Returns ``(t_fn, t_reference, t_fn / t_reference, fn's last output)`` with the times
    summarised by ``stat`` (the median; ``min`` for the most stable estimate of the best case)."""
    out = fn()
    reference()
    times, ref_times = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        t1 = time.perf_counter()
        reference()
        ref_times.append(time.perf_counter() - t1)
        times.append(t1 - t0)
    t_fn, t_ref = stat(times), stat(ref_times)
    return t_fn, t_ref, t_fn / t_ref, out


def markdown_table(head, rows) -> str:
    """A Markdown table: the header cells ``head``, then one line per row (cells as text)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Table:
    """Rows of a PASS/FAIL table: number, what, measured, reference, ratio, target, result."""

    def __init__(self, measured="Measured", reference="Reference (same run)",
                 ratio="Ratio / error"):
        self.head = ("#", "What", measured, reference, ratio, "Target", "Result")
        self.rows = []
        self.failed = []

    def add(self, num, what, measured, reference, ratio, target="—", ok=None):
        result = "info" if ok is None else ("PASS" if ok else "FAIL")
        if ok is False:
            self.failed.append(f"{num}: {what}")
        self.rows.append((num, what, measured, reference, ratio, target, result))

    def markdown(self) -> str:
        return markdown_table(self.head, self.rows)


def header(quick: bool, neural_tangents: bool = False) -> str:
    """One line: versions (resgp, jax, optionally neural-tangents, scikit-learn, numpy), Python,
    machine, CPUs, mode and date."""
    import jax
    import numpy as np
    import sklearn

    import resgp

    nt = ""
    if neural_tangents:
        try:
            from importlib.metadata import version

            nt = f"neural-tangents {version('neural-tangents')}, "
        except Exception:  # pragma: no cover
            nt = "neural-tangents ?, "
    return (
        f"resgp {resgp.__version__}, jax {jax.__version__}, {nt}scikit-learn {sklearn.__version__}, "
        f"numpy {np.__version__}; Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; mode {'quick' if quick else 'full'}; "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}"
    )


def finish(name: str, title: str, blocks, failed, t_start: float, quick: bool, sep="; ") -> int:
    """Print the report (``title``, the ``blocks`` separated by blank lines, and the verdict)
    and, unless ``quick``, write it to ``benchmarks/results/<name>.md``. Returns the exit
    status: 1 if a target was missed (``failed`` lists them), else 0."""
    verdict = "all targets met" if not failed else "MISSED: " + sep.join(failed)
    text = "\n\n".join([title, *blocks,
                        f"{verdict} (benchmark ran {time.perf_counter() - t_start:.0f} s)"])
    print(text)
    if not quick:
        out = ROOT / "benchmarks" / "results" / f"{name}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("# " + text + "\n")
        logger(name)(f"wrote {out.relative_to(ROOT)}")
    return 1 if failed else 0
