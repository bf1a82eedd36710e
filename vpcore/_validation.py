"""Small argument validators shared by the stages. They raise; they never return a bool."""

import numbers

import numpy as np

from .errors import NotFittedError, ParameterError


def check_int(name, value, low=None, high=None):
    """Return ``value`` as int if it is an integer (not a bool) within [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name}={value!r} must be an integer")
    value = int(value)
    if low is not None and value < low:
        raise ParameterError(f"{name}={value} must be >= {low}")
    if high is not None and value > high:
        raise ParameterError(f"{name}={value} must be <= {high}")
    return value


def check_float(name, value, low=None, high=None, low_inclusive=True):
    """Return ``value`` as a finite float within the bounds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name}={value!r} must be a real number")
    value = float(value)
    if not np.isfinite(value):
        raise ParameterError(f"{name}={value} must be finite")
    if low is not None and (value < low or (not low_inclusive and value == low)):
        op = ">=" if low_inclusive else ">"
        raise ParameterError(f"{name}={value} must be {op} {low}")
    if high is not None and value > high:
        raise ParameterError(f"{name}={value} must be <= {high}")
    return value


def check_array(name, x, ndim=None, dtype=np.float64, min_rows=None, n_cols=None):
    """Return ``x`` as a finite array of ``dtype`` with the given shape constraints."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"{name} must be a numeric array ({exc})") from None
    if ndim is not None and arr.ndim != ndim:
        raise ParameterError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if min_rows is not None and arr.shape[0] < min_rows:
        raise ParameterError(f"{name} has {arr.shape[0]} rows, needs at least {min_rows}")
    if n_cols is not None and arr.ndim == 2 and arr.shape[1] != n_cols:
        raise ParameterError(f"{name} has {arr.shape[1]} columns, expected {n_cols}")
    if arr.size and not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} contains NaN or infinite values")
    return arr


def check_fitted(estimator, attribute):
    """Raise NotFittedError unless ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"{type(estimator).__name__} is not fitted yet: call fit() before using it"
        )


def check_random_state(seed):
    """Turn ``seed`` (None, int or Generator) into a ``numpy.random.Generator``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(0)
    return np.random.default_rng(check_int("random_state", seed, low=0))
