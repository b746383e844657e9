r"""NNGP and NTK kernels of the scaled ResNet and of the MLP comparator, as plain functions.

Inputs ``X1`` (N, d) and ``X2`` (M, d), NumPy or JAX; out a float64 (N, M) matrix, a NumPy array
(a JAX array when ``X1`` is one), whatever the caller's JAX x64 setting. ``X2=None`` gives
K(X1, X1), exactly symmetric. Big inputs are computed in tiles. These functions validate their
arguments and hand a :class:`resgp.core.network.Network` to the compute engine
(:mod:`resgp.core.engine`); the math is in docs/theory.md. Called inside ``jax.jit``, ``vmap``
or ``grad`` (traced inputs, 64-bit JAX on), they run the traceable kernels of
:mod:`resgp.core.traceable` instead (the GPJax and Neural Tangents adapters' path: quadrature
activations as their order-1024 Mehler series, docs/theory.md, "Adapters").
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .core import engine, limit, network, ode, traceable
from .core.activations import RELU, get_activation
from .core.inputs import layer_weight_variance
from .core.validation import check_features, check_inputs, check_pair, check_variance
from .core.x64 import float64

__all__ = ["resnet_nngp", "resnet_nngp_diag", "resnet_ntk", "resnet_ntk_diag", "resnet_limit",
           "mlp_nngp", "mlp_nngp_diag", "mlp_ntk", "mlp_ntk_diag"]

_RESNET_DOC = r"""
    Parameters
    ----------
    {x}
    depth : int >= 1 or None, default=None
        None for the infinite-width-and-depth limit (the flow of docs/theory.md integrated to
        depth time T = ``branch_variance``); an integer L for the exact infinite-width
        recursion over L blocks with :math:`\alpha_l^2 = T / L`.
    branch_variance : float > 0, default=1.0
        T, the total branch variance :math:`\sum_l \alpha_l^2` (T = 1 is Hayou & Yang's
        :math:`1/\sqrt{{L}}` scaling).
    weight_variance : float > 0 or array (d,) of them, default=1.0
        :math:`\sigma_w^2` of the input layer, :math:`q_0(a,b) = \sigma_w^2\langle a,b\rangle/d
        + \sigma_b^2`, or one variance per feature (ARD), :math:`q_0(a,b) = \sum_i w_i a_i
        b_i/d + \sigma_b^2`.
    bias_variance : float >= 0, default=0.0
        :math:`\sigma_b^2` of the input layer (0: a bias-free network, as in Hayou & Yang).
    activation : str, Activation or callable, default="relu"
        A name ("relu", "leaky_relu", "abrelu", "erf", "sin", "gelu", "tanh", "sigmoid",
        "step", "requ", "sign"), an
        :class:`~resgp.activations.Activation` (e.g. ``resgp.activations.leaky_relu(0.1)``) or
        an elementwise ``jax.numpy`` callable (duals by quadrature, resgp.core.quadrature).
    branch_scales : sequence of float or None, default=None
        :math:`(\alpha_1, \ldots, \alpha_L)`, any non-uniform scaling (fixes the depth;
        replaces ``branch_variance``).
    rtol : float, default={rtol:g}
        Relative tolerance of the ODE solves at infinite depth (every activation but ReLU's
        NNGP, which has an exact tabulated flow).
    atol : float, default={atol:g}
        Absolute tolerance of those solves, relative to each kernel entry's own scale.

    Returns
    -------
    {ret}
