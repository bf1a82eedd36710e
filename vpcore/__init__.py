"""vpcore: classical speaker recognition — MFCC, GMM-UBM, i-vectors, PLDA."""

from .errors import (
    AudioConstraintError,
    AudioDecodeError,
    AudioError,
    ModelError,
    NotFittedError,
    ParameterError,
    TooLittleSpeechError,
    VpcoreError,
)

__version__ = "0.1.0"

from ._provenance import code_key  # noqa: E402

__all__ = [
    "AudioConstraintError",
    "AudioDecodeError",
    "AudioError",
    "ModelError",
    "NotFittedError",
    "ParameterError",
    "TooLittleSpeechError",
    "VpcoreError",
    "__version__",
    "code_key",
]
