"""Evaluation metrics for speaker verification, and Kaldi/VoxCeleb trial files.

Conventions used by every function here:

- ``scores`` are real numbers where *higher means more likely the same
  speaker*; ``llrs`` are calibrated natural-log likelihood ratios
  ``log p(score | target) / p(score | non-target)``.
- ``labels`` are booleans or 0/1 integers, ``True``/``1`` meaning a *target*
  trial (same speaker) and ``False``/``0`` a *non-target* trial.
- A decision at threshold ``t`` **accepts a trial when** ``score >= t``.
  The miss rate ``p_miss(t)`` is the fraction of targets with ``score < t``;
  the false-alarm rate ``p_fa(t)`` the fraction of non-targets with
  ``score >= t``.
- Tied scores are always handled as a group: every operating point is the
  result of one threshold, and a threshold either accepts all trials that
  share a score or none of them. No result depends on the order of the input.

All curve-based metrics sort the scores once and are O(N log N).

EER definition
--------------
The operating points ``(p_fa(t), p_miss(t))`` for the thresholds ``t`` in
the sorted distinct scores plus ``+inf`` are joined by straight segments.
Along this polyline ``p_miss`` never decreases and ``p_fa`` never increases,
so it crosses the line ``p_miss == p_fa`` exactly once; the EER is the common
value at that crossing. The straight segments are exactly the operating
points reachable by accepting a random fraction of the trials tied at a
threshold, so ties contribute a diagonal segment instead of an arbitrary,
order-dependent step. This gives EER 0 for separable scores, 1 for perfectly
inverted scores and 0.5 when all scores are tied. (The ROC-convex-hull EER of
BOSARIS would instead give 0.5 for inverted scores; it is *not* used here.)
"""

import math
import os

import numpy as np
from scipy.special import logit
from sklearn.isotonic import isotonic_regression

from ._validation import check_float, check_scores_labels
from .errors import ParameterError
from .persistence import atomic_write

__all__ = [
    "eer",
    "det_curve",
    "min_dcf",
    "act_dcf",
    "cllr",
    "min_cllr",
    "far_frr",
    "evaluate",
    "read_trials",
    "write_scores",
    "read_scores",
]

#: Largest magnitude given to PAV log-likelihood ratios in :func:`min_cllr`.
#: ``exp(-750)`` underflows to 0 in double precision, so a trial of the right
#: class at this LLR costs exactly 0 bits, as it would at infinity.
LLR_CLIP = 750.0

_TRIAL_KEYWORDS = {"target": 1, "nontarget": 0}


# ---------------------------------------------------------------------------
# validation


def _check_costs(p_target, c_miss, c_fa):
    """Validate the DCF operating parameters and return them as floats."""
    p_target = check_float("p_target", p_target)
    if not 0.0 < p_target < 1.0:
        raise ParameterError(f"p_target={p_target} must be in the open interval (0, 1)")
    c_miss = check_float("c_miss", c_miss, low=0.0, low_inclusive=False)
    c_fa = check_float("c_fa", c_fa, low=0.0, low_inclusive=False)
    return p_target, c_miss, c_fa


# ---------------------------------------------------------------------------
# curve-based metrics


def _operating_points(scores, labels):
    """Miss and false-alarm rates at every distinct threshold (validated input).

    Returns ``(p_miss, p_fa, thresholds)`` of shape (K + 1,) for K distinct
    scores: thresholds are the distinct scores ascending, then ``+inf``.
    """
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    is_tar = labels[order]
    n = s.shape[0]
    # index of the first trial of every group of tied scores
    starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
    cum_tar = np.concatenate(([0], np.cumsum(is_tar)))
    n_tar = int(cum_tar[-1])
    n_non = n - n_tar
    # at threshold s[starts[k]]: trials before starts[k] are rejected
    tar_rejected = np.append(cum_tar[starts], n_tar)
    non_rejected = np.append(starts - cum_tar[starts], n_non)
    p_miss = tar_rejected / n_tar
    p_fa = (n_non - non_rejected) / n_non
    thresholds = np.append(s[starts], np.inf)
    return p_miss, p_fa, thresholds


