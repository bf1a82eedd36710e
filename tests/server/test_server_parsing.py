"""CONTRACT.md "Parsing order" and "Details that clients rely on": one test per rule."""

import base64
import json

import numpy as np
import pytest

from vpserver_support import b64, enroll_body, tone, verify_body, wav_bytes

STORE_BACKENDS = ("sqlite", "postgresql")
#: every test also runs with an API token and a store key set (see conftest.py)
SECURITY = ("open", "secured")

GOOD_WAV = b64(wav_bytes(tone(4.0)))  # well-formed but not speech: fails only at the model

USER_ENDPOINTS = ("/checkUser", "/unregister")
BODY_ENDPOINTS = ("/checkUser", "/unregister", "/enroll", "/verify")


def enroll_fields(**override):
    body = enroll_body("alice", 1, GOOD_WAV)
    body.update(override)
    return {k: v for k, v in body.items() if v is not ...}


# ------------------------------------------------------------------ rule 1 ---

@pytest.mark.parametrize("path", BODY_ENDPOINTS)
@pytest.mark.parametrize("raw", [b"", b"   ", b"{", b'{"user_name": "alice"', b"[1, 2]",
                                 b'"alice"', b"42", b"null", b"true", b"\xff\xfe{}",
                                 b'{"user_name": NaN}', b'{"a": Infinity}'])
def test_rule1_body_not_a_json_object_is_22123(api, path, raw):
    body = api.post(path, raw=raw, content_type="application/json")
    assert body["status"] == "22123"
    assert body["message"].startswith("JSON string error")
    assert body["data"] is None


def test_rule1_deeply_nested_json_is_22123_not_a_crash(api):
    raw = b"[" * 100000 + b"]" * 100000
    assert api.post("/enroll", raw=raw)["status"] == "22123"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=utf-8"])
def test_rule1_content_type_is_not_required(api, content_type):
    """curl without -H sends form-urlencoded; a body that parses as a JSON object is accepted."""
    raw = json.dumps({"user_name": "alice"}).encode()
    kwargs = {} if content_type is None else {"content_type": content_type}
    body = api.post("/checkUser", raw=raw, **kwargs)
    assert body["status"] == "00000"
    assert body["data"]["user_name"] == "alice"


def test_rule1_beats_rule2(api):
    assert api.post("/enroll", raw=b"{}}")["status"] == "22123"


# ------------------------------------------------------------------ rule 2 ---

@pytest.mark.parametrize("field", ["format", "sample_rate", "user_name", "enroll_num", "data"])
@pytest.mark.parametrize("how", ["absent", "null"])
def test_rule2_missing_required_enroll_field_is_22111_naming_it(api, field, how):
    body = enroll_fields(**{field: ... if how == "absent" else None})
    result = api.post("/enroll", body)
    assert result["status"] == "22111"
    assert field in result["message"]
    assert result["message"].startswith("missing parameter")


@pytest.mark.parametrize("field", ["format", "sample_rate", "data"])
def test_rule2_missing_required_verify_field_is_22111_naming_it(api, field):
    body = verify_body(GOOD_WAV, user_name="alice")
    del body[field]
    result = api.post("/verify", body)
    assert result["status"] == "22111"
    assert field in result["message"]
    assert result["data"] == {"user_name": "alice"}


@pytest.mark.parametrize("path", USER_ENDPOINTS)
def test_rule2_missing_user_name_is_22111(api, path):
    for body in ({}, {"user_name": None}, {"other": "alice"}):
        result = api.post(path, body)
        assert result["status"] == "22111"
        assert "user_name" in result["message"]
        assert result["data"] is None


def test_rule2_beats_rule3(api):
    """A missing field wins over a badly typed one, whatever their order in the body."""
    body = enroll_fields(sample_rate="16000", data=...)
    result = api.post("/enroll", body)
    assert result["status"] == "22111"
    assert "data" in result["message"]


# ------------------------------------------------------------------ rule 3 ---

