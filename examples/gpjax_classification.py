"""GP classification in GPJax
==========================

GP classification in GPJax with the ResNet kernel, against RBF, on scikit-learn's breast cancer data.

A Bernoulli (probit) likelihood, a whitened variational Gaussian over 60 inducing inputs (taken
from the training set, then trained), and the ELBO maximised with Adam through ``gpx.fit``;
the kernel hyperparameters train with it.

Run: .venv/bin/python examples/gpjax_classification.py     (under a minute)
"""

import jax

jax.config.update("jax_enable_x64", True)  # the ResNet kernel needs 64-bit JAX

import gpjax as gpx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax as ox  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from resgp.gpjax import ResNetKernel  # noqa: E402

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = jnp.asarray(scaler.transform(X_train)), jnp.asarray(scaler.transform(X_test))
train = gpx.Dataset(X=X_train, y=jnp.asarray(y_train, dtype=jnp.float64)[:, None])
inducing = X_train[np.random.default_rng(0).choice(len(X_train), 60, replace=False)]
print(f"breast cancer: {train.n} training and {len(y_test)} test points, {X.shape[1]} features")

for name, kernel in [("ResNet", ResNetKernel()), ("RBF", gpx.kernels.RBF())]:
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(), kernel=kernel)
    model = prior * gpx.likelihoods.Bernoulli()
    q = gpx.variational_families.WhitenedVariationalGaussian(model=model, inducing_inputs=inducing)
    q, history = gpx.fit(
        model=q,
        objective=lambda q, d: -gpx.objectives.elbo(q, d),
        train_data=train,
        optim=ox.adam(0.03),
        num_iters=300,
        verbose=False,
    )
    latent = q.condition(train)(X_test, covariance="diagonal")
    probs = np.asarray(model.likelihood.predict(latent).probs)  # probit of mean / sqrt(1 + var)
    accuracy = np.mean((probs > 0.5) == y_test)
    log_loss = -np.mean(y_test * np.log(probs) + (1 - y_test) * np.log1p(-probs))
    print(f"\n{name}: ELBO {-history[0]:.1f} -> {-history[-1]:.1f} after {len(history)} Adam steps")
    if name == "ResNet":
        k = q.model.prior.kernel
        print("  variance {:.3g}, branch_variance {:.3g}, bias_variance {:.3g}".format(
            *(float(gpx.parameters.val(p)) for p in (k.variance, k.branch_variance, k.bias_variance))))
    print(f"  test accuracy {accuracy:.3f}, log loss {log_loss:.3f}")
