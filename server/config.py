"""Service configuration, read from environment variables.

================================ ============================ ==================================
variable                         default                      meaning
================================ ============================ ==================================
``VPCORE_HOST``                  ``0.0.0.0``                  address gunicorn binds
``VPCORE_PORT``                  ``7800``                     port gunicorn binds
``VPCORE_STORE``                 ``./vpcore-store.sqlite3``   SQLite file path (also
                                                              ``sqlite:///rel``,
                                                              ``sqlite:////abs``); a
                                                              ``postgresql://`` URL selects
                                                              the PostgreSQL backend
``VPCORE_MODEL``                 (model shipped in vpcore)    path of a saved VoiceprintModel
``VPCORE_CONSISTENCY_THRESHOLD`` ``0.05``                     takes 2 and 3 whose calibrated
                                                              consistency with the earlier
                                                              takes is below this are refused
                                                              (22124)
``VPCORE_MAX_BODY``              ``2097152`` (2 MiB)          request body limit in bytes
                                                              (HTTP 413)
``VPCORE_WORKERS``               ``2``                        gunicorn worker processes
``VPCORE_THREADS``               ``4``                        threads per worker (gthread)
``VPCORE_TIMEOUT``               ``60``                       gunicorn worker timeout, seconds
``VPCORE_LOG_LEVEL``             ``INFO``                     log level of the service
``VPCORE_API_TOKEN``             (none: no authentication)    bearer token(s) every request but
                                                              ``/health``, ``/openapi.json``
                                                              and the console page must carry:
                                                              comma-separated, or the path of a
                                                              file holding them
``VPCORE_STORE_KEY``             (none: no encryption)        path of the 32-byte key file that
                                                              encrypts takes and voiceprints
                                                              (``vpcore-server new-key PATH``)
``VPCORE_AUDIT_LOG``             (none: no audit log)         ``-`` (standard output) or a file:
                                                              one JSON line per enrol, verify
                                                              and unregister request
``VPCORE_GUARD_FAILURES``        ``0`` (off)                  failed 1-v-1 verifications of a
                                                              user after which its further
                                                              1-v-1 attempts get 22137 ...
``VPCORE_GUARD_WINDOW``          ``300``                      ... until this many seconds have
                                                              passed since those failures
``VPCORE_GUARD_CONFIDENCE``      ``0.5``                      a 1-v-1 confidence below this is a
                                                              failed verification
``VPCORE_ADAPTIVE_COHORT``       ``1`` (on)                   ``1``: the probe side of AS-norm
                                                              pools the model's cohort with the
                                                              probe's scores against the other
                                                              enrolled voiceprints (at most
                                                              10,000), and for a model with
                                                              ``in_domain_cohort="both"`` each
                                                              voiceprint's side too (a pool of
                                                              at most 1,000); ``0``: the cohort
                                                              only
================================ ============================ ==================================

A bad value raises :class:`ConfigError` naming the variable, the value and the rule.
"""

import dataclasses
import logging
import os

__all__ = ["Config", "ConfigError", "DEFAULT_STORE", "DEFAULT_CONSISTENCY_THRESHOLD"]

DEFAULT_STORE = "./vpcore-store.sqlite3"

#: Default of ``VPCORE_CONSISTENCY_THRESHOLD``, chosen by measurement on the
#: robustness development protocol (benchmarks/robustness.py, development model of
#: the shipped recipe; two clean takes, then a third from the same speaker or from
#: another, clean or in another condition; docs/robustness.md): at 0.05, none of
#: the clean genuine third takes are refused (0.2: 3.8 %), 2.5 % in a reverberant
#: room (11.2 %), 6.2 % of the speaking-style proxy (10.0 %) and 17.5 % over a
#: telephone line (33.8 %), while another speaker's take passes 7.5-29 % of the time
#: (0.2: 2.5-17.5 %). A refused genuine take costs the user a restart; a wrong take 3 only
#: spoils an enrolment its owner could not complete anyway, so the default leans
#: towards accepting. The confidence is the model's (prior 0.1): 0.05 refuses a
#: take whose evidence is about 2:1 against the same speaker.
DEFAULT_CONSISTENCY_THRESHOLD = 0.05


class ConfigError(ValueError):
    """A configuration value is malformed or out of range."""


