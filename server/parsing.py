"""Request parsing in the contract's order.

1. the body is a JSON object                      -> else 22123
2. every required field is present and not null   -> else 22111 naming the field
3. every field has the right type and range       -> else 22121 naming the field
4. ``data`` is base64 (and a RIFF/WAVE file)      -> else 22152
5. the audio meets the constraints                -> else 22124

Steps 4 (RIFF part) and 5 are the library's (:func:`vpcore.audio.decode_bytes`);
its exceptions reach the app's one exception table. State rules (step 6)
belong to :mod:`server.service`.
"""

import base64
import binascii
import dataclasses
import json
import re

from vpcore.audio import decode_bytes

from .errors import (
    AUDIO_CONSTRAINT,
    DECODER_ERROR,
    INVALID_PARAMETER,
    JSON_ERROR,
    MISSING_PARAMETER,
    ApiError,
)

__all__ = [
    "USER_NAME_RULE",
    "EnrollRequest",
    "VerifyRequest",
    "read_body",
    "parse_body",
    "usable_user_name",
    "parse_user_request",
    "parse_enroll",
    "parse_verify",
    "parse_get_users_query",
]

_USER_NAME = re.compile(r"[A-Za-z0-9_-]{4,16}")
USER_NAME_RULE = "must be a string of 4 to 16 characters from [A-Za-z0-9_-]"
_FORMATS = ("wav", "pcm")
SAMPLE_RATE = 16000
MAX_GROUP_ID = 99
MAX_TOP_N = 100
DEFAULT_TOP_N = 3
MAX_LIMIT = 10000
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_WHITESPACE = re.compile(r"[ \t\r\n]+")


@dataclasses.dataclass(frozen=True)
class EnrollRequest:
    user_name: str
    enroll_num: int
    group_id: int
    format: str
    samples: object  # 1-D float32 waveform
    quality: bool = False  # extension: answer with data.quality


@dataclasses.dataclass(frozen=True)
class VerifyRequest:
    user_name: str | None  # None: 1-v-N
    group_ids: tuple  # empty: all groups (1-v-N only)
    top_n: int
    format: str
    samples: object
    quality: bool = False  # extension: answer with the take's quality


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


class _HugeInteger:
    """A JSON integer too long for Python's int(); no field accepts it."""

    __slots__ = ("digits",)

    def __init__(self, digits):
        self.digits = digits


def _parse_int(text):
    return _HugeInteger(text) if len(text) > 4000 else int(text)


#: Bytes of an oversized body read and thrown away after the limit, so that the
#: client (which is still sending) reads the 413 instead of a reset connection.
#: A client that sends more than this past the limit is cut off.
DRAIN_LIMIT = 64 * 1024 * 1024
_CHUNK = 64 * 1024


def _too_large(limit):
    return ApiError(AUDIO_CONSTRAINT, f"request body exceeds {limit} bytes", data=None,
                    http_status=413)


def read_body(environ, limit):
    """The request body, at most ``limit`` bytes, read from ``wsgi.input``.

    The limit holds whether the client declares ``Content-Length`` (refused
    before reading when it is over) or streams with ``Transfer-Encoding:
    chunked`` (refused once byte ``limit + 1`` arrives; gunicorn and the Flask
    development server both de-chunk and mark such input
    ``wsgi.input_terminated``). Raises HTTP 413 / ``22124`` (CONTRACT.md).
    """
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH", "").strip()
    if declared:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(JSON_ERROR, "Content-Length is not an integer") from None
        if length > limit:
            raise _too_large(limit)
        return _read_at_most(stream, length)
    if not environ.get("wsgi.input_terminated"):
        return b""  # neither a length nor a terminated stream: reading could hang
    body = _read_at_most(stream, limit + 1)
    if len(body) > limit:
        drained = 0
        while drained < DRAIN_LIMIT:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            drained += len(chunk)
        raise _too_large(limit)
    return body


