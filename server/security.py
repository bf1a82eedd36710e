"""Access control and accountability of the service: the API token, the audit log and
the guard against guessing a user's voice by repeated 1-v-1 verifications.

* :class:`TokenCheck`: with ``VPCORE_API_TOKEN`` set, every request except the
  public paths must carry ``Authorization: Bearer <token>``; tokens are compared
  in constant time and never logged.
* :class:`AuditLog`: one JSON line per state-changing or verifying request, to a
  file (appended, one ``write`` per line, so several worker processes can share
  it) or to standard output.
* :class:`VerifyGuard`: after ``failures`` failed 1-v-1 verifications of one user
  within ``window`` seconds, further 1-v-1 attempts on that user are refused until
  the window has passed. The failures are recorded in the store, so the count is
  shared by every worker process and replica using it.
"""

import datetime
import hmac
import json
import logging
import math
import os
import sys
import threading
import time

__all__ = ["PUBLIC_PATHS", "TokenCheck", "load_tokens", "AuditLog", "AUDITED_PATHS",
           "VerifyGuard", "RedactTokens", "redact_tokens_in_logs"]

#: paths served without a token: the health probe, the API description and the console
#: page itself (the API calls the console makes carry the token)
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/console", "/console/"})
#: path prefixes served without a token (the console's static files)
PUBLIC_PREFIXES = ("/static/", "/console/static/")

#: the requests the audit log records: those that change state or verify
AUDITED_PATHS = frozenset({"/enroll", "/verify", "/unregister"})

#: shortest token accepted: a short one can be guessed
MIN_TOKEN_LENGTH = 16


class TokenError(ValueError):
    """``VPCORE_API_TOKEN`` is malformed (the message never contains a token)."""


def load_tokens(value, variable="VPCORE_API_TOKEN"):
    """The tokens of ``value``: a path of a file holding them, or the tokens themselves,
    separated by commas (in a file also by new lines). Each must have at least
    ``MIN_TOKEN_LENGTH`` characters and no white space."""
    source = "the value"
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8") as f:
                value = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"{variable}: cannot read the token file: "
                             f"{type(exc).__name__}") from None
        source = "the token file"
    tokens = [t.strip() for t in value.replace("\n", ",").split(",") if t.strip()]
    if not tokens:
        raise TokenError(f"{variable}: {source} holds no token")
    for i, token in enumerate(tokens, 1):
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise TokenError(f"{variable}: token {i} of {source} must have at least "
                             f"{MIN_TOKEN_LENGTH} characters and no white space")
    return tuple(t.encode("utf-8") for t in tokens)


class TokenCheck:
    """Whether a request may pass, given the configured tokens (none: every request)."""

    def __init__(self, tokens):
        self._tokens = tuple(tokens)

    def __repr__(self):
        return f"TokenCheck(<{len(self._tokens)} tokens hidden>)"

    @property
    def enabled(self):
        return bool(self._tokens)

    @staticmethod
    def is_public(path):
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    def allows(self, path, authorization):
        """True if a request to ``path`` with the ``Authorization`` header value
        ``authorization`` (None if absent) may pass."""
        if not self._tokens or self.is_public(path):
            return True
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        given = given.strip().encode("utf-8", "surrogateescape")
        # every token is compared, each in constant time: the time taken says nothing
        # about which token, or how much of one, matched
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(given, token)
        return matched


class RedactTokens(logging.Filter):
    """A log filter that writes ``***`` for every token it was given: the service never
    logs the ``Authorization`` header, but a client that puts a token into a URL would
    otherwise find it in the request's log line."""

    def __init__(self):
        super().__init__()
        self._tokens = set()

    def add(self, tokens):
        self._tokens.update(t.decode("utf-8") for t in tokens)

    def filter(self, record):
        message = record.getMessage()
        if any(token in message for token in self._tokens):
            for token in self._tokens:
                message = message.replace(token, "***")
            record.msg, record.args = message, None
        return True


#: the one filter of this process (a handler holds it once, however many apps it serves)
_REDACT = RedactTokens()


def redact_tokens_in_logs(tokens, loggers=("", "gunicorn.error", "gunicorn.access")):
    """Hide ``tokens`` in every line the handlers of ``loggers`` (root: ``""``) write."""
    _REDACT.add(tokens)
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(_REDACT)


class AuditLog:
    """Writes audit records as JSON lines.

    Parameters
    ----------
    target : str
        ``"-"`` or ``"stdout"``: standard output; anything else: a file path, opened
        for appending (created with mode 0600).
    """

    def __init__(self, target):
        self.target = target
        self._lock = threading.Lock()
        self._fd = None
        self._pid = None
        if target not in ("-", "stdout"):
            self._open()  # fail at start-up, not at the first request

    def _open(self):
        self._fd = os.open(self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._pid = os.getpid()

    def write(self, record):
        """Append ``record`` (a JSON-able dict) as one line."""
        line = (json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self.target in ("-", "stdout"):
                sys.stdout.buffer.write(line) if hasattr(sys.stdout, "buffer") else \
                    sys.stdout.write(line.decode())
                sys.stdout.flush()
                return
            if self._pid != os.getpid():  # a forked worker opens its own descriptor
                self._open()
            os.write(self._fd, line)

    def close(self):
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


def audit_record(task_id, endpoint, user_name, status, client):
    """The audit line of one request: no audio, no score, only the outcome status."""
    return {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "task_id": task_id,
        "endpoint": endpoint,
        "user_name": user_name,
        "status": status,
        "client": client,
    }


class VerifyGuard:
    """Refuses 1-v-1 verifications of a user after too many recent failures.

    Parameters
    ----------
    failures : int
        Failed verifications within ``window`` after which the user is locked
        (0: the guard is off).
    window : float
        Seconds a failure counts.
    confidence : float
        A 1-v-1 verification whose confidence is below this counts as failed.
    clock : callable
        Epoch seconds (tests pass their own).
    """

    def __init__(self, failures, window, confidence, clock=time.time):
        self.failures, self.window, self.confidence = int(failures), float(window), confidence
        self._clock = clock

    @property
    def enabled(self):
        return self.failures > 0

    @property
    def retry_after(self):
        """Whole seconds after which a locked user's failures have surely expired."""
        return int(math.ceil(self.window))

    def locked(self, store, user_name):
        """True if ``user_name`` has had ``failures`` failures within the window."""
        if not self.enabled:
            return False
        since = self._clock() - self.window
        return store.failed_verifications(user_name, since) >= self.failures

    def record(self, store, user_name, confidence):
        """Count the verification of ``user_name`` that gave ``confidence`` if it failed."""
        if self.enabled and not confidence >= self.confidence:
            now = self._clock()
            store.record_failed_verification(user_name, now, now - self.window)
