"""CONTRACT.md "Envelope" and "Everything else": envelope, HTTP codes, task ids in the log,
service faults (22151, never HTTP 500), body limit, health."""

import json
import logging
import re
import shutil
import uuid

import pytest

from server.store import SQLiteStore, StoreError
from vpserver_support import b64, enroll_body, tone, verify_body, wav_bytes

STORE_BACKENDS = ("sqlite", "postgresql")
#: every test also runs with an API token and a store key set (see conftest.py)
SECURITY = ("open", "secured")


def raw_response(api, method, path, **kwargs):
    response = getattr(api.client, method)(path, **kwargs)
    return response, json.loads(response.data)


# --------------------------------------------------------------- envelope ---

@pytest.mark.parametrize("method,path,body", [
    ("post", "/checkUser", {"user_name": "alice"}),
    ("post", "/checkUser", {"user_name": "x"}),
    ("get", "/getUsers", None),
    ("post", "/enroll", {}),
    ("post", "/verify", {"format": "wav"}),
    ("post", "/unregister", {"user_name": "alice"}),
    ("get", "/health", None),
    ("get", "/nowhere", None),
    ("delete", "/enroll", None),
])
def test_every_response_is_the_json_envelope(api, method, path, body):
    kwargs = {} if body is None else {"json": body}
    response, data = raw_response(api, method, path, **kwargs)
    assert response.headers["Content-Type"] == "application/json"
    assert list(data) == ["task_id", "status", "message", "data"]
    assert uuid.UUID(data["task_id"]).version == 4
    assert re.fullmatch(r"\d{5}", data["status"])
    assert isinstance(data["message"], str) and data["message"]


def test_task_id_is_unique_per_request(api):
    ids = {api.check("alice")["task_id"] for _ in range(50)}
    assert len(ids) == 50


def test_errors_that_reached_an_endpoint_are_http_200(api):
    response, data = raw_response(api, "post", "/enroll", data=b"not json")
    assert response.status_code == 200 and data["status"] == "22123"
    response, data = raw_response(api, "post", "/unregister", json={"user_name": "nobody"})
    assert response.status_code == 200 and data["status"] == "22135"


@pytest.mark.parametrize("path", ["/", "/nowhere", "/enroll/", "/ENROLL", "/checkUser/x",
                                  "/" + "x" * 5000])
@pytest.mark.parametrize("method", ["get", "post"])
def test_unknown_path_is_http_404_with_22121_and_data_null(api, path, method):
    response, data = raw_response(api, method, path, json={"user_name": "alice"})
    assert response.status_code == 404
    assert data["status"] == "22121" and data["data"] is None
    assert len(data["message"]) < 300


@pytest.mark.parametrize("method,path", [
    ("get", "/enroll"), ("get", "/verify"), ("get", "/checkUser"), ("get", "/unregister"),
    ("post", "/getUsers"), ("post", "/health"), ("put", "/enroll"), ("delete", "/unregister"),
    ("patch", "/verify"), ("options", "/enroll"),
])
def test_wrong_method_is_http_405_with_22121_and_data_null(api, method, path):
    response, data = raw_response(api, method, path, json={"user_name": "alice"})
    assert response.status_code == 405
    assert data["status"] == "22121" and data["data"] is None
    assert "Allow" in response.headers and "OPTIONS" not in response.headers["Allow"]


# ------------------------------------------------------------- body limit ---

def test_body_over_the_limit_is_http_413_with_22124(make_app):
    api = make_app(max_body=4096)
    body = enroll_body("alice", 1, "A" * 5000)
    response, data = raw_response(api, "post", "/enroll", json=body)
    assert response.status_code == 413
    assert data["status"] == "22124" and data["data"] is None
    assert "4096" in data["message"]
    # just under the limit is parsed normally
    response, data = raw_response(api, "post", "/enroll", json=enroll_body("alice", 1, "%%%"))
    assert response.status_code == 200 and data["status"] == "22152"


