"""resgp.experiments.compare: the metrics, the classifier and the benchmark loop end to end
(small mode)."""

import json

import numpy as np
import pytest
from scipy.stats import norm

from resgp.experiments import compare

# ----------------------------------------------------------------------------- metrics


def test_nlpd_is_the_mean_gaussian_negative_log_density():
    rng = np.random.default_rng(0)
    y, mean = rng.normal(size=50) * 3, rng.normal(size=50)
    std = rng.uniform(0.5, 2.0, size=50)
    expected = -np.mean(norm.logpdf(y, loc=mean, scale=std))
    assert compare.nlpd(y, mean, std) == pytest.approx(expected, rel=1e-12)
    # a standard normal predictive at the target: 0.5 log(2 pi)
    assert compare.nlpd([1.0], [1.0], [1.0]) == pytest.approx(0.5 * np.log(2 * np.pi))


def test_rmse():
    assert compare.rmse([0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 1.0, -1.0]) == pytest.approx(1.0)
    assert compare.rmse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(np.sqrt(2.0))


def test_ece_of_calibrated_probabilities_is_zero():
    # in each bin the fraction correct equals the confidence exactly
    proba, y = [], []
    for conf, n in ((0.6, 10), (0.8, 10), (0.95, 20), (1.0, 4)):
        n_right = int(round(conf * n))
        for i in range(n):
            proba.append([conf, 1 - conf])
            y.append(0 if i < n_right else 1)
    assert compare.expected_calibration_error(np.array(proba), np.array(y)) == pytest.approx(
        0.0, abs=1e-12)


def test_ece_of_constant_wrong_prediction_is_its_confidence():
    proba = np.tile([0.9, 0.05, 0.05], (30, 1))
    y = np.full(30, 2)
    assert compare.expected_calibration_error(proba, y) == pytest.approx(0.9)


def test_ece_mixes_bins_by_their_weights():
    # 10 points at confidence 0.7, all right (gap 0.3); 30 at 0.55, a third right (gap 0.55-1/3)
    proba = np.array([[0.7, 0.3]] * 10 + [[0.55, 0.45]] * 30)
    y = np.array([0] * 10 + [0] * 10 + [1] * 20)
    expected = 0.25 * 0.3 + 0.75 * (0.55 - 1 / 3)
    assert compare.expected_calibration_error(proba, y) == pytest.approx(expected)


def test_log_loss_matches_sklearn():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), size=40)
    y = rng.integers(0, 3, size=40)
    assert compare.log_loss(p, y) == pytest.approx(log_loss(y, p, labels=[0, 1, 2]), rel=1e-10)


# ----------------------------------------------------------------------------- models


