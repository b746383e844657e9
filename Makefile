# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make demo   -- the main job on built-in data
#   make test   -- the test suite (what CI runs)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
NEWEST := .venv-newest-jax

.PHONY: demo test test-newest-jax bench clean docs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $@

# The core (no neural-tangents, no gpjax) on the newest jax release, with the comparison extra.
$(NEWEST)/.installed: pyproject.toml
	$(PYTHON) -m venv $(NEWEST)
	$(NEWEST)/bin/python -m pip install -q --upgrade pip
	$(NEWEST)/bin/python -m pip install -q -e '.[test,bench,solvers]'
	$(NEWEST)/bin/python -m pip install -q --upgrade jax jaxlib
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/resgp demo

# The suite in several pytest runs: each compiles fewer JAX programs (jax 0.5's XLA:CPU once
# crashed compiling after many hundreds in one process), and GPJax's tests turn 64-bit JAX on
# globally, as GPJax users do, without touching the others. Each run spreads its tests over
# two worker processes (pytest-xdist): XLA compiles on one thread.
PYTEST = -m pytest -q -p no:cacheprovider -n 2
test: $(VENV)/.installed
	$(VENV)/bin/python $(PYTEST) tests/core tests/test_kernels.py tests/test_validation.py tests/test_defaults.py tests/test_makefile.py tests/test_reliability.py tests/test_jax_runtime.py tests/test_docstrings.py
	$(VENV)/bin/python $(PYTEST) tests/test_sklearn_kernel.py tests/test_ard.py tests/test_estimators.py tests/test_likelihood.py tests/experiments tests/test_matrix_free.py
	$(VENV)/bin/python $(PYTEST) tests/test_exactness.py
	$(VENV)/bin/python $(PYTEST) tests/gpjax
	$(VENV)/bin/python $(PYTEST) tests/nt

# The core tests (the core math, the kernel functions, input validation, the scikit-learn kernel;
# the numerically heavy cases, marker "heavy" in pyproject.toml, run in the main environment only)
# on the newest jax. jax >= 0.6 reloads persistent-cache executables bit for bit
# (tests/test_jax_runtime.py), so the two workers share their compiles through a cache in the venv.
test-newest-jax: $(NEWEST)/.installed
	$(NEWEST)/bin/python -c "import jax; print('core tests on jax', jax.__version__)"
	JAX_COMPILATION_CACHE_DIR=$(CURDIR)/$(NEWEST)/jax-cache $(NEWEST)/bin/python $(PYTEST) -m "not heavy" tests/core tests/test_kernels.py tests/test_validation.py tests/test_jax_runtime.py tests/test_sklearn_kernel.py

# the kernel comparison (hours on 2 cores): two fits at once; an interrupted run continues
bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/compare_kernels.py --jobs 2 --resume

clean:
	rm -rf $(VENV) $(NEWEST) *.egg-info

# The documentation site (docs/, examples/ as an executed gallery) into docs/_build/html: Sphinx
# with warnings as errors, then every local link and anchor of the built pages checked
# (docs/check_links.py); nothing is fetched. The docstrings' numpydoc check is
# tests/test_docstrings.py, part of make test.
docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
	$(VENV)/bin/python docs/check_links.py docs/_build/html
