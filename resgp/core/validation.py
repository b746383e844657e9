"""Input checks shared by every entry point. Each error names the argument and the problem."""

from __future__ import annotations

import numbers

import numpy as np


def check_inputs(X, name: str = "X") -> np.ndarray:
    """A finite, non-empty 2-D float64 array (N, d) from a NumPy/JAX array, a pandas DataFrame
    (nullable dtypes too; missing values are reported as NaN) or nested lists."""
    if isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"{name} must be a 2-D numeric array of shape (N, d), got {type(X).__name__}")
    if hasattr(X, "tocsr") and hasattr(X, "nnz"):  # scipy.sparse
        raise TypeError(f"{name} is a scipy.sparse {type(X).__name__}: the kernels need dense "
                        f"inputs (the kernel matrix is dense anyway); pass {name}.toarray()")
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes"):  # pandas, nullable dtypes included
        try:
            X = X.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold real numbers: {exc}") from exc
    try:
        arr = np.asarray(X)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be a 2-D numeric array of shape (N, d): {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D of shape (N, d), got {arr.ndim}-D shape {arr.shape}"
            + ("; use X.reshape(-1, 1) for one feature" if arr.ndim == 1 else "")
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}, need at least one row and one column")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"{name} contains {bad}: inputs must be finite")
    return arr


def check_pair(X1, X2):
    """Validate X1 (N, d) and X2 (M, d); X2=None means X2 = X1."""
    X1 = check_inputs(X1, "X1")
    if X2 is None:
        return X1, None
    X2 = check_inputs(X2, "X2")
    if X2.shape[1] != X1.shape[1]:
        raise ValueError(
            f"X1 and X2 must have the same number of features: X1 has {X1.shape[1]}, X2 has {X2.shape[1]}"
        )
    return X1, X2


def check_variance(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite real variance, > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        arr = np.asarray(value) if not isinstance(value, (str, bytes, bool)) else None
        if arr is None or arr.ndim != 0 or arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        value = arr.item()  # a 0-d array (NumPy or JAX), e.g. a traced-free JAX scalar
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} (it is a variance), got {value}")
    return value


def check_depth(depth, *, allow_none: bool) -> int | None:
    """depth: an integer >= 1, or None (the infinite-depth limit) where allowed."""
    if depth is None:
        if allow_none:
            return None
        raise TypeError("depth is required: an integer >= 1")
    if isinstance(depth, bool) or not isinstance(depth, numbers.Integral):
        raise TypeError(f"depth must be an integer >= 1 or None, got {depth!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return int(depth)


def check_branch_scales(branch_scales, depth: int | None) -> np.ndarray:
    """branch_scales alpha_1..alpha_L: a finite 1-D array whose length matches depth."""
    try:
        alphas = np.asarray(branch_scales, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"branch_scales must be a 1-D sequence of real numbers: {exc}") from None
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"branch_scales must be a non-empty 1-D sequence, got shape {alphas.shape}")
    if not np.isfinite(alphas).all():
        raise ValueError("branch_scales must be finite")
    if depth is not None and alphas.size != depth:
        raise ValueError(f"branch_scales has length {alphas.size} but depth={depth}: they must match")
    return alphas


def check_weight_variance(value):
    """weight_variance: a variance > 0 (float), or per-feature variances (ARD), a non-empty
    1-D sequence of them (a tuple of floats)."""
    if np.ndim(value) == 0:
        return check_variance("weight_variance", value)
    try:
        w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"weight_variance must be a variance or a 1-D array of them: {exc}") \
            from None
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weight_variance must be a scalar or a 1-D array (one variance per "
                         f"feature), got shape {w.shape}")
    if not np.isfinite(w).all() or np.any(w <= 0):
        raise ValueError("weight_variance must hold finite variances > 0 (one per feature)")
    return tuple(float(x) for x in w)


def check_features(X, weight_variance, name="X"):
    """Per-feature weight variances need one per column of ``X``."""
    if isinstance(weight_variance, tuple) and len(weight_variance) != X.shape[1]:
        raise ValueError(f"weight_variance has {len(weight_variance)} entries but {name} has "
                         f"{X.shape[1]} features: give one variance per feature")
