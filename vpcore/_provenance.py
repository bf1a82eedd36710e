"""The identity of the running vpcore code, for caches and model provenance."""

import hashlib
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def code_key():
    """Version plus a digest of vpcore's Python sources, e.g. ``'0.1.0+3f2a9c01d4e5'``.

    A model's fingerprint covers its parameters and options but not the code
    that turns audio into features and i-vectors. Anything cached from a model
    *and* the code (per-file takes, trained test models) is keyed by this as
    well, so a cache written by other code is never reused.
    """
    from . import __version__

    return f"{__version__}+{source_digest(Path(__file__).parent)}"


def source_digest(folder):
    """12 hex digits of SHA-256 over the names and bytes of ``folder``'s ``*.py`` files."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
