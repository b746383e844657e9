"""Sparse variational GP in GPJax
==============================

Sparse variational GP regression on 100,000 points with the ResNet kernel in GPJax, against RBF.

A smooth function of 8 inputs plus noise; 128 inducing inputs (trained, like the kernel
hyperparameters and the variational distribution) and minibatches of 1,000 points with Adam.
Each epoch (one pass over the data) is a single compiled ``lax.scan``.

Run: .venv/bin/python examples/gpjax_svgp.py     (about a minute on 2 idle CPU cores)

Not executed when the documentation is built (``make docs``), so no output is shown there;
benchmarks/results/svgp.md has its measurements.
"""

import time

import jax

jax.config.update("jax_enable_x64", True)  # the ResNet kernel needs 64-bit JAX

import equinox as eqx  # noqa: E402
import gpjax as gpx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
import optax as ox  # noqa: E402

from resgp.gpjax import ResNetKernel  # noqa: E402

N, N_TEST, D = 100_000, 5_000, 8
INDUCING, BATCH, EPOCHS = 128, 1_000, 10


def target(X):
    return (
        np.sin(X[:, 0])
        + 0.5 * np.cos(2.0 * X[:, 1])
        + 0.3 * X[:, 2] * X[:, 3]
        + 0.2 * X[:, 4:].sum(axis=1)
        + 0.3 * np.tanh(X[:, 5] * X[:, 6])
    )


rng = np.random.default_rng(0)
X_all = rng.normal(size=(N + N_TEST, D))
y_all = target(X_all) + 0.1 * rng.normal(size=N + N_TEST)
X, y = jnp.asarray(X_all[:N]), jnp.asarray(y_all[:N, None])
X_test, y_test = jnp.asarray(X_all[N:]), y_all[N:]
Z0 = X[rng.choice(N, INDUCING, replace=False)]


def train(name, kernel):
    prior = gpx.gps.Prior(mean_function=gpx.mean_functions.Constant(), kernel=kernel)
    model = prior * gpx.likelihoods.Gaussian(obs_stddev=0.3)
    q = gpx.variational_families.WhitenedVariationalGaussian(model=model, inducing_inputs=Z0)
    params, static = eqx.partition(q, eqx.is_array)
    # strongly typed leaves: otherwise the second epoch compiles again (weak -> strong types)
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype=a.dtype), params)
    optim = ox.adam(0.02)
    opt_state = optim.init(params)
    steps = N // BATCH

    @jax.jit
    def epoch(params, opt_state, X, y, key):
        batches = jr.permutation(key, N)[: steps * BATCH].reshape(steps, BATCH)

        def step(carry, idx):
            params, opt_state = carry
            batch = gpx.Dataset(X=X[idx], y=y[idx], n_total=N)  # the ELBO rescales to N points
            loss = lambda p: -gpx.objectives.elbo(eqx.combine(p, static), batch)  # noqa: E731
            value, grads = jax.value_and_grad(loss)(params)
            updates, opt_state = optim.update(grads, opt_state, params)
            return (ox.apply_updates(params, updates), opt_state), -value

        (params, opt_state), elbos = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, jnp.mean(elbos)

    print(f"{name}: {N:,} points, {INDUCING} inducing inputs, batches of {BATCH}")
    start = time.perf_counter()
    for e, key in enumerate(jr.split(jr.key(1), EPOCHS)):
        params, opt_state, elbo = epoch(params, opt_state, X, y, key)
        print(f"  epoch {e + 1}: mean minibatch ELBO / N = {float(elbo) / N:+.4f}  "
              f"({time.perf_counter() - start:.1f} s)")

    q = eqx.combine(params, static)
    mean = eqx.filter_jit(lambda q, x: q.condition(None)(x, covariance="diagonal").mean)(q, X_test)
    rmse = float(np.sqrt(np.mean((np.asarray(mean).ravel() - y_test) ** 2)))
    print(f"  held-out RMSE {rmse:.4f} (noise 0.1, std of y {y_test.std():.3f})")
    return q, rmse


q_resnet, rmse_resnet = train("ResNet kernel", ResNetKernel())
kernel = q_resnet.model.prior.kernel
print("  learned: variance {:.3f}, branch_variance {:.3f}, bias_variance {:.3f}, noise std {:.3f}".format(
    *(float(gpx.parameters.val(p)) for p in (kernel.variance, kernel.branch_variance, kernel.bias_variance,
                                              q_resnet.model.likelihood.obs_stddev))))
_, rmse_rbf = train("RBF kernel", gpx.kernels.RBF())
print(f"held-out RMSE: ResNet {rmse_resnet:.4f}, RBF {rmse_rbf:.4f}")
