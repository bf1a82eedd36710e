"""Enrolment and verification refuse audio without speech, and an enrolment refuses the
same recording sent again (issue: noise enrolled as a voice matched any other noise)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from vpserver_support import ROOT, b64, wav_bytes

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.speech_detector import NON_SPEECH, non_speech  # noqa: E402


def signal_b64(samples):
    return b64(wav_bytes(np.asarray(samples)[: 16000 * 20]))


@pytest.mark.parametrize("kind", ["white", "brown", "pink", "tone", "hum", "chord",
                                  "chord_progression", "sweeps_repeated"])
def test_non_speech_enrolment_is_22124_and_stores_nothing(api, kind):
    result = api.enroll("noisy", 1, signal_b64(non_speech(kind, 0)))
    assert result["status"] == "22124", result
    assert "not speech" in result["message"]
    assert result["data"] == {"user_name": "noisy"}
    assert api.check("noisy")["data"]["enroll_num"] == 0


@pytest.mark.parametrize("kind", NON_SPEECH)
def test_non_speech_verification_is_22124(api, voices, kind):
    api.enroll_fully("alice", voices, 0)
    one = api.verify(signal_b64(non_speech(kind, 1)), user_name="alice")
    many = api.verify(signal_b64(non_speech(kind, 2)))
    assert one["status"] == many["status"] == "22124", (one, many)


def test_noise_cannot_be_enrolled_so_no_noise_matches_it(api):
    """The issue's scenario: three takes of white noise, then brown noise in 1-v-N."""
    for k in (1, 2, 3):
        assert api.enroll("noiseuser", k, signal_b64(non_speech("white", k)))["status"] == "22124"
    assert api.verify(signal_b64(non_speech("brown", 0)))["status"] == "22124"


def test_the_same_recording_as_take_2_is_refused_and_the_count_stays(api, voices):
    assert api.enroll("alice", 1, voices.wav(0, 0))["status"] == "00000"
    again = api.enroll("alice", 2, voices.wav(0, 0))
    assert again["status"] == "22124" and "copy of take 1" in again["message"]
    assert again["data"] == {"user_name": "alice"}
    assert api.check("alice")["data"]["enroll_num"] == 1
    quieter = b64(wav_bytes(voices.received(0, 0) * 0.5))
    assert api.enroll("alice", 2, quieter)["status"] == "22124"
    assert api.enroll("alice", 2, voices.wav(0, 1))["status"] == "00000"
    third = api.enroll("alice", 3, voices.wav(0, 1))
    assert third["status"] == "22124" and "copy of take 2" in third["message"]
    assert api.enroll("alice", 3, voices.wav(0, 2))["status"] == "00000"


def test_retrying_take_1_with_the_same_recording_is_still_idempotent(api, voices):
    """Re-sending take k replaces take k (CONTRACT.md): it is not compared with itself."""
    assert api.enroll("alice", 1, voices.wav(0, 0))["status"] == "00000"
    assert api.enroll("alice", 1, voices.wav(0, 0))["status"] == "00000"
    assert api.enroll("alice", 2, voices.wav(0, 1))["status"] == "00000"
    assert api.enroll("alice", 2, voices.wav(0, 1))["status"] == "00000"
