"""Tests of vpcore.quality: net speech, the SNR estimate, clipping and advice."""

import functools

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vpcore.errors import AudioError, ParameterError, TooLittleSpeechError
from vpcore.features import FeatureOptions, extract_features
from vpcore.quality import (
    FULL_SCALE,
    QualityThresholds,
    TakeQuality,
    advice,
    assess,
    clipping_ratio,
    frame_log_energies,
    net_speech_seconds,
    snr_estimate,
)
from vpcore.synth import SyntheticSpeaker, synthesize
from vpcore.vad import VadOptions

SR = 16000


@functools.lru_cache(maxsize=64)
def speech(speaker, utterance, seconds=4.0):
    """Clean synthetic speech (pauses hold a floor 40-50 dB below the vowels)."""
    return synthesize(SyntheticSpeaker.from_seed(speaker), seconds, random_state=utterance)


def white(n, seed):
    return np.random.default_rng(seed).standard_normal(n).astype(np.float32)


def loud_frame_power(samples):
    """Power per sample of the clean signal's loud frames (95th percentile of frame powers):
    the "peak speech power" an SNR is defined against, as NIST's stnr does."""
    return float(np.exp(np.percentile(frame_log_energies(samples), 95.0)) / 400 / 32768.0**2)


# ---------------------------------------------------------------------------
# net speech is what the front end's VAD keeps


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 200), st.integers(0, 50), st.floats(3.0, 8.0))
def test_net_speech_is_the_frames_the_front_end_keeps(speaker, utterance, seconds):
    x = speech(speaker, utterance, seconds)
    kept = len(extract_features(x))
    assert net_speech_seconds(x) == pytest.approx(kept * 0.010)
    assert assess(x).speech_seconds == pytest.approx(kept * 0.010)


def test_net_speech_follows_the_options_vad():
    x = speech(1, 1)
    strict = FeatureOptions(vad=VadOptions(energy_threshold=9.0))
    assert net_speech_seconds(x, strict) == pytest.approx(len(extract_features(x, strict)) * 0.01)
    assert net_speech_seconds(x, strict) < net_speech_seconds(x)
    no_vad = FeatureOptions(vad=None)
    assert net_speech_seconds(x, no_vad) == pytest.approx(len(frame_log_energies(x)) * 0.01)


def test_silence_has_no_speech_and_no_refusal():
    """Where the VAD refuses (too little speech), the measure still answers."""
    silence = np.zeros(3 * SR, dtype=np.float32)
    with pytest.raises(TooLittleSpeechError):
        extract_features(silence)
    assert net_speech_seconds(silence) == 0.0
    quality = assess(silence)
    assert quality.speech_seconds == 0.0 and quality.min_speech_seconds == pytest.approx(1.0)


def test_a_short_burst_gives_its_own_length_of_speech():
    x = np.zeros(4 * SR, dtype=np.float32)
    x[SR: SR + SR // 2] = speech(2, 0, 0.5)  # 0.5 s of speech in 4 s of silence
    assert 0.3 <= net_speech_seconds(x) <= 0.7


# ---------------------------------------------------------------------------
# the SNR estimate


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 200), st.integers(0, 50), st.integers(0, 2**16),
       st.floats(-4.0, np.log10(0.05)), st.floats(np.log10(1.41), 1.0))
def test_snr_estimate_falls_as_noise_is_added(speaker, utterance, noise_seed, log_sigma, log_ratio):
    """More of the same noise (3 dB or more) never raises the estimate (0.05 dB of slack for the
    speech / noise cross-terms of a single realisation)."""
    x = speech(speaker, utterance)
    noise = white(len(x), noise_seed)
    sigma = 10.0**log_sigma
    less = snr_estimate(x + sigma * noise)
    more = snr_estimate(x + sigma * 10.0**log_ratio * noise)
    assert more <= less + 0.05


@settings(max_examples=15, deadline=None)
@example(156, 34, 30.0)  # once seen 4.1 dB low: the percentile estimate flattens above 20 dB
@given(st.integers(0, 200), st.integers(0, 50), st.sampled_from([0.0, 5.0, 10.0, 20.0, 30.0]))
def test_snr_estimate_is_close_to_the_snr_of_a_known_mixture(speaker, utterance, snr_db):
    x = speech(speaker, utterance)
    sigma = np.sqrt(loud_frame_power(x) / 10.0 ** (snr_db / 10.0))
    mixture = x + np.float32(sigma) * white(len(x), speaker)
    # within 2 dB where the advice matters (0-20 dB); above that, within 5 dB
    assert snr_estimate(mixture) == pytest.approx(snr_db, abs=2.0 if snr_db <= 20 else 5.0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 200), st.floats(0.05, 1.9))
def test_snr_estimate_does_not_depend_on_the_level(speaker, gain):
    x = speech(speaker, 3) + 0.01 * white(4 * SR, speaker)
    assert snr_estimate(np.float32(gain) * x) == pytest.approx(snr_estimate(x), abs=1e-3)


def test_snr_estimate_of_noise_alone_is_low_and_of_clean_speech_high():
    assert snr_estimate(0.1 * white(4 * SR, 0)) < 0.0
    assert snr_estimate(speech(0, 0)) > 35.0  # the synthesiser's floor is 40-50 dB down
    assert snr_estimate(np.full(SR, 0.25, dtype=np.float32)) == pytest.approx(-100.0)


def test_snr_estimate_is_deterministic():
    x = speech(4, 4) + 0.003 * white(4 * SR, 4)
    assert snr_estimate(x) == snr_estimate(x.copy())


