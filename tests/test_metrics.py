"""Tests of vpcore.metrics: hand-worked cases, properties and an independent reference."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpcore.errors import ParameterError
from vpcore.metrics import (
    act_dcf,
    cllr,
    det_curve,
    eer,
    evaluate,
    far_frr,
    min_cllr,
    min_dcf,
    read_scores,
    read_trials,
    write_scores,
)

# ---------------------------------------------------------------------------
# strategies and an independent O(N^2) reference


def _both_classes(trials):
    labels = [lab for _, lab in trials]
    return any(labels) and not all(labels)


# small integer scores make ties frequent
int_trials = st.lists(
    st.tuples(st.integers(-6, 6), st.booleans()), min_size=2, max_size=40
).filter(_both_classes)

float_trials = st.lists(
    st.tuples(
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False), st.booleans()
    ),
    min_size=2,
    max_size=40,
).filter(_both_classes)

any_trials = st.one_of(int_trials, float_trials)


def _split(trials):
    scores = np.array([s for s, _ in trials], dtype=float)
    labels = np.array([lab for _, lab in trials], dtype=bool)
    return scores, labels


def brute_force_eer(scores, labels):
    """EER by direct counting at every threshold and exact rational geometry.

    For every candidate threshold (each distinct score, then +inf) the miss and
    false-alarm rates are counted by looping over all trials (O(N^2) in all).
    The operating points are joined by straight segments, and every segment is
    intersected with the line p_miss == p_fa using exact fractions. All the
    intersections must agree; their common value is the EER.
    """
    scores = [float(s) for s in scores]
    labels = [bool(lab) for lab in labels]
    n_tar = sum(labels)
    n_non = len(labels) - n_tar
    points = []
    for t in sorted(set(scores)) + [math.inf]:
        miss = sum(1 for s, lab in zip(scores, labels) if lab and s < t)
        fa = sum(1 for s, lab in zip(scores, labels) if not lab and s >= t)
        points.append((Fraction(fa, n_non), Fraction(miss, n_tar)))
    crossings = set()
    for (fa0, m0), (fa1, m1) in zip(points, points[1:]):
        d0, d1 = fa0 - m0, fa1 - m1
        if d0 == d1:
            if d0 == 0:
                crossings.add(m0)
            continue
        lam = d0 / (d0 - d1)
        if 0 <= lam <= 1:
            crossings.add(m0 + lam * (m1 - m0))
    assert len(crossings) == 1, crossings
    return float(crossings.pop())


# ---------------------------------------------------------------------------
# EER


def test_eer_hand_computed_interpolated_case():
    # non-targets 1, 3; targets 2, 4, 5 (N_tar = 3, N_non = 2)
    # threshold : p_miss p_fa
    #   1       : 0      1
    #   2       : 0      1/2
    #   3       : 1/3    1/2     <- p_fa > p_miss
    #   4       : 1/3    0       <- p_fa < p_miss
    # on the segment from t=3 to t=4 p_miss stays 1/3 while p_fa falls from
    # 1/2 to 0, so the curves cross at 1/3.
    assert eer([1, 3, 2, 4, 5], [0, 0, 1, 1, 1]) == pytest.approx(1 / 3, abs=1e-15)


def test_eer_hand_computed_point_on_diagonal():
    # sklearn's example: non 0.1, 0.4; targets 0.35, 0.8
    # t=0.1: (0, 1); t=0.35: (0, 1/2); t=0.4: (1/2, 1/2) -> exactly on the diagonal
    assert eer([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.5


def test_eer_ties_across_classes_are_a_diagonal_segment():
    # targets 2, 3; non-targets 2, 0; the target and non-target tied at 2.
    # t=0: (p_miss 0, p_fa 1); t=2: (0, 1/2); t=3: (1/2, 0).
    # Accepting a random half of the tied pair gives (1/4, 1/4): EER = 1/4.
    # A method that broke the tie by input order would give 0 or 1/2.
    assert eer([2, 3, 2, 0], [1, 1, 0, 0]) == 0.25
    assert eer([2, 2, 3, 0], [0, 1, 1, 0]) == 0.25


def test_eer_separable_inverted_and_tied():
    assert eer([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 0.0
    assert eer([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 1.0
    assert eer([0.1, 0.2, 0.9], [1, 0, 0]) == 1.0
    assert eer([3.0] * 5, [1, 0, 0, 1, 0]) == 0.5


def test_eer_accepts_bool_and_int_labels_alike():
    scores = [0.3, 0.1, 0.7, 0.4, 0.2]
    assert eer(scores, [True, False, True, False, False]) == eer(scores, [1, 0, 1, 0, 0])


@settings(max_examples=150, deadline=None)
@given(any_trials)
def test_eer_matches_brute_force(trials):
    scores, labels = _split(trials)
    assert eer(scores, labels) == pytest.approx(brute_force_eer(scores, labels), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(any_trials)
def test_eer_in_unit_interval(trials):
    scores, labels = _split(trials)
    assert 0.0 <= eer(scores, labels) <= 1.0


@settings(max_examples=60, deadline=None)
@given(any_trials, st.data())
def test_metrics_do_not_depend_on_input_order(trials, data):
    scores, labels = _split(trials)
    perm = np.array(data.draw(st.permutations(range(len(scores)))))
    assert eer(scores[perm], labels[perm]) == eer(scores, labels)
    assert min_dcf(scores[perm], labels[perm]) == min_dcf(scores, labels)
    assert min_cllr(scores[perm], labels[perm]) == pytest.approx(
        min_cllr(scores, labels), abs=1e-12
    )
    for a, b in zip(det_curve(scores[perm], labels[perm]), det_curve(scores, labels)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=50, deadline=None)
@given(int_trials)
def test_rank_metrics_invariant_to_increasing_transform(trials):
    scores, labels = _split(trials)
    # exact, strictly increasing maps on small integers
    for transformed in (scores**3 + 5 * scores, np.arctan(scores), np.exp(scores / 4) - 7):
        assert eer(transformed, labels) == eer(scores, labels)
        for p in (0.01, 0.5):
            assert min_dcf(transformed, labels, p_target=p) == min_dcf(scores, labels, p_target=p)
        assert min_cllr(transformed, labels) == pytest.approx(min_cllr(scores, labels), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(int_trials)
def test_reversing_scores_reflects_eer_without_ties(trials):
    # with no ties, negating the scores swaps misses and false alarms: EER -> 1 - EER
    scores, labels = _split(trials)
    scores = scores + np.arange(len(scores)) * 1e-3  # break all ties
    assert eer(-scores, labels) == pytest.approx(1.0 - eer(scores, labels), abs=1e-12)


# ---------------------------------------------------------------------------
# DET curve


def test_det_curve_hand_computed():
    p_miss, p_fa, thr = det_curve([1, 3, 2, 4, 5], [0, 0, 1, 1, 1])
    np.testing.assert_allclose(p_miss, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(p_fa, [1, 0.5, 0.5, 0, 0, 0])
    np.testing.assert_array_equal(thr, [1, 2, 3, 4, 5, np.inf])


def test_det_curve_one_point_per_distinct_score():
    # 7 trials but only 3 distinct scores -> 3 thresholds + the reject-all point
    p_miss, p_fa, thr = det_curve([1, 1, 2, 2, 2, 3, 3], [0, 1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(thr, [1, 2, 3, np.inf])
    # at t=2 the trials tied at 1 (one target, one non) are rejected together
    np.testing.assert_allclose(p_miss, [0, 1 / 4, 3 / 4, 1])
    np.testing.assert_allclose(p_fa, [1, 2 / 3, 1 / 3, 0])


@settings(max_examples=60, deadline=None)
@given(any_trials)
def test_det_curve_is_monotone_and_spans_both_ends(trials):
    scores, labels = _split(trials)
    p_miss, p_fa, thr = det_curve(scores, labels)
    assert len(p_miss) == len(p_fa) == len(thr) == len(np.unique(scores)) + 1
    assert np.all(np.diff(thr) > 0)
    assert np.all(np.diff(p_miss) >= 0) and np.all(np.diff(p_fa) <= 0)
    assert (p_miss[0], p_fa[0], p_miss[-1], p_fa[-1]) == (0.0, 1.0, 1.0, 0.0)
    # each point agrees with far_frr at its (finite) threshold
    for k in range(len(thr) - 1):
        far, frr = far_frr(scores, labels, thr[k])
        assert (far, frr) == pytest.approx((p_fa[k], p_miss[k]))


# ---------------------------------------------------------------------------
# minDCF and actDCF


def test_min_dcf_hand_computed():
    # non-targets 1, 3; targets 2, 4, 5; points (p_miss, p_fa) from the EER test:
    # (0,1) (0,1/2) (1/3,1/2) (1/3,0) (2/3,0) (1,0)
    scores, labels = [1, 3, 2, 4, 5], [0, 0, 1, 1, 1]
    # p_target=0.9: norm = min(0.9, 0.1) = 0.1; DCF/norm = 9 p_miss + p_fa
    #   -> 1, 0.5, 3.5, 3, 6, 9; minimum 0.5 at t=2
    assert min_dcf(scores, labels, p_target=0.9) == pytest.approx(0.5)
    # p_target=0.01: norm = 0.01; DCF/norm = p_miss + 99 p_fa
    #   -> 99, 49.5, 49.83, 1/3, 2/3, 1; minimum 1/3 at t=4
    assert min_dcf(scores, labels, p_target=0.01) == pytest.approx(1 / 3)
    # p_target=0.5, c_miss=2: norm = min(1, 0.5) = 0.5; DCF/norm = 2 p_miss + p_fa
    #   -> 1, 0.5, 7/6, 2/3, 4/3, 2; minimum 0.5
    assert min_dcf(scores, labels, p_target=0.5, c_miss=2) == pytest.approx(0.5)
    # p_target=0.5, c_fa=10: norm = min(0.5, 5) = 0.5; DCF/norm = p_miss + 10 p_fa
    #   -> 10, 5, 5.33, 1/3, 2/3, 1; minimum 1/3
    assert min_dcf(scores, labels, p_target=0.5, c_fa=10) == pytest.approx(1 / 3)


def test_min_dcf_separable_is_zero_and_uninformative_is_one():
    assert min_dcf([5, 6, 1, 2], [1, 1, 0, 0]) == 0.0
    assert min_dcf([5, 6, 1, 2], [1, 1, 0, 0], p_target=0.001) == 0.0
    # inverted or tied scores cannot beat the trivial system
    assert min_dcf([1, 2, 5, 6], [1, 1, 0, 0]) == 1.0
    assert min_dcf([3, 3, 3, 3], [1, 1, 0, 0], p_target=0.3) == 1.0


@settings(max_examples=100, deadline=None)
@given(
    any_trials,
    st.sampled_from([0.001, 0.01, 0.05, 0.5, 0.99]),
    st.floats(0.1, 10),
    st.floats(0.1, 10),
)
def test_min_dcf_in_unit_interval_and_below_act_dcf(trials, p_target, c_miss, c_fa):
    scores, labels = _split(trials)
    m = min_dcf(scores, labels, p_target=p_target, c_miss=c_miss, c_fa=c_fa)
    a = act_dcf(scores, labels, p_target=p_target, c_miss=c_miss, c_fa=c_fa)
    assert 0.0 <= m <= 1.0
    assert a >= m


def test_act_dcf_hand_computed_and_accept_rule():
    # p_target = 0.5, unit costs: Bayes threshold -log(0.5/0.5) = 0, accept llr >= 0.
    # targets 2, -1 -> one miss (p_miss 1/2); non-targets -3, 0 -> 0 is accepted
    # (p_fa 1/2). DCF = 0.5*0.5 + 0.5*0.5 = 0.5, norm 0.5 -> 1.0
    assert act_dcf([2, -1, -3, 0], [1, 1, 0, 0], p_target=0.5) == pytest.approx(1.0)
    # p_target = 0.01: threshold log(99) = 4.595; targets 5, 3 (one miss), non
    # -2, 4.6 (one false alarm): DCF = 0.01*0.5 + 0.99*0.5 = 0.5, norm 0.01 -> 50
    assert act_dcf([5, 3, -2, 4.6], [1, 1, 0, 0], p_target=0.01) == pytest.approx(50.0)
    # same trials, the non-target moved just below the threshold: only the miss
    # counts: 0.01*0.5/0.01 = 0.5
    assert act_dcf([5, 3, -2, 4.59], [1, 1, 0, 0], p_target=0.01) == pytest.approx(0.5)


def test_calibrated_llrs_have_act_dcf_close_to_min_dcf():
    # target scores N(1, 1), non-target N(-1, 1): the true LLR is 2 s
    rng = np.random.default_rng(1)
    n = 20000
    s = np.r_[rng.normal(1, 1, n), rng.normal(-1, 1, n)]
    labels = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    llr = 2 * s
    for p in (0.5, 0.1, 0.01):
        m, a = min_dcf(llr, labels, p_target=p), act_dcf(llr, labels, p_target=p)
        assert m <= a <= m + 0.05
    # a mis-calibrated shift costs actual DCF but not minimum DCF
    assert act_dcf(llr + 4, labels) > act_dcf(llr, labels) + 0.5
    assert min_dcf(llr + 4, labels) == min_dcf(llr, labels)
    # and Cllr: calibrated close to its minimum, shifted far above
    assert cllr(llr, labels) - min_cllr(llr, labels) < 0.01
    assert cllr(llr + 4, labels) > cllr(llr, labels) + 0.5


# ---------------------------------------------------------------------------
# Cllr


def test_cllr_hand_computed():
    # each trial is right with LLR magnitude log 3: cost log2(1 + 1/3) = log2(4/3)
    llr = math.log(3)
    assert cllr([llr, -llr], [1, 0]) == pytest.approx(math.log2(4 / 3), rel=1e-14)
    # all wrong at log 3: log2(1 + 3) = 2 bits
    assert cllr([-llr, llr], [1, 0]) == pytest.approx(2.0, rel=1e-14)


def test_cllr_of_zero_llrs_is_exactly_one():
    for n in (2, 3, 7, 101):
        labels = np.arange(n) % 3 == 0
        labels[0], labels[1] = True, False
        assert cllr(np.zeros(n), labels) == 1.0


def test_cllr_extremes_do_not_overflow():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert cllr([1e6, 2e6, -1e6], [1, 1, 0]) < 1e-12
        wrong = cllr([-1e300, 1e300], [1, 0])
    assert math.isfinite(wrong) and wrong > 1e299


@settings(max_examples=100, deadline=None)
@given(any_trials)
def test_min_cllr_below_cllr_and_in_unit_interval(trials):
    llrs, labels = _split(trials)
    m = min_cllr(llrs, labels)
    assert 0.0 <= m <= 1.0
    assert m <= cllr(llrs, labels) + 1e-9
    assert m <= cllr(llrs / 10, labels) + 1e-9


def test_min_cllr_extremes():
    assert min_cllr([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 0.0
    assert min_cllr([4, 4, 4, 4, 4], [1, 0, 1, 0, 0]) == pytest.approx(1.0, abs=1e-12)
    # inverted scores: the best monotone map is a constant
    assert min_cllr([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == pytest.approx(1.0, abs=1e-12)


def test_min_cllr_hand_computed():
    # sorted: 1 N, 2 T, 3 N, 4 T. PAV pools the violating pair (2 T, 3 N) into a
    # bin with posterior 1/2; the others are pure: posteriors 0, 1/2, 1/2, 1.
    # Empirical prior 1/2, so LLRs are -inf, 0, 0, +inf: the pooled target and
    # non-target each cost 1 bit, the others 0: Cllr = 0.5*(1/2 + 1/2) = 0.5
    assert min_cllr([1, 2, 3, 4], [0, 1, 0, 1]) == pytest.approx(0.5, abs=1e-12)


# ---------------------------------------------------------------------------
# fixed threshold and summary


def test_far_frr_accepts_at_equality():
    scores, labels = [1, 2, 3, 4], [0, 1, 0, 1]
    # t=3 accepts 3 (non) and 4 (target): far 1/2, frr 1/2 (target 2 rejected)
    assert far_frr(scores, labels, 3) == (0.5, 0.5)
    # t=2 accepts 2, 3, 4: far 1/2, frr 0
    assert far_frr(scores, labels, 2) == (0.5, 0.0)
    assert far_frr(scores, labels, 4.5) == (0.0, 1.0)
    assert far_frr(scores, labels, -10) == (1.0, 0.0)


def test_evaluate_is_json_serialisable_and_consistent():
    rng = np.random.default_rng(2)
    s = np.r_[rng.normal(1, 1, 300), rng.normal(-1, 1, 700)]
    labels = np.r_[np.ones(300), np.zeros(700)]
    base = evaluate(s, labels)
    assert set(base) == {"n_target", "n_nontarget", "eer", "min_dcf_0.01", "min_dcf_0.001"}
    full = evaluate(s, labels, llrs=2 * s, threshold=0.5)
    json.dumps(full)
    for key, value in full.items():
        assert type(value) in (int, float), key
    assert full["n_target"] == 300 and full["n_nontarget"] == 700
    assert full["eer"] == eer(s, labels)
    assert full["min_dcf_0.01"] == min_dcf(s, labels, p_target=0.01)
    assert full["min_dcf_0.001"] == min_dcf(s, labels, p_target=0.001)
    assert full["act_dcf_0.01"] == act_dcf(2 * s, labels, p_target=0.01)
    assert full["cllr"] == cllr(2 * s, labels)
    assert full["min_cllr"] <= full["cllr"]
    assert (full["far"], full["frr"]) == far_frr(s, labels, 0.5)
    assert full["threshold"] == 0.5


# ---------------------------------------------------------------------------
# trial and score files


def test_read_trials_both_formats(tmp_path):
    vox = tmp_path / "vox.txt"
    vox.write_text("1 id1/a.wav id1/b.wav\n0 id1/a.wav id2/c.wav\n\n", encoding="utf-8")
    assert read_trials(vox) == [(1, "id1/a.wav", "id1/b.wav"), (0, "id1/a.wav", "id2/c.wav")]
    kaldi = tmp_path / "trials"
    kaldi.write_text("spk1 utt7 target\nspk1 utt9 nontarget\n", encoding="utf-8")
    assert read_trials(str(kaldi)) == [(1, "spk1", "utt7"), (0, "spk1", "utt9")]
    for label, _, _ in read_trials(vox) + read_trials(kaldi):
        assert type(label) is int


@pytest.mark.parametrize(
    "bad_line",
    ["1 a.wav", "1 a.wav b.wav c.wav", "2 a.wav b.wav", "x a.wav b.wav", "a b same"],
)
def test_read_trials_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "trials.txt"
    path.write_text(f"1 a.wav b.wav\n0 a.wav c.wav\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(ParameterError) as err:
        read_trials(path)
    assert str(path) in str(err.value) and ":3:" in str(err.value)


def test_read_trials_empty_or_missing_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="no trials"):
        read_trials(empty)
    with pytest.raises(ParameterError, match="missing.txt"):
        read_trials(tmp_path / "missing.txt")


def test_scores_round_trip(tmp_path):
    rows = [
        ("id1/a.wav", "id1/b.wav", 0.1),
        ("spk1", "utt9", -2.5e10),
        ("x", "y", 1e-300),
        ("x", "z", 1 / 3),
        ("x", "w", np.float64(-0.0)),
    ]
    path = tmp_path / "scores.txt"
    write_scores(path, rows)
    back = read_scores(path)
    assert back == [(e, t, float(s)) for e, t, s in rows]
    assert path.read_text(encoding="utf-8").splitlines()[0] == "id1/a.wav id1/b.wav 0.1"
    # overwriting replaces the file and leaves no temporary files behind
    write_scores(path, rows[:1])
    assert read_scores(path) == [rows[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.txt"]


@pytest.mark.parametrize("bad_line", ["a b", "a b c d", "a b notanumber", "a b nan", "a b inf"])
def test_read_scores_malformed_line_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "scores.txt"
    path.write_text(f"a b 0.5\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(ParameterError) as err:
        read_scores(path)
    assert str(path) in str(err.value) and ":2:" in str(err.value)


@pytest.mark.parametrize(
    "row, name",
    [
        (("a b", "c", 1.0), "enroll"),
        (("a", "", 1.0), "test"),
        (("a", "c", float("nan")), "score"),
        (("a", "c"), "rows[0]"),
        ((1, "c", 1.0), "enroll"),
    ],
)
def test_write_scores_rejects_bad_rows(tmp_path, row, name):
    path = tmp_path / "scores.txt"
    with pytest.raises(ParameterError, match=name.replace("[", r"\[").replace("]", r"\]")):
        write_scores(path, [row])
    assert not path.exists()


# ---------------------------------------------------------------------------
# validation: every bad input is a ParameterError naming the parameter

GOOD_S = [0.1, 0.9, 0.4, 0.3]
GOOD_L = [0, 1, 1, 0]

FUNCS = {
    "eer": (eer, "scores"),
    "det_curve": (det_curve, "scores"),
    "min_dcf": (min_dcf, "scores"),
    "act_dcf": (act_dcf, "llrs"),
    "cllr": (cllr, "llrs"),
    "min_cllr": (min_cllr, "scores"),
    "far_frr": (lambda s, lab: far_frr(s, lab, 0.5), "scores"),
    "evaluate": (evaluate, "scores"),
}

BAD_INPUTS = {
    "empty scores": ([], [], "{s}"),
    "2-D scores": ([[0.1, 0.2], [0.3, 0.4]], [[0, 1], [1, 0]], "{s}"),
    "scalar scores": (0.5, 1, "{s}"),
    "nan score": ([0.1, np.nan, 0.3, 0.4], GOOD_L, "{s}"),
    "inf score": ([0.1, np.inf, 0.3, 0.4], GOOD_L, "{s}"),
    "text score": (["a", "b"], [0, 1], "{s}"),
    "length mismatch": (GOOD_S, [0, 1, 1], "labels"),
    "label 2": (GOOD_S, [0, 1, 2, 0], "labels"),
    "label 0.5": (GOOD_S, [0, 1, 0.5, 0], "labels"),
    "label -1": (GOOD_S, [0, 1, -1, 0], "labels"),
    "nan label": (GOOD_S, [0, 1, np.nan, 0], "labels"),
    "only targets": (GOOD_S, [1, 1, 1, 1], "labels"),
    "only non-targets": (GOOD_S, [False] * 4, "labels"),
}


@pytest.mark.parametrize("func_name", sorted(FUNCS))
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_arrays_raise_parameter_error_naming_parameter(func_name, case):
    func, score_name = FUNCS[func_name]
    scores, labels, name = BAD_INPUTS[case]
    name = name.format(s=score_name)
    with pytest.raises(ParameterError) as err:
        func(scores, labels)
    assert name in str(err.value)


@pytest.mark.parametrize("func", [min_dcf, act_dcf])
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"p_target": 0.0}, "p_target"),
        ({"p_target": 1.0}, "p_target"),
        ({"p_target": -0.1}, "p_target"),
        ({"p_target": float("nan")}, "p_target"),
        ({"p_target": "0.01"}, "p_target"),
        ({"c_miss": 0}, "c_miss"),
        ({"c_miss": -1}, "c_miss"),
        ({"c_fa": 0.0}, "c_fa"),
        ({"c_fa": float("inf")}, "c_fa"),
    ],
)
def test_bad_costs_raise_parameter_error_naming_parameter(func, kwargs, name):
    with pytest.raises(ParameterError) as err:
        func(GOOD_S, GOOD_L, **kwargs)
    assert name in str(err.value)
    value = next(iter(kwargs.values()))
    if isinstance(value, float) and math.isfinite(value):
        assert str(value) in str(err.value)


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), "high", None])
def test_bad_threshold_raises(threshold):
    with pytest.raises(ParameterError, match="threshold"):
        far_frr(GOOD_S, GOOD_L, threshold)


def test_evaluate_validates_llrs():
    with pytest.raises(ParameterError, match="llrs"):
        evaluate(GOOD_S, GOOD_L, llrs=[0.1, 0.2])
    with pytest.raises(ParameterError, match="llrs"):
        evaluate(GOOD_S, GOOD_L, llrs=[0.1, np.nan, 0.1, 0.1])
    with pytest.raises(ParameterError, match="threshold"):
        evaluate(GOOD_S, GOOD_L, threshold=float("nan"))