BAD_VALUES = {
    "user_name": ["abc", "a" * 17, "al ice", "alice!", "álice", "alice\n", 1234, True, ["alice"],
                  {"n": "alice"}, ""],
    "format": ["mp3", "wave", "", 1, True, ["wav"]],
    "sample_rate": [8000, 44100, 16000.0, "16000", True, [16000], -16000, 10**30],
    "enroll_num": [0, 4, -1, 1.0, "1", True, False, [1], 10**30],
    "group_id": [-1, 100, 1.0, "0", True, [0], {"g": 0}],
    "data": [123, True, ["AAAA"], {"b": "AAAA"}],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in BAD_VALUES.items() for v in vs])
def test_rule3_wrong_type_or_range_in_enroll_is_22121_naming_the_field(api, field, value):
    result = api.post("/enroll", enroll_fields(**{field: value}))
    assert result["status"] == "22121", result
    assert result["message"].startswith(f"invalid parameter: {field}")


@pytest.mark.parametrize("value", [True, 16000.0, "16000"])
def test_rule3_integer_fields_take_json_integers_only(api, value):
    assert api.post("/enroll", enroll_fields(sample_rate=value))["status"] == "22121"
    assert api.post("/verify", verify_body(GOOD_WAV, sample_rate=value))["status"] == "22121"


@pytest.mark.parametrize("fmt", ["WAV", "Wav", "wav"])
def test_rule3_format_is_case_insensitive(api, fmt):
    # gets past rule 3: the tone is refused by the model (too little speech) or accepted
    result = api.post("/enroll", enroll_fields(format=fmt))
    assert result["status"] not in ("22111", "22121", "22123", "22152")


@pytest.mark.parametrize("field,value", [
    ("user_name", "abc"), ("user_name", 5), ("group_id", -1), ("group_id", [0, 100]),
    ("group_id", [True]), ("group_id", "0"), ("group_id", 1.5), ("top_n", 0), ("top_n", 101),
    ("top_n", True), ("top_n", 3.0), ("format", "flac"), ("data", 7),
])
def test_rule3_wrong_type_or_range_in_verify_is_22121_naming_the_field(api, field, value):
    body = verify_body(GOOD_WAV)
    body[field] = value
    result = api.post("/verify", body)
    assert result["status"] == "22121", result
    assert field in result["message"]


def test_rule3_beats_rule4(api):
    """A bad type wins over broken base64."""
    result = api.post("/enroll", enroll_fields(enroll_num="1", data="%%% not base64"))
    assert result["status"] == "22121"


@pytest.mark.parametrize("path", USER_ENDPOINTS)
@pytest.mark.parametrize("name", ["abc", "x" * 17, "bad name", 42, "名字名字"])
def test_rule3_bad_user_name_is_22121_with_data_null(api, path, name):
    result = api.post(path, {"user_name": name})
    assert result["status"] == "22121"
    assert "user_name" in result["message"]
    assert result["data"] is None


@pytest.mark.parametrize("name", ["abcd", "a" * 16, "A-b_9", "----", "____", "0000"])
def test_rule3_user_name_accepts_4_to_16_of_the_alphabet(api, name):
    result = api.post("/checkUser", {"user_name": name})
    assert result["status"] == "00000"
    assert result["data"]["user_name"] == name


# ------------------------------------------------------------------ rule 4 ---

@pytest.mark.parametrize("data", ["%%%%", "AAA", "AAAAA", "A===", "ab$d", "YWJj\x00", "Zm9v=Zm9v",
                                  "é" * 8])
@pytest.mark.parametrize("fmt", ["wav", "pcm"])
def test_rule4_data_not_base64_is_22152(api, data, fmt):
    result = api.post("/enroll", enroll_fields(data=data, format=fmt))
    assert result["status"] == "22152", result
    assert result["data"] == {"user_name": "alice"}


