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


# -- adaptive in-domain cohort --------------------------------------------------------

def _adaptive_reference(model, vps, probe, pool=None):
    """Adaptive AS-norm from its definition: the probe's cohort scores pooled with its
    raw scores against the pool's voiceprints, each row's own score left out."""
    from vpcore.normalisation import pooled_top_stats

    plda, z = model.plda_, probe.vector.astype(np.float64)[None, :]
    pool = list(range(len(vps))) if pool is None else list(pool)
    raw = np.array([plda.score_projected(vp.mean.astype(np.float64)[None, :], vp.n, z)[0, 0]
                    for vp in vps])
    cohort = plda.score_projected(model.cohort_, 1, z)[:, 0]
    out = []
    for i, vp in enumerate(vps):
        own = np.array([pool.index(i) if i in pool else -1])
        t = pooled_top_stats(cohort, raw[pool], model.asnorm_top, own)
        e = top_n_stats(plda.score_projected(vp.mean.astype(np.float64)[None, :], vp.n,
                                             model.cohort_)[0], model.asnorm_top)
        out.append(as_norm(raw[i], e, (t[0][0], t[1][0])))
    return np.array(out)


def test_adaptive_scores_equal_their_definition(small_model, takes, mixed):
    _, probes = takes
    gallery = Gallery(small_model, np.stack([vp.vector for vp in mixed]), adaptive_cohort=True)
    assert gallery.adaptive_cohort and gallery.pool_ is None
    for probe in probes:
        np.testing.assert_allclose(gallery.scores(probe),
                                   _adaptive_reference(small_model, mixed, probe),
                                   rtol=1e-4, atol=1e-4)


def test_adaptive_scores_differ_from_the_cohort_only_ones(small_model, takes, mixed):
    # not a no-op: the enrolled voiceprints move the probe's statistics
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    plain, adaptive = Gallery(small_model, V), Gallery(small_model, V, adaptive_cohort=True)
    diff = np.abs(plain.scores(probes[0]) - adaptive.scores(probes[0]))
    assert diff.max() > 1e-3


