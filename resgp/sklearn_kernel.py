r"""The ResNet NNGP kernel as a scikit-learn Gaussian-process kernel.

:class:`ResNetKernel` plugs :func:`resgp.resnet_nngp` into ``sklearn.gaussian_process`` (and into
anything that accepts a scikit-learn kernel or a callable returning a Gram matrix: ``SVC``,
``KernelRidge``, ``pairwise_kernels``)::

    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
    from resgp.sklearn_kernel import ResNetKernel

    kernel = ConstantKernel() * ResNetKernel() + WhiteKernel()
    gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(X, y)

Hyperparameters (optimised in log space, like every scikit-learn kernel):

* ``branch_variance`` :math:`T > 0`, the total branch variance (depth time) of the ResNet;
* ``bias_variance`` :math:`\sigma_b^2`, the input layer's bias variance,
  :math:`q_0(a, b) = \langle a, b\rangle / d + \sigma_b^2`; 0 by default (a bias-free network,
  as in Hayou & Yang), and then fixed. ``ResNetKernel(bias_variance=0.1)`` tunes it too.

:class:`MLPKernel` is the same for the MLP without skip connections (the arc-cosine kernel
composed ``depth`` times), the comparator of THEORY.md.

The input layer's weight variance is fixed to 1: for ReLU it only rescales the kernel, and the
amplitude belongs to a ``ConstantKernel`` in front. Gradients are exact: at infinite depth from
the flow identities of :mod:`resgp.relu_flow` (as :func:`resgp.kernels.relu_limit_with_gradients`),
at finite depth by forward-mode differentiation (``jax.jvp``) through the layer recursion.
"""

from __future__ import annotations

import numbers
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.spatial.distance import squareform
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel

from . import kernels as _k
from . import relu_flow
from ._validation import check_depth, check_inputs, check_variance
from ._x64 import float64
from . import ode
from .activations import RELU, get_activation

__all__ = ["MLPKernel", "ResNetKernel"]

WEIGHT_VARIANCE = 1.0
# theta -> exp(theta) may land a rounding error outside the bounds it was clipped to
_BOUNDS_RTOL = 1e-8
DEFAULT_BIAS_BOUNDS = (1e-5, 1e2)
_PAIR_CHUNK = 1 << 23  # pairs per call of the infinite-depth gradient kernel


# ----------------------------------------------------------------------------- infinite depth


# One jitted function per output, on flat vectors of pairs (the strict upper triangle): XLA's
# CPU backend runs several outputs of one fusion, or table lookups on square tiles, several
# times slower.


@jax.jit
def _relu_limit_value(rho, i, j, n, coefs, T):
    return relu_flow.kernel_value(coefs[relu_flow.VALUE], rho, n[i], n[j], T)


@jax.jit
def _relu_limit_log_dT(rho, i, j, n, K, coefs, T):
    R_t = relu_flow.lookup(coefs[relu_flow.D_DT], rho)
    return T * (0.5 * K + jnp.exp(0.5 * T) * n[i] * n[j] * R_t)


@jax.jit
def _relu_limit_log_dbias(rho, i, j, n, K, coefs, T, bias_variance):
    na, nb = n[i], n[j]  # all > 0: the bias variance is free, hence > 0
    growth = jnp.exp(0.5 * T)
    R = K / (growth * na * nb)
    R_rho = relu_flow.lookup(coefs[relu_flow.D_DRHO], rho)
    ratio = 0.5 * (na / nb + nb / na)  # (n_a^2 + n_b^2) / (2 n_a n_b)
    return bias_variance * growth * (ratio * (R - rho * R_rho) + R_rho)


@jax.jit
def _unit_gram(z):
    # XLA's own matmul: OpenBLAS threads contend badly with XLA's on small shared machines
    return jnp.clip(z @ z.T, -1.0, 1.0)


def _pair_bucket(m: int) -> int:
    """Pad flat pair vectors to a power of two (at least 1024): a handful of compiled shapes."""
    return max(1024, 1 << (m - 1).bit_length())


