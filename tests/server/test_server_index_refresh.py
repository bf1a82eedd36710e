"""Incremental refresh of the 1-v-N index: ``Store.voiceprint_changes`` on every backend,
the schema migrations that brought it (SQLite and PostgreSQL stores of version 1), and
``VoiceprintIndex`` applying changes with the same result as a full reload."""

import sqlite3

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.index import VoiceprintIndex, _copy_rows
from server.store import SQLiteStore, StoreError, open_store
from vpserver_support import DotGallery

FP = "feedfacecafebeef"
NOW = "2024-01-02 03:04:05"
DIM = 3

#: tests using ``store`` / ``store_url`` run once per backend (see conftest.py)
STORE_BACKENDS = ("sqlite", "postgresql")


def blob_of(values):
    """A stored "voiceprint" of the tests: DIM float32 values."""
    return np.asarray(values, dtype=np.float32).tobytes()


def vp_of(name, k):
    return blob_of([len(name), k, sum(map(ord, name)) % 7]) if k == 3 else None


def save(store, name, k, group=0, vp=None):
    record = store.get_user(name)
    vp = (vp_of(name, k) if vp is None else vp) if k == 3 else None
    return store.save_take(name, k, f"{name}-{k}".encode(), group, NOW, vp,
                           None if record is None else record.revision)


def enrol(store, name, group=0, vp=None):
    for k in (1, 2, 3):
        save(store, name, k, group, vp)


def new_index():
    return VoiceprintIndex(lambda blob: np.frombuffer(blob, dtype=np.float32), DIM,
                           DotGallery)


def state(index):
    """What an index holds, comparable with ==."""
    s = index._snapshot
    return {
        "generation": s.generation,
        "names": list(s.names),
        "groups": s.group_ids.tolist(),
        "rows": s.matrix.tolist(),
        "group_rows": {g: r.tolist() for g, r in s.group_rows.items()},
    }


def fully_loaded(store):
    index = new_index()
    index.refresh(store)
    return index


# ------------------------------------------------------- Store.voiceprint_changes ---

def test_a_new_store_has_no_changes(store):
    assert store.voiceprint_changes(0) == (0, [])


def test_changes_report_a_completed_enrolment_only_once_it_is_complete(store):
    save(store, "alice", 1, group=4)
    save(store, "alice", 2, group=4)
    g2 = store.generation()
    # the partial enrolment is listed without a voiceprint (harmless to apply)
    assert store.voiceprint_changes(0) == (g2, [("alice", 4, None)])
    save(store, "alice", 3, group=4)
    g3 = store.generation()
    assert store.voiceprint_changes(g2) == (g3, [("alice", 4, vp_of("alice", 3))])
    assert store.voiceprint_changes(0) == (g3, [("alice", 4, vp_of("alice", 3))])
    assert store.voiceprint_changes(g3) == (g3, [])


def test_changes_report_unregistration_and_reenrolment(store):
    enrol(store, "alice", group=1)
    enrol(store, "bob_", group=2)
    g0 = store.generation()
    assert store.delete_user("alice")
    g1 = store.generation()
    assert store.voiceprint_changes(g0) == (g1, [("alice", None, None)])
    enrol(store, "alice", group=3, vp=blob_of([9, 9, 9]))
    g2 = store.generation()
    assert store.voiceprint_changes(g1) == (g2, [("alice", 3, blob_of([9, 9, 9]))])
    # from before the unregistration: only the latest state, once
    assert store.voiceprint_changes(g0) == (g2, [("alice", 3, blob_of([9, 9, 9]))])
    # unregistered again before completing: gone
    assert store.delete_user("alice")
    save(store, "alice", 1)
    g3 = store.generation()
    assert store.voiceprint_changes(g0) == (g3, [("alice", 0, None)])
    assert not store.delete_user("nobody")
    assert store.generation() == g3


def test_changes_report_a_restarted_enrolment_as_gone(store):
    enrol(store, "alice", group=5)
    g0 = store.generation()
    save(store, "alice", 1, group=5)  # the store allows restarting at take 1
    assert store.voiceprint_changes(g0) == (store.generation(), [("alice", 5, None)])


def test_changes_are_sorted_by_code_point_and_list_each_name_once(store):
    names = ["b", "B", "_x", "a", "-y", "é", "Z", "0"]
    for name in names:
        enrol(store, name)
    store.delete_user("a")
    enrol(store, "a")
    store.delete_user("Z")
    generation, changed = store.voiceprint_changes(0)
    assert [c[0] for c in changed] == sorted(names)
    assert dict((c[0], c[2]) for c in changed)["Z"] is None


