"""Matrix-free exact GP inference with the resgp kernels (docs/theory.md, "Matrix-free inference").

- :mod:`~resgp.solvers.products`: tiled, jit-compiled, differentiable K(X, X) @ V and
  K(X*, X) @ V;
- :mod:`~resgp.solvers.sharding`: the same product with its tiles split over devices;
- :mod:`~resgp.solvers.cg`: batched preconditioned conjugate gradients with diagnostics;
- :mod:`~resgp.solvers.preconditioner`: the pivoted-Cholesky (Woodbury) preconditioner;
- :mod:`~resgp.solvers.logdet`: the log-determinant by stochastic Lanczos quadrature (matfree)
  and its gradient;
- :mod:`~resgp.solvers.gp`: the marginal likelihood and the posterior, as used by
  ``ResNetGPRegressor(solver="cg")``.
"""
