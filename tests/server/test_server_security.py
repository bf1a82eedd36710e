"""Biometric data protection: the API token, encryption at rest and key rotation, erasure
on unregister, the audit log, the verification guard, and secrets kept out of logs."""

import base64
import glob
import json
import logging
import re
import sqlite3

import pytest

from server.__main__ import main as server_main
from server.config import Config, ConfigError
from server.store import (PlainRows, RowCipher, StoreKeyError, open_store, read_key, rows_for,
                          write_new_key)
from server.store.base import row_aad
from vpserver_support import Api, enroll_body, verify_body

STORE_BACKENDS = ("sqlite", "postgresql")

FP = "feedfacecafebeef"
NOW = "2024-01-02 03:04:05"
TOKEN = "tok-A-0123456789abcdef"
OTHER_TOKEN = "tok-B-fedcba9876543210"


@pytest.fixture
def key_file(tmp_path):
    return write_new_key(str(tmp_path / "store.key"))


@pytest.fixture
def other_key_file(tmp_path):
    return write_new_key(str(tmp_path / "other.key"))


def save(store, name, k, take=None):
    record = store.get_user(name)
    return store.save_take(name, k, take or f"{name}-take{k}".encode(), 0, NOW,
                           f"{name}-voiceprint".encode() if k == 3 else None,
                           None if record is None else record.revision)


def enrol(store, name):
    for k in (1, 2, 3):
        save(store, name, k)


def raw_rows(store_url):
    """``(users, takes)``: the rows ``(name, voiceprint)`` and ``(user_name, take_num,
    take)`` as the database holds them, read past the Store interface."""
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            users = conn.execute("SELECT name, voiceprint FROM vpcore_users").fetchall()
            takes = conn.execute("SELECT user_name, take_num, take FROM vpcore_takes").fetchall()
    else:
        conn = sqlite3.connect(store_url)
        try:
            users = conn.execute("SELECT name, voiceprint FROM users").fetchall()
            takes = conn.execute("SELECT user_name, take_num, take FROM takes").fetchall()
        finally:
            conn.close()
    return ([(n, None if v is None else bytes(v)) for n, v in users],
            [(n, k, bytes(t)) for n, k, t in takes])


def execute(store_url, sql, args=()):
    """Run one statement on the raw database and commit."""
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            conn.execute(sql.replace("?", "%s").replace("TABLE_", "vpcore_"), args)
        return
    conn = sqlite3.connect(store_url)
    try:
        conn.execute(sql.replace("TABLE_", ""), args)
        conn.commit()
    finally:
        conn.close()


# ------------------------------------------------------------------ API token ---

@pytest.fixture
def token_api(make_app):
    return make_app(api_token=f"{TOKEN},{OTHER_TOKEN}")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong-token-0000000000",
                                    f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"])
@pytest.mark.parametrize("method,path", [("POST", "/checkUser"), ("GET", "/getUsers"),
                                         ("POST", "/enroll"), ("POST", "/verify"),
                                         ("POST", "/unregister"), ("GET", "/nowhere")])
def test_a_missing_or_wrong_token_is_http_401_with_22121(token_api, header, method, path):
    headers = {} if header is None else {"Authorization": header}
    body = token_api.post(path, {"user_name": "alice"}, headers=headers, expect_http=401) \
        if method == "POST" else token_api.get(path, headers=headers, expect_http=401)
    assert body["status"] == "22121" and body["data"] is None
    assert "Authorization: Bearer <token>" in body["message"]
    response = token_api.client.open(path, method=method, headers=headers)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", [TOKEN, OTHER_TOKEN])
def test_each_configured_token_is_accepted(token_api, token):
    body = token_api.post("/checkUser", {"user_name": "alice"},
                          headers={"Authorization": f"Bearer {token}"})
    assert body["status"] == "00000"


def test_health_and_openapi_need_no_token(token_api):
    assert token_api.get("/health")["status"] == "00000"
    assert token_api.client.get("/openapi.json").status_code == 200


def test_tokens_can_come_from_a_file(make_app, tmp_path):
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN}\n{OTHER_TOKEN}\n")
    api = make_app(api_token=str(path))
    for token in (TOKEN, OTHER_TOKEN):
        assert api.get("/getUsers", headers={"Authorization": f"Bearer {token}"})[
            "status"] == "00000"
    api.get("/getUsers", headers={"Authorization": f"Bearer {path}"}, expect_http=401)


