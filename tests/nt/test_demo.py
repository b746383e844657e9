"""The README's main job runs end to end and its numbers say what it claims."""

import io

from resgp import cli


def test_demo_small_depths():
    out = io.StringIO()
    result = cli.demo(depths=(4, 16), out=out)
    text = out.getvalue()
    assert "diabetes: N=442, d=10" in text and "| 16 |" in text
    for row in result["rows"]:
        assert row["resgp_vs_nt"] < 1e-12  # same network, same kernel
    gaps = [row["scaled_gap"] for row in result["rows"]]
    assert 0.5 < gaps[0] / gaps[1] < 1.5  # L * |K_L - K_inf| roughly constant: the O(1/L) rate


def test_cli_parses_demo_depths(monkeypatch):
    seen = {}
    monkeypatch.setattr(cli, "demo", lambda depths: seen.setdefault("depths", depths))
    assert cli.main(["demo", "--depths", "3", "7"]) == 0
    assert seen["depths"] == (3, 7)