def test_adaptive_pool_above_its_limit_is_an_evenly_spaced_subset(small_model, takes, mixed,
                                                                   monkeypatch):
    import vpcore.gallery as gallery_module

    monkeypatch.setattr(gallery_module, "ADAPTIVE_POOL", 4)
    _, probes = takes
    gallery = Gallery(small_model, np.stack([vp.vector for vp in mixed]), adaptive_cohort=True)
    np.testing.assert_array_equal(gallery.pool_, [0, 2, 3, 5])
    for probe in probes[:3]:  # rows 1 and 4 are outside the pool and keep all of it
        np.testing.assert_allclose(gallery.scores(probe),
                                   _adaptive_reference(small_model, mixed, probe, [0, 2, 3, 5]),
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(gallery.scores(probe, rows=[4, 2]),
                                   gallery.scores(probe)[[4, 2]], rtol=1e-6)


def test_adaptive_scores_of_a_group_are_those_of_the_whole_gallery(small_model, takes, mixed):
    # the in-domain pool is every enrolled voiceprint, whatever group a search is limited to
    _, probes = takes
    gallery = Gallery(small_model, np.stack([vp.vector for vp in mixed]), adaptive_cohort=True)
    for rows in ([1, 3], [5], [0, 1, 2, 3, 4]):
        np.testing.assert_allclose(gallery.scores(probes[2], rows=rows),
                                   gallery.scores(probes[2])[rows], rtol=1e-6)


def test_score_vectors_match_the_gallery_row_they_replace(small_model, takes, mixed):
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    gallery = Gallery(small_model, V, adaptive_cohort=True)
    np.testing.assert_allclose(gallery.score_vectors(probes[1], V[[3, 1]], own=[3, 1]),
                               gallery.scores(probes[1])[[3, 1]], rtol=1e-6)
    # a vector that is not in the gallery pools with all of it
    reference = _adaptive_reference(small_model, mixed + [mixed[3]], probes[1],
                                    pool=range(len(mixed)))[-1]
    np.testing.assert_allclose(gallery.score_vectors(probes[1], V[[3]]), [reference],
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ParameterError, match="own has 1 entries for 2 rows"):
        gallery.score_vectors(probes[1], V[[3, 1]], own=[3])
    with pytest.raises(ParameterError, match=r"own must lie in \[-1, 6\)"):
        gallery.score_vectors(probes[1], V[[3]], own=[9])


def test_adaptive_cohort_without_as_norm_changes_nothing(small_model, takes, mixed):
    model = copy.copy(small_model)
    model.asnorm_top = None
    model.scorer_ = Scorer(small_model.plda_, calibration=small_model.calibration_)
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    adaptive = Gallery(model, V, adaptive_cohort=True)
    assert not adaptive.adaptive_cohort
    np.testing.assert_array_equal(adaptive.scores(probes[0]), Gallery(model, V).scores(probes[0]))


@pytest.mark.parametrize("value", [1, "yes", None])
def test_adaptive_cohort_must_be_a_bool(small_model, mixed, value):
    with pytest.raises(ParameterError, match="adaptive_cohort must be True or False"):
        Gallery(small_model, np.stack([vp.vector for vp in mixed]), adaptive_cohort=value)


# -- both sides pooled (a model with in_domain_cohort="both") ---------------------------

@pytest.fixture(scope="module")
def both_model(small_model):
    model = copy.copy(small_model)
    model.in_domain_cohort = "both"
    return model


def _both_reference(model, vps, probe, pool=None):
    """Both sides of AS-norm from their definitions: the probe pooled as above, and each
    voiceprint's scores against the cohort pooled with its scores against the pool's
    means as one-take probes, its own left out."""
    from vpcore.normalisation import pooled_top_stats

    plda, z = model.plda_, probe.vector.astype(np.float64)[None, :]
    pool = list(range(len(vps))) if pool is None else list(pool)
    means = [vp.mean.astype(np.float64)[None, :] for vp in vps]
    raw = np.array([plda.score_projected(m, vp.n, z)[0, 0] for m, vp in zip(means, vps)])
    cohort = plda.score_projected(model.cohort_, 1, z)[:, 0]
    pool_means = np.concatenate([means[j] for j in pool])
    out = []
    for i, vp in enumerate(vps):
        own = np.array([pool.index(i) if i in pool else -1])
        t = pooled_top_stats(cohort, raw[pool], model.asnorm_top, own)
        e = pooled_top_stats(plda.score_projected(means[i], vp.n, model.cohort_)[0],
                             plda.score_projected(means[i], vp.n, pool_means)[0],
                             model.asnorm_top, own)
        out.append(as_norm(raw[i], (e[0][0], e[1][0]), (t[0][0], t[1][0])))
    return np.array(out)


def test_both_sides_scores_equal_their_definition(both_model, takes, mixed):
    _, probes = takes
    gallery = Gallery(both_model, np.stack([vp.vector for vp in mixed]), adaptive_cohort=True)
    assert gallery.both_sides
    np.testing.assert_array_equal(gallery.voiceprint_pool_, np.arange(len(mixed)))
    for probe in probes:
        np.testing.assert_allclose(gallery.scores(probe),
                                   _both_reference(both_model, mixed, probe),
                                   rtol=1e-4, atol=1e-4)


def test_both_sides_differ_from_the_probe_side_only(small_model, both_model, takes, mixed):
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    one = Gallery(small_model, V, adaptive_cohort=True)
    both = Gallery(both_model, V, adaptive_cohort=True)
    assert not one.both_sides
    assert np.abs(one.scores(probes[0]) - both.scores(probes[0])).max() > 1e-3
    # without the adaptive cohort the model's setting changes nothing
    np.testing.assert_array_equal(Gallery(both_model, V).scores(probes[0]),
                                  Gallery(small_model, V).scores(probes[0]))


def test_both_sides_pool_above_its_limit_is_the_rows_of_smallest_key(both_model, takes, mixed,
                                                                      monkeypatch):
    import vpcore.gallery as gallery_module

    monkeypatch.setattr(gallery_module, "VOICEPRINT_POOL", 4)
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    gallery = Gallery(both_model, V, adaptive_cohort=True)
    pool = np.sort(np.argsort(gallery_module._row_keys(V))[:4])
    np.testing.assert_array_equal(gallery.voiceprint_pool_, pool)
    # the probe side still pools every row (ADAPTIVE_POOL is not reached)
    np.testing.assert_allclose(gallery.scores(probes[1]),
                               _both_reference_pools(both_model, mixed, probes[1], pool),
                               rtol=1e-4, atol=1e-4)
    # the pool follows the content, not the positions: reversed rows, the same pool members
    flipped = Gallery(both_model, V[::-1].copy(), adaptive_cohort=True)
    np.testing.assert_array_equal(np.sort(5 - flipped.voiceprint_pool_), pool)
    np.testing.assert_allclose(flipped.scores(probes[1])[::-1], gallery.scores(probes[1]),
                               rtol=1e-5, atol=1e-6)


def _both_reference_pools(model, vps, probe, voiceprint_pool):
    """_both_reference with every row in the probe's pool and ``voiceprint_pool`` on the
    voiceprints' side."""
    from vpcore.normalisation import pooled_top_stats

    plda, z = model.plda_, probe.vector.astype(np.float64)[None, :]
    means = [vp.mean.astype(np.float64)[None, :] for vp in vps]
    raw = np.array([plda.score_projected(m, vp.n, z)[0, 0] for m, vp in zip(means, vps)])
    cohort = plda.score_projected(model.cohort_, 1, z)[:, 0]
    pool = list(voiceprint_pool)
    pool_means = np.concatenate([means[j] for j in pool])
    out = []
    for i, vp in enumerate(vps):
        t = pooled_top_stats(cohort, raw, model.asnorm_top, np.array([i]))
        e = pooled_top_stats(plda.score_projected(means[i], vp.n, model.cohort_)[0],
                             plda.score_projected(means[i], vp.n, pool_means)[0],
                             model.asnorm_top, np.array([pool.index(i) if i in pool else -1]))
        out.append(as_norm(raw[i], (e[0][0], e[1][0]), (t[0][0], t[1][0])))
    return np.array(out)


def test_a_gallery_built_from_the_previous_one_reuses_unchanged_rows(both_model, takes, mixed,
                                                                     monkeypatch):
    import vpcore.gallery as gallery_module

    monkeypatch.setattr(gallery_module, "VOICEPRINT_POOL", 4)
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    first = Gallery(both_model, V, adaptive_cohort=True)
    outside = np.setdiff1d(np.arange(6), first.voiceprint_pool_)
    # a voiceprint outside the pool goes and another changes: the pool stays
    keep = np.setdiff1d(np.arange(6), [outside[0]])
    pool_in_w = np.searchsorted(keep, first.voiceprint_pool_)
    for delta in np.linspace(0.05, 1.0, 20):  # a change that keeps the row out of the pool
        W = V[keep].copy()
        W[np.searchsorted(keep, outside[1]), 0] += delta
        if np.array_equal(np.sort(np.argsort(gallery_module._row_keys(W))[:4]), pool_in_w):
            break
    else:
        raise AssertionError("every change moved the row into the pool")
    again = Gallery(both_model, W, adaptive_cohort=True, previous=first)
    fresh = Gallery(both_model, W, adaptive_cohort=True)
    assert (again.reused_, fresh.reused_) == (4, 0)  # the changed row is computed again
    for probe in probes[:3]:
        np.testing.assert_array_equal(again.scores(probe), fresh.scores(probe))
    # a new pool (a pool member goes) reuses nothing
    member = first.voiceprint_pool_[0]
    smaller = Gallery(both_model, np.delete(V, member, axis=0), adaptive_cohort=True,
                      previous=first)
    assert smaller.reused_ == 0


def test_both_sides_score_vectors_match_the_row_they_replace(both_model, takes, mixed):
    # 1-v-1 of a changed voiceprint (score_vectors) and 1-v-N (scores) agree
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    gallery = Gallery(both_model, V, adaptive_cohort=True)
    np.testing.assert_allclose(gallery.score_vectors(probes[1], V[[3, 1]], own=[3, 1]),
                               gallery.scores(probes[1])[[3, 1]], rtol=1e-5, atol=1e-6)
    reference = _both_reference(both_model, mixed + [mixed[3]], probes[1],
                                pool=range(len(mixed)))[-1]
    np.testing.assert_allclose(gallery.score_vectors(probes[1], V[[3]]), [reference],
                               rtol=1e-4, atol=1e-4)


def test_in_domain_scores_are_the_gallery_of_those_voiceprints(small_model, both_model, takes,
                                                                mixed):
    # the calibration trials' batch path (Scorer.in_domain_scores) scores as the gallery does
    _, probes = takes
    V = np.stack([vp.vector for vp in mixed])
    Z = np.stack([p.vector for p in probes])
    for model, both in ((small_model, False), (both_model, True)):
        gallery = Gallery(model, V, adaptive_cohort=True)
        batch = model.scorer_.in_domain_scores(V, Z, both_sides=both)
        expected = np.stack([gallery.scores(p) for p in probes], axis=1)
        np.testing.assert_allclose(batch, expected, rtol=1e-4, atol=1e-4)
