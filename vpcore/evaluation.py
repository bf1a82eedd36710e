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
from .model import Take

__all__ = ["TrialScores", "file_cache_key", "take_of_file", "score_trials"]


class TrialScores:
    """Scores of a trial list: parallel arrays plus the trial keys."""

    def __init__(self, enroll, test, labels, llrs, confidences, skipped):
        self.enroll = enroll
        self.test = test
        self.labels = np.asarray(labels, dtype=bool)
        self.llrs = np.asarray(llrs, dtype=np.float64)
        self.confidences = np.asarray(confidences, dtype=np.float64)
        self.skipped = skipped

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
    cached = None
    if cache_dir is not None:
        try:
            cached = Path(cache_dir) / f"{file_cache_key(model, path)}.take"
        except AudioError:
            return None  # missing or unreadable: scored as skipped, like bad audio
    if cached is not None and cached.is_file():
        return Take.from_bytes(cached.read_bytes())
    try:
        take = model.extract(load_file(path, model.feature_options_.sample_rate))
    except AudioError:
        return None
    if cached is not None:
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(take.to_bytes())
        tmp.replace(cached)
    return take


def _takes(model, paths, cache_dir, n_jobs, progress):
    paths = sorted(set(paths))
    job = partial(take_of_file, model, cache_dir=cache_dir)
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
        Trials whose audio had too little speech are left out and counted in ``skipped``.
    """
    root = Path(root)
    trials = read_trials(trials_path)
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
    takes = _takes(model, files, cache_dir, n_jobs, progress)
    voiceprints = {}
    for key in {e for _, e, _ in trials}:
        model_takes = [takes[p] for p in enrol_paths(key) if takes[p] is not None]
        voiceprints[key] = model.enroll(model_takes) if model_takes else None
    rows = []
    skipped = 0
    for label, key, test in trials:
        vp, take = voiceprints[key], takes[root / test]
        if vp is None or take is None:
            skipped += 1
            continue
        s = model.verify(vp, take)
        rows.append((key, test, label, s.llr, s.confidence))
    if not rows:
        raise ParameterError(f"no trial of {trials_path} could be scored (all audio unusable)")
    e, t, lab, llr, conf = zip(*rows)
    return TrialScores(list(e), list(t), lab, llr, conf, skipped)
