"""server.store: every backend against the Store interface's documented semantics, and
what is particular to the SQLite backend (PostgreSQL's: test_server_postgres.py)."""

import multiprocessing
import sqlite3
import threading

import numpy as np
import pytest

from server.index import VoiceprintIndex, round_confidence
from server.store import (
    ConflictError,
    SQLiteStore,
    StoreError,
    StoreModelMismatchError,
    UserRecord,
    open_store,
)
from vpserver_support import DotGallery

FP = "feedfacecafebeef"
NOW = "2024-01-02 03:04:05"

#: tests using ``store`` / ``store_url`` run once per backend (see conftest.py)
STORE_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def sqlite_store(tmp_path):
    s = SQLiteStore(str(tmp_path / "s.sqlite3"), FP)
    yield s
    s.close()


def count_rows(store_url, table):
    """Rows of ``table`` (``users`` / ``takes``), read past the Store interface."""
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            return conn.execute(f"SELECT COUNT(*) FROM vpcore_{table}").fetchone()[0]
    conn = sqlite3.connect(store_url)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def save(store, name, k, group=0, expected="current", take=None):
    if expected == "current":
        record = store.get_user(name)
        expected = None if record is None else record.revision
    return store.save_take(name, k, take or f"{name}-take{k}".encode(), group, NOW,
                           b"vp" if k == 3 else None, expected)


def test_new_store_uses_wal_and_full_synchronous(sqlite_store):
    store = sqlite_store
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # synchronous is per connection: check the store's own connection
    assert store._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn.close()


def test_store_records_schema_version_fingerprint_and_generation(sqlite_store):
    meta = dict(sqlite3.connect(sqlite_store.path).execute("SELECT key, value FROM meta"))
    secret = meta.pop("tag_secret")
    assert meta == {"schema_version": 3, "model_fingerprint": FP, "generation": 0,
                    "history_floor": 0}  # no key_check: not encrypted
    assert len(bytes.fromhex(secret)) == 16


def test_store_of_another_fingerprint_refuses_to_open(store, store_url):
    with pytest.raises(StoreModelMismatchError, match=FP):
        open_store(store_url, "0000000000000000")
    open_store(store_url, FP).close()  # the right model still opens it


def test_store_of_another_schema_version_refuses_to_open(sqlite_store):
    store = sqlite_store
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version"):
        SQLiteStore(store.path, FP)


def test_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        SQLiteStore(str(path), FP)


def test_open_store_picks_the_backend_from_the_url(tmp_path):
    s = open_store(str(tmp_path / "a.sqlite3"), FP)
    assert isinstance(s, SQLiteStore) and s.path == str(tmp_path / "a.sqlite3")
    s.close()
    s = open_store(f"sqlite:///{tmp_path / 'b.sqlite3'}", FP)
    assert s.path == str(tmp_path / "b.sqlite3")
    s.close()
    with pytest.raises(StoreError, match="scheme"):
        open_store("mysql://x/y", FP)


def test_open_store_postgresql_url_needs_the_postgres_backend(monkeypatch):
    import sys

    # a module set to None in sys.modules cannot be imported: as if psycopg were missing
    monkeypatch.setitem(sys.modules, "server.store.postgres", None)
    with pytest.raises(StoreError, match=r"PostgreSQL backend") as info:
        open_store("postgresql://user:secret@db/vp", FP)
    assert "secret" not in str(info.value)


def test_save_take_creates_and_advances_a_user(store):
    record = save(store, "alice", 1, group=4)
    assert isinstance(record, UserRecord)
    assert (record.user_name, record.enroll_num, record.group_id, record.update_time) == (
        "alice", 1, 4, NOW)
    assert store.get_user("alice") == record
    save(store, "alice", 2)
    assert store.get_enrollment("alice")[1] == [b"alice-take1", b"alice-take2"]


def test_save_take_k_deletes_takes_after_k(store):
    for k in (1, 2):
        save(store, "alice", k)
    save(store, "alice", 1, take=b"again")
    record, takes = store.get_enrollment("alice")
    assert record.enroll_num == 1 and takes == [b"again"]


