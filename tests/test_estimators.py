"""Every stage with a ``fit`` is a scikit-learn estimator.

For each class: ``__init__`` only stores its keyword arguments, ``clone``
gives equal parameters and an unfitted copy, ``set_params`` round-trips, and
``set_fitted`` (the one name for "install fitted arrays") installs arrays
without touching a hyper-parameter. Bad hyper-parameters fail before any work
on the data, with a ``ParameterError`` naming the parameter and its value.
"""

import functools

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.utils.estimator_checks import check_no_attributes_set_in_init

from vpcore import recipe
from vpcore.backend import LDA, WCCN, Backend, Center, LengthNorm
from vpcore.calibration import LogisticCalibration
from vpcore.errors import ParameterError
from vpcore.features import FeatureOptions
from vpcore.ivector import TotalVariability
from vpcore.model import VoiceprintModel
from vpcore.persistence import default_model_path, load_stages
from vpcore.plda import PLDA
from vpcore.ubm import DiagonalGMM


def _pd(R, seed):
    A = np.random.default_rng(seed).standard_normal((R, R))
    return A @ A.T + R * np.eye(R)


@functools.lru_cache(maxsize=1)
def _default_model_file():
    return load_stages(default_model_path())


def _stages_of_default_model():
    return dict(_default_model_file()[1])


# (class, parameters other than the defaults, fitted arrays for set_fitted or None)
CASES = {
    "DiagonalGMM": (DiagonalGMM,
                    dict(n_components=4, n_iter=3, n_iter_split=2, variance_floor=0.05,
                         max_frames=1000, tol=1e-3, random_state=5),
                    lambda: dict(weights=np.full(4, 0.25), means=np.zeros((4, 3)),
                                 variances=np.ones((4, 3)))),
    "TotalVariability": (TotalVariability,
                         dict(rank=3, n_iter=2, min_divergence=False, random_state=4, tol=1e-2),
                         lambda: dict(T=np.ones((8, 3)), n_components=4, offset=np.zeros(8))),
    "Center": (Center, {}, lambda: dict(mean=np.arange(3.0))),
    "LDA": (LDA, dict(n_components=2, reg=1e-3), lambda: dict(components=np.eye(3)[:, :2])),
    "WCCN": (WCCN, dict(reg=1e-2), lambda: dict(components=np.eye(3))),
    "LengthNorm": (LengthNorm, {}, None),
    "Backend": (Backend, dict(lda_dim=2, wccn=True, length_norm=False),
                lambda: dict(mean=np.zeros(3), projection=np.eye(3)[:, :2])),
    "PLDA": (PLDA, dict(n_iter=3, tol=1e-4),
             lambda: dict(mean=np.zeros(3), between=_pd(3, 1), within=_pd(3, 2))),
    "LogisticCalibration": (LogisticCalibration, dict(prior=0.2, reg=1e-2),
                            lambda: dict(a=1.5, b=-0.5)),
    "VoiceprintModel": (VoiceprintModel,
                        dict(n_components=8, tv_rank=6, lda_dim=4, wccn=True, ubm_iter=2,
                             tv_iter=3, plda_iter=1, ubm_max_frames=5000, asnorm_top=None,
                             cohort_per_speaker=3, calibration_prior=0.3, calibration_folds=3,
                             split_frames=0, features=FeatureOptions(n_mfcc=13), n_jobs=2,
                             random_state=9),
                        _stages_of_default_model),
}


def _fitted_attributes(estimator):
    return sorted(k for k in vars(estimator) if k.endswith("_") and not k.startswith("_"))


@pytest.fixture(params=sorted(CASES))
def case(request):
    return CASES[request.param]


def test_is_a_base_estimator_whose_init_only_stores(case):
    cls, params, _ = case
    assert issubclass(cls, BaseEstimator)
    check_no_attributes_set_in_init(cls.__name__, cls(**params))
    assert cls(**params).get_params() == params | {
        k: v for k, v in cls().get_params().items() if k not in params}


def test_init_stores_even_invalid_values_unchanged(case):
    cls, params, _ = case
    names = sorted(cls().get_params())
    odd = {name: ("not", "checked", name) for name in names}  # validation belongs to fit
    assert cls(**odd).get_params() == odd


def test_clone_gives_equal_params_and_an_unfitted_copy(case):
    cls, params, fitted = case
    estimator = cls(**params)
    if fitted is not None:
        estimator.set_fitted(**fitted())
        assert _fitted_attributes(estimator)
    copy = clone(estimator)
    assert type(copy) is cls and copy is not estimator
    assert copy.get_params() == estimator.get_params()
    assert _fitted_attributes(copy) == []


