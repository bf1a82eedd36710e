"""CONTRACT.md "Verification": 1-v-1 and 1-v-N, one test per rule (on every store backend)."""

import numpy as np
import pytest

from server.app import create_app
from server.config import Config
from vpserver_support import Api

STORE_BACKENDS = ("sqlite", "postgresql")
#: every test also runs with an API token and a store key set (see conftest.py)
SECURITY = ("open", "secured")


# ------------------------------------------------------------------ 1-v-1 ---

def test_1v1_unknown_user_is_22133(api, voices):
    result = api.verify(voices.wav(0, 3), user_name="nobody")
    assert result["status"] == "22133"
    assert result["message"] == "the user_name hasn't been registered"
    assert result["data"] == {"user_name": "nobody"}


@pytest.mark.parametrize("count", [1, 2])
def test_1v1_partly_enrolled_is_22134_with_enroll_num(api, voices, count):
    for k in range(1, count + 1):
        api.enroll("alice", k, voices.wav(0, k - 1))
    result = api.verify(voices.wav(0, 3), user_name="alice")
    assert result["status"] == "22134"
    assert result["message"] == "the user_name hasn't been registered completely"
    assert result["data"] == {"user_name": "alice", "enroll_num": count}


def test_1v1_success_data_is_user_name_and_confidence(api, voices, model):
    api.enroll_fully("alice", voices, 0)
    result = api.verify(voices.wav(0, 3), user_name="alice")
    assert result["status"] == "00000" and result["message"] == "success"
    assert list(result["data"]) == ["user_name", "confidence"]
    assert result["data"]["user_name"] == "alice"
    confidence = result["data"]["confidence"]
    assert isinstance(confidence, float) and 0.0 <= confidence <= 1.0
    # the number is the model's calibrated confidence, rounded to 4 decimals
    vp = model.enroll([model.extract(voices.received(0, u)) for u in (0, 1, 2)])
    expected = model.verify(vp, model.extract(voices.received(0, 3))).confidence
    assert confidence == round(expected, 4)


def test_1v1_same_speaker_scores_above_another_speaker(api, voices):
    api.enroll_fully("alice", voices, 0)
    same = api.verify(voices.wav(0, 3), user_name="alice")["data"]["confidence"]
    other = api.verify(voices.wav(1, 3), user_name="alice")["data"]["confidence"]
    assert same > 0.7 > other


def test_1v1_accepts_pcm_probes(api, voices):
    api.enroll_fully("alice", voices, 0)
    wav = api.verify(voices.wav(0, 3), user_name="alice")["data"]["confidence"]
    pcm = api.verify(voices.pcm(0, 3), user_name="alice", format="pcm")["data"]["confidence"]
    assert pcm == pytest.approx(wav, abs=1e-3)


def test_1v1_after_unregister_is_22133(api, voices):
    api.enroll_fully("alice", voices, 0)
    api.post("/unregister", {"user_name": "alice"})
    assert api.verify(voices.wav(0, 3), user_name="alice")["status"] == "22133"


# ------------------------------------------------------------------ 1-v-N ---

def populate(api, voices):
    """alice (voice 0, group 0), bob (voice 1, group 1), carol (voice 2, group 2),
    dave (voice 3, group 1), and eve (voice 0, partly enrolled, group 0)."""
    for name, voice, group in (("alice", 0, 0), ("bob_", 1, 1), ("carol", 2, 2), ("dave", 3, 1)):
        api.enroll_fully(name, voices, voice, group_id=group)
    api.enroll("eve_", 1, voices.wav(0, 0))
    return api


@pytest.fixture(scope="module")
def population(model, voices, backend, store_urls, security):
    """A populated service shared by the read-only 1-v-N tests of this module."""
    secrets = {} if security is None else {"api_token": security.token,
                                           "store_key": security.key_path}
    config = Config(store=store_urls(backend), **secrets)
    app = create_app(config, model=model)
    yield populate(Api(app, token=None if security is None else security.token), voices)
    app.extensions["vpcore"].close()


def names(result):
    return [m["user_name"] for m in result["data"]]


def test_1vN_finds_the_right_speaker_first(population, voices):
    for voice, name in ((0, "alice"), (1, "bob_"), (2, "carol"), (3, "dave")):
        result = population.verify(voices.wav(voice, 4))
        assert result["status"] == "00000"
        assert names(result)[0] == name