@pytest.mark.parametrize("value", ["short", "a" * 20 + ",short", "has a space in it 0123", ","])
def test_a_weak_or_malformed_token_is_a_config_error_that_does_not_show_it(value):
    with pytest.raises(ConfigError, match="VPCORE_API_TOKEN") as info:
        Config.from_env({"VPCORE_API_TOKEN": value})
    assert value.strip(",") == "" or value.strip(",") not in str(info.value)


def test_without_a_token_configured_every_request_passes(api):
    assert api.post("/checkUser", {"user_name": "alice"})["status"] == "00000"


def test_tokens_are_compared_in_constant_time(token_api, monkeypatch):
    import server.security

    calls = []
    real = server.security.hmac.compare_digest
    monkeypatch.setattr(server.security.hmac, "compare_digest",
                        lambda a, b: calls.append((a, b)) or real(a, b))
    token_api.get("/getUsers", headers={"Authorization": f"Bearer {TOKEN}"})
    # every configured token is compared, even after a match
    assert sorted(b for _, b in calls) == sorted([TOKEN.encode(), OTHER_TOKEN.encode()])


def test_openapi_documents_the_bearer_scheme():
    import importlib.resources

    doc = json.loads(importlib.resources.files("server").joinpath("openapi.json").read_text())
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]}
    assert {"bearerAuth": []} in doc["security"]
    assert doc["paths"]["/health"]["get"]["security"] == [{}]
    assert doc["paths"]["/openapi.json"]["get"]["security"] == [{}]
    for path in ("/checkUser", "/getUsers", "/enroll", "/verify", "/unregister"):
        for operation in doc["paths"][path].values():
            assert "401" in operation["responses"], path


# ------------------------------------------------------------ encryption at rest ---

def test_an_encrypted_store_holds_no_take_or_voiceprint_in_the_clear(store_url, key_file):
    store = open_store(store_url, FP, rows=rows_for(key_file))
    try:
        assert store.encrypted and store.status()["encrypted"] is True
        enrol(store, "alice")
        assert store.get_enrollment("alice")[1] == [b"alice-take1", b"alice-take2",
                                                    b"alice-take3"]
        assert store.get_voiceprint("alice")[1] == b"alice-voiceprint"
        assert store.load_voiceprints()[1] == [("alice", 0, b"alice-voiceprint")]
    finally:
        store.close()
    users, takes = raw_rows(store_url)
    blobs = [v for _, v in users] + [t for _, _, t in takes]
    assert len(blobs) == 4 and all(b.startswith(b"VPE1") for b in blobs)
    assert not any(b"alice-" in b for b in blobs)
    # each blob opens with its own associated data only
    cipher = RowCipher(read_key(key_file))
    assert cipher.open(row_aad("voiceprint", "alice"), users[0][1]) == b"alice-voiceprint"


@pytest.mark.parametrize("move", ["voiceprint to another user", "take to another user",
                                  "take to another take number"])
def test_a_row_moved_to_another_user_or_take_does_not_open(store_url, key_file, move):
    store = open_store(store_url, FP, rows=rows_for(key_file))
    try:
        enrol(store, "alice")
        enrol(store, "mallory")
        users, takes = raw_rows(store_url)
        vp = dict(users)
        take = {(n, k): t for n, k, t in takes}
        if move == "voiceprint to another user":
            execute(store_url, "UPDATE TABLE_users SET voiceprint = ? WHERE name = ?",
                    (vp["alice"], "mallory"))
            with pytest.raises(StoreKeyError, match="voiceprint of 'mallory'"):
                store.get_voiceprint("mallory")
            with pytest.raises(StoreKeyError):
                store.load_voiceprints()
        elif move == "take to another user":
            execute(store_url, "UPDATE TABLE_takes SET take = ? WHERE user_name = ? AND"
                    " take_num = 1", (take["alice", 1], "mallory"))
            with pytest.raises(StoreKeyError, match="take1 of 'mallory'"):
                store.get_enrollment("mallory")
        else:
            execute(store_url, "UPDATE TABLE_takes SET take = ? WHERE user_name = ? AND"
                    " take_num = 2", (take["alice", 1], "alice"))
            with pytest.raises(StoreKeyError, match="take2 of 'alice'"):
                store.get_enrollment("alice")
    finally:
        store.close()


def test_a_moved_voiceprint_is_a_service_error_not_a_match(make_app, voices, store_url,
                                                           key_file):
    api = make_app(store=store_url, store_key=key_file)
    api.enroll_fully("alice", voices, 0)
    api.enroll_fully("mallory", voices, 1)
    users, _ = raw_rows(store_url)
    execute(store_url, "UPDATE TABLE_users SET voiceprint = ? WHERE name = ?",
            (dict(users)["alice"], "mallory"))
    # alice's voice against "mallory" must not verify with alice's voiceprint
    assert api.verify(voices.wav(0, 3), user_name="mallory")["status"] == "22151"


