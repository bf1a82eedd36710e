"""Adaptive symmetric score normalisation (AS-norm).

A raw score ``s(e, t)`` is normalised with the statistics of the ``top_n``
highest scores of each side against a cohort of impostor vectors:

``s' = ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2``

The enrolment side's ``(mu_e, sigma_e)`` is computed once at enrolment and
kept in the voiceprint; the probe side's once per probe, so normalising a
probe against many voiceprints costs one cohort scoring.

References
----------
P. Matějka et al., "Analysis of score normalization in multilingual speaker
recognition", Interspeech 2017.
"""

import numpy as np

from ._validation import check_int
from .errors import ParameterError

__all__ = ["top_n_stats", "as_norm"]


def top_n_stats(scores, top_n):
    """Mean and standard deviation of the ``top_n`` largest values along the last axis.

    Parameters
    ----------
    scores : ndarray of shape (..., K)
    top_n : int
        Clipped to K.

    Returns
    -------
    mean, std : ndarrays of shape (...)
        ``std`` is at least 1e-6, so dividing by it is always safe.
    """
    top_n = check_int("top_n", top_n, low=1)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[-1] == 0:
        raise ParameterError("scores has no cohort entries: AS-norm needs a cohort")
    k = min(top_n, scores.shape[-1])
    top = np.partition(scores, scores.shape[-1] - k, axis=-1)[..., -k:]
    return top.mean(axis=-1), np.maximum(top.std(axis=-1), 1e-6)


def as_norm(score, enrol_stats, probe_stats):
    """Symmetric normalisation of ``score`` given (mean, std) of both sides."""
    (mu_e, sd_e), (mu_t, sd_t) = enrol_stats, probe_stats
    return 0.5 * ((score - mu_e) / sd_e + (score - mu_t) / sd_t)
