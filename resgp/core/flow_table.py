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
   :math:`s \in [s_{\min}, s_{\max}]`, the data's range, on both axes, ``n_rho`` in
   :math:`\rho_0`; only :math:`\rho_0 \ge 0` when the flow is odd in :math:`q_{ab}`), with
   :func:`resgp.core.limit.pair_flow` and, for gradients, its forward sensitivities to
   :math:`q_{aa}, q_{bb}, q_{ab}`;
2. takes Chebyshev coefficients (DCT-I on each axis) of every tabulated function: the values,
   their velocity at T (:math:`\partial_T F = v(q_T)`, exact for an autonomous flow) and their
   derivatives along "both variances + 1", "the covariance + 1" and "q_0 scaled" (a bias
   variance moves all three entries, a weight variance scales them), combined before
   compression so that each hyperparameter's derivative is ONE more series;
3. compresses each symmetric slice :math:`C_{\cdot\cdot k} = \sum_r \lambda_{kr} w_{kr}
   w_{kr}^T` and keeps only the terms whose exact bound is needed (:func:`_compress`);
4. evaluates per pair :math:`\sum_k T_k(\rho_0) \sum_r \pm g_{kr}(a) g_{kr}(b)` by Clenshaw's
   recurrence (:func:`resgp.core.chebyshev.series`), tile by tile (:mod:`resgp.core.tiling`).

Error control: the grid starts at ``n_s`` = 15, ``n_rho`` = 41 and is refined (up to 49 and 161
nodes; the next size predicted from the fitted geometric decay) until the two trailing
coefficients on each axis of every table are below ``tol`` relative to its own maximum; the
compression drops terms with a total bound of at most ``tol``; the grid's ODE runs at
``tol / 10``. ``info["error_estimate"]`` is the sum of these.

:func:`tabulate` returns None (the caller then integrates every pair) when a variance is zero
or not finite, the activation is homogeneous (the ReLU family is non-analytic at
:math:`\rho = \pm 1`; it has the exact angle flow of :mod:`resgp.core.relu_flow`), the variances
span more than a factor 1e6, the flow overflows on the grid, or the grid cap is reached.
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

__all__ = ["FlowTable", "tabulate", "TOL"]

TOL = 1e-10
S_NODES = (15, 17, 21, 25, 33, 41, 49)  # per log-variance axis; first = initial guess, last = cap
RHO_NODES = (41, 49, 57, 65, 81, 97, 129, 161)  # in rho_0
ODE_FACTOR = 1e-1  # the grid's ODE is solved at tol * ODE_FACTOR
MAX_LOG_RANGE = math.log(1e6)
DEGENERATE = 1e-13  # relative width of the log-variance range below which one node is used

# the tabulated functions of one output ("nngp" or "ntk"): the value, d/dT, the derivatives
# along "both variances + 1", "the covariance + 1" and "q_0 scaled"; their parity in rho_0 when
# the flow is odd in q_ab (d/dq_ab of an odd function is even)
PARTS = ("value", "T", "diag", "ab", "scale")
PARITY = {"value": -1.0, "T": -1.0, "diag": -1.0, "ab": 1.0, "scale": -1.0}


# ----------------------------------------------------------------------------- grid solve


_ODD = {}


def _is_odd(act, q_nodes, ntk):
    """True when the dual is odd in q_ab (and the derivative dual even): then the flow commutes
    with q_ab -> -q_ab, Theta -> -Theta, and only rho_0 >= 0 is solved. Checked numerically
    at the grid's variances; cached per activation."""
    key = (act, bool(ntk))
    if key not in _ODD:
        qa, qb = q_nodes[:, None, None], q_nodes[None, :, None]
        c = np.linspace(0.1, 1.0, 5)[None, None, :] * np.sqrt(qa * qb)
        with float64():
            duals = [act.dual] + ([act.derivative_dual] if ntk else [])
            signs = [1.0, -1.0]
            odd = True
            for dual, sign in zip(duals, signs):
                plus, minus = np.asarray(dual(qa, qb, c)), np.asarray(dual(qa, qb, -c))
                odd &= bool(np.all(np.abs(plus + sign * minus) <= 1e-14 * np.abs(plus).max()))
        _ODD[key] = odd
    return _ODD[key]


