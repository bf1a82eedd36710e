"""Durable storage of users, enrolment takes and voiceprints.

:class:`Store` is the interface the service uses; :class:`SQLiteStore` is the
default backend (one file, WAL journal, ``synchronous=FULL``). A PostgreSQL
backend implements the same interface; :func:`open_store` picks the backend
from the URL.

Data model
----------
``meta``
    ``schema_version``, ``model_fingerprint`` (the store refuses to open with
    another model) and ``generation``, a counter bumped by every change, which
    lets each worker process notice that its in-memory 1-v-N index is stale.
``users``
    ``name`` (key), ``enroll_num`` (1..3), ``group_id`` (0..99),
    ``update_time`` (``"YYYY-MM-DD HH:MM:SS"``), ``revision`` (the generation
    of its last change; optimistic concurrency token; indexed) and
    ``voiceprint`` (present exactly when ``enroll_num == 3``).
``takes``
    ``(user_name, take_num)`` -> serialized take; a user with ``enroll_num = c``
    has exactly takes ``1..c``.
``removed_users``
    ``name`` (key) -> ``revision``, the generation that unregistered it: a
    tombstone, so that :meth:`Store.voiceprint_changes` can report deletions.
    It exists only while the name is unregistered (enrolling the name again
    drops it), and tombstones older than ``HISTORY_GENERATIONS`` generations
    are pruned; ``meta.history_floor`` records up to which generation the
    history is gone.

Every write is one transaction; a success is reported only after COMMIT.

Schema versions: 1 had no ``removed_users``, ``history_floor`` or index on
``revision``; opening a version-1 file migrates it to 2 in one transaction
(its history starts at the generation of the migration).
"""

import abc
import dataclasses
import os
import sqlite3
import threading
import time
import weakref

__all__ = [
    "SCHEMA_VERSION",
    "HISTORY_GENERATIONS",
    "StoreError",
    "StoreModelMismatchError",
    "ConflictError",
    "UserRecord",
    "Store",
    "SQLiteStore",
    "open_store",
]

SCHEMA_VERSION = 2

#: generations of deletion history kept: an index that is further behind reloads fully
HISTORY_GENERATIONS = 100_000


class StoreError(Exception):
    """The store cannot be opened or used (unreachable, corrupt, wrong model)."""


class StoreModelMismatchError(StoreError):
    """The store was created with a model of another fingerprint."""


class ConflictError(StoreError):
    """A user changed between reading its state and writing the new take."""


@dataclasses.dataclass(frozen=True)
class UserRecord:
    """One row of ``users`` (without the blobs)."""

    user_name: str
    enroll_num: int
    group_id: int
    update_time: str
    #: generation of the user's last change: the token :meth:`Store.save_take` checks
    revision: int

    def to_json(self):
        return {
            "user_name": self.user_name,
            "enroll_num": self.enroll_num,
            "update_time": self.update_time,
            "group_id": self.group_id,
        }


