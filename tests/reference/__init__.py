"""Independent references for resgp's duals and kernels (issue 12: exactness at any scale).

Nothing here imports resgp: :mod:`.duals` integrates the Gaussian expectations numerically
(mpmath point values at 30 digits, and a vectorised graded Gauss-Legendre rule in NumPy), and
:mod:`.flows` builds the finite-depth recursions and the infinite-depth ODE from those duals
(scipy's DOP853). Used by ``tests/test_exactness.py`` and ``benchmarks/exactness.py``.
"""
