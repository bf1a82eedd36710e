"""CONTRACT.md "Users and enrollment": the enrolment state machine, one test per rule,
on every store backend."""

import re
import time

import numpy as np
import pytest

from vpcore.model import Take, Voiceprint

STORE_BACKENDS = ("sqlite", "postgresql")
#: every test also runs with an API token and a store key set (see conftest.py)
SECURITY = ("open", "secured")

SUCCESS = {
    1: "the first time you enroll successfully, you need to enroll twice more",
    2: "the second registration is successful, please register one more time",
    3: "the third registration is successful, registration completed",
}
MISMATCH = "voiceprint mismatch with that of the initial registration"
COMPLETED = "invalid operation: the registration process has already been completed"


def stored_takes(api, name):
    record, takes = api.store.get_enrollment(name)
    return record, takes


def test_success_messages_are_the_specification_sentences_word_for_word(api, voices):
    for k in (1, 2, 3):
        result = api.enroll("alice", k, voices.wav(0, k - 1))
        assert result["status"] == "00000"
        assert result["message"] == SUCCESS[k]
        assert result["data"] == {"user_name": "alice", "enroll_num": k}


def test_user_exists_from_first_accepted_take(api, voices):
    assert api.check("alice")["data"]["enroll_num"] == 0
    api.enroll("alice", 1, voices.wav(0, 0))
    assert api.check("alice")["data"]["enroll_num"] == 1


def test_refused_first_take_does_not_create_the_user(api):
    from vpserver_support import b64, wav_bytes

    silence = b64(wav_bytes(np.zeros(16000 * 4)))
    assert api.enroll("alice", 1, silence)["status"] == "22124"
    assert api.check("alice")["data"] == {
        "user_name": "alice", "enroll_num": 0, "update_time": "", "group_id": None}
    assert api.get("/getUsers")["data"] == []


def test_completed_user_gets_22131_for_any_take(api, voices):
    api.enroll_fully("alice", voices, 0)
    for k in (1, 2, 3):
        result = api.enroll("alice", k, voices.wav(0, 3))
        assert result["status"] == "22131"
        assert result["message"] == COMPLETED
        assert result["data"] == {"user_name": "alice", "enroll_num": 3}
    assert api.check("alice")["data"]["enroll_num"] == 3


@pytest.mark.parametrize("count,k", [(0, 2), (0, 3), (1, 3)])
def test_take_beyond_next_is_22132_with_the_accepted_count(api, voices, count, k):
    for j in range(1, count + 1):
        api.enroll("alice", j, voices.wav(0, j - 1))
    result = api.enroll("alice", k, voices.wav(0, 2))
    assert result["status"] == "22132"
    assert result["data"] == {"user_name": "alice", "enroll_num": count}
    assert api.check("alice")["data"]["enroll_num"] == count


@pytest.mark.parametrize("k", [1, 2])
def test_retrying_the_same_take_is_idempotent(api, voices, k):
    for j in range(1, k + 1):
        api.enroll("alice", j, voices.wav(0, j - 1))
    before = api.check("alice")["data"]
    _, takes_before = stored_takes(api, "alice")
    again = api.enroll("alice", k, voices.wav(0, k - 1))
    assert again["status"] == "00000"
    assert again["message"] == SUCCESS[k]
    assert again["data"] == {"user_name": "alice", "enroll_num": k}
    after = api.check("alice")["data"]
    assert after["enroll_num"] == before["enroll_num"] == k
    _, takes_after = stored_takes(api, "alice")
    assert takes_after == takes_before


def test_restart_from_take_1_discards_later_takes(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0))
    api.enroll("alice", 2, voices.wav(0, 1))
    result = api.enroll("alice", 1, voices.wav(0, 2))
    assert result["status"] == "00000" and result["data"]["enroll_num"] == 1
    assert api.check("alice")["data"]["enroll_num"] == 1
    record, takes = stored_takes(api, "alice")
    assert record.enroll_num == 1 and len(takes) == 1
    # take 2 is gone: take 3 now needs a new take 2
    assert api.enroll("alice", 3, voices.wav(0, 1))["status"] == "22132"
    assert api.enroll("alice", 2, voices.wav(0, 1))["status"] == "00000"


def test_retaking_take_2_replaces_it_and_keeps_take_1(api, voices, model):
    api.enroll("alice", 1, voices.wav(0, 0))
    api.enroll("alice", 2, voices.wav(0, 1))
    _, first = stored_takes(api, "alice")
    api.enroll("alice", 2, voices.wav(0, 2))
    _, second = stored_takes(api, "alice")
    assert second[0] == first[0]
    assert second[1] != first[1]
    expected = model.extract(voices.received(0, 2)).to_bytes()
    assert second[1] == expected


@pytest.mark.parametrize("k", [2, 3])
def test_mismatching_voice_is_refused_with_the_exact_message_and_count_unchanged(api, voices, k):
    for j in range(1, k):
        api.enroll("alice", j, voices.wav(0, j - 1))
    before = api.check("alice")["data"]
    _, takes_before = stored_takes(api, "alice")
    result = api.enroll("alice", k, voices.wav(1, k - 1))  # another speaker
    assert result["status"] == "22124"
    assert result["message"] == MISMATCH
    assert result["data"]["user_name"] == "alice"
    assert api.check("alice")["data"] == before
    assert stored_takes(api, "alice")[1] == takes_before


