"""`make test` runs the suite in several pytest processes: none of the test files is left out."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_test_covers_every_test_file():
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    paths = re.findall(r"tests/\S+", target)
    covered = set()
    for p in paths:
        path = ROOT / p
        covered |= {path} if path.is_file() else set(path.rglob("test_*.py"))
    every = set((ROOT / "tests").rglob("test_*.py"))
    assert every - covered == set(), sorted(str(p.relative_to(ROOT)) for p in every - covered)