def test_save_take_3_stores_the_voiceprint_and_only_take_3_does(store):
    save(store, "alice", 1)
    with pytest.raises(StoreError):
        store.save_take("alice", 2, b"t", 0, NOW, b"vp", store.get_user("alice").revision)
    save(store, "alice", 2)
    with pytest.raises(StoreError):
        store.save_take("alice", 3, b"t", 0, NOW, None, store.get_user("alice").revision)
    assert store.get_voiceprint("alice") == (store.get_user("alice"), None)
    save(store, "alice", 3)
    assert store.get_voiceprint("alice")[1] == b"vp"


def test_save_take_refuses_a_gap(store):
    with pytest.raises(StoreError):
        save(store, "alice", 2)
    assert store.get_user("alice") is None


def test_save_take_detects_a_concurrent_change(store):
    first = save(store, "alice", 1)
    save(store, "alice", 2)
    with pytest.raises(ConflictError):
        store.save_take("alice", 2, b"late", 0, NOW, None, first.revision)
    with pytest.raises(ConflictError):
        store.save_take("alice", 1, b"late", 0, NOW, None, None)  # expects a new user
    assert store.get_enrollment("alice")[1] == [b"alice-take1", b"alice-take2"]


def test_a_failed_write_changes_nothing(store, monkeypatch):
    save(store, "alice", 1)
    generation = store.generation()
    with pytest.raises(StoreError):
        # violates the CHECK constraint on group_id after the takes were touched
        store.save_take("alice", 1, b"x", 100, NOW, None, store.get_user("alice").revision)
    assert store.get_enrollment("alice")[1] == [b"alice-take1"]
    assert store.get_user("alice").group_id == 0
    assert store.generation() == generation


def test_every_change_bumps_the_generation_and_reads_do_not(store):
    g0 = store.generation()
    save(store, "alice", 1)
    g1 = store.generation()
    store.get_user("alice"), store.list_users(), store.load_voiceprints()
    assert store.generation() == g1 > g0
    assert store.delete_user("alice") is True
    g2 = store.generation()
    assert g2 > g1
    assert store.delete_user("alice") is False
    assert store.generation() == g2


def test_revision_is_new_after_unregister_and_reenrol(store):
    old = save(store, "alice", 1)
    store.delete_user("alice")
    new = save(store, "alice", 1)
    assert new.revision > old.revision
    with pytest.raises(ConflictError):
        store.save_take("alice", 2, b"t", 0, NOW, None, old.revision)


def test_delete_user_removes_takes_and_voiceprint(store, store_url):
    for k in (1, 2, 3):
        save(store, "alice", k)
    assert store.delete_user("alice")
    assert store.get_enrollment("alice") == (None, [])
    assert store.get_voiceprint("alice") == (None, None)
    assert count_rows(store_url, "takes") == count_rows(store_url, "users") == 0


def test_list_users_sorts_by_code_point_filters_and_pages(store):
    for name, group in (("bob_", 1), ("Zed-", 0), ("alice", 1), ("_und", 2), ("0abc", 1)):
        save(store, name, 1, group=group)
    assert [u.user_name for u in store.list_users()] == ["0abc", "Zed-", "_und", "alice", "bob_"]
    assert [u.user_name for u in store.list_users(group_id=1)] == ["0abc", "alice", "bob_"]
    assert [u.user_name for u in store.list_users(offset=1, limit=2)] == ["Zed-", "_und"]
    assert [u.user_name for u in store.list_users(group_id=1, offset=2)] == ["bob_"]
    assert store.list_users(offset=10) == []


def test_load_voiceprints_returns_only_full_enrolments_with_the_generation(store):
    for k in (1, 2, 3):
        save(store, "carol", k, group=7)
    save(store, "alice", 1)
    generation, rows = store.load_voiceprints()
    assert generation == store.generation()
    assert rows == [("carol", 7, b"vp")]


def test_status_reads_only_meta(store, backend):
    status = store.status()
    assert status["backend"] == backend and status["schema_version"] == 3
    assert status["generation"] == 0


def test_connections_are_per_thread(sqlite_store):
    store = sqlite_store
    save(store, "alice", 1)
    seen = []

    def worker():
        seen.append(store.get_user("alice"))
        seen.append(store._conn())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen[0] == store.get_user("alice")
    assert seen[1] is not store._conn()


