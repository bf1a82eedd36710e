"""Status codes of the contract and the ONE table mapping exceptions to them.

Views never build error responses themselves: they raise :class:`ApiError`
(a refusal decided by the service) or let a library / store exception
propagate; :func:`status_for` turns either into ``(status, message)``.
"""

from vpcore.errors import AudioConstraintError, AudioDecodeError, AudioError, VpcoreError

from .store import StoreError

__all__ = [
    "OK",
    "MISSING_PARAMETER",
    "INVALID_PARAMETER",
    "JSON_ERROR",
    "AUDIO_CONSTRAINT",
    "ALREADY_COMPLETED",
    "PREVIOUS_MISSING",
    "UNKNOWN_USER",
    "INCOMPLETE_USER",
    "UNREGISTER_FAILED",
    "NO_CANDIDATES",
    "VERIFY_LOCKED",
    "SERVICE_ERROR",
    "DECODER_ERROR",
    "STATUSES",
    "ECHO",
    "MISMATCH_MESSAGE",
    "ENROLL_MESSAGES",
    "ApiError",
    "EXCEPTION_STATUS",
    "status_for",
]

OK = "00000"
MISSING_PARAMETER = "22111"
INVALID_PARAMETER = "22121"
JSON_ERROR = "22123"
AUDIO_CONSTRAINT = "22124"
ALREADY_COMPLETED = "22131"
PREVIOUS_MISSING = "22132"
UNKNOWN_USER = "22133"
INCOMPLETE_USER = "22134"
UNREGISTER_FAILED = "22135"
NO_CANDIDATES = "22136"
#: not in the specification: the verification guard (off by default) refuses a
#: 1-v-1 verification of a user with too many recent failures
VERIFY_LOCKED = "22137"
SERVICE_ERROR = "22151"
DECODER_ERROR = "22152"

#: Every status the service answers with, and its generic message.
STATUSES = {
    OK: "success",
    MISSING_PARAMETER: "missing parameter",
    INVALID_PARAMETER: "invalid parameter",
    JSON_ERROR: "JSON string error",
    AUDIO_CONSTRAINT: "audio data does not meet the required constraints",
    ALREADY_COMPLETED: "invalid operation: the registration process has already been completed",
    PREVIOUS_MISSING: "invalid operation: the previous registration is incomplete",
    UNKNOWN_USER: "the user_name hasn't been registered",
    INCOMPLETE_USER: "the user_name hasn't been registered completely",
    UNREGISTER_FAILED: "unregistration failed: this user_name hasn't been registered",
    NO_CANDIDATES: "no available user_name",
    VERIFY_LOCKED: "too many failed verifications of this user_name: try again later",
    SERVICE_ERROR: "service error",
    DECODER_ERROR: "request decoder error",
}

#: ``ApiError(data=ECHO)``: the envelope's ``data`` is ``{"user_name": ...}`` when
#: the request carried a usable user_name, else null.
ECHO = object()

#: Messages whose exact wording clients rely on (CONTRACT.md).
MISMATCH_MESSAGE = "voiceprint mismatch with that of the initial registration"
ENROLL_MESSAGES = {
    1: "the first time you enroll successfully, you need to enroll twice more",
    2: "the second registration is successful, please register one more time",
    3: "the third registration is successful, registration completed",
}


class ApiError(Exception):
    """A request refused with a contract status.

    Parameters
    ----------
    status : str
        One of :data:`STATUSES`.
    detail : str, optional
        Appended to the generic message after a colon (e.g. the offending field).
    data : object, optional
        The envelope's ``data``; the default :data:`ECHO` echoes the request's
        ``user_name`` when it carried a usable one.
    message : str, optional
        Replaces the whole message (for the contract's fixed sentences).
    http_status : int
        HTTP status of the response (200 except 404, 405 and 413).
    log_detail : str, optional
        For 22151: the cause, logged with the task id (never sent to the client).
    """

    def __init__(self, status, detail=None, data=ECHO, message=None, http_status=200,
                 log_detail=None):
        if message is None:
            message = STATUSES[status] if detail is None else f"{STATUSES[status]}: {detail}"
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data
        self.http_status = http_status
        self.log_detail = log_detail


#: The one table: exception class -> (status, generic message prefix or None).
#: Checked in order, so subclasses come before their bases. An exception that
#: matches no row is an unexpected fault: 22151, logged with its traceback.
EXCEPTION_STATUS = (
    # TooLittleSpeechError is a subclass of AudioConstraintError: 22124 too.
    (AudioConstraintError, AUDIO_CONSTRAINT, True),
    (AudioDecodeError, DECODER_ERROR, True),
    # Any other unusable audio (e.g. a waveform that gives a non-finite voiceprint)
    # is a property of the request's audio, never a fault of the service.
    (AudioError, AUDIO_CONSTRAINT, True),
    (StoreError, SERVICE_ERROR, False),
    # Any other library error (ModelError, ParameterError on input the server
    # already validated...) is a fault of the service, not of the request.
    (VpcoreError, SERVICE_ERROR, False),
)


def status_for(exc):
    """Return ``(status, message, known)`` for an exception raised while serving.

    ``known`` is False for an exception no row of the table matches: an
    unexpected fault, to be logged with its traceback. The message of a
    service fault never leaks internals to the client.
    """
    if isinstance(exc, ApiError):  # decided by the service
        return exc.status, exc.message, True
    for cls, status, show_detail in EXCEPTION_STATUS:
        if isinstance(exc, cls):
            message = STATUSES[status]
            if show_detail and str(exc):
                message = f"{message}: {exc}"
            return status, message, True
    return SERVICE_ERROR, STATUSES[SERVICE_ERROR], False
