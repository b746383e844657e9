"""Neural Tangents networks whose kernels are resgp's kernels (needs the ``[nt]`` extra).

``neural_tangents`` (and with it TensorFlow) is imported inside these functions only, so
``import resgp`` and ``import resgp.nt`` stay fast. Networks use NT's default 'ntk'
parameterisation, as in docs/theory.md ("Network and input layer")::

    resnet:  Dense(n, W_std=sigma_w, b_std=sigma_b), then L blocks
             FanOut(2) -> parallel(serial(phi, Dense(n, W_std=alpha_l)), Identity) -> FanInSum
    mlp:     Dense(n, W_std=sigma_w, b_std=sigma_b), then L x [phi, Dense(n, W_std=sigma_w, b_std=sigma_b)]

Each function returns the stax triple ``(init_fn, apply_fn, kernel_fn)``; ``kernel_fn`` is NT's
analytic infinite-width kernel of that finite-depth network. Activations map to NT layers by
their ``spec`` (``Relu``, ``ABRelu``, ``Erf``, ``Sin``, ``Gelu``; tanh, the sigmoid and the
rectified monomials to ``Elementwise`` with resgp's duals; callables to
``ElementwiseNumerical`` with ``deg = 2 * order``, the node count of resgp's own rule).

:func:`InfiniteResNet` is a stax layer whose ``kernel_fn`` is the infinite-depth ResNet itself,
to put after any NT front end.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from .core import network
from .core.traceable import infinite_depth
from .core.activations import get_activation
from .core.validation import check_depth, check_variance


def _stax():
    try:
        from neural_tangents import stax
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "resgp.nt needs neural-tangents: pip install 'resgp[nt]' (it holds jax at 0.5.x)"
        ) from exc
    return stax


def _phi(activation):
    """The stax layer of an activation, by its ``spec`` (NT's conventions, see activations)."""
    stax = _stax()
    kind, params = get_activation(activation).spec
    if kind == "abrelu":
        return stax.Relu() if params == (0.0, 1.0) else stax.ABRelu(*params)
    if kind == "erf":
        return stax.Erf(*params)
    if kind == "sin":
        return stax.Sin(*params)
    if kind == "gelu":
        return stax.Gelu()
    if kind in ("rectified_monomial", "tanh", "sigmoid"):
        # NT's Elementwise layer with resgp's closed forms. tanh and the sigmoid: NT has no
        # analytic layer (ElementwiseNumerical's Gauss-Hermite rule is 1e-6 off at q = 25).
        # max(0, x)^n: NT 0.6.5's stax.RectifiedMonomial(n) returns NaN on every diagonal entry
        # (arccos(1) = 0, then (pi - 0) / sin 0), which spreads to the whole kernel after a
        # second layer (the NTK: the derivative dual n^2 x dual of order n - 1; for the step 0,
        # NT's own convention for RectifiedMonomial(0) and Sign, the finite network's autodiff
        # gradient of a step)
        act = get_activation(activation)
        d_nngp = act.derivative_dual or (lambda q11, q22, q12: 0.0 * q12)
        return stax.Elementwise(act.fn, lambda cov12, var1, var2: act.dual(var1, var2, cov12),
                                lambda cov12, var1, var2: d_nngp(var1, var2, cov12))
    if kind == "sign":
        return stax.Sign()
    if kind == "numerical":
        fn, order, derivative = params
        import warnings

        with warnings.catch_warnings():  # NT warns on every construction of this layer
            warnings.simplefilter("ignore")
            return stax.ElementwiseNumerical(fn, deg=2 * order, df=derivative)
    raise ValueError(f"no Neural Tangents layer for activation {get_activation(activation).name!r} "
                     f"(spec {kind!r})")


def _input_layer(width, weight_variance, bias_variance):
    stax = _stax()
    wv = check_variance("weight_variance", weight_variance)
    bv = check_variance("bias_variance", bias_variance, allow_zero=True)
    return stax.Dense(width, W_std=math.sqrt(wv), b_std=math.sqrt(bv) if bv > 0 else None)


def _check_width(width):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    return width


def _block(width, alpha, *, activation):
    """One residual block y = x + alpha Dense(phi(x)) (no bias) of width ``width``."""
    stax = _stax()
    branch = stax.serial(_phi(activation), stax.Dense(width, W_std=alpha, b_std=None))
    return stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())


