"""resgp.core.ode: the DOP853 driver on ODEs with known solutions, its forward sensitivities,
its status codes and the host-side checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resgp.core import ode

pytestmark = pytest.mark.usefixtures("x64")


def _riccati(y):
    return -y * y  # y(t) = y0 / (1 + y0 t)


def test_scalar_ode_with_known_solution():
    y0 = jnp.array([0.05, 0.5, 1.0, 2.0, 7.0])
    T = 3.0
    y, tangents, info = jax.jit(lambda y0: ode.solve(_riccati, y0, T, scale=jnp.ones_like(y0),
                                                     rtol=1e-13, atol=1e-15))(y0)
    want = np.asarray(y0) / (1 + np.asarray(y0) * T)
    assert tangents is None
    assert int(info["status"]) == ode.OK
    assert 0 < int(info["steps"]) <= int(info["attempts"]) < ode.MAX_STEPS
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-12, atol=0)


def test_pytree_state_oscillator():
    """A pytree state (two leaves coupled): y' = z, z' = -y, one period and a half."""
    T = 3 * np.pi
    (y, z), _, info = ode.solve(lambda s: (s[1], -s[0]), (jnp.ones(3), jnp.zeros(3)), T,
                                scale=(jnp.ones(3), jnp.ones(3)), rtol=1e-13, atol=1e-15)
    assert int(info["status"]) == ode.OK
    np.testing.assert_allclose(np.asarray(y), np.cos(T), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(z), -np.sin(T), rtol=0, atol=1e-12)


def test_zero_end_time_returns_the_start():
    y0 = jnp.array([0.3, 1.7])
    y, _, info = ode.solve(_riccati, y0, 0.0, scale=jnp.ones(2))
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y0))
    assert int(info["status"]) == ode.OK and int(info["attempts"]) == 0


def _coupled(s):
    a, b = s
    return (-a * b + jnp.sin(b), a - 0.5 * b * b)


def _solve_coupled(a0, b0, tangents=None, T=1.5):
    return ode.solve(_coupled, (a0, b0), T, scale=(jnp.ones_like(a0), jnp.ones_like(b0)),
                     rtol=1e-13, atol=1e-15, tangents=tangents)


def test_tangents_against_finite_differences():
    a0, b0 = jnp.array([0.4, 1.0, -0.7]), jnp.array([0.9, 0.2, 1.3])
    n = a0.size
    # two directions: "all a0 + 1" and "b0 scaled"
    tangents = (jnp.stack([jnp.ones(n), jnp.zeros(n)]), jnp.stack([jnp.zeros(n), b0]))
    (a, b), (Sa, Sb), info = _solve_coupled(a0, b0, tangents)
    assert int(info["status"]) == ode.OK
    assert Sa.shape == (2, n) and Sb.shape == (2, n)
    # the error control sees the state only: the same steps, the same values, with or without
    (a_plain, b_plain), none, info_plain = _solve_coupled(a0, b0)
    assert none is None
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a_plain))
    np.testing.assert_array_equal(np.asarray(b), np.asarray(b_plain))
    assert int(info["steps"]) == int(info_plain["steps"])
    h = 1e-5
    for k, (da, db) in enumerate([(1.0, 0.0 * b0), (0.0, b0)]):
        (ap, bp), _, _ = _solve_coupled(a0 + h * da, b0 + h * db)
        (am, bm), _, _ = _solve_coupled(a0 - h * da, b0 - h * db)
        fd_a, fd_b = (ap - am) / (2 * h), (bp - bm) / (2 * h)
        np.testing.assert_allclose(np.asarray(Sa[k]), np.asarray(fd_a), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(np.asarray(Sb[k]), np.asarray(fd_b), rtol=1e-7, atol=1e-8)


def test_tangents_of_the_known_solution():
    """d y_T / d y_0 = 1 / (1 + y0 T)^2 for the Riccati equation."""
    y0 = jnp.array([0.1, 1.0, 3.0])
    _, S, info = ode.solve(_riccati, y0, 2.0, scale=jnp.ones(3), rtol=1e-13, atol=1e-15,
                           tangents=jnp.ones((1, 3)))
    assert S.shape == (1, 3)
    np.testing.assert_allclose(np.asarray(S[0]), 1 / (1 + np.asarray(y0) * 2.0) ** 2,
                               rtol=1e-11)


def test_not_finite_start_stops_at_once():
    y, _, info = ode.solve(lambda y: y * jnp.nan, jnp.ones(4), 1.0, scale=jnp.ones(4))
    assert int(info["status"]) == ode.NOT_FINITE
    assert int(info["attempts"]) == 0
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        ode.check_status(info, "a test flow")


def test_not_finite_on_the_way_ends_quickly():
    """The right-hand side turns NaN at y = 1/2 (t = log 2): the solve gives up well before
    max_steps instead of grinding step after step."""
    rhs = lambda y: jnp.where(y > 0.5, -y, jnp.nan)  # noqa: E731
    y, _, info = jax.jit(lambda y0: ode.solve(rhs, y0, 2.0, scale=jnp.ones(1)))(jnp.ones(1))
    assert int(info["status"]) == ode.NOT_FINITE
    assert int(info["attempts"]) < 200, int(info["attempts"])
    assert np.all(np.asarray(y) >= 0.5)  # the last accepted state, before the NaN region


def test_too_many_steps():
    y, _, info = ode.solve(lambda y: -y, jnp.ones(2), 100.0, scale=jnp.ones(2), rtol=1e-13,
                           atol=1e-15, max_steps=3)
    assert int(info["status"]) == ode.TOO_MANY_STEPS
    assert int(info["attempts"]) == 3
    with pytest.raises(RuntimeError, match="more than"):
        ode.check_status(info, "a test flow")
    ode.check_status({"status": np.array(ode.OK)}, "fine")  # OK: no error


def test_traced_end_time():
    """T may be a tracer: one compilation serves every end time."""
    f = jax.jit(lambda T: ode.solve(_riccati, jnp.ones(2), T, scale=jnp.ones(2), rtol=1e-13,
                                    atol=1e-15)[0])
    for T in (0.5, 4.0):
        np.testing.assert_allclose(np.asarray(f(T)), 1 / (1 + T), rtol=1e-12)


def test_per_element_error_control():
    """Each element is accurate to its own scale: a tiny variance beside a huge one."""
    y0 = jnp.array([1e-8, 1.0, 1e8])
    y, _, _ = ode.solve(lambda y: -0.3 * y, y0, 2.0, scale=y0, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y0) * np.exp(-0.6), rtol=1e-11)


@pytest.mark.parametrize("rtol, atol, exc, match", [
    (1e-15, 1e-13, ValueError, "rtol"),
    (0.5, 1e-13, ValueError, "rtol"),
    (1e-12, -1.0, ValueError, "atol"),
    ("small", 1e-13, TypeError, "rtol"),
    (1e-12, True, TypeError, "atol"),
])
def test_check_tolerances(rtol, atol, exc, match):
    with pytest.raises(exc, match=match):
        ode.check_tolerances(rtol, atol)


def test_check_tolerances_accepts_the_defaults():
    assert ode.check_tolerances(ode.RTOL, ode.ATOL) == (ode.RTOL, ode.ATOL)
    assert ode.check_tolerances(1e-14, 0) == (1e-14, 0.0)
