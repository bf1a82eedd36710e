"""The store interface, its errors and the integrity rules every backend shares.

A backend (:mod:`server.store.sqlite`, :mod:`server.store.postgres`) only
moves rows in and out of its database inside transactions; what a write may
do and what a read must find is decided here, once:

* :meth:`Store.save_take` checks its arguments (:func:`check_take_arguments`),
  then the backend calls :func:`check_take_order` on the user's current row
  inside its write transaction (revision check, then take order);
* :func:`checked_takes` is the rule a read of the takes must satisfy.

Data model
----------
Every backend keeps the same logical tables (the PostgreSQL backend prefixes
their names with ``vpcore_``):

``meta``
    ``schema_version``, ``model_fingerprint`` (the store refuses to open with
    another model), ``generation``, a counter bumped by every change, which
    lets each worker process notice that its in-memory 1-v-N index is stale,
    and ``history_floor`` (see ``removed_users``).
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
    Its ``name`` is not the user's name but its tag (:meth:`Store.name_tag`, a
    keyed hash), so that no trace of an unregistered name stays behind.
    It exists only while the name is unregistered (enrolling the name again
    drops it), and tombstones older than ``HISTORY_GENERATIONS`` generations
    are pruned; ``history_floor`` records up to which generation the history
    is gone.

``verify_failures``
    ``(tag, at)``: the failed 1-v-1 verifications of the user with that tag
    (epoch seconds), kept only while the verification guard needs them.

``meta`` also holds ``tag_secret`` (the random key of the name tags of a store
without encryption) and, in an encrypted store, ``key_check``: a known text
sealed with the store key when the store was created, so that a wrong key is
refused at once, even by an empty store.

Encryption at rest: with a key (:class:`~server.store.crypto.RowCipher`), every
take and voiceprint is sealed on its own, with its kind and user name as
associated data; the base class seals and opens, so backends only ever see
sealed blobs.

Every write is one transaction; a success is reported only after COMMIT.
"""

import abc
import dataclasses
import hashlib
import hmac

__all__ = [
    "HISTORY_GENERATIONS",
    "StoreError",
    "StoreModelMismatchError",
    "StoreKeyError",
    "ConflictError",
    "UserRecord",
    "Store",
    "check_take_arguments",
    "check_take_order",
    "checked_takes",
    "settle_key",
    "row_aad",
    "redact_url",
]

#: generations of deletion history kept: an index that is further behind reloads fully
HISTORY_GENERATIONS = 100_000


class StoreError(Exception):
    """The store cannot be opened or used (unreachable, corrupt, wrong model)."""


class StoreModelMismatchError(StoreError):
    """The store was created with a model of another fingerprint."""