def _read_at_most(stream, n):
    parts, got = [], 0
    while got < n:
        chunk = stream.read(min(_CHUNK, n - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def parse_body(raw):
    """Step 1: return the body as a dict, or raise 22123.

    The Content-Type header is not looked at: a body that parses as a JSON
    object is accepted (curl without ``-H``). ``NaN``/``Infinity`` are not JSON.
    """
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, (bytes, bytearray)) else raw
        body = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        empty = not raw or not raw.strip()
        detail = "body is empty" if empty else f"body is not valid JSON ({exc})"
        raise ApiError(JSON_ERROR, detail) from None
    if not isinstance(body, dict):
        raise ApiError(JSON_ERROR, f"body must be a JSON object, got {_json_type(body)}")
    return body


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def usable_user_name(value):
    """Return ``value`` if it is a valid user_name (worth echoing in ``data``), else None."""
    if isinstance(value, str) and _USER_NAME.fullmatch(value):
        return value
    return None


def _require(body, fields):
    """Step 2: a required field missing or null -> 22111."""
    for name in fields:
        if body.get(name) is None:
            raise ApiError(MISSING_PARAMETER, name)


def _invalid(name, rule, value):
    try:
        shown = json.dumps(value, ensure_ascii=True, default=lambda o: "<huge integer>")
    except (ValueError, RecursionError):
        shown = _json_type(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return ApiError(INVALID_PARAMETER, f"{name}={shown} {rule}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_user_name(value):
    if usable_user_name(value) is None:
        raise _invalid("user_name", USER_NAME_RULE, value)
    return value


def _check_int(name, value, low, high):
    if not _is_int(value) or not low <= value <= high:
        raise _invalid(name, f"must be an integer from {low} to {high}", value)
    return value


def _check_format(value):
    if not isinstance(value, str) or value.lower() not in _FORMATS:
        raise _invalid("format", 'must be "wav" or "pcm"', value)
    return value.lower()


def _check_sample_rate(value):
    if not _is_int(value) or value != SAMPLE_RATE:
        raise _invalid("sample_rate", f"must be the integer {SAMPLE_RATE}", value)
    return value


def _check_data_type(value):
    if not isinstance(value, str):
        raise _invalid("data", "must be a string of base64-encoded audio", value)
    return value


def _check_flag(body, name):
    """An optional boolean extension field (absent or null: False)."""
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(name, "must be true or false", value)
    return value


def _check_group_list(value):
    if _is_int(value):
        value = [value]
    if not isinstance(value, list) or not all(
        _is_int(g) and 0 <= g <= MAX_GROUP_ID for g in value
    ):
        raise _invalid(
            "group_id", f"must be an integer or a list of integers from 0 to {MAX_GROUP_ID}", value
        )
    return tuple(sorted(set(value)))


def decode_base64(text):
    """Step 4a: base64 text -> bytes, or 22152.

    ASCII whitespace is ignored (``base64`` wraps lines at 76 columns);
    anything else outside the standard alphabet, or bad padding, is refused.

    Unwrapped text (what clients send) is decoded in one strict pass of the C
    decoder, which refuses every character outside the alphabet and misplaced
    padding itself; only text it refuses takes the slower path that removes
    whitespace, so both paths accept exactly the same inputs.
    """
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ApiError(DECODER_ERROR, "data is not valid base64 (non-ASCII characters)") from None
    if not len(raw) % 4 and not raw.endswith(b"==="):  # strict mode allows '=' past a group
        try:
            return binascii.a2b_base64(raw, strict_mode=True)
        except binascii.Error:
            pass  # whitespace, or not base64: decided below
    compact = _WHITESPACE.sub("", text).encode("ascii")
    if not _BASE64.fullmatch(compact) or len(compact) % 4:
        raise ApiError(DECODER_ERROR, "data is not valid base64")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(DECODER_ERROR, "data is not valid base64") from None


def _decode_audio(body, fmt):
    """Steps 4 and 5: the library decodes and checks the audio (its exceptions
    are mapped by the app's exception table)."""
    audio = decode_base64(body["data"])
    return decode_bytes(audio, fmt, sample_rate=SAMPLE_RATE, min_duration=3.0, max_duration=20.0)


def parse_user_request(body):
    """``/checkUser`` and ``/unregister``: returns the user_name."""
    _require(body, ("user_name",))
    return _check_user_name(body["user_name"])


def parse_enroll(body):
    """``/enroll``: returns an :class:`EnrollRequest` with the decoded waveform."""
    _require(body, ("format", "sample_rate", "user_name", "enroll_num", "data"))
    fmt = _check_format(body["format"])
    _check_sample_rate(body["sample_rate"])
    user_name = _check_user_name(body["user_name"])
    enroll_num = _check_int("enroll_num", body["enroll_num"], 1, 3)
    group_id = body.get("group_id")
    group_id = 0 if group_id is None else _check_int("group_id", group_id, 0, MAX_GROUP_ID)
    quality = _check_flag(body, "quality")
    _check_data_type(body["data"])
    samples = _decode_audio(body, fmt)
    return EnrollRequest(user_name, enroll_num, group_id, fmt, samples, quality)


def parse_verify(body):
    """``/verify``: 1-v-1 when ``user_name`` is given (``group_id`` and ``top_n``
    are then ignored, whatever their value), else 1-v-N."""
    _require(body, ("format", "sample_rate", "data"))
    fmt = _check_format(body["format"])
    _check_sample_rate(body["sample_rate"])
    user_name = body.get("user_name")
    group_ids, top_n = (), DEFAULT_TOP_N
    if user_name is not None:
        _check_user_name(user_name)
    else:
        if body.get("group_id") is not None:
            group_ids = _check_group_list(body["group_id"])
        if body.get("top_n") is not None:
            top_n = _check_int("top_n", body["top_n"], 1, MAX_TOP_N)
    quality = _check_flag(body, "quality")
    _check_data_type(body["data"])
    samples = _decode_audio(body, fmt)
    return VerifyRequest(user_name, group_ids, top_n, fmt, samples, quality)


def _query_int(args, name, low, high):
    values = args.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise ApiError(INVALID_PARAMETER, f"{name} is given {len(values)} times")
    text = values[0]
    if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        rule = f"from {low} to {high}" if high is not None else f">= {low}"
        raise _invalid(name, f"must be an integer {rule}", text)
    return int(text)


def parse_get_users_query(args):
    """``GET /getUsers`` query: optional ``group_id`` (0..99), ``offset`` (>= 0)
    and ``limit`` (1..10000). Returns ``(group_id, offset, limit)``."""
    group_id = _query_int(args, "group_id", 0, MAX_GROUP_ID)
    offset = _query_int(args, "offset", 0, 10**9 - 1)
    limit = _query_int(args, "limit", 1, MAX_LIMIT)
    return group_id, (offset or 0), limit
