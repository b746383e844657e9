"""resgp: the kernel of infinitely wide and deep ResNets (Hayou & Yang 2023) for Gaussian processes.

Kernel functions (NumPy/JAX arrays in, float64 matrix out):

- :func:`resnet_nngp`, :func:`resnet_nngp_diag`: the scaled ResNet, infinite or finite depth;
- :func:`mlp_nngp`, :func:`mlp_nngp_diag`: the MLP without skip connections, for comparison.

Neural Tangents adapters live in :mod:`resgp.nt` (imported on demand: it pulls TensorFlow).
"""

from .activations import ACTIVATIONS, Activation
from .kernels import mlp_nngp, mlp_nngp_diag, resnet_nngp, resnet_nngp_diag
from .sklearn_kernel import MLPKernel, ResNetKernel

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "MLPKernel",
    "ResNetKernel",
    "Activation",
    "mlp_nngp",
    "mlp_nngp_diag",
    "resnet_nngp",
    "resnet_nngp_diag",
]
