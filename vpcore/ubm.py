"""Diagonal-covariance Gaussian mixture: the universal background model.

EM is written as a map-reduce: :func:`accumulate` turns a block of frames
into :class:`GmmStats`, statistics add up with ``+``, and
:meth:`DiagonalGMM.maximize` turns their sum into new parameters. Training
on many files, processes or cluster workers is then the same loop.

The model grows by binary splitting (1, 2, 4, ... components), the way HTK
and Kaldi's ``gmm-global-init-from-feats`` grow a UBM: each split perturbs
the means of the heaviest components along their standard deviation, which
needs no random initialisation beyond a seeded frame subset.

References
----------
D. A. Reynolds, T. F. Quatieri, R. B. Dunn, "Speaker verification using
adapted Gaussian mixture models", Digital Signal Processing 10, 2000.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator

from ._validation import check_array, check_fitted, check_float, check_int, check_random_state
from .errors import ConvergenceWarning, ParameterError

__all__ = ["GmmStats", "DiagonalGMM", "accumulate", "log_likelihoods", "posteriors"]


@dataclass
class GmmStats:
    """Sufficient statistics of EM for a diagonal GMM.

    Attributes
    ----------
    n : ndarray of shape (C,)
        Soft counts.
    f : ndarray of shape (C, D)
        First-order sums of frames.
    s : ndarray of shape (C, D)
        Second-order sums (squares of frames).
    loglik : float
        Total log-likelihood of the frames under the model that produced the stats.
    n_frames : int
    """

    n: np.ndarray
    f: np.ndarray
    s: np.ndarray
    loglik: float
    n_frames: int

    def __add__(self, other):
        if other == 0:  # lets sum() start from 0
            return self
        return GmmStats(self.n + other.n, self.f + other.f, self.s + other.s,
                        self.loglik + other.loglik, self.n_frames + other.n_frames)

    __radd__ = __add__


def log_likelihoods(X, weights, means, variances):
    """Per-component weighted log-densities ``log w_c + log N(x | mu_c, diag var_c)``.

    Parameters
    ----------
    X : ndarray of shape (T, D)
    weights : ndarray of shape (C,)
    means, variances : ndarray of shape (C, D)

    Returns
    -------
    ll : ndarray of shape (T, C)
    """
    precisions = 1.0 / variances
    const = (np.log(weights)
             - 0.5 * (X.shape[1] * np.log(2 * np.pi) + np.log(variances).sum(axis=1)
                      + (means**2 * precisions).sum(axis=1)))
    ll = X @ (means * precisions).T
    ll -= 0.5 * ((X * X) @ precisions.T)
    ll += const
    return ll


def posteriors(ll):
    """Normalise log-densities (T, C) in place into posteriors; returns (post, log_norm (T,)).

    A plain max-shift log-sum-exp: much faster than ``scipy.special.logsumexp``
    on tall matrices, and exact for finite input.
    """
    top = ll.max(axis=1, keepdims=True)
    ll -= top
    np.exp(ll, out=ll)
    total = ll.sum(axis=1, keepdims=True)
    ll /= total
    return ll, (np.log(total) + top)[:, 0]


def accumulate(gmm_params, X, block=20000):
    """E-step over frames ``X``: posteriors folded into :class:`GmmStats`.

    Parameters
    ----------
    gmm_params : tuple (weights, means, variances)
    X : ndarray of shape (T, D)

    Returns
    -------
    GmmStats
    """
    weights, means, variances = gmm_params
    C, D = means.shape
    n = np.zeros(C)
    f = np.zeros((C, D))
    s = np.zeros((C, D))
    loglik = 0.0
    for start in range(0, len(X), block):
        x = np.asarray(X[start:start + block], dtype=np.float64)
        post, norm = posteriors(log_likelihoods(x, weights, means, variances))
        loglik += float(norm.sum())
        n += post.sum(axis=0)
        f += post.T @ x
        s += post.T @ (x * x)
    return GmmStats(n, f, s, loglik, len(X))


def _accumulate_chunk(X, gmm_params):
    return accumulate(gmm_params, X)


def _n_columns(X):
    return X.shape[1]


class DiagonalGMM(BaseEstimator):
    """Diagonal-covariance GMM trained by EM with binary splitting.

    Parameters
    ----------
    n_components : int
        C, a power of two is natural (splitting doubles the count).
    n_iter : int
        EM iterations at the final size (at most: training stops once ``tol`` is met).
    n_iter_split : int
        EM iterations after each split.
    variance_floor : float
        Each variance is kept at least this fraction of the global variance
        of its dimension.
    max_frames : int
        Frames used for training, a seeded random subset when there are more.
    tol : float
        Stop when the average log-likelihood per frame improves less than this.
    random_state : int or None
        Seed of the frame subset; None means 0 (results are always reproducible).

    Attributes
    ----------
    weights_ : ndarray of shape (C,)
    means_ : ndarray of shape (C, D)
    variances_ : ndarray of shape (C, D)
    loglik_history_ : list of float
        Average log-likelihood per frame after each E-step at the final size.
    converged_ : bool
        Whether an E-step at the final size improved the average log-likelihood
        by less than ``tol`` (training stopped there). When it did not within
        ``n_iter`` iterations, ``fit`` warns with a
        :class:`~vpcore.errors.ConvergenceWarning` (scikit-learn's).
    n_iter_ : int
        E-steps run at the final size.
    """

    def __init__(self, n_components=256, n_iter=10, n_iter_split=4, variance_floor=0.01,
                 max_frames=400_000, tol=1e-4, random_state=None):
        self.n_components = n_components
        self.n_iter = n_iter
        self.n_iter_split = n_iter_split
        self.variance_floor = variance_floor
        self.max_frames = max_frames
        self.tol = tol
        self.random_state = random_state

    # -- parameters -----------------------------------------------------------------
    @property
    def params(self):
        check_fitted(self, "means_")
        return self.weights_, self.means_, self.variances_

    def set_fitted(self, weights, means, variances):
        """Install fitted arrays (used when loading a model); returns self.

        Never changes a hyper-parameter.
        """
        self.weights_ = check_array("weights", weights, ndim=1)
        self.means_ = check_array("means", means, ndim=2)
        self.variances_ = check_array("variances", variances, ndim=2)
        C, D = self.means_.shape
        if self.weights_.shape != (C,) or self.variances_.shape != (C, D):
            raise ParameterError(
                f"GMM arrays disagree: weights {self.weights_.shape}, means {self.means_.shape},"
                f" variances {self.variances_.shape}")
        if np.any(self.variances_ <= 0) or np.any(self.weights_ <= 0):
            raise ParameterError("GMM weights and variances must be positive")
        return self

    # -- EM -------------------------------------------------------------------------
    def maximize(self, stats, floor):
        """M-step: new parameters from summed statistics; returns self."""
        n = np.maximum(stats.n, 1e-10)
        means = stats.f / n[:, None]
        variances = np.maximum(stats.s / n[:, None] - means**2, floor)
        weights = n / n.sum()
        self.weights_, self.means_, self.variances_ = weights, means, variances
        return self

    def _validate(self):
        check_int("n_components", self.n_components, low=1, high=8192)
        check_int("n_iter", self.n_iter, low=1)
        check_int("n_iter_split", self.n_iter_split, low=1)
        check_float("variance_floor", self.variance_floor, low=0.0, high=1.0,
                    low_inclusive=False)
        check_int("max_frames", self.max_frames, low=1)
        check_float("tol", self.tol, low=0.0)
        if self.random_state is not None:
            check_int("random_state", self.random_state, low=0)

    def fit(self, X, y=None, progress=None):
        """Train on frames ``X`` of shape (n_frames, D); returns self.

        ``y`` is ignored (scikit-learn's signature, so the model fits in a
        ``Pipeline``). ``progress`` is an optional callable
        ``progress(stage, iteration, avg_loglik)``.
        """
        self._validate()
        X = check_array("X", X, ndim=2)
        rng = check_random_state(self.random_state)
        if len(X) > self.max_frames:
            X = X[np.sort(rng.choice(len(X), self.max_frames, replace=False))]
        chunks = np.array_split(X, max(1, -(-len(X) // 50_000)))
        return self.fit_chunks(chunks, progress=progress)

    def fit_chunks(self, chunks, executor=None, progress=None):
        """Train on frames held in chunks, possibly on other machines; returns self.

        Parameters
        ----------
        chunks : list
            Frame arrays (n_i, D), or executor handles of them (e.g. Dask futures).
        executor : LocalExecutor or DaskExecutor, optional
            Runs the E-step on every chunk; the partial :class:`GmmStats` are summed.
        """
        from .parallel import LocalExecutor

        self._validate()
        executor = executor or LocalExecutor()

        def e_step():
            return sum(executor.gather(executor.map(_accumulate_chunk, chunks, self.params)))

        # One Gaussian first: its statistics give the global mean and variance.
        dim = max(executor.gather(executor.map(_n_columns, chunks)))
        self.weights_, self.means_, self.variances_ = np.ones(1), np.zeros((1, dim)), np.ones((1, dim))
        stats = e_step()
        if stats.n_frames < 2 * self.n_components:
            raise ParameterError(
                f"X has {stats.n_frames} frames; n_components={self.n_components} needs at "
                f"least {2 * self.n_components} (use fewer components or more data)")
        global_var = stats.s[0] / stats.n[0] - (stats.f[0] / stats.n[0]) ** 2
        floor = np.maximum(self.variance_floor * global_var, 1e-8)
        self.maximize(stats, floor)
        self.loglik_history_ = []
        while len(self.weights_) < self.n_components:
            self._split(min(len(self.weights_), self.n_components - len(self.weights_)))
            for it in range(self.n_iter_split):
                stats = e_step()
                self.maximize(stats, floor)
                if progress:
                    progress(f"split {len(self.weights_)}", it, stats.loglik / stats.n_frames)
        self.converged_ = False
        for it in range(self.n_iter):
            stats = e_step()
            avg = stats.loglik / stats.n_frames
            self.loglik_history_.append(avg)
            self.n_iter_ = it + 1
            if progress:
                progress("ubm", it, avg)
            if it and avg - self.loglik_history_[-2] < self.tol:
                self.converged_ = True
                break
            self.maximize(stats, floor)
        if not self.converged_:
            warnings.warn(f"DiagonalGMM did not converge in n_iter={self.n_iter} iterations "
                          f"(tol={self.tol}): increase n_iter or tol", ConvergenceWarning,
                          stacklevel=2)
        return self

    def _split(self, k):
        """Split the ``k`` heaviest components in two, +-0.5 sd along each one's widest dimension.

        Perturbing along the dimension of largest variance (rather than along
        the all-ones direction) keeps the two halves off the saddle point that
        arises when the data's clusters lie across that direction.
        """
        order = np.argsort(-self.weights_, kind="stable")[:k]
        var = self.variances_[order]
        offset = np.zeros_like(var)
        widest = np.argmax(var, axis=1)
        offset[np.arange(len(order)), widest] = 0.5 * np.sqrt(var[np.arange(len(order)), widest])
        self.means_ = np.concatenate([self.means_, self.means_[order] + offset])
        self.means_[order] -= offset
        self.variances_ = np.concatenate([self.variances_, self.variances_[order]])
        self.weights_ = np.concatenate([self.weights_, self.weights_[order] / 2])
        self.weights_[order] /= 2

    # -- use ------------------------------------------------------------------------
    def score_samples(self, X):
        """Log-likelihood of each frame, shape (T,)."""
        X = check_array("X", X, ndim=2, n_cols=self.params[1].shape[1])
        return posteriors(log_likelihoods(X, *self.params))[1]

    def score(self, X):
        """Average log-likelihood per frame."""
        return float(self.score_samples(X).mean())
