r"""The ResNet kernels as a GPJax 1.0 kernel.

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

The kernel is :math:`k(a, b) = \sigma^2\, q_T(a, b)`, the kernel of :func:`resgp.resnet_nngp` (or
:func:`resgp.resnet_ntk`) for any activation, depth (None: infinite) and the NTK, with the same
defaults (docs/theory.md, "Adapters"), and

* ``variance`` :math:`\sigma^2 > 0`, the amplitude (:class:`gpjax.parameters.PositiveReal`);
* ``branch_variance`` :math:`T > 0`, the total branch variance, i.e. the depth time
  (``PositiveReal``);
* ``bias_variance`` :math:`\sigma_b^2`, the input layer's bias variance,
  :math:`q_0(a, b) = \sigma_w^2\langle a, b\rangle / d + \sigma_b^2` (0 by default: a network
  without biases, frozen at zero; a positive value is a ``PositiveReal``);
* ``weight_variance`` :math:`\sigma_w^2`, frozen at its default 1 (for ReLU the kernel is
  homogeneous of degree one in :math:`q_0`, so it only rescales what ``variance`` scales).

Entries come from :mod:`resgp.core.traceable`, whose derivatives in every argument are exact, so
``jax.grad`` of any GPJax objective is exact too.

The kernel's default computation engine, :class:`ResNetKernelComputation`, builds Gram and
cross-covariance matrices in matrix form (:math:`q_0 = A B^\top / d + \sigma_b^2`, one table
evaluation per call) rather than GPJax's default ``vmap`` over pairs; Gram matrices are exactly
symmetric, and the diagonal is computed without the matrix. Passing
``compute_engine=gpx.kernels.computations.DenseKernelComputation()`` takes the ``vmap`` path
through :meth:`ResNetKernel.__call__` instead (same values); so do GPJax's sum and product
kernels.

64-bit JAX is required: evaluating the kernel with
``jax_enable_x64`` off raises an error; this module never switches it on for you.
Importing it imports GPJax; ``import resgp`` does not.
"""

from __future__ import annotations

import numbers
import typing as tp

import jax
import jax.numpy as jnp
import equinox as eqx
import lineax as lx
import numpy as np
import paramax
from paramax import AbstractUnwrappable

from gpjax.kernels.base import AbstractKernel
from gpjax.kernels.computations import AbstractKernelComputation
from gpjax.parameters import PositiveReal, val

from .core import network, traceable
from .core.x64 import x64_enabled

__all__ = ["ResNetKernel", "ResNetKernelComputation"]

_X64_MESSAGE = (
    "resgp.gpjax.ResNetKernel needs 64-bit JAX (its kernels are accurate to 1e-12 and are "
    "computed in float64). Enable it once, at the start of your program, before creating "
    'arrays: jax.config.update("jax_enable_x64", True) -- as GPJax itself recommends -- or set '
    "the environment variable JAX_ENABLE_X64=1."
)


def _require_x64() -> None:
    if not x64_enabled():
        raise RuntimeError(_X64_MESSAGE)


def _as_float64(x):
    return jnp.asarray(x, dtype=jnp.float64)


def _positive(name: str, value, vector: bool = False) -> AbstractUnwrappable:
    """A ``PositiveReal`` from a positive scalar (or, with ``vector``, a 1-D array of them:
    per-feature weight variances)."""
    if isinstance(value, AbstractUnwrappable):
        return value
    if isinstance(value, jax.core.Tracer):  # built inside a transformation: no value to check
        return PositiveReal(value)
    if isinstance(value, (list, tuple)) and vector:
        value = np.asarray(value, dtype=np.float64)
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if vector and np.ndim(value) == 1:
        if np.size(value) == 0 or not np.all(np.isfinite(value)) or not np.all(
                np.asarray(value) > 0):
            raise ValueError(f"{name} must hold finite positive variances, got {value!r}")
        return PositiveReal(jnp.asarray(value, dtype=jnp.float64))
    if np.ndim(value) != 0 or not np.isfinite(value) or not float(value) > 0:
        raise ValueError(f"{name} must be a finite positive scalar"
                         f"{' or a 1-D array of them' if vector else ''}, got {value!r}")
    return PositiveReal(value)


def _frozen_or_positive(name, value, frozen_at, vector=False):
    """A network without biases (0) or the default weight variance: frozen (not trained)."""
    if (isinstance(value, (numbers.Real, np.ndarray, jax.Array))
            and not isinstance(value, (bool, jax.core.Tracer)) and np.ndim(value) == 0
            and value == frozen_at):
        return paramax.non_trainable(jnp.asarray(float(frozen_at)))
    return _positive(name, value, vector)


