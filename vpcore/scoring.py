"""The one scoring path: PLDA LLR, AS-norm against a cohort, then calibration.

Enrolment, cross-validated calibration during training, 1-v-1 verification
and 1-v-N search all score through one :class:`Scorer`, so what calibration
is fitted on is exactly what the service serves. The stages, in order:

1. **PLDA LLR** (:meth:`Scorer.raw`). With the PLDA in its diagonal space (see
   :mod:`vpcore.plda`) the LLR of an enrolment mean ``m`` of ``n`` takes
   against a probe ``z`` is::

       llr = m . (a z / var) - quad(m) / 2 + const(z, n)

   so each probe enters as one vector ``u = a z / var`` per take count ``n``
   and each enrolment as its precomputed ``quad``: scoring a probe against N
   voiceprints is one matrix-vector product.
2. **AS-norm** (:meth:`Scorer.normalise`), the adaptive symmetric
   normalisation of :mod:`vpcore.normalisation`, folded into an affine map per
   row::

       0.5 ((llr - mu_e) / sd_e + (llr - mu_t) / sd_t)
         = 0.5 (llr (1/sd_e + 1/sd_t) - mu_e/sd_e - mu_t/sd_t)

   ``mu_e, sd_e`` come from the enrolment's row (computed once by
   :meth:`Scorer.enrol`), ``mu_t, sd_t`` from the probe against the cohort.
3. **Calibration** (:meth:`Scorer.confidence`, :meth:`Scorer.calibrated_llr`):
   a separate last stage mapping normalised scores to calibrated LLRs and
   posteriors; it sees only the scores of stage 2.

Rows are prepared once (:meth:`Scorer.prepare`) in float32 (the service's 1-v-N
index, contiguous N-vectors) or float64 (training); both run the same code.

References
----------
P. Matějka et al., "Analysis of score normalization in multilingual speaker
recognition", Interspeech 2017.
"""

import numpy as np

from ._validation import check_array, check_int
from .errors import ParameterError
from .normalisation import pooled_row_stats, pooled_top_stats, top_n_stats
from .voiceprint import RowLayout

__all__ = ["Scorer", "PreparedRows"]


class PreparedRows:
    """Voiceprint rows laid out for scoring in one dtype (made by :meth:`Scorer.prepare`).

    Attributes
    ----------
    matrix : ndarray of shape (N, R + 4)
        The packed rows (the caller's array when it already had the dtype and
        was C-contiguous).
    means : ndarray of shape (N, R)
        A view of the mean columns of ``matrix``.
    offset : ndarray of shape (N,)
        ``-quad / 2``.
    scale, shift : ndarray of shape (N,)
        ``1 / norm_std`` and ``norm_mean / norm_std`` (the enrolment side of AS-norm).
    counts : ndarray of shape (K,)
        The distinct take counts.
    by_count : dict or None
        ``{count: row indices}``; None when all rows share one count.
    """

    def __init__(self, matrix, means, offset, scale, shift, counts, by_count):
        self.matrix, self.means, self.offset = matrix, means, offset
        self.scale, self.shift, self.counts, self.by_count = scale, shift, counts, by_count

    @property
    def dtype(self):
        return self.matrix.dtype

    def __len__(self):
        return len(self.offset)


