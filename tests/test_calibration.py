"""Tests of vpcore.calibration.LogisticCalibration."""

import functools
import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit
from sklearn.base import clone

from vpcore.calibration import LogisticCalibration
from vpcore.errors import ModelError, NotFittedError, ParameterError
from vpcore.metrics import cllr, min_cllr


def gaussian_trials(mu=1.0, n_tar=20000, n_non=20000, seed=0):
    """Targets ~ N(mu, 1), non-targets ~ N(-mu, 1): the true LLR is 2 mu s."""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(mu, 1.0, n_tar), rng.normal(-mu, 1.0, n_non)]
    labels = np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]
    return scores, labels


@functools.lru_cache(maxsize=None)
def fitted(prior=0.5):
    return LogisticCalibration(prior=prior).fit(*gaussian_trials(n_tar=2000, n_non=2000))


# ---------------------------------------------------------------------------
# recovering a known calibration


@pytest.mark.parametrize("mu", [0.5, 2.0])
@pytest.mark.parametrize("prior", [0.5, 0.1])
def test_recovers_true_llr_of_gaussian_scores(mu, prior):
    scores, labels = gaussian_trials(mu=mu)
    cal = LogisticCalibration(prior=prior).fit(scores, labels)
    # true LLR = 2 mu s: slope 2 mu, offset 0 whatever the prior
    assert cal.a_ == pytest.approx(2 * mu, rel=0.1)
    assert abs(cal.b_) < 0.1


def test_class_imbalance_does_not_shift_the_llr():
    # 10x more non-targets: an unweighted logistic regression would put the
    # empirical log-odds log(1/10) = -2.3 into the offset; the prior weighting
    # must not.
    scores, labels = gaussian_trials(n_tar=4000, n_non=40000, seed=3)
    cal = LogisticCalibration().fit(scores, labels)
    assert cal.a_ == pytest.approx(2.0, rel=0.1)
    assert abs(cal.b_) < 0.15


def test_affine_change_of_score_scale_is_absorbed():
    scores, labels = gaussian_trials(n_tar=3000, n_non=3000, seed=4)
    cal = LogisticCalibration().fit(scores, labels)
    moved = LogisticCalibration().fit(3.0 * scores + 7.0, labels)
    assert moved.a_ == pytest.approx(cal.a_ / 3.0, rel=1e-5)
    np.testing.assert_allclose(
        moved.predict_llr(3.0 * scores + 7.0), cal.predict_llr(scores), rtol=1e-5, atol=1e-5
    )


def test_calibrated_llrs_are_near_minimum_cllr():
    scores, labels = gaussian_trials(n_tar=5000, n_non=5000, seed=5)
    raw = 0.1 * scores - 3.0  # badly calibrated raw scores
    cal = LogisticCalibration().fit(raw, labels)
    assert cllr(raw, labels) > 0.9
    assert cllr(cal.predict_llr(raw), labels) - min_cllr(raw, labels) < 0.01


def test_predict_proba_is_the_posterior_under_the_prior():
    for prior in (0.5, 0.2):
        cal = fitted(prior)
        s = np.linspace(-3, 3, 13)
        llr = cal.predict_llr(s)
        np.testing.assert_allclose(llr, cal.a_ * s + cal.b_)
        np.testing.assert_allclose(cal.predict_proba(s), expit(llr + logit(prior)), rtol=1e-12)
    # at LLR 0 the posterior is the prior
    cal = fitted(0.2)
    assert cal.predict_proba(-cal.b_ / cal.a_) == pytest.approx(0.2)


