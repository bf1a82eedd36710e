"""vpcore.speech: speech passes, noise, tones, hum and music do not."""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpcore.errors import NotSpeechError, TooLittleSpeechError
from vpcore.speech import THRESHOLDS, SpeechThresholds, check_speech, speech_cues
from vpcore.synth import SyntheticSpeaker, synthesize

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.speech_detector import (NON_SPEECH, degrade, non_speech,  # noqa: E402
                                        quantise)


def voice(speaker, utterance, seconds=5.0):
    return synthesize(SyntheticSpeaker.from_seed(speaker), duration=seconds,
                      random_state=utterance)


@pytest.mark.parametrize("kind", NON_SPEECH)
def test_generated_non_speech_is_refused(kind):
    for seed in range(10):
        with pytest.raises(NotSpeechError, match="must be"):
            check_speech(quantise(non_speech(kind, seed)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(speaker=st.integers(0, 10_000), utterance=st.integers(0, 1000),
       seconds=st.floats(3.0, 12.0))
def test_synthetic_speech_is_accepted_and_cues_are_in_range(speaker, utterance, seconds):
    cues = check_speech(voice(speaker, utterance, seconds))
    assert 0.0 <= cues.voiced <= 1.0 and 0.0 <= cues.pitch_glide <= 1.0
    assert cues.modulation >= THRESHOLDS.min_modulation
    assert cues.rhythm_regularity <= THRESHOLDS.max_rhythm_regularity


@pytest.mark.parametrize("condition", ["white_5db", "telephone", "reverb", "clipped"])
def test_degraded_synthetic_speech_is_accepted(condition):
    for utterance in range(3):
        x = voice(7, utterance).astype(np.float64)
        check_speech(quantise(degrade(x, condition, np.random.default_rng(utterance), [x])))


def test_the_message_names_the_cue_its_value_and_the_rule():
    noise = np.random.default_rng(0).standard_normal(16000 * 4) * 0.1
    with pytest.raises(NotSpeechError) as info:
        check_speech(noise)
    message = str(info.value)
    value = speech_cues(noise).modulation
    assert f"syllabic modulation={value:.3f} must be at least {THRESHOLDS.min_modulation}" in message
    assert "not speech" in message


def test_every_cue_can_refuse_on_its_own():
    x = voice(3, 1)
    cues = speech_cues(x)
    strict = {"min_modulation": cues.modulation + 0.01, "min_voiced": cues.voiced + 0.01,
              "min_pitch_glide": cues.pitch_glide + 0.01,
              "max_rhythm_regularity": cues.rhythm_regularity - 0.01}
    names = {"min_modulation": "syllabic modulation", "min_voiced": "voiced fraction",
             "min_pitch_glide": "pitch glide", "max_rhythm_regularity": "rhythm regularity"}
    for field, value in strict.items():
        with pytest.raises(NotSpeechError, match=names[field]):
            check_speech(x, thresholds=SpeechThresholds(**{field: value}))


def test_not_speech_is_a_too_little_speech_error():
    assert issubclass(NotSpeechError, TooLittleSpeechError)


def test_silence_and_very_short_input_give_zero_cues():
    assert speech_cues(np.zeros(16000 * 3, np.float32)).voiced == 0.0
    assert speech_cues(np.full(100, 0.1, np.float32)).modulation == 0.0


def test_level_does_not_change_the_decision():
    x = voice(11, 2)
    a, b = speech_cues(x), speech_cues(x * 0.05)
    assert a.modulation == pytest.approx(b.modulation, abs=1e-3)
    assert a.voiced == pytest.approx(b.voiced, abs=0.02)


def test_model_extract_refuses_noise(small_model):
    noise = np.random.default_rng(1).standard_normal(16000 * 5).astype(np.float32) * 0.3
    with pytest.raises(NotSpeechError):
        small_model.extract(noise)
    small_model.extract(voice(5, 0))  # speech still gives a take


@pytest.mark.needs_corpus
def test_corpus_utterances_are_accepted(data_dir):
    from vpcore.audio import load_file
    from vpcore.corpus import read_corpus

    utts = read_corpus(data_dir / "speechocean762" / "train")[::40]
    utts += read_corpus(data_dir / "librispeech-mini" / "train")[::25]
    for u in utts:
        check_speech(load_file(u.path))
