"""Tests for vpcore.synth: seeded synthetic voices that a classical system can tell apart."""

import dataclasses
import io
import re
import wave

import librosa
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vpcore.errors import ParameterError
from vpcore.synth import (
    SAMPLE_RATES,
    SyntheticSpeaker,
    synthesize,
    synthesize_corpus,
    to_pcm_bytes,
    to_wav_bytes,
)

FS = 16000


# --------------------------------------------------------------------------- references


def frame_energies_db(samples, sample_rate, seconds=0.025):
    """Energy in dB of consecutive non-overlapping frames."""
    n = int(seconds * sample_rate)
    frames = samples[: len(samples) // n * n].reshape(-1, n).astype(np.float64)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def pause_fraction(samples, sample_rate):
    """Fraction of 25 ms frames 30 dB or more below the loudest frames (95th percentile)."""
    energies = frame_energies_db(samples, sample_rate)
    return float(np.mean(energies < np.percentile(energies, 95) - 30.0))


def median_pitch(samples, sample_rate):
    """Median pitch (Hz) of the loud frames, by centre-clipped autocorrelation (Sondhi 1968)."""
    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    frames = librosa.util.frame(
        samples.astype(np.float64), frame_length=frame, hop_length=hop, axis=0
    )
    energy = np.mean(frames**2, axis=1)
    frames = frames[energy > 0.3 * np.percentile(energy, 90)]
    frames = frames - frames.mean(axis=1, keepdims=True)
    clip = 0.3 * np.abs(frames).max(axis=1, keepdims=True)
    frames = np.where(frames > clip, frames - clip, np.where(frames < -clip, frames + clip, 0.0))
    power = np.abs(np.fft.rfft(frames, 2 * frame, axis=1)) ** 2
    autocorr = np.fft.irfft(power, axis=1)[:, :frame]
    autocorr /= autocorr[:, :1] + 1e-12
    low, high = int(sample_rate / 400), int(sample_rate / 60)
    lags = low + np.argmax(autocorr[:, low:high], axis=1)
    periodic = autocorr[np.arange(len(lags)), lags] > 0.4
    assert periodic.sum() >= 10, "too few periodic frames to estimate a pitch"
    return float(np.median(sample_rate / lags[periodic]))


def mean_mfcc(samples, sample_rate=FS):
    """Mean of 20 MFCCs over the frames louder than the median frame, shape (20,)."""
    mfcc = librosa.feature.mfcc(
        y=samples, sr=sample_rate, n_mfcc=20, n_fft=512, win_length=400, hop_length=160,
        n_mels=40, fmin=20.0, fmax=7600.0,
    )
    rms = librosa.feature.rms(y=samples, frame_length=512, hop_length=160)[0][: mfcc.shape[1]]
    return mfcc[:, rms > np.median(rms)].mean(axis=1)


@pytest.fixture(scope="module")
def corpus():
    return synthesize_corpus(6, 4, duration=(3.0, 3.5), random_state=7)


# --------------------------------------------------------------------------- determinism


def test_same_arguments_give_identical_bytes():
    speaker = SyntheticSpeaker.from_seed(3)
    first = synthesize(speaker, 2.0, random_state=11)
    second = synthesize(speaker, 2.0, random_state=11)
    assert first.tobytes() == second.tobytes()
    seeded = synthesize(speaker, 2.0, random_state=np.random.default_rng(11))
    assert seeded.tobytes() == first.tobytes()


def test_utterance_seed_changes_the_content():
    speaker = SyntheticSpeaker.from_seed(3)
    first = synthesize(speaker, 3.0, random_state=1)
    second = synthesize(speaker, 3.0, random_state=2)
    # Another sequence of syllables and pauses, not just other noise samples.
    envelope_1 = frame_energies_db(first, FS)
    envelope_2 = frame_energies_db(second, FS)
    assert np.corrcoef(envelope_1, envelope_2)[0, 1] < 0.8


def test_from_seed_is_deterministic():
    assert SyntheticSpeaker.from_seed(5) == SyntheticSpeaker.from_seed(5)
    assert SyntheticSpeaker.from_seed(5, random_state=9) == SyntheticSpeaker.from_seed(5, 9)
    assert SyntheticSpeaker.from_seed(5) != SyntheticSpeaker.from_seed(6)
    assert SyntheticSpeaker.from_seed(5) != SyntheticSpeaker.from_seed(5, random_state=1)
    assert SyntheticSpeaker.from_seed(5).speaker_id == 5


def test_from_seed_voices_spread_over_the_ranges():
    speakers = [SyntheticSpeaker.from_seed(i) for i in range(60)]
    f0 = np.array([s.f0 for s in speakers])
    scale = np.array([s.formant_scale for s in speakers])
    assert f0.min() < 110.0 and f0.max() > 200.0
    assert scale.min() < 0.95 and scale.max() > 1.1
    # Larger speakers (longer vocal tract) tend to have lower voices.
    assert np.corrcoef(np.log(f0), scale)[0, 1] > 0.5
    # No two voices alike: every pair differs by > 3 % in pitch or tract length.
    ratio_f0 = np.abs(np.log(f0[:, None] / f0[None]))
    ratio_scale = np.abs(np.log(scale[:, None] / scale[None]))
    apart = (ratio_f0 > 0.03) | (ratio_scale > 0.03) | np.eye(len(f0), dtype=bool)
    assert apart.mean() > 0.9


def test_speaker_is_frozen():
    speaker = SyntheticSpeaker.from_seed(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        speaker.f0 = 100.0


# --------------------------------------------------------------------------- output properties


@settings(max_examples=20, deadline=None)
@given(
    duration=st.floats(1.5, 8.0),
    speaker_id=st.integers(0, 10**6),
    random_state=st.integers(0, 2**32),
)
def test_output_is_speech_like(duration, speaker_id, random_state):
    samples = synthesize(SyntheticSpeaker.from_seed(speaker_id), duration, FS, random_state)
    assert samples.dtype == np.float32
    assert samples.shape == (round(duration * FS),)
    assert np.all(np.isfinite(samples))
    assert np.max(np.abs(samples)) == pytest.approx(0.5, abs=1e-6)
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 0.02
    assert 0.05 <= pause_fraction(samples, FS) <= 0.40


@settings(max_examples=25, deadline=None)
@given(
    duration=st.floats(0.001, 2.0),
    sample_rate=st.sampled_from(SAMPLE_RATES),
    speaker_id=st.integers(0, 1000),
)
def test_any_length_and_rate_gives_bounded_audio(duration, sample_rate, speaker_id):
    samples = synthesize(SyntheticSpeaker.from_seed(speaker_id), duration, sample_rate, 3)
    assert samples.dtype == np.float32
    assert samples.shape == (round(duration * sample_rate),)
    assert np.all(np.isfinite(samples))
    assert np.max(np.abs(samples)) <= 1.0


def test_pauses_are_a_low_noise_floor():
    samples = synthesize(SyntheticSpeaker.from_seed(2), 6.0, random_state=4)
    energies = frame_energies_db(samples, FS)
    loud = np.percentile(energies, 95)
    quiet = energies[energies < loud - 30.0]
    assert np.all(np.isfinite(quiet))  # noise, not digital silence
    assert -60.0 < np.median(quiet) - loud < -38.0


@pytest.mark.parametrize("sample_rate", [8000, 48000])
def test_other_sample_rates_keep_the_voice(sample_rate):
    speaker = dataclasses.replace(SyntheticSpeaker.from_seed(4), f0=150.0)
    samples = synthesize(speaker, 3.0, sample_rate, random_state=5)
    assert median_pitch(samples, sample_rate) == pytest.approx(150.0, rel=0.15)
    assert 0.05 <= pause_fraction(samples, sample_rate) <= 0.40


# --------------------------------------------------------------------------- voice identity


@pytest.mark.parametrize("f0", [80.0, 120.0, 200.0, 300.0])
def test_median_pitch_follows_the_speaker_f0(f0):
    speaker = dataclasses.replace(SyntheticSpeaker.from_seed(int(f0)), f0=f0)
    samples = synthesize(speaker, 3.0, random_state=int(f0))
    assert median_pitch(samples, FS) == pytest.approx(f0, rel=0.15)


def test_from_seed_pitch_is_the_drawn_f0():
    for speaker_id in range(4):
        speaker = SyntheticSpeaker.from_seed(speaker_id)
        samples = synthesize(speaker, 3.0, random_state=speaker_id)
        assert median_pitch(samples, FS) == pytest.approx(speaker.f0, rel=0.15)


def test_pitch_tells_apart_f0_differing_by_40_percent():
    low = SyntheticSpeaker.from_seed(8)
    high = dataclasses.replace(low, f0=low.f0 * 1.4)
    low_pitch = [median_pitch(synthesize(low, 2.5, random_state=s), FS) for s in range(3)]
    high_pitch = [median_pitch(synthesize(high, 2.5, random_state=s), FS) for s in range(3, 6)]
    assert max(low_pitch) * 1.2 < min(high_pitch)


def test_same_speaker_utterances_are_closer_than_other_speakers(corpus):
    labels = np.array([label for label, _, _ in corpus])
    embeddings = np.array([mean_mfcc(samples) for _, _, samples in corpus])
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    same = labels[:, None] == labels[None]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    within = distances[same & off_diagonal]
    between = distances[~same]
    assert within.min() > 0.0  # utterances of a voice are not copies
    assert within.mean() < 0.5 * between.mean()
    np.fill_diagonal(distances, np.inf)
    nearest = labels[np.argmin(distances, axis=1)]
    assert np.mean(nearest == labels) >= 0.9


# --------------------------------------------------------------------------- corpus


def test_corpus_layout_and_durations(corpus):
    assert len(corpus) == 24
    labels = [label for label, _, _ in corpus]
    assert labels == [f"spk{i:03d}" for i in range(6) for _ in range(4)]
    ids = [utt for _, utt, _ in corpus]
    assert len(set(ids)) == len(ids)
    assert all(utt.startswith(label) for label, utt, _ in corpus)
    lengths = np.array([len(samples) for _, _, samples in corpus]) / FS
    assert lengths.min() >= 3.0 - 1 / FS and lengths.max() <= 3.5 + 1 / FS
    assert len(set(np.round(lengths, 4))) > 1
    assert all(samples.dtype == np.float32 for _, _, samples in corpus)


def test_corpus_is_deterministic_in_its_seed():
    first = synthesize_corpus(2, 2, duration=1.0, random_state=3)
    second = synthesize_corpus(2, 2, duration=1.0, random_state=3)
    other = synthesize_corpus(2, 2, duration=1.0, random_state=4)
    for (l1, u1, x1), (l2, u2, x2), (_, _, x3) in zip(first, second, other):
        assert (l1, u1) == (l2, u2)
        assert x1.tobytes() == x2.tobytes()
        assert x1.tobytes() != x3.tobytes()
    assert first[0][2].tobytes() != first[1][2].tobytes()


def test_corpus_speakers_are_from_seed_voices():
    (_, _, samples), = synthesize_corpus(1, 1, duration=3.0, random_state=2)
    speaker = SyntheticSpeaker.from_seed(0, random_state=2)
    assert median_pitch(samples, FS) == pytest.approx(speaker.f0, rel=0.15)


# --------------------------------------------------------------------------- serialisation


def test_wav_bytes_parse_back_to_the_same_samples():
    samples = synthesize(SyntheticSpeaker.from_seed(1), 1.0, random_state=0)
    expected = np.frombuffer(to_pcm_bytes(samples), dtype="<i2")
    data = to_wav_bytes(samples, FS)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, FS)
        parsed = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(parsed, expected)
    decoded, rate = sf.read(io.BytesIO(data), dtype="int16")
    assert rate == FS
    np.testing.assert_array_equal(decoded, expected)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 200), elements=st.floats(-3.0, 3.0)))
