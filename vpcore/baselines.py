"""Baseline systems that each stage of the pipeline is measured against.

Both baselines reuse the fitted stages of a :class:`~vpcore.model.VoiceprintModel`
(its front end, its UBM, its i-vector extractor), so a comparison on the same
trials isolates the part of the pipeline that differs:

* **GMM-UBM** (Reynolds 2000): a speaker model is the UBM with its means
  MAP-adapted to the speaker's frames (:func:`map_adapt_means`); a test
  utterance is scored by the frame-averaged log-likelihood ratio of the
  speaker model against the UBM (:func:`gmm_ubm_llr`), optionally with
  top-k Gaussian selection.
* **i-vector cosine** (Dehak 2011): the cosine between the (centred,
  optionally LDA-projected) length-normalised mean of the enrolment
  i-vectors and the test i-vector (:func:`cosine_score`).

Frames are rows, ``X`` has shape ``(T, D)``; ``ubm_params`` is the tuple
``(weights (C,), means (C, D), variances (C, D))`` of ``model.ubm_.params``.

References
----------
D. A. Reynolds, T. F. Quatieri, R. B. Dunn, "Speaker verification using
adapted Gaussian mixture models", Digital Signal Processing 10, 19-41, 2000.
N. Dehak, P. Kenny, R. Dehak, P. Dumouchel, P. Ouellet, "Front-end factor
analysis for speaker verification", IEEE TASLP 19(4), 788-798, 2011.
"""

import math
import numbers

import numpy as np

from ._validation import check_array, check_int
from .errors import ParameterError
from .ubm import log_likelihoods, posteriors

__all__ = ["map_adapt_means", "gmm_ubm_llr", "gmm_ubm_llr_many", "cosine_score"]


# ---------------------------------------------------------------------------- validation

def _check_ubm(ubm_params):
    """Validate ``(weights (C,), means (C, D), variances (C, D))``; returns float64 arrays."""
    try:
        weights, means, variances = ubm_params
    except (TypeError, ValueError):
        raise ParameterError("ubm_params must be a tuple (weights, means, variances)") from None
    weights = check_array("ubm weights", weights, ndim=1, min_rows=1)
    means = check_array("ubm means", means, ndim=2)
    variances = check_array("ubm variances", variances, ndim=2)
    C, D = means.shape
    if weights.shape != (C,) or variances.shape != (C, D):
        raise ParameterError(f"ubm_params disagree in shape: weights {weights.shape}, means "
                             f"{means.shape}, variances {variances.shape} (expected (C,), "
                             "(C, D), (C, D))")
    if np.any(weights <= 0):
        raise ParameterError("ubm weights must all be > 0")
    if np.any(variances <= 0):
        raise ParameterError("ubm variances must all be > 0")
    return weights, means, variances


def _check_frames(X, D):
    X = check_array("X", X, ndim=2, min_rows=1, n_cols=D)
    return X


def _check_relevance(relevance):
    if isinstance(relevance, (bool, np.bool_)) or not isinstance(relevance, numbers.Real):
        raise ParameterError(f"relevance={relevance!r} must be a real number")
    relevance = float(relevance)
    if math.isnan(relevance) or relevance < 0:
        raise ParameterError(f"relevance={relevance} must be >= 0 (inf keeps the UBM means)")
    return relevance


# ----------------------------------------------------------------------------- GMM-UBM