def test_rule4_base64_line_breaks_are_tolerated(api):
    """`base64 file.wav` wraps at 76 columns; whitespace is not an error."""
    wrapped = "\n".join(GOOD_WAV[i:i + 76] for i in range(0, len(GOOD_WAV), 76))
    result = api.post("/enroll", enroll_fields(data=wrapped))
    assert result["status"] not in ("22152", "22121")


@pytest.mark.parametrize("payload", [
    b"", b"RIFF", b"not a wav file at all", b"RIFF\x00\x00\x00\x00WAVE",
    b"RIFX" + wav_bytes(tone(4.0))[4:], b"fLaC" + b"\x00" * 100,
])
def test_rule4_wav_that_is_not_riff_wave_is_22152(api, payload):
    result = api.post("/enroll", enroll_fields(data=b64(payload)))
    assert result["status"] == "22152", result


@pytest.mark.parametrize("cut", [12, 20, 36, 44])
def test_rule4_truncated_wav_header_is_22152_or_22124(api, cut):
    """A header cut short is unparseable (22152); cut after the header, the audio is just
    too short (22124)."""
    result = api.post("/enroll", enroll_fields(data=b64(wav_bytes(tone(4.0))[:cut])))
    assert result["status"] in ("22152", "22124")
    if cut < 44:
        assert result["status"] == "22152"


def test_rule4_beats_rule5(api):
    """Broken base64 of too-short audio is reported as the decoding error."""
    short = b64(wav_bytes(tone(1.0)))
    assert api.post("/enroll", enroll_fields(data=short[:-3]))["status"] == "22152"


# ------------------------------------------------------------------ rule 5 ---

@pytest.mark.parametrize("payload,word", [
    (wav_bytes(tone(4.0), channels=2), "mono"),
    (wav_bytes(tone(4.0), sampwidth=1), "16-bit"),
    (wav_bytes(tone(4.0), sampwidth=4), "16-bit"),
    (wav_bytes(tone(4.0, 44100), sample_rate=44100), "16000"),
    (wav_bytes(tone(4.0, 8000), sample_rate=8000), "16000"),
    (wav_bytes(tone(2.9)), "3.0"),
    (wav_bytes(tone(20.5)), "20.0"),
])
def test_rule5_wav_breaking_a_constraint_is_22124_saying_which(api, payload, word):
    result = api.post("/enroll", enroll_fields(data=b64(payload)))
    assert result["status"] == "22124", result
    assert result["message"].startswith("audio data does not meet the required constraints: ")
    assert word in result["message"]
    assert result["data"] == {"user_name": "alice"}


def test_rule5_odd_length_pcm_is_22124(api):
    pcm = np.zeros(16000 * 4, dtype="<i2").tobytes() + b"\x00"
    result = api.post("/enroll", enroll_fields(format="pcm", data=b64(pcm)))
    assert result["status"] == "22124"
    assert "even" in result["message"]


@pytest.mark.parametrize("seconds,word", [(2.5, "3.0"), (20.5, "20.0")])
def test_rule5_pcm_duration_out_of_range_is_22124(api, seconds, word):
    pcm = np.zeros(int(16000 * seconds), dtype="<i2").tobytes()
    result = api.post("/enroll", enroll_fields(format="pcm", data=b64(pcm)))
    assert result["status"] == "22124"
    assert word in result["message"]


def test_rule5_pcm_has_no_container_so_any_even_bytes_decode(api):
    """Raw PCM cannot be "unparseable": garbage of the right length reaches the model."""
    junk = np.random.default_rng(0).integers(-2000, 2000, 16000 * 4).astype("<i2").tobytes()
    result = api.post("/enroll", enroll_fields(format="pcm", data=b64(junk)))
    assert result["status"] not in ("22152",)


@pytest.mark.parametrize("path", ["/enroll", "/verify"])
def test_rule5_too_little_speech_is_22124(api, path):
    silence = b64(wav_bytes(np.zeros(16000 * 5)))
    if path == "/enroll":
        body = enroll_fields(data=silence)
    else:
        body = verify_body(silence, user_name="alice")
    result = api.post(path, body)
    assert result["status"] == "22124", result
    assert result["data"] == {"user_name": "alice"}


