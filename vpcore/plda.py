"""Two-covariance PLDA: training by EM and closed-form log-likelihood ratios.

A backend vector is ``x = mu + y + e`` with the speaker variable
``y ~ N(0, B)`` and the residual ``e ~ N(0, W)``. After training, the model
is diagonalised once (``V' W V = I``, ``V' B V = diag(psi)``), which turns
every score into a sum over independent dimensions: scoring a probe against
an enrolment of ``n`` utterances needs only their mean and ``n``, and scoring
one probe against many enrolments is one matrix-vector product.

References
----------
S. Ioffe, "Probabilistic linear discriminant analysis", ECCV 2006.
N. Brümmer, E. de Villiers, "The speaker partitioning problem", Odyssey 2010.
Kaldi ``ivector/plda.cc`` (the same diagonalised scoring).
"""

import warnings

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator

from ._validation import check_array, check_fitted, check_float, check_int
from .backend import _check_labels, within_class_scatter
from .errors import ConvergenceWarning, ModelError, ParameterError

__all__ = ["PLDA"]


def _clip_pd(M, floor_ratio=1e-6):
    """Symmetric matrix with eigenvalues clipped to a small positive floor."""
    M = 0.5 * (M + M.T)
    evals, evecs = np.linalg.eigh(M)
    floor = max(floor_ratio * max(evals.max(), 1e-12), 1e-12)
    return (evecs * np.maximum(evals, floor)) @ evecs.T


