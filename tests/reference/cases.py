"""The cases shared by ``tests/test_exactness.py`` and ``benchmarks/exactness.py``: the input
variance levels, the pair types, the feature dimension and the three ``jax.numpy`` callables
given to resgp as user activations (no resgp code)."""

import math

import jax
import jax.numpy as jnp

Q_LEVELS = (1e-4, 0.01, 1.0, 25.0, 100.0, 1e4)
PAIR_TYPES = ("same", "double", "anti", "near", "other")
D = 8


def softplus(x):
    return jnp.logaddexp(x, 0.0)


def tanh_plus_square(x):
    return jnp.tanh(x) + 0.1 * x * x


def gelu_callable(x):
    return 0.5 * x * (1.0 + jax.scipy.special.erf(x / math.sqrt(2.0)))


CALLABLES = {"softplus": softplus, "tanh+0.1x^2": tanh_plus_square,
             "gelu(callable)": gelu_callable}
