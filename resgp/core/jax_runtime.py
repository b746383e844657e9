"""Checks of the caller's JAX runtime settings that resgp reads but never changes.

jax 0.5's persistent compilation cache (``jax_compilation_cache_dir`` set) serves XLA:CPU
executables that do not compute what was compiled: measured here (jax/jaxlib 0.5.3), the ODE
driver of :mod:`resgp.core.ode` reloaded from the cache in a second process makes no progress
(its indexed stage updates are dropped), so the variance flow of ``"step"`` at T = 0.5 returns
its input unchanged and is refused as "needs more than 2000 ODE steps"; the first process,
which compiled it, is right. The same class of defect (indexed updates that silently do nothing
from a warm cache) is reported against other projects on jax 0.5. jax >= 0.6 reloads the same
programs bit for bit (tests/test_jax_runtime.py). resgp cannot switch the cache off for its own
programs without flipping a global flag, so it warns once per cache directory
(docs/theory.md, "Numerics and the JAX runtime").
"""

from __future__ import annotations

import warnings

import jax

__all__ = ["check_compilation_cache", "CACHE_SAFE_JAX"]

CACHE_SAFE_JAX = (0, 6)  # the first jax release whose reloaded CPU executables are correct here
_JAX = tuple(int(p) for p in jax.__version__.split(".")[:2])
_warned: set = set()


def check_compilation_cache() -> None:
    """Warn (``RuntimeWarning``, once per directory) when the persistent compilation cache is on
    under a jax release older than :data:`CACHE_SAFE_JAX`; otherwise do nothing."""
    directory = jax.config.jax_compilation_cache_dir
    if not directory or _JAX >= CACHE_SAFE_JAX or directory in _warned:
        return
    if not getattr(jax.config, "jax_enable_compilation_cache", True):
        return
    _warned.add(directory)
    warnings.warn(
        f"jax {jax.__version__} with the persistent compilation cache on "
        f"(jax_compilation_cache_dir={directory!r}): executables reloaded from it by jax < 0.6 "
        f"can compute wrong results (measured with resgp's ODE solver on CPU: the flow makes no "
        f"progress). Upgrade jax, or turn the cache off with "
        f"jax.config.update('jax_enable_compilation_cache', False) before the first kernel call.",
        RuntimeWarning, stacklevel=2)
