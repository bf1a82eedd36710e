"""The public facade: one object that trains, enrols, scores and saves a voiceprint model.

``VoiceprintModel`` chains the fitted stages so that training, enrolment and
test always apply the very same transforms::

    waveform -> features -> Baum-Welch stats -> i-vector -> backend -> PLDA space
             -> Scorer: PLDA LLR -> AS-norm -> calibrated confidence

The work lives in the rooms it belongs to: the training recipe in
:mod:`vpcore.recipe`, every score in :class:`vpcore.scoring.Scorer`, the data
types and the packed row in :mod:`vpcore.voiceprint`, model files in
:mod:`vpcore.persistence`. This module wires them together.
"""

import numpy as np
from sklearn.base import BaseEstimator

from . import recipe
from ._validation import check_array, check_fitted, check_float, check_int
from .audio import check_waveform
from .errors import AudioConstraintError, ModelError, ParameterError
from .features import FeatureOptions, extract_features
from .gallery import IN_DOMAIN_COHORTS, Gallery
from .persistence import (FORMAT_VERSION, default_model_path, fingerprint, load_stages,
                          model_arrays, save_model)
from .speech import check_speech
from .stats import PreparedUbm, compute_stats
from .voiceprint import Score, Take, Voiceprint, check_takes

__all__ = ["FORMAT_VERSION", "Take", "Voiceprint", "Score", "VoiceprintModel", "load_model",
           "default_model_path"]