def test_1vN_result_shape_and_order(population, voices):
    result = population.verify(voices.wav(2, 3), top_n=4)
    assert all(list(m) == ["user_name", "confidence", "group_id"] for m in result["data"])
    confidences = [m["confidence"] for m in result["data"]]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 and round(c, 4) == c for c in confidences)
    groups = {m["user_name"]: m["group_id"] for m in result["data"]}
    assert groups == {"alice": 0, "bob_": 1, "carol": 2, "dave": 1}


def test_1vN_confidences_equal_the_1v1_ones(population, voices):
    probe = voices.wav(1, 3)
    ranked = population.verify(probe, top_n=100)["data"]
    for match in ranked:
        one = population.verify(probe, user_name=match["user_name"])["data"]["confidence"]
        assert one == pytest.approx(match["confidence"], abs=1e-4)


def _adaptive_confidences(model, voices, probe_voice, probe_utt, enrolled):
    """The service's confidences by definition: a gallery of every enrolled voiceprint
    (in name order) with the adaptive in-domain cohort."""
    from vpcore.gallery import Gallery

    V = np.stack([model.enroll([model.extract(voices.received(v, u)) for u in (0, 1, 2)]).vector
                  for _, v in sorted(enrolled)])
    gallery = Gallery(model, V, adaptive_cohort=True)
    llr = gallery.scores(model.extract(voices.received(probe_voice, probe_utt)))
    names = sorted(n for n, _ in enrolled)
    return dict(zip(names, model.scorer_.confidence(llr))), dict(zip(names, llr))


def test_1v1_with_others_enrolled_pools_them_into_the_normalisation(population, voices, model):
    # the default VPCORE_ADAPTIVE_COHORT=1: the other enrolled users join the probe's
    # cohort, so the 1-v-1 confidence is the gallery's, not the cohort-only one
    enrolled = [("alice", 0), ("bob_", 1), ("carol", 2), ("dave", 3)]
    expected, llrs = _adaptive_confidences(model, voices, 1, 3, enrolled)
    for name, _ in enrolled:
        got = population.verify(voices.wav(1, 3), user_name=name)["data"]["confidence"]
        assert got == pytest.approx(round(expected[name], 4), abs=2e-4)
    alone = model.verify(
        model.enroll([model.extract(voices.received(0, u)) for u in (0, 1, 2)]),
        model.extract(voices.received(1, 3))).llr
    assert abs(alone - llrs["alice"]) > 1e-3  # the switch changes the score


def test_1v1_with_adaptive_cohort_off_is_the_models_verify(make_app, voices, model):
    api = make_app(adaptive_cohort=False)
    for name, voice in (("alice", 0), ("bob_", 1), ("carol", 2)):
        api.enroll_fully(name, voices, voice)
    vp = model.enroll([model.extract(voices.received(0, u)) for u in (0, 1, 2)])
    expected = model.verify(vp, model.extract(voices.received(1, 3))).confidence
    assert api.verify(voices.wav(1, 3), user_name="alice")["data"]["confidence"] == \
        round(expected, 4)
    ranked = {m["user_name"]: m["confidence"]
              for m in api.verify(voices.wav(1, 3), top_n=10)["data"]}
    assert ranked["alice"] == pytest.approx(round(expected, 4), abs=1e-4)


def test_1vN_top_n_defaults_to_3(population, voices):
    assert len(population.verify(voices.wav(0, 3))["data"]) == 3


@pytest.mark.parametrize("top_n,expected", [(1, 1), (2, 2), (4, 4), (5, 4), (100, 4)])
def test_1vN_returns_min_of_top_n_and_candidates_never_cut_by_a_threshold(
        population, voices, top_n, expected):
    result = population.verify(voices.wav(0, 3), top_n=top_n)
    assert len(result["data"]) == expected
    # never cut: the clearly wrong candidates are still listed when asked for
    if expected == 4:
        assert min(m["confidence"] for m in result["data"]) < 0.5


def test_1vN_partly_enrolled_users_are_not_candidates(population, voices):
    result = population.verify(voices.wav(0, 3), top_n=100)
    assert "eve_" not in names(result)


def test_1vN_group_as_bare_integer(population, voices):
    result = population.verify(voices.wav(1, 3), group_id=1, top_n=100)
    assert sorted(names(result)) == ["bob_", "dave"]
    assert names(result)[0] == "bob_"


