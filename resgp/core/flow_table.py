r"""Infinite-depth kernels of non-homogeneous activations from a tabulated flow map.

For a pair of inputs with variances :math:`q_{aa}, q_{bb} > 0` and correlation
:math:`\rho_0 = q_{ab} / \sqrt{q_{aa} q_{bb}} \in [-1, 1]` the limit flow
(:mod:`resgp.core.limit`; docs/theory.md, "The tabulated flow map") maps the input
covariances to

.. math:: K_{ab} = F(s_a, s_b, \rho_0), \qquad \Theta_{ab} = G(s_a, s_b, \rho_0)
          \quad (\Theta_0 = q_0), \qquad s = \log q_0,

smooth functions of three variables, symmetric in :math:`(s_a, s_b)`, the same for every pair.
Instead of integrating the ODE for each of the N x M pairs, :func:`tabulate`

1. solves the flow ONCE at the nodes of a Chebyshev-Lobatto tensor grid (``n_s`` nodes in
   each log-variance axis, ``n_rho`` in :math:`\rho_0`; only :math:`\rho_0 \ge 0` when the
   flow is odd in :math:`q_{ab}`), with
   :func:`resgp.core.limit.pair_flow` and, for gradients, its forward sensitivities to
   :math:`q_{aa}, q_{bb}, q_{ab}`;
2. takes Chebyshev coefficients (DCT-I on each axis) of every tabulated function: the values,
   their velocity at T (:math:`\partial_T F = v(q_T)`, exact for an autonomous flow) and their
   derivatives along "both variances + 1", "the covariance + 1" and "q_0 scaled" (a bias
   variance moves all three entries, a weight variance scales them), and with ``partials``
   along "the row variance + 1" (per-feature weight variances need d/dq_aa and d/dq_bb apart),
   combined before compression so that each hyperparameter's derivative is ONE more series;
3. compresses each slice :math:`C_{\cdot\cdot k} = \sum_r \sigma_{kr} u_{kr} v_{kr}^T` (SVD)
   and keeps only the terms whose bound :math:`\sigma\|u\|_1\|v\|_1` is needed
   (:func:`_compress`);
4. evaluates per pair :math:`\sum_k T_k(\rho_0) \sum_r g_{kr}(a) h_{kr}(b)` by Clenshaw's
   recurrence (:func:`resgp.core.chebyshev.clenshaw`: one matrix product per degree, the
   terms padded to a rectangle of degrees x ranks), tile by tile (:mod:`resgp.core.tiling`).

Panels: the log-variance axis is cut into fixed panels :math:`[kW, (k+1)W)`, ``W`` =
:data:`PANEL_WIDTH`, the same for every call; a table covers one pair of panels
(:func:`table`, cached). A kernel entry is computed from the table of its own two panels,
whatever else is in the batch: its value does not depend on the other inputs.

Error control: the grid starts at ``n_s`` = 13 (9 when ``tol`` > 1e-10), ``n_rho`` = 41 and
is refined (up to 33 and 161 nodes; the next size predicted from the fitted geometric decay)
until the two trailing coefficients on each axis of every table are below ``tol`` relative to
its own maximum; the compression drops terms with a total bound of at most ``tol``; the grid's
ODE runs at ``tol / 10``. ``info["error_estimate"]`` is the sum of these. The derivative tables (gradients)
are converged to ``DERIVATIVE_FACTOR * tol`` = 1e3 tol.

Quadrature activations (tanh, callables) are tabulated with the Mehler order whose range
(``mehler_max``) covers the flow's largest variance, up to 1024 terms.
:func:`table` returns None (the caller then integrates every pair of the block) when the
activation is homogeneous or not analytic (the ReLU family is non-analytic at
:math:`\rho = \pm 1`; ReLU has the exact angle flow of :mod:`resgp.core.relu_flow`), the
flow's variances pass every Mehler range, the flow overflows on the grid, or the grid cap is
reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import chebyshev, limit
from .activations import get_activation
from .velocity import velocity
from .x64 import float64

__all__ = ["FlowTable", "table", "panel", "TOL", "PANEL_WIDTH"]

TOL = 1e-12
PANEL_WIDTH = 1.0  # of a panel in log q (a factor e = 2.7 in variance)
# node counts: a coarse ladder (each size is one more compiled grid solve); last = cap
S_NODES = (9, 13, 17, 25, 33)  # per log-variance axis
# the first guess on that axis: 13 nodes at tol <= 1e-10 (no panel of erf, GELU, sin or tanh met
# 1e-12 with fewer, so a 9-node grid was a wasted solve and compile), 9 at coarser tolerances
FIRST_S = {True: 1, False: 0}
RHO_NODES = (41, 57, 81, 113, 161)  # in rho_0
ODE_FACTOR = 1e-1  # the grid's ODE is solved at tol * ODE_FACTOR
DERIVATIVE_FACTOR = 1e3  # the derivative tables' tolerance relative to the values'
MIXTURE_TABLE_ORDER = 4096  # the series order of tanh and the sigmoid in every table (q <= 24.7)

# the tabulated functions of one output ("nngp" or "ntk"): the value, d/dT, the derivatives
# along "both variances + 1", "the covariance + 1" and "q_0 scaled"; their parity in rho_0 when
# the flow is odd in q_ab (d/dq_ab of an odd function is even)
PARTS = ("value", "T", "diag", "ab", "scale", "aa")
PARITY = {"value": -1.0, "T": -1.0, "diag": -1.0, "ab": 1.0, "scale": -1.0, "aa": -1.0}
# "aa" (tables with partials=True): the derivative along the row variance alone, d/dq_0(a, a);
# d/dq_0(b, b) is then "diag" - "aa" (per-feature weight variances need the two apart)


# ----------------------------------------------------------------------------- grid solve


_ODD = {}


ODD_CHECK_VARIANCES = (0.25, 1.0, 4.0)  # where _is_odd looks (fixed: a property of phi)


def _is_odd(act, ntk):
    """True when the dual is odd in q_ab (and the derivative dual even): then the flow commutes
    with q_ab -> -q_ab, Theta -> -Theta, and only rho_0 >= 0 is solved. An odd phi makes the
    dual odd at every variance; checked numerically at the fixed ODD_CHECK_VARIANCES (not at a
    call's own, where the duals may underflow to zero and look odd), cached per activation."""
    key = (act, bool(ntk))
    if key not in _ODD:
        q = np.array(ODD_CHECK_VARIANCES)
        qa, qb = q[:, None, None], q[None, :, None]
        c = np.linspace(0.1, 1.0, 5)[None, None, :] * np.sqrt(qa * qb)
        with float64():
            duals = [act.dual] + ([act.derivative_dual] if ntk else [])
            odd = True
            for dual, sign in zip(duals, (1.0, -1.0)):
                plus, minus = np.asarray(dual(qa, qb, c)), np.asarray(dual(qa, qb, -c))
                scale = np.abs(plus).max()
                odd &= bool(scale > 0 and np.all(np.abs(plus + sign * minus) <= 1e-14 * scale))
        _ODD[key] = odd
    return _ODD[key]


@partial(jax.jit, static_argnames=("act", "ntk", "derivatives", "partials", "rtol"))
def _grid_flow(q_rows, q_cols, rho_nodes, T, *, act, ntk, derivatives, partials, rtol):
    q_ab = rho_nodes[None, None, :] * (jnp.sqrt(q_rows)[:, None] *
                                       jnp.sqrt(q_cols)[None, :])[:, :, None]
    n, n2, m = q_rows.shape[0], q_cols.shape[0], rho_nodes.shape[0]
    tangents = None
    if derivatives:  # the variances + 1, the covariance + 1, q_0 scaled (Theta_0 = q_0 moves
        # too); with partials, the row variance + 1 alone
        ones = jnp.ones((n, n2, m))
        pair = [0.0 * ones, ones, q_ab] + ([0.0 * ones] if partials else [])
        rows = [jnp.ones(n), jnp.zeros(n), q_rows] + ([jnp.ones(n)] if partials else [])
        cols = [jnp.ones(n2), jnp.zeros(n2), q_cols] + ([jnp.zeros(n2)] if partials else [])
        pair = jnp.stack(pair)
        tangents = (jnp.stack(rows), jnp.stack(cols), pair,
                    pair if ntk else jnp.zeros(pair.shape))
    y, S, info = limit.pair_flow(act, T, q_rows, q_cols, q_ab, q_ab if ntk else None,
                                 rtol=rtol, atol=rtol, tangents=tangents)
    q_T, q_T2, K, theta = y
    v, v_theta = velocity(act, q_T[:, None, None], q_T2[None, :, None], K, theta if ntk else None)
    out = {"nngp": {"value": K, "T": v}}
    if ntk:
        out["ntk"] = {"value": theta, "T": v_theta}
    if derivatives:
        for o, k in (("nngp", 2),) + ((("ntk", 3),) if ntk else ()):
            out[o].update(diag=S[k][0], ab=S[k][1], scale=S[k][2])
            if partials:
                out[o]["aa"] = S[k][3]
    return out, info["status"]


def _solve_grid(q_rows, q_cols, rho_nodes, *, T, act, ntk, derivatives, rtol, odd,
                partials=False):
    """{output: {part: grid (ns, ns, nr)}}, or None when the flow overflows or fails."""
    if odd:
        half = (rho_nodes.size + 1) // 2
        grids = _solve_grid(q_rows, q_cols, rho_nodes[:half], T=T, act=act, ntk=ntk,
                            derivatives=derivatives, rtol=rtol, odd=False, partials=partials)
        if grids is None:
            return None
        def mirror(g, sign):  # noqa: E306
            return np.concatenate([g, sign * g[:, :, half - 2 :: -1]], axis=2)
        return {o: {p: mirror(g, PARITY[p]) for p, g in parts.items()}
                for o, parts in grids.items()}
    with float64():
        out, status = _grid_flow(jnp.asarray(q_rows), jnp.asarray(q_cols),
                                 jnp.asarray(rho_nodes), jnp.float64(T),
                                 act=act, ntk=ntk, derivatives=derivatives,
                                 partials=bool(derivatives and partials), rtol=float(rtol))
        if int(status) != 0:
            return None
        grids = {o: {p: np.asarray(g) for p, g in parts.items()} for o, parts in out.items()}
    if not all(np.isfinite(g).all() for parts in grids.values() for g in parts.values()):
        return None
    return grids


# ----------------------------------------------------------------------------- compression


SLOT_STEP = 4  # degree slots and ranks are padded to multiples of this (few compiled shapes)


@dataclass
class _Compressed:
    ranks: tuple  # kept terms per degree slot
    parity: int | None  # 0 / 1: only even / odd rho-degrees (slot i is degree 2i + parity)
    left: np.ndarray  # (D, R, n_s): sqrt(sigma) u of each term, zero-padded
    right: np.ndarray  # (D, R, n_s): sqrt(sigma) v
    dropped: float  # bound on the dropped terms (absolute)


def _compress(C, budget):
    """SVD-compress the slices C[:, :, k]; a term's bound is sigma ||u||_1 ||v||_1 (Chebyshev
    polynomials are at most 1 in magnitude on the panel): independent of the data. The kept
    terms go into a rectangular array of degree slots x ranks, padded to multiples of
    SLOT_STEP; a padding slot of a degree holds its largest dropped term (free accuracy)."""
    n_s, n_c, nr = C.shape
    terms = []  # (bound, k, sigma, u, v)
    for k in range(nr):
        if not np.any(C[:, :, k]):
            continue
        U, sig, Vt = np.linalg.svd(C[:, :, k])
        for r in range(sig.size):
            if sig[r] > 0:
                bound = sig[r] * np.abs(U[:, r]).sum() * np.abs(Vt[r]).sum()
                terms.append((bound, k, sig[r], U[:, r], Vt[r]))
    terms.sort(key=lambda t: t[0])
    dropped, cut = 0.0, 0
    while cut < len(terms) and dropped + terms[cut][0] <= budget:
        dropped += terms[cut][0]
        cut += 1
    kept, spare = terms[cut:], terms[:cut][::-1]
    degrees = {t[1] for t in kept}
    parity = next(iter(degrees)) % 2 if degrees and len({k % 2 for k in degrees}) == 1 else None
    step = 1 if parity is None else 2
    first = 0 if parity is None else parity
    slot = lambda k: (k - first) // step  # noqa: E731
    slots = max((slot(k) for k in degrees), default=0) + 1
    ranks = [0] * slots
    for t in kept:
        ranks[slot(t[1])] += 1
    D = -(-slots // SLOT_STEP) * SLOT_STEP
    R = min(-(-max(ranks) // SLOT_STEP) * SLOT_STEP, min(n_s, n_c)) if kept else 1
    left, right = np.zeros((D, R, n_s)), np.zeros((D, R, n_c))
    filled = [0] * D
    for t in sorted(kept, key=lambda t: -t[0]) + spare:  # kept first, then the largest dropped
        if (t[1] - first) % step or slot(t[1]) >= D:
            continue
        i = slot(t[1])
        if filled[i] < R:
            left[i, filled[i]], right[i, filled[i]] = math.sqrt(t[2]) * t[3], math.sqrt(t[2]) * t[4]
            filled[i] += 1
    return _Compressed(tuple(ranks), parity, left, right, dropped)


# ----------------------------------------------------------------------------- evaluation


@partial(jax.jit, static_argnames=("parities", "diagonal"))
def _evaluate(z1, z2, coefs, *, parities, diagonal):
    from .inputs import covariance

    rho, _ = covariance(z1, jnp.ones(z1.shape[0]), z2, jnp.ones(z2.shape[0]), diagonal, xp=jnp)
    return tuple(chebyshev.clenshaw(rho, A, B, p) for (A, B), p in zip(coefs, parities))


def panel(q):
    """The panel index floor(log(q) / PANEL_WIDTH) of each variance (int array)."""
    return np.floor(np.log(np.asarray(q, dtype=np.float64)) / PANEL_WIDTH).astype(np.int64)


def _basis(q, s_range, n_s):
    s0, s1 = s_range
    x = (2.0 * np.log(np.asarray(q, dtype=np.float64)) - (s0 + s1)) / (s1 - s0)
    return chebyshev.basis(np.clip(x, -1.0, 1.0), n_s)


@dataclass
class FlowTable:
    """The tabulated flow map at depth time ``T`` on one pair of panels; build it with
    :func:`table`.

    Attributes: ``panels`` (i, j); ``s_rows``, ``s_cols`` the log-variance ranges covered by
    rows and columns; ``n_s`` nodes per log-variance axis; ``coefficients``: {output: {part:
    Chebyshev tensor (n_s, n_s, n_rho)}} for the outputs "nngp" (and "ntk") and the parts of
    :data:`PARTS` that were tabulated; ``activation``: the one integrated (for quadrature
    activations, at the Mehler order the table needed); ``info``: dict with ``n_s``,
    ``n_rho``, ``order``, ``terms`` and ``degree`` (per compressed series), ``error_estimate``
    (relative to the largest tabulated value), ``max_value``.
    """

    T: float
    activation: object
    panels: tuple
    s_rows: tuple
    s_cols: tuple
    n_s: int
    coefficients: dict
    tol: float
    maxima: dict
    info: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def covers(self, q_rows, q_cols):
        """True when the row (column) variances lie in the table's row (column) panel."""
        return bool(np.all(panel(q_rows) == self.panels[0]) and
                    np.all(panel(q_cols) == self.panels[1]))

    def series(self, output, combination):
        """The compressed series of sum_p c_p C[output][p] for ``combination`` ((part, c), ...)."""
        key = (output, combination)
        if key not in self._cache:
            if output not in self.coefficients:
                raise ValueError(f"this table has no {output} part (table(..., ntk=True))")
            parts = self.coefficients[output]
            for part, _ in combination:
                if part not in parts:
                    raise ValueError(f"this table has no {part!r} part (table(..., "
                                     "derivatives=True))")
            C = sum(c * parts[p] for p, c in combination)
            budget = self.tol * sum(abs(c) * self.maxima[output][p] for p, c in combination)
            comp = _compress(C, budget)
            self._cache[key] = comp
            self.info["terms"][f"{output}:{combination}"] = int(sum(comp.ranks))
            self.info["degree"][f"{output}:{combination}"] = (
                len(comp.ranks) - 1 if comp.parity is None
                else 2 * (len(comp.ranks) - 1) + comp.parity)
        return self._cache[key]

    def evaluate_tile(self, z1, n1, z2, n2, requests, diagonal=False):
        """Tabulated functions at the pairs of a tile.

        Parameters
        ----------
        z1, n1 : arrays (b1, k), (b1,)
            Row features (unit directions and norms, :func:`resgp.core.inputs.features`); rows
            with zero norm are padding (their outputs are meaningless).
        z2, n2 : arrays (b2, k), (b2,)
            Column features.
        requests : sequence of (output, combination)
            What to evaluate, e.g. ``("nngp", (("value", 1.0),))``.
        diagonal : bool
            A diagonal tile of K(X, X) (correlations exactly 1 on its diagonal).

        Returns
        -------
        list of arrays (b1, b2), one per request.
        """
        q1, q2 = n1 * n1, n2 * n2
        U1 = _basis(np.where(q1 > 0, q1, math.exp(self.s_rows[0])), self.s_rows, self.n_s)
        U2 = _basis(np.where(q2 > 0, q2, math.exp(self.s_cols[0])), self.s_cols, self.n_s)
        comps = [self.series(output, combination) for output, combination in requests]
        D = max(c.left.shape[0] for c in comps)
        R = max(c.left.shape[1] for c in comps)

        def padded(x, U):  # (D, R, points): the basis applied, padded to the common shape
            out = np.zeros((D, R, U.shape[0]))
            out[:x.shape[0], :x.shape[1]] = x @ U.T
            return out

        with float64():
            coefs = tuple((jnp.asarray(padded(c.left, U1)), jnp.asarray(padded(c.right, U2)))
                          for c in comps)
            return _evaluate(jnp.asarray(z1), jnp.asarray(z2), coefs,
                             parities=tuple(c.parity for c in comps), diagonal=bool(diagonal))


def _top_variance(act, T, q):
    """q_T of the variance q (the largest a panel's flow reaches: q_T grows with q_0)."""
    from .diagonal import diagonal

    try:
        values = diagonal(act, T, np.array([q]), rtol=1e-8, atol=1e-8)
    except (RuntimeError, FloatingPointError):  # the panel's flow blows up: no table
        return math.inf
    return float(values[0][0])


def _order_for(act, T, q_hi):
    """Callables: the activation at the smallest Mehler order whose range covers the flow from
    q_hi (:func:`resgp.core.activations.series_for`). tanh and the sigmoid: their series at
    MIXTURE_TABLE_ORDER where its range covers the flow. None beyond (no table: the direct sum
    or the graded rule on a grid of thousands of pairs costs more than the block's own pairs)."""
    if act.order is None:
        return act
    from .activations import SERIES_MARGIN, at_order, series_for, series_only

    top = _top_variance(act, T, q_hi) if T > 0 else q_hi
    if act.quadrature is None:  # tanh, the sigmoid: one order for every table (each order is
        # one more compiled grid solve; a grid's series is cheap at any order)
        full = at_order(act, MIXTURE_TABLE_ORDER)
        return series_only(full) if SERIES_MARGIN * top <= full.mehler_max else None
    return series_for(act, top)


def table(i, j, *, T, activation, ntk=False, tol=TOL, derivatives=False, partials=False):
    """The flow map tabulated on the panels (i, j) (cached: a later call returns the same
    table; one with ``derivatives`` also serves calls without, one with ``partials`` both).

    Parameters
    ----------
    i, j : int
        Panels of the rows and the columns (:func:`panel`).
    T : float
        Depth time (``branch_variance``) > 0.
    activation : name, Activation or callable
    ntk : bool
        Tabulate the NTK (started at Theta_0 = q_0) as well.
    tol : float
        Target error relative to the largest value of each table, in [1e-13, 1e-3].
    derivatives : bool
        Also tabulate the derivatives along the variances, the covariance and a scale of q_0
        (for gradients: a bias variance moves all three, a weight variance scales q_0).
    partials : bool
        With ``derivatives``: also the derivative along the row variance alone (part "aa",
        d/dq_0(a, a); that along the column variance is "diag" - "aa"), which per-feature
        weight variances need. One more tangent in the grid solve.

    Returns
    -------
    FlowTable or None
        None when the table cannot be built (see the module docstring).
    """
    act = get_activation(activation)
    if not (1e-13 <= float(tol) <= 1e-3):
        raise ValueError(f"tol must be in [1e-13, 1e-3], got {tol}")
    if ntk and act.derivative_dual is None:
        raise ValueError(f"activation {act.name!r} has no derivative dual: no NTK")
    key = (act, float(T), bool(ntk), float(tol), int(i), int(j))
    level = 2 if (derivatives and partials) else int(bool(derivatives))  # what is tabulated
    for have in range(2, level - 1, -1):  # a richer table serves too
        if key + (have,) in _TABLES:
            return _TABLES[key + (have,)]
    if len(_TABLES) >= MAX_TABLES:
        _TABLES.pop(next(iter(_TABLES)))
    _TABLES[key + (level,)] = _tabulate(int(i), int(j), float(T), act, bool(ntk), float(tol),
                                        level >= 1, level == 2)
    return _TABLES[key + (level,)]


_TABLES = {}
MAX_TABLES = 256


def _tabulate(i, j, T, act, ntk, tol, derivatives, partials=False):
    if act.homogeneous or not act.analytic:
        return None
    s_rows = (i * PANEL_WIDTH, (i + 1) * PANEL_WIDTH)
    s_cols = (j * PANEL_WIDTH, (j + 1) * PANEL_WIDTH)
    act = _order_for(act, T, math.exp(max(s_rows[1], s_cols[1])))
    if act is None:
        return None
    rtol = max(tol * ODE_FACTOR, 1e-14)
    odd = _is_odd(act, ntk)
    i_s, i_r = FIRST_S[tol <= 1e-10], 0
    while True:
        n_s, n_r = S_NODES[i_s], RHO_NODES[i_r]
        x = chebyshev.lobatto(n_s)
        q_rows = np.exp(0.5 * (s_rows[0] + s_rows[1]) + 0.5 * PANEL_WIDTH * x)
        q_cols = np.exp(0.5 * (s_cols[0] + s_cols[1]) + 0.5 * PANEL_WIDTH * x)
        grids = _solve_grid(q_rows, q_cols, chebyshev.lobatto(n_r), T=T, act=act, ntk=ntk,
                            derivatives=derivatives, rtol=rtol, odd=odd, partials=partials)
        if grids is None:
            return None
        coefs, maxima, env_s, env_r, peak = {}, {}, np.zeros(n_s), np.zeros(n_r), 0.0
        for output, parts in grids.items():
            coefs[output], maxima[output] = {}, {}
            for part, g in parts.items():
                scale = maxima[output][part] = float(np.abs(g).max())
                if not np.isfinite(scale):
                    return None
                if output == "nngp" and part == "value":
                    peak = scale
                c = chebyshev.coefficients(chebyshev.coefficients(
                    chebyshev.coefficients(g, 0), 1), 2)
                coefs[output][part] = c
                if scale > 0:  # derivative tables to DERIVATIVE_FACTOR * tol (gradients)
                    scale *= 1.0 if part == "value" else DERIVATIVE_FACTOR
                    env_s = np.maximum(env_s, np.maximum(np.abs(c).max(axis=(1, 2)),
                                                         np.abs(c).max(axis=(0, 2))) / scale)
                    env_r = np.maximum(env_r, np.abs(c).max(axis=(0, 1)) / scale)
        if peak == 0.0:
            return None
        tail_s, tail_r = float(env_s[-2:].max()), float(env_r[-2:].max())
        ok_s, ok_r = tail_s <= tol, tail_r <= tol
        if ok_s and ok_r:
            break
        if (not ok_s and i_s == len(S_NODES) - 1) or (not ok_r and i_r == len(RHO_NODES) - 1):
            return None  # the cap did not converge
        if not ok_s:  # the predicted size, at most the cap (tried once before giving up)
            i_s = min(max(i_s + 1, chebyshev.level(S_NODES, chebyshev.needed(env_s, tol))),
                      len(S_NODES) - 1)
        if not ok_r:
            i_r = min(max(i_r + 1, chebyshev.level(RHO_NODES, chebyshev.needed(env_r, tol))),
                      len(RHO_NODES) - 1)
    info = {"n_s": n_s, "n_rho": n_r, "terms": {}, "degree": {}, "max_value": peak,
            "order": act.order,
            "error_estimate": 2.0 * max(tail_s, tail_r) + tol + rtol}
    return FlowTable(T, act, (i, j), s_rows, s_cols, n_s, coefs, tol, maxima, info)
