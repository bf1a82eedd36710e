"""The take-quality extension of /enroll and /verify (``"quality": true``).

It is advisory: with or without the flag the same takes are accepted and the
specification's fields are the same; the flag only adds ``quality``.
"""

import json

import jsonschema
import numpy as np
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from vpserver_support import OPENAPI, b64, enroll_body, verify_body, wav_bytes

DOC = json.loads(OPENAPI.read_text())
_REGISTRY = Registry().with_resource("urn:vpcore-openapi",
                                     Resource.from_contents(DOC, default_specification=DRAFT202012))

QUALITY_KEYS = {"duration", "speech_seconds", "min_speech_seconds", "recommended_speech_seconds",
                "snr_db", "clipping_ratio", "refused", "advice"}


def documented(path):
    """Validator of the documented 200 response of ``POST path``."""
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in
                       ("paths", path, "post", "responses", "200", "content",
                        "application/json", "schema"))
    return jsonschema.Draft202012Validator({"$ref": f"urn:vpcore-openapi#/{pointer}"},
                                           registry=_REGISTRY)


def post(api, path, body):
    """POST without the spec-only envelope check of Api (1-v-N answers may add quality)."""
    response = api.client.post(path, json=body)
    assert response.status_code == 200, response.data[:300]
    answer = response.get_json()
    errors = [e.message for e in documented(path).iter_errors(answer)]
    assert not errors, (answer, errors[:3])
    return answer


def codes(quality):
    return [a["code"] for a in quality["advice"]]


def noisy(samples, snr_db, seed=0):
    """``samples`` plus white noise ``snr_db`` below the loud frames' power."""
    from vpcore.quality import frame_log_energies

    loud = np.exp(np.percentile(frame_log_energies(samples), 95.0)) / 400 / 32768.0**2
    noise = np.random.default_rng(seed).standard_normal(len(samples))
    return samples + np.sqrt(loud / 10.0 ** (snr_db / 10.0)) * noise


def burst(voices, seconds=0.5, total=4.0):
    """``seconds`` of a voice in ``total`` seconds of near silence: too little speech."""
    x = np.zeros(int(total * 16000))
    x[16000: 16000 + int(seconds * 16000)] = voices.samples(0, 0)[: int(seconds * 16000)]
    return x


# ---------------------------------------------------------------------------
# accepted takes


def test_enroll_with_quality_adds_data_quality_only(api, voices):
    answer = post(api, "/enroll", enroll_body("alice", 1, voices.wav(0, 0), quality=True))
    assert answer["status"] == "00000"
    data = answer["data"]
    assert set(data) == {"user_name", "enroll_num", "quality"}
    assert (data["user_name"], data["enroll_num"]) == ("alice", 1)
    quality = data["quality"]
    assert set(quality) == QUALITY_KEYS and quality["refused"] is None
    assert quality["duration"] == pytest.approx(3.5)
    assert 1.0 <= quality["speech_seconds"] <= 3.5
    assert quality["snr_db"] > 30.0 and quality["clipping_ratio"] == 0.0


def test_quality_speech_is_the_take_the_model_used(api, voices, model):
    """data.quality.speech_seconds counts the frames the model's take was built from."""
    answer = post(api, "/enroll", enroll_body("alice", 1, voices.wav(1, 2), quality=True))
    take = model.extract(voices.received(1, 2))
    assert answer["data"]["quality"]["speech_seconds"] == pytest.approx(take.n_frames * 0.01)


def test_without_the_flag_the_answer_is_the_specifications(api, voices):
    for flag in ({}, {"quality": None}, {"quality": False}):
        answer = api.enroll("alice", 1, voices.wav(0, 0), **flag)
        assert answer["data"] == {"user_name": "alice", "enroll_num": 1}


def test_verify_one_to_one_with_quality(api, voices):
    api.enroll_fully("alice", voices, 0)
    plain = api.verify(voices.wav(0, 3), user_name="alice")["data"]
    answer = post(api, "/verify", verify_body(voices.wav(0, 3), user_name="alice", quality=True))
    data = answer["data"]
    assert set(data) == {"user_name", "confidence", "quality"}
    assert data["confidence"] == plain["confidence"]
    assert data["quality"]["refused"] is None


def test_verify_one_to_n_puts_quality_beside_the_specifications_list(api, voices):
    api.enroll_fully("alice", voices, 0)
    api.enroll_fully("bob_", voices, 1)
    plain = api.verify(voices.wav(0, 3))
    answer = post(api, "/verify", verify_body(voices.wav(0, 3), quality=True))
    assert list(answer) == ["task_id", "status", "message", "data", "quality"]
    assert answer["data"] == plain["data"]
    assert set(answer["quality"]) == QUALITY_KEYS


