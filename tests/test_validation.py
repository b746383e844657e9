"""Every bad input raises ValueError or TypeError with a message that names the problem
(every public kernel function: NNGP and NTK, matrices and diagonals)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import resgp

GOOD = np.random.default_rng(0).normal(size=(3, 2))

# (name, call(X, X2, **kw)) for the matrix functions, (name, call(X, **kw)) for the diagonals
MATRIX = {
    "resnet": lambda X1, X2=None, **kw: resgp.resnet_nngp(X1, X2, **kw),
    "resnet_L": lambda X1, X2=None, **kw: resgp.resnet_nngp(X1, X2, **{"depth": 3, **kw}),
    "mlp": lambda X1, X2=None, **kw: resgp.mlp_nngp(X1, X2, **{"depth": 3, **kw}),
    "resnet_ntk": lambda X1, X2=None, **kw: resgp.resnet_ntk(X1, X2, **kw),
    "mlp_ntk": lambda X1, X2=None, **kw: resgp.mlp_ntk(X1, X2, **{"depth": 3, **kw}),
}
DIAG = {
    "resnet_diag": lambda X, **kw: resgp.resnet_nngp_diag(X, **kw),
    "resnet_diag_L": lambda X, **kw: resgp.resnet_nngp_diag(X, **{"depth": 3, **kw}),
    "mlp_diag": lambda X, **kw: resgp.mlp_nngp_diag(X, **{"depth": 3, **kw}),
    "resnet_ntk_diag": lambda X, **kw: resgp.resnet_ntk_diag(X, **kw),
    "mlp_ntk_diag": lambda X, **kw: resgp.mlp_ntk_diag(X, **{"depth": 3, **kw}),
}
ALL = {**MATRIX, **DIAG}
RESNET = {k: v for k, v in ALL.items() if k.startswith("resnet")}


def with_nan():
    X = GOOD.copy()
    X[1, 0] = np.nan
    return X


def with_inf(sign=1.0):
    X = GOOD.copy()
    X[2, 1] = sign * np.inf
    return X


def test_good_inputs_pass():
    """The baseline every case below perturbs is itself valid."""
    for name, f in ALL.items():
        out = f(GOOD)
        assert np.all(np.isfinite(out)), name
    assert resgp.resnet_nngp(GOOD, GOOD[:2]).shape == (3, 2)
    # integer, boolean and nested-list inputs are numbers too
    np.testing.assert_allclose(resgp.resnet_nngp([[1, 0], [0, 2]]), resgp.resnet_nngp(np.array([[1.0, 0], [0, 2]])))
    assert resgp.resnet_nngp(np.eye(2, dtype=bool)).dtype == np.float64
    # numpy integer depth and numpy scalar variances are accepted
    resgp.resnet_nngp(GOOD, depth=np.int64(2), branch_variance=np.float32(0.5))


# ----------------------------------------------------------------------------- the arrays


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad, word", [(with_nan(), "NaN"), (with_inf(), "inf"), (with_inf(-1.0), "inf")])
def test_non_finite_X1(name, bad, word):
    arg = "X1" if name in MATRIX else "X"
    with pytest.raises(ValueError, match=rf"{arg} contains {word}.*finite"):
        ALL[name](bad)


@pytest.mark.parametrize("name", MATRIX)
@pytest.mark.parametrize("bad, word", [(with_nan(), "NaN"), (with_inf(), "inf")])
def test_non_finite_X2(name, bad, word):
    with pytest.raises(ValueError, match=rf"X2 contains {word}"):
        MATRIX[name](GOOD, bad)


@pytest.mark.parametrize("name", MATRIX)
def test_mismatched_features(name):
    with pytest.raises(ValueError, match=r"same number of features: X1 has 2, X2 has 3"):
        MATRIX[name](GOOD, np.ones((4, 3)))


@pytest.mark.parametrize("name", MATRIX)
@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.ones(3), r"must be 2-D.*1-D.*reshape\(-1, 1\)"),
        (np.ones((2, 2, 2)), r"must be 2-D.*3-D shape \(2, 2, 2\)"),
        (np.float64(1.0), r"must be 2-D.*0-D"),
        (np.ones((0, 2)), r"is empty: shape \(0, 2\)"),
        (np.ones((2, 0)), r"is empty: shape \(2, 0\)"),
        (np.ones((0, 0)), r"is empty"),
    ],
)
def test_bad_shapes(name, bad, pattern):
    with pytest.raises(ValueError, match="X1 " + pattern):
        MATRIX[name](bad)
    with pytest.raises(ValueError, match="X2 " + pattern):
        MATRIX[name](GOOD, bad)


@pytest.mark.parametrize("name", DIAG)
@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.ones(3), r"X must be 2-D.*1-D"),
        (np.ones((2, 2, 2)), r"X must be 2-D.*3-D"),
        (np.ones((0, 2)), r"X is empty"),
        (np.ones((2, 0)), r"X is empty"),
    ],
)
def test_bad_shapes_diag(name, bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        DIAG[name](bad)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "bad, exc, pattern",
    [
        ("abc", TypeError, r"must be a 2-D numeric array.*got str"),
        (b"abc", TypeError, r"must be a 2-D numeric array.*got bytes"),
        (None, TypeError, r"must be a 2-D numeric array.*got NoneType"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, r"must hold real numbers"),
        ([["1", "2"]], TypeError, r"must hold real numbers"),
        (np.ones((2, 2)) * 1j, TypeError, r"must hold real numbers.*complex"),
        (np.array([[object()]]), TypeError, r"must hold real numbers.*object"),
        ([[1.0, 2.0], [3.0]], TypeError, r"must be a 2-D numeric array"),  # ragged
    ],
)
def test_non_numeric_X(name, bad, exc, pattern):
    arg = "X1" if name in MATRIX else "X"
    with pytest.raises(exc, match=f"{arg} " + pattern):
        ALL[name](bad)


@pytest.mark.parametrize("name", MATRIX)
def test_string_X2(name):
    with pytest.raises(TypeError, match=r"X2 must be a 2-D numeric array.*got str"):
        MATRIX[name](GOOD, "abc")


# ----------------------------------------------------------------------------- variances


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "kw, exc, pattern",
    [
        (dict(weight_variance=0.0), ValueError, r"weight_variance must be > 0.*variance.*got 0.0"),
        (dict(weight_variance=-1.0), ValueError, r"weight_variance must be > 0.*got -1.0"),
        (dict(weight_variance=np.nan), ValueError, r"weight_variance must be finite, got nan"),
        (dict(weight_variance=np.inf), ValueError, r"weight_variance must be finite, got inf"),
        (dict(weight_variance=[1.0, 2.0]), TypeError, r"weight_variance must be a real number"),
        (dict(bias_variance=-0.1), ValueError, r"bias_variance must be >= 0.*got -0.1"),
        (dict(bias_variance=np.nan), ValueError, r"bias_variance must be finite, got nan"),
        (dict(bias_variance=-np.inf), ValueError, r"bias_variance must be finite"),
        (dict(bias_variance=None), TypeError, r"bias_variance must be a real number, got NoneType"),
    ],
)
def test_bad_input_layer_variances(name, kw, exc, pattern):
    if isinstance(kw.get("weight_variance"), list):
        # the input layer takes one variance per feature (ARD): a list of the wrong length is
        # the error (GOOD has 2 features; tests/test_ard.py checks the values)
        kw, exc, pattern = dict(weight_variance=[1.0, 2.0, 3.0]), ValueError, \
            r"weight_variance has 3 entries but X1? has 2 features"
    with pytest.raises(exc, match=pattern):
        ALL[name](GOOD, **kw)


@pytest.mark.parametrize("name", RESNET)
@pytest.mark.parametrize("bad, exc, pattern", [
    ([[1.0, 2.0]], ValueError, "scalar or a 1-D array"),
    ([1.0, -2.0], ValueError, "finite variances > 0"),
    ([1.0, np.nan], ValueError, "finite variances > 0"),
    ([], ValueError, "scalar or a 1-D array"),
    (["a", "b"], TypeError, "1-D array of them"),
])
def test_bad_per_feature_weight_variances(name, bad, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ALL[name](GOOD, weight_variance=bad)


VARIANCES = [
    (name, arg)
    for name in ALL
    for arg in ("weight_variance", "bias_variance", *(("branch_variance",) if name in RESNET else ()))
]


def test_variances_reject_bools():
    """check_variance singles out bool (like check_depth, which rejects depth=True), yet a bool
    variance is silently read as 1.0 / 0.0: True is converted by float(np.asarray(True).item())."""
    accepted = []
    for name, arg in VARIANCES:
        for value in (True, False):
            try:
                ALL[name](GOOD, **{arg: value})
            except TypeError as exc:
                assert arg in str(exc) and "bool" in str(exc)
            except ValueError:  # False -> 0.0 rejected as a non-positive variance: wrong reason
                accepted.append(f"{name}({arg}={value}) -> ValueError, not TypeError")
            else:
                accepted.append(f"{name}({arg}={value}) accepted")
    assert not accepted, accepted


def test_variances_reject_numeric_strings():
    """X='...' is a TypeError, but a variance given as the string '2' is silently parsed."""
    accepted = []
    for name, arg in VARIANCES:
        try:
            ALL[name](GOOD, **{arg: "2"})
        except TypeError as exc:
            assert arg in str(exc) and "str" in str(exc)
        else:
            accepted.append(f"{name}({arg}='2') accepted")
    assert not accepted, accepted


def test_zero_bias_is_allowed():
    for f in ALL.values():
        f(GOOD, bias_variance=0.0)


@pytest.mark.parametrize("name", RESNET)
@pytest.mark.parametrize(
    "value, exc, pattern",
    [
        (0.0, ValueError, r"branch_variance must be > 0.*got 0.0"),
        (-2.0, ValueError, r"branch_variance must be > 0.*got -2.0"),
        (np.nan, ValueError, r"branch_variance must be finite, got nan"),
        (np.inf, ValueError, r"branch_variance must be finite, got inf"),
        ("abc", TypeError, r"branch_variance must be a real number, got str"),
    ],
)
def test_bad_branch_variance(name, value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        RESNET[name](GOOD, branch_variance=value)


# ----------------------------------------------------------------------------- depth


RESNET_FN = {"resnet": resgp.resnet_nngp, "resnet_diag": resgp.resnet_nngp_diag,
             "resnet_ntk": resgp.resnet_ntk, "resnet_ntk_diag": resgp.resnet_ntk_diag}
MLP_FN = {"mlp": resgp.mlp_nngp, "mlp_diag": resgp.mlp_nngp_diag, "mlp_ntk": resgp.mlp_ntk,
          "mlp_ntk_diag": resgp.mlp_ntk_diag}


@pytest.mark.parametrize("f", [*RESNET_FN.values(), *MLP_FN.values()])
@pytest.mark.parametrize(
    "depth, exc, pattern",
    [
        (0, ValueError, r"depth must be >= 1, got 0"),
        (-3, ValueError, r"depth must be >= 1, got -3"),
        (np.int64(0), ValueError, r"depth must be >= 1, got 0"),
        (2.5, TypeError, r"depth must be an integer >= 1.*got 2.5"),
        (2.0, TypeError, r"depth must be an integer >= 1.*got 2.0"),
        (True, TypeError, r"depth must be an integer >= 1.*got True"),
        (False, TypeError, r"depth must be an integer >= 1.*got False"),
        ("3", TypeError, r"depth must be an integer >= 1.*got '3'"),
    ],
)
def test_bad_depth(f, depth, exc, pattern):
    with pytest.raises(exc, match=pattern):
        f(GOOD, depth=depth)


@pytest.mark.parametrize("f", MLP_FN.values())
def test_mlp_without_depth(f):
    with pytest.raises(TypeError, match="depth"):
        f(GOOD)
    with pytest.raises(TypeError, match=r"depth is required: an integer >= 1"):
        f(GOOD, depth=None)


# ----------------------------------------------------------------------------- branch_scales


@pytest.mark.parametrize("f", RESNET_FN.values())
@pytest.mark.parametrize(
    "kw, exc, pattern",
    [
        (dict(depth=4, branch_scales=[0.5] * 3), ValueError, r"branch_scales has length 3 but depth=4"),
        (dict(depth=2, branch_scales=[0.5] * 3), ValueError, r"branch_scales has length 3 but depth=2"),
        (dict(depth=3, branch_scales=[0.5, np.nan, 0.5]), ValueError, r"branch_scales must be finite"),
        (dict(branch_scales=[0.5, np.inf]), ValueError, r"branch_scales must be finite"),
        (dict(branch_scales=np.full((2, 2), 0.5)), ValueError, r"branch_scales must be a non-empty 1-D.*\(2, 2\)"),
        (dict(depth=4, branch_scales=np.full((2, 2), 0.5)), ValueError, r"branch_scales must be a non-empty 1-D"),
        (dict(branch_scales=[]), ValueError, r"branch_scales must be a non-empty 1-D.*\(0,\)"),
        (dict(branch_scales=0.5), ValueError, r"branch_scales must be a non-empty 1-D.*\(\)"),
        (dict(branch_scales=["a", "b"]), TypeError, r"branch_scales must be a 1-D sequence of real numbers"),
        (dict(branch_scales=[0.5, 0.5], branch_variance=2.0), ValueError, r"give branch_variance or branch_scales, not both"),
        (dict(depth=2, branch_scales=[0.5, 0.5], branch_variance=0.5), ValueError, r"not both"),
        (dict(depth=0, branch_scales=[0.5]), ValueError, r"depth must be >= 1"),
    ],
)
def test_bad_branch_scales(f, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        f(GOOD, **kw)


# ----------------------------------------------------------------------------- activation


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "act, exc, pattern",
    [
        ("swish2", ValueError,
         r"unknown activation 'swish2'; known: \['abrelu', 'erf', 'gelu', 'leaky_relu', 'relu', 'requ', 'sigmoid', 'sign', 'sin', 'step', 'tanh'\]"),
        ("", ValueError, r"unknown activation ''"),
        (3, TypeError, r"activation must be a name.*got int"),
        (None, TypeError, r"activation must be a name.*got NoneType"),
        (np.tanh, TypeError, r"traceable by jax.jit"),
        (lambda x: jnp.log(x), ValueError, r"NaN"),
        (lambda x: x[:1], ValueError, r"shape"),
    ],
)
def test_bad_activation(name, act, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ALL[name](GOOD, activation=act)


def test_activation_name_is_case_insensitive():
    np.testing.assert_array_equal(resgp.resnet_nngp(GOOD, activation="ReLU"), resgp.resnet_nngp(GOOD))
    np.testing.assert_array_equal(
        resgp.resnet_nngp(GOOD, activation=resgp.ACTIVATIONS["relu"]), resgp.resnet_nngp(GOOD)
    )
