"""Exact GP regression in GPJax
============================

Exact GP regression in GPJax with the ResNet kernel, against RBF, on scikit-learn's diabetes data.

The hyperparameters (amplitude, branch variance, bias variance, noise, constant mean) maximise the
marginal likelihood with ``gpx.fit_scipy`` (L-BFGS-B on exact gradients).

Run: .venv/bin/python examples/gpjax_regression.py     (well under a minute)
"""

import jax

jax.config.update("jax_enable_x64", True)  # the ResNet kernel needs 64-bit JAX

import gpjax as gpx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from resgp.gpjax import ResNetKernel  # noqa: E402

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
scaler = StandardScaler().fit(X_train)
mu, sd = y_train.mean(), y_train.std()
train = gpx.Dataset(X=jnp.asarray(scaler.transform(X_train)), y=jnp.asarray((y_train - mu) / sd)[:, None])
X_test = jnp.asarray(scaler.transform(X_test))
print(f"diabetes: {train.n} training and {len(y_test)} test points, {X.shape[1]} features")

for name, kernel in [("ResNet", ResNetKernel()), ("RBF", gpx.kernels.RBF())]:
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(), kernel=kernel)
    model = prior * gpx.likelihoods.Gaussian(obs_stddev=0.5)
    fitted, history = gpx.fit_scipy(
        model=model,
        objective=lambda m, d: -gpx.objectives.conjugate_mll(m, d),
        train_data=train,
        verbose=False,
    )
    predictive = fitted.likelihood(fitted.predict(X_test, train, covariance="diagonal"))
    mean = np.asarray(predictive.mean).ravel() * sd + mu
    std = np.sqrt(np.asarray(predictive.variance).ravel()) * sd
    rmse = np.sqrt(np.mean((mean - y_test) ** 2))
    nlpd = np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * ((y_test - mean) / std) ** 2)
    print(f"\n{name}: negative log marginal likelihood {history[0]:.2f} -> {history[-1]:.2f} "
          f"({len(history) - 1} L-BFGS-B iterations)")
    k = fitted.prior.kernel
    if name == "ResNet":
        print("  variance {:.3g}, branch_variance {:.3g}, bias_variance {:.3g}".format(
            *(float(gpx.parameters.val(p)) for p in (k.variance, k.branch_variance, k.bias_variance))))
    else:
        print("  variance {:.3f}, lengthscale {:.3f}".format(
            float(gpx.parameters.val(k.variance)), float(gpx.parameters.val(k.lengthscale))))
    print(f"  noise std {float(gpx.parameters.val(fitted.likelihood.obs_stddev)) * sd:.1f}")
    print(f"  test RMSE {rmse:.1f} (predicting the training mean: {np.sqrt(np.mean((mu - y_test) ** 2)):.1f}), "
          f"mean NLPD {nlpd:.3f}")