# ---------------------------------------------------------------------------
# clipping


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 5000), st.integers(0, 2**16))
def test_clipping_ratio_counts_full_scale_samples(n, k, seed):
    k = min(k, n)
    x = np.random.default_rng(seed).uniform(-0.99, 0.99, n).astype(np.float32)
    x[:k] = np.where(np.arange(k) % 2, FULL_SCALE, -1.0)
    assert clipping_ratio(x) == pytest.approx(k / n)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 200), st.floats(1.0, 8.0), st.floats(1.01, 2.0))
def test_clipping_ratio_grows_with_the_gain_of_a_clipped_take(speaker, gain, more):
    x = speech(speaker, 0)

    def clipped(g):  # a microphone chain that saturates at full scale
        return np.clip(np.float32(g) * x, -1.0, FULL_SCALE).astype(np.float32)

    assert 0.0 <= clipping_ratio(clipped(gain)) <= clipping_ratio(clipped(gain * more)) <= 1.0


def test_unclipped_speech_has_no_clipping():
    assert clipping_ratio(speech(0, 0)) == 0.0  # peak 0.5
    assert clipping_ratio(np.clip(4 * speech(0, 0), -1, FULL_SCALE)) > 0.01


def test_clipping_ratio_level():
    x = np.array([0.1, -0.5, 0.6, 0.9], dtype=np.float32)
    assert clipping_ratio(x, level=0.5) == 0.75


# ---------------------------------------------------------------------------
# assess and advice


def test_assess_agrees_with_the_single_measures():
    x = np.clip(speech(5, 2, 6.0) * 3 + 0.01 * white(6 * SR, 5), -1.0, FULL_SCALE)
    q = assess(x)
    assert q.duration == pytest.approx(6.0)
    assert q.speech_seconds == pytest.approx(net_speech_seconds(x))
    assert q.snr_db == pytest.approx(snr_estimate(x))
    assert q.clipping_ratio == pytest.approx(clipping_ratio(x))
    assert set(q.to_dict()) == {"duration", "speech_seconds", "min_speech_seconds", "snr_db",
                                "clipping_ratio"}


def quality(speech_seconds=5.0, snr_db=30.0, clip=0.0):
    return TakeQuality(duration=6.0, speech_seconds=speech_seconds, min_speech_seconds=1.0,
                       snr_db=snr_db, clipping_ratio=clip)


def test_a_good_take_gets_no_advice():
    assert advice(quality()) == []
    assert advice(assess(speech(0, 0, 6.0))) == []


def test_short_speech_advice_says_how_much_more():
    (code, message), = advice(quality(speech_seconds=1.8))
    assert code == "speech" and "speak for at least 1.2 more seconds" in message


def test_refused_for_too_little_speech():
    codes = advice(quality(speech_seconds=0.4), refused="speech")
    assert codes[0][0] == "speech" and "2.6 more seconds" in codes[0][1]
    (code, message), = advice(quality(speech_seconds=0.0), refused="speech")
    assert "no speech was heard" in message


def test_noise_and_clipping_advice():
    codes = [c for c, _ in advice(quality(snr_db=6.0, clip=0.01))]
    assert codes == ["noise", "clipping"]
    assert "move away from the microphone" in advice(quality(clip=0.01))[0][1]
    assert advice(quality(snr_db=6.0), QualityThresholds(min_snr_db=5.0)) == []


def test_refusal_comes_first():
    codes = [c for c, _ in advice(quality(speech_seconds=2.0), refused="consistency")]
    assert codes == ["consistency", "speech"]


def test_noisy_speech_is_reported_noisy():
    x = speech(3, 3, 6.0)
    noisy = x + np.float32(np.sqrt(loud_frame_power(x) / 10.0**0.5)) * white(6 * SR, 3)  # 5 dB
    assert "noise" in [c for c, _ in advice(assess(noisy))]


# ---------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("call, name", [
    (lambda: snr_estimate(speech(0, 0), noise_percentile=-1), "noise_percentile"),
    (lambda: snr_estimate(speech(0, 0), noise_percentile=60, speech_percentile=50),
     "noise_percentile=60.0 must be below speech_percentile=50.0"),
    (lambda: snr_estimate(speech(0, 0), speech_percentile=float("nan")), "speech_percentile"),
    (lambda: clipping_ratio(speech(0, 0), level=0.0), "level=0.0"),
    (lambda: clipping_ratio(speech(0, 0), level=1.5), "level=1.5"),
    (lambda: net_speech_seconds(speech(0, 0), options={"vad": None}), "options="),
    (lambda: advice("good"), "quality="),
    (lambda: advice(quality(), refused="loud"), "refused='loud'"),
    (lambda: advice(quality(), thresholds=QualityThresholds(max_clipping_ratio=2.0)),
     "max_clipping_ratio=2.0"),
])
def test_bad_parameters_are_named(call, name):
    with pytest.raises(ParameterError, match=name.replace("(", r"\(").replace(".", r"\.")):
        call()


@pytest.mark.parametrize("bad", [np.array([0.1, np.nan] * SR), np.zeros((2, SR)), []])
def test_bad_waveforms_are_audio_errors(bad):
    for measure in (net_speech_seconds, snr_estimate, clipping_ratio, assess):
        with pytest.raises(AudioError):
            measure(bad)


def test_shorter_than_a_frame():
    with pytest.raises(TooLittleSpeechError, match="shorter than one frame"):
        snr_estimate(np.zeros(100, dtype=np.float32))
