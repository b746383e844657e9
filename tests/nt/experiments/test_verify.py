"""The verification suite: random finite networks (Neural Tangents) agree with resgp's kernels."""

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import resgp
from resgp import cli
from resgp.experiments import verify

X = verify.fixed_inputs()
IU = np.triu_indices(X.shape[0])  # the 10 distinct entries of a 4 x 4 kernel


def test_mc_covariance_within_standard_errors_of_kernel():
    """n = 256, L = 32: the Monte-Carlo covariance of NT networks is within 4 standard errors of
    the infinite-width kernel at depth 32, and of the limit up to the exact O(1/L) depth gap."""
    n, L = 256, 32
    K, K_L = resgp.resnet_nngp(X), resgp.resnet_nngp(X, depth=L)
    st = verify.covariance_stats(verify.sample_nt(X, n, L, 64, seed=1), K, K_depth=K_L)
    se = st["se"][IU]
    # the standard errors are small enough for the comparison to mean something
    assert se.max() < 0.03 * np.abs(K).max()
    assert 0.002 < st["noise"] < 0.03
    assert np.all(np.abs(st["mean"] - K_L)[IU] <= 4 * se)
    # the deterministic depth gap |q_L - q_T| is O(1/L): it halves when L doubles ...
    gap = np.abs(K_L - K)
    gap_2L = np.abs(resgp.resnet_nngp(X, depth=2 * L) - K)
    assert 1.8 < np.linalg.norm(gap) / np.linalg.norm(gap_2L) < 2.2
    assert np.linalg.norm(gap) / np.linalg.norm(K) < 0.2 / L
    # ... and bounds what separates the MC estimate from the limit beyond its noise
    assert np.all(np.abs(st["mean"] - K)[IU] <= 4 * se + gap[IU])


def test_error_decreases_with_width_not_with_depth():
    widths, depths, nets = (16, 64, 256), (4, 16), 96  # heavy tails at n = 16: not fewer
    K = resgp.resnet_nngp(X)
    res = {(n, L): verify.covariance_point(X, n, L, nets, sampler="nt", seed=100 + 10 * i + j, K=K)
           for i, n in enumerate(widths) for j, L in enumerate(depths)}

    def tol(a, b):  # two combined standard errors
        return 2 * np.hypot(a["rel_err_se"], b["rel_err_se"])

    for L in depths:
        for n_small, n_big in zip(widths, widths[1:]):
            a, b = res[n_small, L], res[n_big, L]
            assert b["rel_err"] <= a["rel_err"] + tol(a, b), (n_small, n_big, L)
        assert res[widths[-1], L]["rel_err"] < res[widths[0], L]["rel_err"]
        # one network's empirical kernel concentrates like 1/sqrt(n): ratio sqrt(256/16) = 4
        ratio = res[widths[0], L]["per_net_err"] / res[widths[-1], L]["per_net_err"]
        assert 3.0 < ratio < 5.3, (L, ratio)
    for n in widths:
        a, b = res[n, depths[0]], res[n, depths[1]]
        assert b["rel_err"] <= a["rel_err"] + tol(a, b), n


def test_projected_sampler_has_the_networks_law():
    """The fast sampler (exact conditional law of each block) against NT's apply_fn."""
    n, L = 32, 8
    K = resgp.resnet_nngp(X)
    a = verify.covariance_stats(verify.sample_projected(X, n, L, 256, seed=5), K)
    b = verify.covariance_stats(verify.sample_nt(X, n, L, 256, seed=6), K)
    assert verify.max_z(a["mean"], a["se"], b["mean"], b["se"]) < 4
    x = X[:1]
    for arch in ("resnet", "mlp"):
        ya = verify.sample_projected(x, 8, 16, 3000, arch=arch, seed=7)[:, 0, 0]
        yb = verify.sample_nt(x, 8, 16, 3000, arch=arch, seed=8)[:, 0, 0]
        assert stats.ks_2samp(ya, yb).pvalue > 1e-3, arch