def test_a_wrong_key_is_refused_even_by_an_empty_store(store_url, key_file, other_key_file):
    open_store(store_url, FP, rows=rows_for(key_file)).close()  # empty, made with key_file
    with pytest.raises(StoreKeyError, match="VPCORE_STORE_KEY is not the key"):
        open_store(store_url, FP, rows=rows_for(other_key_file))
    with pytest.raises(StoreKeyError, match="is encrypted: set VPCORE_STORE_KEY"):
        open_store(store_url, FP)
    open_store(store_url, FP, rows=rows_for(key_file)).close()


def test_a_key_given_to_an_unencrypted_store_with_users_is_refused(store_url, key_file):
    store = open_store(store_url, FP)
    save(store, "alice", 1)
    store.close()
    with pytest.raises(StoreKeyError, match="VPCORE_STORE_KEY is set but store .* holds users"):
        open_store(store_url, FP, rows=rows_for(key_file))
    store = open_store(store_url, FP)  # unchanged: still opens without a key
    assert store.get_enrollment("alice")[1] == [b"alice-take1"] and not store.encrypted
    store.close()


def test_an_empty_unencrypted_store_starts_encrypting_when_given_a_key(store_url, key_file):
    open_store(store_url, FP).close()
    open_store(store_url, FP, rows=rows_for(key_file)).close()
    with pytest.raises(StoreKeyError):
        open_store(store_url, FP)


@pytest.mark.parametrize("content", [b"", b"x" * 31, b"x" * 33, b"g" * 64])
def test_a_malformed_key_file_is_refused_naming_the_variable(tmp_path, content):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(StoreKeyError, match=f"VPCORE_STORE_KEY={path}: a key file must hold 32"):
        read_key(str(path))
    with pytest.raises(StoreKeyError, match="cannot read"):
        read_key(str(tmp_path / "missing.key"))


def test_new_key_writes_32_private_random_bytes_and_never_overwrites(tmp_path, capsys):
    path = tmp_path / "k"
    assert server_main(["new-key", str(path)]) == 0
    assert len(path.read_bytes()) == 32 and path.stat().st_mode & 0o077 == 0
    before = path.read_bytes()
    assert server_main(["new-key", str(path)]) == 1
    assert path.read_bytes() == before
    assert before not in capsys.readouterr().out.encode()
    assert write_new_key(str(tmp_path / "k2")) and (tmp_path / "k2").read_bytes() != before


def test_the_service_refuses_to_start_with_the_wrong_key_even_on_an_empty_store(
        store_url, key_file, other_key_file, monkeypatch, capsys):
    open_store(store_url, FP, rows=rows_for(key_file)).close()  # empty, made with key_file
    monkeypatch.setenv("VPCORE_STORE", store_url)
    monkeypatch.setenv("VPCORE_STORE_KEY", other_key_file)
    assert server_main([]) == 2
    err = capsys.readouterr().err
    assert "VPCORE_STORE_KEY is not the key" in err
    monkeypatch.delenv("VPCORE_STORE_KEY")
    assert server_main([]) == 2
    err += capsys.readouterr().err
    assert "is encrypted: set VPCORE_STORE_KEY" in err
    password = password_of(store_url)
    assert password is None or password not in err


def test_rotation_re_encrypts_every_row_and_the_old_key_no_longer_opens(
        store_url, key_file, other_key_file):
    store = open_store(store_url, FP, rows=rows_for(key_file))
    enrol(store, "alice")
    save(store, "bob_", 1)
    store.delete_user("bob_")
    before = raw_rows(store_url)
    assert store.rotate_key(rows_for(other_key_file)) == 4
    assert store.get_enrollment("alice")[1] == [b"alice-take1", b"alice-take2", b"alice-take3"]
    store.close()
    after = raw_rows(store_url)
    assert not set(before[1]) & set(after[1]) and before[0] != after[0]
    with pytest.raises(StoreKeyError):
        open_store(store_url, FP, rows=rows_for(key_file))
    store = open_store(store_url, FP, rows=rows_for(other_key_file))
    try:
        assert store.get_voiceprint("alice")[1] == b"alice-voiceprint"
        # the tombstones' tags came from the old key: the history restarts
        assert store.voiceprint_changes(0) is None
        assert store.voiceprint_changes(store.generation()) == (store.generation(), [])
    finally:
        store.close()


