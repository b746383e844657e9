"""The verification report: ``report_template.md`` (package data) filled from the results dict.

The template holds the report's fixed prose as Markdown with :meth:`str.format` fields
(``{grid[n_nets]}``, ``{mc[max_z]:.2f}``, ...); this module computes the tables, the optional
paragraphs and the data-dependent sentences (:mod:`.summaries`) that go into it.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import numpy as np

from .summaries import (
    key_findings,
    summary_correlation,
    summary_covariance,
    summary_gaussianity,
    summary_ntk,
    summary_paths,
    summary_sde,
)

__all__ = ["render", "template", "MAIN_EXPERIMENTS"]

#: the experiments of sections 1-4 (and the summary); section 5 needs "ntk" only
MAIN_EXPERIMENTS = ("covariance", "nt_monte_carlo", "commutativity", "correlation", "gaussianity",
                    "sde")

PATH_LABELS = [("n_first", "n first"), ("L_first", "L first"), ("diagonal", "n = L")]


def template() -> str:
    """The report's Markdown template, read as package data."""
    return resources.files(__package__).joinpath("report_template.md").read_text(encoding="utf-8")


def _f(v, digits=3):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}"


def _g(v):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{v:.2g}" if abs(v) < 1e-3 else f"{v:.3f}"


def _covariance_table(rows):
    out = []
    for r in rows:
        nt_ = r.get("nt")
        out.append(
            f"| {r['width']} | {r['depth']} | {_f(r['rel_err'], 4)} | {_f(r['rel_err_se'], 4)} | "
            f"{_f(r['noise'], 4)} | {_f(r['depth_gap'], 4)} | {_f(r['max_z_depth'], 1)} | "
            f"{_f(r['per_net_err'], 3)} | {_f(nt_['rel_err'], 4) if nt_ else '-'} | "
            f"{_f(r['nt_vs_projected_max_z'], 1) if nt_ else '-'} |")
    return "\n".join(out)


def _paths_table(paths):
    return "\n".join(
        f"| {label} | ({p['width']}, {p['depth']}) | {p['rel_err']:.4f} ± {p['rel_err_se']:.4f} | "
        f"{p['noise']:.4f} | {p['per_net_err']:.4f} ± {p['per_net_err_se']:.4f} |"
        for name, label in PATH_LABELS for p in paths[name])


def _correlation_table(corr):
    return "\n".join(
        f"| {r['depth']} | {r['mlp_analytic']:.4f} | {r['mlp']:.4f} ± {r['mlp_se']:.4f} | "
        f"{r['mlp_z']:+.1f} | {r['resnet_analytic']:.4f} | {r['resnet']:.4f} ± "
        f"{r['resnet_se']:.4f} | {r['resnet_z']:+.1f} |" for r in corr["mc"])


def _gaussianity_table(gauss):
    out = []
    for c in gauss["cells"]:
        r, m = c["resnet"], c["mlp"]
        out.append(
            f"| {c['width']} | {c['depth']} | {r['ks']:.3f} | {_g(r['p'])} | "
            f"{_f(r['kurtosis'], 2)} | {_f(r.get('corr'), 3)} | {_f(r.get('corr_z'), 1)} | "
            f"{_f(r.get('corr_sq'), 3)} | {m['ks']:.3f} | {_g(m['p'])} | "
            f"{_f(m['kurtosis'], 1)} | {m['frac_zero']:.3f} |")
    return "\n".join(out)


def _sde_table(sde):
    return "\n".join(
        f"| {r['width']} | {r['ks_net_sde']:.3f} | {_g(r['p_net_sde'])} | "
        f"{r['ks_net_gauss']:.3f} | {_g(r['p_net_gauss'])} | {r['ks_sde_gauss']:.3f} | "
        f"{r['var_net']:.3f} | {r['var_sde']:.3f} | {r['kurtosis_net']:.2f} | "
        f"{r['kurtosis_sde']:.2f} | {r['frozen_net']:.3f} | {r['frozen_sde']:.3f} | "
        f"{2.0 ** -r['width']:.3f} |" for r in sde["rows"])


def _mc_replay(mc):
    if "replay_rel_diff" not in mc:
        return ""
    k = mc["exact_keys"]
    return (f" Replaying NT's key sequence for its first {k} networks (`init_fn`, `apply_fn`, "
            f"Y^T Y / n) reproduces NT's {k}-network estimate to {mc['replay_rel_diff']:.1e} "
            "(relative, float32): the direct estimator computes exactly what NT's does.")