def test_set_params_round_trips(case):
    cls, params, _ = case
    estimator = cls()
    defaults = estimator.get_params()
    assert estimator.set_params(**params) is estimator
    assert estimator.get_params() == defaults | params
    estimator.set_params(**defaults)
    assert estimator.get_params() == defaults


@pytest.mark.parametrize("name", sorted(k for k, v in CASES.items() if v[2] is not None))
def test_set_fitted_never_changes_a_hyper_parameter(name):
    cls, params, fitted = CASES[name]  # LengthNorm has no fitted arrays to install
    estimator = cls(**params)
    before = estimator.get_params()
    assert estimator.set_fitted(**fitted()) is estimator
    assert estimator.get_params() == before
    assert _fitted_attributes(estimator)


# ------------------------------------------------ validation before any work ---
class _NoWork:
    """An executor that fails the test if training reaches it."""

    def map(self, *args, **kwargs):
        raise AssertionError("training started before the parameters were checked")

    gather = scatter = map


@pytest.mark.parametrize("estimator, name, value", [
    (DiagonalGMM(n_iter=0), "n_iter", 0),
    (DiagonalGMM(n_components=0), "n_components", 0),
    (DiagonalGMM(variance_floor=0.0), "variance_floor", 0.0),
    (DiagonalGMM(tol=-1.0), "tol", -1.0),
    (DiagonalGMM(random_state=-3), "random_state", -3),
    (TotalVariability(rank=0), "rank", 0),
    (TotalVariability(n_iter=0), "n_iter", 0),
    (TotalVariability(min_divergence="yes"), "min_divergence", "yes"),
    (TotalVariability(tol=-0.5), "tol", -0.5),
    (TotalVariability(random_state=1.5), "random_state", 1.5),
])
def test_front_end_stages_check_parameters_before_the_first_e_step(estimator, name, value):
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        estimator.fit_chunks(["a chunk"], executor=_NoWork())


@pytest.mark.parametrize("estimator, name, value", [
    (PLDA(n_iter=-1), "n_iter", -1),
    (PLDA(tol=-1e-3), "tol", -0.001),
    (LDA(n_components=0), "n_components", 0),
    (LDA(reg=-1.0), "reg", -1.0),
    (WCCN(reg=-1.0), "reg", -1.0),
    (Backend(lda_dim=0), "lda_dim", 0),
    (Backend(wccn="no"), "wccn", "no"),
    (Backend(length_norm=1), "length_norm", 1),
])
def test_backend_stages_check_parameters_before_the_data(estimator, name, value):
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        estimator.fit(object(), object())  # the data would fail any check of its own


@pytest.mark.parametrize("estimator, name, value", [
    (LogisticCalibration(prior=1.0), "prior", 1.0),
    (LogisticCalibration(reg=-1e-3), "reg", -0.001),
])
def test_calibration_checks_parameters_before_the_data(estimator, name, value):
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        estimator.fit("no scores", "no labels")


BAD_MODEL_OPTIONS = [
    ("n_components", 1), ("tv_rank", 0), ("lda_dim", 10_000), ("wccn", "yes"),
    ("ubm_iter", 0), ("tv_iter", 0), ("plda_iter", -1), ("ubm_max_frames", 0),
    ("asnorm_top", 0), ("cohort_per_speaker", 0), ("calibration_prior", 1.5),
    ("calibration_folds", 1), ("split_frames", -1), ("n_jobs", -2), ("random_state", -1),
    ("features", "mfcc"),
]


@pytest.fixture
def no_training(monkeypatch):
    """Make feature extraction and every training step fail the test if reached."""
    def reached(*args, **kwargs):
        raise AssertionError("expensive work started before the parameters were checked")

    for step in ("extract_features", "make_batches", "batch_features", "train",
                 "fit_scoring", "_extract"):
        monkeypatch.setattr(recipe, step, reached)


@pytest.mark.parametrize("name, value", BAD_MODEL_OPTIONS)
def test_model_checks_every_option_before_feature_extraction(no_training, name, value):
    waves = [np.zeros(16000, np.float32)] * 8
    speakers = list("aabbccdd")
    model = VoiceprintModel(**{name: value})
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        model.fit(waves, speakers)
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        model.fit(waves, speakers, scheduler="tcp://127.0.0.1:1")  # no cluster contacted
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        model.fit_features([np.zeros((200, 60), np.float32)] * 8, speakers)
    with pytest.raises(ParameterError, match=f"^{name}={value!r}"):
        model.fit_backend(np.zeros((8, 4)), speakers)  # before it asks for a fitted front end


def test_bad_feature_options_are_checked_before_extraction(no_training):
    model = VoiceprintModel(features=FeatureOptions(n_mfcc=0))
    with pytest.raises(ParameterError, match="n_mfcc"):
        model.fit([np.zeros(16000, np.float32)] * 8, list("aabbccdd"))