def resnet(
    width,
    depth,
    *,
    activation="relu",
    branch_variance=1.0,
    weight_variance=1.0,
    bias_variance=0.0,
    branch_scales=None,
):
    """The finite ResNet of docs/theory.md ("Network and input layer"): width ``width``, ``depth`` residual blocks.

    Its analytic kernel equals ``resgp.resnet_nngp(..., depth=depth)`` with the same settings;
    branch scales are ``alpha_l = sqrt(branch_variance / depth)`` or ``branch_scales``.

    Parameters
    ----------
    width : int >= 1
        Number of neurons of every layer.
    depth : int >= 1
        Number of residual blocks L.
    activation : str, Activation or callable, default="relu"
        As in :func:`resgp.resnet_nngp` (mapped to NT's layer by its ``spec``).
    branch_variance : float > 0, default=1.0
        T, the total branch variance: :math:`\\alpha_l^2 = T / L`.
    weight_variance : float > 0, default=1.0
        :math:`\\sigma_w^2` of the input layer (``W_std`` = its square root).
    bias_variance : float >= 0, default=0.0
        :math:`\\sigma_b^2` of the input layer (0: no bias).
    branch_scales : sequence of float or None, default=None
        :math:`(\\alpha_1, \\ldots, \\alpha_L)` instead of the uniform scales (length ``depth``).

    Returns
    -------
    (init_fn, apply_fn, kernel_fn)
        NT's stax triple; ``kernel_fn`` is the analytic infinite-width kernel.
    """
    stax = _stax()
    width = _check_width(width)
    depth = check_depth(depth, allow_none=False)
    _, gains, _ = network.resnet(depth=depth, branch_variance=branch_variance,
                                 branch_scales=branch_scales).layers()

    block = partial(_block, width, activation=activation)
    alphas = np.sqrt(gains)
    if np.all(alphas == alphas[0]):
        blocks = stax.repeat(block(float(alphas[0])), depth)
    else:
        blocks = stax.serial(*[block(float(a)) for a in alphas])
    return stax.serial(_input_layer(width, weight_variance, bias_variance), blocks)


def mlp(width, depth, *, activation="relu", weight_variance=2.0, bias_variance=0.0):
    """The finite MLP whose analytic kernel is ``resgp.mlp_nngp(..., depth=depth)``.

    Parameters
    ----------
    width : int >= 1
        Number of neurons of every layer.
    depth : int >= 1
        Number of hidden layers.
    activation : str, Activation or callable, default="relu"
        As in :func:`resgp.mlp_nngp`.
    weight_variance : float > 0, default=2.0
        :math:`\\sigma_w^2` of every layer (2: He initialisation).
    bias_variance : float >= 0, default=0.0
        :math:`\\sigma_b^2` of every layer (0: no biases).

    Returns
    -------
    (init_fn, apply_fn, kernel_fn)
        NT's stax triple; ``kernel_fn`` is the analytic infinite-width kernel.
    """
    stax = _stax()
    width = _check_width(width)
    depth = check_depth(depth, allow_none=False)
    layer = stax.serial(_phi(activation), _input_layer(width, weight_variance, bias_variance))
    return stax.serial(_input_layer(width, weight_variance, bias_variance), stax.repeat(layer, depth))