class ResNetKernelComputation(AbstractKernelComputation):
    """Matrix-form Gram, cross-covariance and diagonal for :class:`ResNetKernel`.

    One matrix product gives :math:`q_0` for all pairs and one call of
    :func:`resgp.core.traceable.kernel_matrix` gives all entries.
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
    r"""The ResNet kernel of :func:`resgp.resnet_nngp` / :func:`resgp.resnet_ntk` for GPJax.

    .. math:: k(a, b) = \sigma^2 \, K(a, b), \qquad
              q_0(a, b) = \sigma_w^2\langle a, b\rangle / d + \sigma_b^2,

    with :math:`K` the NNGP (or NTK) of the infinitely wide ResNet of depth ``depth`` (None:
    the infinite-depth limit, depth time T = ``branch_variance``); equals
    ``variance * resgp.resnet_nngp(X1, X2, ...)`` with the same settings.

    Parameters
    ----------
    active_dims : list of int, slice or None, default=None
        The input columns the kernel uses (``d`` is their number).
    variance : float > 0 or parameter, default=1.0
        Amplitude :math:`\sigma^2` (``PositiveReal``).
    branch_variance : float > 0 or parameter, default=1.0
        Total branch variance T (``PositiveReal``).
    bias_variance : float >= 0 or parameter, default=0.0
        :math:`\sigma_b^2`; 0 (the default, a bias-free network) is frozen, a positive value
        is a ``PositiveReal``.
    weight_variance : float > 0, array (d,) of them, or parameter, default=1.0
        :math:`\sigma_w^2` of the input layer; the default 1 is frozen (for ReLU it only
        rescales the kernel, which ``variance`` does); another value is a ``PositiveReal``;
        an array gives one variance per (active) feature (ARD, :math:`q_0(a, b) = \sum_i
        w_i a_i b_i / d + \sigma_b^2`), a ``(d,)`` ``PositiveReal`` trained by ``gpx.fit``.
    activation : str, Activation or callable, default="relu"
        As in :func:`resgp.resnet_nngp`.
    depth : int >= 1 or None, default=None
        None for the infinite-depth limit.
    ntk : bool, default=False
        The NTK instead of the NNGP.
    n_dims : int or None, default=None
        The number of input dimensions, if known.
    compute_engine : AbstractKernelComputation, default=ResNetKernelComputation()
        Matrix-form computation.

    Notes
    -----
    Any parameter may be given as a GPJax/paramax parameter (e.g.
    ``paramax.non_trainable(jnp.asarray(2.0))`` to freeze it). Gradients are exact: custom JVPs
    from the flow identities (ReLU), the flow's sensitivities (other activations at infinite
    depth) or autodiff through the layers (finite depth).
    """

    name: tp.ClassVar[str] = "ResNet"

    variance: AbstractUnwrappable
    branch_variance: AbstractUnwrappable
    bias_variance: AbstractUnwrappable
    weight_variance: AbstractUnwrappable
    network: tp.Any = eqx.field(static=True)

    def __init__(
        self,
        active_dims: tp.Union[list[int], slice, None] = None,
        variance: tp.Union[float, AbstractUnwrappable] = 1.0,
        branch_variance: tp.Union[float, AbstractUnwrappable] = 1.0,
        bias_variance: tp.Union[float, AbstractUnwrappable] = 0.0,
        weight_variance: tp.Union[float, AbstractUnwrappable] = 1.0,
        activation="relu",
        depth: tp.Union[int, None] = None,
        ntk: bool = False,
        n_dims: tp.Union[int, None] = None,
        compute_engine: AbstractKernelComputation = ResNetKernelComputation(),
    ):
        self.variance = _positive("variance", variance)
        self.branch_variance = _positive("branch_variance", branch_variance)
        self.bias_variance = _frozen_or_positive("bias_variance", bias_variance, 0.0)
        self.weight_variance = _frozen_or_positive("weight_variance", weight_variance, 1.0,
                                                   vector=True)
        # activation, depth, NTK flag and tolerances: static, validated once
        self.network = network.resnet(depth=depth, activation=activation, ntk=ntk)
        super().__init__(active_dims, n_dims, compute_engine)

    def _hyperparameters(self):
        _require_x64()
        return {name: _as_float64(val(getattr(self, name)))
                for name in ("branch_variance", "weight_variance", "bias_variance")}

    def _inputs(self, x):
        x = self.slice_input(x)
        if not isinstance(x, jax.core.Tracer):
            _check_finite(x)
        w = val(self.weight_variance)
        if jnp.ndim(w) == 1 and w.shape[0] != x.shape[-1]:
            raise ValueError(f"weight_variance has {w.shape[0]} entries but the inputs have "
                             f"{x.shape[-1]} (active) features: give one variance per feature")
        return _as_float64(x)

    def __call__(self, x, y):
        """k(x, y) for two single inputs of shape (D,) (GPJax's ``vmap`` path).

        Parameters
        ----------
        x : array (D,)
            One input.
        y : array (D,)
            Another input.

        Returns
        -------
        scalar array
            The kernel value, in the units of ``variance`` times :math:`q_0`.
        """
        return self._matrix(jnp.atleast_2d(x), jnp.atleast_2d(y)).squeeze()

    def _matrix(self, x, y=None):
        """The (N, M) matrix k(x_i, y_j); ``y=None`` for the exactly symmetric Gram of ``x``."""
        params = self._hyperparameters()
        K = traceable.kernel_matrix(self.network, self._inputs(x),
                                    None if y is None else self._inputs(y), **params)
        return _as_float64(val(self.variance)) * K

    def _diagonal_values(self, x):
        """k(x_i, x_i) for the rows of ``x`` (N,)."""
        params = self._hyperparameters()
        return _as_float64(val(self.variance)) * traceable.kernel_diagonal(
            self.network, self._inputs(x), **params)


def _check_finite(x):
    """Concrete inputs with NaN or inf get a clear error (traced ones cannot be checked)."""
    if not np.isfinite(np.asarray(x, dtype=np.float64)).all():
        raise ValueError("inputs contain NaN or inf: the ResNet kernel needs finite inputs")
