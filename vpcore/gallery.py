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

For a model whose ``in_domain_cohort`` is ``"both"`` (and whose calibration
was fitted that way), each voiceprint's own side is pooled too: its scores
against the training cohort and against the means of a pool of at most
:data:`VOICEPRINT_POOL` voiceprints (its own left out), computed when the
gallery is built (:meth:`Scorer.pooled_rows`). That pool is chosen by content
(the rows of smallest hash), so a gallery built from the previous one
(``previous``) recomputes only the rows that changed, unless the pool itself
changed.
"""

import numpy as np

from ._validation import check_fitted, check_int
from .errors import ParameterError
from .voiceprint import Take, check_takes

__all__ = ["Gallery", "ADAPTIVE_POOL", "VOICEPRINT_POOL", "IN_DOMAIN_COHORTS"]

#: Most voiceprints of a gallery that enter the probe side's adaptive in-domain cohort.
ADAPTIVE_POOL = 10_000

#: Most voiceprints of a gallery whose means enter each voiceprint's own side of AS-norm
#: (``in_domain_cohort="both"``): every row is scored against them when the gallery is built.
VOICEPRINT_POOL = 1_000

#: The values of a model's ``in_domain_cohort``: the sides of AS-norm an adaptive gallery pools.
IN_DOMAIN_COHORTS = ("probe", "both")


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
        AS-norm, each row's own score left out; for a model whose
        ``in_domain_cohort`` is ``"both"``, each row's own side as well. No
        effect for a model without AS-norm.
    previous : Gallery or None
        A gallery of the same model that this one replaces: rows it holds
        unchanged keep their pooled statistics when the voiceprint pool is the
        same (``in_domain_cohort="both"`` only; results are identical either way).

    Attributes
    ----------
    n_voiceprints : int
    rows_ : PreparedRows
        The rows as the scorer lays them out (float32).
    counts_ : ndarray of shape (K,)
        The distinct take counts of the rows.
    pool_ : ndarray of int or None
        Rows of the adaptive in-domain cohort (None: every row, or no adaptive cohort).
    both_sides : bool
        Whether each row's own side of AS-norm is pooled too.
    voiceprint_pool_ : ndarray of int or None
        Rows whose means pool into every row's own side (sorted; None: not pooled).
    reused_ : int
        Rows whose pooled statistics were taken from ``previous``.

    Examples
    --------
    >>> gallery = Gallery(model, np.stack([vp.vector for vp in voiceprints]))  # doctest: +SKIP
    >>> rows, llrs, confidences = gallery.search(model.extract(probe), top_n=3)  # doctest: +SKIP
    """

    def __init__(self, model, V, adaptive_cohort=False, previous=None):
        check_fitted(model, "scorer_")
        if not isinstance(adaptive_cohort, (bool, np.bool_)):
            raise ParameterError(f"adaptive_cohort must be True or False, got "
                                 f"{adaptive_cohort!r}")
        if previous is not None and not isinstance(previous, Gallery):
            raise ParameterError(f"previous must be a Gallery or None, got "
                                 f"{type(previous).__name__}")
        self.model = model
        self.scorer = model.scorer_
        self.rows_ = self.scorer.prepare(V, np.float32)
        self.counts_ = self.rows_.counts
        self.adaptive_cohort = bool(adaptive_cohort) and self.scorer.asnorm_top is not None
        self.both_sides = (self.adaptive_cohort
                           and getattr(model, "in_domain_cohort", "probe") == "both")
        self.voiceprint_pool_, self.reused_ = None, 0
        if self.both_sides and len(self.rows_):
            self._pool_both_sides(previous)
        self.pool_, self._pool_rows = None, None
        if self.adaptive_cohort and len(self.rows_) > ADAPTIVE_POOL:
            self.pool_ = _spread(len(self.rows_), ADAPTIVE_POOL)
            self._pool_rows = self.scorer.prepare(
                np.ascontiguousarray(self.rows_.matrix[self.pool_]), np.float32, name="pool")

    def _pool_both_sides(self, previous):
        """Each row's own side of AS-norm pooled with the voiceprint pool's means.

        The pool is the :data:`VOICEPRINT_POOL` rows of smallest content key
        (a fixed hash of the row's bits), so it depends on what the gallery
        holds, not on row positions: adding or removing a voiceprint changes
        it only when that voiceprint is in it. Rows identical to a row of
        ``previous`` (a gallery of the same model with the same pool) keep
        its statistics; the others are scored against the cohort and the pool.
        """
        L, n = self.scorer.layout, len(self.rows_)
        source = self.rows_.matrix
        self._keys = _row_keys(source)
        order = np.lexsort((np.arange(n), self._keys))
        self.voiceprint_pool_ = np.sort(order[:VOICEPRINT_POOL])
        self._pool_means = np.array(self.rows_.means[self.voiceprint_pool_], dtype=np.float64)
        self._source_norms = source[:, [L.index("norm_mean"), L.index("norm_std")]].copy()
        norms = np.empty((n, 2), dtype=np.float32)
        todo = np.ones(n, dtype=bool)
        if (isinstance(previous, Gallery) and previous.scorer is self.scorer
                and previous.voiceprint_pool_ is not None
                and np.array_equal(previous._pool_means, self._pool_means)):
            old = _same_rows(previous, source, self._keys, L)
            found = old >= 0
            norms[found] = previous.rows_.matrix[old[found]][:, [L.index("norm_mean"),
                                                                 L.index("norm_std")]]
            todo &= ~found
            self.reused_ = int(found.sum())
        if todo.any():
            rows = np.flatnonzero(todo)
            own = self._pool_index(self.voiceprint_pool_, rows)
            pooled = self.scorer.pooled_rows(source[rows], self._pool_means, own, np.float32)
            norms[rows] = pooled[:, [L.index("norm_mean"), L.index("norm_std")]]
        matrix = source.copy()
        matrix[:, L.index("norm_mean")], matrix[:, L.index("norm_std")] = norms.T
        self.rows_ = self.scorer.prepare(matrix, np.float32)

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
        if self.both_sides:
            mine = self._pool_index(self.voiceprint_pool_, own)
            extra = self.scorer.prepare(self.scorer.pooled_rows(
                extra.matrix, self._pool_means, mine, np.float32).astype(np.float32),
                np.float32)
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

    @staticmethod
    def _pool_index(pool, rows):
        """For each of ``rows``, its index in the sorted ``pool``, or -1 if not in it."""
        rows = np.asarray(rows, dtype=np.int64)
        at = np.minimum(np.searchsorted(pool, rows), len(pool) - 1)
        return np.where((rows >= 0) & (pool[at] == rows), at, -1)

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