try:  # scipy's squareform without its copies: fill a matrix we own, read into a buffer we own
    from scipy.spatial._distance_wrap import to_squareform_from_vector_wrap as _fill_square
    from scipy.spatial._distance_wrap import to_vector_from_squareform_wrap as _read_square
except ImportError:  # pragma: no cover
    _fill_square = _read_square = None


def _upper(full, out):
    """Write the strict upper triangle of the (N, N) matrix ``full``, row by row, into ``out``."""
    full = np.ascontiguousarray(full, dtype=np.float64)
    if _read_square is not None:
        _read_square(full, out)
    else:  # pragma: no cover
        out[...] = squareform(full, checks=False)


def _to_square(out, flat, diagonal):
    """Write the symmetric matrix with strict upper triangle ``flat`` into ``out`` (N, N)."""
    if len(out) > 1:
        if _fill_square is not None:
            _fill_square(out, np.ascontiguousarray(flat, dtype=np.float64))
        else:  # pragma: no cover
            out[...] = squareform(flat, checks=False)
    np.fill_diagonal(out, diagonal)


_INDEX_CACHE_PAIRS = 1 << 22  # keep the pair indices of the last N up to this many pairs
_index_cache: dict = {}


def _pair_indices(N: int):
    """[(start, stop, i, j)]: chunks of the pairs i < j of the strict upper triangle, row by
    row, with their int32 row and column indices as padded device arrays (padding: the pair
    (0, 1)). GP hyperparameter optimisation evaluates one N many times: the last N's indices
    are kept when there are at most ``_INDEX_CACHE_PAIRS`` pairs (32 MiB)."""
    cached = _index_cache.get(N)
    if cached is not None:
        return cached
    rows, cols = np.triu_indices(N, 1)
    m = len(rows)
    chunks = []
    for a in range(0, m, _PAIR_CHUNK):
        b = min(a + _PAIR_CHUNK, m)
        i, j = np.zeros(_pair_bucket(b - a), np.int32), np.ones(_pair_bucket(b - a), np.int32)
        i[: b - a], j[: b - a] = rows[a:b], cols[a:b]
        chunks.append((a, b, jax.device_put(i), jax.device_put(j)))
    if m <= _INDEX_CACHE_PAIRS:
        _index_cache.clear()
        _index_cache[N] = chunks
    return chunks


