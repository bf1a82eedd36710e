"""server.store.postgres: what is particular to the PostgreSQL backend (schema, migrations, locks,
errors), and several real service replicas sharing one PostgreSQL database.

The Store-interface tests and the contract tests run on PostgreSQL too, through the
``backend`` fixture (test_server_store.py, test_server_enrollment.py, ...). Everything here
needs ``$VPCORE_TEST_POSTGRES`` (``.ci/postgres`` starts a throwaway server) and skips, with
the reason, without it. Every store is a fresh schema of that database.
"""

import json
import logging
import multiprocessing
import random
import threading
import time

import numpy as np
import pytest
import requests

from server.store import ConflictError, StoreError, open_store
from vpcore.model import Take, Voiceprint
from vpserver_support import (ContendedEnrolment, ServerProcess, checked_state, client_session,
                              enroll_body, free_port, rows_of, run_clients, server_env,
                              verify_body)
from vpserver_support import call as checked_call

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: "
                              "pip install '.[postgres]' to test the PostgreSQL backend")
store_pg = pytest.importorskip("server.store.postgres",
                               reason="server.store.postgres cannot be imported")

pytestmark = pytest.mark.needs_postgres

#: the tests that take ``security`` (the replica tests, crash safety among them) run open
#: and with an API token and a store key set (see conftest.py)
SECURITY = ("open", "secured")

FP = "feedfacecafebeef"
NOW = "2024-01-02 03:04:05"


@pytest.fixture
def schema_url(postgres_url, postgres_schemas):
    """URL of a fresh, empty schema of the test database."""
    return postgres_schemas.new()


@pytest.fixture
def pg_store(schema_url):
    s = open_store(schema_url, FP)
    yield s
    s.close()


def query(url, sql, args=()):
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql, args)
        return cur.fetchall() if cur.description else None


def password_of(url):
    return psycopg.conninfo.conninfo_to_dict(url).get("password") or None


def save(store, name, k, group=0, take=None):
    record = store.get_user(name)
    return store.save_take(name, k, take or f"{name}-take{k}".encode(), group, NOW,
                           b"vp" if k == 3 else None, None if record is None else record.revision)


# ------------------------------------------------------------------ schema ---

def test_schema_holds_version_fingerprint_and_a_counter_row(pg_store, schema_url):
    tables = {r[0] for r in query(schema_url, "SELECT table_name FROM information_schema.tables"
                                  " WHERE table_schema = current_schema()")}
    assert tables == {"vpcore_meta", "vpcore_generation", "vpcore_users", "vpcore_takes",
                      "vpcore_removed_users", "vpcore_verify_failures"}
    meta = dict(query(schema_url, "SELECT key, value FROM vpcore_meta"))
    assert len(bytes.fromhex(meta.pop("tag_secret"))) == 16
    assert meta == {"schema_version": str(store_pg.SCHEMA_VERSION), "model_fingerprint": FP}
    assert query(schema_url, "SELECT value, history_floor FROM vpcore_generation") == [(0, 0)]


def test_user_names_use_the_C_collation_whatever_the_database_default(pg_store, schema_url):
    columns = query(schema_url, "SELECT table_name, column_name, collation_name"
                                " FROM information_schema.columns WHERE table_schema ="
                                " current_schema() AND column_name IN ('name', 'user_name')")
    assert sorted(columns) == [("vpcore_removed_users", "name", "C"),
                               ("vpcore_takes", "user_name", "C"), ("vpcore_users", "name", "C")]
    assert query(schema_url, "SELECT collation_name FROM information_schema.columns"
                             " WHERE table_name = 'vpcore_verify_failures' AND column_name ="
                             " 'tag' AND table_schema = current_schema()") == [("C",)]
    names = ["b", "B", "_x", "a", "-y", "é", "Z", "0"]
    for name in names:
        save(pg_store, name, 1)
    assert [u.user_name for u in pg_store.list_users()] == sorted(names)
    assert [r[0] for r in pg_store.load_voiceprints()[1]] == []


