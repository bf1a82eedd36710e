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
from .ubm import log_likelihoods, posteriors

__all__ = ["BaumWelchStats", "compute_stats", "stack_stats"]


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


def compute_stats(ubm_params, X, min_posterior=1e-4):
    """Statistics of the frames ``X`` of one utterance.

    Parameters
    ----------
    ubm_params : tuple (weights (C,), means (C, D), variances (C, D))
    X : ndarray of shape (T, D)
    min_posterior : float
        Posteriors below this are dropped (and the rest renormalised); a
        cheap form of Gaussian selection that changes the statistics little.

    Returns
    -------
    BaumWelchStats
    """
    weights, means, variances = ubm_params
    X = check_array("X", X, ndim=2, dtype=np.float32, n_cols=means.shape[1])
    if len(X) == 0:
        raise ParameterError("X has 0 frames: no statistics can be computed")
    if not 0.0 <= min_posterior < 1.0 / len(weights):
        # the largest posterior of a frame is at least 1/C, so it always survives the pruning
        raise ParameterError(f"min_posterior={min_posterior} must be in [0, 1/C) = "
                             f"[0, {1.0 / len(weights):.4g})")
    # float32 halves the cost of the two matrix products and the exponentials;
    # posteriors need no more precision than that. Sums are returned in float64.
    post, _ = posteriors(log_likelihoods(X, weights.astype(np.float32),
                                         means.astype(np.float32),
                                         variances.astype(np.float32)))
    if min_posterior > 0:
        post[post < min_posterior] = 0.0
        post /= post.sum(axis=1, keepdims=True)
    n = post.sum(axis=0, dtype=np.float64)
    f = ((post.T @ X).astype(np.float64) - n[:, None] * means) / np.sqrt(variances)
    return BaumWelchStats(n, f)


def stack_stats(stats):
    """Stack a list of statistics into arrays N (U, C) and F (U, C, D)."""
    if not stats:
        raise ParameterError("stats is empty: nothing to stack")
    return np.stack([s.n for s in stats]), np.stack([s.f for s in stats])