def _relu_limit_gradient(X, T, bias_variance, want_T, want_bias):
    r"""ReLU, infinite depth: K(X, X) and the stack (k, N, N) of dK/d log(hyperparameter),
    k = want_T + want_bias, in the order (T, bias).

    Per pair of inputs, with the correlation :math:`\rho_0` of the augmented inputs, their norms
    :math:`n_a, n_b`, and the tabulated flow :math:`R = \rho_T(\rho_0)`, :math:`R_t =
    \partial_T R`, :math:`R' = \partial R / \partial\rho_0` (:mod:`resgp.relu_flow`), the
    combinations of :func:`resgp.relu_flow.kernel_partials` that
    :func:`resgp.kernels.relu_limit_with_gradients` uses (the tests keep them equal), with one
    table row per lookup (the three-row lookup is several times slower on CPU):
    :math:`K = e^{T/2} n_a n_b R`, :math:`\partial_T K = K/2 + e^{T/2} n_a n_b R_t`,
    :math:`\partial_{\sigma_b^2} K = e^{T/2} [(n_a^2 + n_b^2)/(2 n_a n_b) (R - \rho_0 R') + R']`.
    Only the strict upper triangle is evaluated, as flat vectors of pairs (the results are
    exactly symmetric); the diagonal is exact, :math:`K(a, a) = q_0(a, a) e^{T/2}` as in
    :func:`resgp.resnet_nngp_diag`.
    """
    z, n = _k._features(X, WEIGHT_VARIANCE, bias_variance)
    N = len(n)
    growth = np.exp(0.5 * T)
    diagonals = [n * n * growth]  # K(a, a) = q_0(a, a) e^{T/2}
    if want_T:
        diagonals.append(T * 0.5 * diagonals[0])  # T dK/dT
    if want_bias:
        diagonals.append(np.full(N, bias_variance * growth))  # dq_0(a, a)/d sigma_b^2 = 1
    K = np.empty((N, N))
    grad = np.empty((len(diagonals) - 1, N, N))
    targets = [K, *grad]
    if N == 1:
        for target, diagonal in zip(targets, diagonals):
            target[0, 0] = diagonal[0]
        return K, grad

    chunks = _pair_indices(N)
    with float64():
        gram = np.asarray(_unit_gram(jax.device_put(z)))
        if len(chunks) == 1:  # read the triangle straight into the padded buffer
            rho = np.zeros(_pair_bucket(chunks[0][1]))
            _upper(gram, rho[: chunks[0][1]])
            rhos = [jax.device_put(rho)]
        else:
            flat = np.empty(N * (N - 1) // 2)
            _upper(gram, flat)
            rhos = []
            for a, b, _, _ in chunks:
                rho = np.zeros(_pair_bucket(b - a))
                rho[: b - a] = flat[a:b]
                rhos.append(jax.device_put(rho))
            del flat
        del gram, rho
        n_pad = np.ones(_k._bucket(N))  # fewer compiled shapes
        n_pad[:N] = n
        nj, Tj, bj = jax.device_put(n_pad), jnp.float64(T), jnp.float64(bias_variance)
        coefs = _k._relu_table(Tj)
        # XLA runs asynchronously: dispatch everything, then copy each result into place
        outputs = []
        for r, (_, _, i, j) in zip(rhos, chunks):
            K_flat = _relu_limit_value(r, i, j, nj, coefs, Tj)
            out = [K_flat]
            if want_T:
                out.append(_relu_limit_log_dT(r, i, j, nj, K_flat, coefs, Tj))
            if want_bias:
                out.append(_relu_limit_log_dbias(r, i, j, nj, K_flat, coefs, Tj, bj))
            outputs.append(out)
        del rhos
        for k, (target, diagonal) in enumerate(zip(targets, diagonals)):
            flat = [np.asarray(out[k])[: b - a] for out, (a, b, _, _) in zip(outputs, chunks)]
            _to_square(target, flat[0] if len(flat) == 1 else np.concatenate(flat), diagonal)
    return K, grad


# ----------------------------------------------------------------------------- finite depth


@partial(jax.jit, static_argnames=("dual", "derivative_dual", "depth", "architecture",
                                   "directions", "diagonal"))
def _recursion_grad_tile(z1, n1, z2, n2, T, bias_variance, *, dual, derivative_dual, depth,
                         architecture, directions, diagonal):
    """Stack (1 + k, b1, b2): K and dK/d log(hyperparameter) for ``directions`` (0: T, 1: bias).

    q_0 depends on the bias variance only through a shift: :math:`\\partial q_0 /
    \\partial\\sigma_b^2 = 1` for every entry (diagonal variances included; the NTK starts at
    :math:`\\Theta_0 = q_0`). ResNet layers have gains T / depth; MLP layers
    (``architecture="mlp"``) have gain ``T`` (the weight variance, fixed) and add the bias
    variance in every layer. With ``derivative_dual`` the kernel is the NTK. Forward mode through
    :func:`resgp.kernels._recursion` / :func:`resgp.kernels._recursion_ntk`.
    """
    q11, q22 = n1 * n1, n2 * n2
    q12 = n1[:, None] * n2[None, :] * _k._correlations(z1, z2, diagonal)
    ones, zeros = jnp.ones(depth), jnp.zeros(depth)

    def f(p):
        if architecture == "resnet":
            layers = (ones, jnp.full(depth, p[0] / depth), zeros)
        else:
            layers = (zeros, jnp.full(depth, T), jnp.full(depth, bias_variance + p[1]))
        a, b, ab = q11 + p[1], q22 + p[1], q12 + p[1]
        if derivative_dual is None:
            return _k._recursion(a, b, ab, layers, dual)
        return _k._recursion_ntk(a, b, ab, ab, layers, dual, derivative_dual)[1]

    p0 = jnp.stack([T, jnp.zeros_like(T)]) if architecture == "resnet" else jnp.zeros(2)
    basis = jnp.eye(2)[np.asarray(directions)]
    K, dK = jax.vmap(lambda t: jax.jvp(f, (p0,), (t,)), out_axes=(None, 0))(basis)
    dK = dK * jnp.stack([T, bias_variance])[np.asarray(directions)][:, None, None]
    return jnp.concatenate([K[None], dK])


def _recursion_gradient(X, depth, activation, T, bias_variance, directions, *, ntk=False,
                        architecture="resnet", weight_variance=WEIGHT_VARIANCE):
    f = _k._features(X, weight_variance, bias_variance)
    with float64():
        tile_fn = partial(
            _recursion_grad_tile,
            T=jnp.float64(T),
            bias_variance=jnp.float64(bias_variance),
            dual=activation.dual,
            derivative_dual=activation.derivative_dual if ntk else None,
            depth=depth,
            architecture=architecture,
            directions=tuple(directions),
        )
        out = _k._tiled(tile_fn, f, None)
    return out[0], out[1:]


@partial(jax.jit, static_argnames=("dual", "derivative_dual"))
def _flow_velocity(q11, q22, q12, theta12, *, dual, derivative_dual):
    """The right-hand side of the limit flow at its end point: d q_T/dT, or d Theta_T/dT."""
    d = dual(q11[:, None], q22[None, :], q12)
    return d if derivative_dual is None else d + theta12 * derivative_dual(
        q11[:, None], q22[None, :], q12)


def _limit_gradient_tile(z1, n1, z2, n2, *, diagonal, T, bias_variance, activation, ntk,
                         directions):
    """Infinite depth by the ODE (:mod:`resgp.ode`): stack of K and dK/d log(hyperparameter).
    d/dT is the flow's own velocity at T (exact); d/d bias variance integrates the variational
    equation along the shift of every q_0 entry (and Theta_0 = q_0) by 1."""
    q12 = np.asarray(_k._covariance_tile(z1, n1, z2, n2, diagonal=diagonal))
    q11, q22 = n1 * n1, n2 * n2
    start = dict(T=T, activation=activation, symmetric=diagonal)
    theta = q12 if ntk else None
    if 1 in directions:
        shift = (np.ones_like(q11), np.ones_like(q22), np.ones_like(q12),
                 np.ones_like(q12) if ntk else None)
        out, tangent = ode.limit_flow(q11, q22, q12, theta, tangent=shift, **start)
    else:
        out, tangent = ode.limit_flow(q11, q22, q12, theta, **start), None
    K = out[3] if ntk else out[2]
    stack = [K]
    for direction in directions:
        if direction == 0:
            with float64():
                velocity = _flow_velocity(
                    *(jnp.asarray(v) for v in out[:3]), None if theta is None else jnp.asarray(out[3]),
                    dual=activation.dual, derivative_dual=activation.derivative_dual if ntk else None)
            stack.append(T * np.asarray(velocity))
        else:
            stack.append(bias_variance * (tangent[3] if ntk else tangent[2]))
    return np.stack(stack)


def _limit_gradient(X, activation, T, bias_variance, directions, ntk):
    f = _k._features(X, WEIGHT_VARIANCE, bias_variance)
    tile_fn = partial(_limit_gradient_tile, T=T, bias_variance=bias_variance,
                      activation=activation, ntk=ntk, directions=tuple(directions))
    with float64():
        out = _k._tiled(tile_fn, f, None, tile=_k.ODE_TILE, pad=False)
    return out[0], out[1:]


# ----------------------------------------------------------------------------- the kernel


def _check_bounds(name, bounds):
    """'fixed', or a pair 0 < low <= high < inf; returned as (low, high) floats."""
    if isinstance(bounds, str):
        if bounds == "fixed":
            return bounds
        raise ValueError(f"{name}_bounds must be 'fixed' or a pair (low, high), got {bounds!r}")
    try:
        pair = np.asarray(bounds, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}_bounds must be 'fixed' or a pair (low, high), got {bounds!r}"
        ) from None
    if pair.shape != (2,):
        raise ValueError(f"{name}_bounds must be 'fixed' or a pair (low, high), got {bounds!r}")
    low, high = float(pair[0]), float(pair[1])
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(
            f"{name}_bounds must satisfy 0 < low <= high < inf (they bound a log-scale "
            f"hyperparameter), got {bounds!r}"
        )
    return low, high