def det_curve(scores, labels):
    """Miss and false-alarm rates at every distinct score threshold.

    One point per distinct score value (tied scores form one threshold step),
    plus a final point at threshold ``+inf`` that rejects everything. A trial
    is accepted at threshold ``t`` when ``score >= t``.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Detection scores, higher meaning more likely a target.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.

    Returns
    -------
    p_miss : ndarray, shape (K + 1,)
        Fraction of targets with ``score < thresholds[k]``; non-decreasing,
        from 0 to 1.
    p_fa : ndarray, shape (K + 1,)
        Fraction of non-targets with ``score >= thresholds[k]``;
        non-increasing, from 1 to 0.
    thresholds : ndarray, shape (K + 1,)
        The K distinct scores in ascending order, then ``np.inf``.

    Raises
    ------
    ParameterError
        On empty, non-finite or mismatched input, or a missing class.

    References
    ----------
    .. [1] A. Martin, G. Doddington, T. Kamm, M. Ordowski, M. Przybocki,
       "The DET curve in assessment of detection task performance",
       Proc. Eurospeech, 1997.
    """
    scores, labels = check_scores_labels(scores, labels)
    return _operating_points(scores, labels)


def _eer_from_points(p_miss, p_fa):
    """Crossing of the polyline through the operating points with p_miss == p_fa."""
    d = p_fa - p_miss  # non-increasing, d[0] = 1 > 0, d[-1] = -1 < 0
    i = int(np.flatnonzero(d <= 0)[0])  # i >= 1
    if d[i] == 0:
        return float(p_miss[i])  # an operating point lies on the diagonal
    d0, d1 = d[i - 1], d[i]
    lam = d0 / (d0 - d1)
    value = p_miss[i - 1] + lam * (p_miss[i] - p_miss[i - 1])
    return float(min(max(value, 0.0), 1.0))


def eer(scores, labels):
    """Equal error rate, as a fraction in [0, 1].

    The operating points ``(p_fa, p_miss)`` of :func:`det_curve` are joined by
    straight segments, and the EER is the value at which this polyline crosses
    ``p_miss == p_fa``. The crossing is unique because ``p_miss`` never
    decreases and ``p_fa`` never increases along it. A straight segment between
    two neighbouring operating points is what a decision achieves by accepting
    a random fraction of the trials tied at a threshold, so tied scores are a
    group and the result does not depend on the input order.

    Special cases: separable scores (every target above every non-target)
    give 0.0, perfectly inverted scores give 1.0, and all-tied scores give 0.5.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Detection scores, higher meaning more likely a target.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.

    Returns
    -------
    float
        The equal error rate in [0, 1] (a fraction, not a percentage).

    Raises
    ------
    ParameterError
        On empty, non-finite or mismatched input, or a missing class.

    Notes
    -----
    This is the interpolated crossing of the miss and false-alarm curves, not
    the ROC-convex-hull EER of BOSARIS ``rocch2eer``; the two agree whenever
    the crossing lies on the convex hull of the ROC. O(N log N).

    References
    ----------
    .. [1] N. Brümmer, E. de Villiers, "The BOSARIS Toolkit: Theory,
       Algorithms and Code for Surviving the New DCF", arXiv:1304.2865, 2011.
    .. [2] A. Martin et al., "The DET curve in assessment of detection task
       performance", Proc. Eurospeech, 1997.
    """
    scores, labels = check_scores_labels(scores, labels)
    p_miss, p_fa, _ = _operating_points(scores, labels)
    return _eer_from_points(p_miss, p_fa)


def _dcf_norm(p_target, c_miss, c_fa):
    """Cost of the best trivial system (always accept or always reject)."""
    return min(c_miss * p_target, c_fa * (1.0 - p_target))


