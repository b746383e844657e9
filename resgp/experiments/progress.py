"""A progress bar on stderr for long loops: tqdm when it is installed, else a one-line fallback.

Shared by :mod:`resgp.experiments.verify`, :mod:`resgp.experiments.compare` and the benchmarks;
``import resgp`` does not import it.
"""

from __future__ import annotations

import sys
import time


class _Bar:
    """Minimal stand-in for ``tqdm``: ``desc [####......] 12/40 1m02s <postfix>`` on stderr."""

    def __init__(self, iterable, desc, total, leave):
        self.iterable, self.desc, self.leave = iterable, desc, leave
        try:
            self.total = len(iterable) if total is None else total
        except TypeError:
            self.total = None
        self.n, self.postfix, self.start = 0, "", time.perf_counter()

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text
        if refresh:
            self._draw()

    def _draw(self, end=""):
        elapsed = time.perf_counter() - self.start
        clock = f"{int(elapsed // 60)}m{int(elapsed % 60):02d}s"
        if self.total:
            filled = int(20 * self.n / self.total)
            bar = f"[{'#' * filled}{'.' * (20 - filled)}] {self.n}/{self.total}"
        else:
            bar = f"{self.n}"
        sys.stderr.write(f"\r{self.desc} {bar} {clock} {self.postfix}"[:120].ljust(120) + end)
        sys.stderr.flush()

    def __iter__(self):
        self._draw()
        for item in self.iterable:
            yield item
            self.n += 1
            self._draw()
        self._draw("\n" if self.leave else "\r")

    def close(self):
        pass


def progress_bar(iterable, desc, enabled, total=None, leave=False):
    """``iterable`` wrapped in a progress bar on stderr (tqdm if importable), or unchanged when
    ``enabled`` is false. The bar has ``set_postfix_str`` either way."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is normally installed
        return _Bar(iterable, desc, total, leave)
    return tqdm(iterable, desc=desc, total=total, leave=leave, dynamic_ncols=True,
                file=sys.stderr)
