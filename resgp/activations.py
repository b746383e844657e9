r"""Activations as their dual functions.

An activation :math:`\phi` enters the kernel only through its dual

.. math:: \check\phi(q_{11}, q_{22}, q_{12}) = E[\phi(u)\phi(v)],\quad
          (u, v) \sim N\left(0, \begin{pmatrix} q_{11} & q_{12} \\ q_{12} & q_{22}\end{pmatrix}\right),

a function of three broadcastable arrays (``jax.numpy``, float64). Every kernel in resgp is
written against this one interface, so a new activation is one new :class:`Activation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax.numpy as jnp


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation known to resgp.

    name: the string users pass. dual: :math:`(q_{11}, q_{22}, q_{12}) \\mapsto E[\\phi(u)\\phi(v)]`.
    homogeneous: True when :math:`\\phi(cx) = c\\,\\phi(x)` for c > 0; the infinite-depth flow then
    reduces to a flow of the angle alone.
    """

    name: str
    dual: Callable
    homogeneous: bool


def _correlation(q11, q22, q12):
    """sqrt(q11 q22) and the clipped correlation q12 / sqrt(q11 q22) (0 where a variance is 0)."""
    scale = jnp.sqrt(q11) * jnp.sqrt(q22)  # not sqrt(q11 * q22): no overflow for huge inputs
    safe = jnp.where(scale > 0, scale, 1.0)
    return scale, jnp.where(scale > 0, jnp.clip(q12 / safe, -1.0, 1.0), 0.0)


def relu_dual(q11, q22, q12):
    r"""Arc-cosine kernel of degree 1 (Cho & Saul 2009):
    :math:`\sqrt{q_{11}q_{22}}\,(\sin\theta + (\pi-\theta)\cos\theta) / 2\pi`."""
    scale, rho = _correlation(q11, q22, q12)
    theta = jnp.arccos(rho)
    return scale * (jnp.sqrt(1.0 - rho * rho) + (jnp.pi - theta) * rho) / (2.0 * jnp.pi)


RELU = Activation("relu", relu_dual, homogeneous=True)

ACTIVATIONS = {a.name: a for a in (RELU,)}


def get_activation(activation) -> Activation:
    """Look up an activation by name (case-insensitive) or pass an :class:`Activation` through."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        found = ACTIVATIONS.get(activation.lower())
        if found is not None:
            return found
        raise ValueError(f"unknown activation {activation!r}; known: {sorted(ACTIVATIONS)}")
    raise TypeError(
        f"activation must be a name, one of {sorted(ACTIVATIONS)}, got {type(activation).__name__}"
    )