def test_default_body_limit_is_2_mib_and_admits_a_20_s_wav(api):
    assert api.app.config["MAX_CONTENT_LENGTH"] == 2 * 1024 * 1024
    twenty = b64(wav_bytes(tone(19.9)))
    response, data = raw_response(api, "post", "/enroll", json=enroll_body("alice", 1, twenty))
    assert response.status_code == 200 and data["status"] != "22151"
    padding = 2 * 1024 * 1024 + 1 - len(json.dumps({"user_name": "alice", "pad": ""}))
    response, data = raw_response(api, "post", "/checkUser",
                                  data=json.dumps({"user_name": "alice", "pad": "x" * padding}))
    assert response.status_code == 413 and data["status"] == "22124"


# ------------------------------------------------------------------ logging ---

def test_task_id_appears_in_the_requests_log_line(api, caplog):
    with caplog.at_level(logging.INFO, logger="server.access"):
        result = api.post("/unregister", {"user_name": "nobody"})
    lines = [r.getMessage() for r in caplog.records if r.name == "server.access"]
    matching = [line for line in lines if result["task_id"] in line]
    assert len(matching) == 1
    line = matching[0]
    assert "POST" in line and "/unregister" in line and " 200 " in line and "22135" in line
    assert re.search(r"\d+\.\dms", line)


def test_404_and_405_are_logged_with_their_task_id(api, caplog):
    with caplog.at_level(logging.INFO, logger="server.access"):
        _, missing = raw_response(api, "get", "/nowhere")
        _, wrong = raw_response(api, "get", "/enroll")
    text = caplog.text
    assert missing["task_id"] in text and wrong["task_id"] in text


# ----------------------------------------------------------- service faults ---

class ExplodingModel:
    """The real model, except that one method raises an unexpected exception."""

    def __init__(self, model, method, exc):
        self._model, self._method, self._exc = model, method, exc

    def __getattr__(self, name):
        if name == self._method:
            def explode(*args, **kwargs):
                raise self._exc
            return explode
        return getattr(self._model, name)


@pytest.mark.parametrize("method,path", [("extract", "/enroll"), ("extract", "/verify"),
                                         ("search", "/verify"), ("enroll", "/enroll")])