def test_noisy_and_clipped_takes_are_accepted_with_advice(api, voices):
    """The extension never refuses: a 5 dB take and a clipped take are accepted as before,
    and say what is wrong with them."""
    clean = voices.samples(0, 0)
    bad = {"noise": noisy(clean, 5.0), "clipping": np.clip(4.0 * clean, -1.0, 1.0)}
    for code, samples in bad.items():
        data = b64(wav_bytes(samples))
        assert api.enroll("carol", 1, data)["status"] == "00000"
        answer = post(api, "/enroll", enroll_body("carol", 1, data, quality=True))
        assert answer["status"] == "00000"
        assert code in codes(answer["data"]["quality"]), answer
    clipped = answer["data"]["quality"]
    assert clipped["clipping_ratio"] > 0.001
    assert any("move away from the microphone" in a["message"] for a in clipped["advice"])


@pytest.mark.parametrize("variant", ["clean", "noise_0db", "noise_10db", "clipped", "short",
                                     "silence"])
def test_the_flag_never_changes_which_takes_are_accepted(make_app, voices, variant):
    clean = voices.samples(2, 1)
    samples = {
        "clean": clean, "noise_0db": noisy(clean, 0.0, seed=1),
        "noise_10db": noisy(clean, 10.0, seed=2), "clipped": np.clip(8.0 * clean, -1, 1),
        "short": burst(voices), "silence": np.zeros(3 * 16000),
    }[variant]
    data = b64(wav_bytes(samples))

    def fresh(path):  # a new service; /verify has someone to compare with
        api = make_app()
        if path == "/verify":
            api.enroll_fully("erin", voices, 3)
        return api

    for path, body in (("/enroll", enroll_body("dave", 1, data)),
                       ("/verify", verify_body(data))):
        without = fresh(path).post(path, body)
        answer = post(fresh(path), path, {**body, "quality": True})
        assert answer["status"] == without["status"], (variant, path, answer, without)
        assert answer["message"] == without["message"]


# ---------------------------------------------------------------------------
# refused takes say which rule refused them


def test_too_little_speech_names_the_rule_and_how_much_more(api, voices):
    data = b64(wav_bytes(burst(voices)))
    plain = api.enroll("alice", 1, data)
    assert plain["status"] == "22124" and plain["data"] == {"user_name": "alice"}
    answer = post(api, "/enroll", enroll_body("alice", 1, data, quality=True))
    assert (answer["status"], answer["message"]) == ("22124", plain["message"])
    assert set(answer["data"]) == {"user_name", "quality"}
    quality = answer["data"]["quality"]
    assert quality["refused"] == "speech" and codes(quality)[0] == "speech"
    assert quality["speech_seconds"] < quality["min_speech_seconds"]
    more = quality["recommended_speech_seconds"] - quality["speech_seconds"]
    assert f"speak for at least {more:.1f} more seconds" in quality["advice"][0]["message"]


def test_silence_says_no_speech_was_heard(api):
    answer = post(api, "/verify", verify_body(b64(wav_bytes(np.zeros(3 * 16000))), quality=True))
    assert answer["status"] == "22124"
    assert set(answer["data"]) == {"quality"}  # 1-v-N: no user_name to echo
    assert "no speech was heard" in answer["data"]["quality"]["advice"][0]["message"]


def test_mismatch_names_the_consistency_rule(api, voices):
    api.enroll("alice", 1, voices.wav(0, 0))
    answer = post(api, "/enroll", enroll_body("alice", 2, voices.wav(1, 1), quality=True))
    assert answer["status"] == "22124"
    assert answer["message"] == "voiceprint mismatch with that of the initial registration"
    assert answer["data"]["user_name"] == "alice"
    assert answer["data"]["quality"]["refused"] == "consistency"
    assert codes(answer["data"]["quality"])[0] == "consistency"
    assert api.check("alice")["data"]["enroll_num"] == 1


def test_state_refusals_carry_no_quality(api, voices):
    """Refusals that are not about the take (22132, 22133...) keep the specification's data."""
    answer = api.enroll("alice", 2, voices.wav(0, 0), quality=True)
    assert answer["status"] == "22132" and answer["data"] == {"user_name": "alice",
                                                               "enroll_num": 0}
    answer = api.verify(voices.wav(0, 3), user_name="nobody", quality=True)
    assert answer["status"] == "22133" and answer["data"] == {"user_name": "nobody"}


# ---------------------------------------------------------------------------
# the flag is parsed like any field


@pytest.mark.parametrize("value", ["yes", 1, 0, [True], {"on": True}])
def test_a_flag_that_is_not_a_boolean_is_22121(api, voices, value):
    for path, body in (("/enroll", enroll_body("alice", 1, voices.wav(0, 0), quality=value)),
                       ("/verify", verify_body(voices.wav(0, 3), quality=value))):
        answer = api.post(path, body)
        assert answer["status"] == "22121" and "quality=" in answer["message"], answer


def test_the_flag_is_checked_in_the_contracts_order(api):
    # a missing field (step 2) wins over a bad flag (step 3) ...
    assert api.post("/enroll", {"format": "wav", "quality": "x"})["status"] == "22111"
    # ... and a bad flag (step 3) over bad base64 (step 4)
    answer = api.post("/verify", verify_body("@@@@", quality="x"))
    assert answer["status"] == "22121"
