"""Tests of vpcore.audio: the service path (decode_bytes) and the corpus path (load_file)."""

import io
import re
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vpcore.audio import (
    SAMPLE_RATE,
    check_duration,
    check_waveform,
    decode_bytes,
    decode_pcm,
    decode_wav,
    encode_wav,
    load_file,
)
from vpcore.errors import (
    AudioConstraintError,
    AudioDecodeError,
    AudioError,
    ParameterError,
)

SR = 16000


def int16_signal(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-32768, 32768, size=n, dtype=np.int16)


def library_wav(pcm16, rate=SR, channels=1):
    """A RIFF/WAVE file written by the library's writer (the standard library's ``wave``)."""
    pcm16 = np.asarray(pcm16, dtype=np.int16)
    return encode_wav(pcm16 if channels == 1 else pcm16.reshape(-1, channels), rate)


def wav_with_soundfile(data, rate=SR, subtype="PCM_16", fmt="WAV"):
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def seconds(s):
    return int(round(s * SR))


# ---------------------------------------------------------------------------
# accepted input returns exactly the samples written


def test_wav_round_trip_returns_the_written_samples():
    pcm = int16_signal(seconds(4.0))
    out = decode_bytes(library_wav(pcm), "wav")
    assert out.dtype == np.float32 and out.ndim == 1
    np.testing.assert_array_equal(out, pcm.astype(np.float32) / 32768.0)


def test_wav_written_by_soundfile_is_accepted_too():
    pcm = int16_signal(seconds(3.5), seed=1)
    out = decode_bytes(wav_with_soundfile(pcm), "wav")
    np.testing.assert_array_equal(out, pcm / 32768.0)


def test_raw_pcm_round_trip_returns_the_written_samples():
    pcm = int16_signal(seconds(5.0), seed=2)
    out = decode_bytes(pcm.astype("<i2").tobytes(), "pcm")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pcm.astype(np.float32) / 32768.0)


def test_wav_and_pcm_of_the_same_samples_decode_identically():
    pcm = int16_signal(seconds(3.2), seed=3)
    np.testing.assert_array_equal(decode_bytes(library_wav(pcm), "wav"),
                                  decode_bytes(pcm.astype("<i2").tobytes(), "pcm"))


def test_extreme_sample_values_map_to_minus_one_and_just_below_one():
    pcm = np.zeros(seconds(3.0), dtype=np.int16)
    pcm[0], pcm[1] = -32768, 32767
    out = decode_bytes(library_wav(pcm), "wav")
    assert out[0] == -1.0
    assert out[1] == pytest.approx(32767 / 32768) and out[1] < 1.0


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.int16, st.integers(1, 2000)))
def test_any_int16_samples_survive_wav_and_pcm(pcm):
    expected = pcm.astype(np.float32) / 32768.0
    np.testing.assert_array_equal(decode_wav(library_wav(pcm)), expected)
    np.testing.assert_array_equal(decode_pcm(pcm.astype("<i2").tobytes()), expected)


@pytest.mark.parametrize("fmt", ["wav", "WAV", "Wav", "pcm", "PCM", "pCm"])
def test_fmt_is_case_insensitive(fmt):
    pcm = int16_signal(seconds(3.0), seed=4)
    data = library_wav(pcm) if fmt.lower() == "wav" else pcm.astype("<i2").tobytes()
    np.testing.assert_array_equal(decode_bytes(data, fmt), pcm / 32768.0)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytes_like_input_is_accepted(kind):
    pcm = int16_signal(seconds(3.0), seed=5)
    out = decode_bytes(kind(pcm.astype("<i2").tobytes()), "pcm")
    np.testing.assert_array_equal(out, pcm / 32768.0)


# ---------------------------------------------------------------------------
# container errors: AudioDecodeError


@pytest.mark.parametrize("data", [
    b"",
    b"RIFF",
    b"not a wav file at all, just some text " * 3000,
    b"RIFX" + b"\x00" * 100,                       # big-endian RIFF is not accepted
    b"RIFF\x24\x00\x00\x00AVI " + b"\x00" * 100,   # RIFF but not WAVE
])
def test_bytes_that_are_not_riff_wave_raise_decode_error(data):
    with pytest.raises(AudioDecodeError, match="RIFF/WAVE"):
        decode_bytes(data, "wav")


def test_raw_pcm_sent_as_wav_is_a_decode_error():
    pcm = int16_signal(seconds(4.0), seed=6)
    with pytest.raises(AudioDecodeError, match="RIFF"):
        decode_bytes(pcm.astype("<i2").tobytes(), "wav")


@pytest.mark.parametrize("n_bytes", [12, 20, 30, 36])
def test_truncated_header_raises_decode_error(n_bytes):
    full = library_wav(int16_signal(seconds(3.0)))
    with pytest.raises(AudioDecodeError, match="WAV"):
        decode_bytes(full[:n_bytes], "wav")


