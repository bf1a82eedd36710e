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


def without_later_defaults(d, later_fields):
    """``d`` without the keys of ``later_fields`` whose value is their default there.

    Options added after a model format existed are saved only when set, so the
    headers (and anything keyed on them) of earlier models stay as they were.
    """
    return {k: v for k, v in d.items() if k not in later_fields or v != later_fields[k]}


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


def check_scores_labels(scores, labels, score_name="scores", both_classes=True):
    """Validate a score array and its labels.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Finite real numbers.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials.
    score_name : str
        Name of the score argument, used in error messages.
    both_classes : bool
        Require at least one target and one non-target.

    Returns
    -------
    scores : ndarray of float64, shape (N,)
    labels : ndarray of bool, shape (N,)

    Raises
    ------
    ParameterError
        If either array is empty, not 1-D or not finite, if the lengths
        differ, if a label is not 0/1, or if a class is missing.
    """
    scores = check_array(score_name, scores, ndim=1, min_rows=1)
    lab = check_array("labels", labels, ndim=1, min_rows=1)
    if lab.shape[0] != scores.shape[0]:
        raise ParameterError(
            f"labels has length {lab.shape[0]} but {score_name} has length "
            f"{scores.shape[0]}: they must have the same length"
        )
    bad = (lab != 0) & (lab != 1)
    if np.any(bad):
        value = lab[np.flatnonzero(bad)[0]]
        raise ParameterError(
            f"labels contains {value!r}: labels must be True/False or 1/0 (1 = target)"
        )
    lab = lab.astype(bool)
    if both_classes:
        n_tar = int(np.count_nonzero(lab))
        n_non = lab.shape[0] - n_tar
        if n_tar == 0 or n_non == 0:
            raise ParameterError(
                f"labels has {n_tar} targets and {n_non} non-targets: at least one "
                "target (1/True) and one non-target (0/False) are needed"
            )
    return scores, lab
