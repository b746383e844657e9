"""Fixtures shared by the test suite: 64-bit JAX contexts, small random inputs, relative errors
and the high-precision (mpmath) reference of ReLU's angle flow."""

from __future__ import annotations

import functools

import jax
import mpmath
import numpy as np
import pytest

from resgp.core.x64 import enable_x64


@pytest.fixture
def x64():
    """64-bit JAX for the whole test (thread-local; the global flag is left alone)."""
    with enable_x64():
        yield


@pytest.fixture
def restore_x64():
    """For tests that flip the global ``jax_enable_x64`` flag: restored afterwards."""
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)


def _normal_inputs(n, d, seed=1, scale=1.0):
    return np.random.default_rng(seed).normal(size=(n, d)) * scale


@pytest.fixture
def normal_inputs():
    """``normal_inputs(n, d, seed=1, scale=1.0)``: an (n, d) standard normal array times scale."""
    return _normal_inputs


def _rel_err(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max()


@pytest.fixture
def rel_err():
    """``rel_err(a, b)`` = max|a - b| / max|b|."""
    return _rel_err


# ----------------------------------------------------------------------------- mpmath reference

MP_DPS = 30


def mp_D(t):
    return mpmath.sin(t) - t * mpmath.cos(t)


def _mp_inverse_speed(t):
    """1 / |F(t)| = 2 pi sin t / D(t), the depth time spent per unit of angle."""
    return 2 * mpmath.pi * mpmath.sin(t) / mp_D(t)


@functools.lru_cache(maxsize=None)
def _mp_flow(theta0: float, T: float) -> float:
    """theta_T of d theta/dt = -D(theta) / (2 pi sin theta), theta(0) = theta0, to ~25 digits.

    The ODE is autonomous and separable: theta_T is the root of
    int_{theta_T}^{theta0} 2 pi sin t / D(t) dt = T, found by a bracketed Newton iteration
    with mpmath quadrature at 30 digits. (Checked against mpmath.odefun's Taylor integrator,
    which agrees to 20 digits but is ~30x slower; see test_mp_reference_matches_odefun.)
    """
    with mpmath.workdps(MP_DPS):
        th0, TT = mpmath.mpf(theta0), mpmath.mpf(T)

        def g(th):
            return mpmath.quad(_mp_inverse_speed, [th, th0]) - TT

        lo, hi = th0 / (1 + th0 * TT) / 2, th0  # 1/theta_T < 1/theta0 + T / (6 pi) + O(T)
        th = th0
        for _ in range(200):
            val = g(th)
            if val > 0:
                lo = th
            else:
                hi = th
            new = th + val / _mp_inverse_speed(th)  # Newton: g'(th) = -1/|F(th)|
            if not lo < new < hi:
                new = (lo + hi) / 2
            if abs(new - th) < mpmath.mpf(10) ** (-(MP_DPS - 4)):
                return float(new)
            th = new
        raise RuntimeError("mpmath reference did not converge")


@pytest.fixture(scope="session")
def mp_flow():
    """``mp_flow(theta0, T)``: ReLU's angle flow at 30 digits (cached across the session)."""
    return _mp_flow