def test_opening_again_changes_nothing(pg_store, schema_url):
    save(pg_store, "alice", 1)
    generation = pg_store.generation()
    again = open_store(schema_url, FP)
    try:
        assert again.generation() == generation
        assert again.get_enrollment("alice")[1] == [b"alice-take1"]
    finally:
        again.close()
    assert query(schema_url, "SELECT COUNT(*) FROM vpcore_meta") == [(3,)]
    assert query(schema_url, "SELECT COUNT(*) FROM vpcore_generation") == [(1,)]


def test_a_role_without_the_create_privilege_opens_an_existing_store(pg_store, schema_url):
    save(pg_store, "alice", 1)
    query(schema_url, "REVOKE CREATE ON SCHEMA " + query(schema_url, "SELECT current_schema()")[
        0][0] + " FROM CURRENT_USER")
    again = open_store(schema_url, FP)
    try:
        save(again, "alice", 2)
        assert again.get_enrollment("alice")[1] == [b"alice-take1", b"alice-take2"]
    finally:
        again.close()


def _open_at_once(url, barrier, results):
    try:
        barrier.wait(30)
        s = open_store(url, FP)
        s.save_take(f"p{multiprocessing.current_process().pid}", 1, b"t", 0, NOW, None, None)
        s.close()
        results.put("ok")
    except BaseException as exc:  # reported by the test
        results.put(f"{type(exc).__name__}: {exc}")