class _NNGPKernel(Kernel):
    """What every resgp scikit-learn kernel shares: the validated ``bias_variance``
    hyperparameter, evaluation through a kernel function, the gradient protocol, the diagonal.
    Subclasses set ``_free`` (name -> direction 0: T, 1: bias) and the ``_function``/``_diag_function``
    hooks."""

    def _bounds(self, name):
        """The effective bounds of hyperparameter ``name``: ``None`` for the bias variance means
        ``DEFAULT_BIAS_BOUNDS``, or "fixed" when the bias variance is 0 (a bias-free network)."""
        bounds = getattr(self, name + "_bounds")
        if bounds is None and name == "bias_variance":
            return "fixed" if _is_zero(self.bias_variance) else DEFAULT_BIAS_BOUNDS
        return _check_bounds(name, bounds)

    @property
    def hyperparameter_bias_variance(self):
        bounds = self._bounds("bias_variance")
        if bounds != "fixed" and _is_zero(self.bias_variance):
            raise ValueError(_ZERO_BIAS)
        return Hyperparameter("bias_variance", "numeric", bounds)

    def _validated(self, names):
        """Check the hyperparameters ``names`` against their bounds; return (values, free)."""
        values, free = {}, []
        for name in names:
            value = check_variance(name, getattr(self, name), allow_zero=name == "bias_variance")
            values[name] = value
            bounds = self._bounds(name)
            if bounds == "fixed":
                continue
            if value == 0:
                raise ValueError(_ZERO_BIAS)
            low, high = bounds
            if not low * (1 - _BOUNDS_RTOL) <= value <= high * (1 + _BOUNDS_RTOL):
                raise ValueError(
                    f"{name}={value!r} is outside {name}_bounds=({low:g}, {high:g}); "
                    f"widen the bounds or set them to 'fixed'"
                )
            free.append(name)
        return values, free

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its gradient.

        Parameters
        ----------
        X : array of shape (n_samples_X, n_features)
        Y : array of shape (n_samples_Y, n_features) or None (then k(X, X))
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the non-fixed hyperparameters
            (only when Y is None).

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims), optional
            Last axis in the order of ``self.hyperparameters`` / ``self.theta`` (alphabetical),
            fixed ones left out. A view of a (n_dims, N, N) array (not C-contiguous).
        """
        kwargs, free = self._settings()
        function = self._function
        if Y is not None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            return function(np.asarray(X), np.asarray(Y), **kwargs)
        if not eval_gradient:
            return function(np.asarray(X), **kwargs)
        X = check_inputs(X, "X")
        if not free:
            return function(X, **kwargs), np.empty((X.shape[0], X.shape[0], 0))
        # directions in sklearn's alphabetical order of hyperparameter names
        K, grad = self._gradient(X, kwargs, [self._DIRECTIONS[name] for name in sorted(free)])
        return K, grad.transpose(1, 2, 0)

    def diag(self, X):
        """The diagonal k(x, x), shape (n_samples,), without forming the matrix."""
        kwargs, _ = self._settings()
        return self._diag_function(np.asarray(X), **kwargs)

    def is_stationary(self):
        """Returns False: the kernel depends on the inputs' norms, not only their difference."""
        return False

    @property
    def requires_vector_input(self):
        return True

    def _repr_extra(self):
        if isinstance(self.activation, str) and self.activation.lower() == "relu":
            return ""
        return f", activation={getattr(self.activation, 'name', self.activation)!r}"