def _sampler_check(gauss):
    if "nt_check" not in gauss:
        return ""
    ck = gauss["nt_check"]
    return (f"Sampler check at n = {ck['width']}, L = {ck['depth']} ({ck['n_nets']} networks "
            f"each): two-sample KS between the projected sampler and NT's `apply_fn`: ResNet "
            f"{ck['resnet']['ks']:.3f} (p = {_g(ck['resnet']['p'])}), MLP {ck['mlp']['ks']:.3f} "
            f"(p = {_g(ck['mlp']['p'])}).")


def _width_one(sde):
    r1 = next((r for r in sde["rows"] if r["width"] == 1), None)
    if r1 is None:
        return ""
    return ("Width 1 has an exact law: below 0 relu vanishes and Y is frozen, above 0 dY = Y dB, "
            "so Y_T = Y_0 if Y_0 < 0, else Y_0 exp(B_T - 1/2), and E[Y_T^2] = (1 + e)/2 = "
            f"{(1 + np.e) / 2:.3f} rather than e^(1/2). KS of the SDE solver against it "
            f"{r1['ks_sde_exact']:.3f} (p = {_g(r1['p_sde_exact'])}), of the network "
            f"{r1['ks_net_exact']:.3f} (p = {_g(r1['p_net_exact'])}).")


def _scale_note(res, nmax):
    if res["quick"]:
        return ("Larger grids and samples: this is the quick mode; run `resgp verify` without "
                "`--quick` for the full one.")
    return (f"Depths beyond {max(res['covariance']['depths'])} (the paper's 5000) and widths "
            f"beyond {nmax}: CPU time (this run took "
            f"{res['runtime_s'] / 60:.1f} minutes on {res['environment']['cpus']} cores).")


def _ntk_table(rows):
    out = []
    for r in rows:
        nt_ = r.get("nt")
        out.append(
            f"| {r['width']} | {r['depth']} | {_f(r['rel_err'], 4)} | {_f(r['rel_err_se'], 4)} | "
            f"{_f(r['noise'], 4)} | {_f(r['depth_gap'], 4)} | {_f(r['rel_err_depth'], 4)} | "
            f"{_f(r['max_z_depth'], 1)} | {_f(r['per_net_err'], 3)} | "
            f"{_f(r['per_net_err_depth'], 3)} | {_f(nt_['rel_err_depth'], 4) if nt_ else '-'} | "
            f"{_f(nt_['max_z_depth'], 1) if nt_ else '-'} | "
            f"{_f(r['nt_vs_projected_max_z'], 1) if nt_ else '-'} |")
    return "\n".join(out)


def _ntk_sections(ntk):
    """Per activation: the limit kernel, the grid's table, the paths' table and the summary."""
    out = []
    for act in ntk["activations"]:
        res = ntk["results"][act]
        K = np.array2string(np.asarray(res["limit_kernel"]), precision=4, suppress_small=True)
        out.append(
            f"### {act}\n\nLimit NTK `resnet_ntk(X, activation={act!r})` (depth=None):\n\n"
            f"```\n{K}\n```\n\n"
            "*vs Theta_L*: ||Theta-bar - Theta_L||_F / ||Theta_L||_F; *max z vs Theta_L*: largest "
            "|Theta-bar - Theta_L| / se over the 10 distinct entries; *one net vs Theta_L*: mean "
            "over networks of ||Theta-hat_i - Theta_L||_F / ||Theta_L||_F; *NT*: the first two for "
            "NT's "
            "`empirical_ntk_fn`, and the largest |z| of its difference with the projected "
            "estimate.\n\n"
            "| n | L | rel. err | se | MC noise | gap | vs Theta_L | max z vs Theta_L | one net | "
            "one net vs Theta_L | NT vs Theta_L | NT max z vs Theta_L | NT vs proj. max z |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            f"{_ntk_table(res['rows'])}\n\n"
            "| path | (n, L) | rel. err ± se | MC noise | one net ± se |\n"
            "|---|---|---:|---:|---:|\n"
            f"{_paths_table(res['paths'])}\n\n"
            f"{summary_ntk(ntk, act)}")
    return "\n".join(out)


def _ntk_fields(res: dict) -> dict:
    ntk = res["ntk"]
    analytic = ", ".join(f"{ntk['results'][a]['nt_analytic_rel_diff']:.1e} ({a})"
                         for a in ntk["activations"])
    return dict(ntk=ntk, ntk_sections=_ntk_sections(ntk), ntk_analytic=analytic)


