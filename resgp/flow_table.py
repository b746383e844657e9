r"""Infinite-depth kernels of non-homogeneous activations from a tabulated flow map.

For a pair of inputs with variances :math:`q_{aa}, q_{bb} > 0` and correlation
:math:`\rho_0 = q_{ab} / \sqrt{q_{aa} q_{bb}} \in [-1, 1]` the limit flow of THEORY.md
(:mod:`resgp.ode`) maps the input covariances to

.. math:: K_{ab} = q_{ab}(T) = F(s_a, s_b, \rho_0), \qquad
          \Theta_{ab}(T) = G(s_a, s_b, \rho_0) \quad (\Theta_0 = q_0), \qquad s = \log q_0,

two smooth functions of three variables, symmetric in :math:`(s_a, s_b)`, the same for every
pair. Instead of integrating the ODE for each of the N x M pairs (:mod:`resgp.ode`), this module

1. **tabulates** F (and G) on a Chebyshev-Lobatto tensor grid: ``n_s`` nodes in
   :math:`s \in [s_{\min}, s_{\max}]` (the range of the data's log-variances; one node when all
   variances are equal) on both axes and ``n_rho`` nodes in :math:`\rho_0 \in [-1, 1]`, by ONE
   adaptive DOP853 solve of the flow at all ``n_s^2 n_rho`` grid points (the same right-hand
   side as :func:`resgp.ode.limit_flow`, at 10x tighter tolerance than the table's; only
   :math:`\rho_0 \ge 0` when the dual is odd in :math:`q_{ab}`, e.g. erf, tanh, sin);
2. takes the Chebyshev coefficients :math:`C_{ijk}` (DCT-I on each axis), so that
   :math:`F = \sum_{ijk} C_{ijk} T_i(x_a) T_j(x_b) T_k(\rho_0)` with :math:`x` the affine image
   of :math:`s` in [-1, 1];
3. **compresses** each symmetric slice :math:`C_{\cdot\cdot k} = \sum_r \lambda_{kr} w_{kr}
   w_{kr}^T` (eigen-decomposition) and keeps only the terms whose exact bound
   :math:`|\lambda_{kr}| \max_a |w_{kr}\cdot T(x_a)| \max_b |w_{kr}\cdot T(x_b)|` is needed: the
   higher Chebyshev degrees in :math:`\rho_0` are small and of low rank (typically 60 to 120
   terms in all instead of ``n_s^2 n_rho``);
4. **evaluates** per pair :math:`F = \sum_k T_k(\rho_0) \sum_r \pm g_{kr}(a) g_{kr}(b)` by
   Clenshaw's recurrence in :math:`\rho_0`, with :math:`g_{kr}(a) = \sqrt{|\lambda_{kr}|}\,
   w_{kr}\cdot T(x_a)` precomputed per row and column: one fused, jitted float64 loop over the
   pairs (a few hundred flops per pair, no N x M temporaries), in tiles of ``TILE`` x ``TILE``
   so that the per-column factors stay in cache. For ``symmetric=True`` only the tiles on and
   above the diagonal are evaluated and mirrored (exactly symmetric, about half the work); the
   diagonal is then replaced by :func:`resgp.ode.diagonal_flow` (exact) unless
   ``diagonal="table"``.

Why plain Chebyshev in :math:`\rho_0`: the duals of erf, GELU, tanh, sin are analytic on a
neighbourhood of [-1, 1] (erf's :math:`\arcsin(c\rho)` has its branch point at
:math:`\rho = 1/c = 1 + 1/2q`), so the coefficients decay geometrically (measured: about 0.6
per degree for erf at :math:`q \approx 3`, 1e-10 at degree 30 to 45). The substitution
:math:`v = \sqrt{1 - |\rho|}` of :mod:`resgp.relu_flow` is for ReLU's :math:`\sqrt{1-\rho^2}`
singularity, absent here; a sine map :math:`\rho = \sin(\pi x / 2)` would gain about 10%.
Homogeneous activations (ReLU family: non-analytic at :math:`\rho = \pm 1`) are not tabulated.

Error control: the grid starts at ``n_s`` = 15, ``n_rho`` = 41 and is refined (up to 49 and 161
nodes; the next size predicted from the fitted geometric decay of the coefficients) until the
two trailing Chebyshev coefficients on each axis are below ``tol`` relative to
:math:`\max|F|` on the grid (``TAIL``); the compression drops terms with a total bound of at
most ``tol`` (``BUDGET``); the grid's ODE runs at rtol = atol = ``tol / 10``. ``tol`` is
relative to the largest output variance (the kernel's units are those of :math:`q_0`; the ODE's
``atol`` has the same reference). ``info["error_estimate"]`` is the sum of these three (about
1e-10 to 2e-10 for the default ``tol`` = 1e-10); measured errors are 2x to 40x below ``tol``
(tests: erf, GELU, tanh, sin, a callable, NNGP and NTK, against the ODE at rtol 1e-13; they
check 1e-9).

Fallback: :func:`limit_kernel` and :func:`tabulate` return None (the caller then integrates the
ODE, :mod:`resgp.ode`) when a variance is zero or not finite (no :math:`\log q`), the activation
is homogeneous, the variances span more than a factor ``1e6`` (``MAX_LOG_RANGE``: the error is
relative to the largest output, so the smallest entries would lose their relative accuracy,
which the ODE's ``rtol`` keeps), the flow overflows on the grid, or the grid cap
(49 x 49 x 161 nodes) is reached without convergence (a non-smooth activation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft
from scipy.integrate import DOP853

from . import ode
from ._x64 import float64

try:  # scikit-learn's dependency: BLAS threads only slow DOP853's small vector operations down
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    import contextlib

    def threadpool_limits(*args, **kwargs):
        return contextlib.nullcontext()
from .activations import get_activation

TOL = 1e-10
# Chebyshev-Lobatto node counts allowed (few distinct shapes: few compilations of the grid's
# right-hand side); the first is the initial guess, the last the cap
S_NODES = (15, 17, 21, 25, 33, 41, 49)  # per log-variance axis
RHO_NODES = (41, 49, 57, 65, 81, 97, 129, 161)  # in rho_0
TAIL = 1.0  # accept when the trailing coefficients are below TAIL * tol * max|F|
BUDGET = 1.0  # the compression drops terms whose bounds sum to at most BUDGET * tol * max|F|
ODE_FACTOR = 1e-1  # the grid's ODE is solved at tol * ODE_FACTOR (rtol and atol)
MAX_LOG_RANGE = math.log(1e6)  # q_max / q_min above 1e6: None (tol is relative to max|K|)
DEGENERATE = 1e-13  # relative width of the log-variance range below which one node is used


# ----------------------------------------------------------------------------- grid solve


@partial(jax.jit, static_argnames=("ns", "nr", "dual", "derivative_dual"))
def _grid_rhs(y, *, ns, nr, dual, derivative_dual):
    q = y[:ns]
    n = ns * ns * nr
    K = y[ns : ns + n].reshape(ns, ns, nr)
    qa, qb = q[:, None, None], q[None, :, None]
    dK = dual(qa, qb, K)
    parts = [dual(q, q, q), dK.ravel()]
    if derivative_dual is not None:
        theta = y[ns + n :].reshape(ns, ns, nr)
        parts.append((dK + theta * derivative_dual(qa, qb, K)).ravel())
    return jnp.concatenate(parts)


def _lobatto(n):
    return np.cos(np.pi * np.arange(n) / (n - 1)) if n > 1 else np.zeros(1)


_ODD = {}  # (activation, ntk) -> bool


def _is_odd(act, q_nodes, ntk):
    """True when the dual is odd in q12 (and the derivative dual even): then F(-rho) = -F(rho)
    and G(-rho) = -G(rho) exactly (the flow commutes with q12 -> -q12, Theta -> -Theta), so
    only rho >= 0 is solved. Checked numerically at the grid's variances (odd activations:
    erf, tanh, sin without offsets); cached per activation."""
    key = (act, bool(ntk))
    if key not in _ODD:
        _ODD[key] = _check_odd(act, q_nodes, ntk)
    return _ODD[key]


def _check_odd(act, q_nodes, ntk):
    qa, qb = q_nodes[:, None, None], q_nodes[None, :, None]
    c = np.linspace(0.1, 1.0, 5)[None, None, :] * np.sqrt(qa * qb)
    with float64():
        plus = np.asarray(act.dual(qa, qb, c))
        minus = np.asarray(act.dual(qa, qb, -c))
        if not np.all(np.abs(plus + minus) <= 1e-14 * np.abs(plus).max()):
            return False
        if ntk:
            plus = np.asarray(act.derivative_dual(qa, qb, c))
            minus = np.asarray(act.derivative_dual(qa, qb, -c))
            if not np.all(np.abs(plus - minus) <= 1e-14 * np.abs(plus).max()):
                return False
    return True


def _solve_grid(q_nodes, rho_nodes, *, T, act, ntk, rtol, odd=False):
    """F (and G) at the grid (i, j, k): arrays (ns, ns, nr), or None when the flow overflows.

    ``odd``: solve only the nodes rho >= 0 (``rho_nodes`` symmetric, of odd length) and mirror.
    """
    if odd:
        half = (rho_nodes.size + 1) // 2
        out = _solve_grid(q_nodes, rho_nodes[:half], T=T, act=act, ntk=ntk, rtol=rtol)
        if out is None:
            return None
        mirror = lambda g: None if g is None else np.concatenate(  # noqa: E731
            [g, -g[:, :, half - 2 :: -1]], axis=2)
        return tuple(mirror(g) for g in out)
    ns, nr = q_nodes.size, rho_nodes.size
    r = np.sqrt(q_nodes)
    K0 = rho_nodes[None, None, :] * (r[:, None] * r[None, :])[:, :, None]
    # the pairs (i, i) at rho = 1 are the diagonal itself
    parts = [q_nodes, K0.ravel()] + ([K0.ravel()] if ntk else [])
    y0 = np.concatenate(parts)
    scale = float(q_nodes.max())
    with float64(), threadpool_limits(1, user_api="blas"):
        rhs = partial(_grid_rhs, ns=ns, nr=nr, dual=act.dual,
                      derivative_dual=act.derivative_dual if ntk else None)
        solver = DOP853(lambda t, y: np.asarray(rhs(y)), 0.0, y0, float(T), rtol=rtol,
                        atol=rtol * scale)
        while solver.status == "running":
            if solver.step() is not None:
                return None
    y = solver.y
    if not np.isfinite(y).all():
        return None
    n = ns * ns * nr
    F = y[ns : ns + n].reshape(ns, ns, nr)
    G = y[ns + n :].reshape(ns, ns, nr) if ntk else None
    return F, G


def _coefficients(values, axis):
    """Chebyshev coefficients from values at Lobatto nodes cos(pi j / (n-1)) along ``axis``."""
    n = values.shape[axis]
    if n == 1:
        return values.copy()
    c = scipy.fft.dct(values, type=1, axis=axis) / (n - 1)
    idx = [slice(None)] * values.ndim
    for end in (0, n - 1):
        idx[axis] = end
        c[tuple(idx)] *= 0.5
    return c


def _needed(envelope, target):
    """Predicted node count so that the coefficients beyond it are below ``target``.

    ``envelope[i]``: max |coefficient| of degree i (over the other axes). Converged: the last
    degree above target plus 3. Not converged: extrapolate the geometric decay fitted to the
    second half of the degrees above the rounding floor.
    """
    env = np.maximum(envelope, np.concatenate([envelope[1:], [0.0]]))  # odd/even parity gaps
    above = np.nonzero(env > target)[0]
    n = env.size
    if above.size == 0:
        return 1
    last = int(above[-1])
    if last < n - 2:
        return last + 3
    floor = 1e-15 * env.max()
    idx = np.nonzero(env > floor)[0]
    idx = idx[idx >= idx.max() // 2]
    if idx.size < 3:
        return 2 * n
    slope, icpt = np.polyfit(idx, np.log(env[idx]), 1)
    if slope >= -1e-3:
        return 10 * n
    return int(math.ceil((math.log(target) - icpt) / slope)) + 3


def _level(levels, n):
    """Index of the smallest allowed node count >= n (len(levels) when above the cap)."""
    for i, m in enumerate(levels):
        if m >= n:
            return i
    return len(levels)


def _chebyshev_basis(x, n):
    """T_0..T_{n-1} at x (clipped to [-1, 1]): array (len(x), n)."""
    x = np.clip(x, -1.0, 1.0)
    out = np.empty((x.size, n))
    out[:, 0] = 1.0
    if n > 1:
        out[:, 1] = x
    for i in range(2, n):
        out[:, i] = 2.0 * x * out[:, i - 1] - out[:, i - 2]
    return out


# ----------------------------------------------------------------------------- compression


def _profile(ranks, parity, n_s):
    """A static term structure covering ``ranks`` (terms per rho-degree), from a small family.

    Degrees K rounded up to a multiple of 4; ranks a linear envelope 1 + ceil((r0-1)(K-1-k)/(K-1))
    capped at n_s; degrees of the wrong parity get none. Few distinct structures mean few
    compilations of the evaluation kernel.
    """
    kmax = max((k for k, r in enumerate(ranks) if r > 0), default=0)
    K = 4 * (kmax // 4 + 1)

    def envelope(r0):
        prof = []
        for k in range(K):
            if parity is not None and k % 2 != parity:
                prof.append(0)
            else:
                prof.append(min(n_s, 1 + math.ceil((r0 - 1) * (K - 1 - k) / max(K - 1, 1))))
        return prof

    r0 = 1
    while True:
        prof = envelope(r0)
        covered = all(p >= (ranks[k] if k < len(ranks) else 0) for k, p in enumerate(prof))
        if covered or r0 > 4 * n_s:
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
        for r in range(n_s):
            if lam[r] != 0.0:
                terms.append((abs(lam[r]) * peak[r] ** 2, k, lam[r], W[:, r]))
    terms.sort(key=lambda t: t[0])
    dropped, cut = 0.0, 0
    while cut < len(terms) and dropped + terms[cut][0] <= budget:
        dropped += terms[cut][0]
        cut += 1
    kept, spare = terms[cut:], terms[:cut][::-1]  # spare: largest first
    ranks = [0] * nr
    for _, k, _, _ in kept:
        ranks[k] += 1
    degrees = {k for _, k, _, _ in kept}
    parity = None
    if degrees and len({k % 2 for k in degrees}) == 1:
        parity = next(iter(degrees)) % 2
    structure = _profile(ranks, parity, n_s)
    # fill the structure: kept terms first, then spare ones of that degree, then zeros
    by_degree = {k: [] for k in range(len(structure))}
    for t in sorted(kept, key=lambda t: -t[0]) + spare:
        if t[1] < len(structure) and len(by_degree[t[1]]) < structure[t[1]]:
            by_degree[t[1]].append(t)
    vectors, signs = [], []
    for k, size in enumerate(structure):
        chosen = by_degree[k]
        for t in chosen:
            vectors.append(math.sqrt(abs(t[2])) * t[3])
            signs.append(1.0 if t[2] > 0 else -1.0)
        for _ in range(size - len(chosen)):
            vectors.append(np.zeros(n_s))
            signs.append(1.0)
    # terms beyond the structure's last degree are dropped too (already inside the budget)
    return _Compressed(structure, np.array(vectors).T.reshape(n_s, -1), np.array(signs), dropped)


# ----------------------------------------------------------------------------- evaluation


def _clenshaw(rho, A, B, structure):
    """sum_k T_k(rho) sum_{r in degree k} A[r, a] B[r, b], written elementwise so XLA fuses it.

    Even and odd degrees are summed separately by Clenshaw's recurrence in y = T_2(rho)
    (T_{2m}(rho) = T_m(y); T_{2m+1} obeys the same recurrence in m, from T_1 = rho,
    T_3 = rho (2y - 1)): half the steps when the table has a parity (odd activations).
    """
    offsets = np.concatenate([[0], np.cumsum(structure)]).astype(int)

    def degree(k):
        g = None
        for j in range(offsets[k], offsets[k + 1]):
            term = A[j][:, None] * B[j][None, :]
            g = term if g is None else g + term
        return g

    def add(x, g):
        return x if g is None else x + g

    y = 2.0 * rho * rho - 1.0
    two_y = 2.0 * y
    total = None
    for parity in (0, 1):
        ks = [k for k in range(parity, len(structure), 2) if structure[k] > 0]
        if not ks:
            continue
        top = max(ks) // 2  # series index m of degree 2m + parity
        b1 = b2 = None  # b_{m+1}, b_{m+2}
        for m in range(top, 0, -1):
            g = degree(2 * m + parity) if structure[2 * m + parity] > 0 else None
            nb = None
            if b1 is not None:
                nb = two_y * b1 if b2 is None else two_y * b1 - b2
            nb = g if nb is None else add(nb, g)
            b1, b2 = nb, b1
        c0 = degree(parity) if structure[parity] > 0 else None
        first = (y if parity == 0 else two_y - 1.0)
        part = c0
        if b1 is not None:
            part = add(first * b1, part)
        if b2 is not None:
            part = part - b2 if part is not None else -b2
        if part is None:
            continue
        part = part if parity == 0 else rho * part
        total = part if total is None else total + part
    return jnp.zeros_like(rho) if total is None else total


@partial(jax.jit, static_argnames=("structures",))
def _evaluate_rho(rho, coefs, *, structures):
    return tuple(_clenshaw(rho, A, B, s) for (A, B), s in zip(coefs, structures))


TILE = 512  # evaluation tiles: the column-side terms (R x TILE) stay in cache


def _blocks(n):
    count = max(1, -(-n // TILE))
    size = -(-n // count)
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _evaluate_tiled(q11, q22, q12, coefs, structures, symmetric):
    """All tables at all pairs, tile by tile (for ``symmetric`` only tiles on and above the
    diagonal, mirrored: exactly symmetric, about half the work)."""
    n1, n2 = np.sqrt(q11), np.sqrt(q22)
    outs = [np.empty((q11.size, q22.size)) for _ in coefs]
    rows, cols = _blocks(q11.size), _blocks(q22.size)
    with float64():
        for bi, (i0, i1) in enumerate(rows):
            A = tuple(jnp.asarray(a[:, i0:i1]) for a, _ in coefs)
            for bj, (j0, j1) in enumerate(cols):
                if symmetric and bj < bi:
                    continue
                rho = q12[i0:i1, j0:j1] / (n1[i0:i1, None] * n2[None, j0:j1])
                np.clip(rho, -1.0, 1.0, out=rho)
                diagonal = symmetric and bi == bj
                if diagonal:
                    rho = 0.5 * (rho + rho.T)
                    np.fill_diagonal(rho, 1.0)
                blocks = _evaluate_rho(jnp.asarray(rho),
                                       tuple((a, jnp.asarray(b[:, j0:j1]))
                                             for a, (_, b) in zip(A, coefs)),
                                       structures=structures)
                for out, block in zip(outs, blocks):
                    view = out[i0:i1, j0:j1]
                    view[...] = np.asarray(block)
                    if diagonal:  # XLA's vector and scalar loops may round mirror entries apart
                        lower = np.tril_indices(i1 - i0, -1)
                        view[lower] = view.T[lower]
                    elif symmetric:
                        out[j0:j1, i0:i1] = view.T
    return outs


# ----------------------------------------------------------------------------- public API


@dataclass
class FlowTable:
    """The tabulated flow map at depth time ``T``; build it with :func:`tabulate`.

    Attributes: ``s_range`` (s_min, s_max) of the log-variances covered; ``n_s``, ``n_rho`` grid
    nodes; ``tables``: the compressed NNGP table and, with ``ntk``, the NTK table; ``info``: dict
    with ``n_s``, ``n_rho``, ``terms`` (per table), ``degree`` (per table), ``error_estimate``
    (interpolation + compression, relative to the largest tabulated value), ``max_value``.
    """

    T: float
    activation: object
    s_range: tuple
    n_s: int
    tables: dict
    info: dict = field(default_factory=dict)

    def basis(self, q):
        s0, s1 = self.s_range
        s = np.log(np.asarray(q, dtype=np.float64))
        x = np.zeros_like(s) if s1 == s0 else (2.0 * s - (s0 + s1)) / (s1 - s0)
        return _chebyshev_basis(x, self.n_s)

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

    def evaluate(self, q11, q22, q12, *, nngp=True, ntk=False, symmetric=False):
        """Kernel entries from input covariances: (K or None, Theta or None), float64 (N, M).

        q11 (N,), q22 (M,) variances inside :meth:`covers`; q12 (N, M) covariances.
        ``symmetric``: rows and columns are the same inputs; the result is then exactly
        symmetric (the diagonal is the table's value at rho = 1, not yet the diagonal flow).
        """
        q11 = np.asarray(q11, dtype=np.float64).reshape(-1)
        q22 = np.asarray(q22, dtype=np.float64).reshape(-1)
        q12 = np.asarray(q12, dtype=np.float64)
        names = [n for n, want in (("nngp", nngp), ("ntk", ntk)) if want]
        for name in names:
            if name not in self.tables:
                raise ValueError(f"this table has no {name} part (tabulate(..., ntk=True))")
        if not names:
            return None, None
        U1 = self.basis(q11)
        U2 = U1 if symmetric else self.basis(q22)
        coefs, structures = [], []
        for name in names:
            comp = self.tables[name]
            B1 = (U1 @ comp.vectors).T
            B2 = B1 if symmetric else (U2 @ comp.vectors).T
            coefs.append((comp.signs[:, None] * B1, B2))
            structures.append(comp.structure)
        out = _evaluate_tiled(q11, q22, q12, coefs, tuple(structures), bool(symmetric))
        result = dict(zip(names, out))
        return result.get("nngp"), result.get("ntk")


def tabulate(q, *, T, activation, ntk=False, tol=TOL):
    """Tabulate the flow map for inputs whose variances are ``q`` (any shape; all rows and
    columns that will be evaluated). Returns a :class:`FlowTable`, or None when the table
    cannot be built (see the module docstring: zero or non-finite variances, homogeneous
    activation, overflow, no convergence within the grid cap).

    T: depth time (``branch_variance``) > 0. tol: target error relative to the largest
    output variance, in [1e-12, 1e-3].
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
    i_s, i_r = 0, 0
    while True:
        n_s, n_r = levels_s[i_s], RHO_NODES[i_r]
        x = _lobatto(n_s)
        q_nodes = np.exp(0.5 * (s0 + s1) + 0.5 * (s1 - s0) * x) if n_s > 1 else np.exp([s0])
        try:
            solved = _solve_grid(q_nodes, _lobatto(n_r), T=T, act=act, ntk=ntk, rtol=rtol,
                                 odd=_is_odd(act, q_nodes, ntk))
        except (FloatingPointError, RuntimeError, OverflowError):
            solved = None
        if solved is None:
            return None
        grids = {"nngp": solved[0]} if not ntk else {"nngp": solved[0], "ntk": solved[1]}
        peak = max(float(np.abs(g).max()) for g in grids.values())
        if not np.isfinite(peak) or peak == 0.0:
            return None
        coefs, tail_s, tail_r = {}, 0.0, 0.0
        env_s, env_r = np.zeros(n_s), np.zeros(n_r)
        for name, g in grids.items():
            c = _coefficients(_coefficients(_coefficients(g, 0), 1), 2)
            coefs[name] = c
            env_s = np.maximum(env_s, np.abs(c).max(axis=(1, 2)))
            env_r = np.maximum(env_r, np.abs(c).max(axis=(0, 1)))
        tail_s = float(env_s[-2:].max()) if n_s > 1 else 0.0
        tail_r = float(env_r[-2:].max())
        target = TAIL * tol * peak
        ok_s, ok_r = tail_s <= target, tail_r <= target
        if ok_s and ok_r:
            break
        if not ok_s:
            i_s = max(i_s + 1, _level(levels_s, _needed(env_s, target)))
        if not ok_r:
            i_r = max(i_r + 1, _level(RHO_NODES, _needed(env_r, target)))
        if i_s >= len(levels_s) or i_r >= len(RHO_NODES):
            return None
    U = _chebyshev_basis((2.0 * s - (s0 + s1)) / (s1 - s0) if not degenerate else 0.0 * s, n_s)
    tables, info = {}, {"n_s": n_s, "n_rho": n_r, "terms": {}, "degree": {}, "max_value": peak}
    dropped = 0.0
    for name, c in coefs.items():
        comp = _compress(c, U, tol * peak * BUDGET)
        tables[name] = comp
        dropped = max(dropped, comp.dropped)
        info["terms"][name] = int(sum(comp.structure))
        info["degree"][name] = len(comp.structure) - 1
    info["error_estimate"] = (2.0 * max(tail_s, tail_r) + dropped) / peak + rtol
    return FlowTable(float(T), act, (s0, s1), n_s, tables, info)


def limit_kernel(q11, q22, q12, *, T, activation, ntk=False, nngp=True, tol=TOL,
                 symmetric=False, diagonal="ode", rtol=ode.RTOL, atol=ode.ATOL):
    r"""Infinite-depth ResNet kernel (and NTK from :math:`\Theta_0 = q_0`) via the flow table.

    q11 (N,), q22 (M,): input variances :math:`q_0(a,a), q_0(b,b)`; q12 (N, M): covariances
    :math:`q_0(a,b)`; all in the same units (squared pre-activations). T: depth time
    (``branch_variance``). ``ntk=True`` also returns :math:`\Theta_T` for the NTK started at
    :math:`\Theta_0 = q_0` (resgp.resnet_ntk on raw inputs); ``nngp=False`` skips K.
    ``symmetric=True``: rows and columns are the same inputs (q22 = q11, q12 symmetric); the
    results are then exactly symmetric and their diagonals are exactly
    :func:`resgp.ode.diagonal_flow` (at ``rtol``, ``atol``) with ``diagonal="ode"`` (the
    default), or the table's own values at :math:`\rho_0 = 1` with ``diagonal="table"``
    (same accuracy ``tol``, no extra solve: the ODE over N variances costs 5 to 10 ms for the
    closed-form duals but 0.2 to 0.8 s for tanh's quadrature at N = 2000).

    Returns ``(K, Theta)``, NumPy float64 (N, M) (``Theta`` None unless ``ntk``; ``K`` None
    when ``nngp=False``), accurate to about ``tol`` relative to the largest output variance; or
    None when the table cannot be built (then integrate with :func:`resgp.ode.limit_flow`).
    """
    act = get_activation(activation)
    q11 = np.asarray(q11, dtype=np.float64).reshape(-1)
    q22 = np.asarray(q22, dtype=np.float64).reshape(-1)
    q12 = np.asarray(q12, dtype=np.float64)
    if q12.shape != (q11.size, q22.size):
        raise ValueError(f"q12 must have shape {(q11.size, q22.size)}, got {q12.shape}")
    if symmetric and q11.size != q22.size:
        raise ValueError("symmetric=True needs len(q11) == len(q22)")
    if diagonal not in ("ode", "table"):
        raise ValueError(f"diagonal must be 'ode' or 'table', got {diagonal!r}")
    if ntk and act.derivative_dual is None:
        raise ValueError(f"activation {act.name!r} has no derivative dual: no NTK")
    if T == 0:
        K = q12.copy() if nngp else None
        return K, (q12.copy() if ntk else None)
    table = tabulate(q11 if symmetric else np.concatenate([q11, q22]), T=T, activation=act,
                     ntk=ntk, tol=tol)
    if table is None:
        return None
    K, theta = table.evaluate(q11, q22, q12, nngp=nngp, ntk=ntk, symmetric=symmetric)
    if any(o is not None and not np.isfinite(o).all() for o in (K, theta)):
        return None
    if symmetric and diagonal == "ode":
        with threadpool_limits(1, user_api="blas"):
            diag = _diagonal(q11, T=T, act=act, ntk=ntk, rtol=rtol, atol=atol)
        qT, thT = diag
        idx = np.diag_indices(q11.size)
        if K is not None:
            K[idx] = qT
        if theta is not None:
            theta[idx] = thT
    return K, theta


def _diagonal(q, *, T, act, ntk, rtol, atol):
    if ntk:
        return ode.diagonal_flow(q, q, T=T, activation=act, rtol=rtol, atol=atol)
    return ode.diagonal_flow(q, T=T, activation=act, rtol=rtol, atol=atol), None
