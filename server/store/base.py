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
    It exists only while the name is unregistered (enrolling the name again
    drops it), and tombstones older than ``HISTORY_GENERATIONS`` generations
    are pruned; ``history_floor`` records up to which generation the history
    is gone.

Every write is one transaction; a success is reported only after COMMIT.
"""

import abc
import dataclasses

__all__ = [
    "HISTORY_GENERATIONS",
    "StoreError",
    "StoreModelMismatchError",
    "ConflictError",
    "UserRecord",
    "Store",
    "check_take_arguments",
    "check_take_order",
    "checked_takes",
    "redact_url",
]

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
        return self._write_take(
            user_name, take_num, take, group_id, update_time, voiceprint,
            lambda current: check_take_order(user_name, take_num, current, expected_revision),
        )

    @abc.abstractmethod
    def _write_take(self, user_name, take_num, take, group_id, update_time, voiceprint, check):
        """The backend's half of :meth:`save_take`: in one write transaction that
        serialises the writers of ``user_name``, read the user's current
        :class:`UserRecord` (or None), call ``check(current)`` (it raises to refuse:
        the transaction then rolls back), and apply the change. Return the new
        :class:`UserRecord` after COMMIT."""

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


def redact_url(url):
    """``url`` with the password of its userinfo hidden, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest
