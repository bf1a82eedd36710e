"""1-v-N scoring: one probe against a matrix of enrolled voiceprints.

A :class:`Gallery` wraps the packed voiceprint rows (:attr:`Voiceprint.vector`:
``[mean (R), n, quad, norm_mean, norm_std]``) so that scoring a probe against
all of them costs one matrix-vector product plus a few passes over N-vectors.

With the PLDA in its diagonal space (see :mod:`vpcore.plda`), the LLR of an
enrolment mean ``m`` of ``n`` takes against a probe ``z`` is::

    llr = m . (a z / var) - quad(m)/2 + const(z, n)

so the probe enters as one vector ``u = a z / var`` per take count ``n`` and
the enrolment as its precomputed ``quad``. AS-norm is affine per row,

    0.5 ((llr - mu_e) / sd_e + (llr - mu_t) / sd_t)
      = 0.5 (llr (1/sd_e + 1/sd_t) - mu_e/sd_e - mu_t/sd_t),

so ``1/sd_e`` and ``mu_e/sd_e`` are kept per row. Everything runs in float32
on contiguous N-vectors; only the best ``top_n`` scores are calibrated.
"""

import numpy as np

from .errors import ParameterError
from ._validation import check_int

__all__ = ["Gallery"]


class Gallery:
    """Voiceprint rows of one model, prepared for fast 1-v-N scoring.

    Parameters
    ----------
    model : VoiceprintModel
        The fitted model that made the voiceprints.
    V : array_like of shape (N, model.voiceprint_dim)
        Rows of :attr:`Voiceprint.vector`. A C-contiguous float32 array is
        used without copying (its mean part is read in place); keep it
        unchanged while the gallery is in use.

    Attributes
    ----------
    n_voiceprints : int
    counts_ : ndarray of shape (K,)
        The distinct take counts of the rows.

    Examples
    --------
    >>> gallery = Gallery(model, np.stack([vp.vector for vp in voiceprints]))  # doctest: +SKIP
    >>> rows, llrs, confidences = gallery.search(model.extract(probe), top_n=3)  # doctest: +SKIP
    """

    def __init__(self, model, V):
        self.model = model
        dim = model.voiceprint_dim
        V = np.asarray(V, dtype=np.float32)
        if V.ndim != 2 or V.shape[1] != dim:
            raise ParameterError(f"V has shape {V.shape}, expected (N, {dim}) rows of "
                                 f"Voiceprint.vector")
        R = dim - 4
        self._V = np.ascontiguousarray(V)  # copies only a non-contiguous input
        self._means = self._V[:, :R]
        n = np.rint(V[:, R]).astype(np.int64)
        if len(V) and n.min() < 1:
            bad = int(np.flatnonzero(n < 1)[0])
            raise ParameterError(f"V[{bad}] has take count {V[bad, R]!r}; counts must be >= 1")
        self.counts_ = n[:1] if len(n) and n.min() == n.max() else np.unique(n)
        # rows per take count; None when every row has the same count (the usual case)
        self._rows = (None if len(self.counts_) <= 1 else
                      {int(c): np.flatnonzero(n == c) for c in self.counts_})
        self._offset = np.ascontiguousarray(-0.5 * V[:, R + 1], dtype=np.float32)
        sd = np.asarray(V[:, R + 3], dtype=np.float64)
        if len(V) and not np.all(sd > 0):
            bad = int(np.flatnonzero(~(sd > 0))[0])
            raise ParameterError(f"V[{bad}] has norm_std {V[bad, R + 3]!r}; it must be > 0")
        self._scale = (1.0 / sd).astype(np.float32)
        self._shift = (V[:, R + 2] / sd).astype(np.float32)

    @property
    def n_voiceprints(self):
        return len(self._offset)

    def __len__(self):
        return self.n_voiceprints

    # ------------------------------------------------------------------ scoring ---
    def _probe(self, take):
        """The probe's PLDA-space vector, checked against the model."""
        from .model import Take

        model = self.model
        if not isinstance(take, Take):
            take = model.extract(take)
        return model._check_takes([take], "take")[0].vector.astype(np.float64)

    def _raw(self, z, rows=None):
        """PLDA LLRs (float32) of probe ``z`` against all rows, or the given ``rows``."""
        plda = self.model.plda_
        total = 1.0 + plda.psi_
        means, offset = self._means, self._offset
        if rows is not None:  # np.take of whole rows is the fastest gather
            means, offset = np.take(self._V, rows, axis=0)[:, :len(z)], offset[rows]
        out = np.empty(len(offset), dtype=np.float32)
        for count in self.counts_:
            a, var = plda.enrol_terms(float(count))
            const = (-0.5 * (np.log(var).sum() - np.log(total).sum())
                     - 0.5 * float(z**2 @ (1.0 / var - 1.0 / total)))
            u = (z * a / var).astype(np.float32)
            if self._rows is None:
                np.matmul(means, u, out=out)
                out += offset
                out += np.float32(const)
                break
            sel = self._rows[int(count)]
            if rows is not None:
                sel = np.flatnonzero(np.isin(rows, sel))
            out[sel] = means[sel] @ u + offset[sel] + np.float32(const)
        return out

    def _normalise(self, llr, z, rows=None):
        """AS-norm in place (no-op when the model has no cohort)."""
        model = self.model
        if model.asnorm_top is None:
            return llr
        mu_t, sd_t = model._probe_norm(z)
        scale, shift = self._scale, self._shift
        if rows is not None:
            scale, shift = scale[rows], shift[rows]
        llr *= scale + np.float32(1.0 / sd_t)
        llr -= shift
        llr -= np.float32(mu_t / sd_t)
        llr *= np.float32(0.5)
        return llr

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
        if rows is not None and 4 * len(rows) >= self.n_voiceprints:
            # scoring everything streams the matrix once; gathering would copy it
            s = self._normalise(self._raw(z), z)[rows]
        else:
            s = self._normalise(self._raw(z, rows), z, rows)
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
        return indices, llrs, self.model.calibration_.predict_proba(llrs)

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
