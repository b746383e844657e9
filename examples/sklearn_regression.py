"""GP regression in scikit-learn
=============================

Gaussian-process regression of a noisy smooth step, tanh(2x), with the ResNet kernel, against
RBF, in scikit-learn's ``GaussianProcessRegressor``; the figure shows both posteriors.

Inputs in one dimension need the input layer's bias: without it, :math:`q_0(a, b) = ab` and every
pair of inputs is parallel or opposite. ``ResNetKernel(bias_variance=1.0)`` tunes the bias
variance with the branch variance T, by the marginal likelihood.

Run: .venv/bin/python examples/sklearn_regression.py     (a few seconds)
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

import resgp

rng = np.random.default_rng(0)
X = np.sort(rng.uniform(-3, 3, size=40))[:, None]
y = np.tanh(2 * X[:, 0]) + 0.15 * rng.normal(size=40)
X_plot = np.linspace(-5, 5, 400)[:, None]

kernels = {
    "ResNet (infinite depth)": ConstantKernel() * resgp.ResNetKernel(bias_variance=1.0)
    + WhiteKernel(0.1),
    "RBF": ConstantKernel() * RBF() + WhiteKernel(0.1),
}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, (name, kernel) in zip(axes, kernels.items()):
    gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(X, y)
    mean, std = gp.predict(X_plot, return_std=True)
    print(f"{name}: {gp.kernel_}")
    print(f"    log marginal likelihood {gp.log_marginal_likelihood_value_:.2f}")
    ax.fill_between(X_plot[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.25, label="mean ± 2 sd")
    ax.plot(X_plot[:, 0], mean, lw=2, label="posterior mean")
    ax.plot(X[:, 0], y, "k.", label="training data")
    ax.set_title(name)
    ax.set_xlabel("x")
axes[0].set_ylabel("y")
axes[0].legend(loc="upper left")
fig.tight_layout()
plt.show()