"""

_X_PAIR = """X1 : array (N, d)
        Inputs.
    X2 : array (M, d) or None, default=None
        Second inputs; None for K(X1, X1) (exactly symmetric)."""
_X_ONE = """X : array (N, d)
        Inputs."""
_RET_MATRIX = """K : float64 array (N, M)
        In the units of :math:`q_0` (squared input units times :math:`\\sigma_w^2/d`, plus
        :math:`\\sigma_b^2`); a JAX array when ``X1`` is one."""
_RET_DIAG = """k : float64 array (N,)
        The diagonal, in the units of :math:`q_0`."""


def _resnet(depth, branch_variance, weight_variance, bias_variance, activation, branch_scales,
            rtol, atol, ntk):
    return network.resnet(depth=depth, branch_variance=branch_variance,
                          weight_variance=weight_variance, bias_variance=bias_variance,
                          activation=activation, branch_scales=branch_scales, ntk=ntk,
                          rtol=rtol, atol=atol)


def _output(K, like):
    if isinstance(like, jax.Array):
        with float64():
            return jnp.asarray(K)
    return K


def _traced(*arrays):
    """True when an input is a JAX tracer (the call is inside ``jit``, ``vmap`` or ``grad``)."""
    return any(isinstance(a, jax.core.Tracer) for a in arrays)


def _traceable(net, fn, *arrays):
    """Under a JAX transformation: the traceable kernels (:mod:`resgp.core.traceable`), which
    need 64-bit JAX and uniform branch scales; the host-side tables and per-entry rules are not
    available there (docs/theory.md, "Adapters")."""
    if not jax.config.jax_enable_x64:
        raise TypeError(
            "inside jax.jit/vmap/grad the kernel runs in JAX's own precision: enable 64-bit JAX "
            "first (jax.config.update('jax_enable_x64', True)); float32 cannot hold it")
    if net.branch_scales is not None:
        raise TypeError("branch_scales are not traceable: inside jax.jit give depth and "
                        "branch_variance (uniform scales)")
    for a in arrays:
        if a is not None and (a.ndim != 2 or a.shape[-1] != arrays[0].shape[-1]):
            raise ValueError(f"inputs must be 2-D of shape (N, d) with one d, got shapes "
                             f"{[x.shape for x in arrays if x is not None]}")
    w = net.weight_variance
    if net.ard:
        check_features(arrays[0], w, "X1")
        w = jnp.asarray(w)
        if net.architecture == "mlp":  # the traceable MLP takes one sigma_w^2 for every layer:
            # the ARD input layer as inputs scaled by sqrt(w_i / mean), the hidden layers' one
            m = layer_weight_variance(net.weight_variance)
            arrays = tuple(None if a is None else a * jnp.sqrt(w / m) for a in arrays)
            w = m
    return fn(net, *arrays, branch_variance=net.branch_variance, weight_variance=w,
              bias_variance=net.bias_variance)


def _matrix(net, X1, X2):
    if _traced(X1, X2):
        return _traceable(net, traceable.kernel_matrix, X1, X2)
    A, B = check_pair(X1, X2)
    return _output(engine.gram(net, A, B), X1)


def _diag(net, X):
    if _traced(X):
        return _traceable(net, traceable.kernel_diagonal, X)
    return _output(engine.diagonal(net, check_inputs(X, "X")), X)


def resnet_nngp(X1, X2=None, *, depth=None, branch_variance=1.0, weight_variance=1.0,
                bias_variance=0.0, activation="relu", branch_scales=None, rtol=ode.RTOL,
                atol=ode.ATOL):
    return _matrix(_resnet(depth, branch_variance, weight_variance, bias_variance, activation,
                           branch_scales, rtol, atol, False), X1, X2)


def resnet_nngp_diag(X, *, depth=None, branch_variance=1.0, weight_variance=1.0,
                     bias_variance=0.0, activation="relu", branch_scales=None, rtol=ode.RTOL,
                     atol=ode.ATOL):
    return _diag(_resnet(depth, branch_variance, weight_variance, bias_variance, activation,
                         branch_scales, rtol, atol, False), X)


def resnet_ntk(X1, X2=None, *, depth=None, branch_variance=1.0, weight_variance=1.0,
               bias_variance=0.0, activation="relu", branch_scales=None, rtol=ode.RTOL,
               atol=ode.ATOL):
    return _matrix(_resnet(depth, branch_variance, weight_variance, bias_variance, activation,
                           branch_scales, rtol, atol, True), X1, X2)


def resnet_ntk_diag(X, *, depth=None, branch_variance=1.0, weight_variance=1.0,
                    bias_variance=0.0, activation="relu", branch_scales=None, rtol=ode.RTOL,
                    atol=ode.ATOL):
    return _diag(_resnet(depth, branch_variance, weight_variance, bias_variance, activation,
                         branch_scales, rtol, atol, True), X)


resnet_nngp.__doc__ = r"""NNGP kernel of the infinitely wide ResNet with branches scaled by :math:`\alpha_{l,L}`.

    :math:`Y_l = Y_{l-1} + \alpha_l W_l\phi(Y_{l-1})`; the kernel is the covariance of the
    output pre-activations, :math:`q_L(a, b)` (finite depth) or :math:`q_T(a, b)` (infinite
    depth), docs/theory.md.