def test_connection_of_an_ended_thread_is_released(sqlite_store):
    import gc

    store = sqlite_store
    store.get_user("alice")
    before = len(store._all)
    threads = [threading.Thread(target=store.get_user, args=("alice",)) for _ in range(20)]
    for t in threads:
        t.start()
        t.join()
    gc.collect()
    assert len(store._all) == before


def _enrol_many(url, prefix, n, results):
    s = open_store(url, FP)
    done = 0
    for i in range(n):
        name = f"{prefix}{i:03d}"
        for k in (1, 2, 3):
            record = s.get_user(name)
            s.save_take(name, k, b"t", 0, NOW, b"vp" if k == 3 else None,
                        None if record is None else record.revision)
            done += 1
    s.close()
    results.put(done)


def test_writers_in_several_processes_serialise(store, store_url):
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_enrol_many, args=(store_url, f"p{j}_", 15, results))
             for j in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sum(results.get(timeout=5) for _ in procs) == 3 * 15 * 3
    users = store.list_users()
    assert len(users) == 45 and all(u.enroll_num == 3 for u in users)
    assert store.generation() == 135
    assert count_rows(store_url, "takes") == 135
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_store_survives_fork_of_a_process_that_used_it(store):
    """A worker forked after the parent used the store opens its own connection."""
    save(store, "alice", 1)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    proc = ctx.Process(target=lambda: results.put(store.get_user("alice").enroll_num))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0 and results.get(timeout=5) == 1


# ------------------------------------------------------------------ index ---

class _FakeStore:
    """Only what VoiceprintIndex reads: generation(), load_voiceprints() and
    voiceprint_changes() (this one keeps no history: the index reloads fully)."""

    def __init__(self, rows):
        self.gen, self.rows, self.loads = 1, rows, 0

    def generation(self):
        return self.gen

    def load_voiceprints(self):
        self.loads += 1
        return self.gen, self.rows

    def voiceprint_changes(self, since_generation):
        return None


def test_index_reloads_only_when_the_generation_changes():
    rows = [("a", 0, np.array([1.0, 0.0], np.float32)), ("b", 1, np.array([0.0, 1.0], np.float32))]
    store = _FakeStore(rows)
    index = VoiceprintIndex(lambda blob: blob, 2, DotGallery)
    index.refresh(store)
    index.refresh(store)
    assert store.loads == 1 and len(index) == 2
    store.gen, store.rows = 2, rows[:1]
    index.refresh(store)
    assert store.loads == 2 and len(index) == 1


def test_index_search_filters_groups_ranks_and_rounds():
    rows = [(n, g, np.array(v, np.float32)) for n, g, v in (
        ("a", 0, [3.0, 0.0]), ("b", 1, [0.0, 3.0]), ("c", 1, [1.0, 1.0]), ("d", 2, [-2.0, 0.0]),
        ("e", 2, [1.0, 5.0]))]
    index = VoiceprintIndex(lambda blob: blob, 2, DotGallery)
    store, probe = _FakeStore(rows), np.array([1.0, 0.0])
    result = index.search(store, probe, (), 10)
    assert [c.user_name for c in result] == ["a", "c", "e", "b", "d"]  # c and e tie: by name
    assert result[0].confidence == round(1 / (1 + np.exp(-3.0)), 4)
    assert [(c.user_name, c.group_id) for c in result] == [
        ("a", 0), ("c", 1), ("e", 2), ("b", 1), ("d", 2)]
    assert [c.user_name for c in index.search(store, probe, (2, 1), 10)] == ["c", "e", "b", "d"]
    assert [c.user_name for c in index.search(store, probe, (1,), 1)] == ["c"]
    assert [c.user_name for c in index.search(store, probe, (0, 1, 2), 2)] == ["a", "c"]
    assert index.search(store, probe, (5,), 3) == []
    assert VoiceprintIndex(lambda blob: blob, 2, DotGallery).search(
        _FakeStore([]), probe, (), 3) == []


@pytest.mark.parametrize("value,expected", [(0.123456, 0.1235), (1.2, 1.0), (-0.1, 0.0),
                                            (np.float32(0.5), 0.5)])
def test_round_confidence(value, expected):
    assert round_confidence(value) == expected


def test_round_confidence_refuses_nan():
    with pytest.raises(ValueError):
        round_confidence(float("nan"))
