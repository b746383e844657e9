"""Activations as their dual functions: the public face of :mod:`resgp.core.activations`.

Names, factories and :func:`from_callable`; see :mod:`resgp.core.activations` for the duals and
their accuracy (docs/theory.md, "Activations and duals").
"""

from .core.activations import (  # noqa: F401
    ACTIVATIONS,
    DEFAULT_ORDER,
    FACTORIES,
    GELU,
    RELU,
    REQU,
    SIGN,
    STEP,
    Activation,
    abrelu,
    erf,
    from_callable,
    gelu_derivative_dual,
    gelu_dual,
    get_activation,
    leaky_relu,
    rectified_monomial,
    relu_derivative_dual,
    relu_dual,
    requ_derivative_dual,
    requ_dual,
    sign_dual,
    sin,
    step_dual,
    SIGMOID,
    TANH,
    tanh_derivative_dual,
    tanh_dual,
)

__all__ = ["ACTIVATIONS", "Activation", "abrelu", "erf", "from_callable", "get_activation",
           "leaky_relu", "sin", "TANH", "SIGMOID", "tanh_dual", "tanh_derivative_dual", "gelu_dual", "gelu_derivative_dual", "relu_dual",
           "relu_derivative_dual", "RELU", "GELU", "DEFAULT_ORDER", "FACTORIES",
           "rectified_monomial", "STEP", "REQU", "SIGN", "step_dual", "requ_dual",
           "requ_derivative_dual", "sign_dual"]
