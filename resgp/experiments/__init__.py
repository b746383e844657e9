"""Experiments built on resgp's public API: not part of ``import resgp``.

- :mod:`resgp.experiments.verify`: random finite networks against the kernels (``resgp verify``;
  the experiments of docs/theory.md, written to ``docs/verification.md``);
- :mod:`resgp.experiments.compare`: Gaussian processes with the ResNet NNGP and the usual kernels
  on real data (``resgp bench``, ``resgp demo``, ``benchmarks/compare_kernels.py``);
- :mod:`resgp.experiments.progress`: the progress bar both use.
"""
