"""Adaptive symmetric score normalisation (AS-norm).

A raw score ``s(e, t)`` is normalised with the statistics of the ``top_n``
highest scores of each side against a cohort of impostor vectors:

``s' = ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2``

The enrolment side's ``(mu_e, sigma_e)`` is computed once at enrolment and
kept in the voiceprint; the probe side's once per probe, so normalising a
probe against many voiceprints costs one cohort scoring.

**Adaptive in-domain cohort** (:func:`pooled_top_stats`). The training cohort
is one quiet session per speaker; the voiceprints a deployment has enrolled
are recorded where the probes are. The probe side may therefore pool its
cohort scores with its scores against the enrolled voiceprints ("in-domain"),
leaving out, for each voiceprint it is normalised against, that voiceprint's
own score (which may be a target). The top count grows with the pool,
``round(top_n * pool / K)``, so the same upper fraction of impostor scores is
kept whatever the number of enrolled voiceprints.

References
----------
P. Matějka et al., "Analysis of score normalization in multilingual speaker
recognition", Interspeech 2017.
"""

import numpy as np

from ._validation import check_int
from .errors import ParameterError

__all__ = ["top_n_stats", "pooled_top_stats", "pooled_row_stats", "as_norm"]


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


def pooled_top_stats(cohort_scores, in_domain, top_n, own=None):
    """Probe-side AS-norm statistics over the cohort pooled with in-domain scores.

    Parameters
    ----------
    cohort_scores : ndarray of shape (K,)
        One probe's scores against the training cohort (K >= 1).
    in_domain : ndarray of shape (M,)
        The same probe's scores against enrolled voiceprints (M >= 0).
    top_n : int
        The top count of the cohort alone; over a pool of ``P`` scores the top
        ``round(top_n * P / K)`` are kept (at least 1, at most ``P``).
    own : ndarray of int of shape (E,) or None
        For each of E voiceprints being normalised against, the index into
        ``in_domain`` of its own score, left out of its pool (``P = K + M -
        1``), or -1 when it has none there (``P = K + M``). None: one
        statistic over the whole pool.

    Returns
    -------
    mean, std : float, or ndarrays of shape (E,) when ``own`` is given
        ``std`` is at least 1e-6. Each equals :func:`top_n_stats` of its pool
        with its top count, computed here from one partial sort of the pool.
    """
    top_n = check_int("top_n", top_n, low=1)
    cohort_scores = np.asarray(cohort_scores, dtype=np.float64).reshape(-1)
    in_domain = np.asarray(in_domain, dtype=np.float64).reshape(-1)
    K, M = len(cohort_scores), len(in_domain)
    if K == 0:
        raise ParameterError("cohort_scores has no entries: AS-norm needs a cohort")
    pool = np.concatenate([cohort_scores, in_domain])

    def count(size):
        return int(min(size, max(1, round(top_n * size / K))))

    if own is None:
        return top_n_stats(pool, count(K + M))
    own = np.asarray(own)
    if own.ndim != 1 or not (own.size == 0 or np.issubdtype(own.dtype, np.integer)):
        raise ParameterError(f"own must be a 1-D array of indices into in_domain, got dtype "
                             f"{own.dtype} and shape {own.shape}")
    if own.size and (own.min() < -1 or own.max() >= M):
        raise ParameterError(f"own must lie in [-1, {M}), got values from {own.min()} to "
                             f"{own.max()}")
    own = own.astype(np.int64)
    k_full, k_out = count(K + M), count(K + M - 1)
    k = max(k_full, k_out + 1 if M else 0)
    k = min(k, len(pool))
    top = -np.sort(-np.partition(pool, len(pool) - k)[-k:])  # the k largest, descending
    c = top[0]  # shift by the largest score: the sums below then lose no precision
    d = top - c
    s1, s2 = np.cumsum(d), np.cumsum(d * d)

    def stats(total, squares, n):
        mean = total / n
        return c + mean, np.sqrt(np.maximum(squares / n - mean * mean, 0.0))

    mu = np.empty(len(own))
    sd = np.empty(len(own))
    none = own < 0
    mu[none], sd[none] = stats(s1[k_full - 1], s2[k_full - 1], k_full)
    left = ~none
    if left.any():
        x = in_domain[own[left]] - c
        # own score inside the top k_out (it then displaces the (k_out + 1)-th score)
        inside = x >= d[k_out - 1]
        nxt = d[k_out] if k_out < len(d) else 0.0
        t1 = np.where(inside, s1[k_out - 1] - x + nxt, s1[k_out - 1])
        t2 = np.where(inside, s2[k_out - 1] - x * x + nxt * nxt, s2[k_out - 1])
        mu[left], sd[left] = stats(t1, t2, k_out)
    return mu, np.maximum(sd, 1e-6)