def test_1vN_group_as_list(population, voices):
    result = population.verify(voices.wav(0, 3), group_id=[0, 2], top_n=100)
    assert sorted(names(result)) == ["alice", "carol"]
    result = population.verify(voices.wav(0, 3), group_id=[2, 2], top_n=100)
    assert names(result) == ["carol"]


@pytest.mark.parametrize("groups", [[], None, "absent"])
def test_1vN_empty_list_or_no_group_means_all_groups(population, voices, groups):
    extra = {} if groups == "absent" else {"group_id": groups}
    result = population.verify(voices.wav(0, 3), top_n=100, **extra)
    assert sorted(names(result)) == ["alice", "bob_", "carol", "dave"]


def test_1vN_no_candidate_in_the_chosen_groups_is_22136_with_data_null(population, voices):
    result = population.verify(voices.wav(0, 3), group_id=[50, 51])
    assert result["status"] == "22136"
    assert result["message"] == "no available user_name"
    assert result["data"] is None


def test_1vN_only_partly_enrolled_users_is_22136(api, voices):
    api.enroll("eve_", 1, voices.wav(0, 0))
    api.enroll("eve_", 2, voices.wav(0, 1))
    result = api.verify(voices.wav(0, 3))
    assert result["status"] == "22136" and result["data"] is None


def test_1vN_empty_store_is_22136(api, voices):
    result = api.verify(voices.wav(0, 3))
    assert result["status"] == "22136" and result["data"] is None


def test_1vN_sees_unregister_and_reenrol_at_once(api, voices):
    population = populate(api, voices)
    population.post("/unregister", {"user_name": "alice"})
    assert "alice" not in names(population.verify(voices.wav(0, 3), top_n=100))
    population.enroll_fully("alice", voices, 2, group_id=9)  # alice now has voice 2
    result = population.verify(voices.wav(2, 4), group_id=9)
    assert names(result) == ["alice"]


def test_1vN_index_follows_changes_made_by_another_worker(make_app, voices, new_store_url):
    """Two apps on one store stand for two worker processes: each one's in-memory
    index must follow the changes the other commits (generation counter)."""
    store = new_store_url()
    worker_a = make_app(store=store)
    worker_b = make_app(store=store)
    assert worker_b.verify(voices.wav(0, 3))["status"] == "22136"
    worker_a.enroll_fully("alice", voices, 0)
    assert names(worker_b.verify(voices.wav(0, 3))) == ["alice"]
    worker_a.enroll_fully("bob_", voices, 1, group_id=3)
    assert sorted(names(worker_b.verify(voices.wav(1, 3), top_n=10))) == ["alice", "bob_"]
    worker_a.post("/unregister", {"user_name": "alice"})
    assert names(worker_b.verify(voices.wav(1, 3), top_n=10)) == ["bob_"]
    # and the other way round
    worker_b.enroll_fully("carol", voices, 2)
    assert sorted(names(worker_a.verify(voices.wav(2, 3), top_n=10))) == ["bob_", "carol"]


def test_1vN_ties_are_broken_by_name(make_app, voices):
    api = make_app()
    for name in ("zed_", "amy_", "mia_"):
        api.enroll_fully(name, voices, 0)  # identical voiceprints
    result = api.verify(voices.wav(0, 3), top_n=3)
    confidences = {m["confidence"] for m in result["data"]}
    assert len(confidences) == 1
    assert names(result) == ["amy_", "mia_", "zed_"]


def test_1vN_scores_the_group_members_in_one_gallery_search(population, voices, monkeypatch):
    from vpcore.gallery import Gallery

    calls = []
    original = Gallery.search

    def spy(self, take, top_n, rows=None):
        calls.append((len(self), None if rows is None else list(rows), top_n))
        return original(self, take, top_n, rows)

    monkeypatch.setattr(Gallery, "search", spy)
    population.verify(voices.wav(0, 3), group_id=[0, 1], top_n=1)
    # four fully enrolled users sorted by name (alice, bob_, carol, dave); groups 0 and 1
    assert calls == [(4, [0, 1, 3], 1)]
    calls.clear()
    population.verify(voices.wav(0, 3), top_n=2)
    assert calls == [(4, None, 2)]