""" + _RESNET_DOC.format(x=_X_PAIR, ret=_RET_MATRIX, rtol=ode.RTOL, atol=ode.ATOL)
resnet_nngp_diag.__doc__ = """The diagonal K(x, x) of :func:`resnet_nngp`, without forming the matrix.
""" + _RESNET_DOC.format(x=_X_ONE, ret=_RET_DIAG, rtol=ode.RTOL, atol=ode.ATOL)
resnet_ntk.__doc__ = r"""Neural tangent kernel of the same ResNet (Neural Tangents' 'ntk' parameterisation).

    Finite depth: :math:`\Theta_0 = q_0`, :math:`\Theta_l = \Theta_{l-1} + \alpha_l^2
    (\check\phi(q_{l-1}) + \Theta_{l-1}\check{\phi'}(q_{l-1}))` (NT's analytic 'ntk' of
    :func:`resgp.nt.resnet` exactly). Infinite depth: :math:`\dot\Theta = \check\phi(q_t) +
    \Theta\,\check{\phi'}(q_t)` with the NNGP flow (docs/theory.md, "Other activations").
""" + _RESNET_DOC.format(x=_X_PAIR, ret=_RET_MATRIX, rtol=ode.RTOL, atol=ode.ATOL)
resnet_ntk_diag.__doc__ = """The diagonal Theta(x, x) of :func:`resnet_ntk`, without forming the matrix.
""" + _RESNET_DOC.format(x=_X_ONE, ret=_RET_DIAG, rtol=ode.RTOL, atol=ode.ATOL)


_MLP_DOC = r"""
    Parameters
    ----------
    {x}
    depth : int >= 1
        Number of hidden layers.
    weight_variance : float > 0 or array (d,) of them, default=2.0
        :math:`\sigma_w^2` of every layer (2: He initialisation, the edge of chaos for ReLU),
        or one variance per feature (ARD): the input layer has :math:`q_0(a,b) = \sum_i w_i
        a_i b_i/d + \sigma_b^2` and every hidden layer :math:`\sigma_w^2 = \bar w`, the mean
        of the :math:`w_i` (equal entries c give the kernel of the scalar c exactly).
    bias_variance : float >= 0, default=0.0
        :math:`\sigma_b^2` of every layer.
    activation : str, Activation or callable, default="relu"
        As in :func:`resnet_nngp`.

    Returns
    -------
    {ret}
"""


def mlp_nngp(X1, X2=None, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    return _matrix(network.mlp(depth=depth, weight_variance=weight_variance,
                               bias_variance=bias_variance, activation=activation), X1, X2)


def mlp_nngp_diag(X, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    return _diag(network.mlp(depth=depth, weight_variance=weight_variance,
                             bias_variance=bias_variance, activation=activation), X)


def mlp_ntk(X1, X2=None, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    return _matrix(network.mlp(depth=depth, weight_variance=weight_variance,
                               bias_variance=bias_variance, activation=activation, ntk=True),
                   X1, X2)


def mlp_ntk_diag(X, *, depth, weight_variance=2.0, bias_variance=0.0, activation="relu"):
    return _diag(network.mlp(depth=depth, weight_variance=weight_variance,
                             bias_variance=bias_variance, activation=activation, ntk=True), X)


mlp_nngp.__doc__ = r"""NNGP kernel of the infinitely wide MLP (no skip connections) with ``depth`` hidden layers.

    :math:`q_0 = \sigma_w^2\langle a,b\rangle/d + \sigma_b^2` (ARD: :math:`\sum_i w_i a_i
    b_i/d + \sigma_b^2`, with :math:`\sigma_w^2 = \bar w` below),
    :math:`q_l = \sigma_w^2 E[\phi(u)\phi(v)] + \sigma_b^2`, l = 1..depth. For ReLU with
    :math:`\sigma_w^2 = 2` the correlation of any two inputs tends to 1 as depth grows.
""" + _MLP_DOC.format(x=_X_PAIR, ret=_RET_MATRIX)
mlp_nngp_diag.__doc__ = """The diagonal K(x, x) of :func:`mlp_nngp`, without forming the matrix.
""" + _MLP_DOC.format(x=_X_ONE, ret=_RET_DIAG)
mlp_ntk.__doc__ = r"""NTK of the MLP of :func:`mlp_nngp` (NT 'ntk' parameterisation).

    :math:`\Theta_0 = q_0`, :math:`\Theta_l = \sigma_w^2(\check\phi(q_{l-1}) +
    \Theta_{l-1}\check{\phi'}(q_{l-1})) + \sigma_b^2` (ARD: the ARD :math:`q_0` and
    :math:`\sigma_w^2 = \bar w`, as in :func:`mlp_nngp`).
""" + _MLP_DOC.format(x=_X_PAIR, ret=_RET_MATRIX)
mlp_ntk_diag.__doc__ = """The diagonal Theta(x, x) of :func:`mlp_ntk`, without forming the matrix.
""" + _MLP_DOC.format(x=_X_ONE, ret=_RET_DIAG)


def resnet_limit(q11, q22, q12, theta12=None, *, branch_variance=1.0, activation="relu",
                 rtol=ode.RTOL, atol=ode.ATOL, symmetric=False):
    r"""The infinite-depth ResNet's output covariances (and NTK) from its input covariances.

    Runs the limit flow for depth time T = ``branch_variance`` from arbitrary input
    covariances, e.g. those of a Neural Tangents front end. The traceable, differentiable
    version is :func:`resgp.core.limit.flow_map` (behind :func:`resgp.nt.InfiniteResNet`).

    Parameters
    ----------
    q11 : array (N,)
        Variances :math:`q(a, a)` >= 0.
    q22 : array (M,)
        Variances :math:`q(b, b)` >= 0.
    q12 : array (N, M)
        Covariances :math:`q(a, b)`.
    theta12 : array (N, M) or None, default=None
        NTK :math:`\Theta(a, b)` of the front end, or None (NNGP only).
    branch_variance : float > 0, default=1.0
        Depth time T.
    activation : str, Activation or callable, default="relu"
        As in :func:`resnet_nngp`.
    rtol : float, default={rtol:g}
        Relative tolerance of the solve (ReLU's NNGP uses the exact tabulated flow).
    atol : float, default={atol:g}
        Absolute tolerance, relative to each entry's own scale.
    symmetric : bool, default=False
        Rows and columns are the same inputs (q22 = q11, q12 symmetric with diagonal q11);
        the diagonal pairs then stay exactly on the diagonal flow.

    Returns
    -------
    (q11_T (N,), q22_T (M,), q12_T (N, M), theta12_T (N, M) or None)
        float64 NumPy arrays, in the units of the inputs.
    """
    act = get_activation(activation)
    T = check_variance("branch_variance", branch_variance)
    rtol, atol = ode.check_tolerances(rtol, atol)
    q11, q22, q12, theta12 = _check_covariances(q11, q22, q12, theta12, symmetric)
    if theta12 is not None and act.derivative_dual is None:
        raise ValueError(f"activation {act.name!r} has no derivative dual: no NTK")
    with float64():
        if act is RELU and theta12 is None:  # exact; no solver status to check
            y = traceable.infinite_depth(act, jnp.float64(T), jnp.asarray(q11),
                                         jnp.asarray(q22), jnp.asarray(q12))
            return tuple(np.asarray(v) for v in y[:3]) + (None,)
        y, _, info = _limit_block(act, jnp.float64(T), *(jnp.asarray(v) for v in (q11, q22, q12)),
                                  None if theta12 is None else jnp.asarray(theta12),
                                  rtol=rtol, atol=atol, symmetric=bool(symmetric))
        limit.host_status(info, f"the limit flow of activation {act.name!r}")
        y = tuple(np.asarray(v) for v in y)
    return y[0], y[1], y[2], (y[3] if theta12 is not None else None)


resnet_limit.__doc__ = resnet_limit.__doc__.format(rtol=ode.RTOL, atol=ode.ATOL)

_limit_block = jax.jit(limit.pair_flow, static_argnames=("activation", "rtol", "atol", "symmetric"))


def _check_covariances(q11, q22, q12, theta12, symmetric):
    arrays = []
    for name, v in (("q11", q11), ("q22", q22), ("q12", q12), ("theta12", theta12)):
        if v is None:
            arrays.append(None)
            continue
        a = np.asarray(v)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or inf: covariances must be finite")
        arrays.append(a)
    q11, q22, q12, theta12 = arrays
    q11, q22 = q11.reshape(-1), q22.reshape(-1)
    if q12.shape != (q11.size, q22.size):
        raise ValueError(f"q12 must have shape (len(q11), len(q22)) = {(q11.size, q22.size)}, "
                         f"got {q12.shape}")
    if theta12 is not None and theta12.shape != q12.shape:
        raise ValueError(f"theta12 must have the shape of q12 {q12.shape}, got {theta12.shape}")
    if np.any(q11 < 0) or np.any(q22 < 0):
        raise ValueError("q11 and q22 are variances: they must be >= 0")
    bound = np.sqrt(q11)[:, None] * np.sqrt(q22)[None, :]
    if np.any(np.abs(q12) > bound * (1 + 1e-10) + 1e-300):
        raise ValueError("q12 is not a covariance of q11 and q22: |q12| must be <= "
                         "sqrt(q11 q22) (Cauchy-Schwarz)")
    if symmetric:
        if q11.size != q22.size:
            raise ValueError("symmetric=True needs len(q11) == len(q22)")
        if not np.allclose(q12, q12.T, rtol=1e-12, atol=0):
            raise ValueError("symmetric=True needs a symmetric q12")
    return q11, q22, q12, theta12