def test_changes_without_the_history_are_refused(store):
    enrol(store, "alice")
    generation = store.generation()
    assert store.voiceprint_changes(-1) is None
    assert store.voiceprint_changes(generation + 1) is None  # e.g. another store now


def test_old_tombstones_are_pruned_and_then_the_history_is_refused(store, store_url):
    store.history_generations = 4
    for name in ("aaaa", "bbbb", "cccc"):
        enrol(store, name)
    store.delete_user("aaaa")  # generation 10: prunes up to 6, nothing to prune
    g10 = store.generation()
    assert store.voiceprint_changes(1) == (g10, [
        ("aaaa", None, None), ("bbbb", 0, vp_of("bbbb", 3)), ("cccc", 0, vp_of("cccc", 3))])
    enrol(store, "dddd")
    store.delete_user("bbbb")  # generation 14: prunes aaaa's tombstone (10 <= 14 - 4)
    g14 = store.generation()
    assert tombstones(store_url) == [store.name_tag("bbbb")]  # a tag, never the name
    assert store.voiceprint_changes(9) is None  # would need aaaa's tombstone
    assert store.voiceprint_changes(10) == (g14, [("bbbb", None, None), ("dddd", 0,
                                                                          vp_of("dddd", 3))])


def test_reenrolment_drops_the_tombstone(store, store_url):
    enrol(store, "alice")
    store.delete_user("alice")
    assert tombstones(store_url) == [store.name_tag("alice")]
    save(store, "alice", 1)
    assert tombstones(store_url) == []


def tombstones(store_url):
    """What the tombstone table holds (name tags), read past the Store interface."""
    if store_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(store_url) as conn:
            rows = conn.execute("SELECT name FROM vpcore_removed_users").fetchall()
    else:
        conn = sqlite3.connect(store_url)
        try:
            rows = conn.execute("SELECT name FROM removed_users").fetchall()
        finally:
            conn.close()
    return sorted(r[0] for r in rows)


def test_a_failed_write_leaves_no_tombstone_or_change(store, store_url):
    enrol(store, "alice")
    generation = store.generation()
    with pytest.raises(StoreError):
        save(store, "bob_", 1, group=100)  # violates the group CHECK
    assert store.voiceprint_changes(generation) == (generation, [])
    assert tombstones(store_url) == []


# ------------------------------------------------------------------ migrations ---

#: the schema of version 1, as the previous server created it
V1_SQLITE = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    enroll_num  INTEGER NOT NULL CHECK (enroll_num BETWEEN 1 AND 3),
    group_id    INTEGER NOT NULL CHECK (group_id BETWEEN 0 AND 99),
    update_time TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    voiceprint  BLOB,
    CHECK ((enroll_num = 3) = (voiceprint IS NOT NULL))
);
CREATE INDEX users_by_group ON users (group_id, name);
CREATE TABLE takes (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    take_num  INTEGER NOT NULL CHECK (take_num BETWEEN 1 AND 3),
    take      BLOB NOT NULL,
    PRIMARY KEY (user_name, take_num)
);
INSERT INTO meta VALUES ('schema_version', 1), ('model_fingerprint', 'feedfacecafebeef'),
                        ('generation', 7);
INSERT INTO users VALUES ('alice', 3, 2, '2024-01-02 03:04:05', 5, X'0000803F0000803F0000803F');
INSERT INTO users VALUES ('bob_', 1, 0, '2024-01-02 03:04:05', 7, NULL);
INSERT INTO takes VALUES ('alice', 1, X'01'), ('alice', 2, X'02'), ('alice', 3, X'03'),
                         ('bob_', 1, X'01');
