r"""The ResNet and MLP kernels as scikit-learn Gaussian-process kernels.

:class:`ResNetKernel` and :class:`MLPKernel` declare their hyperparameters (log space, bounds as
plain data or "fixed", as every scikit-learn kernel) and ask the compute engine
(:mod:`resgp.core.engine`) for values and named gradients; they compute nothing themselves.
They go wherever a scikit-learn kernel goes (``GaussianProcessRegressor``,
``GaussianProcessClassifier``, sums and products with sklearn's kernels, ``pairwise_kernels``;
``SVC`` and ``KernelRidge`` as callables)::

    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
    from resgp import ResNetKernel

    kernel = ConstantKernel() * ResNetKernel() + WhiteKernel()
    gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(X, y)

Gradients are exact (docs/theory.md, "Gradients"): returned with respect to the log of every
free hyperparameter, :math:`\partial K/\partial\log\theta = \theta\,\partial K/\partial\theta`.
A bias variance of 0 is a bias-free network (as in Hayou & Yang) and is then fixed (a log-scale
hyperparameter cannot start at 0).
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from .core import engine, network
from .core.activations import clone_parameters, picklable_state
from .core.validation import check_inputs, check_pair, check_variance, check_weight_variance

__all__ = ["MLPKernel", "ResNetKernel"]

_BOUNDS_RTOL = 1e-8  # theta -> exp(theta) may land a rounding error outside the bounds
DEFAULT_BIAS_BOUNDS = (1e-5, 1e2)
DEFAULT_WEIGHT_BOUNDS = (1e-2, 1e2)  # each per-feature weight variance (ARD)
_ZERO_BIAS = (
    "bias_variance=0 requires bias_variance_bounds='fixed' or None: hyperparameters are "
    "optimised in log space and log(0) is undefined. Leave the bounds out for a bias-free "
    "network, or give a positive bias_variance (e.g. 1e-5) to tune it")


def _check_bounds(name, bounds):
    """'fixed', or a pair 0 < low <= high < inf; returned as (low, high) floats."""
    if isinstance(bounds, str):
        if bounds == "fixed":
            return bounds
        raise ValueError(f"{name}_bounds must be 'fixed' or a pair (low, high), got {bounds!r}")
    try:
        pair = np.asarray(bounds, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name}_bounds must be 'fixed' or a pair (low, high), got "
                         f"{bounds!r}") from None
    if pair.shape != (2,):
        raise ValueError(f"{name}_bounds must be 'fixed' or a pair (low, high), got {bounds!r}")
    low, high = float(pair[0]), float(pair[1])
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(f"{name}_bounds must satisfy 0 < low <= high < inf (they bound a "
                         f"log-scale hyperparameter), got {bounds!r}")
    return low, high


def _is_zero(value) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, numbers.Real) else repr(value)


class _NNGPKernel(Kernel):
    """What both kernels share: hyperparameter declarations, evaluation through the engine, the
    gradient protocol, the diagonal. Subclasses list ``_HYPERPARAMETERS`` and build their
    :class:`resgp.core.network.Network` in ``_network(values)``."""

    def __getstate__(self):
        """Plain callables (``activation=jnp.tanh``) pickle by reference."""
        return picklable_state(self.__dict__)

    def __sklearn_clone__(self):
        """A clone that keeps a callable activation itself (not a deep copy)."""
        return type(self)(**clone_parameters(self.get_params(deep=False)))

    def _bounds(self, name):
        bounds = getattr(self, name + "_bounds")
        if bounds is None and name == "bias_variance":
            return "fixed" if _is_zero(self.bias_variance) else DEFAULT_BIAS_BOUNDS
        if bounds is None and name == "weight_variance":  # a scalar only rescales (ReLU)
            return "fixed" if np.ndim(self.weight_variance) == 0 else DEFAULT_WEIGHT_BOUNDS
        return _check_bounds(name, bounds)

    def _hyperparameter(self, name):
        bounds = self._bounds(name)
        if bounds != "fixed" and _is_zero(getattr(self, name)):
            raise ValueError(_ZERO_BIAS)
        size = int(np.size(getattr(self, name)))
        return Hyperparameter(name, "numeric", bounds, n_elements=size)

    @property
    def hyperparameter_bias_variance(self):
        """The ``Hyperparameter`` of ``bias_variance`` (log space; "fixed" at 0)."""
        return self._hyperparameter("bias_variance")

    @property
    def hyperparameter_weight_variance(self):
        """The ``Hyperparameter`` of ``weight_variance`` (one element per feature with ARD)."""
        return self._hyperparameter("weight_variance")

    @property
    def anisotropic(self):
        """True with one weight variance per feature (ARD)."""
        return np.ndim(self.weight_variance) > 0

    def _settings(self):
        """(Network, free hyperparameter names in sklearn's alphabetical order, values)."""
        values, free = dict(self._FIXED), []
        for name in self._HYPERPARAMETERS:
            if name == "weight_variance":  # a variance, or one per feature (ARD)
                value = check_weight_variance(getattr(self, name))
            else:
                value = check_variance(name, getattr(self, name),
                                       allow_zero=name == "bias_variance")
            values[name] = value
            bounds = self._bounds(name)
            if bounds == "fixed":
                continue
            if np.all(np.asarray(value) == 0):
                raise ValueError(_ZERO_BIAS)
            low, high = bounds
            inside = (low * (1 - _BOUNDS_RTOL) <= np.asarray(value)) & (
                np.asarray(value) <= high * (1 + _BOUNDS_RTOL))
            if not np.all(inside):
                raise ValueError(f"{name}={value!r} is outside {name}_bounds=({low:g}, "
                                 f"{high:g}); widen the bounds or set them to 'fixed'")
            free.append(name)
        return self._network(values), sorted(free), values

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its gradient.

        Parameters
        ----------
        X : array of shape (n_samples_X, n_features)
            Left argument.
        Y : array of shape (n_samples_Y, n_features) or None, default=None
            Right argument; None for k(X, X).
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the free hyperparameters
            (only when Y is None).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
            The kernel matrix.
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims), optional
            Last axis in the order of ``self.theta`` (alphabetical, fixed ones left out); a
            view of a (n_dims, N, N) array.
        """
        net, free, values = self._settings()
        if Y is not None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            return engine.gram(net, *check_pair(X, Y))
        X = check_inputs(X, "X")
        if not eval_gradient:
            return engine.gram(net, X)
        K, grad = engine.gram_and_gradients(net, X, free)
        grad *= self._log_scales(free, values)[:, None, None]  # log space (per-feature weights: one slice each)
        return K, grad.transpose(1, 2, 0)

    def gram_and_vjp(self, X):
        r"""k(X, X) and the contraction of its gradient, for the marginal likelihood.

        What :class:`resgp.estimators.GaussianProcessRegressor` asks of a kernel in place of
        ``k(X, eval_gradient=True)``: the same derivatives, never stacked into an
        (n_samples, n_samples, n_dims) array (:func:`resgp.core.engine.gram_and_vjp`).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        K : ndarray of shape (n_samples, n_samples)
            The kernel matrix.
        vjp : callable
            ``vjp(M)``, M of shape (n_samples, n_samples), returns
            :math:`\sum_{ab} M_{ab}\,\partial K_{ab}/\partial\theta_j`, shape (n_dims,), in
            the order of ``self.theta`` (log space).
        """
        net, free, values = self._settings()
        K, vjp = engine.gram_and_vjp(net, check_inputs(X, "X"), free)
        scales = self._log_scales(free, values)
        return K, lambda M: vjp(M) * scales

    @staticmethod
    def _log_scales(free, values):
        """d theta / d log theta for the free hyperparameters: their values, one per entry."""
        return np.concatenate([np.atleast_1d(values[name]) for name in free]) if free \
            else np.empty(0)

    def diag(self, X):
        """The diagonal k(x, x), shape (n_samples,), without forming the matrix.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Inputs.

        Returns
        -------
        K_diag : ndarray of shape (n_samples,)
            The diagonal.
        """
        return engine.diagonal(self._settings()[0], check_inputs(X, "X"))

    def is_stationary(self):
        """Returns False: the kernel depends on the inputs' norms, not only their difference."""
        return False

    @property
    def requires_vector_input(self):
        """True: the kernel acts on feature vectors."""
        return True

    def __repr__(self):
        shown = [f"{name}={_fmt(getattr(self, name))}" for name in self._REPR]
        w = self.weight_variance
        if np.ndim(w) or w != self._DEFAULT_WEIGHT:
            shown.append(f"weight_variance={np.asarray(w).tolist()!r}")
        if "depth" not in self._REPR and self.depth is not None:
            shown.append(f"depth={self.depth!r}")
        if self.ntk is True:
            shown.append("ntk=True")
        act = self.activation
        if not (isinstance(act, str) and act.lower() == "relu"):
            shown.append(f"activation={getattr(act, 'name', act)!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


class ResNetKernel(_NNGPKernel):
    r"""NNGP (or NTK) kernel of the infinitely wide scaled ResNet (Hayou & Yang 2023).

    :math:`k(a, b) = q_T(a, b)`: the covariance of the output of a ResNet whose input layer has
    :math:`q_0(a, b) = \sum_i w_i a_i b_i / d + \sigma_b^2` (one weight variance w for every
    feature by default, fixed at 1: for ReLU it only rescales the kernel, which a
    ``ConstantKernel`` in front does; per-feature variances, ARD, are free) and whose residual
    branches have total variance T, in the infinite-depth limit (``depth=None``) or after
    ``depth`` blocks; the same as :func:`resgp.resnet_nngp` (:func:`resgp.resnet_ntk` with
    ``ntk=True``). Not stationary; scale it with a ``ConstantKernel``.

    Parameters
    ----------
    branch_variance : float > 0, default=1.0
        Total branch variance T (the depth time of the kernel flow).
    bias_variance : float >= 0, default=0.0
        :math:`\sigma_b^2` of the input layer. The default 0 is a bias-free network and then
        fixed. Give a positive value to tune it.
    activation : str, Activation or callable, default="relu"
        Activation of the residual branches (see :data:`resgp.ACTIVATIONS`).
    depth : int >= 1 or None, default=None
        None for the infinite-depth limit, an integer L for L residual blocks.
    ntk : bool, default=False
        The neural tangent kernel of the same network instead of the NNGP.
    branch_variance_bounds : pair of floats > 0 or "fixed", default=(1e-2, 10)
        Bounds of T. At T = 100 the kernel grows like :math:`e^{50}`, which overflows
        scikit-learn's Laplace approximation in ``GaussianProcessClassifier``.
    bias_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        None: (1e-5, 100) when ``bias_variance > 0``, "fixed" when it is 0.
    weight_variance : float > 0 or array (d,) of them, default=1.0
        :math:`w` of the input layer, or one per feature (ARD, as ``RBF(length_scale=array)``:
        a vector hyperparameter, log space, with exact gradients).
    weight_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        None: "fixed" for a scalar (it only rescales a ReLU kernel), (1e-2, 100) for each
        entry of an array.
    """

    _HYPERPARAMETERS = ("branch_variance", "bias_variance", "weight_variance")
    _FIXED = {}
    _REPR = ("branch_variance", "bias_variance")
    _DEFAULT_WEIGHT = 1.0

    def __init__(self, branch_variance=1.0, bias_variance=0.0, activation="relu", depth=None,
                 ntk=False, branch_variance_bounds=(1e-2, 1e1), bias_variance_bounds=None,
                 weight_variance=1.0, weight_variance_bounds=None):
        self.branch_variance = branch_variance
        self.bias_variance = bias_variance
        self.activation = activation
        self.depth = depth
        self.ntk = ntk
        self.branch_variance_bounds = branch_variance_bounds
        self.bias_variance_bounds = bias_variance_bounds
        self.weight_variance = weight_variance
        self.weight_variance_bounds = weight_variance_bounds

    @property
    def hyperparameter_branch_variance(self):
        """The ``Hyperparameter`` of ``branch_variance`` T (log space, its bounds)."""
        return self._hyperparameter("branch_variance")

    def _network(self, values):
        return network.resnet(depth=self.depth, activation=self.activation, ntk=self.ntk,
                              **values)


class MLPKernel(_NNGPKernel):
    r"""NNGP (or NTK) kernel of the infinitely wide MLP without skip connections.

    :math:`q_0(a,b) = \sigma_w^2\langle a, b\rangle / d + \sigma_b^2` (ARD: :math:`\sum_i w_i
    a_i b_i / d + \sigma_b^2`, and :math:`\sigma_w^2 = \bar w`, the mean, below),
    :math:`q_l = \sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2` for l = 1, ..., ``depth``; the same as
    :func:`resgp.mlp_nngp` (:func:`resgp.mlp_ntk` with ``ntk=True``). For ReLU this is the
    arc-cosine kernel of degree 1 composed ``depth`` times (Cho & Saul 2009); with
    :math:`\sigma_w^2 = 2` every correlation tends to 1 as depth grows.

    Parameters
    ----------
    depth : int >= 1, default=3
        Number of hidden layers.
    bias_variance : float >= 0, default=0.0
        :math:`\sigma_b^2` of every layer; tuned when positive, fixed when 0.
    activation : str, Activation or callable, default="relu"
        The activation.
    weight_variance : float > 0 or array (d,) of them, default=2.0
        :math:`\sigma_w^2` of every layer, fixed by default: for ReLU it only rescales the
        kernel together with the bias variance, which the ``ConstantKernel`` in front already
        does. An array gives one variance per feature (ARD, as in :class:`ResNetKernel`: a
        vector hyperparameter, log space, exact gradients) to the input layer, and their mean
        to the hidden layers.
    bias_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        As in :class:`ResNetKernel`.
    ntk : bool, default=False
        The neural tangent kernel instead of the NNGP.
    weight_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        As in :class:`ResNetKernel`: None is "fixed" for a scalar, (1e-2, 100) for each entry
        of an array.
    """

    _HYPERPARAMETERS = ("bias_variance", "weight_variance")
    _FIXED = {}
    _REPR = ("depth", "bias_variance")
    _DEFAULT_WEIGHT = 2.0

    def __init__(self, depth=3, bias_variance=0.0, activation="relu", weight_variance=2.0,
                 bias_variance_bounds=None, ntk=False, weight_variance_bounds=None):
        self.depth = depth
        self.weight_variance = weight_variance
        self.bias_variance = bias_variance
        self.activation = activation
        self.ntk = ntk
        self.bias_variance_bounds = bias_variance_bounds
        self.weight_variance_bounds = weight_variance_bounds

    def _network(self, values):
        return network.mlp(depth=self.depth, activation=self.activation, ntk=self.ntk,
                           **values)