def test_separable_training_scores_give_finite_positive_slope():
    scores = np.r_[np.linspace(1, 2, 50), np.linspace(-2, -1, 50)]
    labels = np.r_[np.ones(50), np.zeros(50)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cal = LogisticCalibration().fit(scores, labels)
    assert math.isfinite(cal.a_) and cal.a_ > 0 and math.isfinite(cal.b_)
    assert cal.predict_proba(2.0) > 0.99 and cal.predict_proba(-2.0) < 0.01


# ---------------------------------------------------------------------------
# properties of the output


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_probability_is_monotone_in_the_score(s1, s2):
    lo, hi = min(s1, s2), max(s1, s2)
    cal = fitted()
    assert cal.predict_proba(lo) <= cal.predict_proba(hi)
    assert cal.predict_llr(lo) <= cal.predict_llr(hi)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_probability_in_unit_interval_for_any_finite_score(s):
    p = fitted(0.1).predict_proba(s)
    assert 0.0 <= p <= 1.0


def test_extreme_scores_give_zero_and_one_without_nan():
    scores = np.array([-1e300, -1e6, 1e6, 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = fitted().predict_proba(scores)
    np.testing.assert_array_equal(p, [0.0, 0.0, 1.0, 1.0])


def test_shapes_follow_the_input():
    cal = fitted()
    assert np.ndim(cal.predict_proba(0.3)) == 0
    assert isinstance(cal.predict_llr(0.3), float)
    assert cal.predict_proba(np.zeros(5)).shape == (5,)
    assert cal.predict_llr([]).shape == (0,)


def test_fit_is_deterministic():
    scores, labels = gaussian_trials(n_tar=3000, n_non=3000, seed=6)
    a = LogisticCalibration().fit(scores, labels)
    b = LogisticCalibration().fit(scores.copy(), labels.copy())
    assert (a.a_, a.b_) == (b.a_, b.b_)


# ---------------------------------------------------------------------------
# persistence and estimator conventions


def test_dict_round_trip_gives_identical_outputs():
    cal = fitted(0.2)
    d = cal.to_dict()
    assert set(d) == {"a", "b", "prior"} and all(type(v) is float for v in d.values())
    back = LogisticCalibration.from_dict(json.loads(json.dumps(d)))
    s = np.linspace(-10, 10, 101)
    np.testing.assert_array_equal(back.predict_proba(s), cal.predict_proba(s))
    np.testing.assert_array_equal(back.predict_llr(s), cal.predict_llr(s))


@pytest.mark.parametrize(
    "d",
    [
        {"a": 1.0, "b": 0.0},
        {"a": 0.0, "b": 0.0, "prior": 0.5},
        {"a": -1.0, "b": 0.0, "prior": 0.5},
        {"a": 1.0, "b": float("nan"), "prior": 0.5},
        {"a": 1.0, "b": 0.0, "prior": 1.0},
        {"a": "1", "b": 0.0, "prior": 0.5},
        [1.0, 0.0, 0.5],
    ],
)
def test_from_dict_rejects_corrupt_parameters(d):
    with pytest.raises(ModelError):
        LogisticCalibration.from_dict(d)


@pytest.mark.parametrize("method", ["predict_llr", "predict_proba"])
def test_unfitted_use_raises(method):
    with pytest.raises(NotFittedError):
        getattr(LogisticCalibration(), method)([0.0, 1.0])


def test_unfitted_to_dict_raises():
    with pytest.raises(NotFittedError):
        LogisticCalibration().to_dict()


def test_init_only_stores_and_sklearn_clone_works():
    cal = LogisticCalibration(prior=2.0, reg=-1)  # no check in __init__
    assert cal.get_params() == {"prior": 2.0, "reg": -1}
    cal.set_params(prior=0.3, reg=1e-3)
    fresh = clone(cal)
    assert fresh.get_params() == {"prior": 0.3, "reg": 1e-3}
    assert not hasattr(fresh, "a_")
    assert fresh.fit(*gaussian_trials(n_tar=500, n_non=500)) is fresh


# ---------------------------------------------------------------------------
# errors


def test_non_discriminative_scores_raise():
    scores, labels = gaussian_trials(n_tar=1000, n_non=1000, seed=7)
    with pytest.raises(ParameterError, match="not discriminative"):
        LogisticCalibration().fit(-scores, labels)  # targets score lower
    with pytest.raises(ParameterError, match="not discriminative"):
        LogisticCalibration().fit(np.full(10, 0.7), np.arange(10) % 2)


@pytest.mark.parametrize(
    "params, name",
    [
        ({"prior": 0.0}, "prior"),
        ({"prior": 1.0}, "prior"),
        ({"prior": float("nan")}, "prior"),
        ({"reg": -1e-3}, "reg"),
        ({"reg": "small"}, "reg"),
    ],
)
def test_bad_hyper_parameters_raise_at_fit(params, name):
    scores, labels = gaussian_trials(n_tar=50, n_non=50)
    with pytest.raises(ParameterError, match=name):
        LogisticCalibration(**params).fit(scores, labels)


@pytest.mark.parametrize(
    "scores, labels, name",
    [
        ([], [], "scores"),
        ([0.1, np.nan, 0.3], [1, 0, 1], "scores"),
        ([0.1, 0.2, 0.3], [1, 0], "labels"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "labels"),
        ([0.1, 0.2, 0.3], [1, 0, 3], "labels"),
    ],
)
def test_bad_training_data_raises(scores, labels, name):
    with pytest.raises(ParameterError, match=name):
        LogisticCalibration().fit(scores, labels)


@pytest.mark.parametrize("scores", [[[0.1, 0.2]], [0.1, np.inf], [np.nan], "x"])
def test_bad_prediction_input_raises(scores):
    cal = fitted()
    for method in (cal.predict_llr, cal.predict_proba):
        with pytest.raises(ParameterError, match="scores"):
            method(scores)


def test_bad_prior_at_prediction_raises():
    cal = LogisticCalibration.from_dict(fitted().to_dict())
    cal.set_params(prior=1.5)
    with pytest.raises(ParameterError, match="prior"):
        cal.predict_proba([0.0])


def test_convergence_is_reported_as_sklearn_does():
    cal = LogisticCalibration().fit(*gaussian_trials(n_tar=500, n_non=500))
    assert cal.converged_ is True and cal.n_iter_ >= 1