def _row_keys(V):
    """A content key per row of float32 ``V``: a fixed pseudo-random hash of its bits, in
    exact integer arithmetic (the same row gives the same key wherever it stands)."""
    bits = np.ascontiguousarray(V, dtype=np.float32).view(np.uint32).astype(np.uint64)
    mult = np.random.default_rng(20261205).integers(1, 2**63, size=bits.shape[1],
                                                    dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        key = (bits * mult).sum(axis=1, dtype=np.uint64)  # wraps modulo 2**64
        key ^= key >> np.uint64(31)
        key *= np.uint64(0x9E3779B97F4A7C15)
        key ^= key >> np.uint64(29)
    return key


def _same_rows(previous, V, keys, layout):
    """For each row of ``V``, the row of ``previous`` holding the same voiceprint, or -1.

    Matched by content key, then checked column by column (the previous
    gallery's stored norm columns are its input's, kept aside); rows whose key
    is not unique on either side are never matched.
    """
    old_keys = previous._keys
    order = np.argsort(old_keys, kind="stable")
    sorted_keys = old_keys[order]
    unique_old = np.ones(len(order), dtype=bool)
    dup = sorted_keys[1:] == sorted_keys[:-1]
    unique_old[1:] &= ~dup
    unique_old[:-1] &= ~dup
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(order) - 1)
    hit = (sorted_keys[at] == keys) & unique_old[at]
    new_sorted = np.sort(keys)
    new_dup = np.zeros(len(keys), dtype=bool)
    same = new_sorted[1:] == new_sorted[:-1]
    if same.any():
        new_dup = np.isin(keys, new_sorted[1:][same])
    hit &= ~new_dup
    old = np.where(hit, order[at], -1)
    rows = np.flatnonzero(hit)
    if len(rows):
        fixed = [i for i in range(V.shape[1])
                 if i not in (layout.index("norm_mean"), layout.index("norm_std"))]
        a, b = previous.rows_.matrix[old[rows]], V[rows]
        equal = (np.all(a[:, fixed] == b[:, fixed], axis=1)
                 & np.all(previous._source_norms[old[rows]] == b[:, [layout.index("norm_mean"),
                                                                     layout.index("norm_std")]],
                          axis=1))
        old[rows[~equal]] = -1
    return old


def _spread(n, most):
    """Sorted indices of at most ``most`` of ``n`` rows, evenly spaced (all when n <= most)."""
    if n <= most:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))
