"""1-v-N scoring: one probe against a matrix of enrolled voiceprints.

A :class:`Gallery` wraps the packed voiceprint rows (:attr:`Voiceprint.vector`,
columns named by :class:`~vpcore.voiceprint.RowLayout`) of one model, prepared
once in float32 by the model's :class:`~vpcore.scoring.Scorer`, so that scoring
a probe against all of them costs one matrix-vector product plus a few passes
over contiguous N-vectors. The scores are those of every other path of the
model (the scorer is the one implementation); only the best ``top_n`` are
calibrated.

With ``adaptive_cohort=True`` the probe side of AS-norm pools the cohort with
the probe's scores against the gallery's own voiceprints, each row's own score
left out (:func:`vpcore.normalisation.pooled_top_stats`): the enrolled
population, recorded where the service runs, then tells the normalisation
what an impostor's score looks like there. Above :data:`ADAPTIVE_POOL`
voiceprints the pool is a fixed, evenly spaced subset of them, kept as a
contiguous copy.
"""

import numpy as np

from ._validation import check_fitted, check_int
from .errors import ParameterError
from .voiceprint import Take, check_takes

__all__ = ["Gallery", "ADAPTIVE_POOL"]

#: Most voiceprints of a gallery that enter the adaptive in-domain cohort.
ADAPTIVE_POOL = 10_000


