r"""Finite width, infinite depth beyond ReLU, and the post-activation norm over long depth time.

Experiments 6 and 7 of ``resgp verify`` (docs/theory.md, "Finite width: general activations"
and "Widths 3 and 4"), each returning a plain, JSON-friendly dict; their settings are in
:data:`resgp.experiments.verify.experiments.CONFIGS` (keys ``"sde_phi"`` and ``"norms"``).

- :func:`finite_width_activations`: the diffusion
  :math:`dY_t = n^{-1/2}|\phi(Y_t)|\,dB_t` (:func:`~.sampling.simulate_sde`) against random
  ResNets run by Neural Tangents, for several activations and widths 1..8, by two-sample KS;
  against the exact law where there is one (:func:`sample_exact`).
- :func:`norm_regime`: the ReLU diffusion to depth time ``T`` (100 or more) in log-polar form
  (:func:`simulate_norms`): the law of :math:`\log|\phi(Y_t)|^2`, its drift
  :math:`E[(k_t - 2)/n]` (:math:`k_t` the number of positive coordinates), moments, the shares
  of paths that vanish or explode.
"""

from __future__ import annotations

import math

import numpy as np

from resgp.experiments.progress import progress_bar

from .sampling import pair_inputs, rng_for, sample_nt, seed_for, simulate_sde
from .statistics import histogram, ks_2samp, law_row

__all__ = [
    "ACTIVATIONS",
    "numpy_activation",
    "sample_exact",
    "finite_width_activations",
    "simulate_norms",
    "initial_log_drift",
    "norm_regime",
]

LEAKY_SLOPE = 0.2

#: the activations of experiment 6: name -> resgp activation spec (for :mod:`resgp.nt` and
#: ``resnet_nngp``); "linear" is NT's ``ABRelu(1, 1)``, the identity
ACTIVATIONS = {
    "relu": "relu",
    "leaky_relu": f"leaky_relu(slope={LEAKY_SLOPE})",
    "erf": "erf",
    "gelu": "gelu",
    "tanh": "tanh",
    "linear": "abrelu(a=1.0, b=1.0)",
}


def numpy_activation(name):
    """The activation ``name`` (a key of :data:`ACTIVATIONS`) on NumPy arrays: resgp's own
    :math:`\\phi` (``Activation.fn``), evaluated in float64.

    Parameters
    ----------
    name : str
        One of "relu", "leaky_relu" (slope 0.2), "erf", "gelu", "tanh", "linear".

    Returns
    -------
    callable
        Elementwise :math:`\\phi` on NumPy arrays, float64 out.
    """
    import jax.numpy as jnp

    from resgp.core.activations import get_activation
    from resgp.core.x64 import float64

    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")
    fn = get_activation(ACTIVATIONS[name]).fn

    def phi(y):
        with float64():
            return np.asarray(fn(jnp.asarray(y, dtype=jnp.float64)))

    return phi


def sample_exact(activation, width, n_samples, *, q0=1.0, T=1.0, seed=0):
    r"""Exact draws of :math:`Y_T` (n_samples, width) of :math:`dY = n^{-1/2}|\phi(Y)|dB`,
    :math:`Y_0 \sim N(0, q_0 I_n)`, where that law has a closed form (docs/theory.md,
    "Finite width: general activations"); None elsewhere.

    Parameters
    ----------
    activation : str
        A key of :data:`ACTIVATIONS`.
    width : int
        The width n.
    n_samples : int
        Number of draws.
    q0 : float, default=1.0
        Variance of each coordinate of :math:`Y_0`.
    T : float, default=1.0
        Depth time.
    seed : int, default=0
        Seed of the stream (:func:`~.sampling.rng_for`).

    Returns
    -------
    numpy.ndarray or None
        float64 (n_samples, width); None when no closed form is known: erf, GELU, tanh at any
        width, ReLU and leaky ReLU at width > 1.

    Notes
    -----
    Linear, any width n: in law :math:`Y_T = Y_0\exp(\beta/\sqrt n + (1/2 - 1/n)T)`,
    :math:`\beta \sim N(0, T)` independent of :math:`Y_0` (the norm is a geometric Brownian
    motion, the direction an independent uniform point of the sphere). Width 1, slope s below 0
    (ReLU: s = 0, leaky ReLU: s = 0.2): the sign of Y never changes and
    :math:`Y_T = Y_0 \exp(B_T - T/2)` above 0, :math:`Y_0 \exp(s B_T - s^2 T/2)` below.
    """
    rng = rng_for(seed)
    y0 = np.sqrt(q0) * rng.standard_normal((n_samples, width))
    b = np.sqrt(T) * rng.standard_normal((n_samples, 1))
    if activation == "linear":
        return y0 * np.exp(b / np.sqrt(width) + (0.5 - 1.0 / width) * T)
    if width == 1 and activation in ("relu", "leaky_relu"):
        s = 0.0 if activation == "relu" else LEAKY_SLOPE
        return np.where(y0 > 0, y0 * np.exp(b - T / 2), y0 * np.exp(s * b - s * s * T / 2))
    return None


