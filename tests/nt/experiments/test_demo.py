"""The README's main job (``resgp demo``) runs end to end and its numbers say what it claims;
``resgp demo --check-nt`` checks resgp's kernels against Neural Tangents'."""

import io
import json

import numpy as np
import pytest

from resgp import cli


def test_demo_fits_the_kernels_and_writes_table_and_figure(tmp_path):
    out = io.StringIO()
    result = cli.demo(tmp_path, out=out, progress=False, n_splits=2,
                      kernels=["resnet", "rbf"])
    text = out.getvalue()
    assert "| diabetes | ResNet NNGP, L=inf |" in text and "| breast_cancer | RBF |" in text
    for name in ("compare_kernels.md", "compare_kernels.json", "compare_kernels.png"):
        assert (tmp_path / name).stat().st_size > 1000
    data = json.loads((tmp_path / "compare_kernels.json").read_text())
    rows = {(r["dataset"], r["kernel"]): r["summary"] for r in data["results"]}
    assert len(rows) == 4
    y_std = 77.0  # std of the diabetes target: a GP must explain a good part of it
    for k in ("resnet", "rbf"):
        assert 45 < rows[("diabetes", k)]["rmse"]["mean"] < 0.85 * y_std
        assert rows[("breast_cancer", k)]["accuracy"]["mean"] > 0.93
        assert rows[("breast_cancer", k)]["log_loss"]["mean"] < 0.2
    # the ResNet GP is competitive with the RBF GP (within 5% RMSE, 2 points of accuracy)
    assert rows[("diabetes", "resnet")]["rmse"]["mean"] < 1.05 * rows[("diabetes", "rbf")]["rmse"]["mean"]
    assert (rows[("breast_cancer", "resnet")]["accuracy"]["mean"]
            > rows[("breast_cancer", "rbf")]["accuracy"]["mean"] - 0.02)
    assert result["elapsed_s"] < 120


def test_check_nt_small_depths():
    out = io.StringIO()
    result = cli.check_nt(depths=(4, 16), out=out)
    text = out.getvalue()
    assert "diabetes: N=442, d=10" in text and "| 16 |" in text
    for row in result["rows"]:
        assert row["resgp_vs_nt"] < 1e-12  # same network, same kernel
    gaps = [row["scaled_gap"] for row in result["rows"]]
    assert 0.5 < gaps[0] / gaps[1] < 1.5  # L * |K_L - K_inf| roughly constant: the O(1/L) rate


def test_cli_dispatches_demo_and_check_nt(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "check_nt", lambda depths: seen.setdefault("depths", depths))
    monkeypatch.setattr(cli, "demo", lambda out, n_splits: seen.setdefault("demo", (out, n_splits)))
    assert cli.main(["demo", "--check-nt", "--depths", "3", "7"]) == 0
    assert seen["depths"] == (3, 7)
    assert cli.main(["demo", "--out", "somewhere", "--splits", "2"]) == 0
    assert seen["demo"] == ("somewhere", 2)


def test_cli_bench_quick_passes_options(monkeypatch, tmp_path):
    from resgp.experiments import compare

    seen = {}

    def fake_run(out, mode, **kw):
        seen.update(out=out, mode=mode, **kw)
        return dict(markdown="table", runtime_s=1.0, files={"markdown": "x.md"},
                    interrupted=False)

    monkeypatch.setattr(compare, "run", fake_run)
    assert cli.main(["bench", "--quick", "--out", str(tmp_path), "--kernels", "rbf",
                     "--splits", "3"]) == 0
    assert seen["mode"] == "quick" and seen["kernels"] == ["rbf"] and seen["n_splits"] == 3
    assert seen["max_rows"] is None and seen["datasets"] is None and seen["resume"] is False