def min_dcf(scores, labels, p_target=0.01, c_miss=1, c_fa=1):
    """Normalised minimum detection cost function.

    ``DCF(t) = c_miss * p_target * p_miss(t) + c_fa * (1 - p_target) * p_fa(t)``
    minimised over every threshold ``t`` of :func:`det_curve` (including
    accept-all and reject-all), divided by
    ``min(c_miss * p_target, c_fa * (1 - p_target))``, the cost of the better
    trivial system. It is therefore in [0, 1]; 0 for separable scores.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Detection scores, higher meaning more likely a target.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.
    p_target : float, default=0.01
        Prior probability of a target trial, in (0, 1).
    c_miss, c_fa : float, default=1
        Costs of a miss and of a false alarm, > 0.

    Returns
    -------
    float
        Normalised minDCF in [0, 1].

    Raises
    ------
    ParameterError
        On invalid scores or labels, ``p_target`` outside (0, 1) or a cost
        that is not > 0.

    Notes
    -----
    This is the figure Kaldi (``compute_min_dcf.py``), the NIST SRE
    evaluations and WeSpeaker report. O(N log N).

    References
    ----------
    .. [1] NIST, "The NIST Year 2010 Speaker Recognition Evaluation Plan", 2010.
    .. [2] N. Brümmer, E. de Villiers, "The BOSARIS Toolkit", arXiv:1304.2865, 2011.
    """
    scores, labels = check_scores_labels(scores, labels)
    p_target, c_miss, c_fa = _check_costs(p_target, c_miss, c_fa)
    p_miss, p_fa, _ = _operating_points(scores, labels)
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    value = float(np.min(dcf)) / _dcf_norm(p_target, c_miss, c_fa)
    return min(max(value, 0.0), 1.0)


def act_dcf(llrs, labels, p_target=0.01, c_miss=1, c_fa=1):
    """Normalised actual detection cost of calibrated LLRs at the Bayes threshold.

    A trial is accepted when ``llr >= -log(c_miss * p_target / (c_fa * (1 - p_target)))``,
    the Bayes decision for natural-log likelihood ratios. The resulting DCF is
    normalised as in :func:`min_dcf`. Unlike minDCF it measures calibration
    too, and it is not bounded by 1: badly calibrated LLRs can do worse than
    a trivial system. It is always ``>= min_dcf`` of the same values.

    Parameters
    ----------
    llrs : array_like, shape (N,)
        Calibrated natural-log likelihood ratios.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.
    p_target : float, default=0.01
        Prior probability of a target trial, in (0, 1).
    c_miss, c_fa : float, default=1
        Costs of a miss and of a false alarm, > 0.

    Returns
    -------
    float
        Normalised actual DCF, >= 0.

    Raises
    ------
    ParameterError
        On invalid LLRs or labels, ``p_target`` outside (0, 1) or a cost that
        is not > 0.

    References
    ----------
    .. [1] N. Brümmer, E. de Villiers, "The BOSARIS Toolkit", arXiv:1304.2865, 2011.
    """
    llrs, labels = check_scores_labels(llrs, labels, score_name="llrs")
    p_target, c_miss, c_fa = _check_costs(p_target, c_miss, c_fa)
    threshold = -(math.log(c_miss * p_target) - math.log(c_fa * (1.0 - p_target)))
    accept = llrs >= threshold
    p_miss = np.count_nonzero(labels & ~accept) / np.count_nonzero(labels)
    p_fa = np.count_nonzero(~labels & accept) / np.count_nonzero(~labels)
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return float(dcf / _dcf_norm(p_target, c_miss, c_fa))


# ---------------------------------------------------------------------------
# log-likelihood-ratio cost


