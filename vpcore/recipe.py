"""The training recipe: labelled speech in, fitted stages out.

One function per step, each taking the model's hyper-parameters (``params``:
the :class:`~vpcore.model.VoiceprintModel` being trained, read only)::

    features ─ extract_features / batch_features
      ─▶ UBM ─ fit_ubm
      ─▶ Baum-Welch stats ─▶ total variability ─ fit_tv
      ─▶ i-vectors of units ─ unit_ivectors (utterances; parts of one-utterance speakers)
      ─▶ backend + PLDA + cohort ─ fit_backend_stages
      ─▶ cross-validated trial scores ─ cv_trials ─▶ calibration ─ fit_calibration

:func:`train` runs them all over batches held by an executor (local or Dask,
:mod:`vpcore.parallel`); :func:`fit_scoring` runs the last three on
i-vectors. The map-reduce steps run on batches of 64 utterances; their results
are statistics that add up, so a cluster gives the model a local run gives.

The backend steps take ``extra``: further labelled units (e.g. augmented
copies of training speech as extra sessions) that join the training of the
backend and PLDA, and every training fold of the calibration, but are never
drawn into the cohort nor enrolled or probed in the calibration trials.
:func:`augmented_features` makes such copies (:class:`vpcore.augment.Augmenter`)
and :func:`train` turns their features into extra units with the UBM and
total-variability model trained on the clean utterances::

    augmented_features ─▶ (after fit_tv) unit_ivectors ─▶ extra of fit_scoring
"""

import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits

from ._provenance import code_key
from ._validation import check_array, check_int, check_random_state
from .backend import Backend
from .calibration import LogisticCalibration
from .errors import ParameterError, TooLittleSpeechError
from .features import extract_features as _extract
from .ivector import TotalVariability
from .parallel import get_executor
from .plda import PLDA
from .scoring import Scorer
from .stats import compute_stats
from .ubm import DiagonalGMM

__all__ = ["extract_features", "make_batches", "batch_features", "make_augmenter",
           "augmented_features", "check_labelled", "progress_printer", "fit_waveforms",
           "fit_features", "train", "fit_ubm", "fit_tv", "unit_ivectors", "fit_backend_stages",
           "cv_trials", "fit_calibration", "fit_scoring"]

#: Utterances per map-reduce batch.
BATCH = 64


# ------------------------------------------------------------------ features ---
def _features_or_none(samples, options):
    try:
        if callable(samples):  # loaded here, in the worker that needs it
            samples = samples()
        return _extract(samples, options)
    except TooLittleSpeechError:
        return None


def extract_features(waveforms, options, n_jobs=1, progress=False):
    """Front-end features of many waveforms (joblib over ``n_jobs``); None: too little speech."""
    items = waveforms
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(waveforms, desc="features", unit="utt")
    if n_jobs == 1:
        return [_features_or_none(w, options) for w in items]
    return Parallel(n_jobs=n_jobs)(delayed(_features_or_none)(w, options) for w in items)


def make_batches(items):
    """``(start index, items)`` batches of the training list."""
    return [(i, items[i:i + BATCH]) for i in range(0, len(items), BATCH)]


def batch_features(batch, options):
    """A batch of waveforms (or loaders) -> the same batch of features."""
    start, waveforms = batch
    return start, [_features_or_none(w, options) for w in waveforms]


# -------------------------------------------------------------- augmentation ---
#: Other speakers' utterances offered to each utterance's babble.
BABBLE_POOL = 8


def make_augmenter(params):
    """The :class:`~vpcore.augment.Augmenter` of ``params.augment_conditions``, seeded by
    ``params.random_state``; ParameterError for unknown conditions or missing codecs."""
    from .augment import CONDITIONS, DEFAULT_CONDITIONS, Augmenter

    conditions = (DEFAULT_CONDITIONS if params.augment_conditions is None
                  else params.augment_conditions)
    if isinstance(conditions, str) or not hasattr(conditions, "__iter__"):
        raise ParameterError(f"augment_conditions={conditions!r} must be a sequence of "
                             f"condition names out of {list(CONDITIONS)}")
    seed = 0 if params.random_state is None else params.random_state
    return Augmenter(conditions=tuple(conditions), random_state=seed)