def test_pcm_bytes_are_clipped_16_bit(samples):
    data = to_pcm_bytes(samples)
    assert len(data) == 2 * len(samples)
    pcm = np.frombuffer(data, dtype="<i2")
    assert np.all(np.abs(pcm.astype(np.int64) - np.clip(samples, -1, 1) * 32767) <= 0.5)


def test_pcm_clips_out_of_range_values():
    pcm = np.frombuffer(to_pcm_bytes([-2.0, -1.0, 0.0, 1.0, 2.0]), dtype="<i2")
    np.testing.assert_array_equal(pcm, [-32767, -32767, 0, 32767, 32767])


# --------------------------------------------------------------------------- bad arguments

_SPEAKER = SyntheticSpeaker(speaker_id=0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: synthesize(_SPEAKER, duration=0.0), "duration"),
        (lambda: synthesize(_SPEAKER, duration=-1.0), "duration"),
        (lambda: synthesize(_SPEAKER, duration=601.0), "duration"),
        (lambda: synthesize(_SPEAKER, duration=float("nan")), "duration"),
        (lambda: synthesize(_SPEAKER, duration=1e-6), "duration"),
        (lambda: synthesize(_SPEAKER, sample_rate=12345), "sample_rate"),
        (lambda: synthesize(_SPEAKER, sample_rate=16000.0), "sample_rate"),
        (lambda: synthesize(_SPEAKER, random_state=-1), "random_state"),
        (lambda: synthesize("spk000"), "speaker"),
        (lambda: SyntheticSpeaker(0, f0=50.0), "f0"),
        (lambda: SyntheticSpeaker(0, f0=301.0), "f0"),
        (lambda: SyntheticSpeaker(0, formant_scale=2.0), "formant_scale"),
        (lambda: SyntheticSpeaker(0, spectral_tilt=3.0), "spectral_tilt"),
        (lambda: SyntheticSpeaker(0, breathiness=-0.1), "breathiness"),
        (lambda: SyntheticSpeaker(0, jitter=0.5), "jitter"),
        (lambda: SyntheticSpeaker(0, bandwidth_scale=0.0), "bandwidth_scale"),
        (lambda: SyntheticSpeaker(0, formant_offsets=(0.0, 0.0)), "formant_offsets"),
        (lambda: SyntheticSpeaker(0, formant_offsets=(0.0, 0.0, 0.5, 0.0, 0.0)),
         "formant_offsets[2]"),
        (lambda: SyntheticSpeaker(-1), "speaker_id"),
        (lambda: SyntheticSpeaker.from_seed(-1), "speaker_id"),
        (lambda: SyntheticSpeaker.from_seed(1.5), "speaker_id"),
        (lambda: SyntheticSpeaker.from_seed(1, random_state=-3), "random_state"),
        (lambda: synthesize_corpus(0, 1), "n_speakers"),
        (lambda: synthesize_corpus(1, 0), "n_utterances"),
        (lambda: synthesize_corpus(1, 1, duration=(5.0, 3.0)), "duration"),
        (lambda: synthesize_corpus(1, 1, duration=(0.0, 3.0)), "duration[0]"),
        (lambda: synthesize_corpus(1, 1, duration=(1.0, 700.0)), "duration[1]"),
        (lambda: synthesize_corpus(1, 1, duration="long"), "duration"),
        (lambda: synthesize_corpus(1, 1, sample_rate=11025), "sample_rate"),
        (lambda: to_wav_bytes(np.zeros(10), sample_rate=12345), "sample_rate"),
        (lambda: to_wav_bytes(np.zeros((2, 10))), "samples"),
        (lambda: to_pcm_bytes([0.0, float("nan")]), "samples"),
    ],
)
def test_bad_arguments_raise_parameter_error_naming_the_parameter(call, name):
    with pytest.raises(ParameterError, match=re.escape(name)):
        call()
