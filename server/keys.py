"""``vpcore-server new-key`` / ``vpcore-server rotate-key``: the store key's commands,
and the start-up check of ``VPCORE_STORE_KEY`` against the store.

``vpcore-server new-key PATH``
    Write a new random 32-byte key to PATH (mode 0600; never overwrites a file).
``vpcore-server rotate-key [--store URL] [--key PATH] [--new-key PATH | --decrypt]``
    Re-encrypt every take and voiceprint of the store (default ``$VPCORE_STORE``)
    from the key ``--key`` (default ``$VPCORE_STORE_KEY``; none: the store is not
    encrypted yet) to ``--new-key``, in one transaction; ``--decrypt`` stores them
    without encryption instead. Stop the service first (its processes hold the old
    key); start it again with ``VPCORE_STORE_KEY`` set to the new key's path, then
    destroy the old key file: rows it sealed that linger in the database's free
    space can then never be read.
"""

import argparse
import os
import sys

from .config import DEFAULT_STORE
from .store import StoreError, StoreKeyError, open_store, redact_url, rows_for, write_new_key

__all__ = ["main", "check_store_key", "COMMANDS"]

COMMANDS = ("new-key", "rotate-key")


def check_store_key(config):
    """Refuse to start when ``VPCORE_STORE_KEY`` does not fit the store.

    Opens an existing store (of any model) with the configured key and closes it;
    a store that does not exist yet is created by the service with the key's check.
    Raises :class:`~server.store.StoreKeyError` (a :class:`StoreError`) with a message
    naming ``VPCORE_STORE_KEY``; other store failures are left to the service, which
    retries them.
    """
    try:
        store = open_store(config.store, None, rows=rows_for(config.store_key))
    except StoreKeyError:
        raise
    except StoreError:  # no store yet, or unreachable: the service deals with it
        return
    store.close()


def main(argv):
    """Run a key command (``argv[0]`` in :data:`COMMANDS`); return the exit status."""
    parser = argparse.ArgumentParser(prog=f"vpcore-server {argv[0]}",
                                     description=__doc__.split("\n\n")[0])
    if argv[0] == "new-key":
        parser.add_argument("path", help="file to create (mode 0600)")
        args = parser.parse_args(argv[1:])
        try:
            write_new_key(args.path)
        except OSError as exc:
            print(f"vpcore-server new-key: cannot create {args.path}: "
                  f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
            return 1
        print(f"wrote a new 32-byte store key to {args.path}")
        return 0
    parser.add_argument("--store", default=os.environ.get("VPCORE_STORE") or DEFAULT_STORE,
                        help="store path or URL (default: $VPCORE_STORE)")
    parser.add_argument("--key", default=os.environ.get("VPCORE_STORE_KEY") or None,
                        help="the store's current key file (default: $VPCORE_STORE_KEY)")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--new-key", help="key file to encrypt with from now on")
    target.add_argument("--decrypt", action="store_true",
                        help="store the rows without encryption")
    args = parser.parse_args(argv[1:])
    try:
        new_rows = rows_for(None if args.decrypt else args.new_key, "--new-key")
        store = open_store(args.store, None, rows=rows_for(args.key, "--key"))
        try:
            count = store.rotate_key(new_rows)
        finally:
            store.close()
    except StoreError as exc:
        print(f"vpcore-server rotate-key: {exc}", file=sys.stderr)
        return 1
    how = "without encryption" if args.decrypt else f"with the key {args.new_key}"
    print(f"re-sealed {count} takes and voiceprints of {redact_url(args.store)} {how}")
    return 0