def test_mismatching_retry_of_an_accepted_take_keeps_it(api, voices):
    """A refused retry of take 2 (count 2) leaves count 2 and the accepted take 2."""
    api.enroll("alice", 1, voices.wav(0, 0))
    api.enroll("alice", 2, voices.wav(0, 1))
    _, before = stored_takes(api, "alice")
    assert api.enroll("alice", 2, voices.wav(1, 1))["message"] == MISMATCH
    assert api.check("alice")["data"]["enroll_num"] == 2
    assert stored_takes(api, "alice")[1] == before


def test_consistency_threshold_is_configurable(make_app, voices, model):
    """The refusal happens exactly below the configured threshold."""
    first = model.extract(voices.received(0, 0))
    consistency = model.consistency([first], model.extract(voices.received(1, 1)))
    assert consistency < 0.5  # another voice
    lenient = make_app(consistency_threshold=max(0.0, consistency - 1e-3))
    lenient.enroll("alice", 1, voices.wav(0, 0))
    assert lenient.enroll("alice", 2, voices.wav(1, 1))["status"] == "00000"
    strict = make_app(consistency_threshold=min(1.0, consistency + 1e-3))
    strict.enroll("alice", 1, voices.wav(0, 0))
    assert strict.enroll("alice", 2, voices.wav(1, 1))["message"] == MISMATCH


def test_take_1_is_never_compared(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0))
    api.enroll("alice", 2, voices.wav(0, 1))
    assert api.enroll("alice", 1, voices.wav(1, 0))["status"] == "00000"  # restart, new voice
    assert api.enroll("alice", 2, voices.wav(1, 1))["status"] == "00000"


def test_take_3_builds_the_voiceprint_from_all_three_takes(api, voices, model):
    api.enroll_fully("alice", voices, 0)
    record, blob = api.store.get_voiceprint("alice")
    assert record.enroll_num == 3
    takes = [model.extract(voices.received(0, u)) for u in (0, 1, 2)]
    expected = model.enroll(takes)
    stored = Voiceprint.from_bytes(blob)
    assert stored.n == 3
    np.testing.assert_allclose(stored.vector, expected.vector, rtol=1e-5, atol=1e-6)
    # and not from the last take alone
    assert not np.allclose(stored.vector, model.enroll(takes[2:]).vector)


def test_voiceprint_exists_exactly_when_enroll_num_is_3(api, voices):
    for k in (1, 2):
        api.enroll("alice", k, voices.wav(0, k - 1))
        assert api.store.get_voiceprint("alice")[1] is None
    api.enroll("alice", 3, voices.wav(0, 2))
    assert api.store.get_voiceprint("alice")[1] is not None


def test_group_id_of_the_latest_accepted_take_is_stored(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0), group_id=5)
    assert api.check("alice")["data"]["group_id"] == 5
    api.enroll("alice", 2, voices.wav(0, 1), group_id=6)
    assert api.check("alice")["data"]["group_id"] == 6
    api.enroll("alice", 2, voices.wav(1, 1), group_id=9)  # refused: group unchanged
    assert api.check("alice")["data"]["group_id"] == 6
    api.enroll("alice", 3, voices.wav(0, 2))  # default group 0
    assert api.check("alice")["data"]["group_id"] == 0


def test_group_id_is_final_after_take_3(api, voices):
    api.enroll_fully("alice", voices, 0, group_id=4)
    assert api.enroll("alice", 1, voices.wav(0, 0), group_id=8)["status"] == "22131"
    assert api.check("alice")["data"]["group_id"] == 4


def test_update_time_is_local_time_of_the_last_accepted_take(api, voices):
    before = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    api.enroll("alice", 1, voices.wav(0, 0))
    after = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    stamp = api.check("alice")["data"]["update_time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stamp)
    assert before <= stamp <= after
    # a refused take does not touch it
    time.sleep(1.05)
    api.enroll("alice", 2, voices.wav(1, 1))
    assert api.check("alice")["data"]["update_time"] == stamp


def test_user_name_is_unique_across_groups(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0), group_id=1)
    result = api.enroll("alice", 1, voices.wav(0, 1), group_id=2)  # same name, other group
    assert result["status"] == "00000"
    users = api.get("/getUsers")["data"]
    assert [(u["user_name"], u["group_id"]) for u in users] == [("alice", 2)]


def test_user_names_are_case_sensitive(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0))
    assert api.check("ALICE")["data"]["enroll_num"] == 0
    assert api.enroll("ALICE", 2, voices.wav(0, 1))["status"] == "22132"


def test_takes_are_stored_as_the_models_takes(api, voices, model):
    api.enroll("alice", 1, voices.wav(0, 0))
    _, takes = stored_takes(api, "alice")
    take = Take.from_bytes(takes[0])
    assert take.fingerprint == model.fingerprint
    np.testing.assert_allclose(take.vector, model.extract(voices.received(0, 0)).vector, rtol=1e-5)