def test_replicas_starting_at_once_create_the_schema_once(schema_url):
    """Several processes open a new store at the same instant. To make them meet, a
    transaction holds the (empty) meta table while they start: without the schema lock
    they would all pass it together and their CREATE TABLE IF NOT EXISTS statements would
    collide on PostgreSQL's catalog (unique violation)."""
    ctx = multiprocessing.get_context("fork")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(schema_url, barrier, results))
             for _ in range(n)]
    with psycopg.connect(schema_url) as holder:
        holder.execute("CREATE TABLE vpcore_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        holder.commit()
        holder.execute("LOCK TABLE vpcore_meta IN ACCESS EXCLUSIVE MODE")
        for p in procs:
            p.start()
        time.sleep(1.0)
        holder.commit()
    for p in procs:
        p.join(60)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert outcomes == ["ok"] * n
    assert query(schema_url, "SELECT COUNT(*) FROM vpcore_meta") == [(3,)]
    assert query(schema_url, "SELECT value FROM vpcore_generation") == [(n,)]


def test_a_store_of_a_newer_schema_version_is_refused(pg_store, schema_url):
    query(schema_url, "UPDATE vpcore_meta SET value = %s WHERE key = 'schema_version'",
          (str(store_pg.SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="schema version .*upgrade the server"):
        open_store(schema_url, FP)


def test_migrations_run_once_in_order_from_the_recorded_version(pg_store, schema_url,
                                                                monkeypatch):
    save(pg_store, "alice", 1)
    pg_store.close()
    # the next version adds a column, without IF NOT EXISTS: running it twice would fail
    nxt = store_pg.SCHEMA_VERSION + 1
    monkeypatch.setattr(store_pg, "SCHEMA_VERSION", nxt)
    monkeypatch.setattr(store_pg, "MIGRATIONS", store_pg.MIGRATIONS + (
        (nxt, ("ALTER TABLE vpcore_users ADD COLUMN note TEXT",)),))
    for _ in range(2):
        s = open_store(schema_url, FP)
        assert s.status()["schema_version"] == nxt
        assert s.get_enrollment("alice")[1] == [b"alice-take1"]
        s.close()
    assert query(schema_url, "SELECT value FROM vpcore_meta WHERE key = 'schema_version'") \
        == [(str(nxt),)]
    assert query(schema_url, "SELECT note FROM vpcore_users") == [(None,)]


# ------------------------------------------------------------------- locks ---

def test_writers_of_one_user_queue_on_its_lock(pg_store, schema_url):
    """A write of a user waits while another transaction holds that user's lock; writes
    of other users do not."""
    blocked = threading.Thread(target=save, args=(pg_store, "alice", 1))
    with psycopg.connect(schema_url) as holder:
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                       (store_pg._LOCK_SPACE, store_pg._user_lock_key("alice")))
        blocked.start()
        time.sleep(0.5)
        assert blocked.is_alive() and pg_store.get_user("alice") is None
        save(pg_store, "bob_", 1)  # another user's lock is free
        assert pg_store.get_user("bob_").enroll_num == 1
        holder.commit()  # ends the transaction: releases the lock
        blocked.join(10)
    assert not blocked.is_alive()
    assert pg_store.get_user("alice").enroll_num == 1


def test_racing_writers_of_one_user_on_two_replicas_serialise(schema_url):
    """Two stores (two replicas' pools) write the same take with the same expected
    revision at the same instant: exactly one wins, the other gets ConflictError. To make
    them overlap, a transaction holds the change counter's row while they start: without
    the user lock both would read the old state and both would "win"."""
    stores = [open_store(schema_url, FP) for _ in range(2)]
    try:
        for i in range(3):
            name = f"race{i}"
            for k in (1, 2):
                expected = None if k == 1 else stores[0].get_user(name).revision
                outcomes = [None, None]

                def write(j):
                    try:
                        stores[j].save_take(name, k, f"{name}-{k}-by{j}".encode(), 0, NOW, None,
                                            expected)
                        outcomes[j] = "ok"
                    except ConflictError:
                        outcomes[j] = "conflict"

                threads = [threading.Thread(target=write, args=(j,)) for j in (0, 1)]
                with psycopg.connect(schema_url) as holder:
                    holder.execute("UPDATE vpcore_generation SET value = value")
                    for t in threads:
                        t.start()
                    time.sleep(0.2)
                    holder.commit()
                for t in threads:
                    t.join(30)
                assert sorted(outcomes) == ["conflict", "ok"], (name, k, outcomes)
                winner = outcomes.index("ok")
                record, takes = stores[1 - winner].get_enrollment(name)
                assert record.enroll_num == k and takes[-1] == f"{name}-{k}-by{winner}".encode()
        assert stores[0].generation() == 6
    finally:
        for s in stores:
            s.close()


# ------------------------------------------------------------------ errors ---

def test_every_psycopg_error_becomes_a_store_error(pg_store, schema_url):
    save(pg_store, "alice", 1)
    query(schema_url, "DROP TABLE vpcore_takes")
    for call in (lambda: pg_store.get_enrollment("alice"), lambda: save(pg_store, "alice", 2),
                 lambda: pg_store.list_users(limit="many"), lambda: pg_store.get_user("\0")):
        with pytest.raises(StoreError) as info:
            call()
        assert not isinstance(info.value, psycopg.Error)
    assert pg_store.get_user("alice").enroll_num == 1  # the pool still works
    assert pg_store.generation() == 1


def test_connections_ended_by_the_server_are_replaced(schema_url):
    name = f"vpt_kill_{random.randrange(10**9)}"
    s = open_store(f"{schema_url}&application_name={name}", FP)
    try:
        save(s, "alice", 1)
        ended = query(schema_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                  " WHERE application_name = %s", (name,))
        assert ended and all(r[0] for r in ended)
        assert s.get_user("alice").enroll_num == 1
        save(s, "alice", 2)
    finally:
        s.close()


def test_an_unreachable_server_is_a_store_error_without_the_password():
    secret = "s3cret-Pa55word"
    url = f"postgresql://vpcore:{secret}@127.0.0.1:{free_port()}/nowhere"
    start = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect") as info:
        open_store(url, FP)
    assert time.monotonic() - start < 15
    assert secret not in str(info.value) and "vpcore@127.0.0.1" in str(info.value)


def test_a_wrong_password_is_a_store_error_without_the_password(postgres_url):
    params = psycopg.conninfo.conninfo_to_dict(postgres_url)
    secret = "Wr0ng-pa55word-xyz"
    url = (f"postgresql://{params['user']}:{secret}@{params['host']}:{params['port']}/"
           f"{params['dbname']}")
    with pytest.raises(StoreError) as info:
        open_store(url, FP)
    assert secret not in str(info.value) and "password" in str(info.value)
    assert password_of(postgres_url) not in str(info.value)


def test_status_names_the_backend_and_not_the_password(pg_store, schema_url):
    status = pg_store.status()
    assert status["backend"] == "postgresql"
    assert status["schema_version"] == store_pg.SCHEMA_VERSION and status["generation"] == 0
    assert password_of(schema_url) not in json.dumps(status)


# ----------------------------------------------------------------- service ---

def test_health_of_a_service_on_postgresql(make_app, schema_url, voices):
    api = make_app(store=schema_url)
    api.enroll_fully("alice", voices, 0)
    assert api.verify(voices.wav(0, 3))["data"][0]["user_name"] == "alice"  # index refreshed
    health = api.get("/health")
    assert health["status"] == "00000"
    assert health["data"]["store"]["backend"] == "postgresql"
    assert health["data"]["store"]["generation"] == health["data"]["index"]["generation"] == 3
    assert password_of(schema_url) not in json.dumps(health)


def test_unreachable_postgresql_is_22151_and_nothing_shows_the_password(make_app, caplog):
    secret = "s3cret-Pa55word"
    url = f"postgresql://vpcore:{secret}@127.0.0.1:{free_port()}/nowhere"
    with caplog.at_level(logging.INFO):
        api = make_app(store=url)
        assert api.check("alice")["status"] == "22151"
        health = api.get("/health")
    assert health["status"] == "22151" and health["data"]["store"]["status"] == "error"
    assert "cannot connect" in health["data"]["store"]["error"]
    assert secret not in json.dumps(health) and secret not in caplog.text


def test_service_log_lines_never_show_the_password(make_app, schema_url, caplog):
    with caplog.at_level(logging.INFO):
        api = make_app(store=schema_url)
        assert api.get("/health")["status"] == "00000"
    assert password_of(schema_url) not in caplog.text


# ---------------------------------------------------------------- replicas ---

class Replicas:
    """Service processes (``python -m server``) on 127.0.0.1 sharing one database, all
    with the token and key of ``security`` (None: open)."""

    def __init__(self, url, servers, security=None):
        self.url, self.servers, self.security = url, servers, security

    def session(self):
        """A client session (sending the token of a secured run)."""
        return client_session(self.security)

    def state(self):
        """The tables read directly, checked, blobs opened: see :func:`pg_state`."""
        return pg_state(self.url, rows_of(self.security))

    def __getitem__(self, i):
        return self.servers[i]

    def __iter__(self):
        return iter(self.servers)

    def __len__(self):
        return len(self.servers)


def call(session, server, path, body=None):
    """A checked request with the longer timeout of replicas that share one database."""
    return checked_call(session, server, path, body, timeout=60)


def pg_state(url, rows=None):
    """Read the tables directly: {name: (enroll_num, group_id, voiceprint, [takes])};
    ``rows`` opens the blobs of an encrypted store."""
    with psycopg.connect(url) as conn:
        return checked_state(
            conn.execute("SELECT name, enroll_num, group_id, voiceprint FROM vpcore_users"),
            conn.execute("SELECT user_name, take_num, take FROM vpcore_takes"), rows)


def assert_takes_are(model, voices, takes, voice):
    """The stored takes are the ones the model makes of ``voice``'s utterances 0, 1, 2."""
    for k, blob in enumerate(takes, start=1):
        expected = model.extract(voices.received(voice, k - 1)).vector
        np.testing.assert_allclose(Take.from_bytes(blob).vector, expected, rtol=1e-4, atol=1e-5)


def assert_voiceprint_of(model, vp, takes):
    expected = model.enroll([Take.from_bytes(b) for b in takes])
    np.testing.assert_allclose(Voiceprint.from_bytes(vp).vector, expected.vector, rtol=1e-5,
                               atol=1e-6)


@pytest.fixture(scope="module")
def replicas(postgres_url, postgres_schemas, small_model_path, tmp_path_factory, security):
    """Three replicas (2, 1 and 1 gunicorn workers) on a fresh schema, started at once so
    that their schema creation races; open, and again with a token and a store key."""
    url = postgres_schemas.new()
    logs = tmp_path_factory.mktemp("replicas")
    servers = []

    def start(i):
        return ServerProcess(url, small_model_path, workers=2 if i == 0 else 1, threads=4,
                             log_path=logs / f"replica{i}.log",
                             extra_env=server_env(security))

    try:
        servers = [start(i) for i in range(3)]
        for i in range(3):
            for attempt in range(3):
                try:
                    servers[i].wait_ready()
                    break
                except RuntimeError as exc:  # port taken meanwhile: another port
                    if "in use" not in str(exc) or attempt == 2:
                        raise
                    servers[i] = start(i)
        yield Replicas(url, servers, security)
    finally:
        for server in servers:
            server.stop()


def test_an_enrolment_acknowledged_by_one_replica_is_visible_on_all_at_once(replicas, voices):
    session = replicas.session()
    if replicas.security is not None:  # the secured run is secured on every replica
        for server in replicas:
            response = requests.post(server.url + "/checkUser", json={"user_name": "vis_alice"},
                                     timeout=30)
            assert response.status_code == 401 and response.json()["status"] == "22121"
    name = "vis_alice"
    for k in (1, 2, 3):
        writer = replicas[k - 1]
        data = call(session, writer, "/enroll",
                    enroll_body(name, k, voices.wav(0, k - 1), group_id=7))
        assert data["status"] == "00000" and data["data"]["enroll_num"] == k
        for server in replicas:  # read-your-writes on every replica, no waiting
            assert call(session, server, "/checkUser", {"user_name": name})["data"][
                "enroll_num"] == k
            listed = call(session, server, "/getUsers?group_id=7")["data"]
            assert [(u["user_name"], u["enroll_num"]) for u in listed] == [(name, k)]
            one = call(session, server, "/verify", verify_body(voices.wav(0, 3), user_name=name))
            if k < 3:
                assert one["status"] == "22134" and one["data"]["enroll_num"] == k
            else:
                assert one["status"] == "00000" and one["data"]["confidence"] > 0.7
        if k < 3:
            for server in replicas:
                assert call(session, server, "/verify",
                            verify_body(voices.wav(0, 3), group_id=7))["status"] == "22136"
    for server in replicas:
        for _ in range(4):  # several requests: every worker's index of the replica
            ranked = call(session, server, "/verify", verify_body(voices.wav(0, 4), group_id=7))
            assert ranked["status"] == "00000" and ranked["data"][0]["user_name"] == name
    assert call(session, replicas[2], "/unregister", {"user_name": name})["status"] == "00000"
    for server in replicas:
        assert call(session, server, "/checkUser", {"user_name": name})["data"]["enroll_num"] == 0
        for _ in range(2):
            assert call(session, server, "/verify",
                        verify_body(voices.wav(0, 4), group_id=7))["status"] == "22136"
        assert call(session, server, "/verify",
                    verify_body(voices.wav(0, 3), user_name=name))["status"] == "22133"


def test_concurrent_enrolment_across_replicas_matches_the_acknowledged_responses(
        replicas, voices, model):
    """Client threads enrol their own users and fight over one shared user, each request
    to a random replica; the end state is the one the acknowledged responses describe."""
    n_threads, shared = 6, "cc_shared"
    responses = []
    lock = threading.Lock()

    def worker(t):
        rng = random.Random(t)
        session = replicas.session()
        own, voice, group = f"cc_own{t}", t % len(voices), t % 3
        contended = ContendedEnrolment(shared, voices)

        def send(body):
            data = call(session, replicas[rng.randrange(len(replicas))], "/enroll", body)
            with lock:
                responses.append((body["user_name"], body["enroll_num"], data))
            return data

        for k in (1, 2, 3):
            data = send(enroll_body(own, k, voices.wav(voice, k - 1), group_id=group))
            assert data["status"] == "00000", data
            contended.attempts(send, 3 if k < 3 else 40)
        assert contended.done

    run_clients(worker, n_threads, 240)

    session = replicas.session()
    state = replicas.state()
    for t in range(n_threads):
        name = f"cc_own{t}"
        for server in replicas:
            data = call(session, server, "/checkUser", {"user_name": name})["data"]
            assert (data["enroll_num"], data["group_id"]) == (3, t % 3)
        count, group, vp, takes = state[name]
        assert (count, group) == (3, t % 3)
        assert_takes_are(model, voices, takes, t % len(voices))
        assert_voiceprint_of(model, vp, takes)
    completions = [d for n, k, d in responses if n == shared and k == 3 and d["status"] == "00000"]
    assert len(completions) == 1, "the shared voiceprint was completed more than once"
    count, _, vp, takes = state[shared]
    assert count == 3
    assert_takes_are(model, voices, takes, 0)
    assert_voiceprint_of(model, vp, takes)
    # every acknowledged take of the shared user said which count it made
    for n, k, d in responses:
        if n == shared and d["status"] == "00000":
            assert d["data"] == {"user_name": shared, "enroll_num": k}
    everyone = sorted([f"cc_own{t}" for t in range(n_threads)] + [shared])
    for server in replicas:
        for _ in range(3):
            ranked = call(session, server, "/verify", verify_body(voices.wav(1, 4), top_n=100))
            assert everyone == sorted(m["user_name"] for m in ranked["data"]
                                      if m["user_name"].startswith("cc_"))


def test_killing_a_replica_mid_stream_loses_nothing_acknowledged(replicas, voices, model):
    """Clients spread their enrolments over the three replicas; one replica is killed
    (SIGKILL to its gunicorn master and workers) while requests are in flight. Every take
    acknowledged before is in the database, the in-flight ones are all-or-nothing, no user
    is half-written or left locked, and the survivors finish every enrolment."""
    victim = replicas[2]
    survivors = [replicas[0], replicas[1]]
    n_threads, per_thread = 3, 6
    plan = {f"kl_t{t}u{i}": (t + i) % len(voices) for t in range(n_threads)
            for i in range(per_thread)}
    acked, pending = {}, {}  # name -> count acknowledged / (k, replica) of the open request
    stop = threading.Event()
    failures = []

    def run(t, targets):
        try:
            session = replicas.session()
            rng = random.Random(t)
            for name in [n for n in plan if n.startswith(f"kl_t{t}u")]:
                while acked.get(name, 0) < 3:
                    if stop.is_set():
                        return
                    k = acked.get(name, 0) + 1
                    # half of the requests go to the replica that will be killed
                    server = victim if victim in targets and rng.random() < 0.5 else \
                        targets[rng.randrange(len(targets))]
                    pending[name] = (k, server)
                    body = enroll_body(name, k, voices.wav(plan[name], k - 1))
                    try:
                        data = session.post(server.url + "/enroll", json=body, timeout=60).json()
                    except (requests.RequestException, ValueError):
                        if server is victim:
                            return  # died under us: the outcome of take k is unknown
                        raise
                    assert data["status"] == "00000", data
                    acked[name] = k
                    del pending[name]
        except BaseException as exc:
            failures.append((t, exc))

    threads = [threading.Thread(target=run, args=(t, list(replicas))) for t in range(n_threads)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(acked.values()) < 8 and not failures:
        time.sleep(0.005)  # some takes acknowledged, on every replica
    while time.monotonic() < deadline and not failures and not any(
            srv is victim for _, srv in list(pending.values())):
        time.sleep(0.001)  # kill while the victim holds a request
    in_flight = {name: k for name, (k, srv) in list(pending.items()) if srv is victim}
    victim.kill()  # SIGKILL to the replica's process group
    killed_at = time.monotonic()
    stop.set()
    for th in threads:
        th.join(120)
    assert not failures, failures
    assert sum(acked.values()) > 0, "nothing was acknowledged before the kill"
    assert in_flight, ("no request was in flight on the killed replica", acked)

    state = replicas.state()  # nothing half-written
    for name, voice in plan.items():
        count, _, vp, takes = state.get(name, (0, 0, None, []))
        allowed = {acked.get(name, 0)} | ({pending[name][0]} if name in pending else set())
        assert count in allowed, (name, count, allowed, in_flight)
        assert_takes_are(model, voices, takes, voice)
        if count == 3:
            assert_voiceprint_of(model, vp, takes)

    # the survivors carry on at once: every user, including the ones whose request died
    # with the victim, can be enrolled to the end (no lock was left behind)
    session = replicas.session()
    for name in plan:
        acked[name] = call(session, survivors[0], "/checkUser", {"user_name": name})["data"][
            "enroll_num"]
    pending.clear()
    stop.clear()
    threads = [threading.Thread(target=run, args=(t, survivors)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(180)
    assert not failures, failures
    assert time.monotonic() - killed_at < 180
    final = replicas.state()
    assert all(final[name][0] == 3 for name in plan), "the stream did not finish"
    for server in survivors:
        ranked = call(session, server, "/verify", verify_body(voices.wav(0, 4), top_n=100))
        assert sorted(plan) == sorted(m["user_name"] for m in ranked["data"]
                                      if m["user_name"].startswith("kl_"))