class StoreKeyError(StoreError):
    """The store key is missing, unreadable, or not the key of this store."""


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

    The public methods are written here once, over the backend's primitives
    (the ``_read_*`` / ``_write_*`` methods): they check the arguments, seal
    blobs before they reach the backend and open them after, and turn the
    tags of tombstones back into the names this process has seen.
    """

    #: fingerprint of the model this store belongs to
    fingerprint: str
    #: generations of deletion history (tombstones) a backend keeps for
    #: :meth:`voiceprint_changes`
    history_generations = HISTORY_GENERATIONS
    #: how blobs are sealed: :class:`~server.store.crypto.RowCipher` or
    #: :class:`~server.store.crypto.PlainRows` (set by the backend's constructor)
    _rows = None
    #: key of :meth:`name_tag` (set by the backend's constructor)
    _tag_key = None
    #: the key check the store held when this process opened it (None: not encrypted;
    #: set by the backend's constructor, and by :meth:`rotate_key`)
    _key_check = None

    @property
    def encrypted(self):
        """Whether the takes and voiceprints are encrypted at rest."""
        return bool(self._rows.encrypted)

    # -- names -----------------------------------------------------------------

    def name_tag(self, user_name):
        """The keyed hash that stands for ``user_name`` where the store must not keep
        the name itself (tombstones, failed verifications): 32 hex digits."""
        return hmac.digest(self._tag_key, user_name.encode("utf-8"), hashlib.sha256)[:16].hex()

    def _remember(self, names):
        """Note the tags of names this process has seen, to resolve tombstones."""
        seen = self.__dict__.setdefault("_seen_tags", {})
        for name in names:
            seen[self.name_tag(name)] = name

    def _forget_seen(self):
        self.__dict__["_seen_tags"] = {}

    # -- reads -----------------------------------------------------------------

    @abc.abstractmethod
    def get_user(self, user_name):
        """Return the :class:`UserRecord` of ``user_name``, or None if unknown."""

    def get_enrollment(self, user_name):
        """Return ``(record, takes)`` read in one snapshot.

        ``takes`` is the list of serialized takes ``1..record.enroll_num`` in
        order (``(None, [])`` for an unknown user).
        """
        record, rows = self._read_enrollment(user_name)
        if record is None:
            return None, []
        blobs = checked_takes(self._where, record, rows)
        return record, [self._rows.open(row_aad(f"take{k}", user_name), blob)
                        for k, blob in enumerate(blobs, 1)]

    @abc.abstractmethod
    def _read_enrollment(self, user_name):
        """``(record, [(take_num, sealed take)...] sorted by number)`` in one snapshot;
        ``(None, [])`` for an unknown user."""

    def get_voiceprint(self, user_name):
        """Return ``(record, voiceprint_bytes)``; ``(None, None)`` if unknown,
        ``(record, None)`` if enrolled fewer than 3 times."""
        record, blob = self._read_voiceprint(user_name)
        if blob is None:
            return record, None
        return record, self._rows.open(row_aad("voiceprint", user_name), blob)

    @abc.abstractmethod
    def _read_voiceprint(self, user_name):
        """``(record, sealed voiceprint or None)``; ``(None, None)`` if unknown."""

    @abc.abstractmethod
    def list_users(self, group_id=None, offset=0, limit=None):
        """Return the users (any ``enroll_num``) sorted by name in code-point order,
        optionally only those of ``group_id``, skipping ``offset``, at most ``limit``."""

    @abc.abstractmethod
    def generation(self):
        """Return the change counter (int; grows with every committed change)."""

    def load_voiceprints(self):
        """Return ``(generation, rows)`` read in one snapshot, where ``rows`` is
        a list of ``(user_name, group_id, voiceprint_bytes)`` of every fully
        enrolled user, sorted by name."""
        generation, rows = self._read_voiceprints()
        self._remember(name for name, _, _ in rows)
        return generation, [(name, group, self._rows.open(row_aad("voiceprint", name), blob))
                            for name, group, blob in rows]

    @abc.abstractmethod
    def _read_voiceprints(self):
        """``(generation, [(name, group_id, sealed voiceprint)...] sorted by name)``."""

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
            (with None), which is harmless to apply. An unregistered user is named
            only if this process has seen the name (the tombstone keeps a tag, not
            the name): a caller that never got the name from this store object holds
            nothing of that user to remove. None when the store no longer
            holds the history needed (``since_generation`` older than its pruned
            tombstones or than the schema migration, or newer than ``generation``):
            the caller must reload everything with :meth:`load_voiceprints`.
        """
        found = self._read_changes(int(since_generation))
        if found is None:
            return None
        generation, users, removed_tags = found
        self._remember(name for name, _, blob in users if blob is not None)
        seen = self.__dict__.get("_seen_tags", {})
        changed = [(name, group, None if blob is None
                    else self._rows.open(row_aad("voiceprint", name), blob))
                   for name, group, blob in users]
        changed += [(seen[tag], None, None) for tag in removed_tags if tag in seen]
        changed.sort(key=lambda change: change[0])  # code-point order
        return generation, changed

    @abc.abstractmethod
    def _read_changes(self, since):
        """In one snapshot: None if the history since ``since`` is gone (or ``since`` is
        ahead of the counter), else ``(generation, users, removed)``: ``users`` the
        ``(name, group_id, sealed voiceprint or None)`` of the users whose revision is
        after ``since``, ``removed`` the tags of the tombstones after ``since``."""

    # -- writes ----------------------------------------------------------------

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
        check_take_arguments(take_num, voiceprint)
        take = self._rows.seal(row_aad(f"take{take_num}", user_name), take)
        if voiceprint is not None:
            voiceprint = self._rows.seal(row_aad("voiceprint", user_name), voiceprint)
        self._remember([user_name])
        return self._write_take(
            user_name, self.name_tag(user_name), take_num, take, group_id, update_time,
            voiceprint,
            lambda current: check_take_order(user_name, take_num, current, expected_revision),
        )

    @abc.abstractmethod
    def _write_take(self, user_name, tag, take_num, take, group_id, update_time, voiceprint,
                    check):
        """The backend's half of :meth:`save_take`: in one write transaction that
        serialises the writers of ``user_name``, read the user's current
        :class:`UserRecord` (or None), call ``check(current)`` (it raises to refuse:
        the transaction then rolls back), call :meth:`_check_same_key` with the store's
        key check once no rotation can commit before this transaction does, and apply the
        change with the sealed ``take`` and ``voiceprint``; a new user drops the tombstone
        ``tag``. Return the new :class:`UserRecord` after COMMIT."""

    def delete_user(self, user_name):
        """Delete the user, its takes, voiceprint and failed verifications in one
        transaction, leaving no trace of them in the store's files where the backend
        can ensure it (see the backend).

        Returns True if the user existed (and bumps the generation, and records a
        tombstone with the name's tag for :meth:`voiceprint_changes`), else False.
        """
        self._remember([user_name])
        return self._delete_user(user_name, self.name_tag(user_name))

    @abc.abstractmethod
    def _delete_user(self, user_name, tag):
        """The backend's half of :meth:`delete_user`."""

    # -- failed verifications (the verification guard) -------------------------

    def failed_verifications(self, user_name, since):
        """How many failed verifications of ``user_name`` were recorded at or after
        ``since`` (epoch seconds), over every process sharing the store."""
        return self._count_failures(self.name_tag(user_name), float(since))

    def record_failed_verification(self, user_name, at, forget_before):
        """Record a failed verification of ``user_name`` at ``at``; forget those of this
        user older than ``forget_before`` (both epoch seconds)."""
        self._add_failure(self.name_tag(user_name), float(at), float(forget_before))

    @abc.abstractmethod
    def _count_failures(self, tag, since):
        """Rows of ``verify_failures`` with ``tag`` and ``at >= since``."""

    @abc.abstractmethod
    def _add_failure(self, tag, at, forget_before):
        """Insert ``(tag, at)``; delete that tag's rows older than ``forget_before``."""

    # -- key rotation ------------------------------------------------------------

    def rotate_key(self, new_rows):
        """Re-seal every take and voiceprint with ``new_rows`` in one transaction.

        ``new_rows`` is a :class:`~server.store.crypto.RowCipher` (a new key; also
        encrypts a store that had none) or :class:`~server.store.crypto.PlainRows`
        (decrypts). The key check is replaced; the tombstones and failed
        verifications, whose tags depend on the key, are dropped, and the history
        floor moves to the new generation, so every index reloads fully. Every other
        process using the store must be stopped first: it holds the old key.
        Returns the number of blobs re-sealed.
        """
        old = self._rows

        def reseal(kind, user_name, blob):
            aad = row_aad(kind, user_name)
            return new_rows.seal(aad, old.open(aad, blob))

        check = new_rows.key_check()
        count = self._reseal_all(reseal, check)
        self._key_check = check
        self._rows = new_rows
        self._tag_key = new_rows.tag_key(self._tag_secret)
        self._forget_seen()
        return count

    @abc.abstractmethod
    def _reseal_all(self, reseal, key_check):
        """In one write transaction: replace every voiceprint by
        ``reseal("voiceprint", name, blob)`` and every take by
        ``reseal(f"take{k}", name, blob)``; record ``key_check`` (None: remove it);
        delete every tombstone and failed verification; bump the generation and set
        the history floor to it. Return the number of blobs re-sealed."""

    def _check_same_key(self, recorded):
        """Inside a write that seals rows: refuse it (:class:`StoreKeyError`) when the
        store's key check ``recorded`` (bytes or None) is not the one this process opened
        the store with. The key was then changed by ``vpcore-server rotate-key`` while
        this process ran, and a row sealed with its old key would never open again."""
        if recorded != self._key_check:
            raise StoreKeyError(
                f"the key of store {self._where} was changed (vpcore-server rotate-key) "
                "after this process opened it: restart the service with VPCORE_STORE_KEY "
                "set to the store's new key")

    # -- the rest ----------------------------------------------------------------

    @abc.abstractmethod
    def status(self):
        """Return a small JSON-able dict describing the backend's health
        (backend, schema version, generation...) without reading user data.
        Raises :class:`StoreError` if the store is unusable."""

    @abc.abstractmethod
    def close(self):
        """Release the connections of this process."""