def finite_width_activations(activations, widths, depth, n_samples, sde_steps, *, seed=0,
                             progress=False):
    """Experiment 6: the finite-width diffusion with a general activation against networks.

    Parameters
    ----------
    activations : sequence of str
        Keys of :data:`ACTIVATIONS`.
    widths : sequence of int
        The widths n.
    depth : int
        Depth L of the networks (branches scaled by :math:`L^{-1/2}`, :mod:`resgp.nt`).
    n_samples : int
        Networks per (activation, width), one output coordinate each, and SDE paths.
    sde_steps : int
        Euler-Maruyama steps on [0, 1].
    seed : int, default=0
        Seed of every stream.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    dict
        Per activation (``results[act]``): rows per width with the two-sample KS statistic and
        p-value of networks against the SDE, one-sample KS of both against the infinite-width
        Gaussian :math:`N(0, q_T(x, x))` (``resnet_nngp(x, activation=...)``), second moments,
        excess kurtosis and, where :func:`sample_exact` has a closed form, KS of both against
        it; histograms of :math:`Y_T/\\sqrt{q_T}`.
    """
    from resgp import resnet_nngp

    x = pair_inputs()[:1]
    q0 = 1.0
    bins = np.linspace(-5, 5, 51)
    out = dict(activations=list(activations), widths=list(widths), depth=depth,
               n_samples=n_samples, sde_steps=sde_steps, q0=q0, results={})
    cells = [(a, n) for a in activations for n in widths]
    for act in activations:
        out["results"][act] = dict(spec=ACTIVATIONS[act],
                                   qT=float(resnet_nngp(x, activation=ACTIVATIONS[act])[0, 0]),
                                   rows=[], hists={})
    for act, n in progress_bar(cells, "finite width, other activations", progress):
        res = out["results"][act]
        qT = res["qT"]
        y_net = sample_nt(x, n, depth, n_samples, seed=seed_for(seed, "phi-net", act, n),
                          activation=ACTIVATIONS[act])[:, 0, 0].astype(np.float64)
        y_sde = simulate_sde(n, n_samples, sde_steps, q0=q0, seed=seed_for(seed, "phi-sde", act, n),
                             activation=numpy_activation(act))[:, 0]
        row = dict(width=n, **law_row(y_net, y_sde, qT))
        exact = sample_exact(act, n, n_samples, q0=q0, seed=seed_for(seed, "phi-exact", act, n))
        if exact is not None:
            row["ks_sde_exact"], row["p_sde_exact"] = ks_2samp(y_sde, exact[:, 0])
            row["ks_net_exact"], row["p_net_exact"] = ks_2samp(y_net, exact[:, 0])
        res["rows"].append(row)
        s = math.sqrt(qT)
        res["hists"][n] = dict(net=histogram(y_net / s, bins), sde=histogram(y_sde / s, bins))
    return out


# ----------------------------------------------------------------------------- experiment 7


def initial_log_drift(width):
    r"""The drift of :math:`E[\log|\phi(Y_t)|^2 \mid \phi(Y_0) \ne 0]` at t = 0 (ReLU).

    Parameters
    ----------
    width : int
        The width n.

    Returns
    -------
    float
        :math:`(E[k \mid k \ge 1] - 2)/n` with :math:`k \sim \mathrm{Binomial}(n, 1/2)`, i.e.
        :math:`(n / (2(1 - 2^{-n})) - 2)/n`: negative for n <= 3, positive for n >= 4
        (docs/theory.md, "Widths 3 and 4").
    """
    n = int(width)
    return (n / (2.0 * (1.0 - 2.0 ** -n)) - 2.0) / n


