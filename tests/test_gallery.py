"""1-v-N scoring with Gallery: same scores as the PLDA formula, exact top-n, clear errors."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vpcore.errors import ParameterError
from vpcore.gallery import Gallery
from vpcore.normalisation import as_norm, top_n_stats
from vpcore.scoring import Scorer
from vpcore.synth import SyntheticSpeaker, synthesize


def _voice(speaker, utt, duration=4.0):
    return synthesize(SyntheticSpeaker.from_seed(speaker), duration=duration, random_state=utt)


@pytest.fixture(scope="module")
def takes(small_model):
    """Three fresh takes of each of six speakers, and one probe take per speaker."""
    enrol = [[small_model.extract(_voice(k, 500 + j)) for j in range(3)] for k in range(6)]
    probes = [small_model.extract(_voice(k, 600)) for k in range(6)]
    return enrol, probes


@pytest.fixture(scope="module")
def mixed(small_model, takes):
    """Voiceprints of 1, 2 and 3 takes (so several take counts share one gallery)."""
    enrol, _ = takes
    return [small_model.enroll(t[: 1 + k % 3]) for k, t in enumerate(enrol)]


def _reference(model, vp, take):
    """The LLR straight from the PLDA formula and AS-norm, one pair at a time."""
    plda, z = model.plda_, take.vector.astype(np.float64)[None, :]
    mean = vp.mean.astype(np.float64)[None, :]
    raw = plda.score_projected(mean, vp.n, z)[0, 0]
    if model.asnorm_top is None:
        return raw
    e = top_n_stats(plda.score_projected(mean, vp.n, model.cohort_)[0], model.asnorm_top)
    t = top_n_stats(plda.score_projected(model.cohort_, 1, z)[:, 0], model.asnorm_top)
    return as_norm(raw, e, t)


@pytest.mark.parametrize("asnorm", [True, False])
def test_scores_equal_the_plda_formula_for_mixed_take_counts(small_model, takes, asnorm):
    model = small_model if asnorm else copy.copy(small_model)
    if not asnorm:  # the same model scored without AS-norm
        model.asnorm_top = None
        model.scorer_ = Scorer(small_model.plda_, calibration=small_model.calibration_)
    enrol, probes = takes
    vps = [model.enroll(t[: 1 + k % 3]) for k, t in enumerate(enrol)]
    gallery = Gallery(model, np.stack([vp.vector for vp in vps]))
    assert sorted(gallery.counts_) == [1, 2, 3]
    for probe in probes:
        expected = [_reference(model, vp, probe) for vp in vps]
        np.testing.assert_allclose(gallery.scores(probe), expected, rtol=1e-4, atol=1e-4)


def test_search_ranks_like_sorting_all_scores_and_calibrates(small_model, takes, mixed):
    _, probes = takes
    gallery = Gallery(small_model, np.stack([vp.vector for vp in mixed]))
    for k, probe in enumerate(probes):
        scores = gallery.scores(probe)
        rows, llrs, conf = gallery.search(probe, top_n=3)
        np.testing.assert_array_equal(rows, np.argsort(-scores, kind="stable")[:3])
        np.testing.assert_allclose(llrs, scores[rows], rtol=1e-6)
        np.testing.assert_allclose(conf, small_model.calibration_.predict_proba(llrs))
        assert np.all(np.diff(llrs) <= 0)
        assert rows[0] == k  # each synthetic speaker's own voiceprint comes first


def test_search_returns_fewer_when_fewer_rows(small_model, takes, mixed):
    _, probes = takes
    gallery = Gallery(small_model, np.stack([vp.vector for vp in mixed[:2]]))
    rows, llrs, conf = gallery.search(probes[0], top_n=10)
    assert sorted(rows) == [0, 1] and len(llrs) == len(conf) == 2
    rows, llrs, conf = gallery.search(probes[0], top_n=3, rows=[])
    assert rows.size == llrs.size == conf.size == 0


def test_ties_are_broken_by_row_index(small_model, takes, mixed):
    _, probes = takes
    V = np.stack([mixed[1].vector, mixed[0].vector, mixed[0].vector, mixed[0].vector])
    rows, llrs, _ = Gallery(small_model, V).search(probes[0], top_n=2)
    assert list(rows) == [1, 2] and llrs[0] == llrs[1]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_search_within_rows_equals_brute_force(small_model, takes, mixed, data):
    _, probes = takes
    V = np.concatenate([np.stack([vp.vector for vp in mixed])] * 3)  # 18 rows, with ties
    gallery = Gallery(small_model, V)
    probe = probes[data.draw(st.integers(0, len(probes) - 1))]
    subset = data.draw(st.lists(st.integers(0, len(V) - 1), unique=True, max_size=len(V)))
    rows = np.sort(np.asarray(subset, dtype=np.int64))
    top_n = data.draw(st.integers(1, 20))
    got, llrs, _ = gallery.search(probe, top_n, rows=rows)
    scores = gallery.scores(probe)
    expected = rows[np.lexsort((rows, -scores[rows]))][:top_n]
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(llrs, scores[expected], rtol=1e-6)
    # the small-subset path (gathering rows) agrees with scoring everything
    np.testing.assert_allclose(gallery.scores(probe, rows), scores[rows], rtol=1e-6, atol=1e-6)


def test_score_many_is_the_gallery_with_every_confidence(small_model, takes, mixed):
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    llrs, conf = small_model.score_many(V, probes[1])
    np.testing.assert_array_equal(llrs, Gallery(small_model, V).scores(probes[1]))
    np.testing.assert_allclose(conf, small_model.calibration_.predict_proba(llrs))


def test_float32_matrix_is_not_copied(small_model, mixed):
    V = np.stack([vp.vector for vp in mixed])
    assert np.shares_memory(Gallery(small_model, V).rows_.means, V)


@pytest.mark.parametrize("field,value,rule", [("n", 0.0, "take count"), ("norm_std", 0.0, "norm_std"),
                                              ("norm_std", np.nan, "norm_std")])
def test_bad_rows_are_refused_naming_the_row(small_model, mixed, field, value, rule):
    V = np.stack([vp.vector for vp in mixed])
    V[4, small_model.scorer_.layout.index(field)] = value
    with pytest.raises(ParameterError, match=rf"V\[4\].*{rule}"):
        Gallery(small_model, V)


def test_non_finite_mean_is_reported_at_scoring(small_model, takes, mixed):
    V = np.stack([vp.vector for vp in mixed])
    V[2, 0] = np.inf
    with pytest.raises(ParameterError, match=r"V\[2\] gives a non-finite score"):
        Gallery(small_model, V).search(takes[1][0], top_n=3)


@pytest.mark.parametrize("kwargs,match", [
    ({"top_n": 0}, "top_n"),
    ({"top_n": 2, "rows": [0, 9]}, r"rows must lie in \[0, 6\)"),
    ({"top_n": 2, "rows": [[0, 1]]}, "1-D array"),
    ({"top_n": 2, "rows": [0.5]}, "row indices"),
])
def test_bad_search_arguments(small_model, takes, mixed, kwargs, match):
    gallery = Gallery(small_model, np.stack([vp.vector for vp in mixed]))
    with pytest.raises(ParameterError, match=match):
        gallery.search(takes[1][0], **kwargs)


def test_wrong_width_is_refused(small_model, mixed):
    V = np.stack([vp.vector for vp in mixed])
    with pytest.raises(ParameterError, match=r"V has shape \(6, \d+\), expected"):
        Gallery(small_model, V[:, :-1])