class ResNetKernel(_NNGPKernel):
    r"""NNGP kernel of the infinitely wide scaled ResNet (Hayou & Yang 2023), for scikit-learn.

    :math:`k(a, b) = q_T(a, b)`: the covariance of the output of a ResNet whose input layer has
    :math:`q_0(a, b) = \langle a, b\rangle / d + \sigma_b^2` and whose residual branches have
    total variance T (``branch_variance``), in the infinite-depth limit (``depth=None``) or
    after ``depth`` blocks. Same as :func:`resgp.resnet_nngp` with ``weight_variance=1``
    (:func:`resgp.resnet_ntk` with ``ntk=True``). Not stationary; scale it with a
    ``ConstantKernel``.

    Parameters
    ----------
    branch_variance : float > 0, default=1.0
        Total branch variance T (the depth time of the kernel flow).
    bias_variance : float >= 0, default=0.0
        Bias variance :math:`\sigma_b^2` of the input layer. The default 0 is a bias-free
        network (as in Hayou & Yang), and then not a hyperparameter: a log-scale
        hyperparameter cannot start at 0. Give a positive value to tune it.
    activation : str, Activation or callable, default="relu"
        Activation of the residual branches (see :data:`resgp.ACTIVATIONS`). For ReLU (NNGP)
        the infinite-depth kernel and its gradient come from the exact tabulated angle flow;
        for the others from the ODE of :mod:`resgp.ode` (seconds for a few thousand inputs).
    depth : int >= 1 or None, default=None
        None for the infinite-depth limit, an integer L for L residual blocks.
    ntk : bool, default=False
        The neural tangent kernel of the same network instead of the NNGP.
    branch_variance_bounds : pair of floats > 0 or "fixed", default=(1e-2, 10)
    bias_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        Bounds for hyperparameter optimisation (values outside them are refused). None: (1e-5,
        100) when ``bias_variance > 0``, "fixed" when it is 0.

    Notes
    -----
    ``branch_variance`` is bounded by 10, not more: the kernel grows like
    :math:`e^{T/2}`, and at T = 100 (:math:`e^{50}`) combined with a ``ConstantKernel`` at its
    upper bound, the first L-BFGS-B step of ``GaussianProcessClassifier`` overflows sklearn's
    Laplace approximation and the optimiser stops where it started.

    Gradients (``eval_gradient=True``) are exact: finite depth by forward mode through the
    layer recursion; infinite depth, ReLU NNGP, from the flow identities; otherwise d/dT is the
    flow's velocity at T and d/d(bias variance) integrates the variational equation with the
    flow (to the solver's tolerance).

    ``K_gradient`` is returned as a view of a (n_dims, N, N) array (not C-contiguous), which
    scikit-learn's GP code uses as it is; ``np.ascontiguousarray`` copies it if needed.
    """

    _DIRECTIONS = {"branch_variance": 0, "bias_variance": 1}

    def __init__(
        self,
        branch_variance=1.0,
        bias_variance=0.0,
        activation="relu",
        depth=None,
        ntk=False,
        branch_variance_bounds=(1e-2, 1e1),
        bias_variance_bounds=None,
    ):
        self.branch_variance = branch_variance
        self.bias_variance = bias_variance
        self.activation = activation
        self.depth = depth
        self.ntk = ntk
        self.branch_variance_bounds = branch_variance_bounds
        self.bias_variance_bounds = bias_variance_bounds

    @property
    def hyperparameter_branch_variance(self):
        bounds = _check_bounds("branch_variance", self.branch_variance_bounds)
        return Hyperparameter("branch_variance", "numeric", bounds)

    @property
    def _function(self):
        return _k.resnet_ntk if self.ntk else _k.resnet_nngp

    @property
    def _diag_function(self):
        return _k.resnet_ntk_diag if self.ntk else _k.resnet_nngp_diag

    def _settings(self):
        """Validated keyword arguments of :func:`resgp.resnet_nngp` and the free names."""
        if not isinstance(self.ntk, (bool, np.bool_)):
            raise TypeError(f"ntk must be True or False, got {self.ntk!r}")
        values, free = self._validated(("branch_variance", "bias_variance"))
        depth = check_depth(self.depth, allow_none=True)
        activation = get_activation(self.activation)
        if self.ntk and activation.derivative_dual is None:
            raise ValueError(f"activation {activation.name!r} has no derivative dual: no NTK")
        kwargs = dict(depth=depth, weight_variance=WEIGHT_VARIANCE, activation=activation, **values)
        return kwargs, free

    def _gradient(self, X, kwargs, directions):
        T, bias, act = kwargs["branch_variance"], kwargs["bias_variance"], kwargs["activation"]
        if kwargs["depth"] is not None:
            return _recursion_gradient(X, kwargs["depth"], act, T, bias, directions, ntk=self.ntk)
        if act is RELU and not self.ntk:
            K, grad = _relu_limit_gradient(X, T, bias, 0 in directions, 1 in directions)
            return K, grad[::-1]  # (T, bias) order -> (bias, T)
        return _limit_gradient(X, act, T, bias, directions, self.ntk)

    def __repr__(self):
        extra = "" if self.depth is None else f", depth={self.depth!r}"
        extra += ", ntk=True" if self.ntk else ""
        return "{0}(branch_variance={1}, bias_variance={2}{3}{4})".format(
            self.__class__.__name__, _fmt(self.branch_variance), _fmt(self.bias_variance), extra,
            self._repr_extra(),
        )