def pooled_row_stats(cohort_scores, in_domain, top_n, own=None):
    """Enrolment-side AS-norm statistics of E voiceprints over their own pooled cohorts.

    Voiceprint ``e``'s pool is its scores against the training cohort
    (``cohort_scores[e]``) and against in-domain vectors (``in_domain[e]``),
    leaving out ``in_domain[e, own[e]]`` (its score against itself) when
    ``own[e] >= 0``; the top ``round(top_n * P / K)`` of its ``P`` pooled scores
    are kept, as in :func:`pooled_top_stats`.

    Parameters
    ----------
    cohort_scores : ndarray of shape (E, K)
    in_domain : ndarray of shape (E, M)
    top_n : int
    own : ndarray of int of shape (E,) or None
        Column of ``in_domain`` left out of each row's pool, or -1 (None: all -1).

    Returns
    -------
    mean, std : ndarrays of shape (E,), float64
        Each equals :func:`top_n_stats` of the row's pool with its top count
        (the pool is sorted in float32 when both inputs are float32);
        ``std`` is at least 1e-6.
    """
    top_n = check_int("top_n", top_n, low=1)
    cohort_scores = np.atleast_2d(np.asarray(cohort_scores))
    in_domain = np.asarray(in_domain)
    dtype = np.float32 if (cohort_scores.dtype == np.float32
                           and in_domain.dtype == np.float32) else np.float64
    E, K = cohort_scores.shape
    if in_domain.ndim != 2 or in_domain.shape[0] != E:
        raise ParameterError(f"in_domain must have shape ({E}, M), got {in_domain.shape}")
    if K == 0:
        raise ParameterError("cohort_scores has no entries: AS-norm needs a cohort")
    M = in_domain.shape[1]
    own = np.full(E, -1, dtype=np.int64) if own is None else np.asarray(own)
    if own.shape != (E,) or not (own.size == 0 or np.issubdtype(own.dtype, np.integer)):
        raise ParameterError(f"own must be {E} column indices into in_domain, got dtype "
                             f"{own.dtype} and shape {own.shape}")
    if own.size and (own.min() < -1 or own.max() >= M):
        raise ParameterError(f"own must lie in [-1, {M}), got values from {own.min()} to "
                             f"{own.max()}")
    pool = np.empty((E, K + M), dtype=dtype)  # float32 scores stay float32 (half the memory)
    pool[:, :K], pool[:, K:] = cohort_scores, in_domain
    left = np.flatnonzero(own >= 0)
    pool[left, K + own[left]] = -np.inf  # the row's own score sorts last and is never kept
    mu, sd = np.empty(E), np.empty(E)
    for has_own in (False, True):
        sel = left if has_own else np.flatnonzero(own < 0)
        if len(sel) == 0:
            continue
        size = K + M - int(has_own)
        k = int(min(size, max(1, round(top_n * size / K))))
        top = np.partition(pool[sel], K + M - k, axis=1)[:, -k:].astype(np.float64)
        mu[sel], sd[sel] = top.mean(axis=1), top.std(axis=1)
    return mu, np.maximum(sd, 1e-6)


def as_norm(score, enrol_stats, probe_stats):
    """Symmetric normalisation of ``score`` given (mean, std) of both sides."""
    (mu_e, sd_e), (mu_t, sd_t) = enrol_stats, probe_stats
    return 0.5 * ((score - mu_e) / sd_e + (score - mu_t) / sd_t)