def test_resnet_closer_to_gaussian_than_mlp():
    n, L, M = 16, 32, 2000
    x = verify.pair_inputs()[:1]
    y_res = verify.sample_nt(x, n, L, M, seed=3)[:, 0, 0]
    y_mlp = verify.sample_nt(x, n, L, M, arch="mlp", seed=4)[:, 0, 0]
    ks_res = stats.kstest(y_res, stats.norm(scale=np.sqrt(resgp.resnet_nngp(x)[0, 0])).cdf).statistic
    ks_mlp = stats.kstest(y_mlp, stats.norm(scale=np.sqrt(resgp.mlp_nngp(x, depth=L)[0, 0])).cdf).statistic
    assert ks_res < ks_mlp
    assert ks_res < 0.06 and ks_mlp > 0.15


def test_sde_solver_width_one_exact_law():
    """Width 1: the diffusion is frozen below 0 and a geometric Brownian motion above."""
    y_sde = verify.simulate_sde(1, 4000, 256, seed=11)[:, 0]
    exact = verify.sample_width1_exact(4000, seed=12)
    assert stats.ks_2samp(y_sde, exact).pvalue > 1e-3
    assert stats.kstest(exact, stats.norm(scale=np.exp(0.25)).cdf).statistic > 0.1  # not Gaussian


def test_cli_verify_quick_writes_report(tmp_path):
    out = tmp_path / "verification"
    assert cli.main(["verify", "--quick", "--out", str(out), "--seed", "1"]) == 0
    report = (out / "verification.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["commutativity.png", "covariance.png", "finite_width_activations.png",
                    "finite_width_sde.png", "gaussianity.png", "joint_histogram.png", "ntk.png",
                    "post_activation_norms.png"]
    for name in pngs:
        assert f"]({name})" in report  # embedded with relative links
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True and results["seed"] == 1
    for key in ("covariance", "nt_monte_carlo", "commutativity", "correlation", "gaussianity",
                "sde", "ntk", "sde_phi", "norms"):
        assert key in results
    assert len(results["covariance"]["rows"]) == 9
    assert results["nt_monte_carlo"]["max_z"] < 4
    assert len(results["ntk"]["results"]["erf"]["rows"]) == 9
    assert len(results["sde_phi"]["results"]["erf"]["rows"]) == 8
    assert [r["initial_drift"] < 0 for r in results["norms"]["rows"]] == [True] * 3 + [False] * 5
    for section in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7."):
        assert section in report


def test_cli_verify_arguments(monkeypatch, tmp_path):
    seen = {}

    def fake_run(outdir, quick=False, seed=0, *, report=None, progress=True, resume=False,
                 only=None):
        seen.update(outdir=outdir, quick=quick, seed=seed, report=report, resume=resume,
                    only=only)
        return dict(runtime_s=0.0, files=dict(report=str(tmp_path / "r.md")))

    monkeypatch.setattr(verify, "run", fake_run)
    monkeypatch.chdir(tmp_path)  # --out is created (and checked) before the run
    assert cli.main(["verify", "--out", "somewhere", "--seed", "7", "--report", "r.md"]) == 0
    assert seen == dict(outdir="somewhere", quick=False, seed=7, report="r.md", resume=False,
                        only=None)
    assert cli.main(["verify", "--out", "somewhere", "--resume"]) == 0 and seen["resume"]
    assert cli.main(["verify", "--quick", "--only", "ntk", "sde"]) == 0
    assert seen["only"] == ["ntk", "sde"] and seen["quick"]
    with pytest.raises(SystemExit):
        cli.main(["verify", "--only", "nope"])


def test_import_resgp_does_not_import_the_experiments():
    code = ("import sys, resgp; bad = [m for m in ('resgp.experiments', "
            "'resgp.experiments.verify', 'resgp.experiments.compare', 'neural_tangents', "
            "'matplotlib', 'tqdm') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_report_template_is_package_data():
    text = verify.report.template()
    assert text.startswith("# Verification: random finite ResNets")
    assert "{summary_covariance}" in text and "## 4. Finite width" in text


def test_samplers_reject_unknown_architecture():
    with pytest.raises(ValueError, match="arch"):
        verify.sample_projected(X, 4, 2, 2, arch="cnn")