"""


def test_a_version_1_sqlite_store_opens_and_migrates_once(tmp_path):
    path = str(tmp_path / "v1.sqlite3")
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQLITE)
    conn.close()
    for _ in range(2):  # the second open finds version 3 and changes nothing
        s = SQLiteStore(path, FP)
        try:
            assert s.status()["schema_version"] == 3
            assert s.generation() == 7
            assert s.get_enrollment("alice")[1] == [b"\x01", b"\x02", b"\x03"]
            assert s.load_voiceprints() == (7, [("alice", 2, blob_of([1, 1, 1]))])
            # no deletion before the migration was recorded: that history is refused
            assert s.voiceprint_changes(6) is None
            assert s.voiceprint_changes(7) == (7, [])
        finally:
            s.close()
    meta = dict(sqlite3.connect(path).execute("SELECT key, value FROM meta"))
    assert len(bytes.fromhex(meta.pop("tag_secret"))) == 16
    assert meta == {"schema_version": 3, "model_fingerprint": FP, "generation": 7,
                    "history_floor": 7}
    s = SQLiteStore(path, FP)
    try:
        assert s.delete_user("alice")
        assert s.voiceprint_changes(7) == (8, [("alice", None, None)])
        index = new_index()
        index.refresh(s)
        assert state(index)["names"] == []
    finally:
        s.close()


def test_a_version_1_sqlite_store_of_another_model_is_refused_and_not_migrated(tmp_path):
    from server.store import StoreModelMismatchError

    path = str(tmp_path / "v1.sqlite3")
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQLITE)
    conn.close()
    with pytest.raises(StoreModelMismatchError):
        SQLiteStore(path, "0000000000000000")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (1,)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'removed_users'"
                        ).fetchone() is None
    conn.close()


@pytest.mark.needs_postgres
def test_a_version_1_postgresql_store_migrates_once(postgres_url, postgres_schemas,
                                                    monkeypatch):
    import psycopg

    from server.store import postgres as store_pg

    url = postgres_schemas.new()
    with monkeypatch.context() as m:  # a store as the version-1 server made it
        m.setattr(store_pg, "SCHEMA_VERSION", 1)
        m.setattr(store_pg, "MIGRATIONS", store_pg.MIGRATIONS[:1])
        open_store(url, FP).close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM vpcore_meta WHERE key = 'schema_version'"
                            ).fetchone() == ("1",)
        conn.execute("INSERT INTO vpcore_users VALUES ('alice', 3, 2, %s, 5, %s),"
                     " ('bob_', 1, 0, %s, 7, NULL)", (NOW, blob_of([1, 1, 1]), NOW))
        conn.execute("INSERT INTO vpcore_takes VALUES ('alice', 1, '\\x01'),"
                     " ('alice', 2, '\\x02'), ('alice', 3, '\\x03'), ('bob_', 1, '\\x01')")
        conn.execute("UPDATE vpcore_generation SET value = 7")
    for _ in range(2):
        s = open_store(url, FP)
        try:
            assert s.status()["schema_version"] == 3
            assert s.load_voiceprints() == (7, [("alice", 2, blob_of([1, 1, 1]))])
            assert s.voiceprint_changes(6) is None
            assert s.voiceprint_changes(7) == (7, [])
        finally:
            s.close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value, history_floor FROM vpcore_generation"
                            ).fetchall() == [(7, 7)]
    s = open_store(url, FP)
    try:
        assert s.delete_user("alice")
        assert s.voiceprint_changes(7) == (8, [("alice", None, None)])
    finally:
        s.close()


# ------------------------------------------------------------------------ index ---

def test_an_enrolment_no_longer_triggers_a_full_reload(store, monkeypatch):
    loads = []
    original = store.load_voiceprints
    monkeypatch.setattr(store, "load_voiceprints", lambda: loads.append(1) or original())
    enrol(store, "bbbb", group=1)
    index = new_index()
    index.refresh(store)
    assert len(loads) == 1 and index.full_loads == 1
    enrol(store, "aaaa", group=2)
    enrol(store, "cccc", group=1)
    index.refresh(store)
    store.delete_user("bbbb")
    save(store, "dddd", 1)
    index.refresh(store)
    assert len(loads) == 1 and index.full_loads == 1 and index.incremental_updates == 2
    assert state(index) == state(fully_loaded(store))
    assert state(index)["names"] == ["aaaa", "cccc"]


def test_the_index_reloads_fully_when_the_history_is_gone(store):
    store.history_generations = 2
    enrol(store, "aaaa")
    index = new_index()
    index.refresh(store)  # generation 3
    enrol(store, "bbbb")
    enrol(store, "cccc")
    store.delete_user("bbbb")  # generation 10
    enrol(store, "dddd")
    store.delete_user("aaaa")  # generation 14: prunes bbbb's tombstone, the floor is 12
    index.refresh(store)
    assert index.full_loads == 2 and index.incremental_updates == 0
    assert state(index) == state(fully_loaded(store))
    enrol(store, "eeee")
    index.refresh(store)
    assert index.full_loads == 2 and index.incremental_updates == 1
    assert state(index)["names"] == ["cccc", "dddd", "eeee"]


def test_a_search_keeps_the_snapshot_it_started_with(store):
    enrol(store, "aaaa", vp=blob_of([1, 0, 0]))
    enrol(store, "cccc", vp=blob_of([0, 1, 0]))
    index = new_index()
    before = index.refresh(store)
    matrix = before.matrix.copy()
    store.delete_user("aaaa")
    enrol(store, "bbbb", vp=blob_of([0, 0, 1]))
    after = index.refresh(store)
    assert after is not before and list(after.names) == ["bbbb", "cccc"]
    assert list(before.names) == ["aaaa", "cccc"] and np.array_equal(before.matrix, matrix)
    assert before.gallery.V is before.matrix


def test_incremental_search_ranks_ties_by_name(store):
    for name in ("zed_", "mia_", "amy_"):
        enrol(store, name, group=1, vp=blob_of([1, 1, 1]))
    index = new_index()
    index.refresh(store)
    for name in ("bea_", "nia_"):
        enrol(store, name, group=2, vp=blob_of([1, 1, 1]))
    store.delete_user("mia_")
    probe = np.ones(DIM)
    result = index.search(store, probe, (), 10)
    assert index.incremental_updates == 1
    assert [c.user_name for c in result] == ["amy_", "bea_", "nia_", "zed_"]
    assert [c.user_name for c in index.search(store, probe, (1,), 10)] == ["amy_", "zed_"]


@pytest.mark.parametrize("dst_rows,src_rows", [
    ([*range(400), *range(401, 980), 990], [*range(20, 999), 0]),  # few runs: slice copies
    ([0, 1, 2, 5, 6], [1, 2, 3, 4, 5]),  # scattered: one gather
    (list(range(0, 1000, 2)), list(range(500))),
    ([], []),
])
def test_copy_rows_equals_fancy_indexing(dst_rows, src_rows):
    src = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    dst, expected = np.zeros((1000, 4), np.float32), np.zeros((1000, 4), np.float32)
    dst_rows, src_rows = np.asarray(dst_rows, int), np.asarray(src_rows, int)
    _copy_rows(dst, dst_rows, src, src_rows)
    expected[dst_rows] = src[src_rows]
    assert np.array_equal(dst, expected)


def test_the_service_index_follows_another_worker_without_full_reloads(make_app, voices,
                                                                        new_store_url):
    store = new_store_url()
    worker_a, worker_b = make_app(store=store), make_app(store=store)
    index_b = worker_b.app.extensions["vpcore"]._index
    worker_a.enroll_fully("alice", voices, 0)
    assert [m["user_name"] for m in worker_b.verify(voices.wav(0, 3))["data"]] == ["alice"]
    worker_a.enroll_fully("bob_", voices, 1, group_id=3)
    worker_a.post("/unregister", {"user_name": "alice"})
    assert [m["user_name"] for m in worker_b.verify(voices.wav(1, 3), top_n=10)["data"]] \
        == ["bob_"]
    assert index_b.full_loads == 1 and index_b.incremental_updates == 2


# ------------------------------------------------------------ property: any history ---

NAMES = ("aaaa", "B", "_x", "zz", "é")

#: ("enrol", name, group, value): the takes that complete the user (all three again,
#: with a new voiceprint, if it is complete); ("take", name, k, group, value): one take
#: (k lowered to the next one allowed; 1 or 2 restart the enrolment); ("delete", name);
#: ("refresh",): the index catches up
operation = st.one_of(
    st.tuples(st.just("enrol"), st.sampled_from(NAMES), st.integers(0, 3), st.integers(-3, 3)),
    st.tuples(st.just("take"), st.sampled_from(NAMES), st.integers(1, 3), st.integers(0, 3),
              st.integers(-3, 3)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES)),
    st.tuples(st.just("refresh")),
)


def take(store, name, k, group, value):
    record = store.get_user(name)
    k = min(k, 1 + (0 if record is None else record.enroll_num), 3)
    vp = blob_of([value, k, len(name)]) if k == 3 else None
    store.save_take(name, k, b"t", group, NOW, vp, None if record is None else record.revision)


def run_history(store, operations):
    """Apply ``operations`` to ``store``, refreshing an index along the way; return it."""
    index = new_index()
    index.refresh(store)
    for op in operations:
        if op[0] == "enrol":
            _, name, group, value = op
            record = store.get_user(name)
            first = 1 if record is None or record.enroll_num == 3 else record.enroll_num + 1
            for k in range(first, 4):
                take(store, name, k, group, value)
        elif op[0] == "take":
            take(store, *op[1:])
        elif op[0] == "delete":
            store.delete_user(op[1])
        else:
            index.refresh(store)
    index.refresh(store)
    return index


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations=st.lists(operation, max_size=40), history=st.sampled_from([100_000, 3]))
def test_an_incrementally_refreshed_index_equals_a_full_reload(new_store_url, operations,
                                                               history):
    store = open_store(new_store_url(), FP)
    try:
        store.history_generations = history  # 3: some refreshes fall back to a full reload
        index = run_history(store, operations)
        expected = fully_loaded(store)
        assert state(index) == state(expected)
        if history > len(operations) * 3:  # never pruned
            assert index.full_loads == 1  # only the start-up load
        probe = np.array([1.0, 0.5, -0.25])
        for groups in ((), (0,), (1, 3)):
            assert index.search(store, probe, groups, 4) == expected.search(store, probe,
                                                                            groups, 4)
    finally:
        store.close()


class _FixedStore:
    """The two store calls a refresh needs, over a fixed set of voiceprints."""

    def __init__(self, rows):
        self.rows = rows

    def generation(self):
        return 1

    def load_voiceprints(self):
        return 1, self.rows


def test_score_is_the_gallery_row_or_the_given_vector_in_its_place(model):
    # VoiceprintIndex.score (the service's 1-v-1 path): the snapshot's row when it is the
    # stored voiceprint; a changed or missing one is scored in its place, its old row
    # left out of the adaptive in-domain cohort
    from vpcore.gallery import Gallery
    from vpcore.model import Voiceprint
    from vpcore.synth import SyntheticSpeaker, synthesize

    def voice(k, u):
        return synthesize(SyntheticSpeaker.from_seed(k), duration=4.0, random_state=u)

    vps = [model.enroll([voice(k, u) for u in (0, 1, 2)]) for k in range(4)]
    names = ["ann", "ben", "cat", "dan"]
    index = VoiceprintIndex(lambda blob: Voiceprint.from_bytes(blob).vector,
                            model.voiceprint_dim,
                            lambda V: Gallery(model, V, adaptive_cohort=True))
    store = _FixedStore([(n, 0, vp.to_bytes()) for n, vp in zip(names, vps)])
    probe = model.extract(voice(1, 7))
    gallery = Gallery(model, np.stack([vp.vector for vp in vps]), adaptive_cohort=True)
    row = gallery.scores(probe)
    assert index.score(store, probe, "ben", vps[1].vector) == pytest.approx(row[1], rel=1e-6)
    changed = model.enroll([voice(2, u) for u in (3, 4, 5)]).vector
    assert index.score(store, probe, "ben", changed) == pytest.approx(
        gallery.score_vectors(probe, changed[None, :], own=[1])[0], rel=1e-6)
    assert index.score(store, probe, "eve", changed) == pytest.approx(
        gallery.score_vectors(probe, changed[None, :])[0], rel=1e-6)


def test_an_incremental_refresh_keeps_the_pooled_rows_it_can(model, tmp_path, monkeypatch):
    # a model pooling both sides of AS-norm: the index hands the old gallery to the new one,
    # which recomputes only the changed rows while its voiceprint pool stays, and scores
    # exactly as a gallery built from scratch
    import copy

    import vpcore.gallery as gallery_module
    from vpcore.gallery import Gallery
    from vpcore.model import Voiceprint
    from vpcore.synth import SyntheticSpeaker, synthesize

    monkeypatch.setattr(gallery_module, "VOICEPRINT_POOL", 3)
    both = copy.copy(model)
    both.in_domain_cohort = "both"

    def voice(k, u):
        return synthesize(SyntheticSpeaker.from_seed(k), duration=4.0, random_state=u)

    vps = [both.enroll([voice(k, u) for u in (0, 1, 2)]) for k in range(7)]
    store = SQLiteStore(str(tmp_path / "s.db"), FP)
    index = VoiceprintIndex(lambda blob: Voiceprint.from_bytes(blob).vector,
                            both.voiceprint_dim,
                            lambda V, previous: Gallery(both, V, adaptive_cohort=True,
                                                        previous=previous),
                            reuse_previous=True)
    keys = gallery_module._row_keys(np.stack([vp.vector for vp in vps]))
    late = int(np.argmax(keys))  # its row is never in the pool of 3
    first = int(np.argmin(keys))  # its row always is
    for k in range(7):
        if k != late:
            enrol(store, f"user{k}", vp=vps[k].to_bytes())
    index.refresh(store)
    probe = both.extract(voice(2, 9))
    for name, vp, reused in ((f"user{late}", vps[late], 6), (f"user{first}", vps[late], 0)):
        enrol(store, name, vp=vp.to_bytes())  # a new user, then a pool member's voiceprint changed
        index.refresh(store)
        snap = index._snapshot
        assert snap.gallery.reused_ == reused
        fresh = Gallery(both, snap.matrix, adaptive_cohort=True)
        np.testing.assert_array_equal(snap.gallery.scores(probe), fresh.scores(probe))
    assert index.incremental_updates == 2
