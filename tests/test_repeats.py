"""vpcore.repeats: the same recording again is refused, another take of the voice is not."""

import numpy as np
import pytest

from vpcore.errors import ParameterError, RepeatedTakeError
from vpcore.model import Take
from vpcore.repeats import COPY_DISTANCE, check_not_repeated, take_distance
from vpcore.synth import SyntheticSpeaker, synthesize


def voice(utterance, speaker=21):
    return synthesize(SyntheticSpeaker.from_seed(speaker), duration=4.0, random_state=utterance)


def test_the_same_recording_is_refused_naming_the_take(small_model):
    x = voice(0)
    takes = [small_model.extract(voice(1)), small_model.extract(x)]
    for copy in (x, 0.3 * x, np.concatenate([np.zeros(160, np.float32), x])):
        with pytest.raises(RepeatedTakeError, match="copy of take 2 of the same enrolment"):
            check_not_repeated(takes, small_model.extract(copy))


def test_other_utterances_of_the_same_voice_pass(small_model):
    takes = [small_model.extract(voice(u)) for u in range(4)]
    for i in range(1, 4):
        check_not_repeated(takes[:i], takes[i])
        assert all(take_distance(t, takes[i]) > 2 * COPY_DISTANCE for t in takes[:i])


def test_distance_is_zero_for_itself_symmetric_and_per_dimension():
    rng = np.random.default_rng(0)
    a, b = (Take(rng.standard_normal(40).astype(np.float32), 100, "fp") for _ in range(2))
    assert take_distance(a, a) == 0.0
    assert take_distance(a, b) == pytest.approx(take_distance(b, a))
    assert take_distance(a, b) == pytest.approx(1.0, abs=0.35)  # N(0, I) takes: about 1


def test_takes_of_different_sizes_cannot_be_compared():
    a = Take(np.zeros(4, np.float32), 1, "fp")
    b = Take(np.zeros(5, np.float32), 1, "fp")
    with pytest.raises(ParameterError, match="shapes"):
        take_distance(a, b)