class Scorer:
    """PLDA + cohort + AS-norm + calibration: every score of a model is made here.

    Parameters
    ----------
    plda : PLDA
        A fitted PLDA; takes, enrolment means and the cohort live in its
        diagonal space (:meth:`PLDA.project`).
    cohort : ndarray of shape (K, R) or None
        Impostor vectors in the PLDA space, for AS-norm.
    asnorm_top : int or None
        AS-norm with the top-N cohort scores of each side; None: no AS-norm.
    calibration : LogisticCalibration or None
        Fitted calibration of the normalised scores (None while it is being
        trained: :meth:`confidence` then cannot be used).
    """

    def __init__(self, plda, cohort=None, asnorm_top=None, calibration=None):
        self.plda = plda
        self.layout = RowLayout(len(plda.psi_))
        self.asnorm_top = None if asnorm_top is None else check_int("asnorm_top", asnorm_top,
                                                                    low=1)
        self.cohort = (None if cohort is None else
                       check_array("cohort", cohort, ndim=2, min_rows=1, n_cols=self.layout.rank))
        if self.asnorm_top is not None and self.cohort is None:
            raise ParameterError("asnorm_top is set but cohort is None: AS-norm needs a cohort")
        self.calibration = calibration
        self._cohort_rows = None
        if self.asnorm_top is not None:
            c = self.cohort
            quad = plda.quad_term(c, 1.0)
            self._cohort_rows = self.prepare(self.layout.pack(c, 1, quad, 0.0, 1.0, np.float64),
                                             np.float64, name="cohort")

    # ------------------------------------------------------------- enrolment ---
    def enrol(self, means, n, precision=np.float32):
        """Packed rows of enrolment means of ``n`` takes each.

        Parameters
        ----------
        means : ndarray of shape (E, R)
            Means of each enrolment's takes in PLDA space. They are rounded to
            ``precision`` first (the precision the rows are stored in), so that
            a row's ``quad`` and norms belong to its stored mean.
        n : int
            Takes behind every mean.
        precision : numpy dtype

        Returns
        -------
        ndarray of shape (E, R + 4), float64
            Rows ``[mean, n, quad, norm_mean, norm_std]`` (see :class:`RowLayout`).
        """
        m = np.asarray(means, dtype=precision).astype(np.float64)
        quad = self.plda.quad_term(m, n)
        mu, sd = np.zeros(len(m)), np.ones(len(m))
        if self.asnorm_top is not None:
            rows = self.prepare(self.layout.pack(m, n, quad, 0.0, 1.0, np.float64), np.float64)
            mu, sd = top_n_stats(self.raw(rows, self.cohort), self.asnorm_top)
        return self.layout.pack(m, n, quad, mu, sd, np.float64)

    # ------------------------------------------------------------------ rows ---
    def prepare(self, V, dtype=np.float32, name="V"):
        """Rows of :attr:`Voiceprint.vector` laid out for scoring in ``dtype``.

        A C-contiguous array of ``dtype`` is used without copying (its mean
        part is read in place); keep it unchanged while the rows are in use.

        Raises
        ------
        ParameterError
            Wrong width, a take count below 1 or a norm_std not > 0, naming the row.
        """
        V = np.asarray(V, dtype=dtype)
        self.layout.check(V, name)
        L = self.layout
        V = np.ascontiguousarray(V)  # copies only a non-contiguous input
        means = V[:, L.mean]
        n_col = L.column(V, "n")
        n = np.rint(n_col).astype(np.int64)
        if len(V) and n.min() < 1:
            bad = int(np.flatnonzero(n < 1)[0])
            raise ParameterError(f"{name}[{bad}] has take count {n_col[bad]!r}; counts must "
                                 "be >= 1")
        counts = n[:1] if len(n) and n.min() == n.max() else np.unique(n)
        by_count = (None if len(counts) <= 1 else
                    {int(c): np.flatnonzero(n == c) for c in counts})
        offset = np.ascontiguousarray(-0.5 * L.column(V, "quad"), dtype=dtype)
        sd_col = L.column(V, "norm_std")
        sd = np.asarray(sd_col, dtype=np.float64)
        if len(V) and not np.all(sd > 0):
            bad = int(np.flatnonzero(~(sd > 0))[0])
            raise ParameterError(f"{name}[{bad}] has norm_std {sd_col[bad]!r}; it must be > 0")
        scale = (1.0 / sd).astype(dtype)
        shift = (L.column(V, "norm_mean") / sd).astype(dtype)
        return PreparedRows(V, means, offset, scale, shift, counts, by_count)

    # --------------------------------------------------------------- scoring ---
    def raw(self, rows, Z, select=None):
        """PLDA LLRs of probes ``Z`` (P, R) against ``rows`` (or the ``select``-ed ones).

        Returns an array of shape (len(rows) or len(select), P) in ``rows.dtype``.
        """
        Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
        dtype = rows.dtype.type
        plda = self.plda
        total = 1.0 + plda.psi_
        means, offset = rows.means, rows.offset
        if select is not None:  # np.take of whole rows is the fastest gather
            means = np.take(rows.matrix, select, axis=0)[:, self.layout.mean]
            offset = offset[select]
        out = np.empty((len(offset), len(Z)), dtype=dtype)
        single = len(Z) == 1
        for count in rows.counts:
            a, var = plda.enrol_terms(float(count))
            # const(z, n): everything of the LLR that depends on the probe alone
            if single:  # one probe: a matrix-vector product
                c = np.array([float(Z[0] ** 2 @ (1.0 / var - 1.0 / total))])
            else:
                c = (Z ** 2) @ (1.0 / var - 1.0 / total)
            const = (-0.5 * (np.log(var).sum() - np.log(total).sum()) - 0.5 * c).astype(dtype)
            U = (Z * a / var).astype(dtype)
            if rows.by_count is None:
                if single:
                    np.matmul(means, U[0], out=out[:, 0])
                else:
                    np.matmul(means, U.T, out=out)
                out += offset[:, None]
                out += const[None, :]
                break
            sel = rows.by_count[int(count)]
            if select is not None:
                sel = np.flatnonzero(np.isin(select, sel))
            cross = (means[sel] @ U[0])[:, None] if single else means[sel] @ U.T
            out[sel] = cross + offset[sel, None] + const[None, :]
        return out

    def probe_stats(self, Z, in_domain=None, own=None):
        """Probe-side AS-norm statistics ``(mu_t, sd_t)``.

        Without ``in_domain``: over the cohort, each of shape (P,). With it
        (one probe only): over the cohort pooled with ``in_domain``, the
        probe's raw scores against enrolled voiceprints, leaving out for each
        output row its own score ``in_domain[own[i]]`` (-1: none); each of
        shape ``(len(own),)`` (see :func:`~vpcore.normalisation.pooled_top_stats`).
        """
        cohort = self.raw(self._cohort_rows, Z)
        if in_domain is None:
            return top_n_stats(cohort.T, self.asnorm_top)
        if cohort.shape[1] != 1:
            raise ParameterError(f"in_domain scores need one probe, got {cohort.shape[1]}")
        if own is None:
            raise ParameterError("in_domain needs own: the index of each row's own score "
                                 "in in_domain, or -1")
        return pooled_top_stats(cohort[:, 0], in_domain, self.asnorm_top, own)

    def normalise(self, llr, rows, Z, select=None, in_domain=None, own=None):
        """AS-norm of ``llr`` (E, P) from :meth:`raw`, in place (no-op without AS-norm).

        ``in_domain`` and ``own`` (one probe): the adaptive in-domain cohort of
        :meth:`probe_stats`, ``own`` of length E.
        """
        if self.asnorm_top is None:
            return llr
        dtype = rows.dtype.type
        mu_t, sd_t = self.probe_stats(Z, in_domain, own)
        a, b = (1.0 / sd_t).astype(dtype), (mu_t / sd_t).astype(dtype)
        a, b = (a[None, :], b[None, :]) if in_domain is None else (a[:, None], b[:, None])
        scale, shift = rows.scale, rows.shift
        if select is not None:
            scale, shift = scale[select], shift[select]
        llr *= scale[:, None] + a
        llr -= shift[:, None]
        llr -= b
        llr *= dtype(0.5)
        return llr

    def scores(self, rows, Z, select=None, in_domain=None, own=None):
        """Normalised scores (PLDA LLR, then AS-norm) of probes ``Z`` (P, R) against ``rows``.

        Parameters
        ----------
        rows : PreparedRows
        Z : ndarray of shape (P, R) or (R,)
            Probes in PLDA space.
        select : ndarray of int or None
            Row indices to score; None scores all.
        in_domain, own : ndarray or None
            The adaptive in-domain cohort of :meth:`probe_stats` (one probe).

        Returns
        -------
        ndarray of shape (E, P), ``rows.dtype``
            E is ``len(rows)`` or ``len(select)``.
        """
        if select is not None and 4 * len(select) >= len(rows):
            # scoring everything streams the matrix once; gathering would copy it
            llr = self.raw(rows, Z)[select]
        else:
            llr = self.raw(rows, Z, select)
        return self.normalise(llr, rows, Z, select, in_domain, own)

    # ------------------------------------------------- in-domain normalisation ---
    def pooled_rows(self, V, pool, own=None, dtype=np.float64, chunk=4096):
        """Rows ``V`` with their AS-norm side pooled over the cohort and in-domain probes.

        Each row's ``norm_mean`` / ``norm_std`` become the statistics of its
        scores against the training cohort **and** against ``pool`` (PLDA-space
        vectors scored as one-take probes, e.g. the means of other enrolled
        voiceprints), leaving out ``pool[own[e]]`` for row ``e``
        (:func:`~vpcore.normalisation.pooled_row_stats`). Without AS-norm the
        rows are returned unchanged.

        Parameters
        ----------
        V : ndarray of shape (E, R + 4)
            Packed rows (:attr:`Voiceprint.vector`).
        pool : ndarray of shape (M, R)
        own : ndarray of int of shape (E,) or None
            Index into ``pool`` of each row's own mean, or -1 (None: all -1).
        dtype : numpy dtype
            Precision of the scores (float32: the gallery's, half the memory).
        chunk : int
            Rows scored at a time.

        Returns
        -------
        ndarray of shape (E, R + 4), float64
            A new array; only the two norm columns differ from ``V``.
        """
        V = np.array(V, dtype=np.float64)
        if self.asnorm_top is None or len(V) == 0:
            return V
        pool = check_array("pool", pool, ndim=2, n_cols=self.layout.rank)
        own = np.full(len(V), -1, dtype=np.int64) if own is None else np.asarray(own)
        if own.shape != (len(V),):
            raise ParameterError(f"own has shape {own.shape}; it needs one entry per row of V "
                                 f"({len(V)})")
        L = self.layout
        for start in range(0, len(V), chunk):  # bounded memory: chunk x (K + M) scores
            part = slice(start, start + chunk)
            rows = self.prepare(V[part], dtype)
            cohort = self.raw(rows, self.cohort)
            in_domain = (self.raw(rows, pool) if len(pool)
                         else np.zeros((len(cohort), 0), dtype=cohort.dtype))
            mu, sd = pooled_row_stats(cohort, in_domain, self.asnorm_top, own[part])
            V[part, L.index("norm_mean")], V[part, L.index("norm_std")] = mu, sd
        return V

    def in_domain_scores(self, V, Z, both_sides=True):
        """Normalised scores of probes ``Z`` against rows ``V`` that are their own in-domain
        cohort: every trial of a gallery made of exactly these voiceprints.

        The probe side of AS-norm pools the cohort with the probe's scores
        against all rows, the scored row's own left out (as
        :class:`~vpcore.gallery.Gallery` with ``adaptive_cohort``); with
        ``both_sides`` each row's side is pooled with its scores against the
        other rows' means (:meth:`pooled_rows`), as the gallery does for a
        model whose ``in_domain_cohort`` is ``"both"``.

        Parameters
        ----------
        V : ndarray of shape (E, R + 4)
        Z : ndarray of shape (P, R)
        both_sides : bool

        Returns
        -------
        ndarray of shape (E, P), float64
        """
        V = np.asarray(V, dtype=np.float64)
        Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
        if both_sides and self.asnorm_top is not None:
            V = self.pooled_rows(V, V[:, self.layout.mean], np.arange(len(V)))
        rows = self.prepare(V, np.float64)
        llr = self.raw(rows, Z)
        if self.asnorm_top is None or len(V) == 0:
            return llr
        cohort = self.raw(self._cohort_rows, Z)  # (K, P)
        own = np.arange(len(V))
        out = np.empty_like(llr)
        for p in range(len(Z)):
            mu_t, sd_t = pooled_top_stats(cohort[:, p], llr[:, p], self.asnorm_top, own)
            out[:, p] = 0.5 * (llr[:, p] * (rows.scale + 1.0 / sd_t) - rows.shift - mu_t / sd_t)
        return out

    # ----------------------------------------------------------- calibration ---
    def _calibration(self):
        if self.calibration is None:
            raise ParameterError("this scorer has no calibration yet: it gives scores only")
        return self.calibration

    def calibrated_llr(self, scores):
        """Calibrated natural-log likelihood ratios of normalised scores."""
        return self._calibration().predict_llr(scores)

    def confidence(self, scores):
        """Calibrated posterior of "same speaker" of normalised scores, in [0, 1]."""
        return self._calibration().predict_proba(scores)