def _augmented_batch(batch, options, augmenter):
    """A batch of ``(waveform or loader, babble sources, seed)`` -> features of the copies."""
    start, items = batch
    feats = []
    for samples, sources, seed in items:
        def degraded(samples=samples, sources=sources, seed=seed):
            x = samples() if callable(samples) else samples
            return augmenter.augment(x, seed=seed, babble_sources=sources)[0]
        feats.append(_features_or_none(degraded, options))
    return start, feats


def _augmentation_batches(waveforms, speakers, augmenter, copies):
    """Batches of what :func:`_augmented_batch` needs for every copy, and their speakers."""
    spk = np.asarray([str(s) for s in speakers])
    rng = np.random.default_rng([int(augmenter.random_state), 7])
    sources = []
    for i in range(len(waveforms)):
        others = np.flatnonzero(spk != spk[i])
        pick = rng.choice(others, size=min(BABBLE_POOL, len(others)), replace=False)
        sources.append([waveforms[j] for j in np.sort(pick)])
    items = [(waveforms[i], sources[i], [copy, i])
             for copy in range(1, copies + 1) for i in range(len(waveforms))]
    return make_batches(items), [str(s) for s in spk] * copies


def augmented_features(waveforms, speakers, options, augmenter, copies, n_jobs=1,
                       executor=None, progress=False):
    """Front-end features of ``copies`` augmented copies of every training utterance.

    Copy ``c`` of utterance ``i`` is ``augmenter.augment(x_i, seed=[c, i])``
    (the augmenter's ``random_state`` and the pair decide the condition and
    its parameters); its babble, when drawn, is made of up to
    :data:`BABBLE_POOL` utterances of other speakers, a seeded draw. So the
    copies depend only on the training list and the seeds, whether they are
    made here (joblib over ``n_jobs``) or on the workers of ``executor``.

    Parameters
    ----------
    waveforms : sequence of ndarray or of callables returning one
    speakers : sequence of str
    options : FeatureOptions
    augmenter : vpcore.augment.Augmenter
    copies : int
        Copies per utterance, >= 1.
    n_jobs : int
        Processes when ``executor`` is None.
    executor : DaskExecutor or None

    Returns
    -------
    features : list of ndarray (T, D) or None
        Copy 1 of every utterance, then copy 2, ...; None: too little speech left.
    speakers : list of str
        The speaker of each.
    """
    check_int("copies", copies, low=1)
    waveforms = check_labelled("waveforms", waveforms, speakers)
    batches, x_speakers = _augmentation_batches(waveforms, speakers, augmenter.prepare(),
                                                copies)
    if executor is not None:
        done = executor.gather(executor.map(_augmented_batch, executor.scatter(batches),
                                            options, augmenter))
    else:
        if progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc="augmented copies", unit="batch")
        done = Parallel(n_jobs=n_jobs)(delayed(_augmented_batch)(b, options, augmenter)
                                       for b in batches)
    return [f for _, feats in sorted(done, key=lambda b: b[0]) for f in feats], x_speakers


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
            vectors = []
            for p in parts:
                stats = compute_stats(ubm_params, p)
                vectors.append(tv.transform_one(stats.n, stats.f))
            out.append((index, vectors))
    return out


