"""1-v-N scoring: one probe against a matrix of enrolled voiceprints.

A :class:`Gallery` wraps the packed voiceprint rows (:attr:`Voiceprint.vector`,
columns named by :class:`~vpcore.voiceprint.RowLayout`) of one model, prepared
once in float32 by the model's :class:`~vpcore.scoring.Scorer`, so that scoring
a probe against all of them costs one matrix-vector product plus a few passes
over contiguous N-vectors. The scores are those of every other path of the
model (the scorer is the one implementation); only the best ``top_n`` are
calibrated.
"""

import numpy as np

from ._validation import check_fitted, check_int
from .errors import ParameterError
from .voiceprint import Take, check_takes

__all__ = ["Gallery"]


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

    Attributes
    ----------
    n_voiceprints : int
    rows_ : PreparedRows
        The rows as the scorer lays them out (float32).
    counts_ : ndarray of shape (K,)
        The distinct take counts of the rows.

    Examples
    --------
    >>> gallery = Gallery(model, np.stack([vp.vector for vp in voiceprints]))  # doctest: +SKIP
    >>> rows, llrs, confidences = gallery.search(model.extract(probe), top_n=3)  # doctest: +SKIP
    """

    def __init__(self, model, V):
        check_fitted(model, "scorer_")
        self.model = model
        self.scorer = model.scorer_
        self.rows_ = self.scorer.prepare(V, np.float32)
        self.counts_ = self.rows_.counts

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
        s = self.scorer.scores(self.rows_, z, rows)[:, 0]
        if not np.all(np.isfinite(s)):  # cheaper than checking the whole matrix up front
            bad = int(np.flatnonzero(~np.isfinite(s))[0])
            bad = bad if rows is None else int(rows[bad])
            raise ParameterError(f"V[{bad}] gives a non-finite score: the row holds NaN, "
                                 f"infinity or values out of float32 range")
        return s

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

    def _check_rows(self, rows):
        if rows is None:
            return None
        rows = np.asarray(rows)
        if rows.ndim != 1 or not (rows.size == 0 or np.issubdtype(rows.dtype, np.integer)):
            raise ParameterError(f"rows must be a 1-D array of row indices, got dtype "
                                 f"{rows.dtype} and shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_voiceprints):
            raise ParameterError(f"rows must lie in [0, {self.n_voiceprints}), got values from "
                                 f"{rows.min()} to {rows.max()}")
        return rows.astype(np.int64)
