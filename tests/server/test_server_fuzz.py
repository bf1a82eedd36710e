"""Hypothesis fuzzing of request bodies: every response is a well-formed envelope with a
status of the contract's table for that endpoint, never HTTP 500 and never 22151."""

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.config import Config
from vpserver_support import Api, assert_envelope, b64, wav_bytes

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ALLOWED = {
    "/checkUser": {"00000", "22111", "22121", "22123"},
    "/unregister": {"00000", "22111", "22121", "22123", "22135"},
    "/enroll": {"00000", "22111", "22121", "22123", "22124", "22131", "22132", "22152"},
    "/verify": {"00000", "22111", "22121", "22123", "22124", "22133", "22134", "22136",
                "22152"},
}
USER_NAME = re.compile(r"[A-Za-z0-9_-]{4,16}")


@pytest.fixture(scope="module")
def fuzz_api(model, tmp_path_factory):
    config = Config(store=str(tmp_path_factory.mktemp("fuzz") / "store.sqlite3"))
    app = create_app(config, model=model)
    yield Api(app)
    app.extensions["vpcore"].close()


MAX_BODY = 2 * 1024 * 1024


def send(api, path, payload):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = api.client.post(path, data=raw)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert_envelope(body)
    if len(raw) > MAX_BODY:  # e.g. 20 s of 44.1 kHz audio: the body limit answers first
        assert (response.status_code, body["status"]) == (413, "22124"), body
        return body
    assert response.status_code == 200, (response.status_code, response.data[:200])
    assert body["status"] in ALLOWED[path], (path, body)
    return body


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**40, max_value=10**40)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=12,
)
any_value = st.one_of(
    json_values, st.sampled_from([0, 1, 2, 3, 4, -1, 16000, 16000.0, "16000", True, False, "",
                                  "wav", "PCM", "mp3", [0, 1], [], 99, 100, 10**30]),
)
user_names = st.one_of(
    st.text(min_size=0, max_size=20),
    st.from_regex(r"[A-Za-z0-9_-]{4,16}", fullmatch=True),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=4, max_size=16),
)
paths = st.sampled_from(sorted(ALLOWED))


@FUZZ
@given(path=paths, raw=st.binary(max_size=300))
def test_random_bytes(fuzz_api, path, raw):
    send(fuzz_api, path, raw)


@FUZZ
@given(path=paths, value=json_values)
def test_random_json(fuzz_api, path, value):
    body = send(fuzz_api, path, value)
    if not isinstance(value, dict):
        assert body["status"] == "22123"


@FUZZ
@given(path=paths, fields=st.dictionaries(
    st.sampled_from(["format", "sample_rate", "user_name", "enroll_num", "group_id", "data",
                     "top_n", "other"]), any_value, max_size=8))
def test_random_fields_of_wrong_types(fuzz_api, path, fields):
    body = send(fuzz_api, path, fields)
    if path == "/checkUser" and body["status"] == "00000":
        assert USER_NAME.fullmatch(fields["user_name"])


@FUZZ
@given(path=st.sampled_from(["/checkUser", "/unregister"]), name=user_names)
def test_unicode_user_names(fuzz_api, path, name):
    body = send(fuzz_api, path, {"user_name": name})
    if USER_NAME.fullmatch(name):
        assert body["status"] == ("00000" if path == "/checkUser" else "22135")
        assert body["data"]["user_name"] == name
    else:
        assert body["status"] == "22121" and body["data"] is None


base64ish = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=-_ \n$%é.",
                    max_size=80)


@FUZZ
@given(path=st.sampled_from(["/enroll", "/verify"]), data=base64ish,
       fmt=st.sampled_from(["wav", "pcm", "WAV"]))
def test_broken_base64(fuzz_api, path, data, fmt):
    payload = {"format": fmt, "sample_rate": 16000, "user_name": "fuzzer", "enroll_num": 1,
               "data": data}
    body = send(fuzz_api, path, payload)
    assert body["status"] in ("22152", "22124")
    if fmt.lower() == "wav":
        assert body["status"] == "22152"  # nothing that short is a WAV file


class Wav(bytes):
    """WAV bytes that hypothesis reports by their layout, not their megabytes."""

    def __repr__(self):
        return f"Wav({len(self)} bytes)"