def simulate_norms(width, n_paths, T, dt, times, *, seed=0):
    r"""The ReLU diffusion :math:`dY = n^{-1/2}|Y^+|dB`, :math:`Y_0 \sim N(0, I_n)`, to depth
    time ``T``, with :math:`S_t = |\mathrm{relu}(Y_t)|^2` recorded at ``times``.

    Euler-Maruyama with step ``dt`` in log-polar form: the direction :math:`Y/|Y|` and
    :math:`\log|Y|` are carried separately (the equation is homogeneous of degree one, so this is
    the plain Euler-Maruyama chain, without over- or underflow over long times). With one input
    a ResNet of depth :math:`L = T/dt` whose branches are scaled by :math:`(T/L)^{1/2}` is this
    chain exactly (:func:`~.sampling.sample_projected`, ``branch_variance=T``).

    Parameters
    ----------
    width : int
        The width n.
    n_paths : int
        Number of paths.
    T : float
        Final depth time.
    dt : float
        Step.
    times : sequence of float
        Times (multiples of ``dt``, at most ``T``) at which to record.
    seed : int, default=0
        Seed of the stream.

    Returns
    -------
    dict
        ``times``; ``log_s`` (len(times), n_paths): :math:`\log S_t` (-inf where
        :math:`S_t = 0`); ``log_s0`` (n_paths,); ``k`` (len(times), n_paths): number of positive
        coordinates; ``drift`` (len(times), n_paths): :math:`\int_0^t (k_u - 2)/n\,du` by the
        left-point rule; ``mart`` (len(times), n_paths): :math:`\sum 2 n^{-1/2}
        \langle Y^+, \Delta B\rangle / |Y^+|`, the martingale part of the Itô formula.
    """
    n = int(width)
    marks = {int(round(t / dt)): i for i, t in enumerate(times)}
    if 0 in marks:
        raise ValueError("times must be positive")
    rng = rng_for(seed)
    Y = rng.standard_normal((n_paths, n))
    r = np.linalg.norm(Y, axis=1)
    log_r = np.log(r)
    Y /= r[:, None]
    h = math.sqrt(dt / n)
    steps = max(marks)
    with np.errstate(divide="ignore"):
        log_s0 = np.log(np.sum(np.maximum(Y, 0.0) ** 2, axis=1)) + 2 * log_r
    rec = {key: np.empty((len(times), n_paths)) for key in ("log_s", "k", "drift", "mart")}
    drift = np.zeros(n_paths)
    mart = np.zeros(n_paths)
    for step in range(1, steps + 1):
        Yp = np.maximum(Y, 0.0)
        a = np.sqrt(np.einsum("pi,pi->p", Yp, Yp))
        k = np.count_nonzero(Yp, axis=1)
        dB = rng.standard_normal((n_paths, n))
        drift += (k - 2.0) / n * dt
        with np.errstate(invalid="ignore", divide="ignore"):
            mart += np.where(a > 0, 2 * h * np.einsum("pi,pi->p", Yp, dB) / a, 0.0)
        Y += (h * a)[:, None] * dB
        r = np.sqrt(np.einsum("pi,pi->p", Y, Y))
        log_r += np.log(r)
        Y /= r[:, None]
        if step in marks:
            i = marks[step]
            Yp = np.maximum(Y, 0.0)
            with np.errstate(divide="ignore"):
                rec["log_s"][i] = np.log(np.einsum("pi,pi->p", Yp, Yp)) + 2 * log_r
            rec["k"][i] = np.count_nonzero(Yp, axis=1)
            rec["drift"][i] = drift
            rec["mart"][i] = mart
    return dict(times=list(times), log_s0=log_s0, **rec)


def _stats_at(log_s, log_s0, k, drift, mart, vanish, explode, moments):
    """Statistics at one time over the paths with S_0 > 0 (the others stay frozen at 0)."""
    live = np.isfinite(log_s0)
    log_s = np.where(live, np.maximum(log_s, -2000.0), log_s)  # an Euler step into S = 0
    ls = log_s[live]
    m = len(ls)
    dd, dr, mt = log_s[live] - log_s0[live], drift[live], mart[live]
    cv = dd - mt  # control variate: the martingale part has mean 0
    se = lambda v: float(np.std(v, ddof=1) / math.sqrt(m))  # noqa: E731
    row = dict(
        mean_log=float(np.mean(ls)), median_log=float(np.median(ls)),
        q10_log=float(np.quantile(ls, 0.1)), q90_log=float(np.quantile(ls, 0.9)),
        mean_dlog=float(np.mean(dd)), mean_dlog_se=se(dd),
        mean_dlog_cv=float(np.mean(cv)), mean_dlog_cv_se=se(cv),
        mean_drift=float(np.mean(dr)), mean_drift_se=se(dr),
        mean_k=float(np.mean(k)), share_k0=float(np.mean(k == 0)),
        p_vanish=float(np.mean(log_s < 2 * math.log(vanish))),  # all paths: frozen ones vanish
        p_explode=float(np.mean(log_s > 2 * math.log(explode))),
    )
    for q in moments:  # E |relu(Y_t)|^q over all paths, with its standard error
        v = np.exp(0.5 * q * np.where(np.isfinite(log_s), log_s, -np.inf))
        row[f"moment_{q:g}"] = float(np.mean(v))
        row[f"moment_{q:g}_se"] = float(np.std(v, ddof=1) / math.sqrt(len(v)))
    return row


