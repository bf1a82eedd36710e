"""Encryption at rest of the store's biometric rows, and the store key file.

Every take and voiceprint blob is sealed on its own with AES-256-GCM
(``cryptography``'s :class:`~cryptography.hazmat.primitives.ciphers.aead.AESGCM`):
``b"VPE1" + nonce (12 random bytes) + ciphertext + tag (16 bytes)``. The
associated data names what the blob is and whose it is (``"voiceprint"`` or
``"take<k>"`` and the user name), so a blob copied into another user's row, or
into another take number, fails to open instead of being read as that user's.

The key is 32 random bytes in a file (``VPCORE_STORE_KEY`` holds its path);
:func:`write_new_key` makes one (mode 0600, never overwriting a file).
The key itself never appears in a message or a log line.
"""

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .base import StoreKeyError

__all__ = [
    "KEY_BYTES",
    "RowCipher",
    "PlainRows",
    "read_key",
    "write_new_key",
]

KEY_BYTES = 32
_MAGIC = b"VPE1"
_NONCE_BYTES = 12
#: the plaintext of the key check a store records when it is created
_CHECK = b"vpcore store key check v1"


class PlainRows:
    """No encryption: rows are stored as they are (``VPCORE_STORE_KEY`` unset)."""

    encrypted = False

    def seal(self, aad, data):
        return data

    def open(self, aad, blob):
        blob = bytes(blob)
        if blob.startswith(_MAGIC):
            raise StoreKeyError("an encrypted row in a store opened without VPCORE_STORE_KEY")
        return blob

    def key_check(self):
        return None

    def tag_key(self, store_secret):
        return store_secret


class RowCipher:
    """AES-256-GCM sealing of rows with a 32-byte key.

    Parameters
    ----------
    key : bytes
        32 bytes.
    """

    encrypted = True

    def __init__(self, key):
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise StoreKeyError(f"a store key must be {KEY_BYTES} bytes")
        self._aead = AESGCM(bytes(key))
        # a separate key for the keyed hashes of names (tombstones)
        self._tag_key = hmac.digest(bytes(key), b"vpcore name tags v1", hashlib.sha256)

    def __repr__(self):
        return "RowCipher(<key hidden>)"

    def seal(self, aad, data):
        nonce = os.urandom(_NONCE_BYTES)
        return _MAGIC + nonce + self._aead.encrypt(nonce, bytes(data), aad)

    def open(self, aad, blob):
        blob = bytes(blob)
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE_BYTES + 16:
            raise StoreKeyError("a row of the store is not encrypted although the store is")
        nonce = blob[len(_MAGIC):len(_MAGIC) + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(_MAGIC) + _NONCE_BYTES:], aad)
        except InvalidTag:
            raise StoreKeyError(
                f"a row of the store does not open with VPCORE_STORE_KEY ({_describe(aad)}): "
                "the row was altered or moved from another user, or the key is not this store's"
            ) from None

    def key_check(self):
        """A sealed known text: a store records one when it is created with this key."""
        return self.seal(b"key check", _CHECK)

    def opens_check(self, blob):
        """Whether ``blob`` (a store's recorded key check) was made with this key."""
        try:
            return self.open(b"key check", blob) == _CHECK
        except StoreKeyError:
            return False

    def tag_key(self, store_secret):
        return self._tag_key


def _describe(aad):
    kind, _, name = aad.partition(b"\x00")
    return f"{kind.decode('ascii', 'replace')} of {name.decode('utf-8', 'replace')!r}"


def read_key(path, variable="VPCORE_STORE_KEY"):
    """The 32-byte key in the file ``path`` (raw bytes, or 64 hex digits and a newline).

    Raises :class:`StoreKeyError` naming ``variable`` and the path (never the key).
    """
    try:
        with open(path, "rb") as f:
            data = f.read(4 * KEY_BYTES + 1)
    except OSError as exc:
        raise StoreKeyError(f"{variable}={path}: cannot read the key file: "
                            f"{exc.strerror or type(exc).__name__}") from None
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise StoreKeyError(f"{variable}={path}: a key file must hold {KEY_BYTES} bytes "
                        f"(or {2 * KEY_BYTES} hex digits); this one holds {len(data)} bytes "
                        "(make one with `vpcore-server new-key PATH`)")


def write_new_key(path):
    """Write a new random key to ``path`` (created with mode 0600; an existing file is
    never overwritten: :class:`FileExistsError`)."""
    key = os.urandom(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def rows_for(key_path, variable="VPCORE_STORE_KEY"):
    """:class:`RowCipher` of the key file ``key_path``, or :class:`PlainRows` if None."""
    return PlainRows() if not key_path else RowCipher(read_key(key_path, variable))
