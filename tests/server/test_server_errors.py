"""server.errors: the one table mapping exceptions to the contract's status codes."""

import pytest

from server.errors import EXCEPTION_STATUS, ApiError, status_for
from server.store import ConflictError, StoreError, StoreModelMismatchError
from vpcore.errors import (
    AudioConstraintError,
    AudioDecodeError,
    AudioError,
    ModelError,
    NotFittedError,
    ParameterError,
    TooLittleSpeechError,
    VpcoreError,
)


@pytest.mark.parametrize("exc,status,known", [
    (AudioConstraintError("channels=2 must be 1"), "22124", True),
    (TooLittleSpeechError("only 3 speech frames"), "22124", True),
    (AudioDecodeError("not a RIFF/WAVE file"), "22152", True),
    (AudioError("non-finite voiceprint"), "22124", True),
    (ModelError("corrupt"), "22151", True),
    (NotFittedError("not fitted"), "22151", True),
    (ParameterError("fmt='mp3'"), "22151", True),
    (VpcoreError("?"), "22151", True),
    (StoreError("disk"), "22151", True),
    (StoreModelMismatchError("other model"), "22151", True),
    (ConflictError("changed"), "22151", True),
    (RuntimeError("boom"), "22151", False),
    (KeyError("x"), "22151", False),
])
def test_exception_table(exc, status, known):
    got_status, message, got_known = status_for(exc)
    assert (got_status, got_known) == (status, known)
    if status == "22151":
        assert message == "service error"  # internals never reach the client
    else:
        assert str(exc) in message


def test_input_errors_keep_their_detail_in_the_message():
    _, message, _ = status_for(AudioConstraintError("channels=2 must be 1"))
    assert message == "audio data does not meet the required constraints: channels=2 must be 1"
    _, message, _ = status_for(AudioDecodeError("data is not a RIFF/WAVE file"))
    assert message == "request decoder error: data is not a RIFF/WAVE file"


def test_every_row_is_reachable():
    """A row after one of its base classes could never match: subclasses come first."""
    for i, (cls, _, _) in enumerate(EXCEPTION_STATUS):
        for base, _, _ in EXCEPTION_STATUS[:i]:
            assert not issubclass(cls, base), (cls, base)


def test_api_error_carries_status_message_and_data():
    exc = ApiError("22132", data={"user_name": "alice", "enroll_num": 1})
    assert status_for(exc) == ("22132", exc.message, True)
    assert exc.data == {"user_name": "alice", "enroll_num": 1} and exc.http_status == 200
    message = ApiError("22121", "user_name=1 is bad").message
    assert message == "invalid parameter: user_name=1 is bad"
    assert ApiError("22124", message="exact").message == "exact"
