"""server/openapi.json: a valid OpenAPI 3.1 document whose schemas real responses satisfy."""

import json

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from vpserver_support import OPENAPI, STATUSES, b64, enroll_body, tone, verify_body, wav_bytes

DOC = json.loads(OPENAPI.read_text())
REGISTRY = Registry().with_resource("urn:vpcore-openapi",
                                    Resource.from_contents(DOC, default_specification=DRAFT202012))


def _escape(part):
    return part.replace("~", "~0").replace("/", "~1")


def validator(*pointer):
    ref = "urn:vpcore-openapi#/" + "/".join(_escape(p) for p in pointer)
    return jsonschema.Draft202012Validator({"$ref": ref}, registry=REGISTRY)


def response_validator(path, method, http_status):
    """Validator of the documented response; a wrong method's 405 is documented under the
    path's own operation."""
    ops = DOC["paths"][path]
    if method not in ops:
        assert http_status == 405
        method = next(iter(ops))
    responses = ops[method]["responses"]
    entry = responses[str(http_status)]
    if "$ref" in entry:
        name = entry["$ref"].rsplit("/", 1)[1]
        return validator("components", "responses", name, "content", "application/json",
                         "schema")
    return validator("paths", path, method, "responses", str(http_status), "content",
                     "application/json", "schema")


def test_document_is_openapi_3_with_valid_json_schemas():
    assert DOC["openapi"].startswith("3.1")
    jsonschema.Draft202012Validator.check_schema({"$defs": DOC["components"]["schemas"]})
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"], (path, method)
            assert "405" in op["responses"], (path, method)


def test_document_lists_every_status_of_the_contract():
    assert set(DOC["components"]["schemas"]["Status"]["enum"]) == STATUSES


def test_request_schemas_accept_valid_and_refuse_invalid_requests():
    enroll = validator("components", "schemas", "EnrollRequest")
    verify = validator("components", "schemas", "VerifyRequest")
    user = validator("components", "schemas", "UserRequest")
    assert enroll.is_valid(enroll_body("alice", 1, "AAAA", group_id=3))
    assert enroll.is_valid(enroll_body("alice", 3, "AAAA", format="PCM", group_id=None))
    for bad in (enroll_body("al", 1, "AAAA"), enroll_body("alice", 4, "AAAA"),
                enroll_body("alice", True, "AAAA"),
                enroll_body("alice", 1, "AAAA", sample_rate=8000),
                enroll_body("alice", 1, "AAAA", format="mp3"), {"user_name": "alice"}):
        assert not enroll.is_valid(bad), bad
    assert verify.is_valid(verify_body("AAAA"))
    assert verify.is_valid(verify_body("AAAA", group_id=[0, 1], top_n=5))
    assert verify.is_valid(verify_body("AAAA", group_id=2, user_name="alice"))
    for bad in (verify_body("AAAA", top_n=0), verify_body("AAAA", group_id=[100]),
                verify_body("AAAA", sample_rate=16000.5)):
        assert not verify.is_valid(bad), bad
    assert user.is_valid({"user_name": "alice"})
    assert not user.is_valid({"user_name": "a b"})


def scenarios(voices):
    """(method, path, body or query, expected status, expected HTTP) covering every endpoint
    and every status it documents. Run in order against one fresh service."""
    short = b64(wav_bytes(tone(1.0)))
    good = voices.wav
    return [
        ("post", "/checkUser", {"user_name": "alice"}, "00000", 200),
        ("post", "/checkUser", {}, "22111", 200),
        ("post", "/checkUser", {"user_name": "a"}, "22121", 200),
        ("post", "/checkUser", b"nope", "22123", 200),
        ("get", "/getUsers", "", "00000", 200),
        ("get", "/getUsers", "?limit=0", "22121", 200),
        ("post", "/enroll", enroll_body("alice", 1, good(0, 0), group_id=2), "00000", 200),
        ("post", "/enroll", {"format": "wav"}, "22111", 200),
        ("post", "/enroll", enroll_body("alice", 9, good(0, 0)), "22121", 200),
        ("post", "/enroll", b"[]", "22123", 200),
        ("post", "/enroll", enroll_body("alice", 2, short), "22124", 200),
        ("post", "/enroll", enroll_body("alice", 2, good(1, 1)), "22124", 200),  # mismatch
        ("post", "/enroll", enroll_body("alice", 3, good(0, 2)), "22132", 200),
        ("post", "/enroll", enroll_body("alice", 2, good(0, 1), group_id=2), "00000", 200),
        ("post", "/enroll", enroll_body("alice", 3, good(0, 2), group_id=2), "00000", 200),
        ("post", "/enroll", enroll_body("alice", 1, good(0, 0)), "22131", 200),
        ("post", "/enroll", enroll_body("alice", 1, "!!!!"), "22152", 200),
        ("post", "/enroll", enroll_body("bob_", 1, good(1, 0)), "00000", 200),
        ("post", "/checkUser", {"user_name": "alice"}, "00000", 200),
        ("get", "/getUsers", "", "00000", 200),
        ("get", "/getUsers", "?group_id=2&offset=0&limit=5", "00000", 200),
        ("post", "/verify", verify_body(good(0, 3), user_name="alice"), "00000", 200),
        ("post", "/verify", verify_body(good(0, 3)), "00000", 200),
        ("post", "/verify", verify_body(good(0, 3), group_id=[7]), "22136", 200),
        ("post", "/verify", verify_body(good(0, 3), user_name="nobody"), "22133", 200),
        ("post", "/verify", verify_body(good(1, 3), user_name="bob_"), "22134", 200),
        ("post", "/verify", {"data": "x"}, "22111", 200),
        ("post", "/verify", verify_body(good(0, 3), top_n=0), "22121", 200),
        ("post", "/verify", b"", "22123", 200),
        ("post", "/verify", verify_body(short), "22124", 200),
        ("post", "/verify", verify_body("@@@@"), "22152", 200),
        ("post", "/unregister", {"user_name": "bob_"}, "00000", 200),
        ("post", "/unregister", {"user_name": "bob_"}, "22135", 200),
        ("post", "/unregister", {"user_name": None}, "22111", 200),
        ("post", "/unregister", {"user_name": 7}, "22121", 200),
        ("post", "/unregister", b"{", "22123", 200),
        ("get", "/health", "", "00000", 200),
        ("get", "/enroll", "", "22121", 405),
        ("post", "/getUsers", {}, "22121", 405),
        ("post", "/enroll", "body over 2 MiB", "22124", 413),
    ]


