"""resgp.core.diagonal: the variances alone at infinite depth, solved variance by variance
(resgp.core.limit.diagonal_flow) or through the interpolated 1-D flow map, and their
sensitivities."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from resgp.core import limit, ode
from resgp.core.activations import RELU, get_activation
from resgp.core.diagonal import NODES, diagonal
from resgp.core.x64 import enable_x64


def solve_each(q, theta, *, T, activation, rtol, atol):
    """(q_T, theta_T or None): every variance integrated by limit.diagonal_flow (jit, as the
    library does for a general NTK start)."""
    with enable_x64():
        f = jax.jit(partial(limit.diagonal_flow, activation, rtol=rtol, atol=atol))
        y, _, info = f(jnp.float64(T), jnp.asarray(q), None if theta is None else jnp.asarray(theta))
        limit.host_status(info, "reference")
        return np.asarray(y[0]), (None if theta is None else np.asarray(y[1]))


@pytest.mark.parametrize("name", [pytest.param("tanh", marks=pytest.mark.heavy), "erf", "gelu",
                                  "sin"])
def test_diagonal_flow_map_matches_the_solve_of_every_variance(name):
    """Many variances go through the interpolated 1-D diagonal flow map: it agrees with
    integrating every variance at tight tolerance, NNGP and NTK alike."""
    act = get_activation(name)
    q = np.exp(np.random.default_rng(2).uniform(np.log(0.01), np.log(20.0), 300))
    assert q.size > 2 * NODES  # the interpolated path
    exact = solve_each(q, None, T=1.3, activation=act, rtol=1e-13, atol=1e-15)[0]
    table, none = diagonal(act, 1.3, q)
    assert none is None
    assert np.abs(table - exact).max() <= 1e-10 * np.abs(exact).max()
    exact_ntk = solve_each(q, q, T=1.3, activation=act, rtol=1e-13, atol=1e-15)
    table_ntk = diagonal(act, 1.3, q, ntk=True)
    for a, b in zip(table_ntk, exact_ntk):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
    # a general NTK start (Theta_0 != q_0) is integrated variance by variance
    theta = 2.0 * q
    direct = solve_each(q, theta, T=1.3, activation=act, rtol=ode.RTOL, atol=ode.ATOL)
    for a, b in zip(diagonal(act, 1.3, q, ntk=True, theta=theta), direct):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [10, 300])  # solved variance by variance; interpolated
def test_sensitivities_against_finite_differences(n):
    act = get_activation("gelu")
    q = np.exp(np.random.default_rng(3).uniform(np.log(0.05), np.log(8.0), n))
    (qT, thT), (S, S_th) = diagonal(act, 0.9, q, ntk=True, sensitivity=True)
    assert S.shape == S_th.shape == (n,)
    h = 1e-5
    plus, minus = diagonal(act, 0.9, q * (1 + h), ntk=True), diagonal(act, 0.9, q * (1 - h), ntk=True)
    for got, p, m in [(S, plus[0], minus[0]), (S_th, plus[1], minus[1])]:
        np.testing.assert_allclose(got, (p - m) / (2 * h * q), rtol=1e-6)
    # without the NTK: the same q_T sensitivity, no NTK part
    (q2, none), (S2, none2) = diagonal(act, 0.9, q, sensitivity=True)
    assert none is None and none2 is None
    np.testing.assert_allclose(S2, S, rtol=1e-9)
    np.testing.assert_allclose(q2, qT, rtol=1e-9)  # two solves, each to the default rtol 1e-10


@pytest.mark.parametrize("n", [5, 100])
def test_relu_closed_forms(n):
    """ReLU: q_T = q_0 e^{T/2} and Theta_T = q_0 e^{T/2} (1 + T/2), whatever the path."""
    q = np.exp(np.random.default_rng(4).uniform(-3, 3, n))
    T = 1.7
    qT, thT = diagonal(RELU, T, q, ntk=True)
    np.testing.assert_allclose(qT, q * np.exp(T / 2), rtol=1e-11)
    np.testing.assert_allclose(thT, q * np.exp(T / 2) * (1 + T / 2), rtol=1e-10)


def test_zero_variance_and_tolerances():
    """A zero variance (zero input without bias) stays zero; loose tolerances give loose
    answers, tight ones tight."""
    act = get_activation("erf")
    q = np.array([0.0, 0.3, 1.0, 4.0])
    exact = solve_each(q, None, T=1.0, activation=act, rtol=1e-13, atol=1e-15)[0]
    assert exact[0] == 0.0
    loose = diagonal(act, 1.0, q, rtol=1e-6, atol=1e-8)[0]
    tight = diagonal(act, 1.0, q)[0]
    assert tight[0] == 0.0 and loose[0] == 0.0
    assert np.abs(tight - exact).max() <= 1e-11 * exact.max()
    assert np.abs(loose - exact).max() <= 1e-5 * exact.max()
