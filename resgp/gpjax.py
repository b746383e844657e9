r"""The ResNet NNGP kernel as a GPJax 1.0 kernel.

:class:`ResNetKernel` is a :class:`gpjax.kernels.AbstractKernel`: it goes wherever a GPJax kernel
goes (exact posteriors, non-conjugate models, sparse variational families) and its
hyperparameters train with ``gpx.fit`` like any other::

    import jax
    jax.config.update("jax_enable_x64", True)  # needed, as GPJax itself recommends

    import gpjax as gpx
    import optax
    from resgp.gpjax import ResNetKernel

    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(), kernel=ResNetKernel())
    model = prior * gpx.likelihoods.Gaussian()
    model, history = gpx.fit(
        model=model,
        objective=lambda m, d: -gpx.objectives.conjugate_mll(m, d),
        train_data=gpx.Dataset(X=X, y=y),  # X (N, d) standardised, y (N, 1)
        optim=optax.adam(0.05),
        verbose=False,
    )
    mean = model.predict(X_test, gpx.Dataset(X=X, y=y)).mean

The kernel is :math:`k(a, b) = \sigma^2\, q_T(a, b)`, the NNGP kernel of the infinitely wide and
deep ReLU ResNet (THEORY.md), with

* ``variance`` :math:`\sigma^2 > 0`, the amplitude (:class:`gpjax.parameters.PositiveReal`);
* ``branch_variance`` :math:`T > 0`, the total branch variance, i.e. the depth time
  (``PositiveReal``);
* ``bias_variance`` :math:`\sigma_b^2`, the input layer's bias variance,
  :math:`q_0(a, b) = \langle a, b\rangle / d + \sigma_b^2` (``PositiveReal``; pass ``0.0`` for a
  network without biases: it is then frozen at zero).

The input layer's weight variance is fixed at 1: for ReLU, :math:`k` is homogeneous of degree one
in :math:`q_0`, so a weight variance :math:`\sigma_w^2` only gives
:math:`\sigma_w^2 k(\sigma_b^2/\sigma_w^2)`, which ``variance`` and ``bias_variance`` already
cover. Entries come from :func:`resgp.relu_flow.kernel`, the tabulated angle flow, whose
derivatives in every argument are exact (flow identities), so ``jax.grad`` of any GPJax objective
is exact too.

The kernel's default computation engine, :class:`ResNetKernelComputation`, builds Gram and
cross-covariance matrices in matrix form (:math:`q_0 = A B^\top / d + \sigma_b^2`, one table
evaluation per call) rather than GPJax's default ``vmap`` over pairs; Gram matrices are exactly
symmetric, and the diagonal is the closed form :math:`\sigma^2 e^{T/2} q_0(a, a)`. Passing
``compute_engine=gpx.kernels.computations.DenseKernelComputation()`` takes the ``vmap`` path
through :meth:`ResNetKernel.__call__` instead (same values); so do GPJax's sum and product
kernels.

64-bit JAX is required (the table is accurate to 1e-13): evaluating the kernel with
``jax_enable_x64`` off raises an error; this module never switches it on for you.
Importing it imports GPJax; ``import resgp`` does not.
"""

from __future__ import annotations

import numbers
import typing as tp

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import paramax
from paramax import AbstractUnwrappable

from gpjax.kernels.base import AbstractKernel
from gpjax.kernels.computations import AbstractKernelComputation
from gpjax.parameters import PositiveReal, val

from . import relu_flow
from ._x64 import x64_enabled

__all__ = ["ResNetKernel", "ResNetKernelComputation", "WEIGHT_VARIANCE"]

WEIGHT_VARIANCE = 1.0

_X64_MESSAGE = (
    "resgp.gpjax.ResNetKernel needs 64-bit JAX (its ReLU flow table is accurate to 1e-13 and "
    "is built in float64). Enable it once, at the start of your program, before creating "
    'arrays: jax.config.update("jax_enable_x64", True) -- as GPJax itself recommends -- or set '
    "the environment variable JAX_ENABLE_X64=1."
)


# jitted so that its trace (the flow table's Newton solve and series) is cached per shape,
# not redone at every kernel call inside GPJax objectives
_flow_kernel = jax.jit(relu_flow.kernel)


def _require_x64() -> None:
    if not x64_enabled():
        raise RuntimeError(_X64_MESSAGE)


def _as_float64(x):
    return jnp.asarray(x, dtype=jnp.float64)


def _safe_sqrt(s):
    """sqrt with a zero (not infinite) derivative at 0: only a zero row without a bias hits 0."""
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1.0)), 0.0)


def _positive(name: str, value) -> AbstractUnwrappable:
    if isinstance(value, AbstractUnwrappable):
        return value
    if isinstance(value, jax.core.Tracer):  # built inside a transformation: no value to check
        return PositiveReal(value)
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if np.ndim(value) != 0 or not np.isfinite(value) or not float(value) > 0:
        raise ValueError(f"{name} must be a finite positive scalar, got {value!r}")
    return PositiveReal(value)


def _bias(value) -> AbstractUnwrappable:
    if (
        isinstance(value, (numbers.Real, np.ndarray, jax.Array))
        and not isinstance(value, (bool, jax.core.Tracer))
        and np.ndim(value) == 0
        and value == 0
    ):
        # a network without biases: frozen at exactly zero (softplus never reaches 0)
        return paramax.non_trainable(jnp.asarray(0.0))
    return _positive("bias_variance", value)