def _split_frames(frames, min_frames, max_parts):
    """Cut one utterance's frames into up to ``max_parts`` contiguous parts of >= min_frames."""
    parts = min(max_parts, len(frames) // min_frames)
    if parts < 2:
        return [frames]
    return np.array_split(frames, parts)


# ---------------------------------------------------------------- the recipe ---
def check_labelled(name, items, speakers):
    """``items`` as a list, as long as ``speakers`` (ParameterError otherwise)."""
    items = list(items)
    if len(items) != len(speakers):
        raise ParameterError(f"{name} ({len(items)}) and their speakers ({len(speakers)}) "
                             "must have the same length")
    return items


def _check_features(name, features, speakers):
    return [None if f is None else check_array(name, f, ndim=2, dtype=np.float32)
            for f in check_labelled(name, features, speakers)]


def progress_printer(progress):
    """``progress(stage, iteration, value)`` printing EM objectives, or None when quiet."""
    if not progress:
        return None

    def report(stage, iteration, value):
        print(f"  {stage:>10} iter {iteration:2d}: {value:.4f}", flush=True)

    return report


def fit_waveforms(params, waveforms, speakers, scheduler=None, progress=False):
    """Every stage from labelled waveforms (or loaders), augmented copies included.

    Features (and the copies of ``params.augment_copies``) are made here with
    joblib, or on the Dask cluster of ``scheduler``. Returns the stages, as
    :meth:`VoiceprintModel.set_fitted` takes them.
    """
    options = params.feature_options
    # copy c of utterance i comes after copy c - 1 of every utterance (augmented_features)
    copy_of = np.tile(np.arange(len(waveforms)), params.augment_copies)
    if scheduler is None:
        feats = extract_features(waveforms, options, params.n_jobs, progress)
        extra = None
        if params.augment_copies:
            extra = (*augmented_features(waveforms, speakers, options, make_augmenter(params),
                                         params.augment_copies, n_jobs=params.n_jobs,
                                         progress=progress), copy_of)
        return fit_features(params, feats, speakers, None, progress, extra)
    executor = get_executor(scheduler)
    try:
        loaders = executor.scatter(make_batches(waveforms))
        batches = executor.map(batch_features, loaders, options)
        extra = None
        if params.augment_copies:  # the copies' features stay on the workers
            augmenter = make_augmenter(params).prepare()
            x_batches, x_spk = _augmentation_batches(waveforms, speakers, augmenter,
                                                     params.augment_copies)
            extra = (executor.map(_augmented_batch, executor.scatter(x_batches), options,
                                  augmenter), x_spk, copy_of)
        return train(params, batches, speakers, executor, progress_printer(progress), extra)
    finally:
        executor.close()


def fit_features(params, features, speakers, scheduler=None, progress=False,
                 extra_features=None):
    """Every stage from precomputed features (None: no speech) and optional extra sessions
    ``(features, speakers[, copy_of])`` for the backend and PLDA; returns the stages.

    ``copy_of``, when the extra sessions are copies of the training utterances, gives
    the index in ``features`` of the utterance each copies (see :func:`cv_trials`)."""
    features = _check_features("features", features, speakers)
    executor = get_executor(scheduler)
    try:
        batches = executor.scatter(make_batches(features))
        extra = None
        if extra_features is not None:
            x_feats = _check_features("extra_features", *extra_features[:2])
            copy_of = extra_features[2] if len(extra_features) > 2 else None
            if copy_of is not None:
                copy_of = np.asarray(copy_of)
                if (copy_of.shape != (len(x_feats),) or copy_of.dtype.kind not in "iu"
                        or not np.all((copy_of >= 0) & (copy_of < len(features)))):
                    raise ParameterError(
                        f"extra_features copy_of must give, for each of the {len(x_feats)} "
                        f"extra sessions, the index of one of the {len(features)} utterances")
            extra = (executor.scatter(make_batches(x_feats)),
                     [str(s) for s in extra_features[1]], copy_of)
        return train(params, batches, speakers, executor, progress_printer(progress), extra)
    finally:
        if scheduler is not None:
            executor.close()


def train(params, batches, speakers, executor, progress=None, extra=None):
    """Every step over batches of features held by ``executor``.

    Parameters
    ----------
    params : VoiceprintModel
        Hyper-parameters (read only).
    batches : list
        Executor handles of ``(start, [features or None, ...])`` batches.
    speakers : sequence of str
        Speaker of each utterance, in batch order.
    executor : LocalExecutor or DaskExecutor
    progress : callable or None
        ``progress(stage, iteration, value)`` for the EM objectives.
    extra : (batches, speakers, copy_of) or None
        Features of further sessions (e.g. :func:`augmented_features`), batched
        like ``batches``: after the UBM and total-variability model (trained on
        ``batches`` only) they become extra units of :func:`fit_scoring`.
        ``copy_of`` (or None) gives, for copies, the index of the training
        utterance each copies, so the calibration trials know which clean unit
        each copies.

    Returns
    -------
    dict
        The fitted stages, as :meth:`VoiceprintModel.set_fitted` takes them.
    """
    seconds = {}
    lengths = np.concatenate(executor.gather(executor.map(_batch_lengths, batches)))
    keep = lengths > 0
    if not keep.all():
        warnings.warn(f"{int((~keep).sum())} of {len(keep)} training utterances had too "
                      "little speech and were skipped", stacklevel=4)
    kept_speakers = [str(s) for s, k in zip(speakers, keep) if k]
    if len(set(kept_speakers)) < 4:
        raise ParameterError(f"training data has {len(set(kept_speakers))} speakers with "
                             "speech; at least 4 are needed")
    start = time.perf_counter()
    ubm = fit_ubm(params, batches, lengths, executor, progress)
    seconds["ubm"] = time.perf_counter() - start
    start = time.perf_counter()
    tv = fit_tv(params, batches, ubm, executor, progress)
    seconds["total_variability"] = time.perf_counter() - start
    start = time.perf_counter()
    ivecs, unit_spk, origin = unit_ivectors(params, batches, ubm, tv, speakers, keep, executor,
                                            with_origin=True)
    extra_units, origins = None, None
    if extra is not None:
        x_batches, x_speakers, copy_of = extra
        x_keep = np.concatenate(executor.gather(executor.map(_batch_lengths, x_batches))) > 0
        if x_keep.any():
            *extra_units, x_origin = unit_ivectors(params, x_batches, ubm, tv, x_speakers,
                                                   x_keep, executor, with_origin=True)
            if copy_of is not None:
                origins = (origin, np.asarray(copy_of)[x_origin])
    seconds["ivectors"] = time.perf_counter() - start
    start = time.perf_counter()
    backend, scorer, summary = fit_scoring(params, ivecs, unit_spk, extra_units,
                                           origins=origins)
    seconds["backend"] = time.perf_counter() - start
    summary = {
        "utterances": int(keep.sum()), "speakers": len(set(kept_speakers)),
        "frames": int(lengths.sum()),
        "code": code_key(),  # provenance only: the fingerprint covers parameters
        **summary,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    return {"feature_options": params.feature_options, "ubm": ubm, "tv": tv,
            "backend": backend, "scorer": scorer, "training_summary": summary}


def fit_ubm(params, batches, lengths, executor, progress=None):
    """UBM on a seeded subset of the pooled frames, which stays where the batches are."""
    fraction = min(1.0, params.ubm_max_frames / lengths.sum())
    seed = 0 if params.random_state is None else int(params.random_state)
    frames = executor.map(_batch_sample_frames, batches, fraction, seed)
    ubm = DiagonalGMM(n_components=params.n_components, n_iter=params.ubm_iter,
                      max_frames=params.ubm_max_frames, random_state=params.random_state)
    return ubm.fit_chunks(frames, executor, progress=progress)


def fit_tv(params, batches, ubm, executor, progress=None):
    """Baum-Welch statistics (kept with the batches) and the total-variability model."""
    stats = executor.map(_batch_stats, batches, ubm.params)
    tv = TotalVariability(rank=params.tv_rank, n_iter=params.tv_iter,
                          random_state=params.random_state)
    tv.fit_chunks(stats, executor, progress=progress)
    # T is stored in float32, so that a saved and reloaded model scores identically.
    return tv.set_fitted(tv.T_.astype(np.float32).astype(np.float64), params.n_components,
                         tv.offset_)


def unit_ivectors(params, batches, ubm, tv, speakers, keep, executor, with_origin=False):
    """I-vectors (U, S) and speakers (U,) of the backend's units (and, ``with_origin``, the
    index (U,) of the utterance each unit comes from).

    The units are the utterances with speech; a speaker with one such
    utterance has it cut into parts of at least ``split_frames`` frames, so the
    backend sees within-speaker variation.
    """
    kept_speakers = [str(s) for s, k in zip(speakers, keep) if k]
    counts = {}
    for s in kept_speakers:
        counts[s] = counts.get(s, 0) + 1
    split = np.zeros(len(keep), dtype=bool)
    split[np.flatnonzero(keep)] = [counts[s] == 1 for s in kept_speakers]
    split_frames = params.split_frames if params.split_frames else 0
    units = executor.gather(executor.map(_batch_unit_ivectors, batches, ubm.params, tv, split,
                                         split_frames))
    ivecs, unit_spk, origin = [], [], []
    for batch_units in units:
        for index, vectors in batch_units:
            ivecs.extend(vectors)
            unit_spk.extend([str(speakers[index])] * len(vectors))
            origin.extend([index] * len(vectors))
    if with_origin:
        return np.stack(ivecs), unit_spk, np.asarray(origin)
    return np.stack(ivecs), unit_spk


def _speakers_with_several(spk, at_least=2):
    labels, counts = np.unique(spk, return_counts=True)
    return labels[counts >= at_least]


def _join(ivecs, spk, extra):
    if extra is None:
        return ivecs, spk
    x_ivecs, x_spk = extra
    return np.concatenate([ivecs, x_ivecs]), np.concatenate([spk, np.asarray(x_spk, dtype=str)])


#: The stages that ``extra`` units train (measured in ``benchmarks/multicondition.py``:
#: copies in the LDA alone help degraded probes half as much, in the PLDA alone they
#: break the calibration of a shared unseen channel).
EXTRA_STAGES = ("backend", "plda")


def fit_backend_stages(params, ivecs, spk, extra=None, extra_stages=EXTRA_STAGES):
    """Backend and PLDA on labelled units (plus ``extra`` for ``extra_stages``); the cohort
    from ``ivecs``' units.

    Returns ``(backend, plda, cohort (K, R))``: ``cohort_per_speaker`` seeded
    units of each speaker of ``spk``, in PLDA space.
    """
    unknown = set(extra_stages) - set(EXTRA_STAGES)
    if unknown:
        raise ParameterError(f"extra_stages={list(extra_stages)!r}: {sorted(unknown)} unknown; "
                             f"stages are {list(EXTRA_STAGES)}")
    all_ivecs, all_spk = _join(ivecs, spk, extra)
    stage_data = {name: (all_ivecs, all_spk) if name in extra_stages else (ivecs, spk)
                  for name in EXTRA_STAGES}
    backend = Backend(lda_dim=params.lda_dim, wccn=params.wccn).fit(*stage_data["backend"])
    p_ivecs, p_spk = stage_data["plda"]
    X = backend.transform(p_ivecs)
    mask = np.isin(p_spk, _speakers_with_several(p_spk))
    plda = PLDA(n_iter=params.plda_iter).fit(X[mask], p_spk[mask])
    Z = plda.project(X[:len(spk)])  # the units of ``ivecs`` come first in either case
    rng = check_random_state(params.random_state)
    cohort_idx = []
    for s in np.unique(spk):
        idx = np.flatnonzero(spk == s)
        cohort_idx.extend(rng.permutation(idx)[: params.cohort_per_speaker])
    return backend, plda, Z[np.sort(cohort_idx)]


def cv_trials(params, ivecs, spk, extra=None, extra_stages=EXTRA_STAGES, origins=None):
    """Scores and labels of trials among held-out speakers, for calibration.

    K-fold over the speakers with 4 or more units (``calibration_folds``):
    each fold's backend, PLDA and cohort are trained without it, and each
    held-out speaker is enrolled with 3 seeded units and probed with the rest
    against every enrolment of the fold, through the same :class:`Scorer` as
    the service. ``extra`` units of the other speakers join the fold's
    training; those of the held-out speakers are probes too, so the
    calibration also learns clean enrolments against degraded probes (the
    service's case when a caller's line or room changes). ``origins``, a pair
    of arrays giving for each unit of ``ivecs`` and of ``extra`` the
    utterance it comes from, keeps the copies of a speaker's enrolment units
    out of its probes (without it, every copy is a probe).

    Returns
    -------
    scores : ndarray of shape (M,)
        Normalised scores (AS-norm when enabled).
    labels : ndarray of bool, shape (M,)
    """
    rng = check_random_state(params.random_state)
    multi = _speakers_with_several(spk, at_least=4)
    if len(multi) < 2 * params.calibration_folds:
        raise ParameterError(
            f"only {len(multi)} speakers have 4 or more utterances/parts; calibration with "
            f"calibration_folds={params.calibration_folds} needs at least "
            f"{2 * params.calibration_folds}")
    if origins is not None:
        origins = tuple(np.asarray(o, dtype=np.int64) for o in origins)
        if extra is None or [len(o) for o in origins] != [len(spk), len(extra[1])]:
            raise ParameterError(
                f"origins of lengths {[len(o) for o in origins]} must give the utterance of "
                f"each of the {len(spk)} units and each extra unit")
    folds = np.array_split(rng.permutation(multi), params.calibration_folds)
    if extra is not None:
        x_ivecs, x_spk = extra[0], np.asarray(extra[1], dtype=str)
    origin, x_origin = origins if origins is not None else (None, None)
    scores, labels = [], []
    for fold in folds:
        held = np.isin(spk, fold)
        fold_extra, x_held = None, None
        if extra is not None:
            x_held = np.isin(x_spk, fold)
            fold_extra = (x_ivecs[~x_held], x_spk[~x_held])
        backend, plda, cohort = fit_backend_stages(params, ivecs[~held], spk[~held], fold_extra,
                                                   extra_stages)
        Z = plda.project(backend.transform(ivecs[held]))
        s_held = spk[held]
        if extra is not None:
            Zx = plda.project(backend.transform(x_ivecs[x_held]))
            sx_held = x_spk[x_held]
            if origins is not None:
                o_held, xo_held = origin[held], x_origin[x_held]
        enrol_means, probes, probe_spk = [], [], []
        for s in fold:
            idx = rng.permutation(np.flatnonzero(s_held == s))
            enrol_means.append(Z[idx[:3]].mean(axis=0))
            probes.append(Z[idx[3:]])
            probe_spk += [s] * (len(idx) - 3)
            if extra is not None:
                copies = sx_held == s
                if origins is not None:  # not the copies of the enrolment's own units
                    copies &= ~np.isin(xo_held, o_held[idx[:3]])
                probes.append(Zx[copies])
                probe_spk += [s] * int(copies.sum())
        scorer = Scorer(plda, cohort, params.asnorm_top)
        V = scorer.enrol(np.stack(enrol_means), 3, np.float64)
        if getattr(params, "in_domain_cohort", "probe") == "both":
            # the fold's enrolments are the in-domain cohort of both sides, as in a gallery
            scores.append(scorer.in_domain_scores(V, np.concatenate(probes)).ravel())
        else:
            rows = scorer.prepare(V, np.float64)
            scores.append(scorer.scores(rows, np.concatenate(probes)).ravel())
        labels.append((np.asarray(fold)[:, None] == np.asarray(probe_spk)[None, :]).ravel())
    return np.concatenate(scores), np.concatenate(labels)


def fit_calibration(params, scores, labels):
    """The calibration stage, fitted on cross-validated trial scores."""
    return LogisticCalibration(prior=params.calibration_prior).fit(scores, labels)


def fit_scoring(params, ivecs, speakers, extra=None, extra_stages=EXTRA_STAGES, origins=None):
    """Backend and the whole :class:`Scorer` (PLDA, cohort, AS-norm, calibration) on units.

    Returns ``(backend, scorer, summary)``; calibration is fitted on
    cross-validated scores first (:func:`cv_trials`, which also takes
    ``origins``), then the backend and PLDA on everything.
    """
    ivecs = check_array("ivecs", ivecs, ndim=2)
    spk = np.asarray([str(s) for s in speakers])
    if extra is not None:
        extra = (check_array("extra ivecs", extra[0], ndim=2, n_cols=ivecs.shape[1]),
                 [str(s) for s in extra[1]])
    cal_scores, cal_labels = cv_trials(params, ivecs, spk, extra, extra_stages, origins)
    backend, plda, cohort = fit_backend_stages(params, ivecs, spk, extra, extra_stages)
    calibration = fit_calibration(params, cal_scores, cal_labels)
    summary = {
        "backend_units": int(len(spk)),
        "calibration_trials": {"target": int(cal_labels.sum()),
                               "nontarget": int((~cal_labels).sum())},
    }
    if extra is not None:
        summary["extra_units"] = int(len(extra[1]))
    return backend, Scorer(plda, cohort, params.asnorm_top, calibration), summary
