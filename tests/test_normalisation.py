"""Tests of vpcore.normalisation: top-n cohort statistics and AS-norm."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vpcore.errors import ParameterError
from vpcore.normalisation import as_norm, pooled_row_stats, pooled_top_stats, top_n_stats

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
cohorts = hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 40)),
                     elements=finite)


@settings(max_examples=60, deadline=None)
@given(cohorts, st.integers(1, 50))
def test_top_n_stats_match_sorting(scores, top_n):
    mean, std = top_n_stats(scores, top_n)
    k = min(top_n, scores.shape[-1])
    top = np.sort(scores, axis=-1)[..., -k:]
    assert mean.shape == std.shape == scores.shape[:-1]
    np.testing.assert_allclose(mean, top.mean(axis=-1), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(std, np.maximum(top.std(axis=-1), 1e-6), rtol=1e-7, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40), elements=finite), st.integers(1, 50))
def test_top_n_stats_of_one_cohort_vector_are_scalars(scores, top_n):
    mean, std = top_n_stats(scores, top_n)
    assert np.ndim(mean) == 0 and np.ndim(std) == 0
    assert mean >= scores.mean() - 1e-9 * max(1.0, np.abs(scores).max())  # top of the cohort
    assert std >= 1e-6


def test_top_n_picks_the_largest_values_whatever_their_order():
    scores = np.array([5.0, -1.0, 9.0, 0.0, 7.0, 3.0])
    mean, std = top_n_stats(scores, 3)
    assert mean == pytest.approx(7.0)
    assert std == pytest.approx(np.std([5.0, 7.0, 9.0]))
    np.testing.assert_allclose(top_n_stats(np.random.default_rng(0).permutation(scores), 3),
                               (mean, std))


def test_top_n_larger_than_the_cohort_uses_the_whole_cohort():
    scores = np.array([[1.0, 2.0, 6.0]])
    np.testing.assert_allclose(top_n_stats(scores, 100), top_n_stats(scores, 3))
    assert top_n_stats(scores, 100)[0][0] == pytest.approx(3.0)


def test_std_is_floored_so_a_constant_cohort_is_safe():
    mean, std = top_n_stats(np.full(10, 2.5), 5)
    assert mean == 2.5 and std == 1e-6
    assert np.isfinite(as_norm(3.0, (mean, std), (mean, std)))


# ---------------------------------------------------------------------------
# AS-norm


@settings(max_examples=40, deadline=None)
@given(finite, st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_score_equal_to_both_means_normalises_to_zero(mu, sd_e, sd_t):
    assert as_norm(mu, (mu, sd_e), (mu, sd_t)) == 0.0


def test_as_norm_is_the_average_of_two_z_scores():
    assert as_norm(5.0, (1.0, 2.0), (3.0, 0.5)) == pytest.approx(0.5 * (2.0 + 4.0))


@settings(max_examples=40, deadline=None)
@given(finite, st.floats(-50, 50), st.floats(0.01, 50), st.integers(0, 10_000))
def test_as_norm_is_invariant_to_shifting_and_scaling_every_score(score, shift, scale, seed):
    rng = np.random.default_rng(seed)
    enrol_cohort, probe_cohort = rng.normal(0, 3, 30), rng.normal(1, 2, 30)
    assume(np.std(np.sort(enrol_cohort)[-10:]) > 1e-3 and np.std(np.sort(probe_cohort)[-10:]) > 1e-3)

    def normalised(s, e, p):
        return as_norm(s, top_n_stats(e, 10), top_n_stats(p, 10))

    base = normalised(score, enrol_cohort, probe_cohort)
    moved = normalised(scale * score + shift, scale * enrol_cohort + shift,
                       scale * probe_cohort + shift)
    assert moved == pytest.approx(base, rel=1e-7, abs=1e-7)


@settings(max_examples=30, deadline=None)
@given(finite, finite, st.floats(1e-3, 1e3), finite, st.floats(1e-3, 1e3))
def test_as_norm_is_symmetric_in_enrolment_and_probe(score, mu_e, sd_e, mu_t, sd_t):
    assert as_norm(score, (mu_e, sd_e), (mu_t, sd_t)) == pytest.approx(
        as_norm(score, (mu_t, sd_t), (mu_e, sd_e)), rel=1e-12, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(finite, finite, st.floats(1e-3, 1e3), finite, st.floats(1e-3, 1e3), st.floats(0.0, 100))
def test_as_norm_is_increasing_in_the_raw_score(score, mu_e, sd_e, mu_t, sd_t, delta):
    low = as_norm(score, (mu_e, sd_e), (mu_t, sd_t))
    high = as_norm(score + delta, (mu_e, sd_e), (mu_t, sd_t))
    assert high >= low


def test_as_norm_broadcasts_over_a_matrix_of_scores():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(3, 4))
    enrol = top_n_stats(rng.normal(size=(3, 1, 20)), 5)   # shape (3, 1)
    probe = top_n_stats(rng.normal(size=(1, 4, 20)), 5)   # shape (1, 4)
    out = as_norm(scores, enrol, probe)
    assert out.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert out[i, j] == pytest.approx(as_norm(scores[i, j], (enrol[0][i, 0], enrol[1][i, 0]),
                                                      (probe[0][0, j], probe[1][0, j])))


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("top_n", [0, -3, 2.5, True, "5", None])
def test_invalid_top_n_raises_parameter_error(top_n):
    with pytest.raises(ParameterError, match="top_n"):
        top_n_stats(np.arange(5.0), top_n)


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_empty_cohort_raises_parameter_error(shape):
    with pytest.raises(ParameterError, match="cohort"):
        top_n_stats(np.zeros(shape), 3)


# -- adaptive in-domain cohort ------------------------------------------------------

def _pooled_reference(cohort, in_domain, top_n, own):
    """pooled_top_stats written from its definition: one pool per row, sorted."""
    mus, sds = [], []
    for o in own:
        pool = np.concatenate([cohort, in_domain if o < 0 else np.delete(in_domain, o)])
        k = int(min(len(pool), max(1, round(top_n * len(pool) / len(cohort)))))
        top = np.sort(pool)[-k:]
        mus.append(top.mean())
        sds.append(max(top.std(), 1e-6))
    return np.array(mus), np.array(sds)


scores_1d = st.integers(1, 40).flatmap(
    lambda n: hnp.arrays(np.float64, n, elements=st.floats(-1e3, 1e3, allow_nan=False)))
in_domain_1d = st.integers(0, 60).flatmap(
    lambda n: hnp.arrays(np.float64, n, elements=st.floats(-1e3, 1e3, allow_nan=False)))


@settings(max_examples=80, deadline=None)
@given(scores_1d, in_domain_1d, st.integers(1, 50), st.data())
def test_pooled_stats_equal_one_sorted_pool_per_row(cohort, in_domain, top_n, data):
    own = np.array(data.draw(st.lists(st.integers(-1, len(in_domain) - 1), min_size=0,
                                      max_size=12)), dtype=np.int64)
    mean, std = pooled_top_stats(cohort, in_domain, top_n, own)
    ref_mean, ref_std = _pooled_reference(cohort, in_domain, top_n, own)
    assert mean.shape == std.shape == own.shape
    scale = max(1.0, np.abs(np.concatenate([cohort, in_domain])).max())
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-9 * scale)
    # the one-pass variance loses a little to cancellation against the two-pass reference
    np.testing.assert_allclose(std, ref_std, rtol=1e-6, atol=1e-6 * scale)


def test_pooled_stats_without_in_domain_scores_are_the_cohort_stats():
    cohort = np.random.default_rng(3).normal(size=50)
    mean, std = pooled_top_stats(cohort, np.zeros(0), 10, np.full(4, -1))
    np.testing.assert_allclose(mean, top_n_stats(cohort, 10)[0])
    np.testing.assert_allclose(std, top_n_stats(cohort, 10)[1])
    # a single enrolled voiceprint, left out of its own pool, leaves the cohort alone too
    mean, std = pooled_top_stats(cohort, np.array([40.0]), 10, np.array([0]))
    np.testing.assert_allclose(mean, top_n_stats(cohort, 10)[0])


def test_pooled_stats_leave_out_the_own_target_score():
    # a genuine score far above every impostor score would inflate the probe's mean and
    # spread if it stayed in: left out, its row sees the impostors only
    rng = np.random.default_rng(4)
    cohort, in_domain = rng.normal(size=100), rng.normal(size=20)
    in_domain[7] = 25.0
    mean, std = pooled_top_stats(cohort, in_domain, 10, np.array([7, -1, 3]))
    assert mean[0] < 3.0 and std[0] < 1.5
    assert mean[1] > mean[0] and std[1] > 3 * std[0]  # a row without it sees the target
    assert mean[2] == pytest.approx(mean[1], rel=0.2)  # another row's own score is typical


def test_pooled_top_count_keeps_the_cohort_fraction():
    # 100 cohort + 100 in-domain scores with top_n 10: the top 20 of the 200 are used
    cohort, in_domain = np.arange(100.0), np.arange(100.0) + 0.5
    mean, _ = pooled_top_stats(cohort, in_domain, 10)
    np.testing.assert_allclose(mean, np.sort(np.concatenate([cohort, in_domain]))[-20:].mean())


@pytest.mark.parametrize("own, rule", [
    (np.array([5]), r"own must lie in \[-1, 3\)"),
    (np.array([-2]), r"own must lie in \[-1, 3\)"),
    (np.array([0.5]), "own must be a 1-D array of indices"),
    (np.array([[0]]), "own must be a 1-D array of indices"),
])
def test_pooled_stats_refuse_bad_own_indices(own, rule):
    with pytest.raises(ParameterError, match=rule):
        pooled_top_stats(np.ones(5), np.ones(3), 2, own)


def test_pooled_stats_refuse_an_empty_cohort():
    with pytest.raises(ParameterError, match="cohort_scores has no entries"):
        pooled_top_stats(np.zeros(0), np.ones(3), 2, np.array([0]))


# -- the voiceprint side pooled (pooled_row_stats) -------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 30), st.integers(0, 12), st.integers(1, 40),
       st.integers(0, 10_000))
def test_pooled_row_stats_equal_each_rows_own_sorted_pool(E, K, M, top_n, seed):
    rng = np.random.default_rng(seed)
    cohort, in_domain = rng.normal(size=(E, K)), rng.normal(size=(E, M))
    own = rng.integers(-1, M, size=E) if M else np.full(E, -1)
    mu, sd = pooled_row_stats(cohort, in_domain, top_n, own)
    for e in range(E):
        pool = np.concatenate([cohort[e], np.delete(in_domain[e], own[e]) if own[e] >= 0
                               else in_domain[e]])
        k = min(len(pool), max(1, round(top_n * len(pool) / K)))
        top = np.sort(pool)[-k:]
        assert mu[e] == pytest.approx(top.mean(), abs=1e-9)
        assert sd[e] == pytest.approx(max(top.std(), 1e-6), abs=1e-9)


def test_pooled_row_stats_leave_out_only_the_rows_own_score():
    cohort = np.zeros((2, 4))
    in_domain = np.array([[9.0, 0.0], [9.0, 0.0]])  # both rows see a 9 in column 0
    mu, _ = pooled_row_stats(cohort, in_domain, 1, own=np.array([0, -1]))
    assert mu[0] == 0.0  # its own 9 is left out
    assert mu[1] > 0.0  # the other row keeps it in its top


def test_pooled_row_stats_without_in_domain_are_the_cohort_stats():
    rng = np.random.default_rng(1)
    cohort = rng.normal(size=(3, 20))
    mu, sd = pooled_row_stats(cohort, np.zeros((3, 0)), 5)
    ref = top_n_stats(cohort, 5)
    np.testing.assert_allclose(mu, ref[0]), np.testing.assert_allclose(sd, ref[1])


@pytest.mark.parametrize("in_domain, own, match", [
    (np.zeros((3, 2)), None, r"in_domain must have shape \(2, M\)"),
    (np.zeros((2, 2)), np.array([0]), "own must be 2 column indices"),
    (np.zeros((2, 2)), np.array([0, 2]), r"own must lie in \[-1, 2\)"),
])
def test_pooled_row_stats_refuse_bad_shapes(in_domain, own, match):
    with pytest.raises(ParameterError, match=match):
        pooled_row_stats(np.zeros((2, 3)), in_domain, 2, own)
