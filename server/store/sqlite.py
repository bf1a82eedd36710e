"""The default backend of :class:`server.store.base.Store`: one SQLite file.

WAL journal, ``synchronous=FULL``; the tables of :mod:`server.store.base`'s
data model under their plain names.

Schema versions: 1 had no ``removed_users``, ``history_floor`` or index on
``revision``; 2 kept the names of unregistered users in ``removed_users`` and
had no ``verify_failures``, ``tag_secret`` or key check. Opening an older file
migrates it to 3 in one transaction (the history of a version-1 file starts at
the generation of the migration; version-2 tombstones get their tags).

Erasure: every connection sets ``secure_delete``, so SQLite overwrites deleted
content with zeros, and :meth:`SQLiteStore.delete_user` checkpoints and
truncates the WAL after its commit, so the frames that held the user's rows are
gone from the WAL file too (and every opening of the store does the same, for a
process killed between that commit and its checkpoint).
"""

import os
import sqlite3
import threading
import time
import weakref

from .base import Store, StoreError, StoreModelMismatchError, UserRecord, settle_key
from .crypto import PlainRows

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

SCHEMA_VERSION = 3


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY,
    enroll_num  INTEGER NOT NULL CHECK (enroll_num BETWEEN 1 AND 3),
    group_id    INTEGER NOT NULL CHECK (group_id BETWEEN 0 AND 99),
    update_time TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    voiceprint  BLOB,
    CHECK ((enroll_num = 3) = (voiceprint IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS users_by_group ON users (group_id, name);
CREATE TABLE IF NOT EXISTS takes (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    take_num  INTEGER NOT NULL CHECK (take_num BETWEEN 1 AND 3),
    take      BLOB NOT NULL,
    PRIMARY KEY (user_name, take_num)
);
CREATE INDEX IF NOT EXISTS users_by_revision ON users (revision);
CREATE TABLE IF NOT EXISTS removed_users (
    name     TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS removed_users_by_revision ON removed_users (revision);
CREATE TABLE IF NOT EXISTS verify_failures (
    tag TEXT NOT NULL,
    at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS verify_failures_by_tag ON verify_failures (tag, at);
"""


#: connections inherited through fork(): never used, and never closed either (closing
#: SQLite's copy of the parent's file state in the child could drop the child's locks)
_INHERITED = []


class _Connection:
    """A thread's connection and the process that opened it (sqlite3 objects must not
    cross a fork)."""

    __slots__ = ("conn", "pid", "__weakref__")

    def __init__(self, conn, pid):
        self.conn, self.pid = conn, pid

    def __del__(self):
        if self.pid != os.getpid():
            _INHERITED.append(self.conn)
            return
        try:
            self.conn.close()
        except Exception:
            pass


class SQLiteStore(Store):
    """The default backend: one SQLite file in WAL mode with ``synchronous=FULL``.

    Each thread of each process gets its own connection (opened lazily and
    re-opened after a fork). Writes run in ``BEGIN IMMEDIATE`` transactions,
    which serialise writers across processes; readers use snapshot
    transactions and never block writers.
    """

    #: how long a writer waits for another process' write lock, in seconds
    BUSY_TIMEOUT = 30.0

    def __init__(self, path, fingerprint, rows=None):
        if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint):
            raise StoreError(f"model fingerprint={fingerprint!r} must be a non-empty string")
        self.path = os.path.abspath(path)
        self._where = self.path
        self.fingerprint = fingerprint
        self._rows = PlainRows() if rows is None else rows
        self._local = threading.local()
        # every live connection, for close(); a thread's connection is closed when the
        # thread ends (its thread-local holder is the only strong reference)
        self._all = weakref.WeakSet()
        self._all_lock = threading.Lock()
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreError(f"store directory {directory} does not exist")
        if fingerprint is None and not os.path.isfile(self.path):
            raise StoreError(f"there is no store at {self.path}")
        self._initialise()

    # -- connections ---------------------------------------------------------

    def _conn(self):
        pid = os.getpid()
        holder = getattr(self._local, "holder", None)
        if holder is not None and holder.pid == pid:
            return holder.conn
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.BUSY_TIMEOUT, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA secure_delete = ON")  # deleted content is overwritten
            conn.execute(f"PRAGMA busy_timeout = {int(self.BUSY_TIMEOUT * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"store {self.path}: cannot switch to WAL (journal_mode={mode})")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        holder = _Connection(conn, pid)
        self._local.holder = holder
        with self._all_lock:
            self._all.add(holder)
        return conn

    def close(self):
        """Close this process' connections (those of ended threads are closed already)."""
        pid = os.getpid()
        with self._all_lock:
            mine = [h for h in self._all if h.pid == pid]
            for holder in mine:
                self._all.discard(holder)
        for holder in mine:
            try:
                holder.conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def _read(self, fn):
        """Run ``fn(conn)`` in a read snapshot."""
        conn = self._conn()
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise StoreError(f"store {self.path}: read failed: {exc}") from None

    def _write(self, fn):
        """Run ``fn(conn)`` in a ``BEGIN IMMEDIATE`` transaction; commit if it returns."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise StoreError(f"store {self.path}: cannot start a write: {exc}") from None
        try:
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise StoreError(f"store {self.path}: write failed: {exc}") from None
        except BaseException:
            self._rollback(conn)
            raise

    @staticmethod
    def _rollback(conn):
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _initialise(self):
        def init(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                if self.fingerprint is None:
                    raise StoreError(f"there is no store at {self.path}")
                check = settle_key(self.path, self._rows, None, False)
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", SCHEMA_VERSION),
                     ("model_fingerprint", self.fingerprint),
                     ("generation", 0),
                     ("history_floor", 0),
                     ("tag_secret", os.urandom(16).hex())]
                    + ([("key_check", check)] if check is not None else []),
                )
                self._key_check = check
                self._keys_from(conn)
                return
            version = meta.get("schema_version")
            if version not in (1, 2, SCHEMA_VERSION):
                raise StoreError(
                    f"store {self.path} has schema version {version!r}; "
                    f"this server reads version {SCHEMA_VERSION}"
                )
            stored = meta.get("model_fingerprint")
            if self.fingerprint is None:
                self.fingerprint = stored
            elif stored != self.fingerprint:
                raise StoreModelMismatchError(
                    f"store {self.path} was created with model {stored!r}, but the loaded "
                    f"model is {self.fingerprint!r}: start the service with the model the "
                    "store was made with, or point VPCORE_STORE at another store"
                )
            has_users = conn.execute("SELECT EXISTS (SELECT 1 FROM users)").fetchone()[0]
            check = settle_key(self.path, self._rows, meta.get("key_check"), bool(has_users))
            if check is not None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (check,))
            self._key_check = check if check is not None else meta.get("key_check")
            if version == 1:
                # 1 -> 2: the tables and indexes came with _SCHEMA above; no deletion
                # before now was recorded, so the history starts here
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value)"
                    " SELECT 'history_floor', value FROM meta WHERE key = 'generation'")
            if version != SCHEMA_VERSION:
                # 2 -> 3: a tag secret, and tombstones that keep tags instead of names
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('tag_secret', ?)",
                             (os.urandom(16).hex(),))
                self._keys_from(conn)
                for (name,) in conn.execute("SELECT name FROM removed_users").fetchall():
                    conn.execute("UPDATE removed_users SET name = ? WHERE name = ?",
                                 (self.name_tag(name), name))
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                             (SCHEMA_VERSION,))
            self._keys_from(conn)

        try:
            self._write(init)
            # a process killed between an unregistration's commit and its checkpoint left
            # the user's old pages in the WAL: the next process to open the store clears them
            self._truncate_wal()
        except StoreError:
            self.close()
            raise

    def _keys_from(self, conn):
        secret = conn.execute("SELECT value FROM meta WHERE key = 'tag_secret'").fetchone()[0]
        self._tag_secret = bytes.fromhex(secret)
        self._tag_key = self._rows.tag_key(self._tag_secret)

    # -- interface -------------------------------------------------------------

    _USER_COLUMNS = "name, enroll_num, group_id, update_time, revision"

    @staticmethod
    def _record(row):
        return None if row is None else UserRecord(*row)

    def _fetch_user(self, conn, user_name):
        row = conn.execute(
            f"SELECT {self._USER_COLUMNS} FROM users WHERE name = ?", (user_name,)
        ).fetchone()
        return self._record(row)

    def get_user(self, user_name):
        return self._read(lambda conn: self._fetch_user(conn, user_name))

    def _read_enrollment(self, user_name):
        def read(conn):
            record = self._fetch_user(conn, user_name)
            if record is None:
                return None, []
            return record, conn.execute(
                "SELECT take_num, take FROM takes WHERE user_name = ? ORDER BY take_num",
                (user_name,),
            ).fetchall()

        return self._read(read)

    def _read_voiceprint(self, user_name):
        def read(conn):
            row = conn.execute(
                f"SELECT {self._USER_COLUMNS}, voiceprint FROM users WHERE name = ?",
                (user_name,),
            ).fetchone()
            if row is None:
                return None, None
            return self._record(row[:5]), row[5]

        return self._read(read)

    @staticmethod
    def _bump(conn):
        """Bump the change counter; return the new value."""
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        return conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]

    def _write_take(self, user_name, tag, take_num, take, group_id, update_time, voiceprint,
                    check):
        def write(conn):
            # BEGIN IMMEDIATE holds the write lock: no other writer until COMMIT
            current = self._fetch_user(conn, user_name)
            check(current)
            row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
            self._check_same_key(None if row is None else row[0])
            generation = self._bump(conn)
            conn.execute(
                "INSERT INTO users (name, enroll_num, group_id, update_time, revision, voiceprint)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET enroll_num = excluded.enroll_num,"
                " group_id = excluded.group_id, update_time = excluded.update_time,"
                " revision = excluded.revision, voiceprint = excluded.voiceprint",
                (user_name, take_num, group_id, update_time, generation, voiceprint),
            )
            if current is None:  # enrolled again: no longer unregistered
                conn.execute("DELETE FROM removed_users WHERE name = ?", (tag,))
            conn.execute(
                "DELETE FROM takes WHERE user_name = ? AND take_num >= ?", (user_name, take_num)
            )
            conn.execute(
                "INSERT INTO takes (user_name, take_num, take) VALUES (?, ?, ?)",
                (user_name, take_num, take),
            )
            return UserRecord(user_name, take_num, group_id, update_time, generation)

        return self._write(write)

    def _delete_user(self, user_name, tag):
        def write(conn):
            cur = conn.execute("DELETE FROM users WHERE name = ?", (user_name,))
            if cur.rowcount == 0:
                return False
            conn.execute("DELETE FROM takes WHERE user_name = ?", (user_name,))
            conn.execute("DELETE FROM verify_failures WHERE tag = ?", (tag,))
            generation = self._bump(conn)
            conn.execute(
                "INSERT INTO removed_users (name, revision) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET revision = excluded.revision",
                (tag, generation),
            )
            self._prune(conn, generation)
            return True

        deleted = self._write(write)
        if deleted:
            self._truncate_wal()
        return deleted

    def _truncate_wal(self):
        """Copy the WAL into the database and truncate it to zero bytes, so the frames
        that held deleted rows leave the WAL file (a reader still using them makes the
        checkpoint wait up to the busy timeout, then it is retried at the next one)."""
        conn = self._conn()
        try:
            for _ in range(3):
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy:
                    return
                time.sleep(0.05)
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: checkpoint failed: {exc}") from None

    def _prune(self, conn, generation):
        """Forget the tombstones more than ``history_generations`` old, and move the
        history floor past them."""
        threshold = generation - self.history_generations
        if threshold <= 0:
            return
        cur = conn.execute("DELETE FROM removed_users WHERE revision <= ?", (threshold,))
        if cur.rowcount > 0:
            conn.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'history_floor'",
                         (threshold,))

    def list_users(self, group_id=None, offset=0, limit=None):
        sql = f"SELECT {self._USER_COLUMNS} FROM users"
        args = []
        if group_id is not None:
            sql += " WHERE group_id = ?"
            args.append(group_id)
        # BINARY collation compares UTF-8 bytes, which is code-point order.
        sql += " ORDER BY name COLLATE BINARY LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, offset]
        return self._read(
            lambda conn: [self._record(r) for r in conn.execute(sql, args).fetchall()]
        )

    def generation(self):
        return self._read(
            lambda conn: int(conn.execute(
                "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        )

    def _read_voiceprints(self):
        def read(conn):
            generation = int(conn.execute(
                "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            rows = conn.execute(
                "SELECT name, group_id, voiceprint FROM users"
                " WHERE voiceprint IS NOT NULL ORDER BY name COLLATE BINARY"
            ).fetchall()
            return generation, rows

        return self._read(read)

    def _read_changes(self, since):
        def read(conn):
            meta = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('generation', 'history_floor')"))
            generation, floor = int(meta["generation"]), int(meta["history_floor"])
            if since > generation or since < floor:
                return None
            if since == generation:
                return generation, [], []
            users = conn.execute(
                "SELECT name, group_id, voiceprint FROM users WHERE revision > ?",
                (since,)).fetchall()
            removed = [t for (t,) in conn.execute(
                "SELECT name FROM removed_users WHERE revision > ?", (since,))]
            return generation, users, removed

        return self._read(read)

    def _count_failures(self, tag, since):
        return self._read(lambda conn: conn.execute(
            "SELECT COUNT(*) FROM verify_failures WHERE tag = ? AND at >= ?",
            (tag, since)).fetchone()[0])

    def _add_failure(self, tag, at, forget_before):
        def write(conn):
            conn.execute("DELETE FROM verify_failures WHERE tag = ? AND at < ?",
                         (tag, forget_before))
            conn.execute("INSERT INTO verify_failures (tag, at) VALUES (?, ?)", (tag, at))

        self._write(write)

    def _reseal_all(self, reseal, key_check):
        def write(conn):
            count = 0
            names = [n for (n,) in conn.execute(
                "SELECT name FROM users WHERE voiceprint IS NOT NULL").fetchall()]
            for name in names:
                (blob,) = conn.execute("SELECT voiceprint FROM users WHERE name = ?",
                                       (name,)).fetchone()
                conn.execute("UPDATE users SET voiceprint = ? WHERE name = ?",
                             (reseal("voiceprint", name, blob), name))
                count += 1
            keys = conn.execute("SELECT user_name, take_num FROM takes").fetchall()
            for name, k in keys:
                (blob,) = conn.execute("SELECT take FROM takes WHERE user_name = ? AND"
                                       " take_num = ?", (name, k)).fetchone()
                conn.execute("UPDATE takes SET take = ? WHERE user_name = ? AND take_num = ?",
                             (reseal(f"take{k}", name, blob), name, k))
                count += 1
            conn.execute("DELETE FROM meta WHERE key = 'key_check'")
            if key_check is not None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)",
                             (key_check,))
            conn.execute("DELETE FROM removed_users")
            conn.execute("DELETE FROM verify_failures")
            generation = self._bump(conn)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'history_floor'", (generation,))
            return count

        count = self._write(write)
        self._truncate_wal()
        return count

    def status(self):
        start = time.perf_counter()
        meta = self._read(lambda conn: dict(conn.execute("SELECT key, value FROM meta")))
        return {
            "backend": "sqlite",
            "path": self.path,
            "schema_version": meta.get("schema_version"),
            "generation": meta.get("generation"),
            "encrypted": "key_check" in meta,
            "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
        }
