"""Multi-condition training: augmented copies as extra sessions of the backend."""

import numpy as np
import pytest

from vpcore import recipe
from vpcore.augment import Augmenter
from vpcore.errors import ParameterError
from vpcore.features import FeatureOptions
from vpcore.model import VoiceprintModel

pytest.importorskip("pyroomacoustics")
pytest.importorskip("av")

SMALL = dict(n_components=16, tv_rank=20, lda_dim=10, asnorm_top=20, random_state=0)


@pytest.fixture(scope="module")
def corpus(synthetic_corpus):
    return [c[2] for c in synthetic_corpus], [c[0] for c in synthetic_corpus]


@pytest.fixture(scope="module")
def augmented(corpus):
    waves, speakers = corpus
    return VoiceprintModel(**SMALL, augment_copies=1).fit(waves, speakers)


class _Recording(Augmenter):
    """An augmenter that remembers what it was asked (runs in this process: n_jobs=1)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls = []

    def augment(self, samples, seed, condition=None, babble_sources=None):
        self.calls.append((list(seed), [id(s) for s in babble_sources or ()]))
        return super().augment(samples, seed, condition, babble_sources)


def test_copies_come_in_copy_order_with_their_speakers(corpus):
    waves, speakers = corpus
    waves, speakers = waves[:12], speakers[:12]
    aug = _Recording(conditions=("noise", "mic"), random_state=3)
    feats, spk = recipe.augmented_features(waves, speakers, FeatureOptions(), aug, copies=2)
    assert len(feats) == 24 and spk == list(speakers) * 2
    assert [c[0] for c in aug.calls] == [[copy, i] for copy in (1, 2) for i in range(12)]
    # each copy is the features of the seeded augmentation of its utterance
    y, _ = Augmenter(conditions=("noise", "mic"), random_state=3).augment(waves[5], seed=[2, 5])
    from vpcore.features import extract_features
    np.testing.assert_array_equal(feats[12 + 5], extract_features(y, FeatureOptions()))


def test_babble_is_drawn_from_other_speakers_only(corpus):
    waves, speakers = corpus
    waves, speakers = waves[:18], speakers[:18]
    aug = _Recording(conditions=("babble",), random_state=0)
    recipe.augmented_features(waves, speakers, FeatureOptions(), aug, copies=1)
    by_id = {id(w): s for w, s in zip(waves, speakers)}
    for (copy, i), sources in aug.calls:
        assert sources and len(sources) <= recipe.BABBLE_POOL
        assert all(by_id[s] != speakers[i] for s in sources)


def test_same_options_give_the_same_model_whatever_the_jobs(corpus, augmented):
    waves, speakers = corpus
    again = VoiceprintModel(**SMALL, augment_copies=1, n_jobs=2).fit(waves, speakers)
    assert again.fingerprint_ == augmented.fingerprint_


def test_copies_train_the_backend_not_the_extractor(corpus, augmented, small_model):
    # small_model (conftest) is SMALL trained on the same clean corpus
    np.testing.assert_array_equal(augmented.ubm_.means_, small_model.ubm_.means_)
    np.testing.assert_array_equal(augmented.tv_.T_, small_model.tv_.T_)
    assert augmented.training_summary_["extra_units"] > 0
    assert "extra_units" not in small_model.training_summary_
    assert not np.allclose(augmented.plda_.psi_, small_model.plda_.psi_)


def test_augmented_model_saves_its_options_and_reloads(augmented, tmp_path):
    path = augmented.save(tmp_path / "m.npz")
    loaded = VoiceprintModel.load(path)
    assert loaded.augment_copies == 1 and loaded.fingerprint_ == augmented.fingerprint_


def test_clean_models_record_no_augmentation_options(small_model):
    # so that every model trained before augmentation keeps its fingerprint
    assert not any(k.startswith("augment") for k in small_model.saved_options())


@pytest.mark.parametrize("kw,match", [
    (dict(augment_copies=-1), "augment_copies"),
    (dict(augment_copies=21), "augment_copies"),
    (dict(augment_copies=1.5), "augment_copies"),
    (dict(augment_copies=1, augment_conditions=("noise", "snow")), "snow"),
    (dict(augment_copies=1, augment_conditions="noise"), "augment_conditions"),
    (dict(augment_copies=1, augment_conditions=()), "conditions"),
])
def test_bad_augmentation_options_fail_before_any_features(corpus, monkeypatch, kw, match):
    def no_work(*a, **k):
        raise AssertionError("features were extracted before the options were checked")

    monkeypatch.setattr(recipe, "extract_features", no_work)
    monkeypatch.setattr(recipe, "augmented_features", no_work)
    waves, speakers = corpus
    with pytest.raises(ParameterError, match=match):
        VoiceprintModel(**SMALL, **kw).fit(waves, speakers)


def test_extra_features_must_match_their_speakers(synthetic_corpus):
    from vpcore.features import extract_features

    f = extract_features(synthetic_corpus[0][2], FeatureOptions())
    with pytest.raises(ParameterError, match="extra_features"):
        VoiceprintModel(**SMALL).fit_features([f] * 4, ["a", "b", "c", "d"],
                                              extra_features=([f, f], ["a"]))


def test_extra_units_train_only_the_stages_named(small_model):
    rng = np.random.default_rng(0)
    S = small_model.tv_.T_.shape[1]
    spk = np.repeat([f"s{i}" for i in range(12)], 5)
    ivecs = rng.normal(size=(60, S)) + np.repeat(rng.normal(size=(12, S)) * 2, 5, axis=0)
    extra = (ivecs[::2] + rng.normal(size=(30, S)), spk[::2])
    clean = recipe.fit_backend_stages(small_model, ivecs, spk)
    lda_only = recipe.fit_backend_stages(small_model, ivecs, spk, extra, ("backend",))
    plda_only = recipe.fit_backend_stages(small_model, ivecs, spk, extra, ("plda",))
    both = recipe.fit_backend_stages(small_model, ivecs, spk, extra)
    X = ivecs[:5]
    np.testing.assert_array_equal(plda_only[0].transform(X), clean[0].transform(X))
    assert not np.allclose(lda_only[0].transform(X), clean[0].transform(X))
    np.testing.assert_array_equal(both[0].transform(X), lda_only[0].transform(X))
    assert not np.allclose(plda_only[1].psi_, clean[1].psi_)
    with pytest.raises(ParameterError, match="cohort"):
        recipe.fit_backend_stages(small_model, ivecs, spk, extra, ("plda", "cohort"))


@pytest.mark.parametrize("copies", [0, -1, 1.5])
def test_augmented_features_needs_at_least_one_copy(corpus, copies):
    waves, speakers = corpus
    with pytest.raises(ParameterError, match="copies"):
        recipe.augmented_features(waves[:4], speakers[:4], FeatureOptions(), Augmenter(), copies)


def test_augmented_features_needs_a_speaker_per_waveform(corpus):
    waves, speakers = corpus
    with pytest.raises(ParameterError, match="waveforms"):
        recipe.augmented_features(waves[:4], speakers[:3], FeatureOptions(), Augmenter(), 1)


def _units(small_model, n_speakers=12, per_speaker=5, seed=0):
    """Clean units, one noisy copy of each, and the utterance each comes from."""
    rng = np.random.default_rng(seed)
    S = small_model.tv_.T_.shape[1]
    spk = np.repeat([f"s{i}" for i in range(n_speakers)], per_speaker)
    ivecs = rng.normal(size=(len(spk), S)) + np.repeat(rng.normal(size=(n_speakers, S)) * 2,
                                                       per_speaker, axis=0)
    extra = (ivecs + rng.normal(size=ivecs.shape), spk)
    origin = np.arange(len(spk))
    return ivecs, spk, extra, (origin, origin.copy())


def test_calibration_trials_probe_with_the_copies_but_not_those_of_the_enrolment(small_model):
    ivecs, spk, extra, origins = _units(small_model)
    scores0, labels0 = recipe.cv_trials(small_model, ivecs, spk)
    scores1, labels1 = recipe.cv_trials(small_model, ivecs, spk, extra, origins=origins)
    scores2, labels2 = recipe.cv_trials(small_model, ivecs, spk, extra)
    folds = small_model.calibration_folds
    # per speaker: 2 clean probes; with copies 2 more (not the 3 copies of the enrolment units)
    # or 5 more without origins; each probe meets the fold's 3 enrolments
    n = 12 // folds
    assert (labels0.sum(), len(labels0)) == (12 * 2, 12 * 2 * n)
    assert (labels1.sum(), len(labels1)) == (12 * 4, 12 * 4 * n)
    assert (labels2.sum(), len(labels2)) == (12 * 7, 12 * 7 * n)
    assert np.all(np.isfinite(scores1))


def test_a_held_out_speakers_copies_never_train_its_fold(small_model, monkeypatch):
    ivecs, spk, extra, origins = _units(small_model)
    seen = []
    real = recipe.fit_backend_stages

    def recording(params, iv, s, x=None, stages=recipe.EXTRA_STAGES):
        seen.append((set(s), set(x[1]) if x is not None else set()))
        return real(params, iv, s, x, stages)

    monkeypatch.setattr(recipe, "fit_backend_stages", recording)
    recipe.cv_trials(small_model, ivecs, spk, extra, origins=origins)
    assert len(seen) == small_model.calibration_folds
    for clean_speakers, copy_speakers in seen:
        assert copy_speakers == clean_speakers  # the fold's held-out speakers in neither


def test_origins_must_match_the_units(small_model):
    ivecs, spk, extra, (origin, x_origin) = _units(small_model)
    with pytest.raises(ParameterError, match="origins"):
        recipe.fit_scoring(small_model, ivecs, spk, extra, origins=(origin[:-1], x_origin))
    with pytest.raises(ParameterError, match="origins"):
        recipe.fit_scoring(small_model, ivecs, spk, None, origins=(origin, x_origin))


def test_training_with_copies_calibrates_on_degraded_probes_too(augmented, corpus):
    waves, speakers = corpus
    clean = VoiceprintModel(**SMALL).fit(waves, speakers)
    with_copies = augmented.training_summary_["calibration_trials"]
    without = clean.training_summary_["calibration_trials"]
    # each held-out speaker's copies (less those of its 3 enrolment units) are probes as well
    assert with_copies["target"] > without["target"]
    assert with_copies["target"] <= 2 * without["target"]  # not the enrolment units' copies


def test_extra_features_copy_of_must_index_the_training_utterances(synthetic_corpus):
    feats = [extract_features_of(c[2]) for c in synthetic_corpus[:8]]
    spk = [c[0] for c in synthetic_corpus[:8]]
    model = VoiceprintModel(**SMALL)
    for bad in ([0] * 7, [0, 1, 2, 3, 4, 5, 6, 8], [0.5] * 8):
        with pytest.raises(ParameterError, match="copy_of"):
            recipe.fit_features(model, feats, spk, extra_features=(feats, spk, bad))


def extract_features_of(x):
    from vpcore.features import extract_features

    return extract_features(x, FeatureOptions())


def test_calibration_trials_of_a_both_sides_model_pool_each_folds_enrolments(small_model,
                                                                             monkeypatch):
    # in_domain_cohort="both": every fold is scored as a gallery of its own enrolments
    import copy

    from vpcore.scoring import Scorer

    ivecs, spk, extra, origins = _units(small_model)
    both = copy.copy(small_model)
    both.in_domain_cohort = "both"
    calls = []
    real = Scorer.in_domain_scores

    def recording(self, V, Z, both_sides=True):
        calls.append((len(V), len(Z), both_sides))
        return real(self, V, Z, both_sides)

    monkeypatch.setattr(Scorer, "in_domain_scores", recording)
    s_probe, l_probe = recipe.cv_trials(small_model, ivecs, spk, extra, origins=origins)
    assert calls == []  # the probe-side recipe calibrates on cohort-only scores, as before
    s_both, l_both = recipe.cv_trials(both, ivecs, spk, extra, origins=origins)
    n = 12 // small_model.calibration_folds
    assert calls == [(n, n * 4, True)] * small_model.calibration_folds
    np.testing.assert_array_equal(l_both, l_probe)  # the same trials, scored another way
    assert np.abs(s_both - s_probe).max() > 1e-3


@pytest.mark.parametrize("value", ["all", None, True])
def test_in_domain_cohort_must_be_probe_or_both(small_model, value):
    import copy

    model = copy.copy(small_model)
    model.in_domain_cohort = value
    with pytest.raises(ParameterError, match=r"in_domain_cohort=.* must be one of 'probe', 'both'"):
        model._validate()


def test_in_domain_cohort_is_saved_only_when_it_is_both(small_model):
    import copy

    assert "in_domain_cohort" not in small_model.saved_options()  # old fingerprints stay
    both = copy.copy(small_model)
    both.in_domain_cohort = "both"
    assert both.saved_options()["in_domain_cohort"] == "both"