class ResNetKernelComputation(AbstractKernelComputation):
    """Matrix-form Gram, cross-covariance and diagonal for :class:`ResNetKernel`.

    One matrix product gives :math:`q_0` for all pairs and one call of
    :func:`resgp.relu_flow.kernel` gives all entries (its flow table is built once per call).
    """

    def _cross_covariance(self, kernel: "ResNetKernel", x, y):
        return kernel._matrix(x, y)

    def _gram(self, kernel: "ResNetKernel", x):
        return kernel._matrix(x, None)

    def _diagonal(self, kernel: "ResNetKernel", inputs) -> lx.AbstractLinearOperator:
        return lx.TaggedLinearOperator(
            lx.DiagonalLinearOperator(kernel._diagonal_values(inputs)),
            lx.positive_semidefinite_tag,
        )

    # a static field of the kernel: equal (and hashing alike) whenever the type is the same,
    # so jit caches keyed on the kernel's structure do not depend on the instance
    def __eq__(self, other):
        return type(other) is type(self)

    def __hash__(self):
        return hash(type(self))

    def __repr__(self):
        return f"{type(self).__name__}()"


class ResNetKernel(AbstractKernel):
    r"""NNGP kernel of the infinitely wide and deep ReLU ResNet (Hayou & Yang 2023).

    .. math::
        k(a, b) = \sigma^2 \, n_a n_b\, e^{T/2} \cos\theta_T, \qquad
        n_a = \sqrt{q_0(a, a)},\ \cos\theta_0 = \frac{q_0(a, b)}{n_a n_b},\
        q_0(a, b) = \frac{\langle a, b\rangle}{d} + \sigma_b^2,

    where :math:`\theta_0 \mapsto \theta_T` is the ReLU angle flow over depth time
    :math:`T` (THEORY.md). Equals ``variance * resgp.resnet_nngp(X1, X2,
    branch_variance=T, bias_variance=sigma_b^2)``.

    Args:
        active_dims: the input columns the kernel uses (``d`` is their number).
        variance: amplitude :math:`\sigma^2 > 0`.
        branch_variance: total branch variance :math:`T > 0` (1 for the :math:`1/\sqrt L`
            scaling). The flow table is accurate to 1e-13 for :math:`10^{-4} \le T \le 100`.
        bias_variance: :math:`\sigma_b^2 > 0`, or ``0.0`` for no biases (then frozen).
        n_dims: the number of input dimensions, if known.
        compute_engine: defaults to :class:`ResNetKernelComputation` (matrix form).

    Any parameter may also be given as a GPJax/paramax parameter (e.g.
    ``paramax.non_trainable(jnp.asarray(2.0))`` to freeze it).
    """

    name: tp.ClassVar[str] = "ResNet"
    weight_variance: tp.ClassVar[float] = WEIGHT_VARIANCE

    variance: AbstractUnwrappable
    branch_variance: AbstractUnwrappable
    bias_variance: AbstractUnwrappable

    def __init__(
        self,
        active_dims: tp.Union[list[int], slice, None] = None,
        variance: tp.Union[float, AbstractUnwrappable] = 1.0,
        branch_variance: tp.Union[float, AbstractUnwrappable] = 1.0,
        bias_variance: tp.Union[float, AbstractUnwrappable] = 1.0,
        n_dims: tp.Union[int, None] = None,
        compute_engine: AbstractKernelComputation = ResNetKernelComputation(),
    ):
        self.variance = _positive("variance", variance)
        self.branch_variance = _positive("branch_variance", branch_variance)
        self.bias_variance = _bias(bias_variance)
        super().__init__(active_dims, n_dims, compute_engine)

    # -------------------------------------------------------------------- pieces

    def _hyperparameters(self):
        _require_x64()
        return (
            _as_float64(val(self.variance)),
            _as_float64(val(self.branch_variance)),
            _as_float64(val(self.bias_variance)),
        )

    def __call__(self, x, y):
        """k(x, y) for two single inputs of shape (D,) (GPJax's ``vmap`` path)."""
        variance, T, bias = self._hyperparameters()
        x = _as_float64(self.slice_input(x))
        y = _as_float64(self.slice_input(y))
        d = x.shape[-1]
        q = jnp.dot(x, y) / d + bias
        n1 = _safe_sqrt(jnp.dot(x, x) / d + bias)
        n2 = _safe_sqrt(jnp.dot(y, y) / d + bias)
        return (variance * _flow_kernel(q, n1, n2, T)).squeeze()

    def _matrix(self, x, y=None):
        """The (N, M) matrix k(x_i, y_j); ``y=None`` for the exactly symmetric Gram of ``x``."""
        variance, T, bias = self._hyperparameters()
        x = _as_float64(self.slice_input(x))
        d = x.shape[-1]
        n1 = _safe_sqrt(jnp.sum(x * x, axis=-1) / d + bias)
        if y is None:
            q = x @ x.T / d + bias
            q = q.at[jnp.diag_indices(q.shape[0])].set(n1 * n1)  # correlation exactly 1
            n2 = n1
        else:
            y = _as_float64(self.slice_input(y))
            q = x @ y.T / d + bias
            n2 = _safe_sqrt(jnp.sum(y * y, axis=-1) / d + bias)
        # keep XLA from recomputing the matrix product inside the fused table lookup
        q = jax.lax.optimization_barrier(q)
        K = _flow_kernel(q, n1[:, None], n2[None, :], T)
        if y is None:
            K = 0.5 * (K + K.T)  # exactly symmetric
        return variance * K

    def _diagonal_values(self, x):
        """k(x_i, x_i) for the rows of ``x`` (N,)."""
        variance, T, bias = self._hyperparameters()
        x = _as_float64(self.slice_input(x))
        q = jnp.sum(x * x, axis=-1) / x.shape[-1] + bias
        return variance * jnp.exp(0.5 * T) * q  # q_T(a, a) = q_0(a, a) e^{T/2} (THEORY.md)
