"""Audio decoding and validation.

Two paths lead into the library:

* the service path, :func:`decode_bytes`, which takes the bytes of a request
  (a RIFF/WAVE file or raw 16-bit PCM) and enforces the service's constraints
  exactly: mono, 16-bit integer PCM, 16 kHz, 3.0 to 20.0 seconds;
* the corpus path, :func:`load_file`, which reads WAV/FLAC files of a
  training corpus and may resample them to the model's rate.

Both return a 1-D ``float32`` waveform scaled to [-1, 1]. The way out is
:func:`encode_wav`, the one WAV writer of the project (tests and benchmarks
use it too).
"""

import io
import wave
from pathlib import Path

import numpy as np
import soundfile as sf

from ._validation import check_float, check_int
from .errors import AudioConstraintError, AudioDecodeError, AudioError, ParameterError

__all__ = [
    "SAMPLE_RATE",
    "MAX_DURATION",
    "decode_bytes",
    "decode_wav",
    "decode_pcm",
    "check_duration",
    "check_waveform",
    "load_file",
    "encode_wav",
]

#: The only sample rate models work at, in Hz.
SAMPLE_RATE = 16000

#: Longest waveform any function accepts, in seconds (guards memory).
MAX_DURATION = 3600.0

_FORMATS = ("wav", "pcm")


def decode_wav(data, sample_rate=SAMPLE_RATE):
    """Decode RIFF/WAVE bytes holding mono 16-bit integer PCM.

    Parameters
    ----------
    data : bytes
        The whole file.
    sample_rate : int
        The rate the header must declare.

    Returns
    -------
    samples : ndarray of shape (n_samples,), float32
        Samples scaled to [-1, 1).

    Raises
    ------
    AudioDecodeError
        The bytes are not a parseable RIFF/WAVE file.
    AudioConstraintError
        The file is parseable but not mono, not 16-bit PCM, or not at ``sample_rate``.
    """
    data = _check_bytes(data)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioDecodeError("data is not a RIFF/WAVE file (missing 'RIFF....WAVE' header)")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioDecodeError(f"data is not a parseable WAV file ({_reason(exc)})") from None
    if info.format not in ("WAV", "WAVEX"):  # WAVEX: WAVE_FORMAT_EXTENSIBLE
        raise AudioDecodeError(f"data is a {info.format} file, not a WAV file")
    if info.channels != 1:
        raise AudioConstraintError(f"channels={info.channels} must be 1 (mono audio)")
    if info.subtype != "PCM_16":
        raise AudioConstraintError(
            f"sample format={info.subtype} must be PCM_16 (16-bit integer PCM)"
        )
    if info.samplerate != sample_rate:
        raise AudioConstraintError(
            f"WAV header sample rate={info.samplerate} must be {sample_rate}"
        )
    start = _data_chunk_start(data)
    if start is not None and start + 2 * info.frames <= len(data):
        # the samples in place: no copy until the one conversion to float32
        samples = np.frombuffer(data, dtype="<i2", count=info.frames, offset=start)
    else:  # a layout the chunk walk does not follow: let libsndfile read it
        try:
            samples, _ = sf.read(io.BytesIO(data), dtype="int16", always_2d=False)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioDecodeError(f"WAV sample data cannot be read ({_reason(exc)})") from None
    return np.multiply(samples, np.float32(1.0 / 32768.0), dtype=np.float32)


def _data_chunk_start(data):
    """Offset of the samples of the first ``data`` chunk of RIFF/WAVE bytes, or None.

    Walks the chunks after the 12-byte RIFF header (each: 4-byte id, 4-byte
    little-endian size, the data padded to an even length), as libsndfile does.
    """
    pos = 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        if data[pos:pos + 4] == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return None


def decode_pcm(data):
    """Decode raw little-endian 16-bit mono PCM bytes.

    Raises
    ------
    AudioConstraintError
        The byte count is odd, so the bytes cannot be 16-bit samples.
    """
    data = _check_bytes(data)
    if len(data) % 2:
        raise AudioConstraintError(
            f"raw PCM length={len(data)} bytes must be even (16-bit samples)"
        )
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def check_duration(samples, sample_rate=SAMPLE_RATE, min_duration=3.0, max_duration=20.0):
    """Raise AudioConstraintError unless the waveform lasts within [min, max] seconds."""
    duration = len(samples) / float(sample_rate)
    if duration < min_duration:
        raise AudioConstraintError(
            f"audio duration={duration:.2f} s must be at least {min_duration} s"
        )
    if duration > max_duration:
        raise AudioConstraintError(
            f"audio duration={duration:.2f} s must be at most {max_duration} s"
        )


