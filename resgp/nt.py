"""Neural Tangents networks whose kernels are resgp's kernels (needs the ``[nt]`` extra).

``neural_tangents`` (and with it TensorFlow) is imported inside these functions only, so
``import resgp`` and ``import resgp.nt`` stay fast. Networks use NT's default 'ntk'
parameterisation, as in THEORY.md:

    resnet:  Dense(n, W_std=sigma_w, b_std=sigma_b), then L blocks
             FanOut(2) -> parallel(serial(phi, Dense(n, W_std=alpha_l)), Identity) -> FanInSum
    mlp:     Dense(n, W_std=sigma_w, b_std=sigma_b), then L x [phi, Dense(n, W_std=sigma_w, b_std=sigma_b)]

Each function returns the stax triple ``(init_fn, apply_fn, kernel_fn)``; ``kernel_fn`` is NT's
analytic infinite-width kernel of that finite-depth network.
"""

from __future__ import annotations

import math

import numpy as np

from ._validation import check_depth, check_variance
from .activations import get_activation
from .kernels import _resnet_layers


def _stax():
    try:
        from neural_tangents import stax
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "resgp.nt needs neural-tangents: pip install 'resgp[nt]' (it holds jax at 0.5.x)"
        ) from exc
    return stax


def _phi(activation):
    stax = _stax()
    layers = {"relu": stax.Relu}
    return layers[get_activation(activation).name]()


def _input_layer(width, weight_variance, bias_variance):
    stax = _stax()
    wv = check_variance("weight_variance", weight_variance)
    bv = check_variance("bias_variance", bias_variance, allow_zero=True)
    return stax.Dense(width, W_std=math.sqrt(wv), b_std=math.sqrt(bv) if bv > 0 else None)


def _check_width(width):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    return width


def resnet(
    width,
    depth,
    *,
    activation="relu",
    branch_variance=1.0,
    weight_variance=1.0,
    bias_variance=0.0,
    branch_scales=None,
):
    """The finite ResNet of THEORY.md: width ``width``, ``depth`` residual blocks.

    Its analytic kernel equals ``resgp.resnet_nngp(..., depth=depth)`` with the same settings;
    branch scales are ``alpha_l = sqrt(branch_variance / depth)`` or ``branch_scales``.
    """
    stax = _stax()
    width = _check_width(width)
    depth = check_depth(depth, allow_none=False)
    (_, gains, _), _ = _resnet_layers(depth, branch_variance, branch_scales)

    def block(alpha):
        branch = stax.serial(_phi(activation), stax.Dense(width, W_std=alpha, b_std=None))
        return stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())

    alphas = np.sqrt(gains)
    if np.all(alphas == alphas[0]):
        blocks = stax.repeat(block(float(alphas[0])), depth)
    else:
        blocks = stax.serial(*[block(float(a)) for a in alphas])
    return stax.serial(_input_layer(width, weight_variance, bias_variance), blocks)


def mlp(width, depth, *, activation="relu", weight_variance=2.0, bias_variance=0.0):
    """The finite MLP whose analytic kernel is ``resgp.mlp_nngp(..., depth=depth)``."""
    stax = _stax()
    width = _check_width(width)
    depth = check_depth(depth, allow_none=False)
    layer = stax.serial(_phi(activation), _input_layer(width, weight_variance, bias_variance))
    return stax.serial(_input_layer(width, weight_variance, bias_variance), stax.repeat(layer, depth))