def test_rotation_is_one_transaction(store_url, key_file, other_key_file, monkeypatch):
    store = open_store(store_url, FP, rows=rows_for(key_file))
    enrol(store, "alice")
    enrol(store, "carol")
    before = raw_rows(store_url)
    new = rows_for(other_key_file)
    sealed = []
    real_seal = new.seal

    def failing_seal(aad, data):
        if len(sealed) == 3:
            raise StoreKeyError("disk on fire")
        sealed.append(aad)
        return real_seal(aad, data)

    monkeypatch.setattr(new, "seal", failing_seal)
    with pytest.raises(StoreKeyError, match="disk on fire"):
        store.rotate_key(new)
    assert raw_rows(store_url) == before
    assert store.get_enrollment("carol")[1][2] == b"carol-take3"  # still the old key
    store.close()
    open_store(store_url, FP, rows=rows_for(key_file)).close()


def test_rotate_key_command_encrypts_rotates_and_decrypts(store_url, key_file, other_key_file,
                                                          capsys):
    store = open_store(store_url, FP)
    enrol(store, "alice")
    store.close()
    assert server_main(["rotate-key", "--store", store_url, "--new-key", key_file]) == 0
    assert "re-sealed 4" in capsys.readouterr().out
    assert all(v.startswith(b"VPE1") for _, v in raw_rows(store_url)[0])
    assert server_main(["rotate-key", "--store", store_url, "--key", other_key_file,
                        "--new-key", key_file]) == 1
    assert "is not the key of store" in capsys.readouterr().err
    assert server_main(["rotate-key", "--store", store_url, "--key", key_file,
                        "--new-key", other_key_file]) == 0
    assert server_main(["rotate-key", "--store", store_url, "--key", other_key_file,
                        "--decrypt"]) == 0
    store = open_store(store_url, FP)
    assert not store.encrypted and store.get_voiceprint("alice")[1] == b"alice-voiceprint"
    store.close()


@pytest.mark.parametrize("change", ["rotated", "encrypted", "decrypted"])
def test_a_process_holding_the_old_key_cannot_write_after_a_rotation(
        store_url, key_file, other_key_file, change):
    """``rotate-key`` while a service still runs (the README says to stop it first): the
    running process's writes are refused, instead of sealing rows with the old key that
    would never open with the new one; its reads fail as well (StoreKeyError: 22151)."""
    old_key, new_key = {"rotated": (key_file, other_key_file), "encrypted": (None, key_file),
                        "decrypted": (key_file, None)}[change]
    running = open_store(store_url, FP, rows=rows_for(old_key))
    try:
        enrol(running, "alice")
        save(running, "bobby", 1)
        rotation = open_store(store_url, None, rows=rows_for(old_key))
        rotation.rotate_key(rows_for(new_key))
        rotation.close()
        before, generation = raw_rows(store_url), running.generation()
        with pytest.raises(StoreKeyError, match="was changed .* restart the service"):
            save(running, "bobby", 2)
        with pytest.raises(StoreKeyError, match="was changed"):
            save(running, "carol", 1)
        assert raw_rows(store_url) == before and running.generation() == generation
        with pytest.raises(StoreKeyError):
            running.get_enrollment("alice")
    finally:
        running.close()
    restarted = open_store(store_url, FP, rows=rows_for(new_key))
    try:
        save(restarted, "bobby", 2)  # the restarted service writes with the new key
        assert restarted.get_enrollment("bobby")[1] == [b"bobby-take1", b"bobby-take2"]
        assert restarted.get_voiceprint("alice")[1] == b"alice-voiceprint"
    finally:
        restarted.close()


def test_the_rotating_process_itself_goes_on_writing(store_url, key_file, other_key_file):
    store = open_store(store_url, FP, rows=rows_for(key_file))
    try:
        save(store, "alice", 1)
        store.rotate_key(rows_for(other_key_file))
        save(store, "alice", 2)
    finally:
        store.close()
    store = open_store(store_url, FP, rows=rows_for(other_key_file))
    assert store.get_enrollment("alice")[1] == [b"alice-take1", b"alice-take2"]
    store.close()


def test_a_service_left_running_through_a_rotation_answers_22151_and_writes_nothing(
        make_app, voices, store_url, key_file, other_key_file, capsys):
    """What the README's rotation looks like when the service is not stopped first."""
    api = make_app(store=store_url, store_key=key_file)
    api.enroll_fully("alice", voices, 0)
    assert api.enroll("bobby", 1, voices.wav(1, 0))["status"] == "00000"
    assert server_main(["rotate-key", "--store", store_url, "--key", key_file,
                        "--new-key", other_key_file]) == 0
    before = raw_rows(store_url)
    assert api.enroll("bobby", 2, voices.wav(1, 1))["status"] == "22151"
    assert api.enroll("carol", 1, voices.wav(2, 0))["status"] == "22151"
    assert api.verify(voices.wav(0, 3), user_name="alice")["status"] == "22151"
    assert raw_rows(store_url) == before
    restarted = make_app(store=store_url, store_key=other_key_file)
    assert restarted.verify(voices.wav(0, 3), user_name="alice")["data"]["confidence"] > 0.7
    assert restarted.enroll("bobby", 2, voices.wav(1, 1))["status"] == "00000"