class Gallery:
    """Voiceprint rows of one model, prepared for fast 1-v-N scoring.

    Parameters
    ----------
    model : VoiceprintModel
        The fitted model that made the voiceprints; its ``scorer_`` scores.
    V : array_like of shape (N, model.voiceprint_dim)
        Rows of :attr:`Voiceprint.vector`. A C-contiguous float32 array is
        used without copying (its mean part is read in place); keep it
        unchanged while the gallery is in use.
    adaptive_cohort : bool, default False
        Pool the probe's scores against the gallery's voiceprints (at most
        :data:`ADAPTIVE_POOL` of them) with the cohort on the probe side of
        AS-norm, each row's own score left out. No effect for a model without
        AS-norm.

    Attributes
    ----------
    n_voiceprints : int
    rows_ : PreparedRows
        The rows as the scorer lays them out (float32).
    counts_ : ndarray of shape (K,)
        The distinct take counts of the rows.
    pool_ : ndarray of int or None
        Rows of the adaptive in-domain cohort (None: every row, or no adaptive cohort).

    Examples
    --------
    >>> gallery = Gallery(model, np.stack([vp.vector for vp in voiceprints]))  # doctest: +SKIP
    >>> rows, llrs, confidences = gallery.search(model.extract(probe), top_n=3)  # doctest: +SKIP
    """

    def __init__(self, model, V, adaptive_cohort=False):
        check_fitted(model, "scorer_")
        if not isinstance(adaptive_cohort, (bool, np.bool_)):
            raise ParameterError(f"adaptive_cohort must be True or False, got "
                                 f"{adaptive_cohort!r}")
        self.model = model
        self.scorer = model.scorer_
        self.rows_ = self.scorer.prepare(V, np.float32)
        self.counts_ = self.rows_.counts
        self.adaptive_cohort = bool(adaptive_cohort) and self.scorer.asnorm_top is not None
        self.pool_, self._pool_rows = None, None
        if self.adaptive_cohort and len(self.rows_) > ADAPTIVE_POOL:
            self.pool_ = np.unique(np.linspace(0, len(self.rows_) - 1, ADAPTIVE_POOL)
                                   .round().astype(np.int64))
            self._pool_rows = self.scorer.prepare(
                np.ascontiguousarray(self.rows_.matrix[self.pool_]), np.float32, name="pool")

    @property
    def n_voiceprints(self):
        return len(self.rows_)

    def __len__(self):
        return self.n_voiceprints

    # ------------------------------------------------------------------ scoring ---
    def _probe(self, take):
        """The probe's PLDA-space vector, checked against the model."""
        if not isinstance(take, Take):
            take = self.model.extract(take)
        return check_takes([take], self.model.fingerprint, "take")[0].vector.astype(np.float64)

    def scores(self, take, rows=None):
        """Normalised scores of ``take`` against every row (or the given ``rows``).

        Parameters
        ----------
        take : Take or ndarray (waveform)
        rows : array_like of int or None
            Row indices to score; None scores all.

        Returns
        -------
        ndarray of shape (N,) or (len(rows),), float32
            The model's normalised LLRs (AS-norm when enabled), as
            :meth:`VoiceprintModel.verify` computes them one at a time.
        """
        z = self._probe(take)
        rows = self._check_rows(rows)
        s = self._scores(z, rows)
        if not np.all(np.isfinite(s)):  # cheaper than checking the whole matrix up front
            bad = int(np.flatnonzero(~np.isfinite(s))[0])
            bad = bad if rows is None else int(rows[bad])
            raise ParameterError(f"V[{bad}] gives a non-finite score: the row holds NaN, "
                                 f"infinity or values out of float32 range")
        return s

    def _scores(self, z, rows):
        scorer = self.scorer
        if not self.adaptive_cohort or len(self.rows_) == 0:
            return scorer.scores(self.rows_, z, rows)[:, 0]
        if self.pool_ is None:  # every row is in the pool: one product gives both
            raw = scorer.raw(self.rows_, z)[:, 0]
            in_domain = raw.astype(np.float64)
            own = np.arange(len(raw)) if rows is None else rows
            llr = (raw if rows is None else raw[rows])[:, None]
        else:
            in_domain = scorer.raw(self._pool_rows, z)[:, 0].astype(np.float64)
            own = np.arange(len(self.rows_)) if rows is None else rows
            at = np.minimum(np.searchsorted(self.pool_, own), len(self.pool_) - 1)
            own = np.where(self.pool_[at] == own, at, -1)
            llr = scorer.raw(self.rows_, z, rows)
        return scorer.normalise(llr, self.rows_, z, rows, in_domain, own)[:, 0]

    def score_vectors(self, take, V, own=None):
        """Normalised scores of ``take`` against rows ``V`` that are not in the gallery.

        The gallery's voiceprints still form the adaptive in-domain cohort (when
        it is on); ``own`` is the gallery row each of ``V`` replaces (left out
        of the pool), or -1.

        Returns
        -------
        ndarray of shape (len(V),), float32
        """
        z = self._probe(take)
        extra = self.scorer.prepare(V, np.float32, name="V")
        if not self.adaptive_cohort or len(self.rows_) == 0:
            return self.scorer.scores(extra, z)[:, 0]
        own = np.full(len(extra), -1, dtype=np.int64) if own is None else np.asarray(own)
        own = self._check_rows(own, allow=-1, name="own")
        if len(own) != len(extra):
            raise ParameterError(f"own has {len(own)} entries for {len(extra)} rows of V")
        pooled = self.rows_ if self.pool_ is None else self._pool_rows
        if self.pool_ is not None:
            at = np.minimum(np.searchsorted(self.pool_, own), len(self.pool_) - 1)
            own = np.where((own >= 0) & (self.pool_[at] == own), at, -1)
        in_domain = self.scorer.raw(pooled, z)[:, 0].astype(np.float64)
        return self.scorer.normalise(self.scorer.raw(extra, z), extra, z, None, in_domain,
                                     own)[:, 0]

    def search(self, take, top_n, rows=None):
        """The ``top_n`` best-scoring rows for ``take``, best first.

        Parameters
        ----------
        take : Take or ndarray (waveform)
        top_n : int
            At least 1; fewer results when fewer rows are searched.
        rows : array_like of int or None
            Restrict the search to these row indices (e.g. a group); None: all.

        Returns
        -------
        indices : ndarray of int
            Row indices into the gallery, best first; ties by row index.
        llrs : ndarray of float64
            Their normalised scores.
        confidences : ndarray of float64
            Their calibrated probabilities of "same speaker", in [0, 1].
        """
        top_n = check_int("top_n", top_n, low=1)
        rows = self._check_rows(rows)
        s = self.scores(take, rows)
        k = min(top_n, len(s))
        if k == 0:
            empty = np.zeros(0)
            return np.zeros(0, dtype=np.int64), empty, empty
        if k < len(s):
            kth = s[np.argpartition(s, len(s) - k)[len(s) - k]]
            cand = np.flatnonzero(s >= kth)  # every row tied with the k-th stays a candidate
        else:
            cand = np.arange(len(s))
        best = cand[np.lexsort((cand, -s[cand]))[:k]]
        llrs = s[best].astype(np.float64)
        indices = best if rows is None else rows[best]
        return indices, llrs, self.scorer.confidence(llrs)

    def _check_rows(self, rows, allow=None, name="rows"):
        if rows is None:
            return None
        rows = np.asarray(rows)
        if rows.ndim != 1 or not (rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
            raise ParameterError(f"{name} must be a 1-D array of row indices, got dtype "
                                 f"{rows.dtype} and shape {rows.shape}")
        low = 0 if allow is None else allow
        if rows.size and (rows.min() < low or rows.max() >= self.n_voiceprints):
            raise ParameterError(f"{name} must lie in [{low}, {self.n_voiceprints}), got "
                                 f"values from {rows.min()} to {rows.max()}")
        return rows.astype(np.int64)
