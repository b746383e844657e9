r"""The kernels as JAX functions: traceable (``jit``, ``vmap``) and differentiable (``grad``).

What the GPJax kernel and any JAX user call: hyperparameters may be tracers. The paths are
those of :mod:`resgp.core.engine` without the host-side tables (docs/theory.md, "Adapters"):

* finite depth: :func:`resgp.core.recursion.run` (plain autodiff through the layers);
* infinite depth, ReLU NNGP: :func:`resgp.core.relu_flow.kernel` (exact flow identities in a
  ``custom_jvp``);
* otherwise: :func:`resgp.core.limit.flow_map` (the pair flow; partials from the flow's
  sensitivities and its velocity, in a ``custom_jvp``).

Call inside 64-bit JAX (``jax.config.update("jax_enable_x64", True)`` or
:func:`resgp.core.x64.enable_x64`): float32 cannot hold these kernels' accuracy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import limit, recursion, relu_flow
from .activations import RELU, at_order, series_only

__all__ = ["input_covariance", "kernel_matrix", "kernel_diagonal", "infinite_depth", "safe_sqrt"]


def safe_sqrt(s):
    """sqrt with a zero (not infinite) derivative at 0 (a zero row without a bias); NaN (a NaN
    input) stays NaN."""
    positive = s > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, s, 1.0)),
                     jnp.where(s == 0, 0.0, jnp.nan))


def input_covariance(X1, X2, weight_variance, bias_variance):
    r""":math:`q_0` of the input layer: (q_aa (N,), q_bb (M,), q_ab (N, M)).

    Parameters
    ----------
    X1 : array (N, d)
    X2 : array (M, d) or None
        None for the Gram matrix of X1 (its diagonal then equals q_aa exactly).
    weight_variance : scalar or array (d,)
        :math:`\sigma_w^2`, or per-feature weights :math:`w_i`.
    bias_variance : scalar
        :math:`\sigma_b^2`.
    """
    d = X1.shape[-1]
    A1 = X1 * jnp.sqrt(weight_variance / d)
    q_aa = jnp.sum(A1 * A1, axis=-1) + bias_variance
    if X2 is None:
        q_ab = A1 @ A1.T + bias_variance
        idx = jnp.arange(q_aa.shape[0])
        return q_aa, q_aa, q_ab.at[idx, idx].set(q_aa)
    A2 = X2 * jnp.sqrt(weight_variance / d)
    return q_aa, jnp.sum(A2 * A2, axis=-1) + bias_variance, A1 @ A2.T + bias_variance


def _layers(net, T, w, b, depth):
    ones = jnp.ones(depth)
    if net.architecture == "mlp":
        return 0.0 * ones, w * ones, b * ones
    return ones, (T / depth) * ones, 0.0 * ones


TRACED_ORDER = 1024  # the Mehler order of quadrature activations inside traced programs


def _traced(act):
    """A series activation at TRACED_ORDER: inside jit/grad the variances are tracers, so no
    rule can be picked per entry on the host. tanh and the sigmoid: that series with the
    direct sum beyond its range (a batch-wide ``lax.cond``; exact at every variance).
    Callables: the Mehler series alone (the graded rule under ``lax.cond`` costs ~2 ms per pair
    and evaluation), accurate to its target up to ``mehler_max``, truncated beyond (the kernel
    functions and the scikit-learn kernel switch to the graded rule there; docs/theory.md,
    "Adapters")."""
    if act.order is None:
        return act
    with jax.ensure_compile_time_eval():  # the series' range is found once, eagerly (cached)
        if act.quadrature is None:  # tanh, the sigmoid: the direct sum beyond (exact)
            return at_order(act, TRACED_ORDER)
        return series_only(at_order(act, TRACED_ORDER))


def _from_covariances(net, T, w, b, q_aa, q_bb, q_ab, symmetric):
    act, ntk = _traced(net.activation), net.ntk
    if net.depth is not None:
        return recursion.run(act, q_aa, q_bb, q_ab, q_ab if ntk else None,
                             _layers(net, T, w, b, net.depth), symmetric)[1 if ntk else 0]
    out = infinite_depth(act, T, q_aa, q_bb, q_ab, q_ab if ntk else None, rtol=net.rtol,
                         atol=net.atol, symmetric=symmetric)
    return out[3] if ntk else out[2]


def infinite_depth(activation, T, q_aa, q_bb, q_ab, theta=None, *, rtol=limit.ode.RTOL,
                   atol=limit.ode.ATOL, symmetric=False):
    """The infinite-depth ResNet from input covariances (any front end), in JAX.

    ReLU's NNGP by its exact angle flow (:math:`q_T(a, a) = q_0(a, a) e^{T/2}`), everything
    else by :func:`resgp.core.limit.flow_map`; same arguments and returns as ``flow_map``.
    """
    if activation is RELU and theta is None:
        growth = jnp.exp(0.5 * T)
        K = relu_flow.kernel(q_ab, safe_sqrt(q_aa)[:, None], safe_sqrt(q_bb)[None, :], T)
        return q_aa * growth, q_bb * growth, K, None
    return limit.flow_map(_traced(activation), T, q_aa, q_bb, q_ab, theta, rtol=rtol,
                          atol=atol, symmetric=symmetric)


def kernel_matrix(net, X1, X2=None, *, branch_variance, weight_variance, bias_variance):
    """K(X1, X2) of the network ``net`` as a JAX function of the data and hyperparameters.

    Parameters
    ----------
    net : Network
        Gives the architecture, activation, depth, NTK flag and tolerances (its own
        hyperparameter values are not used).
    X1 : array (N, d)
    X2 : array (M, d) or None
        None: the exactly symmetric Gram matrix of X1.
    branch_variance : scalar
        T (ignored by the MLP).
    weight_variance : scalar or array (d,)
    bias_variance : scalar

    Returns
    -------
    K : array (N, M)
    """
    q_aa, q_bb, q_ab = input_covariance(X1, X2, weight_variance, bias_variance)
    K = _from_covariances(net, branch_variance, weight_variance, bias_variance, q_aa, q_bb,
                          q_ab, X2 is None)
    return 0.5 * (K + K.T) if X2 is None else K


def kernel_diagonal(net, X, *, branch_variance, weight_variance, bias_variance):
    """K(x, x) for the rows of ``X`` (N,), as :func:`kernel_matrix` (same arguments)."""
    q = input_covariance(X, X[:1], weight_variance, bias_variance)[0]
    if net.depth is None and net.activation is RELU and not net.ntk:
        return q * jnp.exp(0.5 * branch_variance)  # q_T(a, a) = q_0(a, a) e^{T/2}
    one = lambda v: _from_covariances(  # noqa: E731
        net, branch_variance, weight_variance, bias_variance, v[None], v[None], v[None, None],
        True)[0, 0]
    return jax.vmap(one)(q)