@partial(jax.jit, static_argnames=("act", "ntk", "derivatives", "rtol"))
def _grid_flow(q_nodes, rho_nodes, T, *, act, ntk, derivatives, rtol):
    r = jnp.sqrt(q_nodes)
    q_ab = rho_nodes[None, None, :] * (r[:, None] * r[None, :])[:, :, None]
    n, m = q_nodes.shape[0], rho_nodes.shape[0]
    tangents = None
    if derivatives:  # the variances + 1, the covariance + 1, q_0 scaled (Theta_0 = q_0 moves too)
        one, zero, ones = jnp.ones(n), jnp.zeros(n), jnp.ones((n, n, m))
        pair = jnp.stack([0.0 * ones, ones, q_ab])
        tangents = (jnp.stack([one, zero, q_nodes]), jnp.stack([one, zero, q_nodes]), pair,
                    pair if ntk else jnp.zeros((3, n, n, m)))
    y, S, info = limit.pair_flow(act, T, q_nodes, q_nodes, q_ab, q_ab if ntk else None,
                                 rtol=rtol, atol=rtol, tangents=tangents)
    q_T, _, K, theta = y
    v, v_theta = velocity(act, q_T[:, None, None], q_T[None, :, None], K, theta if ntk else None)
    out = {"nngp": {"value": K, "T": v}}
    if ntk:
        out["ntk"] = {"value": theta, "T": v_theta}
    if derivatives:
        out["nngp"].update(diag=S[2][0], ab=S[2][1], scale=S[2][2])
        if ntk:
            out["ntk"].update(diag=S[3][0], ab=S[3][1], scale=S[3][2])
    return out, info["status"]


def _solve_grid(q_nodes, rho_nodes, *, T, act, ntk, derivatives, rtol, odd):
    """{output: {part: grid (ns, ns, nr)}}, or None when the flow overflows or fails."""
    if odd:
        half = (rho_nodes.size + 1) // 2
        grids = _solve_grid(q_nodes, rho_nodes[:half], T=T, act=act, ntk=ntk,
                            derivatives=derivatives, rtol=rtol, odd=False)
        if grids is None:
            return None
        def mirror(g, sign):  # noqa: E306
            return np.concatenate([g, sign * g[:, :, half - 2 :: -1]], axis=2)
        return {o: {p: mirror(g, PARITY[p]) for p, g in parts.items()}
                for o, parts in grids.items()}
    with float64():
        out, status = _grid_flow(jnp.asarray(q_nodes), jnp.asarray(rho_nodes), jnp.float64(T),
                                 act=act, ntk=ntk, derivatives=derivatives, rtol=float(rtol))
        if int(status) != 0:
            return None
        grids = {o: {p: np.asarray(g) for p, g in parts.items()} for o, parts in out.items()}
    if not all(np.isfinite(g).all() for parts in grids.values() for g in parts.values()):
        return None
    return grids


# ----------------------------------------------------------------------------- compression


