"""resgp: the kernel of infinitely wide and deep ResNets (Hayou & Yang 2023) for Gaussian processes.

Kernel functions (NumPy/JAX arrays in, float64 matrix out):

- :func:`resnet_nngp`, :func:`resnet_nngp_diag`: the scaled ResNet, infinite or finite depth;
- :func:`resnet_ntk`, :func:`resnet_ntk_diag`: its neural tangent kernel, same settings;
- :func:`resnet_limit`: the infinite-depth flow from any input covariances (and NTK);
- :func:`mlp_nngp`, :func:`mlp_nngp_diag`, :func:`mlp_ntk`, :func:`mlp_ntk_diag`: the MLP
  without skip connections.

scikit-learn: :class:`ResNetKernel`, :class:`MLPKernel` (kernels), :class:`ResNetGPRegressor`,
:class:`ResNetGPClassifier` (estimators); :mod:`resgp.predict`: the trained-network (NTK-GP)
posterior of Lee et al. 2019. Activations (:mod:`resgp.activations`): names "relu",
"leaky_relu", "abrelu", "erf", "sin", "gelu", "tanh", "sigmoid", "step", "requ", "sign",
parameterised factories and any ``jax.numpy`` callable. GPJax (:mod:`resgp.gpjax`) and Neural Tangents (:mod:`resgp.nt`)
adapters are imported on demand. The compute core is :mod:`resgp.core`; the math is in
docs/theory.md.
"""

from . import activations, predict
from .activations import ACTIVATIONS, Activation, from_callable
from .kernels import (
    mlp_nngp,
    mlp_nngp_diag,
    mlp_ntk,
    mlp_ntk_diag,
    resnet_limit,
    resnet_nngp,
    resnet_nngp_diag,
    resnet_ntk,
    resnet_ntk_diag,
)
from .sklearn_kernel import MLPKernel, ResNetKernel
from .estimators import ResNetGPClassifier, ResNetGPRegressor

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "MLPKernel",
    "ResNetGPClassifier",
    "ResNetGPRegressor",
    "ResNetKernel",
    "activations",
    "predict",
    "from_callable",
    "mlp_nngp",
    "mlp_nngp_diag",
    "mlp_ntk",
    "mlp_ntk_diag",
    "resnet_limit",
    "resnet_nngp",
    "resnet_nngp_diag",
    "resnet_ntk",
    "resnet_ntk_diag",
]