# ------------------------------------------------------------------- erasure ---

def store_files(path):
    """Every file of a SQLite store: the database, its WAL and shared-memory index."""
    return {f: open(f, "rb").read() for f in glob.glob(glob.escape(path) + "*")}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_unregister_leaves_no_byte_of_the_user_in_the_sqlite_files(
        make_app, voices, tmp_path, key_file, encrypted):
    path = str(tmp_path / "erase.sqlite3")
    api = make_app(store=path, store_key=key_file if encrypted else None)
    name = "zq_erase_me_42"
    api.enroll_fully(name, voices, 0)
    api.enroll_fully("keeper", voices, 1)
    assert api.post("/verify", verify_body(voices.wav(0, 3), user_name=name))["status"] == "00000"
    plain = api.store.get_enrollment(name)[1] + [api.store.get_voiceprint(name)[1]]
    users, takes = raw_rows(path)
    sealed = [v for n, v in users if n == name] + [t for n, _, t in takes if n == name]
    pieces = [name.encode()] + [blob[i:i + 24] for blob in plain + sealed
                                for i in range(16, len(blob) - 24, max(24, len(blob) // 8))]
    files = store_files(path)
    assert all(any(p in data for data in files.values()) for p in pieces[:1])  # there before
    assert api.post("/unregister", {"user_name": name})["status"] == "00000"
    files = store_files(path)
    assert path + "-wal" not in files or len(files[path + "-wal"]) == 0
    for f, data in files.items():
        for piece in pieces:
            assert piece not in data, (f, piece[:16])
    assert api.check("keeper")["data"]["enroll_num"] == 3  # the others are intact


def test_unregister_leaves_no_name_in_a_larger_sqlite_file(tmp_path):
    """Enough users for several b-tree levels in every index holding names."""
    path = str(tmp_path / "many.sqlite3")
    store = open_store(path, FP)
    names = [f"name{i:04d}_zq" for i in range(400)]
    for name in names:
        save(store, name, 1)
    gone = names[::7]
    for name in gone:
        assert store.delete_user(name)
    store.close()
    data = b"".join(store_files(path).values())
    assert [n for n in gone if n.encode() in data] == []
    assert all(n.encode() in data for n in names[1:7])


def table_bytes(store_url):
    """Every value of every table of the store (read with SQL, past the Store interface),
    as bytes: what the database would show anyone who can query it."""
    def encode(value):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        return str(value).encode("utf-8")

    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()")]
            rows = [row for t in tables for row in conn.execute(f"SELECT * FROM {t}")]
    else:
        conn = sqlite3.connect(store_url)
        try:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = [row for t in tables for row in conn.execute(f"SELECT * FROM {t}")]
        finally:
            conn.close()
    assert {"users", "takes", "removed_users", "verify_failures", "meta"} <= {
        t.removeprefix("vpcore_") for t in tables}
    return b"\x00".join(encode(value) for row in rows for value in row)


def password_of(url):
    """The password of a ``postgresql://`` URL (None: none, or not a URL)."""
    match = re.match(r"^[a-z]+://[^:/@]*:([^@/]*)@", url or "")
    return match.group(1) if match and match.group(1) else None


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_after_unregister_no_table_holds_a_byte_of_the_user(make_app, voices, store_url,
                                                             key_file, encrypted):
    """On both backends: the user's row, takes, voiceprint, failed verifications and
    tombstone, read with SQL, keep nothing of its name, takes or voiceprint (PostgreSQL's
    dead tuples are another matter: README "Security")."""
    api = make_app(store=store_url, store_key=key_file if encrypted else None,
                   guard_failures=5, guard_confidence=0.5)
    name = "zq_erase_me_42"
    api.enroll_fully(name, voices, 0)
    api.enroll_fully("keeper", voices, 1)
    impostor = api.verify(voices.wav(1, 3), user_name=name)  # a failed verification
    assert impostor["status"] == "00000" and impostor["data"]["confidence"] < 0.5
    plain = api.store.get_enrollment(name)[1] + [api.store.get_voiceprint(name)[1]]
    users, takes = raw_rows(store_url)
    sealed = [v for n, v in users if n == name] + [t for n, _, t in takes if n == name]
    assert len(sealed) == 4 and all(b.startswith(b"VPE1") is encrypted for b in sealed)
    def pieces(blobs):
        return [blob[i:i + 24] for blob in blobs
                for i in range(16, len(blob) - 24, max(24, len(blob) // 8))]

    before = table_bytes(store_url)
    assert name.encode() in before and all(p in before for p in pieces(sealed))
    assert api.store.name_tag(name).encode() in before  # the failed verification's tag
    assert api.post("/unregister", {"user_name": name})["status"] == "00000"
    after = table_bytes(store_url)
    assert name.encode() not in after
    assert [p[:16] for p in pieces(plain + sealed) if p in after] == []
    assert api.check("keeper")["data"]["enroll_num"] == 3  # the others are intact
    assert api.verify(voices.wav(1, 3), user_name="keeper")["data"]["confidence"] > 0.7


def test_the_history_keeps_no_name_of_an_unregistered_user(store, store_url):
    enrol(store, "alice")
    store.delete_user("alice")
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()")]
            dump = " ".join(str(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
    else:
        conn = sqlite3.connect(store_url)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = " ".join(str(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
        conn.close()
    assert "alice" not in dump
    assert store.name_tag("alice") in dump  # the tombstone holds the tag
    # and the index is still told about the deletion by the store that saw the name
    assert store.voiceprint_changes(store.generation() - 1) == (store.generation(),
                                                                [("alice", None, None)])


def test_name_tags_are_keyed(store_url, tmp_path, key_file):
    a = open_store(store_url, FP)
    b = open_store(str(tmp_path / "other.sqlite3"), FP)
    try:
        assert a.name_tag("alice") != b.name_tag("alice")  # each store its own secret
        assert len(a.name_tag("alice")) == 32 and "alice" not in a.name_tag("alice")
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------ audit log ---

def test_the_audit_log_has_one_line_per_state_changing_or_verifying_request(
        make_app, voices, tmp_path):
    log = tmp_path / "audit.jsonl"
    api = make_app(audit_log=str(log))
    api.enroll_fully("alice", voices, 0)
    api.check("alice")
    api.get("/getUsers")
    api.get("/health")
    one = api.verify(voices.wav(0, 3), user_name="alice")
    many = api.verify(voices.wav(0, 3))
    api.post("/unregister", {"user_name": "alice"})
    api.post("/unregister", {"user_name": "alice"})
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["endpoint"], r["user_name"], r["status"]) for r in lines] == [
        ("/enroll", "alice", "00000"), ("/enroll", "alice", "00000"),
        ("/enroll", "alice", "00000"), ("/verify", "alice", "00000"),
        ("/verify", None, "00000"), ("/unregister", "alice", "00000"),
        ("/unregister", "alice", "22135")]
    assert lines[3]["task_id"] == one["task_id"] and lines[4]["task_id"] == many["task_id"]
    for record in lines:
        assert set(record) == {"time", "task_id", "endpoint", "user_name", "status", "client"}
        assert record["client"] == "127.0.0.1" and record["time"].endswith("+00:00")
    text = log.read_text()
    assert "confidence" not in text and str(one["data"]["confidence"]) not in text
    assert voices.wav(0, 3)[:40] not in text


def test_the_audit_log_records_refused_tokens_and_can_go_to_stdout(make_app, capsys):
    api = make_app(audit_log="-", api_token=TOKEN)
    api.post("/enroll", enroll_body("alice", 1, "AAAA"), expect_http=401)
    api.post("/checkUser", {"user_name": "alice"}, expect_http=401)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["endpoint"], r["status"]) for r in lines] == [("/enroll", "22121")]


# ------------------------------------------------------------ verification guard ---

class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def guarded(make_app, store_url, clock, **config):
    api = make_app(store=store_url, guard_failures=2, guard_window=60,
                   guard_confidence=0.5, **config)
    api.app.extensions["vpcore"].guard._clock = clock
    return api


def test_after_n_failures_in_the_window_1v1_is_refused_until_it_passes(make_app, voices,
                                                                       store_url):
    clock = Clock()
    api = guarded(make_app, store_url, clock)
    api.enroll_fully("alice", voices, 0)
    for _ in range(2):  # an impostor (voice 1) fails twice
        body = api.verify(voices.wav(1, 3), user_name="alice")
        assert body["status"] == "00000" and body["data"]["confidence"] < 0.5
    locked = api.verify(voices.wav(0, 3), user_name="alice")  # even the genuine voice
    assert locked["status"] == "22137" and "too many failed verifications" in locked["message"]
    assert locked["data"] == {"user_name": "alice", "retry_after": 60}
    # a second worker process (another app on the same store) sees the same count
    other = guarded(make_app, store_url, clock)
    assert other.verify(voices.wav(0, 3), user_name="alice")["status"] == "22137"
    assert api.verify(voices.wav(0, 3))["status"] == "00000"  # 1-v-N is not guarded
    clock.now += 61
    assert api.verify(voices.wav(0, 3), user_name="alice")["status"] == "00000"


def test_successes_do_not_count_and_old_failures_expire(make_app, voices, store_url):
    clock = Clock()
    api = guarded(make_app, store_url, clock)
    api.enroll_fully("alice", voices, 0)
    api.verify(voices.wav(1, 3), user_name="alice")
    for _ in range(3):
        assert api.verify(voices.wav(0, 3), user_name="alice")["status"] == "00000"
    clock.now += 61
    api.verify(voices.wav(1, 3), user_name="alice")
    assert api.verify(voices.wav(0, 4), user_name="alice")["status"] == "00000"


def test_unregister_forgets_the_failures(make_app, voices, store_url):
    clock = Clock()
    api = guarded(make_app, store_url, clock)
    api.enroll_fully("alice", voices, 0)
    for _ in range(2):
        api.verify(voices.wav(1, 3), user_name="alice")
    api.post("/unregister", {"user_name": "alice"})
    api.enroll_fully("alice", voices, 0)
    assert api.verify(voices.wav(0, 3), user_name="alice")["status"] == "00000"


def test_the_guard_is_off_by_default(api, voices):
    api.enroll_fully("alice", voices, 0)
    for _ in range(6):
        assert api.verify(voices.wav(1, 3), user_name="alice")["status"] == "00000"


# ------------------------------------------------------------ secrets and logs ---

def test_no_secret_ever_appears_in_a_log_line(make_app, voices, store_url, key_file, caplog,
                                              capsys):
    key = read_key(key_file)
    guesses = ["Bearer guessed-token-0000000001", f"Bearer {TOKEN[:-1]}", TOKEN]
    caplog.set_level(logging.DEBUG)
    api = make_app(store=store_url, api_token=TOKEN, store_key=key_file, audit_log="-")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for k in (1, 2, 3):
        api.post("/enroll", enroll_body("alice", k, voices.wav(0, k - 1)), headers=headers)
    api.post("/verify", verify_body(voices.wav(0, 3), user_name="alice"), headers=headers)
    for guess in guesses:
        api.post("/verify", verify_body(voices.wav(0, 3)), headers={"Authorization": guess},
                 expect_http=401)
    api.get("/nowhere", headers=headers, expect_http=404)
    # a store that refuses the key, and a bad token configuration
    with pytest.raises(StoreKeyError) as refused:
        open_store(store_url, None, rows=RowCipher(b"\x00" * 32))
    with pytest.raises(ConfigError) as bad:
        Config(api_token="short-" + TOKEN[:4])
    text = "\n".join(r.getMessage() for r in caplog.records) + capsys.readouterr().out
    text += str(refused.value) + str(bad.value) + repr(api.app.extensions["vpcore"].config)
    assert caplog.records and "task_id=" in text
    secrets = [TOKEN, TOKEN[:-1], "guessed-token-0000000001", key.hex(),
               base64.b64encode(key).decode(), repr(key)[2:-1]]
    if password_of(store_url) is not None:
        secrets.append(password_of(store_url))
    for secret in secrets:
        assert secret not in text, secret[:6]


def test_the_log_filter_hides_the_tokens_wherever_they_are_in_a_line():
    import io

    from server.security import redact_tokens_in_logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("vpcore-test-redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        redact_tokens_in_logs([TOKEN.encode()], loggers=("vpcore-test-redaction",))
        redact_tokens_in_logs([TOKEN.encode()], loggers=("vpcore-test-redaction",))
        assert len(handler.filters) == 1  # installed once
        logger.warning("GET /%s 404 task_id=%s", TOKEN, "t1")
        logger.warning(f"no endpoint at /x{TOKEN}y")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "GET /*** 404 task_id=t1\nno endpoint at /x***y\n"


def test_plain_rows_refuse_an_encrypted_blob():
    sealed = RowCipher(b"\x01" * 32).seal(b"x", b"data")
    with pytest.raises(StoreKeyError):
        PlainRows().open(b"x", sealed)


def secret_forms(key):
    """The ways a key could be written into a log: raw, hex, base64, a bytes repr."""
    return [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
            base64.urlsafe_b64encode(key), base64.b64encode(key).rstrip(b"="),
            repr(key)[2:-1].encode()]


def run_command(args, env, tmp_path):
    """``python -m server ARGS`` in its own process; returns (exit status, stdout + stderr)."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "server", *args], env={**os.environ, **env},
                          cwd=str(tmp_path), capture_output=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def test_no_secret_in_any_output_of_a_real_service_and_the_key_commands(
        start_server, voices, store_url, tmp_path, key_file, other_key_file):
    """A real service (gunicorn, DEBUG logging) with two tokens, a key, an audit log and
    the guard: requests with wrong tokens, errors, a lock-out; then the key commands,
    failing and succeeding, a refused start with the old key and a start with the new one.
    No output of any of them (service log, audit log, commands' stdout and stderr) holds a
    token, a key in any spelling, or the DSN's password."""
    import signal

    import requests

    token, second = "tok-C-" + "Zx9" * 8, "tok-D-" + "Qw7" * 8
    audit, outputs = tmp_path / "audit.jsonl", []
    env = {"VPCORE_API_TOKEN": f"{token},{second}", "VPCORE_STORE_KEY": key_file,
           "VPCORE_AUDIT_LOG": str(audit), "VPCORE_LOG_LEVEL": "DEBUG",
           "VPCORE_GUARD_FAILURES": "1", "VPCORE_STORE": store_url}
    server = start_server(store=store_url, extra_env=env, workers=1, threads=2,
                          log_path=tmp_path / "server.log")
    good = {"Authorization": f"Bearer {token}"}

    def post(path, body, headers=good):
        return requests.post(server.url + path, json=body, headers=headers, timeout=60).json()

    for k in (1, 2, 3):
        assert post("/enroll", enroll_body("alice", k, voices.wav(0, k - 1)))["status"] == "00000"
    for header in ([f"Bearer {token[:-1]}", f"Bearer {token}x", f"Basic {token}",
                    f"bearer  {second.upper()}", token, ""]):
        reply = post("/verify", verify_body(voices.wav(0, 3), user_name="alice"),
                     headers={"Authorization": header})
        assert reply["status"] == "22121"
    assert post("/verify", verify_body(voices.wav(1, 3), user_name="alice"))["status"] == "00000"
    assert post("/verify", verify_body(voices.wav(0, 3), user_name="alice"))["status"] == "22137"
    assert post("/enroll", {"user_name": "alice"})["status"] == "22111"
    assert requests.post(server.url + "/enroll", data=b"{not json", headers=good,
                         timeout=30).json()["status"] == "22123"
    assert requests.get(server.url + "/nowhere", headers=good, timeout=30).status_code == 404
    for path in (f"/{token}", f"/getUsers/{second}?x={token}"):  # a token in a URL
        assert requests.get(server.url + path, headers=good, timeout=30).status_code == 404
    assert post("/unregister", {"user_name": "alice"},
                headers={"Authorization": f"Bearer {second}"})["status"] == "00000"
    assert post("/enroll", enroll_body("bobby", 1, voices.wav(1, 0)))["status"] == "00000"
    server.kill(signal.SIGTERM)  # a graceful stop, with its log lines
    outputs += [server.log_tail(10 ** 8).encode(), audit.read_bytes()]

    commands = [
        (1, ["rotate-key", "--key", other_key_file, "--new-key", key_file]),  # wrong key
        (0, ["rotate-key", "--new-key", other_key_file]),  # --key from VPCORE_STORE_KEY
        (2, []),  # the service with the old key refuses to start
    ]
    for status, args in commands:
        code, output = run_command(args, env, tmp_path)
        assert code == status, (args, output[-2000:])
        outputs.append(output)
    assert b"VPCORE_STORE_KEY is not the key" in outputs[-1]
    new = start_server(store=store_url, extra_env={**env, "VPCORE_STORE_KEY": other_key_file},
                       workers=1, threads=2, log_path=tmp_path / "server2.log")
    reply = requests.post(new.url + "/checkUser", json={"user_name": "bobby"}, headers=good,
                          timeout=30).json()
    assert reply["data"]["enroll_num"] == 1  # the rotated store opens with the new key
    new.kill(signal.SIGTERM)
    outputs.append(new.log_tail(10 ** 8).encode())

    text = b"\n".join(outputs)
    assert b"task_id=" in text and b"re-sealed" in text and b'"/verify"' in text
    secrets = [token.encode(), token[:-1].encode(), second.encode(), second.upper().encode()]
    secrets += secret_forms(read_key(key_file)) + secret_forms(read_key(other_key_file))
    password = password_of(store_url)
    if password is not None:
        secrets.append(password.encode())
    assert [s[:6] for s in secrets if s in text] == []
