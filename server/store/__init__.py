"""Durable storage of users, enrolment takes and voiceprints.

:class:`Store` (in :mod:`server.store.base`, with the errors and the integrity
rules every backend shares) is the interface the service uses. Two backends
implement it, each in its own module: :class:`SQLiteStore` (the default: one
file, WAL journal, ``synchronous=FULL``) and
:class:`~server.store.postgres.PostgresStore` (several replicas on one
PostgreSQL database; needs psycopg). :func:`open_store` is the one place that
knows both and picks one from the URL.
"""

from .base import (
    HISTORY_GENERATIONS,
    ConflictError,
    Store,
    StoreError,
    StoreKeyError,
    StoreModelMismatchError,
    UserRecord,
    redact_url,
)
from .crypto import PlainRows, RowCipher, read_key, rows_for, write_new_key
from .sqlite import SQLiteStore

__all__ = [
    "HISTORY_GENERATIONS",
    "StoreError",
    "StoreModelMismatchError",
    "StoreKeyError",
    "ConflictError",
    "UserRecord",
    "Store",
    "SQLiteStore",
    "open_store",
    "redact_url",
    "PlainRows",
    "RowCipher",
    "read_key",
    "rows_for",
    "write_new_key",
]


def open_store(url, fingerprint, rows=None):
    """Open (creating if needed) the store at ``url`` for the model ``fingerprint``.

    ``url`` is a file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path``
    or ``postgresql://...`` (the PostgreSQL backend, which needs psycopg).
    ``fingerprint`` None opens an existing store of any model (maintenance: key
    rotation) and never creates one. ``rows`` is the encryption at rest
    (:class:`RowCipher` of ``VPCORE_STORE_KEY``; None: :class:`PlainRows`).

    Raises
    ------
    StoreModelMismatchError
        The store was created with another model.
    StoreKeyError
        The key is not the store's, or missing for an encrypted store, or given to
        an unencrypted store that holds users.
    StoreError
        The store cannot be opened.
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"VPCORE_STORE={redact_url(url)} needs the PostgreSQL backend "
                f"(psycopg and psycopg-pool: pip install '.[postgres]'), "
                f"which cannot be imported: {exc}"
            ) from None
        return PostgresStore(url, fingerprint, rows=rows)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]
    elif "://" in url:
        raise StoreError(f"VPCORE_STORE={redact_url(url)}: unknown store URL scheme")
    else:
        path = url
    return SQLiteStore(path, fingerprint, rows=rows)