def _cllr_bits(llrs, labels):
    """Cllr of validated LLRs (which may be +-inf on the right side)."""
    ln2 = np.log(2.0)
    # log(1 + exp(-llr)) for targets, log(1 + exp(llr)) for non-targets, in bits
    c_tar = np.logaddexp(0.0, -llrs[labels]) / ln2
    c_non = np.logaddexp(0.0, llrs[~labels]) / ln2
    return float(0.5 * (np.mean(c_tar) + np.mean(c_non)))


def cllr(llrs, labels):
    """Log-likelihood-ratio cost (Brümmer), in bits.

    ``Cllr = 1 / (2 log 2) * (mean_tar log(1 + exp(-llr)) + mean_non log(1 + exp(llr)))``.
    It is 0 for infinitely confident correct LLRs, exactly 1 for LLRs that are
    all 0 (a system that always abstains), and above 1 for systems that are
    worse than abstaining. Computed with ``np.logaddexp``, so huge LLRs do not
    overflow.

    Parameters
    ----------
    llrs : array_like, shape (N,)
        Calibrated natural-log likelihood ratios.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.

    Returns
    -------
    float
        Cllr in bits, >= 0.

    Raises
    ------
    ParameterError
        On empty, non-finite or mismatched input, or a missing class.

    References
    ----------
    .. [1] N. Brümmer, J. du Preez, "Application-independent evaluation of
       speaker detection", Computer Speech & Language 20(2-3), 230-275, 2006.
    """
    llrs, labels = check_scores_labels(llrs, labels, score_name="llrs")
    return _cllr_bits(llrs, labels)


def _pav_llrs(scores, labels):
    """Optimal monotone LLRs of validated scores, clipped to +-LLR_CLIP.

    Tied scores are pooled first (one value per group, weighted by its size),
    then ``sklearn.isotonic.isotonic_regression`` runs PAV on the group target
    fractions in score order. No interpolation between scores is involved, so
    scores that differ by a hair are handled exactly.
    """
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    y = labels[order].astype(np.float64)
    starts = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1))
    counts = np.diff(np.append(starts, s.shape[0])).astype(np.float64)
    group_mean = np.add.reduceat(y, starts) / counts
    pooled = isotonic_regression(
        group_mean, sample_weight=counts, y_min=0.0, y_max=1.0, increasing=True
    )
    posterior = np.empty_like(y)
    posterior[order] = np.repeat(pooled, counts.astype(np.intp))
    n_tar = np.count_nonzero(labels)
    prior_logit = math.log(n_tar) - math.log(labels.shape[0] - n_tar)
    # scipy's logit returns +-inf (no warning) for posteriors of exactly 1 or 0
    llrs = logit(posterior) - prior_logit
    return np.clip(llrs, -LLR_CLIP, LLR_CLIP)


def min_cllr(scores, labels):
    """Minimum Cllr over all monotone non-decreasing calibrations of ``scores``.

    The scores are mapped to posteriors by the pool-adjacent-violators (PAV)
    algorithm (``sklearn.isotonic.isotonic_regression``; tied scores are
    pooled into one value first), the posteriors are turned into LLRs by subtracting the
    empirical prior log-odds ``log(N_tar / N_non)``, and :func:`cllr` is
    evaluated on them. PAV gives a posterior of exactly 1 (0) only to groups
    of scores that contain targets (non-targets) alone, so the resulting
    infinite LLRs always fall on the correct side; they are clipped to
    ``+-LLR_CLIP`` (750), where they cost exactly 0 bits, as in the limit.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Detection scores, higher meaning more likely a target.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.

    Returns
    -------
    float
        minCllr in bits, in [0, 1]; ``min_cllr(x) <= cllr(x)`` for any LLRs
        ``x``. 0 for separable scores, 1 when the scores carry no information.

    Raises
    ------
    ParameterError
        On empty, non-finite or mismatched input, or a missing class.

    References
    ----------
    .. [1] N. Brümmer, J. du Preez, "Application-independent evaluation of
       speaker detection", Computer Speech & Language 20(2-3), 230-275, 2006.
    .. [2] B. Zadrozny, C. Elkan, "Transforming classifier scores into accurate
       multiclass probability estimates", Proc. KDD, 2002.
    """
    scores, labels = check_scores_labels(scores, labels)
    return min(_cllr_bits(_pav_llrs(scores, labels), labels), 1.0)