def decode_bytes(data, fmt, sample_rate=SAMPLE_RATE, min_duration=3.0, max_duration=20.0):
    """Decode the audio of a service request and enforce the service's constraints.

    Parameters
    ----------
    data : bytes
        WAV file bytes (``fmt="wav"``) or raw 16-bit little-endian PCM (``fmt="pcm"``).
    fmt : {"wav", "pcm"}
        Container, case-insensitive.
    sample_rate : int
        Declared rate; must be 16000.
    min_duration, max_duration : float
        Accepted duration range in seconds.

    Returns
    -------
    samples : ndarray of shape (n_samples,), float32

    Raises
    ------
    ParameterError
        ``fmt`` or ``sample_rate`` is not supported.
    AudioDecodeError
        The WAV bytes cannot be parsed.
    AudioConstraintError
        The audio is not mono 16-bit 16 kHz, or its duration is out of range.
    """
    if not isinstance(fmt, str) or fmt.lower() not in _FORMATS:
        raise ParameterError(f"fmt={fmt!r} must be one of {_FORMATS} (case-insensitive)")
    sample_rate = check_int("sample_rate", sample_rate)
    if sample_rate != SAMPLE_RATE:
        raise ParameterError(f"sample_rate={sample_rate} must be {SAMPLE_RATE}")
    min_duration = check_float("min_duration", min_duration, low=0.0)
    max_duration = check_float("max_duration", max_duration, low=min_duration)
    if fmt.lower() == "wav":
        samples = decode_wav(data, sample_rate)
    else:
        samples = decode_pcm(data)
    check_duration(samples, sample_rate, min_duration, max_duration)
    return samples


def check_waveform(samples, sample_rate=SAMPLE_RATE, max_duration=MAX_DURATION):
    """Validate a waveform given as an array and return it as 1-D float32.

    Raises
    ------
    AudioError
        Not 1-D, empty, longer than ``max_duration``, or containing NaN/inf.
    """
    try:
        x = np.asarray(samples)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise AudioError(f"samples must be a 1-D numeric array ({exc})") from None
    if x.dtype.kind not in "fiu":
        raise AudioError(f"samples dtype={x.dtype} must be numeric")
    if x.ndim != 1:
        raise AudioError(f"samples must be 1-D (mono), got shape {x.shape}")
    if x.size == 0:
        raise AudioError("samples is empty (0 samples)")
    if x.size > max_duration * sample_rate:
        raise AudioError(
            f"samples length={x.size} ({x.size / sample_rate:.0f} s) exceeds "
            f"max_duration={max_duration} s"
        )
    if x.dtype.kind in "iu":
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise AudioError("samples contains NaN or infinite values")
    return x


def load_file(path, sample_rate=SAMPLE_RATE):
    """Read a WAV/FLAC file of a corpus as mono float32 at ``sample_rate``.

    Multi-channel files are averaged to mono; other rates are resampled
    (corpus path only: the service path never converts).
    """
    if not Path(path).is_file():
        what = "it is a folder" if Path(path).is_dir() else "the file does not exist"
        raise AudioDecodeError(f"cannot read audio file {path}: {what}")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioDecodeError(f"cannot read audio file {path}: {_reason(exc)}") from None
    samples = samples.mean(axis=1)
    if rate != sample_rate:
        import librosa  # imported lazily: only corpora at other rates need it

        samples = librosa.resample(samples, orig_sr=rate, target_sr=sample_rate)
    return check_waveform(samples, sample_rate)


def _reason(exc):
    """libsndfile's own words, without the ``Error opening <object at 0x...>`` prefix."""
    return getattr(exc, "error_string", None) or str(exc)


def _check_bytes(data):
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise ParameterError(f"data must be bytes, got {type(data).__name__}")
    return data


#: Integer range of each PCM sample width (8-bit WAV is unsigned).
_PCM_RANGES = {1: (0, 255, "<u1"), 2: (-32768, 32767, "<i2"), 4: (-2**31, 2**31 - 1, "<i4")}


def encode_wav(samples, sample_rate=SAMPLE_RATE, sample_width=2):
    """A RIFF/WAVE file in memory: integer PCM of one or more channels.

    16 kHz mono 16-bit is what :func:`decode_bytes` accepts; the other
    layouts let tests build the files it must refuse.

    Parameters
    ----------
    samples : array_like, shape (n,) or (n, channels)
        Floats are clipped to [-1, 1] and scaled to the width's range
        (``round(x * 32767)`` for 16 bits, ``round(x * 127 + 128)`` for
        unsigned 8 bits, ``round(x * (2**31 - 1))`` for 32 bits); integers
        are written as they are and must fit the width.
    sample_rate : int
        In Hz, >= 1.
    sample_width : int
        Bytes per sample: 1, 2 or 4.

    Returns
    -------
    bytes

    Raises
    ------
    ParameterError
        On a bad rate or width, samples that are not a finite 1-D or 2-D
        array, or integers out of the width's range.
    """
    sample_rate = check_int("sample_rate", sample_rate, low=1)
    if sample_width not in _PCM_RANGES or isinstance(sample_width, bool):
        raise ParameterError(f"sample_width={sample_width!r} must be 1, 2 or 4 (bytes)")
    low, high, dtype = _PCM_RANGES[sample_width]
    x = np.asarray(samples)
    if x.ndim not in (1, 2):
        raise ParameterError(f"samples must be 1-D or 2-D (n, channels), got shape {x.shape}")
    if x.dtype.kind in "iu":
        if x.size and (x.min() < low or x.max() > high):
            raise ParameterError(f"integer samples span [{x.min()}, {x.max()}]: "
                                 f"{8 * sample_width}-bit PCM holds [{low}, {high}]")
        pcm = x.astype(dtype)
    else:
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterError(f"samples must be a numeric array ({exc})") from None
        if not np.all(np.isfinite(x)):
            raise ParameterError("samples contains NaN or infinite values")
        x = np.clip(x, -1.0, 1.0)
        scaled = x * 127.0 + 128.0 if sample_width == 1 else x * float(high)
        pcm = np.round(scaled).astype(dtype)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(sample_width)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()
