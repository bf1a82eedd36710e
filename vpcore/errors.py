"""Exceptions raised by vpcore.

Every error the library raises on purpose is a :class:`VpcoreError`. Each
subclass also inherits the matching built-in exception, so callers that
already catch ``ValueError`` keep working. Messages name the parameter, the
value and the rule, e.g. ``"sample_rate=44100 must be 16000"``.
"""

from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning

__all__ = [
    "VpcoreError",
    "ParameterError",
    "AudioError",
    "AudioDecodeError",
    "AudioConstraintError",
    "TooLittleSpeechError",
    "NotSpeechError",
    "RepeatedTakeError",
    "ModelError",
    "NotFittedError",
    "ConvergenceWarning",
]


class VpcoreError(Exception):
    """Root of every exception raised by vpcore."""


class ParameterError(VpcoreError, ValueError):
    """A function argument has the wrong type, shape or value."""


class AudioError(VpcoreError, ValueError):
    """Audio that cannot be used."""


class AudioDecodeError(AudioError):
    """The bytes are not a parseable audio container (e.g. a broken RIFF header)."""


class AudioConstraintError(AudioError):
    """Decoded audio breaks a constraint (channels, bit depth, rate, duration, content)."""


class TooLittleSpeechError(AudioConstraintError):
    """Voice-activity detection kept too few speech frames to model a voice."""


class NotSpeechError(TooLittleSpeechError):
    """The audio is loud enough but is not speech (noise, a tone, hum, music):
    see :mod:`vpcore.speech`."""


class RepeatedTakeError(AudioConstraintError):
    """An enrolment take is a copy of an earlier take of the same enrolment:
    see :mod:`vpcore.repeats`."""


class ModelError(VpcoreError, RuntimeError):
    """A model file is missing, corrupt, of another format version, or inconsistent."""


class NotFittedError(ModelError, AttributeError):
    """An estimator was used before ``fit``."""


class ConvergenceWarning(_SklearnConvergenceWarning):
    """An iterative estimator stopped before it converged.

    A subclass of scikit-learn's ``ConvergenceWarning`` (itself a
    ``UserWarning``), so a filter or ``pytest.warns`` on either catches it.
    """
