"""The robustness development protocol's conditions: deterministic, and each changes the probe."""

import numpy as np
import pytest

from benchmarks import robustness
from vpcore.synth import SyntheticSpeaker, synthesize


@pytest.fixture(scope="module")
def voices():
    return [synthesize(SyntheticSpeaker.from_seed(i), duration=3.0, random_state=i)
            for i in range(4)]


@pytest.mark.parametrize("condition", robustness.CONDITIONS)
def test_each_condition_is_deterministic_and_changes_the_probe(condition, voices):
    x, others = voices[0], voices[1:]
    a = robustness.degrade(condition, x, [7], others)
    b = robustness.degrade(condition, x, [7], others)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 1.0
    if condition == "clean":
        assert a is x
    elif condition in ("style", "emotion"):  # a time stretch: another length
        assert len(a) != len(x)
    else:
        assert a.shape == x.shape and not np.allclose(a, x, atol=1e-3)


def test_protocol_seeds_differ_from_training_seeds():
    from vpcore.augment import Augmenter

    assert robustness.PROTOCOL_SEED != Augmenter().random_state


@pytest.mark.parametrize("prior", robustness.PRIORS)
def test_llr_at_gives_the_confidence_threshold_under_each_prior(prior):
    from scipy.special import expit

    from vpcore.calibration import LogisticCalibration

    llr = robustness._llr_at(robustness.THRESHOLD, prior)
    assert expit(llr + np.log(prior / (1 - prior))) == pytest.approx(robustness.THRESHOLD)
    cal = LogisticCalibration.from_dict({"a": 1.0, "b": 0.0, "prior": prior})
    # the service's confidence (identity calibration) crosses 0.7 exactly there
    assert cal.predict_proba([llr])[0] == pytest.approx(robustness.THRESHOLD)