def _ks_crit(n_samples, level=0.05):
    """Asymptotic two-sample KS critical value for two samples of ``n_samples``."""
    c = {0.05: 1.358, 0.01: 1.628}[level]
    return c * np.sqrt(2.0 / n_samples)


def _phi_table(rows):
    return "\n".join(
        f"| {r['width']} | {r['ks_net_sde']:.3f} | {_g(r['p_net_sde'])} | "
        f"{r['ks_net_gauss']:.3f} | {_g(r['p_net_gauss'])} | {r['ks_sde_gauss']:.3f} | "
        f"{r['var_net']:.3f} | {r['var_sde']:.3f} | {r['kurtosis_net']:.2f} | "
        f"{r['kurtosis_sde']:.2f} | {_f(r.get('ks_sde_exact'))} | {_f(r.get('ks_net_exact'))} |"
        for r in rows)


def _phi_sections(phi):
    out = []
    for act in phi["activations"]:
        res = phi["results"][act]
        out.append(
            f"### {act}\n\n`activation={res['spec']!r}`; infinite-width variance q_T(x, x) = "
            f"{res['qT']:.4f}.\n\n"
            "| n | KS net vs SDE | p | KS net vs Gauss | p | KS SDE vs Gauss | E[Y^2] net | "
            "E[Y^2] SDE | kurt. net | kurt. SDE | KS SDE vs exact | KS net vs exact |\n"
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            f"{_phi_table(res['rows'])}\n")
    return "\n".join(out)


def summary_phi(phi):
    """The data-dependent paragraph of experiment 6."""
    crit1 = _ks_crit(phi["n_samples"], 0.01)
    crit5 = _ks_crit(phi["n_samples"])
    cells = [(a, r) for a in phi["activations"] for r in phi["results"][a]["rows"]]
    ks = [r["ks_net_sde"] for _, r in cells]
    below1 = sum(k <= crit1 for k in ks)
    below5 = sum(k <= crit5 for k in ks)
    exact = [(a, r) for a, r in cells if "ks_sde_exact" in r]
    s = (f"Networks against the diffusion: KS {min(ks):.3f}-{max(ks):.3f} over the "
         f"{len(cells)} cells, {below5} below the 5% critical value and {below1} below the 1% "
         f"one (under the null about {0.95 * len(cells):.0f} and {0.99 * len(cells):.0f} "
         "would be). ")
    if exact:
        ke = [r["ks_sde_exact"] for _, r in exact] + [r["ks_net_exact"] for _, r in exact]
        s += (f"Against the closed-form laws ({len(exact)} cells: "
              + ", ".join(sorted({a for a, _ in exact}))
              + f"): KS {min(ke):.3f}-{max(ke):.3f}, {sum(k <= crit1 for k in ke)} of {len(ke)} "
              "below the 1% critical value. ")
    far = [f"{a} n = {r['width']} ({r['ks_net_gauss']:.3f})" for a, r in cells
           if r["width"] == min(phi["widths"])]
    s += ("Distance to the infinite-width Gaussian at the smallest width: " + ", ".join(far)
          + "; it shrinks as n grows, as for ReLU. As in section 4, with one input each block of "
          "the network is in law one Euler-Maruyama step of this SDE, whatever phi: the "
          "network-vs-SDE comparison checks the implementation of phi in both, the exact laws "
          "check the SDE itself.\n")
    return s


def _norms_times(norms):
    ts = [t for t in (1.0, 10.0, 100.0) if t in norms["times"]]
    if norms["times"][-1] not in ts:
        ts.append(norms["times"][-1])
    return ts


