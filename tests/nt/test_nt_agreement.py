"""resgp's finite-depth kernels equal Neural Tangents' analytic kernels of the same networks."""

import jax
import numpy as np
import pytest

import resgp
from resgp import nt as rnt
from resgp.core.x64 import enable_x64

RTOL = 1e-12


def nt_kernel(kernel_fn, X1, X2=None):
    with enable_x64():
        return np.asarray(jax.jit(kernel_fn, static_argnames="get")(X1, X2, "nngp"))


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 7)), rng.normal(size=(9, 7)) * 3.0


@pytest.mark.parametrize("depth", [1, 3, 50])
@pytest.mark.parametrize("bias_variance", [0.0, 0.3])
def test_resnet_equals_nt(data, depth, bias_variance):
    X1, X2 = data
    kw = dict(branch_variance=1.7, weight_variance=1.3, bias_variance=bias_variance)
    _, _, kernel_fn = rnt.resnet(64, depth, **kw)
    for A, B in [(X1, None), (X1, X2)]:
        ours = resgp.resnet_nngp(A, B, depth=depth, **kw)
        assert rel_err(ours, nt_kernel(kernel_fn, A, B)) < RTOL
    assert rel_err(resgp.resnet_nngp_diag(X2, depth=depth, **kw), np.diag(nt_kernel(kernel_fn, X2))) < RTOL


@pytest.mark.parametrize("bias_variance", [0.0, 0.5])
def test_resnet_nonuniform_branch_scales_equal_nt(data, bias_variance):
    X1, X2 = data
    L = 20
    alphas = 1.0 / np.arange(1, L + 1) ** 0.7  # decaying branch scales
    _, _, kernel_fn = rnt.resnet(64, L, branch_scales=alphas, bias_variance=bias_variance)
    ours = resgp.resnet_nngp(X1, X2, depth=L, branch_scales=alphas, bias_variance=bias_variance)
    assert rel_err(ours, nt_kernel(kernel_fn, X1, X2)) < RTOL


@pytest.mark.parametrize("depth", [1, 3, 50])
@pytest.mark.parametrize("bias_variance", [0.0, 0.1])
def test_mlp_equals_nt(data, depth, bias_variance):
    X1, X2 = data
    _, _, kernel_fn = rnt.mlp(64, depth, weight_variance=2.0, bias_variance=bias_variance)
    ours = resgp.mlp_nngp(X1, X2, depth=depth, weight_variance=2.0, bias_variance=bias_variance)
    assert rel_err(ours, nt_kernel(kernel_fn, X1, X2)) < RTOL


def test_nt_deep_kernel_approaches_limit(data):
    """NT's own finite-depth kernels converge to resgp's limit at the O(1/L) rate."""
    X1, _ = data
    limit = resgp.resnet_nngp(X1)
    errs = [rel_err(nt_kernel(rnt.resnet(8, L)[2], X1), limit) for L in (25, 50, 100)]
    assert errs[0] > errs[1] > errs[2]
    assert np.allclose(np.array(errs[:-1]) / np.array(errs[1:]), 2.0, rtol=0.05)


def test_bad_width_and_activation():
    with pytest.raises(ValueError, match="width"):
        rnt.resnet(0, 3)
    with pytest.raises(ValueError, match="unknown activation"):
        rnt.resnet(8, 3, activation="swish2")
    with pytest.raises(ValueError, match="branch_scales has length"):
        rnt.resnet(8, 3, branch_scales=[1.0, 1.0])