# ---------------------------------------------------------------------------
# fixed threshold and summary


def far_frr(scores, labels, threshold):
    """False-acceptance and false-rejection rates at a fixed threshold.

    A trial is **accepted when** ``score >= threshold``.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Detection scores, higher meaning more likely a target.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.
    threshold : float
        Finite decision threshold.

    Returns
    -------
    far : float
        Fraction of non-targets accepted, in [0, 1].
    frr : float
        Fraction of targets rejected, in [0, 1].

    Raises
    ------
    ParameterError
        On invalid scores or labels, or a non-finite ``threshold``.
    """
    scores, labels = check_scores_labels(scores, labels)
    threshold = check_float("threshold", threshold)
    accept = scores >= threshold
    far = np.count_nonzero(accept & ~labels) / np.count_nonzero(~labels)
    frr = np.count_nonzero(~accept & labels) / np.count_nonzero(labels)
    return float(far), float(frr)


def evaluate(scores, labels, llrs=None, threshold=None):
    """Summary of the usual verification metrics, as a JSON-serialisable dict.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Detection scores, higher meaning more likely a target.
    labels : array_like of bool or {0, 1}, shape (N,)
        ``True``/``1`` for target trials. At least one of each class.
    llrs : array_like, shape (N,), optional
        Calibrated natural-log likelihood ratios of the same trials.
    threshold : float, optional
        A fixed threshold on ``scores`` (accept when ``score >= threshold``).

    Returns
    -------
    dict
        Always ``"n_target"``, ``"n_nontarget"`` (int), ``"eer"``,
        ``"min_dcf_0.01"``, ``"min_dcf_0.001"`` (float, p_target 0.01 and
        0.001, unit costs). With ``llrs``: ``"act_dcf_0.01"``, ``"cllr"`` and
        ``"min_cllr"`` (the latter computed from ``llrs`` so that
        ``min_cllr <= cllr``). With ``threshold``: ``"threshold"``, ``"far"``
        and ``"frr"``. Every value is a plain Python ``int`` or ``float``.

    Raises
    ------
    ParameterError
        If any argument is invalid (see the individual metrics).
    """
    scores, labels = check_scores_labels(scores, labels)
    n_tar = int(np.count_nonzero(labels))
    result = {
        "n_target": n_tar,
        "n_nontarget": int(labels.shape[0] - n_tar),
        "eer": eer(scores, labels),
        "min_dcf_0.01": min_dcf(scores, labels, p_target=0.01),
        "min_dcf_0.001": min_dcf(scores, labels, p_target=0.001),
    }
    if llrs is not None:
        llrs, _ = check_scores_labels(llrs, labels, score_name="llrs")
        result["act_dcf_0.01"] = act_dcf(llrs, labels, p_target=0.01)
        result["cllr"] = cllr(llrs, labels)
        result["min_cllr"] = min_cllr(llrs, labels)
    if threshold is not None:
        far, frr = far_frr(scores, labels, threshold)
        result["threshold"] = float(threshold)
        result["far"] = far
        result["frr"] = frr
    return result


# ---------------------------------------------------------------------------
# trial and score files


def _read_lines(path, what):
    """Return the lines of a UTF-8 text file, mapping OS errors to ParameterError."""
    try:
        with open(os.fspath(path), encoding="utf-8") as fh:
            return fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"path={str(path)!r}: cannot read {what} file ({exc})") from None