def test_garbage_after_riff_wave_magic_raises_decode_error():
    data = b"RIFF\xff\xff\x00\x00WAVE" + bytes(range(256)) * 8
    with pytest.raises(AudioDecodeError):
        decode_bytes(data, "wav")


# ---------------------------------------------------------------------------
# constraint errors: AudioConstraintError naming the property


def test_stereo_wav_raises_constraint_error_naming_channels():
    stereo = np.stack([int16_signal(seconds(3.0)), int16_signal(seconds(3.0), 1)], axis=1)
    for data in (library_wav(stereo.reshape(-1), channels=2), wav_with_soundfile(stereo)):
        with pytest.raises(AudioConstraintError, match=r"channels=2 must be 1"):
            decode_bytes(data, "wav")


@pytest.mark.parametrize("subtype, bits", [
    ("PCM_U8", "8-bit"), ("PCM_24", "24-bit"), ("PCM_32", "32-bit"),
    ("FLOAT", "float"), ("DOUBLE", "double"), ("ULAW", "mu-law"),
])
def test_non_16_bit_wav_raises_constraint_error_naming_the_format(subtype, bits):
    data = wav_with_soundfile(np.zeros(seconds(3.0)), subtype=subtype)
    with pytest.raises(AudioConstraintError, match=rf"sample format={subtype} must be PCM_16"):
        decode_bytes(data, "wav")


def test_8_bit_wav_written_by_the_standard_library_is_rejected():
    data = encode_wav(np.full(seconds(3.0), 128, dtype=np.uint8), SR, sample_width=1)
    with pytest.raises(AudioConstraintError, match="PCM_16"):
        decode_bytes(data, "wav")


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_wav_header_rate_other_than_16k_raises_constraint_error(rate):
    data = library_wav(int16_signal(rate * 4), rate=rate)
    with pytest.raises(AudioConstraintError, match=rf"sample rate={rate} must be 16000"):
        decode_bytes(data, "wav")


def test_wav_constraint_errors_are_not_decode_errors():
    data = library_wav(int16_signal(44100 * 4), rate=44100)
    with pytest.raises(AudioError) as info:
        decode_bytes(data, "wav")
    assert not isinstance(info.value, AudioDecodeError)


@pytest.mark.parametrize("n_bytes", [1, 3, 2 * seconds(4.0) + 1])
def test_odd_pcm_length_raises_constraint_error(n_bytes):
    with pytest.raises(AudioConstraintError, match=rf"length={n_bytes} bytes must be even"):
        decode_bytes(b"\x01" * n_bytes, "pcm")


@pytest.mark.parametrize("fmt", ["wav", "pcm"])
@pytest.mark.parametrize("n, ok", [
    (seconds(3.0) - 1, False),
    (seconds(3.0), True),
    (seconds(20.0), True),
    (seconds(20.0) + 1, False),
    (seconds(0.5), False),
    (seconds(25.0), False),
])
def test_duration_boundaries_3_and_20_seconds_are_inclusive(fmt, n, ok):
    pcm = int16_signal(n, seed=7)
    data = library_wav(pcm) if fmt == "wav" else pcm.astype("<i2").tobytes()
    if ok:
        assert len(decode_bytes(data, fmt)) == n
    else:
        with pytest.raises(AudioConstraintError, match="duration"):
            decode_bytes(data, fmt)


def test_too_short_and_too_long_messages_say_which_rule():
    with pytest.raises(AudioConstraintError, match="at least 3.0 s"):
        decode_bytes(b"\x00\x00" * seconds(1.0), "pcm")
    with pytest.raises(AudioConstraintError, match="at most 20.0 s"):
        decode_bytes(b"\x00\x00" * seconds(21.0), "pcm")


def test_empty_pcm_is_too_short_not_a_crash():
    with pytest.raises(AudioConstraintError, match="duration"):
        decode_bytes(b"", "pcm")


def test_custom_duration_range_is_applied():
    data = b"\x00\x00" * seconds(1.0)
    assert len(decode_bytes(data, "pcm", min_duration=0.5, max_duration=1.0)) == seconds(1.0)
    with pytest.raises(AudioConstraintError):
        decode_bytes(data, "pcm", min_duration=1.5, max_duration=2.0)


def test_check_duration_alone():
    check_duration(np.zeros(seconds(3.0)))
    with pytest.raises(AudioConstraintError):
        check_duration(np.zeros(seconds(3.0) - 1))
    check_duration(np.zeros(8000), sample_rate=8000, min_duration=1.0, max_duration=1.0)


# ---------------------------------------------------------------------------
# argument errors: ParameterError naming the argument