class VoiceprintModel(BaseEstimator):
    """MFCC / GMM-UBM / i-vector / PLDA speaker-verification model.

    Parameters
    ----------
    n_components : int
        C, UBM components.
    tv_rank : int
        S, i-vector dimension.
    lda_dim : int or None
        R, LDA output dimension (None: no LDA).
    wccn : bool
    ubm_iter, tv_iter, plda_iter : int
        EM iterations of each stage.
    ubm_max_frames : int
        Frames sampled for UBM training.
    asnorm_top : int or None
        AS-norm with the top-N cohort scores; None turns AS-norm off.
    cohort_per_speaker : int
        Cohort vectors kept per training speaker.
    calibration_prior : float
        Prior of "same speaker" under which ``confidence`` is a posterior.
    calibration_folds : int
        Speaker folds for cross-validated calibration scores.
    split_frames : int
        Speakers with one utterance have it cut into parts of at least this many
        speech frames, so the backend sees within-speaker variation (0 disables).
    augment_copies : int
        Augmented copies of every training utterance (:mod:`vpcore.augment`, seeded
        by ``random_state``), extra sessions of their speaker for LDA and PLDA
        (:func:`vpcore.recipe.fit_waveforms`). 0: clean speech only.
    augment_conditions : tuple of str or None
        Conditions of the copies (None: ``vpcore.augment.DEFAULT_CONDITIONS``).
    in_domain_cohort : {"probe", "both"}
        Which sides of AS-norm a :class:`~vpcore.gallery.Gallery` with
        ``adaptive_cohort`` pools with its enrolled voiceprints: the probe's
        only, or the voiceprint's as well. With ``"both"`` the calibration
        trials are scored that way too (each fold's enrolments pooled,
        :meth:`Scorer.in_domain_scores`); ``"probe"`` calibrates on
        training-cohort normalisation (the recipe before it existed).
    features : FeatureOptions
    n_jobs : int
        Processes for feature extraction (joblib).
    random_state : int or None
        Seed of every random step; None means 0.

    Attributes
    ----------
    feature_options_, ubm_, tv_, backend_ : the fitted front end and backend
    scorer_ : Scorer
        PLDA, cohort, AS-norm, calibration (``plda_``, ``cohort_``, ``calibration_``).
    training_summary_ : dict
    fingerprint_ : str
    """

    def __init__(self, n_components=256, tv_rank=200, lda_dim=150, wccn=False,
                 ubm_iter=10, tv_iter=10, plda_iter=10, ubm_max_frames=400_000,
                 asnorm_top=100, cohort_per_speaker=2, calibration_prior=0.1,
                 calibration_folds=4, split_frames=300, augment_copies=0,
                 augment_conditions=None, in_domain_cohort="probe", features=None, n_jobs=1,
                 random_state=None):
        self.n_components = n_components
        self.tv_rank = tv_rank
        self.lda_dim = lda_dim
        self.wccn = wccn
        self.ubm_iter = ubm_iter
        self.tv_iter = tv_iter
        self.plda_iter = plda_iter
        self.ubm_max_frames = ubm_max_frames
        self.asnorm_top = asnorm_top
        self.cohort_per_speaker = cohort_per_speaker
        self.calibration_prior = calibration_prior
        self.calibration_folds = calibration_folds
        self.split_frames = split_frames
        self.augment_copies = augment_copies
        self.augment_conditions = augment_conditions
        self.in_domain_cohort = in_domain_cohort
        self.features = features
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ options ---
    @property
    def feature_options(self):
        return self.features if self.features is not None else FeatureOptions()

    def saved_options(self):
        """The hyper-parameters a model file records (all but features and n_jobs; the
        augmentation ones only when copies were made, so clean models keep their
        fingerprints)."""
        names = ["n_components", "tv_rank", "lda_dim", "wccn", "ubm_iter", "tv_iter",
                 "plda_iter", "ubm_max_frames", "asnorm_top", "cohort_per_speaker",
                 "calibration_prior", "calibration_folds", "split_frames", "random_state"]
        options = {name: getattr(self, name) for name in names}
        if self.augment_copies:
            options.update(augment_copies=self.augment_copies, augment_conditions=(
                None if self.augment_conditions is None else list(self.augment_conditions)))
        if self.in_domain_cohort != "probe":
            options["in_domain_cohort"] = self.in_domain_cohort
        return options

    def _validate(self):
        """Check every hyper-parameter; runs before any expensive work."""
        check_int("n_components", self.n_components, low=2, high=4096)
        check_int("tv_rank", self.tv_rank, low=2, high=1000)
        if self.lda_dim is not None:
            check_int("lda_dim", self.lda_dim, low=1, high=self.tv_rank)
        if not isinstance(self.wccn, (bool, np.bool_)):
            raise ParameterError(f"wccn={self.wccn!r} must be True or False")
        for name in ("ubm_iter", "tv_iter", "ubm_max_frames", "cohort_per_speaker"):
            check_int(name, getattr(self, name), low=1)
        check_int("plda_iter", self.plda_iter, low=0)
        if self.asnorm_top is not None:
            check_int("asnorm_top", self.asnorm_top, low=1)
        check_float("calibration_prior", self.calibration_prior, low=0.0, high=1.0,
                    low_inclusive=False)
        if self.calibration_prior >= 1.0:
            raise ParameterError(f"calibration_prior={self.calibration_prior} must be < 1")
        check_int("calibration_folds", self.calibration_folds, low=2)
        check_int("split_frames", self.split_frames, low=0)
        check_int("augment_copies", self.augment_copies, low=0, high=20)
        if self.augment_copies:
            recipe.make_augmenter(self)  # conditions and codecs checked before any work
        if self.in_domain_cohort not in IN_DOMAIN_COHORTS:
            raise ParameterError(f"in_domain_cohort={self.in_domain_cohort!r} must be one of "
                                 f"{', '.join(map(repr, IN_DOMAIN_COHORTS))}")
        check_int("n_jobs", self.n_jobs, low=-1)
        if self.random_state is not None:
            check_int("random_state", self.random_state, low=0)
        if self.features is not None and not isinstance(self.features, FeatureOptions):
            raise ParameterError(f"features={self.features!r} must be a FeatureOptions or None")
        self.feature_options.validate()

    # ----------------------------------------------------------------- training ---
    def extract_all(self, waveforms, progress=False):
        """Front-end features of many waveforms (parallel over ``n_jobs``); None: no speech."""
        return recipe.extract_features(waveforms, self.feature_options, self.n_jobs, progress)

    def fit(self, waveforms, speakers, progress=False, scheduler=None):
        """Train every stage on labelled waveforms (:func:`vpcore.recipe.train`); returns self.

        Parameters
        ----------
        waveforms : sequence of ndarray (n_samples,) or of callables returning one
            Utterances at the model's sample rate. A callable (e.g.
            ``functools.partial(vpcore.audio.load_file, path)``) is called where the
            utterance is needed, which lets large corpora stream from disk.
        speakers : sequence of str
            Speaker label of each utterance.
        progress : bool
            Print progress bars and EM objectives.
        scheduler : str, distributed.Client or None
            Run the map-reduce steps on a Dask cluster (e.g. ``"tcp://host:8786"``);
            its workers must be able to read the corpus paths. None runs locally.
        """
        self._validate()
        waveforms = recipe.check_labelled("waveforms", waveforms, speakers)
        return self.set_fitted(**recipe.fit_waveforms(self, waveforms, speakers, scheduler,
                                                      progress))

    def fit_features(self, features, speakers, progress=False, scheduler=None,
                     extra_features=None):
        """Train on precomputed front-end features (None entries are skipped); returns self.

        ``extra_features``: ``(features, speakers)`` of further sessions (e.g.
        augmented copies, :func:`vpcore.recipe.augmented_features`) for the
        backend and PLDA only, optionally with a third item ``copy_of``: the
        index in ``features`` of the utterance each session copies (see
        :func:`vpcore.recipe.fit_features`).
        """
        self._validate()
        return self.set_fitted(**recipe.fit_features(self, features, speakers, scheduler,
                                                     progress, extra_features))

    def fit_backend(self, ivecs, speakers, extra=None):
        """(Re)train backend, PLDA, cohort and calibration on labelled i-vectors; returns self.

        Needs a fitted UBM and total-variability model. Lets backend options
        (``lda_dim``, ``asnorm_top``, ``calibration_prior`` ...) be tuned on the
        same i-vectors without retraining the front end. ``extra``: further
        ``(ivecs, speakers)`` units for training only (see :mod:`vpcore.recipe`).
        """
        self._validate()
        check_fitted(self, "tv_")
        ivecs = check_array("ivecs", ivecs, ndim=2, n_cols=self.tv_.T_.shape[1])
        backend, scorer, summary = recipe.fit_scoring(self, ivecs, speakers, extra)
        return self.set_fitted(backend=backend, scorer=scorer, training_summary=summary)

    def set_fitted(self, feature_options=None, ubm=None, tv=None, backend=None, scorer=None,
                   training_summary=None):
        """Install the fitted stages given, recompute the fingerprint; returns self (no
        hyper-parameter changes)."""
        for name, value in (("feature_options_", feature_options), ("ubm_", ubm), ("tv_", tv),
                            ("backend_", backend), ("scorer_", scorer),
                            ("training_summary_", training_summary)):
            if value is not None:
                setattr(self, name, value)
        self.fingerprint_ = fingerprint(model_arrays(self), self.saved_options())
        return self

    # ------------------------------------------------------------ fitted state ---
    @property
    def fingerprint(self):
        """16 hex digits identifying the model's parameters."""
        check_fitted(self, "fingerprint_")
        return self.fingerprint_

    @property
    def voiceprint_dim(self):
        """Length of :attr:`Voiceprint.vector` rows."""
        check_fitted(self, "scorer_")
        return self.scorer_.layout.width

    @property
    def plda_(self):
        """The fitted :class:`~vpcore.plda.PLDA` (the scorer's)."""
        check_fitted(self, "scorer_")
        return self.scorer_.plda

    @property
    def cohort_(self):
        """AS-norm cohort (K, R) in PLDA space (the scorer's)."""
        check_fitted(self, "scorer_")
        return self.scorer_.cohort

    @property
    def calibration_(self):
        """The fitted :class:`~vpcore.calibration.LogisticCalibration` (the scorer's)."""
        check_fitted(self, "scorer_")
        return self.scorer_.calibration

    # ---------------------------------------------------------------- inference ---
    def extract(self, samples):
        """One waveform -> :class:`Take`.

        Raises
        ------
        AudioError
            The waveform is not a finite 1-D array.
        TooLittleSpeechError
            The VAD found too little speech; :class:`~vpcore.errors.NotSpeechError`
            (a subclass) when the sound is not speech (:func:`vpcore.speech.check_speech`).
        """
        check_fitted(self, "fingerprint_")
        rate = self.feature_options_.sample_rate
        x = check_waveform(samples, rate)
        feats = extract_features(x, self.feature_options_)  # silence: too little speech
        check_speech(x, rate)  # noise, tones, hum and music are not a voice
        return self.take_from_features(feats)

    def take_from_features(self, feats):
        """Front-end features (T, D) -> :class:`Take`."""
        check_fitted(self, "fingerprint_")
        stats = compute_stats(self._prepared_ubm(), feats)
        w = self.tv_.transform_one(stats.n, stats.f)
        z = self.plda_.project(self.backend_.transform(w[None, :]))[0]
        if not np.all(np.isfinite(z)):
            raise AudioConstraintError("the audio gave a non-finite voiceprint (it is not speech)")
        return Take(z.astype(np.float32), int(len(feats)), self.fingerprint_)

    def _prepared_ubm(self):
        """The UBM's per-model constants (:class:`~vpcore.stats.PreparedUbm`), made once."""
        params = self.ubm_.params
        cached = getattr(self, "_ubm_constants", None)
        if cached is None or any(a is not b for a, b in zip(cached[0], params)):
            cached = self._ubm_constants = (params, PreparedUbm(*params))
        return cached[1]

    def enroll(self, takes):
        """Takes (or waveforms) of one speaker -> :class:`Voiceprint`."""
        check_fitted(self, "fingerprint_")
        if isinstance(takes, (list, tuple)) and takes and not isinstance(takes[0], Take):
            takes = [self.extract(t) for t in takes]
        takes = check_takes(takes, self.fingerprint)
        mean = np.mean([t.vector.astype(np.float64) for t in takes], axis=0)
        return Voiceprint.from_vector(self.scorer_.enrol(mean[None, :], len(takes))[0],
                                      self.fingerprint)

    def score_many(self, V, take):
        """Score one probe against many voiceprint rows ``V`` (N, voiceprint_dim) at once.

        Returns ``(llrs, confidences)``, each of shape (N,): normalised scores
        (AS-norm when enabled) and calibrated probabilities of "same speaker".
        :class:`~vpcore.gallery.Gallery` keeps the rows prepared across queries
        and calibrates only the ``top_n`` best.
        """
        check_fitted(self, "fingerprint_")
        llr = Gallery(self, V).scores(take).astype(np.float64)
        return llr, self.scorer_.confidence(llr)

    def verify(self, voiceprint, take):
        """Score one probe against one voiceprint -> :class:`Score`."""
        if not isinstance(voiceprint, Voiceprint):
            raise ParameterError(f"voiceprint must be a Voiceprint, got "
                                 f"{type(voiceprint).__name__}")
        if voiceprint.fingerprint != self.fingerprint:
            raise ModelError(f"voiceprint of model {voiceprint.fingerprint} cannot be scored "
                             f"with model {self.fingerprint}")
        llr, conf = self.score_many(voiceprint.vector[None, :], take)
        return Score(float(llr[0]), float(conf[0]))

    def consistency(self, previous_takes, take):
        """Confidence that ``take`` is the speaker of ``previous_takes`` (enrolment check)."""
        previous = check_takes(previous_takes, self.fingerprint, "previous_takes")
        return self.verify(self.enroll(previous), take).confidence

    # -------------------------------------------------------------- persistence ---
    def save(self, path):
        """Write the model atomically as ``.npz`` arrays plus a JSON header (no pickle)."""
        check_fitted(self, "fingerprint_")
        return save_model(self, path)

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (see :mod:`vpcore.persistence`)."""
        options, stages, stored = load_stages(path)
        try:
            model = cls(**options, features=stages["feature_options"]).set_fitted(**stages)
        except (TypeError, ParameterError) as exc:
            raise ModelError(f"model file {str(path)!r} is inconsistent: {exc}") from None
        if stored not in (None, model.fingerprint_):
            raise ModelError(f"model file {str(path)!r} is corrupt: fingerprint "
                             f"{stored} != computed {model.fingerprint_}")
        return model


def load_model(path=None):
    """Load a saved model; ``None`` loads the default model shipped in the package.

    Raises
    ------
    ModelError
        Missing, unreadable, of another format version, or inconsistent.
    """
    if path is None:
        path = default_model_path()
        if not path.is_file():
            raise ModelError(f"the default model {path} is not installed; train one with "
                             "'vpcore train' and pass its path")
    return VoiceprintModel.load(path)
