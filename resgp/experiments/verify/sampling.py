r"""Random finite networks and the finite-width diffusion, sampled with NumPy (and Neural Tangents).

Two samplers of the same random networks are used (ReLU, no biases):

- :func:`sample_nt`: the network of :mod:`resgp.nt`, run by Neural Tangents' ``apply_fn``.
  Parameters are drawn i.i.d. N(0, 1) in the shapes ``init_fn`` declares - exactly NT's
  ``init_fn`` in its default 'ntk' parameterisation (every ``Dense`` draws ``W`` and ``b`` with
  ``random.normal``), drawn with NumPy so that no initialiser is compiled per network shape.
  Cost per network: ``L n^2`` Gaussian draws.
- :func:`sample_projected`: the same law sampled ``n / P`` times faster for ``P`` inputs. Given
  the previous layer, ``W_l`` is independent of ``H = phi(Y_{l-1})`` (an ``n x P`` matrix), so the
  rows of ``W_l H`` are i.i.d. ``N(0, H^T H / n)``: ``W_l H`` has the law of ``Z R / sqrt(n)``
  with ``Z`` an ``n x min(n, P)`` standard Gaussian matrix and ``R`` the triangular factor of
  ``H = Q R``. This is an identity in distribution, not an approximation; the report checks it
  against :func:`sample_nt` wherever the latter is affordable. With one input the ResNet update
  is then exactly one Euler-Maruyama step of size ``1/L`` of the diffusion of experiment 4.

:func:`simulate_sde` solves that diffusion by Euler-Maruyama; :func:`sample_width1_exact` draws
its exact law at width 1. Everything is seeded (:func:`rng_for`: ``numpy.random.SeedSequence``
from ``seed`` and a tag per experiment and grid point). Networks are simulated in float32.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

__all__ = [
    "rng_for",
    "seed_for",
    "fixed_inputs",
    "pair_inputs",
    "sample_nt",
    "sample_projected",
    "simulate_sde",
    "sample_width1_exact",
]


_RELU = lambda y: np.maximum(y, 0.0)  # noqa: E731


def rng_for(seed, *tags) -> np.random.Generator:
    """An independent, reproducible stream for (seed, tag, tag, ...); tags may be strings."""
    words = [int(seed)]
    for t in tags:
        words.append(zlib.crc32(t.encode()) if isinstance(t, str) else int(t))
    return np.random.default_rng(np.random.SeedSequence(words))


def seed_for(seed, *tags):
    return int(rng_for(seed, *tags).integers(2 ** 31))


# ----------------------------------------------------------------------------- inputs


def fixed_inputs(dim: int = 8, seed: int = 0) -> np.ndarray:
    """Four inputs in R^dim with q_0(x, x) = |x|^2 / dim = 1 and varied angles.

    Angles to x1: 30 deg (x2), 90 deg (x3), 150 deg (x4); x2-x4 at ~139 deg, x3 orthogonal to all.
    The Gram matrix is full rank; the orientation is a random rotation fixed by ``seed``.
    """
    if dim < 4:
        raise ValueError("fixed_inputs needs dim >= 4")
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    e = Q.T[:4]
    c, s = np.cos(np.radians([30.0, 150.0])), np.sin(np.radians([30.0, 150.0]))
    X = np.stack([e[0], c[0] * e[0] + s[0] * e[1], e[2], c[1] * e[0] + s[1] * e[3]])
    return X * np.sqrt(dim)


def pair_inputs(angle: float = 90.0, dim: int = 8, seed: int = 0) -> np.ndarray:
    """Two inputs with q_0(x, x) = 1 at ``angle`` degrees from each other."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    a = np.radians(angle)
    return np.stack([Q[:, 0], np.cos(a) * Q[:, 0] + np.sin(a) * Q[:, 1]]) * np.sqrt(dim)


# ----------------------------------------------------------------------------- samplers


def _check_arch(arch):
    if arch not in ("resnet", "mlp"):
        raise ValueError(f"arch must be 'resnet' or 'mlp', got {arch!r}")


