"""Every public name has a numpydoc docstring that documents each of its parameters, one per line.

The public names are ``resgp.__all__`` and the ``__all__`` of the public modules (the kernel
functions, the scikit-learn kernels and estimators, ``resgp.predict``, ``resgp.activations``,
the GPJax adapter) and the functions of ``resgp.nt``; for classes, also their public methods and
properties (and ``__call__``) defined in resgp. ``numpydoc.validate`` checks each, as the API
reference of the documentation site (``make docs``) renders them. Importing ``resgp.nt`` does
not import Neural Tangents; ``resgp.gpjax`` imports GPJax (skipped without it).
"""

from __future__ import annotations

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# GL08 no docstring; SS01 no summary; PR01 a parameter is not documented; PR02 an unknown
# parameter is documented (e.g. "a, b : float", two on one line);
# PR06 a type spelled as the long name; PR07 a parameter without a description; PR10 a missing
# space before the colon. Beyond numpydoc's checks: one parameter per line ("a, b : float" fails).
CHECKS = ("GL08", "SS01", "PR01", "PR02", "PR06", "PR07", "PR10")

MODULES = ("resgp", "resgp.kernels", "resgp.sklearn_kernel", "resgp.estimators", "resgp.predict",
           "resgp.activations", "resgp.gpjax", "resgp.nt", "resgp.solvers.products",
           "resgp.solvers.cg", "resgp.solvers.preconditioner", "resgp.solvers.logdet",
           "resgp.solvers.gp", "resgp.solvers.sharding")


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:  # resgp.nt: the functions defined there
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and inspect.isfunction(v) and v.__module__ == module.__name__]
    return names


def _members(path, cls):
    """Public methods and properties of ``cls`` defined in resgp (its own or a base's)."""
    seen = set()
    for base in cls.__mro__:
        if not base.__module__.startswith("resgp"):
            continue
        for name, value in vars(base).items():
            if name in seen or (name.startswith("_") and name != "__call__"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if inspect.isfunction(value) or isinstance(value, property):
                seen.add(name)
                yield f"{path}.{name}"


def _targets():
    targets, seen = [], set()
    for name in MODULES:
        if name == "resgp.gpjax":
            try:
                importlib.import_module("gpjax")
            except ImportError:
                continue
        module = importlib.import_module(name)
        for public in _public_names(module):
            obj = getattr(module, public)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue  # modules, constants (documented on the API pages)
            seen.add(id(obj))
            path = f"{name}.{public}"
            targets.append(path)
            if inspect.isclass(obj):
                targets.extend(_members(path, obj))
    return targets


def _load(path):
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = inspect.getattr_static(obj, name) if inspect.isclass(obj) else getattr(obj, name)
        return obj
    raise ImportError(path)


def _problems(path):
    result = numpydoc_validate.validate(path)
    problems = [f"{path}: {code} {message}" for code, message in result["errors"]
                if code in CHECKS]
    obj = _load(path)
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if inspect.isfunction(obj) or inspect.isclass(obj):
        # numpydoc accepts "a, b : float"; the API reference wants one parameter per line
        for param in numpydoc_validate.get_doc_object(obj)["Parameters"]:
            if "," in param.name:
                problems.append(f"{path}: parameters {param.name!r} share one line: give "
                                "each its own line, type and description")
    return problems


def test_public_names_are_documented():
    targets = _targets()
    assert len(targets) > 40, targets  # the walk found the API
    problems = [p for path in targets for p in _problems(path)]
    assert not problems, "\n".join(problems)
