"""Scoring trial lists with a model: the engine behind ``vpcore eval`` and the benchmarks.

Two trial formats are read (see :func:`vpcore.metrics.read_trials`):

* VoxCeleb/Kaldi pairs ``1 spkA/utt1.wav spkB/utt2.wav``: the first file is a
  one-utterance enrolment;
* model trials ``model utt target|nontarget`` with an enrolment list
  ``model take1 take2 ...`` (:func:`vpcore.corpus.read_enrollments`).

Every audio file is turned into a :class:`~vpcore.model.Take` once. With a
``cache_dir`` the takes are kept on disk per file, so an interrupted run
resumes where it stopped. A cached take is named by :func:`file_cache_key`:
the model's fingerprint, the vpcore code that computed it
(:func:`vpcore.code_key`) and the file's path, size and modification time, so
neither a retrained model, nor changed code, nor an edited audio file ever
reuses a stale entry.
"""

import hashlib
from functools import partial
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from ._provenance import code_key
from .audio import load_file
from .corpus import read_enrollments
from .errors import AudioDecodeError, AudioError, ParameterError
from .metrics import read_trials
from .persistence import atomic_write
from .voiceprint import Take

__all__ = ["TrialScores", "file_cache_key", "take_of_file", "score_trials"]


class TrialScores:
    """Scores of a trial list: parallel arrays plus the trial keys."""

    def __init__(self, enroll, test, labels, llrs, confidences, skipped, skipped_files=None,
                 skipped_trials=None):
        self.enroll = enroll
        self.test = test
        self.labels = np.asarray(labels, dtype=bool)
        self.llrs = np.asarray(llrs, dtype=np.float64)
        self.confidences = np.asarray(confidences, dtype=np.float64)
        self.skipped = skipped
        #: {path: reason} of every audio file that gave no take (enrolment or test)
        self.skipped_files = dict(skipped_files or {})
        #: [(enroll key, test, reason)] of every trial left out
        self.skipped_trials = list(skipped_trials or [])

    def __len__(self):
        return len(self.labels)


def file_cache_key(model, path):
    """Hex key of everything a value cached from ``model`` and one audio file depends on.

    The model's fingerprint, :func:`vpcore.code_key`, and the file's resolved
    path, size and modification time (nanoseconds). Raises
    :class:`~vpcore.errors.AudioDecodeError` when the file cannot be read.
    """
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as exc:
        raise AudioDecodeError(f"cannot read audio file {path}: {exc}") from None
    ident = f"{model.fingerprint}|{code_key()}|{path}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode()).hexdigest()[:40]


def take_of_file(model, path, cache_dir=None):
    """The :class:`Take` of one audio file, through the on-disk cache when given.

    Returns None when the file has too little speech or cannot be read.
    """
    return _take_or_reason(model, path, cache_dir)[0]


def _take_or_reason(model, path, cache_dir=None):
    """``(take, None)``, or ``(None, reason)`` when the file gives no take."""
    cached = None
    if cache_dir is not None:
        try:
            cached = Path(cache_dir) / f"{file_cache_key(model, path)}.take"
        except AudioError as exc:
            return None, str(exc)  # missing or unreadable: scored as skipped, like bad audio
    if cached is not None and cached.is_file():
        return Take.from_bytes(cached.read_bytes()), None
    try:
        take = model.extract(load_file(path, model.feature_options_.sample_rate))
    except AudioError as exc:
        return None, str(exc)
    if cached is not None:
        atomic_write(cached, take.to_bytes())
    return take, None


def _takes(model, paths, cache_dir, n_jobs, progress):
    paths = sorted(set(paths))
    job = partial(_take_or_reason, model, cache_dir=cache_dir)
    items = paths
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(paths, desc="takes", unit="file")
    if n_jobs == 1:
        results = [job(p) for p in items]
    else:
        results = Parallel(n_jobs=n_jobs, batch_size=16)(delayed(job)(p) for p in items)
    return dict(zip(paths, results))


def score_trials(model, trials_path, root, enrollments_path=None, cache_dir=None, n_jobs=1,
                 progress=False):
    """Score every trial of a list with ``model``.

    Parameters
    ----------
    model : VoiceprintModel
    trials_path : path
        Trial list in either format.
    root : path
        Folder the audio paths of the lists are relative to.
    enrollments_path : path or None
        Enrolment list, required for model trials (``model utt target``).
    cache_dir : path or None
        Per-file cache of takes (makes a run resumable).
    n_jobs : int
    progress : bool

    Returns
    -------
    TrialScores
        Trials whose audio had too little speech (or could not be read) are left out,
        counted in ``skipped`` and named in ``skipped_trials``; the files behind them
        are in ``skipped_files`` with the reason.

    Raises
    ------
    ParameterError
        Model trials (``model utt target``) without an enrolment list, a trial model
        missing from the enrolment list, or no trial left to score.
    """
    root = Path(root)
    trials = read_trials(trials_path)
    if enrollments_path is None and _model_trials(trials_path):
        raise ParameterError(
            f"trial list {trials_path} holds model trials ('model utt target|nontarget'): "
            "their models are defined by an enrolment list 'model take1 take2 ...', "
            "which must be given (enrollments_path; --enroll on the command line)")
    enrol = read_enrollments(enrollments_path, root) if enrollments_path else None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)

    def enrol_paths(key):
        if enrol is not None:
            if key not in enrol:
                raise ParameterError(f"trial model {key!r} is not in {enrollments_path}")
            return enrol[key]
        return [root / key]

    files = {root / test for _, _, test in trials}
    for key in {e for _, e, _ in trials}:
        files.update(enrol_paths(key))
    results = _takes(model, files, cache_dir, n_jobs, progress)
    takes = {p: take for p, (take, _) in results.items()}
    skipped_files = {str(p): reason for p, (take, reason) in results.items() if take is None}
    voiceprints = {}
    for key in {e for _, e, _ in trials}:
        model_takes = [takes[p] for p in enrol_paths(key) if takes[p] is not None]
        voiceprints[key] = model.enroll(model_takes) if model_takes else None
    rows = []
    skipped_trials = []
    for label, key, test in trials:
        vp, take = voiceprints[key], takes[root / test]
        if vp is None or take is None:
            reason = (f"no usable enrolment take of {key}" if vp is None
                      else f"test file unusable: {skipped_files[str(root / test)]}")
            skipped_trials.append((key, test, reason))
            continue
        s = model.verify(vp, take)
        rows.append((key, test, label, s.llr, s.confidence))
    if not rows:
        first = next(iter(sorted(skipped_files.items())), None)
        example = f"; e.g. {first[0]}: {first[1]}" if first else ""
        raise ParameterError(f"no trial of {trials_path} could be scored: "
                             f"{len(skipped_files)} of {len(files)} audio files unusable"
                             f"{example}")
    e, t, lab, llr, conf = zip(*rows)
    return TrialScores(list(e), list(t), lab, llr, conf, len(skipped_trials), skipped_files,
                       skipped_trials)


def _model_trials(path):
    """True if the trial list is in the ``model utt target|nontarget`` form."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            if fields:
                return fields[-1] in ("target", "nontarget")
    return False