def sample_projected(X, width, depth, n_nets, *, arch="resnet", seed=0, branch_variance=1.0,
                     weight_variance=None, max_elems=2 ** 22, dtype=np.float32):
    r"""Outputs (n_nets, width, P) of ``n_nets`` random networks on the P rows of ``X``.

    ReLU, no biases, the networks of :mod:`resgp.nt` (``weight_variance`` defaults to 1 for the
    ResNet, 2 for the MLP; the ResNet's branches are scaled by ``sqrt(branch_variance / depth)``).
    Each layer's product ``W_l phi(Y_{l-1})`` is drawn from its exact conditional law
    ``Z R / sqrt(n)`` (module docstring): ``depth * width * P`` Gaussian draws per network
    instead of ``depth * width^2``.
    """
    _check_arch(arch)
    X = np.asarray(X, dtype=np.float64)
    P, d = X.shape
    wv = (1.0 if arch == "resnet" else 2.0) if weight_variance is None else float(weight_variance)
    rng = rng_for(seed)
    Xs = (X.T * np.sqrt(wv / d)).astype(dtype)  # Y_0 = W_0 x with W_0 ~ N(0, wv / d)
    m = min(width, P)
    if arch == "resnet":
        scale = dtype(np.sqrt(branch_variance / depth / width))
    else:
        scale = dtype(np.sqrt(wv / width))
    out = np.empty((n_nets, width, P), dtype)
    chunk = max(1, min(n_nets, max_elems // (width * max(P, d))))
    for s in range(0, n_nets, chunk):
        c = min(chunk, n_nets - s)
        Y = rng.standard_normal((c, width, d), dtype=dtype) @ Xs
        for _ in range(depth):
            H = _RELU(Y)
            if P == 1:
                R = np.sqrt(np.einsum("cip,cip->cp", H, H))[:, :, None]  # (c, 1, 1): |phi(Y)|
            else:
                R = np.linalg.qr(H, mode="r")  # (c, m, P), R^T R = H^T H
            inc = rng.standard_normal((c, width, m), dtype=dtype) @ R
            if arch == "resnet":
                Y += scale * inc
            else:
                Y = scale * inc
        out[s:s + c] = Y
    return out


def sample_nt(X, width, depth, n_nets, *, arch="resnet", seed=0, max_elems=2 ** 24,
              **net_kwargs):
    """Outputs (n_nets, width, P) of ``n_nets`` random networks built by :mod:`resgp.nt`.

    The forward pass is Neural Tangents' ``apply_fn`` (jitted, vmapped over networks); the
    parameters are i.i.d. standard normal leaves in the shapes of ``init_fn`` (what NT's 'ntk'
    ``init_fn`` draws). ``net_kwargs`` go to :func:`resgp.nt.resnet` / :func:`resgp.nt.mlp`.
    About ``max_elems`` parameters are held in memory at a time.
    """
    import jax

    from resgp import nt as rnt

    _check_arch(arch)
    net = rnt.resnet(width, depth, **net_kwargs) if arch == "resnet" else rnt.mlp(width, depth,
                                                                                 **net_kwargs)
    init_fn, apply_fn, _ = net
    X = np.asarray(X)
    shapes = jax.eval_shape(lambda k: init_fn(k, X.shape)[1], jax.random.PRNGKey(0))
    leaves, treedef = jax.tree_util.tree_flatten(shapes)
    size = sum(math.prod(leaf.shape) for leaf in leaves)
    dtype = np.dtype(leaves[0].dtype)
    count = -(-n_nets // max(1, min(n_nets, max_elems // size)))  # balanced chunks: one shape
    chunk = -(-n_nets // count)
    forward = jax.jit(jax.vmap(apply_fn, in_axes=(0, None)))
    rng = rng_for(seed)
    Xd = X.astype(dtype)
    out = np.empty((n_nets, width, X.shape[0]), dtype)
    for s in range(0, n_nets, chunk):
        params = treedef.unflatten(
            [rng.standard_normal((chunk,) + tuple(leaf.shape), dtype=np.float32).astype(dtype)
             for leaf in leaves])
        Y = np.asarray(forward(params, Xd))  # (chunk, P, width)
        c = min(chunk, n_nets - s)
        out[s:s + c] = Y[:c].transpose(0, 2, 1)
    return out


def simulate_sde(width, n_paths, n_steps, *, q0=1.0, T=1.0, seed=0, activation=_RELU):
    r"""Euler-Maruyama for :math:`dY_t = n^{-1/2} |\phi(Y_t)| dB_t`, :math:`Y_0 \sim N(0, q_0 I_n)`.

    Returns :math:`Y_T`, float64 (n_paths, width). ``activation`` acts elementwise on NumPy arrays.
    """
    rng = rng_for(seed)
    Y = np.sqrt(q0) * rng.standard_normal((n_paths, width))
    step = np.sqrt(T / n_steps / width)
    for _ in range(n_steps):
        norm = np.sqrt(np.einsum("pi,pi->p", *(activation(Y),) * 2))[:, None]
        Y += step * norm * rng.standard_normal((n_paths, width))
    return Y


def sample_width1_exact(n_samples, *, q0=1.0, T=1.0, seed=0):
    """Exact law of the width-1 ReLU diffusion: Y_T = Y_0 if Y_0 < 0, else Y_0 exp(B_T - T/2)
    (below zero phi vanishes and Y is frozen; above zero dY = Y dB, a geometric Brownian motion)."""
    rng = rng_for(seed)
    y0 = np.sqrt(q0) * rng.standard_normal(n_samples)
    b = np.sqrt(T) * rng.standard_normal(n_samples)
    return np.where(y0 < 0, y0, y0 * np.exp(b - T / 2))


# ----------------------------------------------------------------------------- empirical NTK


def _activation_pair(activation):
    """(phi, phi') on NumPy arrays for the activations the projected NTK sampler knows."""
    if activation == "relu":
        return _RELU, lambda y: (y > 0).astype(y.dtype)
    if activation == "erf":
        from scipy.special import erf

        c = 2.0 / math.sqrt(math.pi)
        return (lambda y: erf(y).astype(y.dtype),
                lambda y: (c * np.exp(-y * y)).astype(y.dtype))
    raise ValueError(f"the projected NTK sampler knows 'relu' and 'erf', got {activation!r}")


def sample_ntk_projected(X, width, depth, n_nets, *, activation="relu", n_out=1, seed=0,
                         branch_variance=1.0, weight_variance=1.0, max_elems=2 ** 24,
                         dtype=np.float32):
    r"""Empirical NTKs (n_nets, P, P) of ``n_nets`` random ResNets of :func:`resgp.nt.resnet`.

    Per network: the NTK of its first ``k = min(n_out, width)`` output neurons, averaged over
    them, :math:`\hat\Theta(a, b) = \frac1k\sum_{i<k}\langle\partial_\theta f_i(a),
    \partial_\theta f_i(b)\rangle` (the neurons are exchangeable, so its mean over networks is
    that of NT's ``empirical_ntk_fn(..., trace_axes=(-1,))``, which averages over all n).
    With :math:`g_l = \partial f_i/\partial Y_l` and :math:`h_l = \phi(Y_{l-1})` (block
    :math:`Y_l = Y_{l-1} + \alpha n^{-1/2} W_l h_l`, NT's 'ntk' parameterisation)

    .. math:: \hat\Theta(a, b) = \frac{\sigma_w^2}{d}\langle a, b\rangle\langle g_0(a), g_0(b)\rangle
              + \sum_{l=1}^L \frac{\alpha^2}{n}\langle h_l(a), h_l(b)\rangle\langle g_l(a), g_l(b)\rangle,
              \qquad g_{l-1} = g_l + \alpha n^{-1/2}\phi'(Y_{l-1}) \odot W_l^\top g_l .

    Sampled in law without forming any ``W_l`` (docs/theory.md, "The empirical NTK"): with
    ``H = Q R`` (the P columns h_l), ``U = W_l Q`` is i.i.d. N(0, 1), the forward pass uses
    ``W_l H = U R``, and ``W_l (I - Q Q^T)`` is independent of ``U`` and of everything the
    backward pass has computed, so ``W_l^T G = Q U^T G + (I - Q Q^T) Z' R_G`` with ``Z'`` fresh
    Gaussians and ``R_G^T R_G = G^T G`` (the k P columns g_l). Cost per block: O(n (kP)^2), not
    O(n^2 k P). ``activation``: 'relu' or 'erf'; no biases.
    """
    phi, dphi = _activation_pair(activation)
    X = np.asarray(X, dtype=np.float64)
    P, d = X.shape
    n, L = int(width), int(depth)
    k = min(int(n_out), n)
    wv = float(weight_variance)
    rng = rng_for(seed)
    Xs = (X.T * np.sqrt(wv / d)).astype(dtype)
    q0 = (X @ X.T) * (wv / d)
    m = min(n, P)
    a = dtype(np.sqrt(branch_variance / L / n))  # alpha / sqrt(n)
    out = np.empty((n_nets, P, P))
    per_net = L * n * (2 * m + P) + n * max(P, d)
    chunk = max(1, min(n_nets, max_elems // per_net))
    for s in range(0, n_nets, chunk):
        c = min(chunk, n_nets - s)
        Y = rng.standard_normal((c, n, d), dtype=dtype) @ Xs
        Qs, Us, Ds, grams = [], [], [], []
        for _ in range(L):
            H = phi(Y)
            Q, R = np.linalg.qr(H)  # (c, n, m), (c, m, P)
            U = rng.standard_normal((c, n, m), dtype=dtype)
            Qs.append(Q)
            Us.append(U)
            Ds.append(dphi(Y))
            grams.append(np.einsum("cip,ciq->cpq", H, H, dtype=np.float64))
            Y = Y + a * (U @ R)
        G = np.zeros((c, n, P, k), dtype)  # g_L: column (p, i) is e_i at every input p
        G[:, np.arange(k), :, np.arange(k)] = 1.0
        G = G.reshape(c, n, P * k)
        theta = np.zeros((c, P, P))
        for l in range(L - 1, -1, -1):
            GG = (G.transpose(0, 2, 1) @ G).astype(np.float64)  # (c, P k, P k)
            gg = np.einsum("cpiqi->cpq", GG.reshape(c, P, k, P, k)) / k
            theta += (a * a) * grams[l] * gg
            Q, U = Qs[l], Us[l]
            w, V = np.linalg.eigh(GG)  # F^T F = G^T G (G may be rank deficient)
            F = (np.sqrt(np.clip(w, 0.0, None))[:, :, None] * V.transpose(0, 2, 1)).astype(dtype)
            noise = rng.standard_normal((c, n, P * k), dtype=dtype) @ F
            noise -= Q @ (Q.transpose(0, 2, 1) @ noise)
            WtG = Q @ (U.transpose(0, 2, 1) @ G) + noise
            G = G + a * (Ds[l][:, :, :, None] * WtG.reshape(c, n, P, k)).reshape(c, n, P * k)
            Qs[l] = Us[l] = Ds[l] = None
        Gp = G.reshape(c, n, P, k)
        theta += q0 * np.einsum("cipk,ciqk->cpq", Gp, Gp, dtype=np.float64) / k
        out[s:s + c] = theta
    return out


def sample_ntk_nt(X, width, depth, n_nets, *, activation="relu", seed=0, max_elems=2 ** 22,
                  **net_kwargs):
    """Empirical NTKs (n_nets, P, P) by Neural Tangents: ``nt.empirical_ntk_fn(apply_fn,
    trace_axes=(-1,))`` (the NTK averaged over the n output neurons) of ``n_nets`` networks
    :func:`resgp.nt.resnet` with i.i.d. N(0, 1) parameters in ``init_fn``'s shapes (what NT's
    'ntk' ``init_fn`` draws, as in :func:`sample_nt`), NT's NTK-vector-products
    implementation (twice as fast as the Jacobian contraction here, same numbers to float32
    rounding). Float32; networks vmapped in chunks of about ``max_elems / (P n)`` parameters."""
    import jax
    import neural_tangents as nt

    from resgp import nt as rnt

    init_fn, apply_fn, _ = rnt.resnet(width, depth, activation=activation, **net_kwargs)
    X = np.asarray(X)
    shapes = jax.eval_shape(lambda key: init_fn(key, X.shape)[1], jax.random.PRNGKey(0))
    leaves, treedef = jax.tree_util.tree_flatten(shapes)
    size = sum(math.prod(leaf.shape) for leaf in leaves)
    dtype = np.dtype(leaves[0].dtype)
    per_net = size * X.shape[0] * width
    count = -(-n_nets // max(1, min(n_nets, max_elems // per_net)))
    chunk = -(-n_nets // count)
    ntk = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                              implementation=nt.NtkImplementation.NTK_VECTOR_PRODUCTS)
    fn = jax.jit(jax.vmap(lambda p, x: ntk(x, None, p), in_axes=(0, None)))
    rng = rng_for(seed)
    Xd = X.astype(dtype)
    out = np.empty((n_nets, X.shape[0], X.shape[0]))
    for s in range(0, n_nets, chunk):
        params = treedef.unflatten(
            [rng.standard_normal((chunk,) + tuple(leaf.shape), dtype=np.float32).astype(dtype)
             for leaf in leaves])
        K = np.asarray(fn(params, Xd), dtype=np.float64)
        c = min(chunk, n_nets - s)
        out[s:s + c] = K[:c]
    return out