class Store(abc.ABC):
    """What the service needs from a storage backend.

    Implementations are safe to share between the threads of one process and
    between several processes using the same database. Names compare and sort
    in code-point order. Every method raises :class:`StoreError` (or a
    subclass) when the backend fails; nothing else escapes.
    """

    #: fingerprint of the model this store belongs to
    fingerprint: str
    #: generations of deletion history (tombstones) a backend keeps for
    #: :meth:`voiceprint_changes`
    history_generations = HISTORY_GENERATIONS

    @abc.abstractmethod
    def get_user(self, user_name):
        """Return the :class:`UserRecord` of ``user_name``, or None if unknown."""

    @abc.abstractmethod
    def get_enrollment(self, user_name):
        """Return ``(record, takes)`` read in one snapshot.

        ``takes`` is the list of serialized takes ``1..record.enroll_num`` in
        order (``(None, [])`` for an unknown user).
        """

    @abc.abstractmethod
    def get_voiceprint(self, user_name):
        """Return ``(record, voiceprint_bytes)``; ``(None, None)`` if unknown,
        ``(record, None)`` if enrolled fewer than 3 times."""

    @abc.abstractmethod
    def save_take(self, user_name, take_num, take, group_id, update_time, voiceprint,
                  expected_revision):
        """Atomically accept take ``take_num`` (1..3) of ``user_name``.

        In one transaction: check that the user's revision still equals
        ``expected_revision`` (None: the user must not exist), else raise
        :class:`ConflictError` and change nothing; delete the user's takes
        ``>= take_num``; insert ``take``; set ``enroll_num = take_num``,
        ``group_id``, ``update_time`` and ``voiceprint`` (bytes if
        ``take_num == 3``, else None); bump the generation. Returns the new
        :class:`UserRecord` once the transaction is durably committed.
        Raises :class:`StoreError` if ``take_num > enroll_num + 1`` or
        ``voiceprint`` is given for a take other than 3 (or missing for take 3).
        """

    @abc.abstractmethod
    def delete_user(self, user_name):
        """Delete the user, its takes and voiceprint in one transaction.

        Returns True if the user existed (and bumps the generation, and records a
        tombstone for :meth:`voiceprint_changes`), else False.
        """

    @abc.abstractmethod
    def list_users(self, group_id=None, offset=0, limit=None):
        """Return the users (any ``enroll_num``) sorted by name in code-point order,
        optionally only those of ``group_id``, skipping ``offset``, at most ``limit``."""

    @abc.abstractmethod
    def generation(self):
        """Return the change counter (int; grows with every committed change)."""

    @abc.abstractmethod
    def load_voiceprints(self):
        """Return ``(generation, rows)`` read in one snapshot, where ``rows`` is
        a list of ``(user_name, group_id, voiceprint_bytes)`` of every fully
        enrolled user, sorted by name."""

    def voiceprint_changes(self, since_generation):
        """Return what changed in the fully enrolled voiceprints after ``since_generation``.

        Parameters
        ----------
        since_generation : int
            Generation of the caller's copy (e.g. of a :meth:`load_voiceprints`
            or of a previous call).

        Returns
        -------
        (generation, changed) or None
            Read in one snapshot: ``generation`` is the current change counter and
            ``changed`` a list, sorted by name with each name once, of
            ``(user_name, group_id, voiceprint_bytes)`` for every user whose
            fully enrolled voiceprint appeared, changed or disappeared in a change
            numbered ``since_generation + 1 .. generation``. ``voiceprint_bytes`` is
            None when the user is not fully enrolled now (unregistered, or its
            enrolment restarted); ``group_id`` is None when it is unregistered.
            The list may also name users that were not fully enrolled before either
            (with None), which is harmless to apply. None when the store no longer
            holds the history needed (``since_generation`` older than its pruned
            tombstones or than the schema migration, or newer than ``generation``):
            the caller must reload everything with :meth:`load_voiceprints`.

        This default keeps no history and always returns None.
        """
        return None

    @abc.abstractmethod
    def status(self):
        """Return a small JSON-able dict describing the backend's health
        (backend, schema version, generation...) without reading user data.
        Raises :class:`StoreError` if the store is unusable."""

    @abc.abstractmethod
    def close(self):
        """Release the connections of this process."""