def _norms_fields(res):
    norms = res["norms"]
    rows, times = norms["rows"], norms["times"]
    ts = _norms_times(norms)
    idx = [times.index(t) for t in ts]
    head = " | ".join([f"E log S at t = {t:g}" for t in ts]
                      + [f"vanished at t = {ts[-1]:g}", f"exploded at t = {ts[-1]:g}"])
    table = "\n".join(
        f"| {r['width']} | {r['initial_drift']:+.4f} | {r['early_drift']:+.4f} ± "
        f"{r['early_drift_se']:.4f} | {r['early_dlog']:+.4f} ± {r['early_dlog_se']:.4f} | "
        f"{r['t_peak']:g} | " + " | ".join(f"{r['at'][i]['mean_log']:.1f}" for i in idx)
        + f" | {r['at'][idx[-1]]['p_vanish']:.3f} | {r['at'][idx[-1]]['p_explode']:.3f} |"
        for r in rows)
    mt = norms["hist_time"]
    j = times.index(mt)
    qs = norms["moments"]
    mtable = "\n".join(
        f"| {r['width']} | " + " | ".join(
            f"{r['at'][j][f'moment_{q:g}']:.3g} ± {r['at'][j][f'moment_{q:g}_se']:.2g}"
            for q in qs) + f" | {r['at'][j]['p_vanish']:.3f} | {r['at'][j]['p_explode']:.3f} |"
        for r in rows)
    drifts = ", ".join(f"{r['initial_drift']:+.3f} (n = {r['width']})" for r in rows)
    moment_note = _moment_note(norms, mt, qs)
    return dict(norms=norms, norms_L=norms["T"] / norms["dt"], norms_first=rows[0]["width"],
                norms_last=rows[-1]["width"], norms_head=head,
                norms_rule="---:|" * (len(ts) + 2), norms_table=table, norms_mt=mt,
                moment_head=" | ".join(f"E|relu(Y_t)|^{q:g}" for q in qs),
                moment_rule="---:|" * len(qs), moment_table=mtable, drift_list=drifts,
                moment_note=moment_note,
                summary_norms=summary_norms(norms))


def _moment_note(norms, t, qs):
    """The exact moments at width 1 and the lower bound on the second at every width
    (docs/theory.md, "Widths 3 and 4"), against which the Monte-Carlo means fall short."""
    from math import exp, gamma, log, pi, sqrt

    m0 = lambda q: 2 ** (q / 2 - 1) * gamma((q + 1) / 2) / sqrt(pi)  # noqa: E731  E(Z^+)^q
    exact = ", ".join(f"q = {q:g}: {m0(q) * exp(q * (q - 1) * t / 2):.3g}" for q in qs)
    ns = [r["width"] for r in norms["rows"]]
    bound = ", ".join(f"{10 ** ((log(n / 2) + t / n) / log(10)):.3g} (n = {n})" for n in ns)
    j = norms["times"].index(t)
    short = [r["width"] for r in norms["rows"] if 2.0 in qs
             and r["at"][j]["moment_2"] < r["width"] / 2 * exp(t / r["width"])]
    return ("Exact values at n = 1: E|relu(Y_t)|^q = E|relu(Y_0)|^q e^(q(q-1)t/2), "
            f"here {exact}; at every width E|relu(Y_t)|^2 >= (n/2) e^(t/n): {bound}. The "
            "Monte-Carlo mean falls below the exact value or the bound at n = "
            f"{', '.join(map(str, short)) or 'none'}: there the moments are carried by paths too "
            "rare to sample, while the typical path vanishes. Every positive moment is finite at "
            "finite t; those of order q > 1 grow without bound at every width. Negative moments "
            "are infinite: a share 2^-n of paths has relu(Y) = 0 throughout.\n")


def summary_norms(norms):
    """The data-dependent paragraph of experiment 7: where the simulated initial drift changes
    sign, how long the mean log norm grows, and how many paths vanish."""
    rows = norms["rows"]
    neg = [r["width"] for r in rows if r["early_dlog"] + 3 * r["early_dlog_se"] < 0]
    pos = [r["width"] for r in rows if r["early_dlog"] - 3 * r["early_dlog_se"] > 0]
    z = [abs(r["early_drift"] - r["initial_drift"]) / r["early_drift_se"] for r in rows
         if r["early_drift_se"] > 1e-9]  # n = 1: k is 0 or 1 for ever, the drift exactly -1
    last = norms["times"][-1]
    s = (f"Simulated drift of E[log S] over [0, {rows[0]['early_time']:g}]: more than 3 se below "
         f"0 at widths {', '.join(map(str, neg)) or 'none'}, more than 3 se above 0 at widths "
         f"{', '.join(map(str, pos)) or 'none'}; against the derived value at t = 0 the "
         "largest |z| of the first estimate over the widths > 1 is "
         f"{max(z) if z else float('nan'):.1f} (the drift moves away from its t = 0 value "
         "as the sign pattern mixes, and Euler-Maruyama adds an O(dt) bias). ")
    peaks = ", ".join(f"{r['t_peak']:g} (n = {r['width']})" for r in rows)
    s += (f"E log S_t peaks at t = {peaks} (0: it decreases from the start; the last time "
          f"{last:g}: still growing). ")
    van = ", ".join(f"{r['at'][-1]['p_vanish']:.2f}" for r in rows)
    s += (f"Share vanished at t = {last:g}, n = {rows[0]['width']}..{rows[-1]['width']}: {van}: "
          "every width vanishes in the end, the wider the later. The change of regime between "
          "n = 3 and n = 4 is thus the sign of the initial drift (k - 2)/n averaged over the "
          "initial sign pattern, and with it whether the post-activation norm grows at all "
          "before it decays; the long-time fate (vanishing) is the same at every width.\n")
    return s