@pytest.mark.parametrize("fmt", ["mp3", "flac", "", "wave", "raw", None, 1, b"wav"])
def test_unsupported_fmt_raises_parameter_error_naming_fmt(fmt):
    pcm = int16_signal(seconds(3.0))
    with pytest.raises(ParameterError, match="fmt="):
        decode_bytes(library_wav(pcm), fmt)


@pytest.mark.parametrize("rate", [8000, 44100, 16001, 0, -16000])
def test_sample_rate_other_than_16000_raises_parameter_error(rate):
    pcm = int16_signal(seconds(3.0))
    with pytest.raises(ParameterError, match=rf"sample_rate={rate} must be 16000"):
        decode_bytes(pcm.tobytes(), "pcm", sample_rate=rate)


@pytest.mark.parametrize("rate", [16000.0, "16000", True, None])
def test_sample_rate_must_be_an_integer(rate):
    with pytest.raises(ParameterError, match="sample_rate"):
        decode_bytes(b"\x00\x00" * seconds(3.0), "pcm", sample_rate=rate)


def test_sample_rate_is_checked_before_the_audio():
    # A WAV at 44.1 kHz with sample_rate=44100 is a parameter error, not an audio one.
    data = library_wav(int16_signal(44100 * 4), rate=44100)
    with pytest.raises(ParameterError, match="sample_rate=44100"):
        decode_bytes(data, "wav", sample_rate=44100)


@pytest.mark.parametrize("data", ["RIFF....WAVE", 12345, None, [0, 1, 2]])
def test_data_that_is_not_bytes_raises_parameter_error(data):
    with pytest.raises(ParameterError, match="data must be bytes"):
        decode_bytes(data, "pcm")


def test_wave_format_extensible_header_of_16_bit_mono_is_decoded():
    # CONTRACT.md rule 4: only bytes that are not a *parseable RIFF/WAVE file*
    # are a decode error. WAVE_FORMAT_EXTENSIBLE is a valid RIFF/WAVE header
    # (written by sox/ffmpeg/soundfile "WAVEX"); mono 16-bit 16 kHz meets every
    # constraint.
    pcm = int16_signal(seconds(3.0), seed=8)
    data = wav_with_soundfile(pcm, fmt="WAVEX")
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    # the fmt chunk's format tag is 0xFFFE (WAVE_FORMAT_EXTENSIBLE)
    assert struct.unpack("<H", data[20:22])[0] == 0xFFFE
    out = decode_bytes(data, "wav")
    np.testing.assert_array_equal(out, pcm / 32768.0)


@pytest.mark.parametrize("channels, subtype, match", [
    (2, "PCM_16", "channels=2"), (1, "PCM_24", "PCM_24"), (1, "FLOAT", "FLOAT")])
def test_wave_format_extensible_breaking_a_constraint_is_a_constraint_error(
        channels, subtype, match):
    data = wav_with_soundfile(np.zeros((seconds(3.0), channels)), subtype=subtype, fmt="WAVEX")
    with pytest.raises(AudioConstraintError, match=match):
        decode_bytes(data, "wav")


# ---------------------------------------------------------------------------
# check_waveform


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_waveform_rejects_non_finite(bad):
    x = np.zeros(1000, dtype=np.float32)
    x[500] = bad
    with pytest.raises(AudioError, match="NaN or infinite"):
        check_waveform(x)


@pytest.mark.parametrize("shape", [(100, 2), (2, 100), (1, 100), (10, 10, 10)])
def test_check_waveform_rejects_multi_dimensional(shape):
    with pytest.raises(AudioError, match="1-D"):
        check_waveform(np.zeros(shape))


def test_check_waveform_rejects_scalar():
    with pytest.raises(AudioError, match="1-D"):
        check_waveform(np.float32(0.5))


def test_check_waveform_rejects_empty():
    with pytest.raises(AudioError, match="empty"):
        check_waveform(np.zeros(0))


def test_check_waveform_rejects_too_long_and_accepts_the_limit():
    check_waveform(np.zeros(2 * SR), max_duration=2.0)
    with pytest.raises(AudioError, match="max_duration"):
        check_waveform(np.zeros(2 * SR + 1), max_duration=2.0)


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([1 + 1j, 2j]),
                                 np.array([True, False]), [[1, 2], [3]]])
def test_check_waveform_rejects_non_numeric(bad):
    with pytest.raises(AudioError):
        check_waveform(bad)


def test_check_waveform_scales_int16_to_unit_range():
    x = np.array([-32768, -16384, 0, 16384, 32767], dtype=np.int16)
    out = check_waveform(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, x / 32768.0)