def open_store(url, fingerprint):
    """Open (creating if needed) the store at ``url`` for the model ``fingerprint``.

    ``url`` is a file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path``
    or ``postgresql://...`` (needs the PostgreSQL backend, ``server.store_pg``).

    Raises
    ------
    StoreModelMismatchError
        The store was created with another model.
    StoreError
        The store cannot be opened.
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .store_pg import PostgresStore  # added by the PostgreSQL backend
        except ImportError as exc:
            raise StoreError(
                f"VPCORE_STORE={_redact(url)} needs the PostgreSQL backend "
                f"(server/store_pg.py and psycopg), which is not available: {exc}"
            ) from None
        return PostgresStore(url, fingerprint)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]
    elif "://" in url:
        raise StoreError(f"VPCORE_STORE={_redact(url)}: unknown store URL scheme")
    else:
        path = url
    return SQLiteStore(path, fingerprint)


def checked_takes(where, record, rows):
    """The take blobs of ``rows`` (``(take_num, take)`` sorted by number) of ``record``.

    Raises :class:`StoreError` naming the store ``where`` unless the takes are
    exactly ``1 .. record.enroll_num`` (the store's integrity rule).
    """
    numbers = [r[0] for r in rows]
    if numbers != list(range(1, record.enroll_num + 1)):
        raise StoreError(f"store {where}: user {record.user_name!r} has enroll_num="
                         f"{record.enroll_num} but takes {numbers}")
    return [bytes(r[1]) for r in rows]


def _redact(url):
    """Hide a password in a URL before it goes into a message."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


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

    def __init__(self, path, fingerprint):
        if not isinstance(fingerprint, str) or not fingerprint:
            raise StoreError(f"model fingerprint={fingerprint!r} must be a non-empty string")
        self.path = os.path.abspath(path)
        self.fingerprint = fingerprint
        self._local = threading.local()
        # every live connection, for close(); a thread's connection is closed when the
        # thread ends (its thread-local holder is the only strong reference)
        self._all = weakref.WeakSet()
        self._all_lock = threading.Lock()
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreError(f"store directory {directory} does not exist")
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
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", SCHEMA_VERSION),
                     ("model_fingerprint", self.fingerprint),
                     ("generation", 0),
                     ("history_floor", 0)],
                )
                return
            version = meta.get("schema_version")
            if version == 1:
                # 1 -> 2: the tables and indexes came with _SCHEMA above; no deletion
                # before now was recorded, so the history starts here
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value)"
                    " SELECT 'history_floor', value FROM meta WHERE key = 'generation'")
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                             (SCHEMA_VERSION,))
                version = SCHEMA_VERSION
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema version {version!r}; "
                    f"this server reads version {SCHEMA_VERSION}"
                )
            stored = meta.get("model_fingerprint")
            if stored != self.fingerprint:
                raise StoreModelMismatchError(
                    f"store {self.path} was created with model {stored!r}, but the loaded "
                    f"model is {self.fingerprint!r}: start the service with the model the "
                    "store was made with, or point VPCORE_STORE at another store"
                )

        try:
            self._write(init)
        except StoreError:
            self.close()
            raise

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

    def get_enrollment(self, user_name):
        def read(conn):
            record = self._fetch_user(conn, user_name)
            if record is None:
                return None, []
            rows = conn.execute(
                "SELECT take_num, take FROM takes WHERE user_name = ? ORDER BY take_num",
                (user_name,),
            ).fetchall()
            return record, checked_takes(self.path, record, rows)

        return self._read(read)

    def get_voiceprint(self, user_name):
        def read(conn):
            row = conn.execute(
                f"SELECT {self._USER_COLUMNS}, voiceprint FROM users WHERE name = ?",
                (user_name,),
            ).fetchone()
            if row is None:
                return None, None
            return self._record(row[:5]), (None if row[5] is None else bytes(row[5]))

        return self._read(read)

    def save_take(self, user_name, take_num, take, group_id, update_time, voiceprint,
                  expected_revision):
        if take_num not in (1, 2, 3):
            raise StoreError(f"take_num={take_num!r} must be 1, 2 or 3")
        if (take_num == 3) != (voiceprint is not None):
            raise StoreError("a voiceprint is stored with take 3, and only with take 3")

        def write(conn):
            current = self._fetch_user(conn, user_name)
            revision = None if current is None else current.revision
            if revision != expected_revision:
                raise ConflictError(
                    f"user {user_name!r} changed concurrently "
                    f"(revision {revision}, expected {expected_revision})"
                )
            count = 0 if current is None else current.enroll_num
            if take_num > count + 1:
                raise StoreError(
                    f"take {take_num} of {user_name!r} needs takes 1..{take_num - 1}, has {count}"
                )
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            generation = conn.execute(
                "SELECT value FROM meta WHERE key = 'generation'"
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO users (name, enroll_num, group_id, update_time, revision, voiceprint)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET enroll_num = excluded.enroll_num,"
                " group_id = excluded.group_id, update_time = excluded.update_time,"
                " revision = excluded.revision, voiceprint = excluded.voiceprint",
                (user_name, take_num, group_id, update_time, generation, voiceprint),
            )
            if current is None:  # enrolled again: no longer unregistered
                conn.execute("DELETE FROM removed_users WHERE name = ?", (user_name,))
            conn.execute(
                "DELETE FROM takes WHERE user_name = ? AND take_num >= ?", (user_name, take_num)
            )
            conn.execute(
                "INSERT INTO takes (user_name, take_num, take) VALUES (?, ?, ?)",
                (user_name, take_num, take),
            )
            return UserRecord(user_name, take_num, group_id, update_time, generation)

        return self._write(write)

    def delete_user(self, user_name):
        def write(conn):
            cur = conn.execute("DELETE FROM users WHERE name = ?", (user_name,))
            if cur.rowcount == 0:
                return False
            conn.execute("DELETE FROM takes WHERE user_name = ?", (user_name,))
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
            generation = conn.execute(
                "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            conn.execute(
                "INSERT INTO removed_users (name, revision) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET revision = excluded.revision",
                (user_name, generation),
            )
            self._prune(conn, generation)
            return True

        return self._write(write)

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

    def load_voiceprints(self):
        def read(conn):
            generation = int(conn.execute(
                "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            rows = conn.execute(
                "SELECT name, group_id, voiceprint FROM users"
                " WHERE voiceprint IS NOT NULL ORDER BY name COLLATE BINARY"
            ).fetchall()
            return generation, [(n, g, bytes(v)) for n, g, v in rows]

        return self._read(read)

    def voiceprint_changes(self, since_generation):
        since = int(since_generation)

        def read(conn):
            meta = dict(conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('generation', 'history_floor')"))
            generation, floor = int(meta["generation"]), int(meta["history_floor"])
            if since > generation or since < floor:
                return None
            if since == generation:
                return generation, []
            changed = [(n, g, None if v is None else bytes(v)) for n, g, v in conn.execute(
                "SELECT name, group_id, voiceprint FROM users WHERE revision > ?", (since,))]
            changed += [(n, None, None) for (n,) in conn.execute(
                "SELECT name FROM removed_users WHERE revision > ?", (since,))]
            changed.sort(key=lambda change: change[0])  # code-point order
            return generation, changed

        return self._read(read)

    def status(self):
        start = time.perf_counter()
        meta = self._read(lambda conn: dict(conn.execute("SELECT key, value FROM meta")))
        return {
            "backend": "sqlite",
            "path": self.path,
            "schema_version": meta.get("schema_version"),
            "generation": meta.get("generation"),
            "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
        }