class MLPKernel(_NNGPKernel):
    r"""NNGP kernel of the infinitely wide MLP (no skip connections), for scikit-learn.

    The comparator of THEORY.md: :math:`q_0(a,b) = \sigma_w^2\langle a, b\rangle / d +
    \sigma_b^2`, :math:`q_l = \sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2` for l = 1..``depth``;
    same as :func:`resgp.mlp_nngp`. For ReLU this is the arc-cosine kernel of degree 1 composed
    ``depth`` times (Cho & Saul 2009); with :math:`\sigma_w^2 = 2` (the default) every
    correlation tends to 1 as depth grows. Not stationary; scale it with a ``ConstantKernel``.

    Parameters
    ----------
    depth : int >= 1, default=3
        Number of hidden layers.
    bias_variance : float >= 0, default=0.0
        :math:`\sigma_b^2` of every layer; the only hyperparameter (log scale) when positive,
        fixed when 0 (as in :class:`ResNetKernel`).
    activation : str, default="relu"
    weight_variance : float > 0, default=2.0
        :math:`\sigma_w^2` of every layer, fixed: for ReLU it only rescales the kernel together
        with the bias variance, which the ``ConstantKernel`` in front already does.
    bias_variance_bounds : pair of floats > 0, "fixed" or None, default=None
        As in :class:`ResNetKernel`.
    """

    _DIRECTIONS = {"bias_variance": 1}

    def __init__(self, depth=3, bias_variance=0.0, activation="relu", weight_variance=2.0,
                 bias_variance_bounds=None):
        self.depth = depth
        self.bias_variance = bias_variance
        self.activation = activation
        self.weight_variance = weight_variance
        self.bias_variance_bounds = bias_variance_bounds

    _function = staticmethod(_k.mlp_nngp)
    _diag_function = staticmethod(_k.mlp_nngp_diag)

    def _settings(self):
        """Validated keyword arguments of :func:`resgp.mlp_nngp` and the free names."""
        values, free = self._validated(("bias_variance",))
        kwargs = dict(
            depth=check_depth(self.depth, allow_none=False),
            weight_variance=check_variance("weight_variance", self.weight_variance),
            activation=get_activation(self.activation),
            **values,
        )
        return kwargs, free

    def _gradient(self, X, kwargs, directions):
        return _recursion_gradient(
            X, kwargs["depth"], kwargs["activation"], kwargs["weight_variance"],
            kwargs["bias_variance"], directions, architecture="mlp",
            weight_variance=kwargs["weight_variance"],
        )

    def __repr__(self):
        return "{0}(depth={1!r}, bias_variance={2}{3})".format(
            self.__class__.__name__, self.depth, _fmt(self.bias_variance), self._repr_extra()
        )


_ZERO_BIAS = (
    "bias_variance=0 requires bias_variance_bounds='fixed' or None: hyperparameters are "
    "optimised in log space and log(0) is undefined. Leave the bounds out for a bias-free "
    "network, or give a positive bias_variance (e.g. 1e-5) to tune it"
)


def _is_zero(value) -> bool:
    try:
        return float(value) == 0.0
    except (TypeError, ValueError):
        return False


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, numbers.Real) else repr(value)
