r"""Verification suite: random finite networks against resgp's kernels (the experiments of docs/theory.md).

``resgp verify`` (or :func:`run`) samples many randomly initialised finite ResNets and MLPs and
checks what docs/theory.md says about them:

1. **Covariance convergence** - the output covariance of a width-``n``, depth-``L`` ResNet over
   random initialisations approaches the infinite-width-and-depth kernel ``resnet_nngp(depth=None)``
   (relative Frobenius error per ``(n, L)`` with Monte-Carlo standard errors), and Neural
   Tangents' own ``monte_carlo_kernel_fn`` agrees with the direct estimate.
2. **Commutativity** - the error vanishes along the paths "n first", "L first" and "n = L"; the
   MLP's correlation of two inputs collapses to 1 with depth while the ResNet's does not.
3. **Gaussianity** - one output neuron is close to ``N(0, K(x, x))`` (Kolmogorov-Smirnov), two
   neurons are uncorrelated; the MLP of the same size is heavy-tailed.
4. **Finite width, infinite depth** - at widths 1..8 the output follows the diffusion
   ``dY_t = n^{-1/2} |phi(Y_t)| dB_t`` (solved here by Euler-Maruyama), not a Gaussian.
5. **NTK** - the empirical NTK of finite ResNets (ReLU and erf; Neural Tangents'
   ``empirical_ntk_fn`` and an exact-in-law projected sampler) approaches ``resnet_ntk(depth=L)``
   and ``resnet_ntk(depth=None)``, with the rates in n and L and the three paths.
6. **Other activations at finite width** - the same diffusion with erf, tanh, GELU, leaky ReLU
   and the identity against networks at widths 1..8, and against its closed forms
   (:mod:`.widths`).
7. **Widths 3 and 4** - the ReLU post-activation norm over long depth time: the drift of its log
   changes sign between widths 3 and 4; every width vanishes eventually (:mod:`.widths`).

Modules: :mod:`.sampling` (the two samplers of the same random networks, the SDE),
:mod:`.statistics`, :mod:`.experiments` and :mod:`.widths` (the runs, returning plain dicts),
:mod:`.plots`,
:mod:`.summaries` and :mod:`.report` (the Markdown report, from ``report_template.md``) and
:mod:`.driver` (:func:`run`).

Everything is seeded (``numpy.random.SeedSequence`` from ``seed`` and a tag per experiment and
grid point). Networks are simulated in float32 (Monte-Carlo errors here are >= 1e-3, float32
rounding ~1e-6); kernels, statistics and the SDE are float64. ``neural_tangents``, ``matplotlib``
and ``tqdm`` are imported inside the functions that use them; ``import resgp`` does not import
this package.
"""

from __future__ import annotations

from .driver import run
from .experiments import (
    CONFIGS,
    commutativity,
    correlation_vs_depth,
    covariance_grid,
    covariance_point,
    finite_width_sde,
    gaussianity,
    nt_monte_carlo_check,
    ntk_grid,
    ntk_point,
)
from .sampling import (
    fixed_inputs,
    pair_inputs,
    sample_nt,
    sample_ntk_nt,
    sample_ntk_projected,
    sample_projected,
    sample_width1_exact,
    simulate_sde,
)
from .statistics import correlation_stats, covariance_stats, kernel_stats, max_z
from .widths import finite_width_activations, norm_regime, sample_exact, simulate_norms

__all__ = [
    "CONFIGS",
    "fixed_inputs",
    "pair_inputs",
    "sample_nt",
    "sample_projected",
    "simulate_sde",
    "sample_width1_exact",
    "sample_ntk_projected",
    "sample_ntk_nt",
    "covariance_stats",
    "kernel_stats",
    "correlation_stats",
    "max_z",
    "covariance_point",
    "covariance_grid",
    "nt_monte_carlo_check",
    "commutativity",
    "correlation_vs_depth",
    "gaussianity",
    "finite_width_sde",
    "ntk_point",
    "ntk_grid",
    "finite_width_activations",
    "norm_regime",
    "sample_exact",
    "simulate_norms",
    "run",
]
