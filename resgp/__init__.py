"""resgp: the kernel of infinitely wide and deep ResNets (Hayou & Yang 2023) for Gaussian processes.

Kernel functions (NumPy/JAX arrays in, float64 matrix out):

- :func:`resnet_nngp`, :func:`resnet_nngp_diag`: the scaled ResNet, infinite or finite depth;
- :func:`resnet_ntk`, :func:`resnet_ntk_diag`: its neural tangent kernel, same settings;
- :func:`resnet_limit`: the infinite-depth flow from any input covariances (and NTK);
- :func:`mlp_nngp`, :func:`mlp_nngp_diag`, :func:`mlp_ntk`: the MLP without skip connections.

Activations (:mod:`resgp.activations`): names "relu", "leaky_relu", "abrelu", "erf", "sin",
"gelu", "tanh", parameterised factories (``leaky_relu(0.1)``, ``abrelu(a, b)``, ``erf(a, b, c)``,
``sin(a, b, c)``, ``tanh(order)``) and any ``jax.numpy`` callable (:func:`from_callable`).

Neural Tangents adapters live in :mod:`resgp.nt` (imported on demand: it pulls TensorFlow).
"""

from . import activations
from .activations import ACTIVATIONS, Activation, from_callable
from .kernels import (
    mlp_nngp,
    mlp_nngp_diag,
    mlp_ntk,
    resnet_limit,
    resnet_nngp,
    resnet_nngp_diag,
    resnet_ntk,
    resnet_ntk_diag,
)
from .sklearn_kernel import ResNetKernel

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "ResNetKernel",
    "Activation",
    "activations",
    "from_callable",
    "mlp_nngp",
    "mlp_nngp_diag",
    "mlp_ntk",
    "resnet_limit",
    "resnet_nngp",
    "resnet_nngp_diag",
    "resnet_ntk",
    "resnet_ntk_diag",
]
