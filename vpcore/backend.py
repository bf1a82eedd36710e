"""I-vector backend: centring, LDA, WCCN and length normalisation.

Each stage is a scikit-learn transformer, so researchers can recombine them
in a :class:`sklearn.pipeline.Pipeline`. :class:`Backend` fits the chosen
chain once and folds its linear part into one affine map, so training,
enrolment and test always apply the very same transform.

References
----------
N. Dehak et al., "Front-end factor analysis for speaker verification", 2011
(LDA and WCCN on i-vectors).
D. Garcia-Romero, C. Espy-Wilson, "Analysis of i-vector length
normalization in speaker recognition systems", Interspeech 2011.
"""

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin

from ._validation import check_array, check_fitted, check_float, check_int
from .errors import ParameterError

__all__ = ["Center", "LDA", "WCCN", "LengthNorm", "Backend", "within_class_scatter"]


def _check_labels(X, y):
    y = np.asarray(y)
    if y.shape != (len(X),):
        raise ParameterError(f"y has shape {y.shape}, expected ({len(X)},)")
    classes, inverse = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ParameterError(f"y has {len(classes)} distinct speaker(s); at least 2 are needed")
    return classes, inverse


def _check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"{name}={value!r} must be True or False")


def within_class_scatter(X, inverse, n_classes):
    """Within-class covariance (pooled, divided by the number of samples) and class means."""
    counts = np.bincount(inverse, minlength=n_classes).astype(np.float64)
    means = np.zeros((n_classes, X.shape[1]))
    np.add.at(means, inverse, X)
    means /= counts[:, None]
    centred = X - means[inverse]
    return centred.T @ centred / len(X), means, counts


class Center(TransformerMixin, BaseEstimator):
    """Subtract the training mean."""

    def fit(self, X, y=None):
        X = check_array("X", X, ndim=2, min_rows=1)
        self.mean_ = X.mean(axis=0)
        return self

    def set_fitted(self, mean):
        """Install the fitted mean (S,); returns self."""
        self.mean_ = check_array("mean", mean, ndim=1)
        return self

    def transform(self, X):
        check_fitted(self, "mean_")
        return check_array("X", X, ndim=2, n_cols=len(self.mean_)) - self.mean_


class LDA(TransformerMixin, BaseEstimator):
    """Linear discriminant analysis that also whitens the within-class covariance.

    Solves ``S_b v = lambda S_w v`` with eigenvectors normalised so that
    ``V' S_w V = I``; keeps the ``n_components`` largest ``lambda``.

    Parameters
    ----------
    n_components : int
    reg : float
        Added to the diagonal of ``S_w`` relative to its mean eigenvalue.
    """

    def __init__(self, n_components=150, reg=1e-6):
        self.n_components = n_components
        self.reg = reg

    def fit(self, X, y):
        check_int("n_components", self.n_components, low=1)
        check_float("reg", self.reg, low=0.0)
        X = check_array("X", X, ndim=2, min_rows=2)
        classes, inverse = _check_labels(X, y)
        k = check_int("n_components", self.n_components, low=1, high=X.shape[1])
        sw, means, counts = within_class_scatter(X, inverse, len(classes))
        mu = X.mean(axis=0)
        dm = (means - mu) * np.sqrt(counts[:, None] / len(X))
        sb = dm.T @ dm
        sw = sw + self.reg * np.trace(sw) / len(sw) * np.eye(len(sw))
        evals, evecs = scipy.linalg.eigh(sb, sw)
        order = np.argsort(evals)[::-1][:k]
        self.components_ = evecs[:, order]
        self.explained_ratio_ = evals[order]
        return self

    def set_fitted(self, components, explained_ratio=None):
        """Install the fitted projection (S, R) (and its eigenvalues (R,)); returns self."""
        self.components_ = check_array("components", components, ndim=2)
        if explained_ratio is not None:
            self.explained_ratio_ = check_array("explained_ratio", explained_ratio, ndim=1)
        return self

    def transform(self, X):
        check_fitted(self, "components_")
        X = check_array("X", X, ndim=2, n_cols=self.components_.shape[0])
        return X @ self.components_


