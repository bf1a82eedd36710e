"""Total-variability model and i-vector extraction.

An utterance's UBM-mean supervector is modelled as ``m + o + T w`` with
``w ~ N(0, I)``: the i-vector is the posterior mean of ``w`` given the
utterance's Baum-Welch statistics. With statistics centred and whitened by
the UBM (:mod:`vpcore.stats`), the posterior of ``w`` has precision
``L = I + sum_c N_c T_c' T_c`` and mean ``L^{-1} sum_c T_c' F_c``.

Training is EM over utterances, written as a map-reduce of :class:`TvStats`,
followed each iteration by the minimum-divergence step, which rescales ``T``
so that the i-vectors of the training set have unit covariance.

Extraction precomputes ``T_c' T_c`` for every component once (packed upper
triangles, float32: ``C * S * (S + 1) / 2 * 4`` bytes), so building ``L`` for
one utterance is one matrix-vector product.

References
----------
N. Dehak, P. Kenny, R. Dehak, P. Dumouchel, P. Ouellet, "Front-end factor
analysis for speaker verification", IEEE TASLP 19(4), 2011.
P. Kenny, "A small footprint i-vector extractor", Odyssey 2012.
Kaldi ``ivector/ivector-extractor.cc`` (minimum-divergence re-estimation).
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dpotrf, dpotri, dpotrs
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from ._validation import check_array, check_fitted, check_float, check_int, check_random_state
from .errors import ConvergenceWarning, ModelError, ParameterError

__all__ = ["TvStats", "TotalVariability"]


@dataclass
class TvStats:
    """Sufficient statistics of one EM iteration of the total-variability model.

    Attributes
    ----------
    a : ndarray of shape (C, S * S)
        ``sum_u N_uc E[w w']_u``.
    c : ndarray of shape (C * D, S)
        ``sum_u F_u E[w]_u'``.
    h : ndarray of shape (S,)
        ``sum_u E[w]_u`` (for minimum divergence).
    hh : ndarray of shape (S, S)
        ``sum_u E[w w']_u``.
    objective : float
        ``sum_u [(b_u' L_u^{-1} b_u - log det L_u) / 2 + sum_c (o_c'F_uc - N_uc |o_c|^2 / 2)]``,
        the part of the statistics' log-likelihood that depends on ``T`` and the
        offset ``o``; EM (with minimum divergence) never lowers it.
    count : int
    """

    a: np.ndarray
    c: np.ndarray
    h: np.ndarray
    hh: np.ndarray
    objective: float
    count: int

    def __add__(self, other):
        if other == 0:
            return self
        return TvStats(self.a + other.a, self.c + other.c, self.h + other.h,
                       self.hh + other.hh, self.objective + other.objective,
                       self.count + other.count)

    __radd__ = __add__


def _posterior_batch(T, TT, N, F):
    """Posterior mean and covariance of w for a batch of utterances.

    T : (C*D, S); TT : (C, S*S); N : (B, C); F : (B, C*D).
    Returns w (B, S), cov (B, S, S) and the batch's EM objective.
    """
    S = T.shape[1]
    L = (N @ TT).reshape(-1, S, S)
    L[:, np.arange(S), np.arange(S)] += 1.0
    b = F @ T
    cov = np.empty_like(L)
    logdet = 0.0
    lower = np.tril_indices(S, -1)
    # Small matrices: one BLAS thread each is much faster than several fighting.
    with threadpool_limits(limits=1, user_api="blas"):
        for i in range(len(L)):
            chol, info = dpotrf(L[i], lower=1, clean=0)
            if info != 0:
                raise ModelError("i-vector posterior precision is not positive definite")
            inv, info = dpotri(chol, lower=1)
            inv[lower[1], lower[0]] = inv[lower]  # mirror the lower triangle
            cov[i] = inv
            logdet += 2.0 * np.log(np.diagonal(chol)).sum()
    w = np.einsum("bij,bj->bi", cov, b)
    objective = 0.5 * (float(np.einsum("bi,bi->", b, w)) - logdet)
    return w, cov, objective


def component_products(T, n_components):
    """``T_c' T_c`` of every component: (C*D, S) -> (C, S, S)."""
    S = T.shape[1]
    Tc = T.reshape(n_components, -1, S)
    out = np.empty((n_components, S, S))
    for c in range(n_components):  # C plain GEMMs: far faster than one einsum here
        np.dot(Tc[c].T, Tc[c], out=out[c])
    return out


def accumulate(T, N, F, offset=None, batch=128, TT=None):
    """E-step of total-variability EM over utterances; returns :class:`TvStats`.

    Parameters
    ----------
    T : ndarray of shape (C * D, S)
    N : ndarray of shape (U, C)
    F : ndarray of shape (U, C * D)
    offset : ndarray of shape (C * D,), optional
        Supervector offset ``o`` of the model ``o + T w`` (default 0).
    TT : ndarray of shape (C, S * S), optional
        :func:`component_products` of ``T``, when the caller already has them.
    """
    C = N.shape[1]
    S = T.shape[1]
    D = T.shape[0] // C
    if TT is None:
        TT = component_products(T, C).reshape(C, S * S)
    a = np.zeros((C, S * S))
    c = np.zeros((C * D, S))
    h = np.zeros(S)
    hh = np.zeros((S, S))
    objective = 0.0
    for start in range(0, len(N), batch):
        n = np.asarray(N[start:start + batch], dtype=np.float64)
        f = np.asarray(F[start:start + batch], dtype=np.float64)
        if offset is not None:
            n_rep = np.repeat(n, D, axis=1)
            # the offset's own part of the log-likelihood: sum_c o_c'F_c - N_c |o_c|^2 / 2
            objective += float(np.sum(f @ offset) - 0.5 * np.sum(n_rep @ (offset * offset)))
            f = f - n_rep * offset
        w, cov, obj = _posterior_batch(T, TT, n, f)
        eww = cov + w[:, :, None] * w[:, None, :]
        a += n.T @ eww.reshape(len(n), S * S)
        c += f.T @ w
        h += w.sum(axis=0)
        hh += eww.sum(axis=0)
        objective += obj
    return TvStats(a, c, h, hh, objective, len(N))


def _accumulate_chunk(chunk, T, offset, TT):
    return accumulate(T, *chunk, offset=offset, TT=TT)


def _chunk_summary(chunk):
    """(utterances, C, C*D, sum of F^2, sum of N) of a chunk, for the initial scale of T."""
    N, F = chunk
    return (len(N), N.shape[1], F.shape[1], float(np.sum(np.square(F, dtype=np.float64))),
            float(N.sum()))


class TotalVariability(BaseEstimator):
    """Total-variability matrix trained by EM, and fast i-vector extraction.

    Parameters
    ----------
    rank : int
        S, the i-vector dimension.
    n_iter : int
        EM iterations (at most, when ``tol`` is set).
    min_divergence : bool
        Apply the minimum-divergence re-estimation after each M-step.
    random_state : int or None
        Seed of the random initialisation of ``T``; None means 0.
    tol : float or None
        Stop once an E-step finds the average objective per utterance improved
        by less than ``tol`` times its magnitude. None (the default) runs all
        ``n_iter`` iterations, as Kaldi's recipes do, and then no
        convergence is claimed or warned about.

    Attributes
    ----------
    T_ : ndarray of shape (C * D, S), float64
        In the UBM-whitened space.
    n_components_, n_features_ : int
    objective_history_ : list of float
        Average EM objective per utterance before each M-step (non-decreasing).
    converged_ : bool
        Whether ``tol`` stopped training (always False when ``tol`` is None).
        With a ``tol`` that is not met within ``n_iter`` iterations, ``fit``
        warns with a :class:`~vpcore.errors.ConvergenceWarning` (scikit-learn's).
    n_iter_ : int
        E-steps run.
    """

    def __init__(self, rank=200, n_iter=10, min_divergence=True, random_state=None, tol=None):
        self.rank = rank
        self.n_iter = n_iter
        self.min_divergence = min_divergence
        self.random_state = random_state
        self.tol = tol

    def _validate(self):
        """Check every hyper-parameter; runs before any work on the data."""
        check_int("rank", self.rank, low=1, high=2000)
        check_int("n_iter", self.n_iter, low=1)
        if not isinstance(self.min_divergence, (bool, np.bool_)):
            raise ParameterError(f"min_divergence={self.min_divergence!r} must be True or False")
        if self.random_state is not None:
            check_int("random_state", self.random_state, low=0)
        if self.tol is not None:
            check_float("tol", self.tol, low=0.0)

    def fit(self, N, F, progress=None):
        """Train on statistics of U utterances: N (U, C) and F (U, C, D); returns self."""
        self._validate()
        N = check_array("N", N, ndim=2)
        F = check_array("F", F, ndim=3, dtype=np.float32)
        U, C = N.shape
        if F.shape[:2] != (U, C):
            raise ParameterError(f"F has shape {F.shape}, expected ({U}, {C}, D)")
        F = F.reshape(U, -1)
        chunks = [(N[i:i + 128], F[i:i + 128]) for i in range(0, U, 128)]
        return self.fit_chunks(chunks, progress=progress)

    def fit_chunks(self, chunks, executor=None, progress=None):
        """Train on statistics held in chunks, possibly on other machines; returns self.

        Parameters
        ----------
        chunks : list
            ``(N (u, C), F (u, C * D))`` pairs, or executor handles of them.
        executor : LocalExecutor or DaskExecutor, optional
            Runs the E-step on every chunk; the partial :class:`TvStats` are summed.
        """
        from .parallel import LocalExecutor

        self._validate()
        S = int(self.rank)
        executor = executor or LocalExecutor()
        summaries = executor.gather(executor.map(_chunk_summary, chunks))
        C, CD = summaries[0][1], summaries[0][2]
        U, sum_f2, sum_n = (sum(s[i] for s in summaries) for i in (0, 3, 4))
        if U < 2:
            raise ParameterError(f"N has {U} utterances; training needs at least 2")
        D = CD // C
        rng = check_random_state(self.random_state)
        # Scale the random start so T w has roughly the spread of the data.
        mean_n = max(sum_n / (U * C), 1e-3)
        spread = sum_f2 / (U * CD) / mean_n
        T = rng.standard_normal((CD, S)) * np.sqrt(max(spread, 1e-3) / (S * max(mean_n, 1.0)))
        self.n_components_, self.n_features_ = C, D
        offset = np.zeros(CD)
        self.objective_history_ = []
        self.converged_ = False
        for it in range(self.n_iter):
            TT = component_products(T, C).reshape(C, S * S)
            stats = sum(executor.gather(executor.map(_accumulate_chunk, chunks, T, offset, TT)))
            self.objective_history_.append(stats.objective / stats.count)
            self.n_iter_ = it + 1
            if progress:
                progress("tv", it, stats.objective / stats.count)
            if it and self.tol is not None and self._improved_less_than_tol():
                self.converged_ = True
                break
            T, offset = self._maximize(stats, C, D, S, offset)
        if self.tol is not None and not self.converged_:
            warnings.warn(f"TotalVariability did not converge in n_iter={self.n_iter} "
                          f"iterations (tol={self.tol}): increase n_iter or tol",
                          ConvergenceWarning, stacklevel=2)
        self.T_ = T
        self.offset_ = offset
        self._prepare()
        return self

    def _improved_less_than_tol(self):
        last, previous = self.objective_history_[-1], self.objective_history_[-2]
        return last - previous < self.tol * abs(last)

    def _maximize(self, stats, C, D, S, offset):
        A = stats.a.reshape(C, S, S)
        Cc = stats.c.reshape(C, D, S)
        # T_c = Cc_c A_c^{-1}. A tiny ridge keeps a component no utterance used
        # (A_c = 0, Cc_c = 0) solvable: its T_c becomes 0.
        ridge = 1e-10 * np.maximum(np.trace(A, axis1=1, axis2=2) / S, 1e-30)
        A = A + ridge[:, None, None] * np.eye(S)
        T = np.linalg.solve(A, np.swapaxes(Cc, 1, 2))  # (C, S, D)
        T = np.swapaxes(T, 1, 2).reshape(C * D, S)
        if self.min_divergence:
            # Fit the prior N(mean, cov) of w to the posteriors, then fold it into the
            # model (o + T mean, T chol(cov)) so that the prior is N(0, I) again.
            mean = stats.h / stats.count
            cov = stats.hh / stats.count - np.outer(mean, mean)
            try:
                chol = np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise ModelError("i-vector covariance is not positive definite in "
                                 "minimum-divergence step: use a smaller rank") from None
            offset = offset + T @ mean
            T = T @ chol
        return T, offset

    # -- extraction -----------------------------------------------------------------
    def set_fitted(self, T, n_components, offset=None):
        """Install a trained matrix (C*D, S) and offset (used when loading a model); returns self.

        Never changes a hyper-parameter.
        """
        T = check_array("T", T, ndim=2)
        if T.shape[0] % n_components:
            raise ModelError(f"T has {T.shape[0]} rows, not a multiple of C={n_components}")
        offset = np.zeros(T.shape[0]) if offset is None else check_array("offset", offset, ndim=1)
        if offset.shape != (T.shape[0],):
            raise ModelError(f"offset has shape {offset.shape}, expected ({T.shape[0]},)")
        self.T_ = T
        self.offset_ = offset
        self.n_components_ = n_components
        self.n_features_ = T.shape[0] // n_components
        self._prepare()
        return self

    def _prepare(self):
        """Derived quantities for fast extraction: packed T_c'T_c and a float32 T.

        ``_tt_packed`` holds the upper triangles of every ``T_c'T_c`` row by row
        (float32, (C, S (S + 1) / 2)); ``_packed_to_upper`` maps its columns to
        the upper triangle of a column-major S x S matrix, which is what
        LAPACK's Cholesky reads, so building the precision ``L`` of a take is
        one matrix-vector product and one scatter.
        """
        C, D, S = self.n_components_, self.n_features_, self.T_.shape[1]
        iu = np.triu_indices(S)
        TT = component_products(self.T_, C)
        self._tt_packed = np.ascontiguousarray(TT[:, iu[0], iu[1]], dtype=np.float32)
        self._iu = iu
        self._packed_to_upper = iu[1] * S + iu[0]  # (i, j), i <= j, at j * S + i
        self._T32 = np.ascontiguousarray(self.T_, dtype=np.float32)
        self._offset_cd = np.ascontiguousarray(self.offset_.reshape(C, D))

    @property
    def cache_bytes(self):
        """Memory held by the precomputed extraction terms, in bytes."""
        check_fitted(self, "_tt_packed")
        return self._tt_packed.nbytes + self._T32.nbytes

    def transform_one(self, n, f):
        """I-vector of one utterance from its statistics n (C,) and f (C, D); shape (S,)."""
        check_fitted(self, "T_")
        S = self.T_.shape[1]
        n = np.asarray(n, dtype=np.float64)
        flat = np.empty(S * S)
        flat[self._packed_to_upper] = n.astype(np.float32) @ self._tt_packed
        flat[::S + 1] += 1.0
        # column-major S x S with L in its upper triangle (the rest is never read)
        L = flat.reshape(S, S, order="F")
        centred = np.asarray(f, dtype=np.float64).reshape(self._offset_cd.shape)
        centred = centred - n[:, None] * self._offset_cd
        b = centred.reshape(-1).astype(np.float32) @ self._T32
        chol, info = dpotrf(L, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            raise ModelError("i-vector precision matrix is not positive definite")
        w, info = dpotrs(chol, b.astype(np.float64), lower=0)
        if info != 0:  # pragma: no cover - only on invalid arguments
            raise ModelError(f"i-vector solve failed (LAPACK info={info})")
        return w

    def transform(self, N, F):
        """I-vectors of U utterances: N (U, C), F (U, C, D) -> (U, S)."""
        check_fitted(self, "T_")
        N = np.atleast_2d(N)
        F = np.asarray(F).reshape(len(N), -1)
        return np.stack([self.transform_one(n, f) for n, f in zip(N, F)])