def InfiniteResNet(
    *,
    branch_variance=1.0,
    activation="relu",
    stand_in_depth=16,
    rtol=None,
    atol=None,
):
    r"""A stax layer: the infinite-depth ResNet, usable inside ``stax.serial``.

    ``kernel_fn`` maps the input Kernel (covariances :math:`q` of pre-activations from any NT
    front end: ``Dense``, ``Conv`` + ``Flatten``, ...) to the output Kernel of the ResNet in
    the limit of infinite width and depth (docs/theory.md, "Adapters"): nngp, cov1, cov2 and
    ntk are replaced by the limit flow started at them, depth time T = ``branch_variance``;
    the NTK obeys :math:`\dot\Theta = \check\phi + \Theta\check{\phi'}` from the input Kernel's
    ntk (:math:`\Theta_0 \ne q_0` after a general front end). ``stax.serial(stax.Dense(n,
    W_std=sigma_w, b_std=sigma_b), InfiniteResNet(...))`` therefore gives exactly
    ``resgp.resnet_nngp`` / ``resgp.resnet_ntk``. The kernel is computed in JAX
    (:func:`resgp.core.traceable.infinite_depth`), so ``kernel_fn`` works under ``jax.jit``, ``jax.grad`` (inputs and
    ``branch_variance``, which may be a tracer) and ``jax.vmap``, on any device; it needs
    flattened inputs (no spatial dimensions) and, for accuracy, 64-bit JAX.

    Parameters
    ----------
    branch_variance : float > 0 or scalar tracer, default=1.0
        Depth time T of the residual stack.
    activation : str, Activation or callable, default="relu"
        As in :func:`resgp.resnet_nngp`.
    stand_in_depth : int >= 1, default=16
        Blocks of the finite stand-in network of ``apply_fn``: ``x + sqrt(T / stand_in_depth)
        Dense(phi(x))`` of the input's own width (no bias), whose analytic kernel converges to
        ``kernel_fn``'s at rate O(1 / stand_in_depth). ``init_fn`` initialises those blocks.
    rtol : float or None, default=None
        Relative tolerance of the flow (None: :data:`resgp.core.ode.RTOL`).
    atol : float or None, default=None
        Absolute tolerance, relative to each entry's scale (None: :data:`resgp.core.ode.ATOL`).

    Returns
    -------
    (init_fn, apply_fn, kernel_fn)
        A stax layer.
    """
    import jax
    import jax.numpy as jnp

    from .core.ode import ATOL, RTOL, check_tolerances

    stax = _stax()
    act = get_activation(activation)
    T = branch_variance
    if not isinstance(T, jax.core.Tracer):
        T = check_variance("branch_variance", branch_variance)
    depth = check_depth(stand_in_depth, allow_none=False)
    rtol, atol = check_tolerances(RTOL if rtol is None else rtol, ATOL if atol is None else atol)

    def stand_in(width):
        return stax.repeat(_block(width, jnp.sqrt(T / depth), activation=act), depth)

    def init_fn(rng, input_shape):
        return stand_in(int(input_shape[-1]))[0](rng, input_shape)

    def apply_fn(params, inputs, **kwargs):
        return stand_in(int(inputs.shape[-1]))[1](params, inputs, **kwargs)

    def flow(q11, q22, q12, theta, symmetric):
        """(q11_T, q22_T, q12_T, theta_T or None) in JAX."""
        return infinite_depth(act, T, q11, q22, q12, theta, rtol=rtol, atol=atol,
                              symmetric=symmetric)

    @stax.requires(diagonal_spatial=stax.Diagonal())
    def kernel_fn(k, **kwargs):
        if k.nngp.ndim != 2:
            raise ValueError(
                "InfiniteResNet needs inputs without spatial dimensions: put stax.Flatten() or "
                f"a global pooling layer before it (got an nngp of shape {k.nngp.shape})"
            )
        if not k.is_gaussian:
            raise ValueError("InfiniteResNet's input must be Gaussian pre-activations: put an "
                             "affine layer (stax.Dense, stax.Conv) before it")
        d1 = k.cov1 if k.diagonal_batch else jnp.diagonal(k.cov1)
        symmetric = k.cov2 is None
        d2 = d1 if symmetric else (k.cov2 if k.diagonal_batch else jnp.diagonal(k.cov2))
        q11, q22, nngp, ntk = flow(d1, d2, k.nngp, k.ntk, symmetric)
        cov1, cov2 = q11, (None if symmetric else q22)
        if not k.diagonal_batch:  # full covariance matrices among x1 (and among x2)
            cov1 = flow(d1, d1, k.cov1, None, True)[2]
            if not symmetric:
                cov2 = flow(d2, d2, k.cov2, None, True)[2]
        return k.replace(cov1=cov1, nngp=nngp, cov2=cov2, ntk=ntk, is_gaussian=True)

    return stax.layer(lambda: (init_fn, apply_fn, kernel_fn))()

