"""vpcore: classical speaker recognition — MFCC, GMM-UBM, i-vectors, PLDA."""

from .errors import (
    AudioConstraintError,
    AudioDecodeError,
    AudioError,
    ModelError,
    NotFittedError,
    NotSpeechError,
    ParameterError,
    RepeatedTakeError,
    TooLittleSpeechError,
    VpcoreError,
)

__version__ = "0.1.0"

from ._provenance import code_key  # noqa: E402
from .gallery import Gallery  # noqa: E402
from .model import Take, Voiceprint, VoiceprintModel, load_model  # noqa: E402

__all__ = [
    "AudioConstraintError",
    "AudioDecodeError",
    "AudioError",
    "Gallery",
    "ModelError",
    "NotFittedError",
    "NotSpeechError",
    "ParameterError",
    "RepeatedTakeError",
    "Take",
    "TooLittleSpeechError",
    "Voiceprint",
    "VoiceprintModel",
    "VpcoreError",
    "__version__",
    "code_key",
    "load_model",
]
