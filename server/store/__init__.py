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
    StoreModelMismatchError,
    UserRecord,
    redact_url,
)
from .sqlite import SQLiteStore

__all__ = [
    "HISTORY_GENERATIONS",
    "StoreError",
    "StoreModelMismatchError",
    "ConflictError",
    "UserRecord",
    "Store",
    "SQLiteStore",
    "open_store",
    "redact_url",
]


def open_store(url, fingerprint):
    """Open (creating if needed) the store at ``url`` for the model ``fingerprint``.

    ``url`` is a file path, ``sqlite:///relative/path``, ``sqlite:////absolute/path``
    or ``postgresql://...`` (the PostgreSQL backend, which needs psycopg).

    Raises
    ------
    StoreModelMismatchError
        The store was created with another model.
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
        return PostgresStore(url, fingerprint)
    if url.startswith("sqlite://"):
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]
    elif "://" in url:
        raise StoreError(f"VPCORE_STORE={redact_url(url)}: unknown store URL scheme")
    else:
        path = url
    return SQLiteStore(path, fingerprint)
