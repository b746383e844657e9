"""The compute core of resgp: pure math, no scikit-learn, GPJax or Neural Tangents.

Modules, from the bottom up (docs/theory.md has the math of each):

- :mod:`~resgp.core.x64`, :mod:`~resgp.core.validation`: float64 JAX without global settings;
  input checks;
- :mod:`~resgp.core.activations`: activations as their duals;
- :mod:`~resgp.core.velocity`: the one NNGP/NTK update;
- :mod:`~resgp.core.inputs`: the input layer's covariance and the layer schedules;
- :mod:`~resgp.core.network`: the validated description of a kernel;
- :mod:`~resgp.core.recursion`: finite depth;
- :mod:`~resgp.core.ode`: the one ODE driver; :mod:`~resgp.core.limit`: the infinite-depth
  flow of pairs and its differentiable flow map; :mod:`~resgp.core.diagonal`: the variances;
- :mod:`~resgp.core.relu_flow`: ReLU's exact angle flow; :mod:`~resgp.core.chebyshev`,
  :mod:`~resgp.core.flow_table`: the tabulated flow map of smooth activations;
- :mod:`~resgp.core.tiling`, :mod:`~resgp.core.engine`: kernel matrices, diagonals and named
  gradients on the host; :mod:`~resgp.core.traceable`: the same kernels as JAX functions.
"""