def test_real_responses_of_every_endpoint_match_the_documented_schemas(make_app, voices):
    api = make_app()
    seen = set()
    for method, path, payload, status, http in scenarios(voices):
        if path == "/enroll" and http == 413:
            payload = {"pad": "x" * (2 * 1024 * 1024 + 1)}
        if method == "get":
            response = api.client.get(path + payload)
        elif isinstance(payload, bytes):
            response = api.client.post(path, data=payload)
        else:
            response = api.client.post(path, json=payload)
        body = response.get_json()
        assert (response.status_code, body["status"]) == (http, status), (path, payload, body)
        errors = sorted(response_validator(path, method, http).iter_errors(body), key=str)
        assert not errors, (path, body, [e.message for e in errors[:3]])
        seen.add(status)
    assert seen == STATUSES - {"22151", "22137"}  # 22137: the guard, off by default (below)


def test_token_refusals_and_the_guard_match_the_documented_schemas(make_app, voices):
    api = make_app(api_token="documented-token-0123", guard_failures=1)
    auth = {"Authorization": "Bearer documented-token-0123"}
    for path in ("/checkUser", "/getUsers", "/enroll", "/verify", "/unregister"):
        method = "get" if path == "/getUsers" else "post"
        response = api.client.open(path, method=method.upper(), json={"user_name": "alice"})
        body = response.get_json()
        assert (response.status_code, body["status"]) == (401, "22121"), body
        errors = list(response_validator(path, method, 401).iter_errors(body))
        assert not errors, (path, body, [e.message for e in errors[:3]])
    for k in (1, 2, 3):
        api.client.post("/enroll", json=enroll_body("alice", k, voices.wav(0, k - 1)), headers=auth)
    api.client.post("/verify", json=verify_body(voices.wav(1, 3), user_name="alice"), headers=auth)
    response = api.client.post("/verify", json=verify_body(voices.wav(0, 3), user_name="alice"),
                               headers=auth)
    body = response.get_json()
    assert body["status"] == "22137", body
    errors = list(response_validator("/verify", "post", 200).iter_errors(body))
    assert not errors, (body, [e.message for e in errors[:3]])


def test_unknown_path_and_service_error_responses_match_the_schemas(make_app, tmp_path):
    api = make_app(model=None, model_path=str(tmp_path / "missing.npz"))
    response = api.client.post("/checkUser", json={"user_name": "alice"})
    body = response.get_json()
    assert body["status"] == "22151"
    assert not list(response_validator("/checkUser", "post", 200).iter_errors(body))
    health = api.client.get("/health").get_json()
    assert health["status"] == "22151"
    assert not list(response_validator("/health", "get", 200).iter_errors(health))
    missing = api.client.get("/nowhere").get_json()
    assert not list(validator("components", "responses", "NotFound", "content",
                              "application/json", "schema").iter_errors(missing))


def test_schemas_are_strict_enough_to_fail(make_app):
    """A response with the wrong data shape is rejected (the schemas are not vacuous)."""
    check = response_validator("/checkUser", "post", 200)
    good = {"task_id": "4848d4f8-b511-4c69-a1c1-61a54bbb3bb8", "status": "00000",
            "message": "success", "data": {"user_name": "test", "enroll_num": 0,
                                           "update_time": "", "group_id": None}}
    assert check.is_valid(good)
    for broken in ({**good, "status": "22136"}, {**good, "data": [1]},
                   {**good, "extra": 1}, {**good, "task_id": "not-a-uuid"},
                   {**good, "data": {**good["data"], "enroll_num": 4}}):
        assert not check.is_valid(broken), broken
    verify = response_validator("/verify", "post", 200)
    assert not verify.is_valid({**good, "data": [{"user_name": "test", "confidence": 1.5,
                                                 "group_id": 0}]})
