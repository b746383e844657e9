"""Kernel functions
================

The ResNet NNGP kernel as plain functions: the limit, finite depths, and the MLP comparator.

Run: .venv/bin/python examples/kernel_functions.py
"""

import numpy as np

import resgp

rng = np.random.default_rng(0)
X = rng.normal(size=(6, 4))

K_inf = resgp.resnet_nngp(X)  # infinite width and depth, ReLU, branch variance T = 1
print("limit kernel (first row):", np.round(K_inf[0], 4))

# Finite depths approach the limit at rate 1/L: L * |K_L - K_inf| settles to a constant.
for L in (10, 100, 1000):
    gap = np.abs(resgp.resnet_nngp(X, depth=L) - K_inf).max() / np.abs(K_inf).max()
    print(f"depth {L:5d}: relative gap {gap:.2e}, L x gap {L * gap:.4f}")

# Any branch scaling with small steps and total variance T gives the same limit (docs/theory.md, "Network and input layer").
L = 2000
alphas = 1.0 / np.arange(1, L + 1) ** 0.4
alphas /= np.sqrt(np.sum(alphas**2))  # total branch variance 1
K_decay = resgp.resnet_nngp(X, depth=L, branch_scales=alphas)
print("decaying scales, L=2000: relative gap", np.abs(K_decay - K_inf).max() / np.abs(K_inf).max())


def correlation(K):
    return K[0, 1] / np.sqrt(K[0, 0] * K[1, 1])


# The MLP's correlations collapse to 1 with depth; the ResNet's do not.
print("ResNet limit correlation of inputs 0 and 1:", round(correlation(K_inf), 4))
for L in (1, 10, 100):
    print(f"MLP depth {L:3d} correlation:", round(correlation(resgp.mlp_nngp(X, depth=L)), 4))