def _fields(res: dict, links: dict) -> dict:
    out = dict(cmd_quick=" --quick" if res["quick"] else "", seed=res["seed"],
               cmd_only=(" --only " + " ".join(res["only"])) if res.get("only") else "",
               mode="quick" if res["quick"] else "full", runtime_s=res["runtime_s"],
               cpus=res["environment"]["cpus"], fig=links)
    if all(k in res for k in MAIN_EXPERIMENTS):
        out.update(_main_fields(res))
    if "ntk" in res:
        out.update(_ntk_fields(res))
    if "sde_phi" in res:
        phi = res["sde_phi"]
        out.update(phi=phi, phi_acts=", ".join(phi["activations"]),
                   phi_first=phi["widths"][0], phi_last=phi["widths"][-1],
                   phi_crit5=_ks_crit(phi["n_samples"]), phi_crit1=_ks_crit(phi["n_samples"], 0.01),
                   phi_sections=_phi_sections(phi), summary_phi=summary_phi(phi))
    if "norms" in res:
        out.update(_norms_fields(res))
    return out


def _main_fields(res: dict) -> dict:
    grid, mc = res["covariance"], res["nt_monte_carlo"]
    paths, corr, gauss, sde = res["commutativity"], res["correlation"], res["gaussianity"], res["sde"]
    nmax = max(grid["widths"])
    limit_kernel = np.array2string(np.asarray(grid["limit_kernel"]), precision=4,
                                   suppress_small=True)
    return dict(
        key_findings="\n".join(f"- {line}" for line in key_findings(res)),
        grid=grid, limit_kernel=limit_kernel, covariance_table=_covariance_table(grid["rows"]),
        summary_covariance=summary_covariance(grid),
        mc=mc, mc_ratio=mc["n_direct"] // mc["n_samples"], mc_replay=_mc_replay(mc),
        Lmax=max(grid["depths"]), nmax=nmax, paths_table=_paths_table(paths),
        summary_paths=summary_paths(grid, paths),
        corr=corr, correlation_table=_correlation_table(corr),
        summary_correlation=summary_correlation(corr),
        gauss=gauss, resnet_ref_var=gauss["cells"][0]["resnet"]["ref_var"],
        ks_crit=1.36 / np.sqrt(gauss["n_nets"]), gaussianity_table=_gaussianity_table(gauss),
        sampler_check=_sampler_check(gauss), summary_gaussianity=summary_gaussianity(gauss),
        sde=sde, sde_first=sde["widths"][0], sde_last=sde["widths"][-1],
        ks2_crit=1.36 * np.sqrt(2 / sde["n_samples"]), ks1_crit=1.36 / np.sqrt(sde["n_samples"]),
        sde_table=_sde_table(sde),
        width_one=_width_one(sde), summary_sde=summary_sde(sde),
        scale_note=_scale_note(res, nmax),
    )


def render(res: dict, figs: dict, md_path: Path) -> str:
    """The report's Markdown for the results ``res``; ``figs`` (name -> path) are linked
    relative to ``md_path``'s folder."""
    links = {k: os.path.relpath(p, md_path.parent).replace(os.sep, "/") for k, p in figs.items()}
    fields = {k: v.rstrip("\n") if isinstance(v, str) else v
              for k, v in _fields(res, links).items()}
    text = template()
    if not all(k in res for k in MAIN_EXPERIMENTS):  # a partial run (--only): its sections
        chunks = re.split(r"(?m)^(?=## )", text)
        own = {"## 5.": "ntk", "## 6.": "sde_phi", "## 7.": "norms"}
        keep = [chunks[0]] + [c for c in chunks[1:]
                              if any(c.startswith(h) and name in res for h, name in own.items())]
        text = "".join(keep)
    text = text.format(**fields)
    return re.sub(r"\n{3,}", "\n\n", text)  # an empty optional paragraph leaves no blank lines