def map_adapt_means(ubm_params, X, relevance=16.0):
    """MAP adaptation of the UBM means to the frames of one speaker.

    For component ``c`` with occupancy ``n_c = sum_t gamma_t(c)`` and data mean
    ``E_c = sum_t gamma_t(c) x_t / n_c`` (posteriors ``gamma`` under the UBM),
    the adapted mean is ``alpha_c E_c + (1 - alpha_c) mu_c`` with
    ``alpha_c = n_c / (n_c + relevance)``. Weights and variances stay the UBM's.

    Parameters
    ----------
    ubm_params : tuple (weights (C,), means (C, D), variances (C, D))
    X : ndarray of shape (T, D)
        Front-end features of the speaker (all enrolment utterances stacked).
    relevance : float, default=16.0
        Relevance factor r >= 0. ``inf`` returns the UBM means; 0 moves every
        component that saw any frame to its data mean. A component with zero
        occupancy always keeps its UBM mean.

    Returns
    -------
    means : ndarray of shape (C, D)

    Raises
    ------
    ParameterError
        On malformed UBM parameters, frames of the wrong dimension or a
        negative / NaN relevance.

    References
    ----------
    D. A. Reynolds et al., "Speaker verification using adapted Gaussian mixture
    models", Digital Signal Processing 10, 2000 (eq. 14, means only).
    """
    weights, means, variances = _check_ubm(ubm_params)
    X = _check_frames(X, means.shape[1])
    relevance = _check_relevance(relevance)
    if math.isinf(relevance):
        return means.copy()
    post, _ = posteriors(log_likelihoods(X, weights, means, variances))
    n = post.sum(axis=0)  # (C,)
    f = post.T @ X  # (C, D)
    seen = n > 0
    adapted = means.copy()
    data_mean = f[seen] / n[seen, None]
    alpha = (n[seen] / (n[seen] + relevance))[:, None]
    adapted[seen] = alpha * data_mean + (1.0 - alpha) * means[seen]
    return adapted


def _component_loglik(X, idx, weights, means, variances):
    """``log w_c + log N(x_t | means_c, var_c)`` for the components ``idx`` (T, k) of each frame.

    ``means`` may be (C, D) or (M, C, D); the result is (T, k) or (M, T, k).
    Computed directly from the differences, so identical means give identical values.
    """
    var = variances[idx]  # (T, k, D)
    const = np.log(weights[idx]) - 0.5 * (np.log(2 * np.pi * var).sum(axis=-1))  # (T, k)
    diff = X[:, None, :] - means[..., idx, :]  # (..., T, k, D)
    return const - 0.5 * np.einsum("...tkd,tkd->...tk", diff * diff, 1.0 / var)


def _logsumexp_last(a):
    top = a.max(axis=-1, keepdims=True)
    return (np.log(np.exp(a - top).sum(axis=-1, keepdims=True)) + top)[..., 0]


def gmm_ubm_llr_many(ubm_params, adapted_means, X, top_k=None):
    """Frame-averaged LLRs of one utterance against M MAP-adapted speaker models.

    ``llr_m = mean_t [log p(x_t | speaker m) - log p(x_t | UBM)]`` where the
    speaker model is the UBM with means ``adapted_means[m]``.

    Parameters
    ----------
    ubm_params : tuple (weights (C,), means (C, D), variances (C, D))
    adapted_means : ndarray of shape (M, C, D)
    X : ndarray of shape (T, D)
    top_k : int or None
        With an int, both likelihoods of a frame use only the ``top_k``
        components that score best under the UBM for that frame (Reynolds'
        fast scoring; 5 is usual). None uses every component.

    Returns
    -------
    llrs : ndarray of shape (M,)

    Raises
    ------
    ParameterError
        On malformed input or ``top_k`` outside [1, C].
    """
    weights, means, variances = _check_ubm(ubm_params)
    C, D = means.shape
    A = check_array("adapted_means", adapted_means, ndim=3)
    if A.shape[1:] != (C, D):
        raise ParameterError(f"adapted_means has shape {A.shape}, expected (M, {C}, {D})")
    X = _check_frames(X, D)
    if top_k is None:
        ubm = posteriors(log_likelihoods(X, weights, means, variances))[1]
        spk = np.stack([posteriors(log_likelihoods(X, weights, m, variances))[1] for m in A])
        return (spk - ubm[None, :]).mean(axis=1)
    k = check_int("top_k", top_k, low=1, high=C)
    ll = log_likelihoods(X, weights, means, variances)
    idx = np.argpartition(-ll, k - 1, axis=1)[:, :k] if k < C else np.tile(np.arange(C), (len(X), 1))
    ubm = _logsumexp_last(_component_loglik(X, idx, weights, means, variances))  # (T,)
    llrs = np.empty(len(A))
    for m, am in enumerate(A):  # one model at a time keeps memory at T * k * D
        spk = _logsumexp_last(_component_loglik(X, idx, weights, am, variances))
        llrs[m] = float((spk - ubm).mean())
    return llrs


