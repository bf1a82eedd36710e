"""Baum-Welch statistics of an utterance against the UBM.

For frames ``x_t`` and UBM posteriors ``gamma_t(c)``, the zeroth-order
statistics are ``N_c = sum_t gamma_t(c)`` and the centred, whitened
first-order statistics are ``F_c = Sigma_c^{-1/2} sum_t gamma_t(c) (x_t - mu_c)``.
Centring and whitening here lets the total-variability model work in a space
where every UBM component has identity covariance.

References
----------
P. Kenny, "Joint factor analysis of speaker and session variability: theory
and algorithms", CRIM-06/08-13, 2005.
"""

from dataclasses import dataclass

import numpy as np

from ._validation import check_array
from .errors import ParameterError

__all__ = ["BaumWelchStats", "PreparedUbm", "compute_stats", "stack_stats"]


@dataclass
class BaumWelchStats:
    """Zeroth- and first-order statistics of one utterance (or a sum of several).

    Attributes
    ----------
    n : ndarray of shape (C,)
    f : ndarray of shape (C, D)
        Centred on the UBM means and whitened by the UBM standard deviations.
    """

    n: np.ndarray
    f: np.ndarray

    def __add__(self, other):
        if other == 0:
            return self
        return BaumWelchStats(self.n + other.n, self.f + other.f)

    __radd__ = __add__

    @property
    def n_frames(self):
        return float(self.n.sum())


class PreparedUbm:
    """The per-model constants of :func:`compute_stats`, computed once.

    Scoring frames against a diagonal UBM needs, per component, ``mu / var``,
    ``1 / var`` and a constant; the statistics need ``mu`` and ``1 / sd``.
    A model prepares them once (:class:`~vpcore.model.VoiceprintModel` keeps
    one), so that a take costs no conversion or division over the UBM.

    Parameters
    ----------
    weights : ndarray of shape (C,)
    means, variances : ndarray of shape (C, D)

    Attributes
    ----------
    projection : ndarray of shape (2 D, C), float32
        ``[X, X * X] @ projection + const`` are the weighted log-densities of
        frames ``X``: the linear and quadratic terms in one matrix product.
    const : ndarray of shape (C,), float32
    means : ndarray of shape (C, D), float64
    inv_sd : ndarray of shape (C, D), float64
    """

    def __init__(self, weights, means, variances):
        weights, means, variances = (np.asarray(a, dtype=np.float64)
                                     for a in (weights, means, variances))
        precisions = 1.0 / variances
        const = (np.log(weights)
                 - 0.5 * (means.shape[1] * np.log(2 * np.pi) + np.log(variances).sum(axis=1)
                          + (means**2 * precisions).sum(axis=1)))
        self.projection = np.ascontiguousarray(
            np.concatenate([means * precisions, -0.5 * precisions], axis=1).T, dtype=np.float32)
        self.const = const.astype(np.float32)
        self.means = means
        self.inv_sd = 1.0 / np.sqrt(variances)
        self.n_components, self.dim = means.shape


def compute_stats(ubm_params, X, min_posterior=1e-4):
    """Statistics of the frames ``X`` of one utterance.

    Parameters
    ----------
    ubm_params : tuple (weights (C,), means (C, D), variances (C, D)) or PreparedUbm
    X : ndarray of shape (T, D)
    min_posterior : float
        Posteriors below this are dropped (and the rest renormalised); a
        cheap form of Gaussian selection that changes the statistics little.

    Returns
    -------
    BaumWelchStats

    Notes
    -----
    The log-densities, the posteriors and the first-order sums are computed in
    float32, which halves the cost of the two matrix products and the
    exponentials; posteriors need no more precision than that (the tests hold
    the statistics to float64 ones within 1e-4 relative). Sums are returned in
    float64.
    """
    ubm = ubm_params if isinstance(ubm_params, PreparedUbm) else PreparedUbm(*ubm_params)
    C, D = ubm.n_components, ubm.dim
    X = check_array("X", X, ndim=2, dtype=np.float32, n_cols=D)
    if len(X) == 0:
        raise ParameterError("X has 0 frames: no statistics can be computed")
    if not 0.0 <= min_posterior < 1.0 / C:
        # the largest posterior of a frame is at least 1/C, so it always survives the pruning
        raise ParameterError(f"min_posterior={min_posterior} must be in [0, 1/C) = "
                             f"[0, {1.0 / C:.4g})")
    XX = np.empty((len(X), 2 * D), dtype=np.float32)
    XX[:, :D] = X
    np.square(X, out=XX[:, D:])
    post = XX @ ubm.projection  # (T, C) log-densities
    post += ubm.const
    post -= post.max(axis=1, keepdims=True)
    np.exp(post, out=post)
    if min_posterior > 0:
        # posterior < min_posterior  <=>  exp(ll - max) < min_posterior * sum(exp(ll - max))
        post[post < min_posterior * post.sum(axis=1, keepdims=True)] = 0.0
    post /= post.sum(axis=1, keepdims=True)
    n = post.sum(axis=0, dtype=np.float64)
    f = ((post.T @ X).astype(np.float64) - n[:, None] * ubm.means) * ubm.inv_sd
    return BaumWelchStats(n, f)


def stack_stats(stats):
    """Stack a list of statistics into arrays N (U, C) and F (U, C, D)."""
    if not stats:
        raise ParameterError("stats is empty: nothing to stack")
    return np.stack([s.n for s in stats]), np.stack([s.f for s in stats])
