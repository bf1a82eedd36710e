"""Score calibration: map raw verification scores to log-likelihood ratios.

A raw score (cosine, PLDA) only ranks trials; a threshold on it means nothing
across systems or conditions. :class:`LogisticCalibration` learns an affine
map ``llr = a * score + b`` so that the output is a natural-log likelihood
ratio, and turns it into a posterior probability of "same speaker" under a
stated prior. That posterior is the ``confidence`` the service reports.
"""

import math
import warnings
from collections.abc import Mapping

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator

from ._validation import check_array, check_fitted, check_float, check_scores_labels
from .errors import ConvergenceWarning, ModelError, ParameterError

__all__ = ["LogisticCalibration"]


def _check_prior(name, value):
    """Return ``value`` as a float in the open interval (0, 1)."""
    value = check_float(name, value)
    if not 0.0 < value < 1.0:
        raise ParameterError(f"{name}={value} must be in the open interval (0, 1)")
    return value


def _logit(p):
    return math.log(p) - math.log1p(-p)


class LogisticCalibration(BaseEstimator):
    """Affine score-to-LLR calibration by prior-weighted logistic regression.

    The fitted model is ``llr(s) = a_ * s + b_``, a natural-log likelihood
    ratio, and the posterior of a target (same speaker) under the prior
    ``prior`` is ``sigmoid(llr(s) + logit(prior))``.

    Parameters
    ----------
    prior : float, default=0.5
        Prior probability of a target trial, in (0, 1). It weights the two
        classes during training and is the prior of :meth:`predict_proba`.
    reg : float, default=1e-4
        Strength of an L2 penalty on the slope, >= 0. The penalty is
        ``reg / (2 N) * (a * std(scores))**2`` for N training trials: it is
        measured on standardised scores, so it does not depend on the score
        scale, and it is divided by N, so it weighs like ``reg`` times one
        trial and its pull vanishes as the training set grows. Its job is to
        keep the slope finite when the training scores are separable. The
        offset is not penalised.

    Attributes
    ----------
    a_ : float
        Slope, > 0.
    b_ : float
        Offset.
    n_iter_ : int
        Iterations used by the optimiser.
    converged_ : bool
        Whether the optimiser converged; when not, ``fit`` warns with a
        :class:`~vpcore.errors.ConvergenceWarning` (scikit-learn's).

    Notes
    -----
    ``fit`` minimises, over ``(a, b)``, the prior-weighted cross-entropy of
    BOSARIS/FoCal

    .. math::

        \\frac{\\pi}{N_{tar}} \\sum_{tar} \\log(1 + e^{-(a s + b + \\mathrm{logit}\\,\\pi)})
        + \\frac{1 - \\pi}{N_{non}} \\sum_{non} \\log(1 + e^{a s + b + \\mathrm{logit}\\,\\pi})

    plus the penalty. Targets get total weight ``prior`` and non-targets
    ``1 - prior`` whatever their counts, and the fixed offset ``logit(prior)``
    makes ``a s + b`` the log-likelihood ratio rather than the posterior
    log-odds. The objective is convex; it is minimised by L-BFGS
    (``scipy.optimize.minimize``) with its analytic gradient, on standardised
    scores for good conditioning, and the solution is mapped back to the
    original score scale. All log-losses use ``np.logaddexp`` and all
    sigmoids ``scipy.special.expit``, so extreme scores neither overflow nor
    give NaN.

    Unlike scikit-learn classifiers, :meth:`predict_proba` returns the
    target posterior only, with the shape of its input.

    References
    ----------
    .. [1] N. Brümmer, J. du Preez, "Application-independent evaluation of
       speaker detection", Computer Speech & Language 20(2-3), 230-275, 2006.
    .. [2] N. Brümmer, E. de Villiers, "The BOSARIS Toolkit: Theory,
       Algorithms and Code for Surviving the New DCF", arXiv:1304.2865, 2011.
    .. [3] D. A. van Leeuwen, N. Brümmer, "An introduction to
       application-independent evaluation of speaker recognition systems",
       Speaker Classification I, LNCS 4343, 2007.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> scores = np.r_[rng.normal(1, 1, 500), rng.normal(-1, 1, 500)]
    >>> labels = np.r_[np.ones(500), np.zeros(500)]
    >>> cal = LogisticCalibration().fit(scores, labels)
    >>> bool(0 < cal.predict_proba(0.0) < 1)
    True
    """

    def __init__(self, prior=0.5, reg=1e-4):
        self.prior = prior
        self.reg = reg

    def fit(self, scores, labels):
        """Learn ``a_`` and ``b_`` from scored trials with known labels.

        Parameters
        ----------
        scores : array_like, shape (N,)
            Raw scores, higher meaning more likely the same speaker.
        labels : array_like of bool or {0, 1}, shape (N,)
            ``True``/``1`` for target trials. At least one of each class.

        Returns
        -------
        self : LogisticCalibration

        Raises
        ------
        ParameterError
            On invalid input or hyper-parameters, or when the scores are not
            discriminative (all equal, or a fitted slope ``<= 0``: targets do
            not score higher than non-targets).

        Warns
        -----
        ConvergenceWarning
            If the optimiser stops before converging.
        """
        prior = _check_prior("prior", self.prior)
        reg = check_float("reg", self.reg, low=0.0)
        scores, labels = check_scores_labels(scores, labels)

        mean = float(np.mean(scores))
        std = float(np.std(scores))
        if not std > 0.0:
            raise ParameterError(
                f"scores are all equal to {scores[0]!r}: they are not discriminative "
                "and cannot be calibrated"
            )
        x = (scores - mean) / std
        n_tar = np.count_nonzero(labels)
        n_non = labels.shape[0] - n_tar
        weight = np.where(labels, prior / n_tar, (1.0 - prior) / n_non)
        sign = np.where(labels, 1.0, -1.0)
        offset = _logit(prior)
        penalty = reg / labels.shape[0]

        def objective(theta):
            a, b = theta
            margin = sign * (a * x + b + offset)
            loss = np.dot(weight, np.logaddexp(0.0, -margin)) + 0.5 * penalty * a * a
            dz = -weight * sign * expit(-margin)  # d loss / d (a x + b)
            grad = np.array([np.dot(dz, x) + penalty * a, np.sum(dz)])
            return float(loss), grad

        res = minimize(
            objective,
            x0=np.zeros(2),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-10},
        )
        if not res.success:
            warnings.warn(
                f"LogisticCalibration did not converge ({res.message}); "
                "increase reg if the training scores are separable",
                ConvergenceWarning,
                stacklevel=2,
            )
        a_std, b_std = (float(v) for v in res.x)
        a = a_std / std
        if not a > 0.0:
            raise ParameterError(
                f"scores are not discriminative: the fitted slope a={a:.6g} is <= 0, "
                "so target scores are not higher than non-target scores; check "
                "the sign of the scores and the labels"
            )
        self.set_fitted(a, b_std - a_std * mean / std)
        self.n_iter_ = int(res.nit)
        self.converged_ = bool(res.success)
        return self

    def set_fitted(self, a, b):
        """Install a fitted slope ``a`` (> 0) and offset ``b``; returns self.

        Never changes a hyper-parameter (``prior`` and ``reg`` stay as given).

        Raises
        ------
        ParameterError
            If ``a`` is not a finite number > 0 or ``b`` is not finite.
        """
        self.a_ = check_float("a", a, low=0.0, low_inclusive=False)
        self.b_ = check_float("b", b)
        return self

    def _scores(self, scores):
        check_fitted(self, "a_")
        s = check_array("scores", scores)
        if s.ndim > 1:
            raise ParameterError(f"scores must be a number or 1-D, got shape {s.shape}")
        return s

    def predict_llr(self, scores):
        """Calibrated natural-log likelihood ratios ``a_ * scores + b_``.

        Parameters
        ----------
        scores : float or array_like, shape (N,)
            Raw scores.

        Returns
        -------
        float or ndarray, shape (N,)
            LLRs, same shape as ``scores``.

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        ParameterError
            If ``scores`` is not finite or has more than one dimension.
        """
        s = self._scores(scores)
        with np.errstate(over="ignore"):  # |score| near 1e308: the LLR is +-inf
            llr = self.a_ * s + self.b_
        return llr[()] if llr.ndim == 0 else llr

    def predict_proba(self, scores):
        """Posterior probability that a trial is a target (same speaker).

        ``expit(predict_llr(scores) + logit(prior))``: always in [0, 1] and
        never NaN, even for scores such as +-1e6.

        Parameters
        ----------
        scores : float or array_like, shape (N,)
            Raw scores.

        Returns
        -------
        float or ndarray, shape (N,)
            Posteriors in [0, 1], same shape as ``scores`` (not the two-column
            layout of scikit-learn classifiers).

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        ParameterError
            If ``scores`` is invalid or ``prior`` is not in (0, 1).
        """
        s = self._scores(scores)
        offset = _logit(_check_prior("prior", self.prior))
        with np.errstate(over="ignore"):
            proba = expit(self.a_ * s + self.b_ + offset)
        return proba[()] if proba.ndim == 0 else proba

    def to_dict(self):
        """Primary parameters, for a model file.

        Returns
        -------
        dict
            ``{"a": float, "b": float, "prior": float}``.

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        """
        check_fitted(self, "a_")
        return {"a": float(self.a_), "b": float(self.b_), "prior": float(self.prior)}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted calibration from :meth:`to_dict` output.

        Parameters
        ----------
        d : mapping
            With keys ``"a"`` (finite, > 0), ``"b"`` (finite) and ``"prior"``
            (in (0, 1)). Other keys are ignored.

        Returns
        -------
        LogisticCalibration
            A fitted instance (``reg`` takes its default value).

        Raises
        ------
        ModelError
            If a key is missing or a value is invalid.
        """
        if not isinstance(d, Mapping):
            raise ModelError(f"calibration parameters must be a mapping, got {type(d).__name__}")
        missing = [k for k in ("a", "b", "prior") if k not in d]
        if missing:
            raise ModelError(f"calibration parameters lack the keys {missing}")
        try:
            return cls(prior=_check_prior("prior", d["prior"])).set_fitted(d["a"], d["b"])
        except ParameterError as exc:
            raise ModelError(f"invalid calibration parameters: {exc}") from None
