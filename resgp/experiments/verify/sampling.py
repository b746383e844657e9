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
