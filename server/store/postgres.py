"""PostgreSQL backend of :class:`server.store.base.Store`, for several service replicas.

``VPCORE_STORE=postgresql://user:password@host:5432/dbname`` selects it (see
:func:`server.store.open_store`). Every replica (and every worker process of
each) opens its own connection pool to the same database; the database does
the serialising that a single SQLite file does for the processes of one
machine.

Schema
------
Created and migrated by the server itself when a store is opened, in one
transaction that holds a transaction-level advisory lock (so replicas starting
at once do not race): ``vpcore_meta`` (``schema_version``,
``model_fingerprint``), ``vpcore_generation`` (one row: the change counter),
``vpcore_users``, ``vpcore_takes`` and ``vpcore_removed_users`` (the
tombstones of unregistered users), with the columns, checks and indexes of the
SQLite backend; ``vpcore_generation.history_floor`` is SQLite's
``meta.history_floor``. Migrations are a list applied in order from the recorded
version; a database of a newer version than this server knows is refused.
The tables live in the first schema of the connection's ``search_path``
(``?options=-csearch_path%3Dvpcore`` in the URL keeps them in their own
schema).

Concurrency
-----------
A write runs in a READ COMMITTED transaction that first takes an advisory lock
on the user's name, so writers of the same user (in any replica) queue up and
each one reads the state its predecessor committed; the revision check then
turns a stale decision into :class:`~server.store.base.ConflictError`. The counter
row is bumped in the same transaction as every change, which orders all
changes and lets every replica's 1-v-N index notice them. A success is
returned only after COMMIT, with ``synchronous_commit = on`` in the session.
Reads that need two statements run in a REPEATABLE READ snapshot.
"""

import contextlib
import os
import re
import threading
import time
import zlib

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from .base import Store, StoreError, StoreModelMismatchError, UserRecord, redact_url, settle_key
from .crypto import PlainRows

__all__ = ["PostgresStore", "SCHEMA_VERSION"]

#: version of the schema this server creates and reads
SCHEMA_VERSION = 3

#: ``(version, statements)`` in order; a store at version v gets every migration > v
MIGRATIONS = (
    (1, (
        """CREATE TABLE IF NOT EXISTS vpcore_generation (
               id    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
               value BIGINT NOT NULL
           )""",
        "INSERT INTO vpcore_generation (id, value) VALUES (TRUE, 0) ON CONFLICT (id) DO NOTHING",
        """CREATE TABLE IF NOT EXISTS vpcore_users (
               name        TEXT COLLATE "C" PRIMARY KEY,
               enroll_num  SMALLINT NOT NULL CHECK (enroll_num BETWEEN 1 AND 3),
               group_id    SMALLINT NOT NULL CHECK (group_id BETWEEN 0 AND 99),
               update_time TEXT NOT NULL,
               revision    BIGINT NOT NULL,
               voiceprint  BYTEA,
               CHECK ((enroll_num = 3) = (voiceprint IS NOT NULL))
           )""",
        "CREATE INDEX IF NOT EXISTS vpcore_users_by_group ON vpcore_users (group_id, name)",
        """CREATE TABLE IF NOT EXISTS vpcore_takes (
               user_name TEXT COLLATE "C" NOT NULL
                         REFERENCES vpcore_users (name) ON DELETE CASCADE,
               take_num  SMALLINT NOT NULL CHECK (take_num BETWEEN 1 AND 3),
               take      BYTEA NOT NULL,
               PRIMARY KEY (user_name, take_num)
           )""",
    )),
    # 2: what Store.voiceprint_changes reads; no deletion before the migration was
    # recorded, so the history starts at the generation of the migration
    (2, (
        "CREATE INDEX IF NOT EXISTS vpcore_users_by_revision ON vpcore_users (revision)",
        """CREATE TABLE IF NOT EXISTS vpcore_removed_users (
               name     TEXT COLLATE "C" PRIMARY KEY,
               revision BIGINT NOT NULL
           )""",
        "CREATE INDEX IF NOT EXISTS vpcore_removed_users_by_revision"
        " ON vpcore_removed_users (revision)",
        "ALTER TABLE vpcore_generation"
        " ADD COLUMN IF NOT EXISTS history_floor BIGINT NOT NULL DEFAULT 0",
        "UPDATE vpcore_generation SET history_floor = value",
    )),
    # 3: failed verifications (by name tag); the tombstones get tags instead of names,
    # and the store a tag secret (both in PostgresStore._migrate)
    (3, (
        """CREATE TABLE IF NOT EXISTS vpcore_verify_failures (
               tag TEXT COLLATE "C" NOT NULL,
               at  DOUBLE PRECISION NOT NULL
           )""",
        "CREATE INDEX IF NOT EXISTS vpcore_verify_failures_by_tag"
        " ON vpcore_verify_failures (tag, at)",
    )),
)