def gmm_ubm_llr(ubm_params, adapted_means, X, top_k=None):
    """Frame-averaged log-likelihood ratio of one MAP-adapted speaker model against the UBM.

    Parameters
    ----------
    ubm_params : tuple (weights (C,), means (C, D), variances (C, D))
    adapted_means : ndarray of shape (C, D)
        From :func:`map_adapt_means`.
    X : ndarray of shape (T, D)
        Front-end features of the test utterance.
    top_k : int or None
        Score each frame with only its ``top_k`` best UBM components (None: all).

    Returns
    -------
    float
        ``mean_t [log p(x_t | speaker) - log p(x_t | UBM)]``; exactly 0 when
        ``adapted_means`` are the UBM means.

    References
    ----------
    D. A. Reynolds et al., "Speaker verification using adapted Gaussian mixture
    models", Digital Signal Processing 10, 2000.
    """
    A = check_array("adapted_means", adapted_means, ndim=2)
    return float(gmm_ubm_llr_many(ubm_params, A[None], X, top_k=top_k)[0])


# ------------------------------------------------------------------------ i-vector cosine

def _unit_rows(Z):
    """Rows scaled to unit length (zero rows stay zero); safe for huge values."""
    scale = np.max(np.abs(Z), axis=-1, keepdims=True)
    Z = np.divide(Z, scale, out=np.zeros_like(Z), where=scale > 0)
    norms = np.linalg.norm(Z, axis=-1, keepdims=True)
    return np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 0)


def cosine_score(enrol_ivectors, test_ivector, mean=None, projection=None):
    """Cosine similarity of a test i-vector with the mean of enrolment i-vectors.

    Every vector is centred (``- mean``), optionally projected
    (``@ projection``, e.g. LDA), and length-normalised; the enrolment's unit
    vectors are averaged and the cosine between that average and the test
    vector is returned. A vector that is zero after centring scores 0.

    Parameters
    ----------
    enrol_ivectors : ndarray of shape (n, S)
    test_ivector : ndarray of shape (S,)
    mean : ndarray of shape (S,) or None
        Centre, e.g. the mean of training i-vectors (``model.backend_.mean_``).
    projection : ndarray of shape (S, R) or None
        Applied after centring (``model.backend_.projection_`` is LDA).

    Returns
    -------
    float
        In [-1, 1]; symmetric in its two vectors when ``n == 1``.

    Raises
    ------
    ParameterError
        On wrong shapes or non-finite values.

    References
    ----------
    N. Dehak et al., "Front-end factor analysis for speaker verification",
    IEEE TASLP 19(4), 2011 (cosine distance scoring).
    """
    E = check_array("enrol_ivectors", enrol_ivectors, ndim=2, min_rows=1)
    S = E.shape[1]
    t = check_array("test_ivector", test_ivector, ndim=1)
    if t.shape != (S,):
        raise ParameterError(f"test_ivector has shape {t.shape}, expected ({S},) like the "
                             "enrolment i-vectors")
    if mean is not None:
        mean = check_array("mean", mean, ndim=1)
        if mean.shape != (S,):
            raise ParameterError(f"mean has shape {mean.shape}, expected ({S},)")
        E, t = E - mean, t - mean
    if projection is not None:
        P = check_array("projection", projection, ndim=2)
        if P.shape[0] != S:
            raise ParameterError(f"projection has shape {P.shape}, expected ({S}, R)")
        E, t = E @ P, t @ P
    e = _unit_rows(E[0]) if len(E) == 1 else _unit_rows(_unit_rows(E).mean(axis=0))
    t = _unit_rows(t)
    return float(np.clip(e @ t, -1.0, 1.0))
