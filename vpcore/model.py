"""The whole pipeline in one object: training, enrolment, scoring and persistence.

``VoiceprintModel`` chains the fitted stages so that training, enrolment and
test always apply the very same transforms::

    waveform -> features -> Baum-Welch stats -> i-vector -> backend -> PLDA space
             -> PLDA LLR -> AS-norm -> calibrated confidence

A :class:`Take` is one utterance in the PLDA space; a :class:`Voiceprint` is
an enrolment of one or more takes, packed as one float32 row so that a probe
is scored against many voiceprints with one matrix product.

Models are saved as ``.npz`` named arrays plus a versioned JSON header, and
load without pickle.
"""

import hashlib
import io
import json
import os
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from ._provenance import code_key
from ._validation import check_array, check_fitted, check_float, check_int, check_random_state
from .audio import check_waveform
from .backend import Backend
from .calibration import LogisticCalibration
from .errors import AudioConstraintError, ModelError, ParameterError, TooLittleSpeechError
from .features import FeatureOptions, extract_features
from .ivector import TotalVariability
from .parallel import get_executor
from .plda import PLDA
from .scoring import Scorer
from .speech import check_speech
from .stats import compute_stats
from .ubm import DiagonalGMM
from .voiceprint import Score, Take, Voiceprint, check_takes

__all__ = ["FORMAT_VERSION", "Take", "Voiceprint", "Score", "VoiceprintModel", "load_model",
           "default_model_path"]

#: Version of the saved model format; a file of another version does not load.
FORMAT_VERSION = 1

def default_model_path():
    """Path of the model shipped inside the package."""
    return Path(__file__).resolve().parent / "data" / "default_model.npz"


def _features_or_none(samples, options):
    try:
        if callable(samples):  # loaded here, in the worker that needs it
            samples = samples()
        return extract_features(samples, options)
    except TooLittleSpeechError:
        return None


_BATCH = 64


def _batches(items):
    """``(start index, items)`` batches of the training list."""
    return [(i, items[i:i + _BATCH]) for i in range(0, len(items), _BATCH)]


def _batch_features(batch, options):
    start, waveforms = batch
    return start, [_features_or_none(w, options) for w in waveforms]


def _batch_lengths(batch):
    return np.array([0 if f is None else len(f) for f in batch[1]], dtype=np.int64)


def _batch_sample_frames(batch, fraction, seed):
    """A seeded random ``fraction`` of the batch's frames (the seed includes the batch start)."""
    start, feats = batch
    frames = [f for f in feats if f is not None]
    if not frames:
        return np.zeros((0, 0), dtype=np.float32)
    X = np.concatenate(frames)
    if fraction < 1.0:
        rng = np.random.default_rng([seed, start])
        X = X[np.sort(rng.choice(len(X), int(round(fraction * len(X))), replace=False))]
    return X


def _batch_stats(batch, ubm_params):
    """Stacked statistics ``(N (u, C), F (u, C*D))`` of the batch's utterances with speech."""
    with threadpool_limits(limits=1, user_api="blas"):  # small products: one thread is faster
        stats = [compute_stats(ubm_params, f) for f in batch[1] if f is not None]
    if not stats:
        C, D = ubm_params[1].shape
        return np.zeros((0, C)), np.zeros((0, C * D), dtype=np.float32)
    return (np.stack([s.n for s in stats]),
            np.stack([s.f.reshape(-1) for s in stats]).astype(np.float32))


def _batch_unit_ivectors(batch, ubm_params, tv, split, split_frames):
    """``[(utterance index, [i-vector, ...]), ...]``: parts for utterances flagged in ``split``."""
    start, feats = batch
    out = []
    with threadpool_limits(limits=1, user_api="blas"):  # small products: one thread is faster
        for offset, f in enumerate(feats):
            if f is None:
                continue
            index = start + offset
            parts = _split_frames(f, split_frames, 4) if split[index] and split_frames else [f]
            out.append((index, [tv.transform_one(*_nf(compute_stats(ubm_params, p)))
                                for p in parts]))
    return out


def _nf(stats):
    return stats.n, stats.f