def _smooth_problem(n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - 0.5 * X[:, 2] + 0.05 * rng.normal(size=n)
    return X[:120], y[:120], X[120:], y[120:]


@pytest.mark.parametrize("key", ["resnet", "rbf", "mlp-L3"])
def test_gp_beats_constant_predictor_on_smooth_function(key):
    X, y, Xt, yt = _smooth_problem()
    r = compare.evaluate(compare.KERNELS[key], "regression", X, y, Xt, yt)
    baseline = compare.rmse(yt, np.full_like(yt, y.mean()))
    assert r["rmse"] < 0.25 * baseline
    # NLPD of the GP beats that of the constant Gaussian fitted to the training targets
    assert r["nlpd"] < compare.nlpd(yt, np.full_like(yt, y.mean()), np.full_like(yt, y.std()))
    assert r["fit_s"] > 0 and r["predict_s"] > 0


def test_exact_gp_classifier_on_overlapping_blobs_matches_logistic_regression():
    from sklearn.datasets import make_blobs
    from sklearn.linear_model import LogisticRegression

    X, y = make_blobs(n_samples=240, centers=3, cluster_std=1.5, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    r = compare.evaluate(compare.KERNELS["resnet"], "classification", X[:160], labels[:160],
                         X[160:], labels[160:])
    linear = LogisticRegression().fit(X[:160], y[:160]).score(X[160:], y[160:])  # 0.8625
    assert r["accuracy"] >= linear - 0.05
    assert r["log_loss"] < np.log(3) / 2  # much better than uniform probabilities
    assert 0 <= r["ece"] < 0.15


def test_exact_gp_classifier_equals_resnet_gp_classifier():
    """Same inference as resgp.estimators.ResNetGPClassifier when given its fitted kernel."""
    from sklearn.datasets import load_breast_cancer

    from resgp.estimators import ResNetGPClassifier

    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:150], y[:150]
    ref = ResNetGPClassifier(optimizer=None, branch_variance=2.0).fit(X, y)
    Xs = ref.scaler_.transform(X)
    ours = compare.ExactGPClassifier(ref.kernel_, optimizer=None).fit(Xs, y)
    assert ours.temperature_ == pytest.approx(ref.temperature_, rel=1e-6)
    np.testing.assert_allclose(ours.predict_proba(Xs[:40]), ref.predict_proba(X[:40]), rtol=1e-6,
                               atol=1e-10)
    np.testing.assert_array_equal(ours.predict(Xs), ref.predict(X))


# ----------------------------------------------------------------------------- end to end


def test_benchmark_small_mode_end_to_end(tmp_path):
    result = compare.run(tmp_path, mode="quick", datasets=["friedman1", "wine"],
                         kernels=["resnet", "rbf", "resnet-ard"], n_splits=2, max_rows=120,
                         progress=False)
    for kind in ("markdown", "json", "png"):
        assert (tmp_path / f"compare_kernels.{ {'markdown': 'md'}.get(kind, kind)}").exists()
    assert (tmp_path / "compare_kernels.png").stat().st_size > 10_000
    assert (tmp_path / "compare_kernels_ranks.png").stat().st_size > 10_000
    assert result["files"]["ranks_png"] == str(tmp_path / "compare_kernels_ranks.png")
    data = json.loads((tmp_path / "compare_kernels.json").read_text())
    assert data["config"]["n_splits"] == 2 and data["datasets"][0]["rows"] == 120
    rows = {(r["dataset"], r["kernel"]): r for r in data["results"]}
    assert set(rows) == {(d, k) for d in ("friedman1", "wine")
                         for k in ("resnet", "rbf", "resnet-ard")}
    assert data["kernels"]["resnet-ard"]["ard"] and not data["kernels"]["rbf"]["ard"]
    # ARD: one fitted weight variance per feature (friedman1: 10, wine: 13)
    for name, d in (("friedman1", 10), ("wine", 13)):
        for split in rows[(name, "resnet-ard")]["splits"]:
            assert split["kernel"].count("weight_variance=[") == 1
            assert len(split["kernel"].split("weight_variance=[")[1].split("]")[0].split(",")) == d
    rows = {key: r for key, r in rows.items() if key[1] != "resnet-ard"}
    for r in data["results"]:
        assert r["errors"] == [] and len(r["splits"]) == 2
    # friedman1 (y std ~5): a GP is far better than the constant predictor
    for k in ("resnet", "rbf"):
        s = rows[("friedman1", k)]["summary"]
        assert s["rmse"]["n"] == 2 and 0.5 < s["rmse"]["mean"] < 3.5
        vals = [x["rmse"] for x in rows[("friedman1", k)]["splits"]]
        assert s["rmse"]["mean"] == pytest.approx(np.mean(vals))
        assert s["rmse"]["se"] == pytest.approx(np.std(vals, ddof=1) / np.sqrt(2))
        w = rows[("wine", k)]["summary"]
        assert w["accuracy"]["mean"] > 0.85 and 0 <= w["ece"]["mean"] < 0.3
    md = (tmp_path / "compare_kernels.md").read_text()
    assert "| friedman1 | ResNet NNGP, L=inf |" in md and "| wine | RBF |" in md
    assert "| friedman1 | ResNet NNGP, L=inf, ARD |" in md
    assert "Neural Tangents" in md and " ± " in md
    cd = compare.critical_difference(3, 1)
    assert f"regression {cd:.2f} (3 kernels, 1 data sets)" in md


def test_critical_difference_matches_demsar_table():
    """Nemenyi's CD = q_alpha sqrt(k(k+1)/(6N)); q_0.05 from Demšar (2006), Table 5(a)."""
    for k, q in ((2, 1.960), (3, 2.343), (5, 2.728), (8, 3.031), (10, 3.164)):
        for n in (4, 6, 10):
            assert compare.critical_difference(k, n) == pytest.approx(
                q * np.sqrt(k * (k + 1) / (6 * n)), rel=1e-3)  # the table's 4 digits
    assert compare.critical_difference(8, 6, alpha=0.10) < compare.critical_difference(8, 6)


def test_full_mode_is_the_ard_comparison_on_whole_data_sets():
    """``resgp bench``: isotropic and ARD variants of four kernel families, 10 splits of the
    whole data sets; ARD kernels get one hyperparameter per feature, with the documented bounds."""
    full = compare.MODES["full"]
    assert full["n_splits"] == 10 and full["max_rows"] is None
    families = {compare.KERNELS[k].family for k in full["kernels"]}
    assert families == {"resnet", "mlp", "stationary"} and len(full["kernels"]) == 8
    assert sum(compare.KERNELS[k].ard for k in full["kernels"]) == 4
    for key in full["kernels"]:
        kernel = compare.KERNELS[key].full(7)
        family = compare.KERNELS[key].family
        scales = 7 if compare.KERNELS[key].ard else int(family == "stationary")
        shape = {"resnet": 2, "mlp": 1, "stationary": 0}[family]  # branch, bias variances
        assert kernel.theta.shape == (2 + shape + scales,), key  # + amplitude and noise
        if compare.KERNELS[key].ard:
            bounds = np.exp(kernel.bounds[-2])  # the last per-feature entry, before the noise
            expected = compare.LENGTH_SCALE_BOUNDS if family == "stationary" else compare.ARD_BOUNDS
            np.testing.assert_allclose(bounds, expected, rtol=1e-12)
    assert compare.MODES["depths"]["kernels"] == compare.DEPTH_KERNELS
    assert "cells" in full["datasets"] and "ames" in full["datasets"]


def test_datasets_load_with_documented_shapes():
    X, y, info = compare.load_dataset("diabetes")
    assert X.shape == (442, 10) and info["task"] == "regression"
    X, y, info = compare.load_dataset("digits", max_rows=100, seed=3)
    X2, y2, _ = compare.load_dataset("digits", max_rows=100, seed=3)
    assert X.shape == (100, 64) and info["rows_available"] == 1797
    np.testing.assert_array_equal(X, X2)
    for name, shape in (("concrete", (1030, 8)), ("pima", (532, 7)), ("penguins", (342, 4))):
        X, y, info = compare.load_dataset(name)
        assert X.shape == shape and np.isfinite(X).all()
    X, y, info = compare.load_dataset("cells")
    assert X.shape == (2019, 56) and info["classes"] == 2 and np.isfinite(X).all()
    X, y, _ = compare.load_dataset("ames", max_rows=50)
    assert X.shape[0] == 50 and np.isfinite(X).all() and 10 < y.mean() < 14  # log dollars


def test_report_template_is_package_data():
    from resgp.experiments.compare import report

    text = report.template()
    assert text.startswith("# {title}") and "{task_tables}" in text and "Notes: " in text


def test_python_m_resgp_help():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "resgp", "--help"], check=True,
                         capture_output=True, text=True).stdout
    assert "usage: resgp" in out
    for command in ("demo", "bench", "verify"):
        assert command in out