@dataclasses.dataclass(frozen=True)
class Config:
    """All settings of the service. Build it directly in tests, or with :meth:`from_env`."""

    host: str = "0.0.0.0"
    port: int = 7800
    store: str = DEFAULT_STORE
    model_path: str | None = None
    consistency_threshold: float = DEFAULT_CONSISTENCY_THRESHOLD
    max_body: int = 2 * 1024 * 1024
    workers: int = 2
    threads: int = 4
    timeout: int = 60
    log_level: str = "INFO"
    #: seconds between two attempts to load a model / open a store that failed
    retry_interval: float = 5.0
    #: VPCORE_API_TOKEN as given (tokens, or a file of them); never shown in a repr
    api_token: str | None = dataclasses.field(default=None, repr=False)
    store_key: str | None = None
    audit_log: str | None = None
    guard_failures: int = 0
    guard_window: int = 300
    guard_confidence: float = 0.5
    #: pool the cohort with the enrolled voiceprints on the probe side of AS-norm
    adaptive_cohort: bool = True

    def __post_init__(self):
        _check_int("VPCORE_PORT", self.port, 1, 65535)
        _check_int("VPCORE_MAX_BODY", self.max_body, 1024, 1 << 30)
        _check_int("VPCORE_WORKERS", self.workers, 1, 256)
        _check_int("VPCORE_THREADS", self.threads, 1, 1024)
        _check_int("VPCORE_TIMEOUT", self.timeout, 1, 3600)
        if isinstance(self.consistency_threshold, bool) or not isinstance(
            self.consistency_threshold, (int, float)
        ) or not 0.0 <= self.consistency_threshold <= 1.0:
            raise ConfigError(
                f"VPCORE_CONSISTENCY_THRESHOLD={self.consistency_threshold!r} "
                "must be a number in [0, 1]"
            )
        _check_int("VPCORE_GUARD_FAILURES", self.guard_failures, 0, 1_000_000)
        _check_int("VPCORE_GUARD_WINDOW", self.guard_window, 1, 30 * 24 * 3600)
        if isinstance(self.guard_confidence, bool) or not isinstance(
            self.guard_confidence, (int, float)
        ) or not 0.0 <= self.guard_confidence <= 1.0:
            raise ConfigError(
                f"VPCORE_GUARD_CONFIDENCE={self.guard_confidence!r} must be a number in [0, 1]")
        if not isinstance(self.adaptive_cohort, bool):
            raise ConfigError(
                f"VPCORE_ADAPTIVE_COHORT={self.adaptive_cohort!r} must be 1 (on) or 0 (off)")
        if self.api_token is not None:
            from .security import TokenError, load_tokens

            try:
                load_tokens(self.api_token)
            except TokenError as exc:
                raise ConfigError(str(exc)) from None
        if not isinstance(self.store, str) or not self.store:
            raise ConfigError(f"VPCORE_STORE={self.store!r} must be a non-empty path or URL")
        if logging.getLevelName(str(self.log_level).upper()) not in (
            logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL
        ):
            raise ConfigError(
                f"VPCORE_LOG_LEVEL={self.log_level!r} must be DEBUG, INFO, WARNING, ERROR "
                "or CRITICAL"
            )

    def __repr__(self):
        """Every field but the tokens, and the store URL without its password."""
        from .store.base import redact_url

        shown = ", ".join(
            f"store={redact_url(self.store)!r}" if f.name == "store"
            else f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self) if f.repr)
        return f"Config({shown})"

    @classmethod
    def from_env(cls, environ=None):
        """Read the ``VPCORE_*`` variables of ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        kwargs = {}
        for field, var, parse in (
            ("host", "VPCORE_HOST", str),
            ("port", "VPCORE_PORT", _parse_int),
            ("store", "VPCORE_STORE", str),
            ("model_path", "VPCORE_MODEL", str),
            ("consistency_threshold", "VPCORE_CONSISTENCY_THRESHOLD", _parse_float),
            ("max_body", "VPCORE_MAX_BODY", _parse_int),
            ("workers", "VPCORE_WORKERS", _parse_int),
            ("threads", "VPCORE_THREADS", _parse_int),
            ("timeout", "VPCORE_TIMEOUT", _parse_int),
            ("log_level", "VPCORE_LOG_LEVEL", str),
            ("api_token", "VPCORE_API_TOKEN", str),
            ("store_key", "VPCORE_STORE_KEY", str),
            ("audit_log", "VPCORE_AUDIT_LOG", str),
            ("guard_failures", "VPCORE_GUARD_FAILURES", _parse_int),
            ("guard_window", "VPCORE_GUARD_WINDOW", _parse_int),
            ("guard_confidence", "VPCORE_GUARD_CONFIDENCE", _parse_float),
            ("adaptive_cohort", "VPCORE_ADAPTIVE_COHORT", _parse_switch),
        ):
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                kwargs[field] = parse(raw.strip())
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid {parse.__doc__}") from None
        return cls(**kwargs)


def _parse_int(text):
    """integer"""
    return int(text, 10)


def _parse_float(text):
    """number"""
    return float(text)


def _parse_switch(text):
    """switch: 1 (on) or 0 (off)"""
    if text not in ("0", "1"):
        raise ValueError(text)
    return text == "1"


def _check_int(var, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{var}={value!r} must be an integer in [{low}, {high}]")