class WCCN(TransformerMixin, BaseEstimator):
    """Within-class covariance normalisation: ``x -> B' x`` with ``B B' = S_w^{-1}``.

    Parameters
    ----------
    reg : float
        Diagonal loading relative to the mean eigenvalue of ``S_w``.
    """

    def __init__(self, reg=1e-6):
        self.reg = reg

    def fit(self, X, y):
        check_float("reg", self.reg, low=0.0)
        X = check_array("X", X, ndim=2, min_rows=2)
        classes, inverse = _check_labels(X, y)
        sw, _, _ = within_class_scatter(X, inverse, len(classes))
        sw = sw + self.reg * np.trace(sw) / len(sw) * np.eye(len(sw))
        self.components_ = np.linalg.cholesky(np.linalg.inv(sw))
        return self

    def set_fitted(self, components):
        """Install the fitted map (R, R); returns self."""
        self.components_ = check_array("components", components, ndim=2)
        return self

    def transform(self, X):
        check_fitted(self, "components_")
        X = check_array("X", X, ndim=2, n_cols=self.components_.shape[0])
        return X @ self.components_


class LengthNorm(TransformerMixin, BaseEstimator):
    """Scale each row to norm ``sqrt(R)`` (Kaldi's convention), keeping unit variance per dim.

    A row of zeros stays zero. Each row is first divided by its largest
    magnitude, so rows far from 1 in scale (whose squares would underflow to
    subnormals or overflow) still come out at norm ``sqrt(R)`` to rounding.
    """

    def fit(self, X, y=None):
        self.n_features_in_ = check_array("X", X, ndim=2).shape[1]
        return self

    def transform(self, X):
        X = check_array("X", X, ndim=2)
        peak = np.max(np.abs(X), axis=1, keepdims=True) if X.size else X[:, :1]
        X = X / np.where(peak > 0, peak, 1.0)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X * (np.sqrt(X.shape[1]) / np.where(norms > 0, norms, 1.0))


class Backend(TransformerMixin, BaseEstimator):
    """The chain centre -> LDA -> WCCN -> length-norm, folded into one affine map.

    Parameters
    ----------
    lda_dim : int or None
        R, the LDA output dimension; None skips LDA.
    wccn : bool
        Apply WCCN after LDA (redundant when LDA already whitens within-class).
    length_norm : bool

    Attributes
    ----------
    mean_ : ndarray of shape (S,)
    projection_ : ndarray of shape (S, R)
    """

    def __init__(self, lda_dim=150, wccn=False, length_norm=True):
        self.lda_dim = lda_dim
        self.wccn = wccn
        self.length_norm = length_norm

    def _validate(self):
        if self.lda_dim is not None:
            check_int("lda_dim", self.lda_dim, low=1)
        _check_bool("wccn", self.wccn)
        _check_bool("length_norm", self.length_norm)

    def fit(self, X, y):
        self._validate()
        X = check_array("X", X, ndim=2, min_rows=2)
        center = Center().fit(X)
        Z = center.transform(X)
        projection = np.eye(X.shape[1])
        if self.lda_dim is not None:
            lda = LDA(n_components=min(self.lda_dim, X.shape[1])).fit(Z, y)
            projection = lda.components_
            Z = Z @ projection
        if self.wccn:
            wccn = WCCN().fit(Z, y)
            projection = projection @ wccn.components_
        self.mean_ = center.mean_
        self.projection_ = projection
        return self

    def set_fitted(self, mean, projection):
        """Install fitted arrays (used when loading a model); returns self.

        Never changes a hyper-parameter.
        """
        self.mean_ = check_array("mean", mean, ndim=1)
        self.projection_ = check_array("projection", projection, ndim=2)
        if self.projection_.shape[0] != len(self.mean_):
            raise ParameterError(f"projection rows {self.projection_.shape[0]} != mean length "
                                 f"{len(self.mean_)}")
        return self

    def transform(self, X):
        check_fitted(self, "projection_")
        X = check_array("X", X, ndim=2, n_cols=len(self.mean_))
        Z = (X - self.mean_) @ self.projection_
        return LengthNorm().transform(Z) if self.length_norm else Z