def norm_regime(widths, n_paths, T, dt, times, *, vanish=1e-3, explode=1e3,
                moments=(0.5, 1.0, 2.0), hist_time=None, seed=0, progress=False):
    r"""Experiment 7: the post-activation norm :math:`|\mathrm{relu}(Y_t)|` of the finite-width,
    infinite-depth ReLU network over long depth time (:func:`simulate_norms`).

    Parameters
    ----------
    widths : sequence of int
        The widths n.
    n_paths : int
        Paths per width.
    T : float
        Final depth time.
    dt : float
        Euler-Maruyama step.
    times : sequence of float
        Times at which to report (multiples of ``dt``).
    vanish : float, default=1e-3
        A path has vanished at t when :math:`|\mathrm{relu}(Y_t)| <` ``vanish``.
    explode : float, default=1e3
        A path has exploded at t when :math:`|\mathrm{relu}(Y_t)| >` ``explode``.
    moments : sequence of float, default=(0.5, 1.0, 2.0)
        Orders q of the moments :math:`E|\mathrm{relu}(Y_t)|^q` to report.
    hist_time : float, optional
        Time of the histograms of :math:`\log|\mathrm{relu}(Y_t)|^2` (default ``T``).
    seed : int, default=0
        Seed of every stream.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    dict
        Per width (``rows``): ``initial_drift`` (:func:`initial_log_drift`), ``early_drift``
        and its standard error (the simulated mean of :math:`\int_0^{t_1}(k-2)/n` over
        :math:`t_1`, the first time), ``early_dlog`` (the simulated mean of
        :math:`(\log S_{t_1} - \log S_0 - M_{t_1})/t_1`, M the martingale part, a control
        variate), ``t_peak`` (the time of the largest mean
        :math:`\log S_t`), and per time (``at``) the quantiles and mean of :math:`\log S_t` and
        of its increment, the mean drift, the mean number of active coordinates, the shares of
        vanished and exploded paths and the moments; histograms of :math:`\log S` at
        ``hist_time``.
    """
    times = list(times)
    hist_time = times[-1] if hist_time is None else hist_time
    if hist_time not in times:
        times = sorted(set(times) | {hist_time})
    bins = np.linspace(-120, 60, 91)
    out = dict(widths=list(widths), n_paths=n_paths, T=T, dt=dt, times=times, vanish=vanish,
               explode=explode, moments=list(moments), hist_time=hist_time, rows=[], hists={})
    for n in progress_bar(widths, "post-activation norms", progress):
        sim = simulate_norms(n, n_paths, T, dt, times, seed=seed_for(seed, "norms", n))
        at = [_stats_at(sim["log_s"][i], sim["log_s0"], sim["k"][i], sim["drift"][i],
                        sim["mart"][i], vanish, explode, moments) for i in range(len(times))]
        t1 = times[0]
        means = [a["mean_log"] for a in at]
        live = np.isfinite(sim["log_s0"])
        row = dict(width=n, initial_drift=initial_log_drift(n),
                   early_time=t1, early_drift=at[0]["mean_drift"] / t1,
                   early_drift_se=at[0]["mean_drift_se"] / t1,
                   early_dlog=at[0]["mean_dlog_cv"] / t1,
                   early_dlog_se=at[0]["mean_dlog_cv_se"] / t1,
                   mean_log0=float(np.mean(sim["log_s0"][live])), frozen0=float(np.mean(~live)),
                   t_peak=float(times[int(np.argmax(means))]) if max(means) > float(
                       np.mean(sim["log_s0"][live])) else 0.0,
                   at=at)
        out["rows"].append(row)
        ls = sim["log_s"][times.index(hist_time)]
        ls = np.clip(ls[np.isfinite(ls)], bins[0], bins[-1])
        out["hists"][n] = dict(histogram(ls, bins), frozen=float(np.mean(~live)))
    return out
