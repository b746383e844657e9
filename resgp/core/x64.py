"""Float64 JAX without touching the caller's global settings.

``enable_x64()`` is a context manager that switches 64-bit JAX on for the calling thread only
and restores the previous state on exit.  jax >= 0.6 exposes it as ``jax.enable_x64``; jax 0.5
as ``jax.experimental.enable_x64``.
"""

from __future__ import annotations

import contextlib

import jax

from .jax_runtime import check_compilation_cache


def enable_x64():
    """Context manager: 64-bit JAX inside the block, the caller's setting restored after."""
    state = getattr(jax, "enable_x64", None)
    if state is None:  # jax 0.5
        from jax.experimental import enable_x64 as state
    return state(True)


def x64_enabled() -> bool:
    """Whether 64-bit JAX is on in the current context."""
    return bool(jax.numpy.zeros((), dtype=float).dtype == jax.numpy.float64)


@contextlib.contextmanager
def float64():
    """Like :func:`enable_x64` but a no-op when 64-bit JAX is already on (inside a user's jit).

    Every resgp computation enters it, so it is also where the caller's runtime settings are
    checked (:func:`resgp.core.jax_runtime.check_compilation_cache`)."""
    check_compilation_cache()
    if x64_enabled():
        yield
    else:
        with enable_x64():
            yield
