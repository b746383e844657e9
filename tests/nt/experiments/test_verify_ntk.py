"""Section 5 of the verification suite: the empirical NTK of finite ResNets against resnet_ntk."""

import numpy as np
import pytest
from scipy import stats

import resgp
from resgp.experiments import verify
from resgp.experiments.verify import experiments, sampling

X = verify.fixed_inputs()
IU = np.triu_indices(X.shape[0])  # the 10 distinct entries of a 4 x 4 kernel


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_nt_empirical_ntk_within_4_standard_errors_of_resnet_ntk(activation):
    """NT's empirical_ntk_fn on resgp.nt.resnet(64, 8)'s apply_fn: the mean over 64 random
    initialisations is within 4 standard errors of resnet_ntk(depth=8) (NT's analytic NTK of
    that network), entry by entry, with standard errors small enough to mean something."""
    n, L, N = 64, 8, 64
    K_L = resgp.resnet_ntk(X, depth=L, activation=activation)
    C = sampling.sample_ntk_nt(X, n, L, N, activation=activation, seed=21)
    st = verify.kernel_stats(C, K_L, K_depth=K_L)
    se = st["se"][IU]
    assert 0.001 < st["noise"] < 0.03
    assert se.max() < 0.03 * np.abs(K_L).max()
    assert np.all(np.abs(st["mean"] - K_L)[IU] <= 4 * se), st["z_depth"]
    # one network's NTK is already close to the kernel (it concentrates, unlike Y Y^T / n)
    assert st["per_net_err"] < 0.25


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_projected_ntk_within_4_standard_errors_of_resnet_ntk(activation):
    """The projected sampler at (n, L) = (128, 16), 160 networks: within 4 se of
    resnet_ntk(depth=16); the depth gap to the limit is resolved and of order 1/L."""
    n, L, N = 128, 16, 160
    K, K_L = (resgp.resnet_ntk(X, activation=activation),
              resgp.resnet_ntk(X, depth=L, activation=activation))
    st = experiments.ntk_point(X, n, L, N, activation=activation, seed=22, K=K)
    se = st["se"][IU]
    assert st["noise"] < 0.01
    assert np.all(np.abs(st["mean"] - K_L)[IU] <= 4 * se), st["z_depth"]
    gap = np.linalg.norm(K_L - K) / np.linalg.norm(K)
    assert 0.05 / L < gap < 0.5 / L
    assert abs(st["rel_err"] - gap) < 4 * st["rel_err_se"] + st["noise"]


def test_projected_ntk_sampler_has_the_networks_law():
    """With k = n output neurons the projected sampler's NTK is NT's empirical NTK in law:
    means agree (z-scores) and one entry's distribution agrees (two-sample KS)."""
    n, L, N = 16, 4, 320
    a = sampling.sample_ntk_projected(X, n, L, N, n_out=n, seed=23)
    b = sampling.sample_ntk_nt(X, n, L, N, seed=24)
    sa = verify.kernel_stats(a, resgp.resnet_ntk(X))
    sb = verify.kernel_stats(b, resgp.resnet_ntk(X))
    assert verify.max_z(sa["mean"], sa["se"], sb["mean"], sb["se"]) < 4
    for p, q in [(0, 0), (0, 1), (2, 3)]:
        assert stats.ks_2samp(a[:, p, q], b[:, p, q]).pvalue > 1e-3, (p, q)
    # fewer output neurons: same mean, larger spread
    c = sampling.sample_ntk_projected(X, n, L, N, n_out=1, seed=25)
    sc = verify.kernel_stats(c, resgp.resnet_ntk(X))
    assert verify.max_z(sa["mean"], sa["se"], sc["mean"], sc["se"]) < 4
    assert sc["per_net_err"] > sa["per_net_err"]


def test_ntk_error_decreases_with_width():
    """One network's empirical NTK concentrates like 1/sqrt(n) (ratio sqrt(256/16) = 4) at
    L = 8 and 32; the pooled error against resnet_ntk(depth=L) does not grow with n."""
    widths, depths, N = (16, 64, 256), (8, 32), 96
    for act in ("relu", "erf"):
        K = resgp.resnet_ntk(X, activation=act)
        res = {(n, L): experiments.ntk_point(X, n, L, N, activation=act, K=K,
                                             seed=300 + 10 * i + j)
               for i, n in enumerate(widths) for j, L in enumerate(depths)}
        for L in depths:
            errs = [res[n, L]["per_net_err"] for n in widths]
            assert errs[0] > errs[1] > errs[2], (act, L, errs)
            assert 3.0 < errs[0] / errs[2] < 5.3, (act, L, errs)
            a, b = res[widths[0], L], res[widths[-1], L]
            assert b["rel_err_depth"] <= a["rel_err_depth"] + 2 * np.hypot(a["noise"], b["noise"])


def test_ntk_grid_report_section(monkeypatch, tmp_path):
    """run(only=['ntk']) on a tiny grid: the journal, results.json, ntk.png and a report
    holding section 5 only; the rates and paths are there."""
    tiny = dict(widths=(8, 32), depths=(2, 8), n_nets=16, n_out=2, activations=("relu", "erf"),
                nt_budget=2 ** 7, nt_nets=8)
    monkeypatch.setitem(experiments.CONFIGS["quick"], "ntk", tiny)
    res = verify.run(tmp_path, quick=True, seed=3, only=["ntk"], progress=False)
    report = (tmp_path / "verification.md").read_text()
    assert "## 5. The NTK" in report and "## 1." not in report and "--only ntk" in report
    assert "](ntk.png)" in report and (tmp_path / "ntk.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "journal").glob("*.pkl")) == ["ntk.pkl"]
    ntk = res["ntk"]
    for act in ("relu", "erf"):
        r = ntk["results"][act]
        assert len(r["rows"]) == 4 and sum("nt" in row for row in r["rows"]) == 1  # L n^2 <= 128
        assert r["rates"]["gap_depth_exponent"] == pytest.approx(-1, abs=0.2)
        assert r["rates"]["per_net_width_exponent"] < -0.2
        assert r["nt_analytic_rel_diff"] < 1e-4
        assert [p["width"] for p in r["paths"]["n_first"]] == [8, 32]
    with pytest.raises(ValueError, match="unknown experiments"):
        verify.run(tmp_path, quick=True, only=["ntk", "nope"], progress=False)