def test_rule5_beats_state_rules(api, voices):
    """Audio is checked before the state: a completed user sending bad audio gets 22124, not 22131,
    and an unknown user verifying bad audio gets 22124, not 22133."""
    api.enroll_fully("alice", voices, 0)
    short = b64(wav_bytes(tone(1.0)))
    assert api.post("/enroll", enroll_fields(data=short))["status"] == "22124"
    assert api.post("/verify", verify_body(short, user_name="nobody"))["status"] == "22124"
    assert api.post("/verify", verify_body(short))["status"] == "22124"


# --------------------------------------------------------- details / data echo ---

def test_echo_user_name_on_errors_when_usable(api):
    result = api.post("/enroll", enroll_fields(sample_rate=8000))
    assert result["status"] == "22121"
    assert result["data"] == {"user_name": "alice"}


def test_no_echo_when_the_user_name_is_not_usable(api):
    result = api.post("/enroll", enroll_fields(user_name="x!", sample_rate=8000))
    assert result["status"] == "22121"
    assert result["data"] is None


def test_no_echo_in_1vN_errors(api):
    result = api.post("/verify", verify_body("%%%"))
    assert result["status"] == "22152"
    assert result["data"] is None


@pytest.mark.parametrize("field", ["group_id"])
def test_null_optional_enroll_field_counts_as_absent(api, voices, field):
    result = api.enroll("alice", 1, voices.wav(0, 0), **{field: None})
    assert result["status"] == "00000"
    assert api.check("alice")["data"]["group_id"] == 0


def test_null_optional_verify_fields_count_as_absent(api, voices):
    api.enroll_fully("alice", voices, 0, group_id=7)
    result = api.verify(voices.wav(0, 3), user_name=None, group_id=None, top_n=None)
    assert result["status"] == "00000"
    assert [m["user_name"] for m in result["data"]] == ["alice"]  # 1-v-N over all groups


@pytest.mark.parametrize("extra", [{"group_id": "junk"}, {"group_id": -5}, {"top_n": 0},
                                   {"top_n": "many"}, {"group_id": [1000], "top_n": 10**9}])
def test_1v1_ignores_group_id_and_top_n_whatever_their_value(api, voices, extra):
    api.enroll_fully("alice", voices, 0)
    result = api.verify(voices.wav(0, 3), user_name="alice", **extra)
    assert result["status"] == "00000", result
    assert set(result["data"]) == {"user_name", "confidence"}


def test_unknown_extra_fields_are_ignored(api):
    result = api.post("/checkUser", {"user_name": "alice", "extra": [1, {"x": None}]})
    assert result["status"] == "00000"


def test_huge_integer_is_invalid_parameter_not_a_json_error(api):
    raw = ('{"format": "wav", "sample_rate": 16000, "user_name": "alice", "enroll_num": '
           + "9" * 5000 + ', "data": "AAAA"}').encode()
    result = api.post("/enroll", raw=raw)
    assert result["status"] == "22121"
    assert "enroll_num" in result["message"]


def test_base64_of_pcm_and_wav_are_both_accepted(api, voices):
    assert api.enroll("alice", 1, voices.wav(0, 0))["status"] == "00000"
    body = enroll_body("alice", 2, voices.pcm(0, 1), format="PCM")
    assert api.post("/enroll", body)["status"] == "00000"


def test_data_field_must_decode_standard_base64_not_urlsafe(api):
    payload = wav_bytes(tone(4.0))
    urlsafe = base64.urlsafe_b64encode(payload).decode()
    if urlsafe == b64(payload):  # no '+' or '/' in this payload: nothing to test
        pytest.skip("payload has no characters that differ between the alphabets")
    assert api.post("/enroll", enroll_fields(data=urlsafe))["status"] == "22152"