def test_unknown_kernel_is_refused():
    with pytest.raises(ValueError, match="unknown kernel"):
        compare.kernel_zoo(["resnet", "nope"])


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown data set"):
        compare.load_dataset("iris")


def test_benchmark_script_quick_mode(tmp_path, capsys):
    """benchmarks/compare_kernels.py (the command that regenerates the committed results)."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_kernels.py"
    main = runpy.run_path(str(script))["main"]
    assert main(["--quick", "--out", str(tmp_path), "--datasets", "diabetes", "--kernels", "rbf",
                 "resnet", "--splits", "2", "--max-rows", "150", "--no-progress"]) == 0
    data = json.loads((tmp_path / "compare_kernels.json").read_text())
    assert data["config"]["mode"] == "quick" and data["datasets"][0]["rows"] == 150
    for r in data["results"]:  # diabetes targets have std ~77: a GP explains part of it
        assert 40 < r["summary"]["rmse"]["mean"] < 75
    assert "| diabetes | RBF |" in capsys.readouterr().out


def test_interrupted_run_reports_split_counts_and_ranks_complete_data_sets_only():
    """A part-done data set is marked with its split count and left out of the mean ranks
    (kernels must be ranked on the same data sets)."""
    from resgp.experiments.compare import report

    def result(dataset, kernel, rmse, n):
        splits = [dict(rmse=rmse, nlpd=1.0, fit_s=1.0, predict_s=0.1)] * n
        return dict(dataset=dataset, task="regression", kernel=kernel, label=kernel.upper(),
                    family="stationary", summary=compare.aggregate(splits, "regression"),
                    splits=splits, errors=[])

    bench = dict(config=dict(kernels=["a", "b"], n_splits=3, test_size=0.3, seed=0,
                             max_rows=None, datasets=["x", "y"]),
                 results=[result("x", "a", 1.0, 3), result("x", "b", 2.0, 3),
                          result("y", "a", 5.0, 1), result("y", "b", 4.0, 3)],
                 interrupted=True)
    assert report.ranked_datasets(bench, "regression") == ["x"]
    assert report.ranks(bench)["regression"]["a"]["rmse"] == 1.0  # y (b better) left out
    table = report._task_table("regression", bench["results"], 3)
    assert "| y | A (1 of 3 splits) |" in table and "| y | B |" in table
    bench["interrupted"] = False  # a finished run ranks every data set with results
    assert report.ranked_datasets(bench, "regression") == ["x", "y"]


def test_figures_of_an_interrupted_run(tmp_path):
    """A kernel not fitted yet on a data set (an interrupted run) is left out of the figures."""
    splits = [dict(rmse=r, nlpd=1.0, fit_s=1.0, predict_s=0.1) for r in (1.0, 1.2)]
    bench = dict(config=dict(kernels=["a", "b"], n_splits=2, test_size=0.3, seed=0,
                             max_rows=None, datasets=["x", "y", "z"]),
                 datasets=[dict(name=n) for n in "xyz"], interrupted=True,
                 kernels={k: dict(label=k.upper(), family="stationary", ard=k == "b")
                          for k in "ab"},
                 results=[dict(dataset=d, task="regression", kernel=k, label=k.upper(),
                               family="stationary", splits=splits, errors=[],
                               summary=compare.aggregate(splits, "regression"))
                          for d, k in (("x", "a"), ("x", "b"), ("y", "a"))])
    assert compare.plot(bench, tmp_path / "p.png").stat().st_size > 10_000
    assert compare.plot_ranks(bench, tmp_path / "r.png").stat().st_size > 10_000