class PLDA(BaseEstimator):
    """Two-covariance PLDA.

    Parameters
    ----------
    n_iter : int
        EM iterations after the closed-form start (at most, when ``tol`` is set).
    tol : float or None
        Stop once an EM step changes ``B`` and ``W`` each by less than ``tol``
        relative to their size (Frobenius norm). None (the default) runs all
        ``n_iter`` iterations, and then no convergence is claimed or warned about.

    Attributes
    ----------
    mean_ : ndarray of shape (R,)
    between_ : ndarray of shape (R, R)
        B, the between-speaker covariance.
    within_ : ndarray of shape (R, R)
        W, the within-speaker covariance.
    transform_ : ndarray of shape (R, R)
        V, with ``V' W V = I`` and ``V' B V = diag(psi_)``.
    psi_ : ndarray of shape (R,)
        Between-speaker variances in the diagonal space.
    converged_ : bool
        Whether ``tol`` stopped training (always False when ``tol`` is None).
        With a ``tol`` that is not met within ``n_iter`` steps, ``fit`` warns
        with a :class:`~vpcore.errors.ConvergenceWarning` (scikit-learn's).
    n_iter_ : int
        EM steps run.
    """

    def __init__(self, n_iter=10, tol=None):
        self.n_iter = n_iter
        self.tol = tol

    def fit(self, X, y):
        """Train on vectors X (M, R) of speakers y (M,); returns self."""
        n_iter = check_int("n_iter", self.n_iter, low=0)
        if self.tol is not None:
            check_float("tol", self.tol, low=0.0)
        X = check_array("X", X, ndim=2, min_rows=3)
        classes, inverse = _check_labels(X, y)
        counts = np.bincount(inverse).astype(np.float64)
        if counts.max() < 2:
            raise ParameterError("y gives every speaker one vector: PLDA needs speakers with "
                                 "several vectors to learn the within-speaker covariance")
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        W, means, _ = within_class_scatter(Xc, inverse, len(classes))
        # Closed-form start: the covariance of speaker means contains W / n_s; remove it.
        B = means.T @ means / len(classes) - W * np.mean(1.0 / counts)
        W, B = _clip_pd(W), _clip_pd(B)
        sums = means * counts[:, None]
        self.converged_, self.n_iter_ = False, 0
        for _ in range(n_iter):
            W_new, B_new = self._em_step(Xc, inverse, counts, sums, W, B)
            self.n_iter_ += 1
            change = max(np.linalg.norm(W_new - W) / np.linalg.norm(W),
                         np.linalg.norm(B_new - B) / np.linalg.norm(B))
            W, B = W_new, B_new
            if self.tol is not None and change < self.tol:
                self.converged_ = True
                break
        if self.tol is not None and n_iter and not self.converged_:
            warnings.warn(f"PLDA did not converge in n_iter={n_iter} EM steps "
                          f"(tol={self.tol}): increase n_iter or tol", ConvergenceWarning,
                          stacklevel=2)
        self.within_, self.between_ = W, B
        self._diagonalise()
        return self

    @staticmethod
    def _em_step(Xc, inverse, counts, sums, W, B):
        R = len(W)
        W_inv = np.linalg.inv(W)
        B_inv = np.linalg.inv(B)
        y_hat = np.empty((len(counts), R))
        cov_sum_b = np.zeros((R, R))
        cov_sum_w = np.zeros((R, R))
        for n in np.unique(counts):
            idx = np.flatnonzero(counts == n)
            cov = np.linalg.inv(B_inv + n * W_inv)
            y_hat[idx] = sums[idx] @ W_inv @ cov  # cov symmetric
            cov_sum_b += len(idx) * cov
            cov_sum_w += len(idx) * n * cov
        B_new = (y_hat.T @ y_hat + cov_sum_b) / len(counts)
        resid = Xc - y_hat[inverse]
        W_new = (resid.T @ resid + cov_sum_w) / len(Xc)
        return _clip_pd(W_new), _clip_pd(B_new)

    def _diagonalise(self):
        try:
            psi, V = scipy.linalg.eigh(self.between_, self.within_)
        except np.linalg.LinAlgError:
            raise ModelError("PLDA covariances cannot be diagonalised jointly") from None
        self.psi_ = np.maximum(psi, 1e-10)
        self.transform_ = V

    def set_fitted(self, mean, between, within):
        """Install fitted arrays (used when loading a model); returns self.

        Never changes a hyper-parameter.
        """
        self.mean_ = check_array("mean", mean, ndim=1)
        self.between_ = check_array("between", between, ndim=2)
        self.within_ = check_array("within", within, ndim=2)
        R = len(self.mean_)
        if self.between_.shape != (R, R) or self.within_.shape != (R, R):
            raise ModelError("PLDA arrays disagree in shape")
        self._diagonalise()
        return self

    # -- scoring --------------------------------------------------------------------
    def project(self, X):
        """Map backend vectors into the diagonal space: (M, R) -> (M, R)."""
        check_fitted(self, "transform_")
        X = check_array("X", np.atleast_2d(X), ndim=2, n_cols=len(self.mean_))
        return (X - self.mean_) @ self.transform_

    def enrol_terms(self, n):
        """Per-dimension factors for an enrolment of ``n`` vectors.

        Returns ``a`` (the shrinkage of the enrolment mean) and ``var`` (the
        predictive variance of a probe), each of shape (R,).
        """
        psi = self.psi_
        a = n * psi / (n * psi + 1.0)
        var = 1.0 + psi / (n * psi + 1.0)
        return a, var

    def quad_term(self, m, n):
        """``sum_k a_k^2 m_k^2 / var_k`` of enrolment means m (..., R) with count n."""
        a, var = self.enrol_terms(n)
        return np.sum((a * a / var) * m * m, axis=-1)

    def score_projected(self, means, n, probes):
        """LLRs of projected probes against projected enrolment means of ``n`` vectors each.

        Parameters
        ----------
        means : ndarray of shape (E, R)
        n : float
            Vectors behind every enrolment mean.
        probes : ndarray of shape (P, R)

        Returns
        -------
        llr : ndarray of shape (E, P)
        """
        a, var = self.enrol_terms(n)
        total = 1.0 + self.psi_
        const = -0.5 * (np.log(var).sum() - np.log(total).sum())
        probe_part = -0.5 * (probes**2 @ (1.0 / var - 1.0 / total))  # (P,)
        cross = means @ (probes * (a / var)).T  # (E, P)
        quad = -0.5 * self.quad_term(means, n)  # (E,)
        return cross + quad[:, None] + probe_part[None, :] + const

    def score(self, enrol, probe):
        """LLR of same vs different speaker: enrolment vectors (n, R) against one probe (R,)."""
        enrol = self.project(enrol)
        probe = self.project(probe)
        return float(self.score_projected(enrol.mean(axis=0, keepdims=True), len(enrol),
                                          probe)[0, 0])
