r"""The one NNGP/NTK update that every kernel of resgp is built from (docs/theory.md, "One update").

For a pair of inputs with covariances :math:`(q_{aa}, q_{bb}, q_{ab})` and NTK :math:`\Theta_{ab}`,
the *velocity* of the ResNet's kernel flow is

.. math::
    v = \check\phi(q_{aa}, q_{bb}, q_{ab}) = E[\phi(u)\phi(v)], \qquad
    v_\Theta = \check\phi(q_{aa}, q_{bb}, q_{ab})
               + \Theta_{ab}\,\check{\phi'}(q_{aa}, q_{bb}, q_{ab}),

with :math:`(u, v)` centred Gaussian of covariance :math:`[[q_{aa}, q_{ab}], [q_{ab}, q_{bb}]]`.
A finite-depth layer (ResNet or MLP) is :func:`layer`, :math:`x \mapsto s\,x + g\,v(x) + c`; the
infinite-depth ODE's right-hand side is :func:`velocity` itself; a variance (the diagonal) is the
pair ``(q, q, q)``.
"""

from __future__ import annotations

__all__ = ["velocity", "layer", "diagonal_velocity"]


def velocity(activation, q_aa, q_bb, q_ab, theta=None):
    r"""The flow's velocity :math:`(v, v_\Theta)` for broadcastable arrays (``jax.numpy``).

    Parameters
    ----------
    activation : Activation
        Gives the dual :math:`\check\phi` and the derivative dual :math:`\check{\phi'}`.
    q_aa : array
        Variances :math:`q(a, a)` (squared pre-activation units).
    q_bb : array
        Variances :math:`q(b, b)`.
    q_ab : array
        Covariances :math:`q(a, b)`.
    theta : array or None
        NTK :math:`\Theta(a, b)`; None for the NNGP alone.

    Returns
    -------
    v : array
        :math:`\check\phi(q_{aa}, q_{bb}, q_{ab})`, broadcast shape.
    v_theta : array or None
        :math:`\check\phi + \Theta\check{\phi'}` (None when ``theta`` is None).
    """
    v = activation.dual(q_aa, q_bb, q_ab)
    if theta is None:
        return v, None
    return v, v + theta * activation.derivative_dual(q_aa, q_bb, q_ab)


def diagonal_velocity(activation, q, theta=None):
    """:func:`velocity` of the pairs (a, a): variances ``q`` (and NTK diagonal ``theta``); by
    the activation's 1-D ``variance_duals`` where it has them (quadrature activations)."""
    if activation.variance_duals is None:
        return velocity(activation, q, q, q, theta)
    v, v_d = activation.variance_duals(q)
    return v, (None if theta is None else v + theta * v_d)


def layer(activation, q_aa, q_bb, q_ab, theta, skip, gain, shift):
    r"""One finite-depth layer :math:`x_l = s\,x_{l-1} + g\,v(x_{l-1}) + c` for a pair and its rows.

    Parameters
    ----------
    activation : Activation
    q_aa, q_bb : arrays
        Row and column variances before the layer (broadcastable to ``q_ab``).
    q_ab : array
        Covariances before the layer.
    theta : array or None
        NTK before the layer, or None.
    skip : scalar
        :math:`s`: 1 for a residual block, 0 for an MLP layer.
    gain : scalar
        :math:`g`: :math:`\alpha_l^2` (ResNet) or :math:`\sigma_w^2` (MLP).
    shift : scalar
        :math:`c`: 0 (ResNet) or :math:`\sigma_b^2` (MLP).

    Returns
    -------
    (q_aa, q_bb, q_ab, theta) after the layer (``theta`` None when it was None).
    """
    v_ab, v_theta = velocity(activation, q_aa, q_bb, q_ab, theta)
    v_aa, _ = diagonal_velocity(activation, q_aa)
    v_bb, _ = diagonal_velocity(activation, q_bb)
    out = tuple(skip * x + gain * v + shift for x, v in ((q_aa, v_aa), (q_bb, v_bb), (q_ab, v_ab)))
    if theta is None:
        return out + (None,)
    return out + (skip * theta + gain * v_theta + shift,)
