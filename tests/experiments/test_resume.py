"""resgp bench: results written as they come, Ctrl-C keeps them, --resume does not redo them,
bad arguments are argparse errors (issue 13)."""

from __future__ import annotations

import json

import pytest

from resgp import cli
from resgp.experiments.compare import runner

SETTINGS = dict(mode="quick", datasets=["diabetes"], kernels=["rbf", "matern52"], n_splits=2,
                max_rows=60, progress=False)


def test_interrupted_bench_resumes_without_redoing(tmp_path, monkeypatch):
    real = runner.evaluate
    calls = []

    def interrupt_at_third(*args, **kwargs):
        calls.append(args[0].key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", interrupt_at_third)
    first = runner.run(tmp_path, **SETTINGS)
    assert first["interrupted"] and len(calls) == 3
    lines = (tmp_path / "compare_kernels.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2  # the header and the two finished fits
    assert "Interrupted" in (tmp_path / "compare_kernels.md").read_text()
    assert sum(len(r["splits"]) for r in first["results"]) == 2

    calls.clear()
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: (calls.append(a[0].key), real(*a, **k))[1])
    second = runner.run(tmp_path, resume=True, **SETTINGS)
    assert not second["interrupted"] and second["resumed"] == 2 and len(calls) == 2
    assert sum(len(r["splits"]) for r in second["results"]) == 4
    done = [json.loads(x)["result"] for x in (tmp_path / "compare_kernels.jsonl").read_text()
            .splitlines()[1:]]
    assert len(done) == 4
    first_fit = first["results"][0]["splits"][0]
    assert second["results"][0]["splits"][0] == first_fit  # taken from the journal, as it was

    with pytest.raises(ValueError, match="another configuration"):
        runner.run(tmp_path, resume=True, **dict(SETTINGS, n_splits=3))


@pytest.mark.parametrize("argv, message", [
    (["bench", "--splits", "0"], "must be >= 1"),
    (["bench", "--max-rows", "abc"], "not an integer"),
    (["bench", "--datasets", "nope"], "invalid choice"),
    (["bench", "--kernels", "nope"], "invalid choice"),
    (["demo", "--splits", "-1"], "must be >= 1"),
    (["bench", "--quick", "--depths"], "not allowed with argument"),
])
def test_bad_cli_arguments_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_unusable_out_is_refused_before_any_fit(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: pytest.fail("fitted"))
    target = tmp_path / "a-file"
    target.write_text("")
    for command in ("bench", "demo"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--out", str(target)])
        assert exit_.value.code == 2 and "is a file" in capsys.readouterr().err


def test_verify_journal_resumes_the_unfinished_experiments(tmp_path, monkeypatch):
    from resgp.experiments.verify import driver

    calls = []

    def fake(name, fail=False):
        def run(*args, **kwargs):
            calls.append(name)
            if fail:
                raise KeyboardInterrupt
            return {"name": name, "args": len(args)}
        return run

    names = ["covariance_grid", "nt_monte_carlo_check", "commutativity", "correlation_vs_depth",
             "gaussianity", "finite_width_sde", "ntk_grid", "finite_width_activations",
             "norm_regime"]
    for name in names:
        monkeypatch.setattr(driver, name, fake(name, fail=name == "gaussianity"))
    cfg = {k: {} for k in ("grid", "mc_check", "correlation", "gaussianity", "sde", "ntk",
                              "sde_phi", "norms")}
    timed = lambda name, fn: fn()  # noqa: E731
    settings = dict(quick=True, seed=3)
    with pytest.raises(KeyboardInterrupt):
        driver._experiments(cfg, 3, False, timed, driver.Journal(tmp_path, settings, False))
    assert calls == names[:5]
    assert sorted(p.stem for p in tmp_path.glob("*.pkl")) == sorted(
        ["covariance", "nt_monte_carlo", "commutativity", "correlation"])

    calls.clear()
    monkeypatch.setattr(driver, "gaussianity", fake("gaussianity"))
    res = driver._experiments(cfg, 3, False, timed, driver.Journal(tmp_path, settings, True))
    assert calls == ["gaussianity", "finite_width_sde", "ntk_grid", "finite_width_activations",
                     "norm_regime"]
    assert res["covariance"] == {"name": "covariance_grid", "args": 0}
    with pytest.raises(ValueError, match="other settings"):
        driver.Journal(tmp_path, dict(quick=False, seed=3), True)
    fresh = driver.Journal(tmp_path, dict(quick=False, seed=3), False)  # without --resume: anew
    assert fresh.done == {} and not list(tmp_path.glob("*.pkl"))


def test_cli_bench_modes_and_stems(monkeypatch, tmp_path):
    """``resgp bench`` runs the full (ARD) comparison into compare_kernels.*, ``--depths`` the
    finite-depth one into compare_depths.*, ``--quick`` the small one."""
    from resgp.experiments import compare

    seen = []

    def fake_benchmark(datasets, kernels, **kw):  # the real run() around an empty benchmark
        seen.append(kernels)
        return dict(config=dict(datasets=[], kernels=list(kernels), n_splits=kw["n_splits"],
                                test_size=0.3, max_rows=kw["max_rows"], seed=0),
                    datasets=[], results=[], environment=runner._environment(),
                    kernels={k: dict(label=k, family=compare.KERNELS[k].family, ard=False)
                             for k in kernels},
                    runtime_s=0.0, resumed=0, interrupted=False, note="")

    monkeypatch.setattr(runner, "run_benchmark", fake_benchmark)
    for flags, stem in (([], "compare_kernels"), (["--depths"], "compare_depths"),
                        (["--quick"], "compare_kernels")):
        out = tmp_path / (flags[0][2:] if flags else "full")
        assert cli.main(["bench", "--out", str(out), *flags]) == 0
        assert json.loads((out / f"{stem}.json").read_text())["config"]["mode"] == \
            (flags[0][2:] if flags else "full")
    assert seen == [runner.MODES[m]["kernels"] for m in ("full", "depths", "quick")]


def test_worker_processes_give_the_same_fits(tmp_path):
    """``jobs=2`` fits in two spawned processes and collects the results in split order: every
    metric and fitted kernel equals the in-process run's (only the times differ)."""
    kw = dict(datasets=["wine"], kernels=["rbf", "resnet"], n_splits=2, max_rows=60,
              progress=False)
    one = runner.run_benchmark(**kw, jobs=1)
    two = runner.run_benchmark(**kw, jobs=2, journal=tmp_path / "j.jsonl")
    assert len(two["results"]) == 2
    for a, b in zip(one["results"], two["results"]):
        assert (a["dataset"], a["kernel"]) == (b["dataset"], b["kernel"])
        for sa, sb in zip(a["splits"], b["splits"]):
            assert sa["kernel"] == sb["kernel"]
            for metric in ("accuracy", "log_loss", "ece"):
                assert sa[metric] == pytest.approx(sb[metric], rel=1e-9, abs=1e-12)
    assert len((tmp_path / "j.jsonl").read_text().splitlines()) == 1 + 4
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        runner.run_benchmark(**kw, jobs=0)
