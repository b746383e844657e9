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
    return (f"Depth 5000 and widths beyond {nmax}: CPU time (this run took "
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


def _fields(res: dict, links: dict) -> dict:
    out = dict(cmd_quick=" --quick" if res["quick"] else "", seed=res["seed"],
               cmd_only=(" --only " + " ".join(res["only"])) if res.get("only") else "",
               mode="quick" if res["quick"] else "full", runtime_s=res["runtime_s"],
               cpus=res["environment"]["cpus"], fig=links)
    if all(k in res for k in MAIN_EXPERIMENTS):
        out.update(_main_fields(res))
    if "ntk" in res:
        out.update(_ntk_fields(res))
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
        keep = [chunks[0]] + [c for c in chunks[1:] if c.startswith("## 5.") and "ntk" in res]
        text = "".join(keep)
    text = text.format(**fields)
    return re.sub(r"\n{3,}", "\n\n", text)  # an empty optional paragraph leaves no blank lines