@st.composite
def wav_files(draw):
    channels = draw(st.sampled_from([1, 1, 2]))
    sampwidth = draw(st.sampled_from([1, 2, 2, 4]))
    rate = draw(st.sampled_from([8000, 16000, 16000, 22050, 44100]))
    seconds = draw(st.sampled_from([0.0, 0.5, 2.99, 3.0, 4.0, 20.0, 20.01]))
    n = int(seconds * rate)
    t = np.arange(n) / rate
    samples = 0.3 * np.sin(2 * np.pi * 180.0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    data = wav_bytes(samples, sample_rate=rate, channels=channels, sampwidth=sampwidth)
    cut = draw(st.one_of(st.none(), st.integers(0, 60), st.integers(0, len(data))))
    flip = draw(st.one_of(st.none(), st.tuples(st.integers(0, 43), st.integers(0, 255))))
    if flip is not None:
        data = bytearray(data)
        data[flip[0]] = flip[1]
        data = bytes(data)
    if cut is not None:
        data = data[:cut]
    return Wav(data), (channels, sampwidth, rate, seconds, cut, flip)


@FEW
@given(path=st.sampled_from(["/enroll", "/verify"]), wav=wav_files())
def test_wav_files_of_every_layout_and_damage(fuzz_api, path, wav):
    data, (channels, sampwidth, rate, seconds, cut, flip) = wav
    payload = {"format": "wav", "sample_rate": 16000, "user_name": "fuzzwav", "enroll_num": 1,
               "data": b64(data)}
    body = send(fuzz_api, path, payload)
    if body["status"] == "22124" and "request body exceeds" in body["message"]:
        return
    intact = cut is None and flip is None
    if intact and (channels != 1 or sampwidth != 2 or rate != 16000):
        assert body["status"] == "22124", (wav[1], body)
    if intact and not 3.0 <= seconds <= 20.0:
        assert body["status"] == "22124", (wav[1], body)
    if cut is not None and cut < 12:
        assert body["status"] == "22152", (wav[1], body)


@FEW
@given(path=st.sampled_from(["/enroll", "/verify"]),
       n_bytes=st.one_of(st.integers(0, 200), st.integers(95990, 96010),
                         st.integers(639990, 640010)))
def test_pcm_of_any_length(fuzz_api, path, n_bytes):
    rng = np.random.default_rng(n_bytes)
    data = rng.integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    payload = {"format": "pcm", "sample_rate": 16000, "user_name": "fuzzpcm", "enroll_num": 1,
               "data": b64(data)}
    body = send(fuzz_api, path, payload)
    seconds = n_bytes / 32000.0
    if n_bytes % 2 or not 3.0 <= seconds <= 20.0:
        assert body["status"] == "22124"


@FUZZ
@given(query=st.dictionaries(st.sampled_from(["group_id", "offset", "limit", "x"]),
                             st.text(max_size=12), max_size=4))
def test_get_users_random_query(fuzz_api, query):
    response = fuzz_api.client.get("/getUsers", query_string=query)
    assert response.status_code == 200
    body = response.get_json()
    assert_envelope(body)
    assert body["status"] in ("00000", "22121")
    if body["status"] == "00000":
        assert isinstance(body["data"], list)


@FEW
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "POST"]),
       path=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/._-~%",
                    max_size=30))
def test_random_paths_and_methods(fuzz_api, method, path):
    response = fuzz_api.client.open("/" + path, method=method, data=b"{}")
    assert response.status_code in (200, 404, 405)
    body = response.get_json()
    assert_envelope(body)
    if response.status_code != 200:
        assert body["status"] == "22121" and body["data"] is None


@st.composite
def odd_waveforms(draw):
    """Valid containers holding pathological signals: DC, pure tones up to Nyquist, clicks,
    clipping, near-silence, and mixtures of them."""
    n = 16000 * draw(st.sampled_from([3, 4, 7]))
    t = np.arange(n) / 16000.0
    x = np.full(n, draw(st.floats(-1.0, 1.0)))
    x += draw(st.floats(0.0, 1.0)) * np.sin(2 * np.pi * draw(st.floats(1.0, 7999.0)) * t)
    noise = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(n)
    x += draw(st.floats(0.0, 2.0)) * noise
    period = draw(st.integers(2, 4000))
    x += draw(st.floats(0.0, 1.0)) * (np.arange(n) % period == 0)
    silence = draw(st.floats(0.0, 1.0))
    x[: int(silence * n)] = 0.0
    return np.clip(x * draw(st.sampled_from([1e-4, 0.01, 1.0, 100.0])), -1.0, 1.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/enroll", "/verify"]), samples=odd_waveforms(),
       fmt=st.sampled_from(["wav", "pcm"]))
def test_pathological_signals_in_valid_containers(fuzz_api, path, samples, fmt):
    from vpcore.synth import to_pcm_bytes, to_wav_bytes

    data = to_wav_bytes(samples) if fmt == "wav" else to_pcm_bytes(samples)
    payload = {"format": fmt, "sample_rate": 16000, "user_name": "fuzzsignal", "enroll_num": 1,
               "data": b64(data)}
    body = send(fuzz_api, path, payload)
    assert body["status"] in ("00000", "22124", "22133", "22134", "22136"), body