def test_check_waveform_scales_int32_by_its_own_range():
    x = np.array([-2**31, 0, 2**30], dtype=np.int32)
    np.testing.assert_allclose(check_waveform(x), [-1.0, 0.0, 0.5])


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 500),
                  elements=st.floats(-1, 1, allow_nan=False, width=32)))
def test_check_waveform_keeps_float_values_as_float32(x):
    out = check_waveform(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_check_waveform_accepts_a_plain_list():
    np.testing.assert_array_equal(check_waveform([0.0, 0.5, -0.5]), [0.0, 0.5, -0.5])


# ---------------------------------------------------------------------------
# load_file (corpus path)


def test_load_file_reads_flac_losslessly(tmp_path):
    pcm = int16_signal(seconds(1.0), seed=9)
    path = tmp_path / "a.flac"
    sf.write(path, pcm, SR, subtype="PCM_16")
    out = load_file(path)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, pcm / 32768.0)


def test_load_file_reads_wav(tmp_path):
    pcm = int16_signal(seconds(0.5), seed=10)
    path = tmp_path / "a.wav"
    path.write_bytes(library_wav(pcm))
    np.testing.assert_array_equal(load_file(str(path)), pcm / 32768.0)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_load_file_resamples_other_rates_keeping_duration_and_pitch(tmp_path, rate):
    t = np.arange(rate) / rate  # 1 s
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    path = tmp_path / f"tone{rate}.flac"
    sf.write(path, tone, rate, subtype="PCM_16")
    out = load_file(path)
    assert abs(len(out) - SAMPLE_RATE) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(out)
    assert peak_hz == pytest.approx(440.0, abs=2.0)
    # amplitude is preserved away from the edges
    assert np.max(np.abs(out[2000:-2000])) == pytest.approx(0.5, rel=0.02)


def test_load_file_averages_channels(tmp_path):
    left = int16_signal(8000, seed=11).astype(np.float64) / 32768.0
    right = int16_signal(8000, seed=12).astype(np.float64) / 32768.0
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    np.testing.assert_allclose(load_file(path), (left + right) / 2, atol=1e-6)


def test_load_file_missing_or_broken_file_raises_decode_error(tmp_path):
    with pytest.raises(AudioDecodeError, match="cannot read"):
        load_file(tmp_path / "missing.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AudioDecodeError, match="broken.wav"):
        load_file(broken)


# ---------------------------------------------------------------------------
# encode_wav: the one WAV writer


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 2000),
                  elements=st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)))
def test_encode_wav_quantises_floats_as_decode_reads_them(x):
    expected = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
    data = encode_wav(x)
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    np.testing.assert_array_equal(decode_wav(data), expected.astype(np.float32) / 32768.0)


@pytest.mark.parametrize("width, subtype, dtype, scale", [
    (1, "PCM_U8", "uint8", None), (2, "PCM_16", "int16", 32767), (4, "PCM_32", "int32", 2**31 - 1),
])
@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("rate", [8000, 44100])
def test_encode_wav_writes_every_layout_soundfile_reads_back(width, subtype, dtype, scale,
                                                             channels, rate):
    x = np.linspace(-1.0, 1.0, 301)
    X = np.stack([x * (k + 1) / channels for k in range(channels)], axis=1)
    data = encode_wav(X if channels > 1 else x, rate, sample_width=width)
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        rate, channels, subtype, 301)
    if scale is not None:  # soundfile reads 8-bit WAV as signed: compare the others
        back, _ = sf.read(io.BytesIO(data), dtype=dtype, always_2d=True)
        np.testing.assert_array_equal(back, np.round(X * scale))


def test_encode_wav_writes_integers_unchanged_and_refuses_what_does_not_fit():
    pcm = np.array([-32768, -1, 0, 1, 32767])
    back, _ = sf.read(io.BytesIO(encode_wav(pcm)), dtype="int16")
    np.testing.assert_array_equal(back, pcm)
    with pytest.raises(ParameterError, match=r"\[-32768, 32767\]"):
        encode_wav(np.array([0, 40000]))
    with pytest.raises(ParameterError, match=r"\[0, 255\]"):
        encode_wav(np.array([-1, 0]), sample_width=1)


@pytest.mark.parametrize("kwargs, name", [
    (dict(samples=np.zeros((2, 3, 4))), "samples"),
    (dict(samples=[0.0, np.nan]), "samples"),
    (dict(samples=np.zeros(10), sample_rate=0), "sample_rate=0"),
    (dict(samples=np.zeros(10), sample_rate=16000.0), "sample_rate=16000.0"),
    (dict(samples=np.zeros(10), sample_width=3), "sample_width=3"),
    (dict(samples=np.zeros(10), sample_width=True), "sample_width=True"),
])
def test_encode_wav_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ParameterError, match=re.escape(name)):
        encode_wav(**kwargs)
