r"""The network a kernel belongs to, validated once for every entry point.

:class:`Network` is the one description of a kernel that every adapter hands to the engine
(:mod:`resgp.core.engine`): the architecture ("resnet" or "mlp"), the activation, the depth
(None: the infinite-depth limit of the ResNet), NNGP or NTK, and the hyperparameters in one
vocabulary (docs/theory.md, "Network and input layer"):

* ``branch_variance`` :math:`T = \sum_l \alpha_l^2`, the ResNet's total branch variance (its
  depth time; T = 1 is Hayou & Yang's :math:`1/\sqrt L` scaling), or ``branch_scales``
  :math:`(\alpha_1, \ldots, \alpha_L)`;
* ``weight_variance`` :math:`\sigma_w^2` of the input layer (MLP: of every layer), or
  per-feature variances :math:`w_i` of the input layer (ARD; the MLP's hidden layers take
  their mean);
* ``bias_variance`` :math:`\sigma_b^2` (MLP: of every layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ode
from .activations import Activation, get_activation
from .validation import check_branch_scales, check_depth, check_variance, check_weight_variance

__all__ = ["Network", "resnet", "mlp", "HYPERPARAMETERS"]

HYPERPARAMETERS = ("branch_variance", "weight_variance", "bias_variance")


@dataclass(frozen=True)
class Network:
    r"""A validated kernel description (hashable; build it with :func:`resnet` or :func:`mlp`).

    Attributes
    ----------
    architecture : str
        "resnet" or "mlp".
    activation : Activation
    depth : int or None
        Number of blocks (layers); None for the infinite-depth ResNet.
    ntk : bool
        The neural tangent kernel instead of the NNGP.
    branch_variance : float
        T (ResNet); the sum of the squared branch scales when those are given.
    branch_scales : tuple of float or None
    weight_variance : float or tuple of float
        :math:`\sigma_w^2`, or per-feature variances :math:`w_i` of the input layer (ARD:
        :math:`q_0(a, b) = \sum_i w_i a_i b_i / d + \sigma_b^2`; the MLP's hidden layers then
        have :math:`\sigma_w^2 = \bar w`, the mean).
    bias_variance : float
    rtol, atol : float
        Tolerances of the ODE solves (infinite depth, non-ReLU); ``atol`` relative to each
        entry's own scale.
    """

    architecture: str
    activation: Activation
    depth: int | None
    ntk: bool
    branch_variance: float
    branch_scales: tuple | None
    weight_variance: float | tuple
    bias_variance: float
    rtol: float = ode.RTOL
    atol: float = ode.ATOL

    @property
    def infinite(self) -> bool:
        return self.depth is None

    @property
    def ard(self) -> bool:
        """Per-feature input weight variances."""
        return isinstance(self.weight_variance, tuple)

    def layers(self):
        """(skips, gains, shifts) arrays of the finite-depth schedule."""
        from .inputs import mlp_layers, resnet_layers
        if self.architecture == "mlp":
            return mlp_layers(self.depth, self.weight_variance, self.bias_variance)
        return resnet_layers(self.depth, self.branch_variance, self.branch_scales)


def _check_ntk(ntk, act):
    if not isinstance(ntk, (bool, np.bool_)):
        raise TypeError(f"ntk must be True or False, got {ntk!r}")
    if ntk and act.derivative_dual is None:
        raise ValueError(f"activation {act.name!r} has no derivative dual: no NTK")
    return bool(ntk)


def resnet(*, depth=None, branch_variance=1.0, weight_variance=1.0, bias_variance=0.0,
           activation="relu", branch_scales=None, ntk=False, rtol=ode.RTOL, atol=ode.ATOL):
    """A validated ResNet :class:`Network` (the parameters of :func:`resgp.resnet_nngp`)."""
    act = get_activation(activation)
    depth = check_depth(depth, allow_none=True)
    if branch_scales is not None:
        if branch_variance != 1.0:
            raise ValueError(
                "give branch_variance or branch_scales, not both: branch_scales fixes the "
                "branch variances alpha_l^2 (their sum plays the role of branch_variance)")
        scales = check_branch_scales(branch_scales, depth)
        depth = scales.size  # branch_scales fix the depth
        T, scales = float(np.sum(scales**2)), tuple(float(a) for a in scales)
    else:
        T, scales = check_variance("branch_variance", branch_variance), None
    rtol, atol = ode.check_tolerances(rtol, atol)
    return Network("resnet", act, depth, _check_ntk(ntk, act), T, scales,
                   check_weight_variance(weight_variance),
                   check_variance("bias_variance", bias_variance, allow_zero=True), rtol, atol)


def mlp(*, depth, weight_variance=2.0, bias_variance=0.0, activation="relu", ntk=False):
    """A validated MLP :class:`Network` (the parameters of :func:`resgp.mlp_nngp`)."""
    act = get_activation(activation)
    return Network("mlp", act, check_depth(depth, allow_none=False), _check_ntk(ntk, act), 0.0,
                   None, check_weight_variance(weight_variance),
                   check_variance("bias_variance", bias_variance, allow_zero=True))
