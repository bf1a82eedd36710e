"""The one scoring path: float32 and float64 agree, and every caller uses it."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vpcore.errors import ParameterError
from vpcore.gallery import Gallery
from vpcore.normalisation import as_norm, top_n_stats
from vpcore.plda import PLDA
from vpcore.scoring import Scorer
from vpcore.voiceprint import RowLayout, Voiceprint


def _plda(R=6, seed=0):
    rng = np.random.default_rng(seed)
    spk = np.repeat(np.arange(30), 5)
    X = rng.standard_normal((30, R))[spk] * 2.0 + rng.standard_normal((150, R))
    return PLDA(n_iter=2).fit(X, spk), rng


@pytest.fixture(scope="module")
def scorer():
    plda, rng = _plda()
    return Scorer(plda, rng.standard_normal((40, 6)), asnorm_top=10)


def _reference(plda, cohort, top, means, n, probes):
    """Straight from PLDA.score_projected and as_norm, in float64."""
    raw = plda.score_projected(means, n, probes)
    e = top_n_stats(plda.score_projected(means, n, cohort), top)
    t = top_n_stats(plda.score_projected(cohort, 1, probes).T, top)
    return as_norm(raw, (e[0][:, None], e[1][:, None]), (t[0][None, :], t[1][None, :]))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_rows=st.integers(1, 12), n_probes=st.integers(1, 5),
       counts=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_float32_and_float64_scores_agree_with_the_formula(scorer, seed, n_rows, n_probes, counts):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n_probes, 6))
    rows, expected = [], []
    for k in range(n_rows):
        n = counts[k % len(counts)]
        mean = rng.standard_normal((1, 6)).astype(np.float32).astype(np.float64)
        rows.append(scorer.enrol(mean, n))
        expected.append(_reference(scorer.plda, scorer.cohort, 10, mean, n, Z))
    V = np.concatenate(rows)
    expected = np.concatenate(expected)
    s64 = scorer.scores(scorer.prepare(V, np.float64), Z)
    s32 = scorer.scores(scorer.prepare(V, np.float32), Z)
    assert s64.dtype == np.float64 and s32.dtype == np.float32
    np.testing.assert_allclose(s64, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(s32, s64, rtol=1e-4, atol=1e-4)
    # one probe at a time (the 1-v-N path) gives the same as the batch
    one = np.concatenate([scorer.scores(scorer.prepare(V, np.float64), z) for z in Z], axis=1)
    np.testing.assert_allclose(one, s64, rtol=1e-12, atol=1e-12)
    # a selection of rows scores like those rows of everything
    select = np.arange(0, n_rows, 2)
    np.testing.assert_allclose(scorer.scores(scorer.prepare(V, np.float64), Z, select),
                               s64[select], rtol=1e-12, atol=1e-12)


def test_without_asnorm_scores_are_the_plda_llr():
    plda, rng = _plda(seed=1)
    scorer = Scorer(plda)
    means, Z = rng.standard_normal((4, 6)), rng.standard_normal((3, 6))
    V = scorer.enrol(means, 2, np.float64)
    assert np.all(RowLayout(6).column(V, "norm_mean") == 0)
    assert np.all(RowLayout(6).column(V, "norm_std") == 1)
    np.testing.assert_allclose(scorer.scores(scorer.prepare(V, np.float64), Z),
                               plda.score_projected(means, 2, Z), rtol=1e-10, atol=1e-10)


def test_asnorm_needs_a_cohort_and_calibration_is_needed_for_confidence():
    plda, _ = _plda()
    with pytest.raises(ParameterError, match="cohort"):
        Scorer(plda, asnorm_top=5)
    with pytest.raises(ParameterError, match="calibration"):
        Scorer(plda).confidence(np.zeros(3))


def test_row_layout_names_the_columns():
    L = RowLayout(3)
    assert L.width == 7 and L.mean == slice(0, 3)
    row = L.pack(np.array([1.0, 2.0, 3.0]), 2, 5.0, 0.5, 1.5)
    assert row.dtype == np.float32 and list(row) == [1, 2, 3, 2, 5, 0.5, 1.5]
    assert [L.column(row, f) for f in L.FIELDS] == [2, 5, 0.5, 1.5]
    assert RowLayout.of_width(7) == L
    with pytest.raises(ParameterError, match="not a voiceprint row field"):
        L.index("mean")
    with pytest.raises(ParameterError, match="width 4"):
        RowLayout.of_width(4)
    vp = Voiceprint.from_vector(row, "f" * 16)
    assert (vp.n, vp.quad, vp.norm_mean, vp.norm_std) == (2, 5.0, 0.5, 1.5)
    np.testing.assert_array_equal(vp.vector, row)


def test_model_paths_share_the_scorer(small_model):
    """enroll, verify, score_many and Gallery all give the scorer's numbers."""
    from vpcore.synth import SyntheticSpeaker, synthesize

    takes = [small_model.extract(synthesize(SyntheticSpeaker.from_seed(k), duration=4.0,
                                            random_state=70 + k)) for k in range(4)]
    scorer = small_model.scorer_
    vp = small_model.enroll(takes[:3])
    mean = np.mean([t.vector.astype(np.float64) for t in takes[:3]], axis=0)
    np.testing.assert_array_equal(vp.vector, scorer.enrol(mean[None], 3)[0].astype(np.float32))
    s = scorer.scores(scorer.prepare(vp.vector[None]), takes[3].vector.astype(np.float64))
    assert small_model.verify(vp, takes[3]).llr == float(s[0, 0])
    assert Gallery(small_model, vp.vector[None]).scores(takes[3])[0] == s[0, 0]
    assert small_model.verify(vp, takes[3]).confidence == scorer.confidence(float(s[0, 0]))