def check_take_arguments(take_num, voiceprint):
    """The arguments of :meth:`Store.save_take` that need no database: a take number
    of 1, 2 or 3, and a voiceprint with take 3 and only with take 3."""
    if take_num not in (1, 2, 3):
        raise StoreError(f"take_num={take_num!r} must be 1, 2 or 3")
    if (take_num == 3) != (voiceprint is not None):
        raise StoreError("a voiceprint is stored with take 3, and only with take 3")


def check_take_order(user_name, take_num, current, expected_revision):
    """The rules :meth:`Store.save_take` checks on the user's current row ``current``
    (a :class:`UserRecord` or None), inside the write transaction.

    Raises :class:`ConflictError` if the user's revision is not ``expected_revision``
    (None: the user must not exist), then :class:`StoreError` if take ``take_num``
    would leave a gap (``take_num > enroll_num + 1``).
    """
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


def row_aad(kind, user_name):
    """Associated data of a sealed row: what it is (``"voiceprint"``, ``"take1"``...)
    and whose, so that a row moved to another user or take does not open."""
    return kind.encode("ascii") + b"\x00" + user_name.encode("utf-8")


def settle_key(where, rows, recorded_check, has_users):
    """The rule a store applies to its key when it is opened.

    Parameters
    ----------
    where : str
        The store, for messages.
    rows : RowCipher or PlainRows
        What the service was started with (``VPCORE_STORE_KEY``).
    recorded_check : bytes or None
        The store's recorded key check (None: the store is not encrypted).
    has_users : bool
        Whether the store holds any user.

    Returns the key check to record now (an unencrypted store without users that
    gets a key starts encrypting), or None. Raises :class:`StoreKeyError` when the
    key is wrong, missing, or given to an unencrypted store that holds users.
    """
    if recorded_check is None:
        if not rows.encrypted:
            return None
        if has_users:
            raise StoreKeyError(
                f"VPCORE_STORE_KEY is set but store {where} holds users stored without "
                "encryption: encrypt them first (`vpcore-server rotate-key --new-key PATH`, "
                "with the service stopped), or unset VPCORE_STORE_KEY")
        return rows.key_check()
    if not rows.encrypted:
        raise StoreKeyError(f"store {where} is encrypted: set VPCORE_STORE_KEY to the path "
                            "of its key file")
    if not rows.opens_check(recorded_check):
        raise StoreKeyError(f"VPCORE_STORE_KEY is not the key of store {where}: the key "
                            "check recorded when the store was created does not open with it")
    return None


def redact_url(url):
    """``url`` with the password of its userinfo hidden, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
