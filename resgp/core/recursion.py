r"""Finite depth: the exact infinite-width recursion, layer by layer (docs/theory.md, "One update").

Every layer is :func:`resgp.core.velocity.layer`, :math:`x_l = s_l x_{l-1} + g_l v(x_{l-1}) +
c_l` for the pair and both variances (and the NTK), run by ``jax.lax.scan`` over the schedule
``(skips, gains, shifts)`` of :mod:`resgp.core.inputs`. Pure ``jax.numpy``: traceable and
differentiable (forward and reverse mode) in every input and in the schedule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .velocity import layer

__all__ = ["run", "run_diagonal"]


def run(activation, q_aa, q_bb, q_ab, theta, layers, symmetric=False):
    """(q_ab_L, theta_L) after the layers; ``q_aa`` (N,), ``q_bb`` (M,), ``q_ab``/``theta``
    (N, M) at the input (``theta`` None for the NNGP alone). ``symmetric``: rows and columns
    are the same inputs, and the pairs (a, a) are then kept exactly on the variances (an
    angle of exactly 0, where the ReLU family's derivative dual is not differentiable)."""
    ntk = theta is not None

    def step(carry, schedule):
        a, b, ab, th = carry
        s, g, c = schedule
        if symmetric:
            ab = ab.at[jnp.diag_indices(a.shape[0])].set(a)
        a2, b2, ab2, th2 = layer(activation, a[:, None], b[None, :], ab, th if ntk else None,
                                 s, g, c)
        return (a2[:, 0], b2[0, :], ab2, th2 if ntk else th), None

    (q_aa, _, q_ab, theta), _ = jax.lax.scan(step, (q_aa, q_bb, q_ab, theta if ntk else q_ab),
                                             layers)
    if symmetric:
        q_ab = q_ab.at[jnp.diag_indices(q_aa.shape[0])].set(q_aa)
    return q_ab, (theta if ntk else None)


def run_diagonal(activation, q, theta, layers):
    """(q_L, theta_L) of the variances alone (``theta`` None for the NNGP)."""
    ntk = theta is not None

    def step(carry, schedule):
        x, th = carry
        s, g, c = schedule
        _, _, x2, th2 = layer(activation, x, x, x, th if ntk else None, s, g, c)
        return (x2, th2 if ntk else th), None

    (q, theta), _ = jax.lax.scan(step, (q, theta if ntk else q), layers)
    return q, (theta if ntk else None)