def _split_frames(frames, min_frames, max_parts):
    """Cut one utterance's frames into up to ``max_parts`` contiguous parts of >= min_frames."""
    parts = min(max_parts, len(frames) // min_frames)
    if parts < 2:
        return [frames]
    return np.array_split(frames, parts)


class VoiceprintModel:
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
    features : FeatureOptions
    n_jobs : int
        Processes for feature extraction (joblib).
    random_state : int or None
        Seed of every random step; None means 0.
    """

    def __init__(self, n_components=256, tv_rank=200, lda_dim=150, wccn=False,
                 ubm_iter=10, tv_iter=10, plda_iter=10, ubm_max_frames=400_000,
                 asnorm_top=100, cohort_per_speaker=2, calibration_prior=0.1,
                 calibration_folds=4, split_frames=300, features=None, n_jobs=1,
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
        self.features = features
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ options ---
    @property
    def feature_options(self):
        return self.features if self.features is not None else FeatureOptions()

    def _options(self):
        return {
            "n_components": self.n_components, "tv_rank": self.tv_rank, "lda_dim": self.lda_dim,
            "wccn": self.wccn, "ubm_iter": self.ubm_iter, "tv_iter": self.tv_iter,
            "plda_iter": self.plda_iter, "ubm_max_frames": self.ubm_max_frames,
            "asnorm_top": self.asnorm_top, "cohort_per_speaker": self.cohort_per_speaker,
            "calibration_prior": self.calibration_prior,
            "calibration_folds": self.calibration_folds, "split_frames": self.split_frames,
            "random_state": self.random_state,
        }

    def _validate(self):
        check_int("n_components", self.n_components, low=2, high=4096)
        check_int("tv_rank", self.tv_rank, low=2, high=1000)
        if self.lda_dim is not None:
            check_int("lda_dim", self.lda_dim, low=1, high=self.tv_rank)
        if self.asnorm_top is not None:
            check_int("asnorm_top", self.asnorm_top, low=1)
        check_int("cohort_per_speaker", self.cohort_per_speaker, low=1)
        check_float("calibration_prior", self.calibration_prior, low=0.0, high=1.0,
                    low_inclusive=False)
        if self.calibration_prior >= 1.0:
            raise ParameterError(f"calibration_prior={self.calibration_prior} must be < 1")
        check_int("calibration_folds", self.calibration_folds, low=2)
        check_int("split_frames", self.split_frames, low=0)
        check_int("n_jobs", self.n_jobs, low=-1)
        self.feature_options.validate()

    # ----------------------------------------------------------------- training ---
    def extract_all(self, waveforms, progress=False):
        """Front-end features of many waveforms (parallel over ``n_jobs``).

        Waveforms with too little speech give None.
        """
        opts = self.feature_options
        items = waveforms
        if progress:
            from tqdm.auto import tqdm
            items = tqdm(waveforms, desc="features", unit="utt", disable=not progress)
        if self.n_jobs == 1:
            return [_features_or_none(w, opts) for w in items]
        return Parallel(n_jobs=self.n_jobs)(delayed(_features_or_none)(w, opts) for w in items)

    def fit(self, waveforms, speakers, progress=False, scheduler=None):
        """Train every stage on labelled waveforms; returns self.

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
        if len(waveforms) != len(speakers):
            raise ParameterError(f"waveforms ({len(waveforms)}) and speakers ({len(speakers)}) "
                                 "must have the same length")
        if scheduler is None:
            feats = self.extract_all(list(waveforms), progress=progress)
            return self.fit_features(feats, speakers, progress=progress)
        executor = get_executor(scheduler)
        try:
            loaders = executor.scatter(_batches(list(waveforms)))
            batches = executor.map(_batch_features, loaders, self.feature_options)
            return self._fit_batches(batches, speakers, executor, progress)
        finally:
            executor.close()

    def fit_features(self, features, speakers, progress=False, scheduler=None):
        """Train on precomputed front-end features (None entries are skipped); returns self."""
        self._validate()
        if len(features) != len(speakers):
            raise ParameterError(f"features ({len(features)}) and speakers ({len(speakers)}) "
                                 "must have the same length")
        features = [None if f is None else check_array("features", f, ndim=2, dtype=np.float32)
                    for f in features]
        executor = get_executor(scheduler)
        try:
            return self._fit_batches(executor.scatter(_batches(features)), speakers, executor,
                                     progress)
        finally:
            if scheduler is not None:
                executor.close()

    def _fit_batches(self, batches, speakers, executor, progress):
        """The training recipe over batches of features held by ``executor``."""
        report = _progress_printer(progress)
        self.feature_options_ = self.feature_options
        seconds = {}
        lengths = np.concatenate(executor.gather(executor.map(_batch_lengths, batches)))
        keep = lengths > 0
        if not keep.all():
            warnings.warn(f"{int((~keep).sum())} of {len(keep)} training utterances had too "
                          "little speech and were skipped", stacklevel=3)
        kept_speakers = [str(s) for s, k in zip(speakers, keep) if k]
        if len(set(kept_speakers)) < 4:
            raise ParameterError(f"training data has {len(set(kept_speakers))} speakers with "
                                 "speech; at least 4 are needed")
        start = time.perf_counter()
        # 1. UBM on a seeded subset of the pooled frames, which stays where the batches are.
        fraction = min(1.0, self.ubm_max_frames / lengths.sum())
        seed = 0 if self.random_state is None else int(self.random_state)
        frames = executor.map(_batch_sample_frames, batches, fraction, seed)
        self.ubm_ = DiagonalGMM(n_components=self.n_components, n_iter=self.ubm_iter,
                                max_frames=self.ubm_max_frames, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.ubm_.fit_chunks(frames, executor, progress=report)
        del frames
        seconds["ubm"] = time.perf_counter() - start
        # 2. Baum-Welch statistics (kept with the batches) and the total-variability model.
        start = time.perf_counter()
        stats = executor.map(_batch_stats, batches, self.ubm_.params)
        self.tv_ = TotalVariability(rank=self.tv_rank, n_iter=self.tv_iter,
                                    random_state=self.random_state)
        self.tv_.fit_chunks(stats, executor, progress=report)
        del stats
        # Store T in float32 so that a saved and reloaded model scores identically.
        self.tv_.set_matrix(self.tv_.T_.astype(np.float32).astype(np.float64),
                            self.n_components, self.tv_.offset_)
        seconds["total_variability"] = time.perf_counter() - start
        # 3. I-vectors of the backend's units: utterances, and parts of one-utterance speakers.
        start = time.perf_counter()
        counts = {}
        for s in kept_speakers:
            counts[s] = counts.get(s, 0) + 1
        split = np.zeros(len(keep), dtype=bool)
        split[np.flatnonzero(keep)] = [counts[s] == 1 for s in kept_speakers]
        split_frames = self.split_frames if self.split_frames else 0
        units = executor.gather(executor.map(_batch_unit_ivectors, batches, self.ubm_.params,
                                             self.tv_, split, split_frames))
        ivecs, unit_spk = [], []
        for batch_units in units:
            for index, vectors in batch_units:
                ivecs.extend(vectors)
                unit_spk.extend([str(speakers[index])] * len(vectors))
        seconds["ivectors"] = time.perf_counter() - start
        start = time.perf_counter()
        self.fit_backend(np.stack(ivecs), unit_spk)
        seconds["backend"] = time.perf_counter() - start
        self.training_summary_ = {
            "utterances": int(keep.sum()), "speakers": len(set(kept_speakers)),
            "frames": int(lengths.sum()),
            "code": code_key(),  # provenance only: the fingerprint covers parameters
            **self.training_summary_,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
        }
        return self

    def fit_backend(self, ivecs, speakers):
        """(Re)train backend, PLDA, cohort and calibration on labelled i-vectors; returns self.

        Needs a fitted UBM and total-variability model. Lets backend options
        (``lda_dim``, ``asnorm_top``, ``calibration_prior`` ...) be tuned on the
        same i-vectors without retraining the front end.
        """
        self._validate()
        check_fitted(self, "tv_")
        ivecs = check_array("ivecs", ivecs, ndim=2, n_cols=self.tv_.T_.shape[1])
        spk = np.asarray([str(s) for s in speakers])
        # Cross-validated scores for calibration, then the final backend on everything.
        cal_scores, cal_labels = self._cv_scores(ivecs, spk)
        self.backend_, plda, cohort = self._fit_backend(ivecs, spk)
        calibration = LogisticCalibration(prior=self.calibration_prior).fit(cal_scores, cal_labels)
        self.scorer_ = Scorer(plda, cohort, self.asnorm_top, calibration)
        self.training_summary_ = {
            "backend_units": int(len(spk)),
            "calibration_trials": {"target": int(cal_labels.sum()),
                                   "nontarget": int((~cal_labels).sum())},
        }
        self._finish()
        return self

    def _fit_backend(self, ivecs, spk):
        """Backend + PLDA on i-vectors of labelled units; also returns the cohort."""
        backend = Backend(lda_dim=self.lda_dim, wccn=self.wccn).fit(ivecs, spk)
        X = backend.transform(ivecs)
        multi = _speakers_with_several(spk)
        mask = np.isin(spk, multi)
        plda = PLDA(n_iter=self.plda_iter).fit(X[mask], spk[mask])
        Z = plda.project(X)
        rng = check_random_state(self.random_state)
        cohort_idx = []
        for s in np.unique(spk):
            idx = np.flatnonzero(spk == s)
            cohort_idx.extend(rng.permutation(idx)[: self.cohort_per_speaker])
        return backend, plda, Z[np.sort(cohort_idx)]

    def _cv_scores(self, ivecs, spk):
        """Scores of trials among held-out speakers, for calibration (K-fold over speakers)."""
        rng = check_random_state(self.random_state)
        multi = _speakers_with_several(spk, at_least=4)
        if len(multi) < 2 * self.calibration_folds:
            raise ParameterError(
                f"only {len(multi)} speakers have 4 or more utterances/parts; calibration with "
                f"calibration_folds={self.calibration_folds} needs at least "
                f"{2 * self.calibration_folds}")
        folds = np.array_split(rng.permutation(multi), self.calibration_folds)
        scores, labels = [], []
        for fold in folds:
            held = np.isin(spk, fold)
            backend, plda, cohort = self._fit_backend(ivecs[~held], spk[~held])
            Z = plda.project(backend.transform(ivecs[held]))
            s_held = spk[held]
            enrol_means, probes, probe_spk = [], [], []
            for s in fold:
                idx = rng.permutation(np.flatnonzero(s_held == s))
                enrol_means.append(Z[idx[:3]].mean(axis=0))
                probes.append(Z[idx[3:]])
                probe_spk += [s] * (len(idx) - 3)
            scorer = Scorer(plda, cohort, self.asnorm_top)
            rows = scorer.prepare(scorer.enrol(np.stack(enrol_means), 3, np.float64), np.float64)
            scores.append(scorer.scores(rows, np.concatenate(probes)).ravel())
            labels.append((np.asarray(fold)[:, None] == np.asarray(probe_spk)[None, :]).ravel())
        return np.concatenate(scores), np.concatenate(labels)

    # ------------------------------------------------------------ derived state ---
    def _finish(self):
        """Compute the fingerprint and derived caches of a fitted/loaded model."""
        arrays, header = self._arrays_and_header()
        digest = hashlib.sha256(json.dumps(header["options"], sort_keys=True).encode())
        for name in sorted(arrays):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arrays[name]).tobytes())
        self.fingerprint_ = digest.hexdigest()[:16]

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
        stats = compute_stats(self.ubm_.params, feats)
        w = self.tv_.transform_one(stats.n, stats.f)
        z = self.plda_.project(self.backend_.transform(w[None, :]))[0]
        if not np.all(np.isfinite(z)):
            raise AudioConstraintError("the audio gave a non-finite voiceprint (it is not speech)")
        return Take(z.astype(np.float32), int(len(feats)), self.fingerprint_)

    def enroll(self, takes):
        """Takes (or waveforms) of one speaker -> :class:`Voiceprint`."""
        check_fitted(self, "fingerprint_")
        if isinstance(takes, (list, tuple)) and takes and not isinstance(takes[0], Take):
            takes = [self.extract(t) for t in takes]
        takes = check_takes(takes, self.fingerprint)
        mean = np.mean([t.vector.astype(np.float64) for t in takes], axis=0)
        row = self.scorer_.enrol(mean[None, :], len(takes))[0]
        return Voiceprint.from_vector(row, self.fingerprint)

    def score_many(self, V, take):
        """Score one probe against many voiceprints in one vectorised pass.

        Parameters
        ----------
        V : ndarray of shape (N, voiceprint_dim)
            Rows of :attr:`Voiceprint.vector`.
        take : Take or ndarray (waveform)

        Returns
        -------
        llrs : ndarray of shape (N,)
            Normalised scores (AS-norm when enabled).
        confidences : ndarray of shape (N,)
            Calibrated probabilities of "same speaker", in [0, 1].

        See Also
        --------
        vpcore.gallery.Gallery : keeps the rows prepared across queries and
            returns only the ``top_n`` best, calibrating only those.
        """
        from .gallery import Gallery

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
    def _arrays_and_header(self):
        check_fitted(self, "calibration_")
        arrays = {
            "ubm_weights": self.ubm_.weights_, "ubm_means": self.ubm_.means_,
            "ubm_variances": self.ubm_.variances_,
            "tv_matrix": self.tv_.T_.astype(np.float32), "tv_offset": self.tv_.offset_,
            "backend_mean": self.backend_.mean_, "backend_projection": self.backend_.projection_,
            "plda_mean": self.plda_.mean_, "plda_between": self.plda_.between_,
            "plda_within": self.plda_.within_, "cohort": self.cohort_,
        }
        header = {
            "format": "vpcore-model", "format_version": FORMAT_VERSION,
            "options": self._options(), "features": self.feature_options_.to_dict(),
            "backend": {"length_norm": self.backend_.length_norm},
            "calibration": self.calibration_.to_dict(),
            "training": getattr(self, "training_summary_", {}),
        }
        return arrays, header

    def save(self, path):
        """Write the model atomically as ``.npz`` arrays plus a JSON header (no pickle)."""
        arrays, header = self._arrays_and_header()
        header = dict(header, fingerprint=self.fingerprint)
        arrays = dict(arrays, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
        path = Path(path)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getvalue())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"model file {str(path)!r} does not exist")
        if not zipfile.is_zipfile(path):  # np.load would speak of pickles here
            raise ModelError(f"model file {str(path)!r} is not a vpcore model file "
                             "(not an .npz archive)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelError(f"model file {str(path)!r} is not a readable .npz: {exc}") from None
        if "header" not in arrays:
            raise ModelError(f"model file {str(path)!r} has no header")
        try:
            header = json.loads(arrays.pop("header").tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model file {str(path)!r} has a corrupt header: {exc}") from None
        if header.get("format") != "vpcore-model":
            raise ModelError(f"model file {str(path)!r} is not a vpcore model")
        if header.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"model file {str(path)!r} has format_version="
                             f"{header.get('format_version')!r}; this vpcore reads version "
                             f"{FORMAT_VERSION}")
        try:
            model = cls(**header["options"], features=FeatureOptions.from_dict(header["features"]))
            model.feature_options_ = model.features
            model.ubm_ = DiagonalGMM(n_components=int(arrays["ubm_weights"].shape[0]))
            model.ubm_.set_params_arrays(arrays["ubm_weights"], arrays["ubm_means"],
                                         arrays["ubm_variances"])
            model.tv_ = TotalVariability(rank=int(arrays["tv_matrix"].shape[1]))
            model.tv_.set_matrix(arrays["tv_matrix"].astype(np.float64), model.ubm_.n_components,
                                 arrays["tv_offset"])
            model.backend_ = Backend(lda_dim=header["options"]["lda_dim"],
                                     wccn=header["options"]["wccn"],
                                     length_norm=header["backend"]["length_norm"])
            model.backend_.set_arrays(arrays["backend_mean"], arrays["backend_projection"])
            plda = PLDA().set_arrays(arrays["plda_mean"], arrays["plda_between"],
                                     arrays["plda_within"])
            model.scorer_ = Scorer(plda, check_array("cohort", arrays["cohort"], ndim=2),
                                   model.asnorm_top,
                                   LogisticCalibration.from_dict(header["calibration"]))
            model.training_summary_ = header.get("training", {})
        except (KeyError, TypeError, ParameterError) as exc:
            raise ModelError(f"model file {str(path)!r} is inconsistent: {exc}") from None
        model._finish()
        if header.get("fingerprint") not in (None, model.fingerprint_):
            raise ModelError(f"model file {str(path)!r} is corrupt: fingerprint "
                             f"{header.get('fingerprint')} != computed {model.fingerprint_}")
        return model


def _speakers_with_several(spk, at_least=2):
    labels, counts = np.unique(spk, return_counts=True)
    return labels[counts >= at_least]


def _progress_printer(progress):
    if not progress:
        return None

    def report(stage, iteration, value):
        print(f"  {stage:>10} iter {iteration:2d}: {value:.4f}", flush=True)

    return report


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