def read_trials(path):
    """Read a Kaldi/VoxCeleb trial list.

    Each non-blank line has three whitespace-separated fields, in one of two
    forms:

    - VoxCeleb: ``1 spkA/utt1.wav spkB/utt2.wav`` -- label (``1`` target,
      ``0`` non-target), enrollment, test;
    - Kaldi: ``model utt target`` -- enrollment, test, ``target`` or
      ``nontarget``.

    A line whose last field is ``target``/``nontarget`` is read in the Kaldi
    form, otherwise the first field must be ``0`` or ``1``. Blank lines are
    skipped.

    Parameters
    ----------
    path : str or os.PathLike
        Trial file, UTF-8.

    Returns
    -------
    list of tuple (int, str, str)
        ``(label, enroll, test)`` per trial, in file order.

    Raises
    ------
    ParameterError
        If the file cannot be read, holds no trials, or a line is malformed;
        the message names the file and the 1-based line number.
    """
    trials = []
    for lineno, line in enumerate(_read_lines(path, "trial"), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ParameterError(
                f"{path}:{lineno}: a trial line must have 3 fields "
                f"('label enroll test' or 'enroll test target|nontarget'), "
                f"got {len(fields)}: {line!r}"
            )
        if fields[2] in _TRIAL_KEYWORDS:
            trials.append((_TRIAL_KEYWORDS[fields[2]], fields[0], fields[1]))
        elif fields[0] in ("0", "1"):
            trials.append((int(fields[0]), fields[1], fields[2]))
        else:
            raise ParameterError(
                f"{path}:{lineno}: label must be 1/0 in the first field or "
                f"target/nontarget in the last field: {line!r}"
            )
    if not trials:
        raise ParameterError(f"{path}: the trial file contains no trials")
    return trials


def write_scores(path, rows):
    """Write a score file with one ``enroll test score`` line per trial.

    Scores are written with Python's shortest round-trip representation, so
    :func:`read_scores` gives back identical floats. The file is written
    atomically (temporary file, fsync, rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    rows : iterable of (str, str, float)
        ``(enroll, test, score)`` per trial. Identifiers must be non-empty and
        contain no whitespace; scores must be finite.

    Raises
    ------
    ParameterError
        If a row is malformed (the message gives its 0-based index).
    """
    lines = []
    for i, row in enumerate(rows):
        try:
            enroll, test, score = row
        except (TypeError, ValueError):
            raise ParameterError(
                f"rows[{i}]={row!r} must be a tuple (enroll, test, score)"
            ) from None
        for name, ident in (("enroll", enroll), ("test", test)):
            if not isinstance(ident, str) or not ident or any(c.isspace() for c in ident):
                raise ParameterError(
                    f"rows[{i}] {name}={ident!r} must be a non-empty string without whitespace"
                )
        score = check_float(f"rows[{i}] score", score)
        lines.append(f"{enroll} {test} {score!r}\n")
    atomic_write(os.path.abspath(os.fspath(path)), "".join(lines))


def read_scores(path):
    """Read a score file of ``enroll test score`` lines.

    Parameters
    ----------
    path : str or os.PathLike
        Score file, UTF-8, as written by :func:`write_scores` or Kaldi.
        Blank lines are skipped.

    Returns
    -------
    list of tuple (str, str, float)
        ``(enroll, test, score)`` per line, in file order (may be empty).

    Raises
    ------
    ParameterError
        If the file cannot be read or a line does not have three fields with
        a finite number last; the message names the file and the line number.
    """
    rows = []
    for lineno, line in enumerate(_read_lines(path, "score"), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise ParameterError(
                f"{path}:{lineno}: a score line must have 3 fields "
                f"'enroll test score', got {len(fields)}: {line!r}"
            )
        try:
            score = float(fields[2])
        except ValueError:
            score = None
        if score is None or not math.isfinite(score):
            raise ParameterError(
                f"{path}:{lineno}: score={fields[2]!r} must be a finite number: {line!r}"
            )
        rows.append((fields[0], fields[1], score))
    return rows