#: first key of the two-key advisory locks this backend takes ("vpco" in ASCII)
_LOCK_SPACE = 0x7670636F
#: second key of the schema lock; a user's lock uses a hash of the name (a collision,
#: with the schema lock or another name, only makes two transactions wait for each other)
_SCHEMA_LOCK = 0

#: connection pools inherited through fork(): never used, never closed or collected
#: (closing them in the child would end the parent's sessions on the shared sockets)
_INHERITED = []

_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"
_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def _user_lock_key(user_name):
    """Second advisory-lock key of a user: CRC-32 of the UTF-8 name as a signed int4."""
    return zlib.crc32(user_name.encode("utf-8")) - (1 << 31)


class PostgresStore(Store):
    """:class:`~server.store.base.Store` on a PostgreSQL database (psycopg 3, a connection pool).

    Parameters
    ----------
    url : str
        ``postgresql://user:password@host:port/dbname[?param=value...]`` (any libpq
        URI); the password never appears in messages, logs or :meth:`status`.
    fingerprint : str or None
        Fingerprint of the loaded model; a store made with another model is refused.
        None opens an existing store of any model (maintenance) and creates none.
    min_size, max_size : int
        Connections this process keeps open / may open (the service uses at most one
        per request thread).
    timeout : float
        Seconds to connect, and to wait for a free connection of the pool.
    lock_timeout : float
        Seconds a write waits for another writer of the same user before failing.
    rows : RowCipher or PlainRows, optional
        Encryption at rest (default: none).

    Erasure: a DELETE only marks PostgreSQL's row versions dead; their bytes stay
    in the table's pages until VACUUM frees the space and a later write reuses it
    (VACUUM does not overwrite it; VACUUM FULL writes new files, and the old ones'
    disk blocks are freed, not cleared), and in the WAL until its segments are
    recycled. So with this backend an unregistered user's sealed rows may linger in
    the files for a while; with encryption they cannot be read without the key, and
    a key rotation (then destroying the old key file) makes them unreadable for good.
    The tombstones and failed verifications keep only name tags.
    """

    def __init__(self, url, fingerprint, min_size=1, max_size=8, timeout=10.0,
                 lock_timeout=30.0, rows=None):
        if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint):
            raise StoreError(f"model fingerprint={fingerprint!r} must be a non-empty string")
        self.fingerprint = fingerprint
        self._rows = PlainRows() if rows is None else rows
        self._secrets = _passwords_of(url)
        self.display = self._describe(url)
        self._where = self.display
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(f"VPCORE_STORE={self.display}: {self._clean(exc)}") from None
        defaults = {"connect_timeout": max(1, int(round(timeout))),
                    "application_name": "vpcore-server"}
        self._conninfo = make_conninfo(url, **{k: v for k, v in defaults.items()
                                               if k not in params})
        self._min_size, self._max_size = int(min_size), int(max_size)
        self._timeout = float(timeout)
        self._session = (
            # durability on commit whatever the server's default; a stuck writer or a
            # client gone silent inside a transaction cannot hold a user's lock forever
            "SET synchronous_commit = on",
            f"SET lock_timeout = {int(lock_timeout * 1000)}",
            f"SET idle_in_transaction_session_timeout = {int(max(60.0, 2 * lock_timeout) * 1000)}",
        )
        self._pool_lock = threading.Lock()
        self._pool = None
        self._pid = None
        self.schema_version = None
        self._initialise()
        try:
            self._get_pool()
        except psycopg.Error as exc:
            raise StoreError(f"store {self.display}: cannot open connections: "
                             f"{self._clean(exc)}") from None

    # -- text without the password ---------------------------------------------

    @staticmethod
    def _describe(url):
        try:
            p = conninfo_to_dict(url)
        except psycopg.Error:
            return redact_url(url)
        host = p.get("host") or p.get("hostaddr") or "localhost"
        port = f":{p['port']}" if p.get("port") else ""
        user = f"{p['user']}@" if p.get("user") else ""
        return f"postgresql://{user}{host}{port}/{p.get('dbname', '')}"

    def _clean(self, exc):
        text = " ".join(str(exc).split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text or type(exc).__name__

    # -- connections -------------------------------------------------------------

    def _configure(self, conn):
        for statement in self._session:
            conn.execute(statement)

    def _get_pool(self):
        """This process' pool (a child of fork() opens its own)."""
        pid = os.getpid()
        pool = self._pool
        if pool is not None and self._pid == pid:
            return pool
        with self._pool_lock:
            if self._pool is not None and self._pid == pid:
                return self._pool
            if self._pool is not None:
                _INHERITED.append(self._pool)
            pool = ConnectionPool(
                self._conninfo, min_size=self._min_size, max_size=self._max_size,
                kwargs={"autocommit": True}, configure=self._configure,
                check=ConnectionPool.check_connection, open=False, timeout=self._timeout,
                name=f"vpcore-store-{pid}", num_workers=1,
            )
            try:
                pool.open(wait=True, timeout=self._timeout)
            except BaseException:
                pool.close(timeout=1.0)
                raise
            self._pool, self._pid = pool, pid
            return pool

    def close(self):
        """Close this process' connections (a forked child never closes its parent's)."""
        with self._pool_lock:
            pool, pid = self._pool, self._pid
            self._pool = None
        if pool is not None and pid == os.getpid():
            pool.close(timeout=5.0)
        elif pool is not None:
            _INHERITED.append(pool)

    @contextlib.contextmanager
    def _cursor(self, what, begin=None):
        """A cursor on a pooled connection, inside ``begin``'s transaction if given
        (committed when the block ends without an exception); any psycopg error
        becomes :class:`StoreError`."""
        try:
            with self._get_pool().connection() as conn:
                if begin is None:  # one statement in autocommit: its own snapshot
                    with conn.cursor() as cur:
                        yield cur
                    return
                conn.execute(begin)
                try:
                    with conn.cursor() as cur:
                        yield cur
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except psycopg.Error as exc:
            raise StoreError(f"store {self.display}: {what} failed: {self._clean(exc)}") from None

    # -- schema ------------------------------------------------------------------

    def _initialise(self):
        """Create or migrate the schema and check the fingerprint, under the schema lock."""
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to store {self.display}: "
                             f"{self._clean(exc)}") from None
        try:
            with conn:
                self._configure(conn)
                conn.execute(_WRITE)
                try:
                    self._migrate(conn.cursor())
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except psycopg.Error as exc:
            raise StoreError(f"cannot initialise store {self.display}: "
                             f"{self._clean(exc)}") from None

    def _migrate(self, cur):
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE, _SCHEMA_LOCK))
        # CREATE (even IF NOT EXISTS) needs the CREATE privilege: only ask for it when the
        # store is new or migrates, so replicas can run with a role that only reads and writes
        if cur.execute("SELECT to_regclass('vpcore_meta')").fetchone()[0] is None:
            cur.execute("CREATE TABLE vpcore_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(cur.execute("SELECT key, value FROM vpcore_meta").fetchall())
        raw = meta.get("schema_version", "0")
        if not re.fullmatch(r"[0-9]{1,9}", raw):
            raise StoreError(f"store {self.display} has schema version {raw!r}, "
                             "which is not a version number")
        version = int(raw)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.display} has schema version {version}; this server reads "
                f"versions up to {SCHEMA_VERSION}: upgrade the server"
            )
        stored = meta.get("model_fingerprint")
        if self.fingerprint is None:
            if stored is None:
                raise StoreError(f"there is no store at {self.display}")
            self.fingerprint = stored
        elif stored is not None and stored != self.fingerprint:
            raise StoreModelMismatchError(
                f"store {self.display} was created with model {stored!r}, but the loaded "
                f"model is {self.fingerprint!r}: start the service with the model the store "
                "was made with, or point VPCORE_STORE at another database or schema"
            )
        first = version
        for target, statements in MIGRATIONS:
            if target <= version:
                continue
            for statement in statements:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO vpcore_meta (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(target),))
            version = target
        if stored is None:
            cur.execute("INSERT INTO vpcore_meta (key, value) VALUES ('model_fingerprint', %s)",
                        (self.fingerprint,))
        has_users = cur.execute("SELECT EXISTS (SELECT 1 FROM vpcore_users)").fetchone()[0]
        recorded = meta.get("key_check")
        check = settle_key(self.display, self._rows,
                           None if recorded is None else bytes.fromhex(recorded), has_users)
        if check is not None:
            cur.execute("INSERT INTO vpcore_meta (key, value) VALUES ('key_check', %s)",
                        (check.hex(),))
        self._key_check = check if recorded is None else bytes.fromhex(recorded)
        if "tag_secret" not in meta:
            meta["tag_secret"] = os.urandom(16).hex()
            cur.execute("INSERT INTO vpcore_meta (key, value) VALUES ('tag_secret', %s)",
                        (meta["tag_secret"],))
        self._tag_secret = bytes.fromhex(meta["tag_secret"])
        self._tag_key = self._rows.tag_key(self._tag_secret)
        if 0 < first < 3:  # the names of older tombstones become tags
            for (name,) in cur.execute("SELECT name FROM vpcore_removed_users").fetchall():
                cur.execute("UPDATE vpcore_removed_users SET name = %s WHERE name = %s",
                            (self.name_tag(name), name))
        self.schema_version = version

    # -- interface -----------------------------------------------------------------

    _USER_COLUMNS = "name, enroll_num, group_id, update_time, revision"

    @staticmethod
    def _record(row):
        return None if row is None else UserRecord(row[0], int(row[1]), int(row[2]), row[3],
                                                   int(row[4]))

    def _fetch_user(self, cur, user_name):
        cur.execute(f"SELECT {self._USER_COLUMNS} FROM vpcore_users WHERE name = %s",
                    (user_name,))
        return self._record(cur.fetchone())

    def get_user(self, user_name):
        with self._cursor("read") as cur:
            return self._fetch_user(cur, user_name)

    def _read_enrollment(self, user_name):
        with self._cursor("read", _SNAPSHOT) as cur:
            record = self._fetch_user(cur, user_name)
            if record is None:
                return None, []
            rows = cur.execute(
                "SELECT take_num, take FROM vpcore_takes WHERE user_name = %s ORDER BY take_num",
                (user_name,),
            ).fetchall()
        return record, [(int(k), bytes(b)) for k, b in rows]

    def _read_voiceprint(self, user_name):
        with self._cursor("read") as cur:
            row = cur.execute(
                f"SELECT {self._USER_COLUMNS}, voiceprint FROM vpcore_users WHERE name = %s",
                (user_name,),
            ).fetchone()
        if row is None:
            return None, None
        return self._record(row[:5]), (None if row[5] is None else bytes(row[5]))

    def _write_take(self, user_name, tag, take_num, take, group_id, update_time, voiceprint,
                    check):
        with self._cursor("write", _WRITE) as cur:
            # Writers of this user queue here. The next statement takes a new snapshot
            # (READ COMMITTED), so it sees what the previous holder committed; a
            # REPEATABLE READ transaction would keep the snapshot of the lock statement.
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                        (_LOCK_SPACE, _user_lock_key(user_name)))
            current = self._fetch_user(cur, user_name)
            check(current)
            generation = self._bump(cur)
            # a key rotation holds the counter's row until it commits: read after it
            row = cur.execute("SELECT value FROM vpcore_meta WHERE key = 'key_check'").fetchone()
            self._check_same_key(None if row is None else bytes.fromhex(row[0]))
            if current is None:  # enrolled again: no longer unregistered
                cur.execute("DELETE FROM vpcore_removed_users WHERE name = %s", (tag,))
            cur.execute(
                "INSERT INTO vpcore_users"
                " (name, enroll_num, group_id, update_time, revision, voiceprint)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name) DO UPDATE SET enroll_num = excluded.enroll_num,"
                " group_id = excluded.group_id, update_time = excluded.update_time,"
                " revision = excluded.revision, voiceprint = excluded.voiceprint",
                (user_name, take_num, group_id, update_time, generation, voiceprint),
            )
            cur.execute("DELETE FROM vpcore_takes WHERE user_name = %s AND take_num >= %s",
                        (user_name, take_num))
            cur.execute("INSERT INTO vpcore_takes (user_name, take_num, take) VALUES (%s, %s, %s)",
                        (user_name, take_num, take))
        return UserRecord(user_name, take_num, group_id, update_time, generation)

    @staticmethod
    def _bump(cur):
        """Bump the change counter (its row lock orders every change); return the new value."""
        return int(cur.execute(
            "UPDATE vpcore_generation SET value = value + 1 RETURNING value").fetchone()[0])

    def _delete_user(self, user_name, tag):
        with self._cursor("write", _WRITE) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)",
                        (_LOCK_SPACE, _user_lock_key(user_name)))
            cur.execute("DELETE FROM vpcore_users WHERE name = %s", (user_name,))  # takes cascade
            if cur.rowcount == 0:
                return False
            cur.execute("DELETE FROM vpcore_verify_failures WHERE tag = %s", (tag,))
            generation = self._bump(cur)
            cur.execute(
                "INSERT INTO vpcore_removed_users (name, revision) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET revision = excluded.revision",
                (tag, generation),
            )
            self._prune(cur, generation)
        return True

    def _prune(self, cur, generation):
        """Forget the tombstones more than ``history_generations`` old, and move the
        history floor past them (the counter's row is locked by this transaction)."""
        threshold = generation - self.history_generations
        if threshold <= 0:
            return
        cur.execute("DELETE FROM vpcore_removed_users WHERE revision <= %s", (threshold,))
        if cur.rowcount > 0:
            cur.execute("UPDATE vpcore_generation"
                        " SET history_floor = GREATEST(history_floor, %s)", (threshold,))

    def list_users(self, group_id=None, offset=0, limit=None):
        sql = f"SELECT {self._USER_COLUMNS} FROM vpcore_users"
        args = []
        if group_id is not None:
            sql += " WHERE group_id = %s"
            args.append(group_id)
        # "C" compares the UTF-8 bytes, which is code-point order; LIMIT NULL is no limit.
        sql += ' ORDER BY name COLLATE "C" LIMIT %s OFFSET %s'
        args += [limit, offset]
        with self._cursor("read") as cur:
            return [self._record(r) for r in cur.execute(sql, args).fetchall()]

    def generation(self):
        with self._cursor("read") as cur:
            return int(cur.execute("SELECT value FROM vpcore_generation").fetchone()[0])

    def _read_voiceprints(self):
        with self._cursor("read", _SNAPSHOT) as cur:
            generation = int(cur.execute("SELECT value FROM vpcore_generation").fetchone()[0])
            rows = cur.execute(
                "SELECT name, group_id, voiceprint FROM vpcore_users"
                ' WHERE voiceprint IS NOT NULL ORDER BY name COLLATE "C"'
            ).fetchall()
        return generation, [(n, int(g), bytes(v)) for n, g, v in rows]

    def _read_changes(self, since):
        with self._cursor("read", _SNAPSHOT) as cur:
            generation, floor = (int(v) for v in cur.execute(
                "SELECT value, history_floor FROM vpcore_generation").fetchone())
            if since > generation or since < floor:
                return None
            if since == generation:
                return generation, [], []
            users = cur.execute(
                "SELECT name, group_id, voiceprint FROM vpcore_users WHERE revision > %s",
                (since,)).fetchall()
            removed = cur.execute(
                "SELECT name FROM vpcore_removed_users WHERE revision > %s", (since,)).fetchall()
        return (generation,
                [(n, int(g), None if v is None else bytes(v)) for n, g, v in users],
                [t for (t,) in removed])

    def _count_failures(self, tag, since):
        with self._cursor("read") as cur:
            return int(cur.execute(
                "SELECT COUNT(*) FROM vpcore_verify_failures WHERE tag = %s AND at >= %s",
                (tag, since)).fetchone()[0])

    def _add_failure(self, tag, at, forget_before):
        with self._cursor("write", _WRITE) as cur:
            cur.execute("DELETE FROM vpcore_verify_failures WHERE tag = %s AND at < %s",
                        (tag, forget_before))
            cur.execute("INSERT INTO vpcore_verify_failures (tag, at) VALUES (%s, %s)",
                        (tag, at))

    def _reseal_all(self, reseal, key_check):
        with self._cursor("key rotation", _WRITE) as cur:
            # the counter's row lock first: every writer of any user waits for the rotation
            generation = self._bump(cur)
            count = 0
            names = [n for (n,) in cur.execute(
                "SELECT name FROM vpcore_users WHERE voiceprint IS NOT NULL").fetchall()]
            for name in names:
                (blob,) = cur.execute("SELECT voiceprint FROM vpcore_users WHERE name = %s",
                                      (name,)).fetchone()
                cur.execute("UPDATE vpcore_users SET voiceprint = %s WHERE name = %s",
                            (reseal("voiceprint", name, bytes(blob)), name))
                count += 1
            keys = cur.execute("SELECT user_name, take_num FROM vpcore_takes").fetchall()
            for name, k in keys:
                (blob,) = cur.execute("SELECT take FROM vpcore_takes WHERE user_name = %s"
                                      " AND take_num = %s", (name, k)).fetchone()
                cur.execute("UPDATE vpcore_takes SET take = %s WHERE user_name = %s"
                            " AND take_num = %s", (reseal(f"take{k}", name, bytes(blob)), name, k))
                count += 1
            cur.execute("DELETE FROM vpcore_meta WHERE key = 'key_check'")
            if key_check is not None:
                cur.execute("INSERT INTO vpcore_meta (key, value) VALUES ('key_check', %s)",
                            (key_check.hex(),))
            cur.execute("DELETE FROM vpcore_removed_users")
            cur.execute("DELETE FROM vpcore_verify_failures")
            cur.execute("UPDATE vpcore_generation SET history_floor = %s", (generation,))
        return count

    def status(self):
        start = time.perf_counter()
        with self._cursor("status read", _SNAPSHOT) as cur:
            meta = dict(cur.execute(
                "SELECT key, value FROM vpcore_meta WHERE key IN ('schema_version', 'key_check')"
            ).fetchall())
            generation = int(cur.execute("SELECT value FROM vpcore_generation").fetchone()[0])
            stats = self._get_pool().get_stats()
        latency = (time.perf_counter() - start) * 1000.0
        return {
            "backend": "postgresql",
            "server": self.display,
            "schema_version": int(meta.get("schema_version", 0)),
            "generation": generation,
            "encrypted": "key_check" in meta,
            "latency_ms": round(latency, 3),
            "pool": {k: stats.get(k) for k in ("pool_min", "pool_max", "pool_size",
                                               "pool_available", "requests_waiting")},
        }


def _rollback(conn):
    try:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
    except psycopg.Error:
        pass


def _passwords_of(url):
    """The password in ``url`` as written and as decoded (URI userinfo or a ``password``
    parameter), longest first, to be cut out of any message."""
    found = set()
    match = re.match(r"^[a-z]+://[^:/@]*:([^@/]*)@", url)
    if match and match.group(1):
        found.add(match.group(1))
    match = re.search(r"[?&]password=([^&]*)", url)
    if match and match.group(1):
        found.add(match.group(1))
    try:
        decoded = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        decoded = None
    if decoded:
        found.add(decoded)
    return sorted(found, key=len, reverse=True)