def test_unexpected_fault_is_22151_not_http_500_and_logged_with_task_id(
        make_app, model, voices, caplog, monkeypatch, method, path):
    if method == "search":  # the 1-v-N gallery fails
        from vpcore.gallery import Gallery

        def explode(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(Gallery, "search", explode)
        api = make_app()
    else:
        api = make_app(model=ExplodingModel(model, method, RuntimeError("boom")))
    if method == "enroll":
        body_pre = [enroll_body("alice", k, voices.wav(0, k - 1)) for k in (1, 2)]
        for b in body_pre:
            assert api.post("/enroll", b)["status"] == "00000"
        body = enroll_body("alice", 3, voices.wav(0, 2))
    elif path == "/enroll":
        body = enroll_body("alice", 1, voices.wav(0, 0))
    else:
        if method == "search":
            good = make_app(store=api.app.extensions["vpcore"].config.store)
            good.enroll_fully("alice", voices, 0)
        body = verify_body(voices.wav(0, 3))
    with caplog.at_level(logging.INFO):
        response, data = raw_response(api, "post", path, json=body)
    assert response.status_code == 200
    assert data["status"] == "22151" and data["message"] == "service error"
    assert "boom" not in json.dumps(data)  # no internals leak to the client
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(data["task_id"] in r.getMessage() and r.exc_info for r in errors)


def test_store_failure_is_22151(api, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise StoreError("disk on fire")

    monkeypatch.setattr(api.store, "get_user", broken)
    with caplog.at_level(logging.ERROR):
        result = api.check("alice")
    assert result["status"] == "22151" and result["data"] == {"user_name": "alice"}
    assert "disk on fire" in caplog.text and result["task_id"] in caplog.text


def test_model_that_fails_to_load_gives_22151_not_a_crash(make_app, tmp_path):
    api = make_app(model=None, model_path=str(tmp_path / "missing.npz"))
    assert api.check("alice")["status"] == "22151"
    assert api.get("/getUsers")["status"] == "22151"
    assert api.post("/unregister", {"user_name": "alice"})["status"] == "22151"
    health = api.get("/health")
    assert health["status"] == "22151"
    assert health["data"]["model"]["status"] == "error"
    assert "missing.npz" in health["data"]["model"]["error"]
    # requests are still parsed first: a client error stays a client error
    assert api.post("/checkUser", raw=b"[]")["status"] == "22123"


def test_service_recovers_when_the_model_appears(make_app, tmp_path, small_model_path):
    path = tmp_path / "late.npz"
    api = make_app(model=None, model_path=str(path))
    assert api.check("alice")["status"] == "22151"
    shutil.copy(small_model_path, path)
    assert api.check("alice")["status"] == "00000"
    assert api.get("/health")["status"] == "00000"


def test_store_of_another_model_refuses_to_open_and_the_service_answers_22151(
        make_app, tmp_path, voices):
    path = tmp_path / "other.sqlite3"
    SQLiteStore(str(path), "0123456789abcdef").close()
    api = make_app(store=path)
    assert api.check("alice")["status"] == "22151"
    assert api.enroll("alice", 1, voices.wav(0, 0))["status"] == "22151"
    health = api.get("/health")
    assert health["status"] == "22151"
    assert health["data"]["model"]["status"] == "ok"
    assert health["data"]["store"]["status"] == "error"
    assert "0123456789abcdef" in health["data"]["store"]["error"]


def test_unreachable_store_path_is_22151(make_app, tmp_path):
    api = make_app(store=tmp_path / "no" / "such" / "dir" / "s.sqlite3")
    assert api.check("alice")["status"] == "22151"
    assert api.get("/health")["data"]["store"]["status"] == "error"


# ------------------------------------------------------------------ health ---

def test_health_reports_model_and_store(api, model, backend, security):
    result = api.get("/health")
    assert result["status"] == "00000"
    data = result["data"]
    assert data["model"] == {"status": "ok", "fingerprint": model.fingerprint,
                             "voiceprint_dim": model.voiceprint_dim}
    assert data["store"]["status"] == "ok" and data["store"]["backend"] == backend
    assert data["store"]["encrypted"] is (security is not None)
    assert data["index"]["status"] == "ok"


def test_health_does_not_touch_user_data(api, voices, monkeypatch):
    api.enroll_fully("alice", voices, 0)

    def forbidden(*args, **kwargs):
        raise AssertionError("health read user data")

    for name in ("get_user", "get_enrollment", "get_voiceprint", "list_users",
                 "load_voiceprints", "save_take", "delete_user"):
        monkeypatch.setattr(api.store, name, forbidden)
    result = api.get("/health")
    assert result["status"] == "00000"
    assert "alice" not in json.dumps(result)


def test_openapi_document_is_served(api):
    response = api.client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/checkUser", "/getUsers", "/enroll", "/verify", "/unregister", "/health"} <= set(
        doc["paths"])
    assert response.headers["X-Task-Id"]


def test_log_line_of_a_hostile_path_stays_one_line(api, caplog):
    with caplog.at_level(logging.INFO, logger="server.access"):
        _, data = raw_response(api, "get", "/x%0Afake%20line%0D")
    lines = [r.getMessage() for r in caplog.records if data["task_id"] in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "\r" not in lines[0]


@pytest.mark.parametrize("path", ["/enroll", "/verify"])
def test_audio_the_model_cannot_use_is_22124_not_22151(make_app, model, voices, path):
    from vpcore.errors import AudioError

    api = make_app(model=ExplodingModel(model, "extract", AudioError("non-finite voiceprint")))
    body = (enroll_body("alice", 1, voices.wav(0, 0)) if path == "/enroll"
            else verify_body(voices.wav(0, 0), user_name="alice"))
    result = api.post(path, body)
    assert result["status"] == "22124"
    assert "non-finite voiceprint" in result["message"]
    assert result["data"] == {"user_name": "alice"}


# ----------------------------------------------------------- open and secured ---

def test_each_run_is_as_open_or_secured_as_it_says(api, voices, security):
    """The contract modules run twice (conftest.py ``SECURITY``): the secured run's
    service refuses a request without the token, and its store seals every row."""
    api.enroll_fully("alice", voices, 0)
    bare = api.app.test_client()  # sends no token
    response = bare.post("/checkUser", json={"user_name": "alice"})
    assert response.status_code == (200 if security is None else 401)
    assert api.store.encrypted is (security is not None)
    assert api.get("/health")["data"]["store"]["encrypted"] is (security is not None)