def _profile(ranks, parity, n_s):
    """A static term structure covering ``ranks`` (terms per rho-degree), from a small family:
    degrees rounded up to a multiple of 4, ranks a linear envelope capped at n_s (few distinct
    structures: few compilations of the evaluation kernel)."""
    kmax = max((k for k, r in enumerate(ranks) if r > 0), default=0)
    K = 4 * (kmax // 4 + 1)

    def envelope(r0):
        return [0 if parity is not None and k % 2 != parity
                else min(n_s, 1 + math.ceil((r0 - 1) * (K - 1 - k) / max(K - 1, 1)))
                for k in range(K)]

    r0 = 1
    while True:
        prof = envelope(r0)
        if all(p >= (ranks[k] if k < len(ranks) else 0) for k, p in enumerate(prof)) \
                or r0 > 4 * n_s:
            return tuple(prof)
        r0 += 1


@dataclass
class _Compressed:
    structure: tuple  # terms per rho-degree
    vectors: np.ndarray  # (n_s, R): sqrt|lambda| w for each term, degree-major
    signs: np.ndarray  # (R,)
    dropped: float  # bound on the dropped terms (absolute)


def _compress(C, U, budget):
    """Eigen-compress the slices C[:, :, k] (symmetrised); U (P, n_s): the basis at the data."""
    n_s, _, nr = C.shape
    terms = []  # (bound, k, lam, w)
    for k in range(nr):
        Ck = 0.5 * (C[:, :, k] + C[:, :, k].T)
        if not np.any(Ck):
            continue
        lam, W = np.linalg.eigh(Ck)
        peak = np.abs(U @ W).max(axis=0)
        terms += [(abs(lam[r]) * peak[r] ** 2, k, lam[r], W[:, r]) for r in range(n_s) if lam[r]]
    terms.sort(key=lambda t: t[0])
    dropped, cut = 0.0, 0
    while cut < len(terms) and dropped + terms[cut][0] <= budget:
        dropped += terms[cut][0]
        cut += 1
    kept, spare = terms[cut:], terms[:cut][::-1]
    ranks = [0] * nr
    for _, k, _, _ in kept:
        ranks[k] += 1
    degrees = {k for _, k, _, _ in kept}
    parity = next(iter(degrees)) % 2 if degrees and len({k % 2 for k in degrees}) == 1 else None
    structure = _profile(ranks, parity, n_s)
    by_degree = {k: [] for k in range(len(structure))}
    for t in sorted(kept, key=lambda t: -t[0]) + spare:
        if t[1] < len(structure) and len(by_degree[t[1]]) < structure[t[1]]:
            by_degree[t[1]].append(t)
    vectors, signs = [], []
    for k, size in enumerate(structure):
        for t in by_degree[k]:
            vectors.append(math.sqrt(abs(t[2])) * t[3])
            signs.append(1.0 if t[2] > 0 else -1.0)
        vectors += [np.zeros(n_s)] * (size - len(by_degree[k]))
        signs += [1.0] * (size - len(by_degree[k]))
    return _Compressed(structure, np.array(vectors).T.reshape(n_s, -1), np.array(signs), dropped)


# ----------------------------------------------------------------------------- evaluation


@partial(jax.jit, static_argnames=("structures",))
def _evaluate_rho(rho, coefs, *, structures):
    return tuple(chebyshev.series(rho, A, B, s) for (A, B), s in zip(coefs, structures))


@dataclass
class FlowTable:
    """The tabulated flow map at depth time ``T``; build it with :func:`tabulate`.

    Attributes: ``s_range`` (s_min, s_max) of the log-variances covered; ``n_s`` nodes per
    log-variance axis; ``coefficients``: {output: {part: Chebyshev tensor (n_s, n_s, n_rho)}}
    for the outputs "nngp" (and "ntk") and the parts of :data:`PARTS` that were tabulated;
    ``info``: dict with ``n_s``, ``n_rho``, ``terms`` and ``degree`` (per compressed series),
    ``error_estimate`` (relative to the largest tabulated value), ``max_value``.
    """

    T: float
    activation: object
    s_range: tuple
    n_s: int
    coefficients: dict
    data_basis: np.ndarray
    tol: float
    maxima: dict
    info: dict = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    def basis(self, q):
        s0, s1 = self.s_range
        s = np.log(np.asarray(q, dtype=np.float64))
        x = np.zeros_like(s) if s1 == s0 else (2.0 * s - (s0 + s1)) / (s1 - s0)
        return chebyshev.basis(x, self.n_s)

    def covers(self, q):
        """True when all variances ``q`` are positive, finite and inside the tabulated range."""
        q = np.asarray(q, dtype=np.float64)
        if q.size == 0:
            return True
        if not (np.all(np.isfinite(q)) and np.all(q > 0)):
            return False
        s0, s1 = self.s_range
        s = np.log(q)
        slack = DEGENERATE * max(1.0, abs(s0), abs(s1))
        return bool(s.min() >= s0 - slack and s.max() <= s1 + slack)

    def series(self, output, combination):
        """The compressed series of sum_p c_p C[output][p] for ``combination`` ((part, c), ...)."""
        key = (output, combination)
        if key not in self._cache:
            if output not in self.coefficients:
                raise ValueError(f"this table has no {output} part (tabulate(..., ntk=True))")
            parts = self.coefficients[output]
            for part, _ in combination:
                if part not in parts:
                    raise ValueError(f"this table has no {part!r} part (tabulate(..., "
                                     "derivatives=True))")
            C = sum(c * parts[p] for p, c in combination)
            budget = self.tol * sum(abs(c) * self.maxima[output][p] for p, c in combination)
            comp = _compress(C, self.data_basis, budget)
            self._cache[key] = comp
            self.info["terms"][f"{output}:{combination}"] = int(sum(comp.structure))
            self.info["degree"][f"{output}:{combination}"] = len(comp.structure) - 1
        return self._cache[key]

    def evaluate_tile(self, q11, q22, rho, requests):
        """Tabulated functions at the pairs of a tile.

        Parameters
        ----------
        q11 : array (b1,)
            Row variances (inside :meth:`covers`).
        q22 : array (b2,)
            Column variances.
        rho : array (b1, b2)
            Input correlations in [-1, 1].
        requests : sequence of (output, combination)
            What to evaluate, e.g. ``("nngp", (("value", 1.0),))``.

        Returns
        -------
        list of NumPy arrays (b1, b2), one per request.
        """
        U1, U2 = self.basis(q11), self.basis(q22)
        coefs, structures = [], []
        for output, combination in requests:
            comp = self.series(output, combination)
            coefs.append(((comp.signs[:, None] * (U1 @ comp.vectors).T),
                          (U2 @ comp.vectors).T))
            structures.append(comp.structure)
        with float64():
            out = _evaluate_rho(jnp.asarray(rho),
                                tuple((jnp.asarray(a), jnp.asarray(b)) for a, b in coefs),
                                structures=tuple(structures))
            return [np.asarray(o) for o in out]


def tabulate(q, *, T, activation, ntk=False, tol=TOL, derivatives=False):
    """Tabulate the flow map for inputs whose variances are ``q``.

    Parameters
    ----------
    q : array
        Every variance that will be evaluated (rows and columns), any shape.
    T : float
        Depth time (``branch_variance``) > 0.
    activation : name, Activation or callable
    ntk : bool
        Tabulate the NTK (started at Theta_0 = q_0) as well.
    tol : float
        Target error relative to the largest value of each table, in [1e-12, 1e-3].
    derivatives : bool
        Also tabulate the derivatives along the variances, the covariance and a scale of q_0
        (for gradients: a bias variance moves all three, a weight variance scales q_0).

    Returns
    -------
    FlowTable or None
        None when the table cannot be built (see the module docstring).
    """
    act = get_activation(activation)
    if not (1e-12 <= float(tol) <= 1e-3):
        raise ValueError(f"tol must be in [1e-12, 1e-3], got {tol}")
    if ntk and act.derivative_dual is None:
        raise ValueError(f"activation {act.name!r} has no derivative dual: no NTK")
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if act.homogeneous or q.size == 0 or not np.all(np.isfinite(q)) or np.any(q <= 0):
        return None
    s = np.log(q)
    s0, s1 = float(s.min()), float(s.max())
    if s1 - s0 > MAX_LOG_RANGE:
        return None
    degenerate = (s1 - s0) <= DEGENERATE * max(1.0, abs(s0), abs(s1))
    if degenerate:
        s0 = s1 = 0.5 * (s0 + s1)
    rtol = max(float(tol) * ODE_FACTOR, 1e-14)
    levels_s = (1,) if degenerate else S_NODES
    odd = _is_odd(act, np.exp(np.array([s0, s1])), ntk)
    i_s = i_r = 0
    while True:
        n_s, n_r = levels_s[i_s], RHO_NODES[i_r]
        x = chebyshev.lobatto(n_s)
        q_nodes = np.exp(0.5 * (s0 + s1) + 0.5 * (s1 - s0) * x) if n_s > 1 else np.exp([s0])
        grids = _solve_grid(q_nodes, chebyshev.lobatto(n_r), T=T, act=act, ntk=ntk,
                            derivatives=derivatives, rtol=rtol, odd=odd)
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
                if scale > 0:
                    env_s = np.maximum(env_s, np.abs(c).max(axis=(1, 2)) / scale)
                    env_r = np.maximum(env_r, np.abs(c).max(axis=(0, 1)) / scale)
        if peak == 0.0:
            return None
        tail_s = float(env_s[-2:].max()) if n_s > 1 else 0.0
        tail_r = float(env_r[-2:].max())
        ok_s, ok_r = tail_s <= tol, tail_r <= tol
        if ok_s and ok_r:
            break
        if not ok_s:
            i_s = max(i_s + 1, chebyshev.level(levels_s, chebyshev.needed(env_s, tol)))
        if not ok_r:
            i_r = max(i_r + 1, chebyshev.level(RHO_NODES, chebyshev.needed(env_r, tol)))
        if i_s >= len(levels_s) or i_r >= len(RHO_NODES):
            return None
    x_data = (2.0 * s - (s0 + s1)) / (s1 - s0) if not degenerate else 0.0 * s
    U = chebyshev.basis(x_data, n_s)
    info = {"n_s": n_s, "n_rho": n_r, "terms": {}, "degree": {}, "max_value": peak,
            "error_estimate": 2.0 * max(tail_s, tail_r) + tol + rtol}
    return FlowTable(float(T), act, (s0, s1), n_s, coefs, U, float(tol), maxima, info)
