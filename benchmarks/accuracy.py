"""Accuracy of every stage on a trial list, with the baselines, in one run.

Default: the development protocol of the shared corpora
(``trials/speechocean762-dev.*``) scored with a model trained WITHOUT the
development speakers (trained into ``cache/bench/dev_model.npz`` when missing)::

    python benchmarks/accuracy.py
    python benchmarks/accuracy.py --model m.npz --root DATA --trials t.txt [--enroll e.txt]

Trial lists: VoxCeleb/Kaldi pairs ``1 a/x.wav b/y.wav`` (one-utterance
enrolments), or ``model utt target|nontarget`` with an enrolment list
``model take1 take2 ...``. Paths are relative to ``--root``.

Systems scored on the same trials (same front end, same UBM, same i-vector
extractor where they apply):

=========================== ====================================================
``gmm_ubm_map``             UBM means MAP-adapted to the enrolment frames
                            (relevance 16), frame-averaged LLR (Reynolds 2000)
``ivector_cosine``          cosine of centred i-vectors (Dehak 2011)
``ivector_lda_cosine``      cosine after the model's centring + LDA + length-norm
``plda``                    two-covariance PLDA LLR (no score normalisation)
``plda_asnorm``             + adaptive symmetric score normalisation
``calibrated``              + the model's calibration: the service's confidence
=========================== ====================================================

Reports EER, minDCF (p_target 0.01 and 0.001), minCllr for all; actDCF and
Cllr for the systems whose scores claim to be LLRs; FAR/FRR at the service's
confidence threshold 0.7 for the calibrated system. With a speaker table
(``speakers.psv``: ``speaker|sex|age``) the trials are also split into children
(age < 13) and adults (both sides of the trial in the group; cross-group
non-target trials are left out of both). Writes ``accuracy-<name>.json``, a
DET plot and a score histogram.
"""

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

THRESHOLD = 0.7
LLR_SYSTEMS = ("plda", "calibrated")
SYSTEMS = ("gmm_ubm_map", "ivector_cosine", "ivector_lda_cosine", "plda", "plda_asnorm",
           "calibrated")
LABELS = {
    "gmm_ubm_map": "GMM-UBM, MAP means (r=16), frame-avg LLR",
    "ivector_cosine": "i-vector, cosine",
    "ivector_lda_cosine": "i-vector, LDA + length-norm, cosine",
    "plda": "i-vector / PLDA (raw LLR)",
    "plda_asnorm": "i-vector / PLDA + AS-norm",
    "calibrated": "i-vector / PLDA + AS-norm, calibrated (vpcore)",
}


# ------------------------------------------------------------------- per file ---

class Utt:
    """What every system needs from one audio file."""

    __slots__ = ("features", "take", "ivector")

    def __init__(self, features, take, ivector):
        self.features, self.take, self.ivector = features, take, ivector


def _cache_file(cache_dir, model, path):
    """Cache entry named by :func:`vpcore.evaluation.file_cache_key` (model, code, file)."""
    from vpcore.errors import AudioError
    from vpcore.evaluation import file_cache_key

    try:
        return Path(cache_dir) / f"{file_cache_key(model, path)}.npz"
    except AudioError:
        return None  # unreadable: load_file below reports it


def utt_of_file(model, path, cache_dir=None):
    """Features, take and i-vector of one file (None when it has too little speech)."""
    from vpcore.audio import load_file
    from vpcore.errors import AudioError
    from vpcore.features import extract_features
    from vpcore.model import Take
    from vpcore.stats import compute_stats

    cached = _cache_file(cache_dir, model, path) if cache_dir else None
    if cached is not None and cached.is_file():
        with np.load(cached, allow_pickle=False) as z:
            if z["features"].size == 0:
                return None
            return Utt(z["features"], Take.from_bytes(z["take"].tobytes()), z["ivector"])
    try:
        feats = extract_features(load_file(path, model.feature_options_.sample_rate),
                                 model.feature_options_)
        take = model.take_from_features(feats)
    except AudioError:
        feats, take = None, None
    if take is None:
        utt = None
    else:
        stats = compute_stats(model.ubm_.params, feats)
        utt = Utt(feats, take, model.tv_.transform_one(stats.n, stats.f))
    if cached is not None:
        from vpcore.persistence import atomic_write

        buf = io.BytesIO()
        if utt is None:
            np.savez(buf, features=np.zeros((0, 0), np.float32))
        else:
            np.savez(buf, features=utt.features, ivector=utt.ivector,
                     take=np.frombuffer(utt.take.to_bytes(), dtype=np.uint8))
        atomic_write(cached, buf.getvalue())
    return utt


def load_utts(model, paths, cache_dir, progress=True):
    from tqdm.auto import tqdm

    paths = sorted(set(paths))
    return {p: utt_of_file(model, p, cache_dir)
            for p in tqdm(paths, desc="files", unit="file", disable=not progress)}


# ------------------------------------------------------------------- scoring ---

def read_protocol(trials_path, root, enroll_path=None):
    """Trials as (label, model key, test path) and enrolments {key: [paths]}."""
    from vpcore.corpus import read_enrollments
    from vpcore.metrics import read_trials

    root = Path(root)
    trials = [(lab, key, root / test) for lab, key, test in read_trials(trials_path)]
    if enroll_path:
        enrol = read_enrollments(enroll_path, root)
        missing = sorted({k for _, k, _ in trials} - set(enrol))
        if missing:
            raise SystemExit(f"trial models {missing[:5]} are not in {enroll_path}")
    else:
        enrol = {key: [root / key] for _, key, _ in trials}
    return trials, enrol


def score_systems(model, trials, enrol, utts, gmm_top_k=None, relevance=16.0, progress=True):
    """Scores of every system on the usable trials.

    Returns (kept trials, {system: scores (N,)}, confidences (N,), skipped count, seconds).
    """
    from tqdm.auto import tqdm

    from vpcore.baselines import cosine_score, gmm_ubm_llr_many, map_adapt_means

    seconds = {}
    ubm = model.ubm_.params
    # Enrolments: the usable takes of each model.
    models = {}
    for key, paths in enrol.items():
        got = [utts[p] for p in paths if utts.get(p) is not None]
        if got:
            models[key] = got
    kept = [(lab, key, test) for lab, key, test in trials
            if key in models and utts.get(test) is not None]
    skipped = len(trials) - len(kept)
    if not kept:
        raise SystemExit("no trial could be scored: every enrolment or test file is unusable")
    keys = sorted({k for _, k, _ in kept})
    key_index = {k: i for i, k in enumerate(keys)}
    n_trials = len(kept)
    scores = {s: np.empty(n_trials) for s in SYSTEMS}

    # GMM-UBM: MAP means per model, then each test file against its models at once.
    start = time.perf_counter()
    adapted = np.stack([map_adapt_means(ubm, np.concatenate([u.features for u in models[k]]),
                                        relevance=relevance) for k in keys])
    by_test = {}
    for i, (_, key, test) in enumerate(kept):
        by_test.setdefault(test, []).append(i)
    for test, rows in tqdm(by_test.items(), desc="gmm-ubm", unit="file", disable=not progress):
        idx = [key_index[kept[i][1]] for i in rows]
        scores["gmm_ubm_map"][rows] = gmm_ubm_llr_many(ubm, adapted[idx], utts[test].features,
                                                       top_k=gmm_top_k)
    seconds["gmm_ubm_map"] = time.perf_counter() - start

    # i-vector cosine, without and with the model's LDA + length-norm.
    start = time.perf_counter()
    mean, proj = model.backend_.mean_, model.backend_.projection_
    enrol_iv = {k: np.stack([u.ivector for u in models[k]]) for k in keys}
    for i, (_, key, test) in enumerate(kept):
        scores["ivector_cosine"][i] = cosine_score(enrol_iv[key], utts[test].ivector, mean=mean)
        scores["ivector_lda_cosine"][i] = cosine_score(enrol_iv[key], utts[test].ivector,
                                                       mean=mean, projection=proj)
    seconds["ivector_cosine"] = time.perf_counter() - start

    # PLDA: raw LLR from the voiceprint's mean; AS-norm and calibration through the model.
    start = time.perf_counter()
    vps = {k: model.enroll([u.take for u in models[k]]) for k in keys}
    V = np.stack([vps[k].vector for k in keys])
    n_enrol = np.array([vps[k].n for k in keys], dtype=float)
    confidences = np.empty(n_trials)
    for test, rows in by_test.items():
        idx = np.array([key_index[kept[i][1]] for i in rows])
        take = utts[test].take
        z = take.vector.astype(np.float64)[None, :]
        raw = np.empty(len(idx))
        for n in np.unique(n_enrol[idx]):
            sel = np.flatnonzero(n_enrol[idx] == n)
            means = V[idx[sel], model.scorer_.layout.mean].astype(np.float64)
            raw[sel] = model.plda_.score_projected(means, float(n), z)[:, 0]
        normed, conf = model.score_many(V[idx], take)
        scores["plda"][rows] = raw
        scores["plda_asnorm"][rows] = normed
        scores["calibrated"][rows] = model.calibration_.predict_llr(normed)
        confidences[rows] = conf
    seconds["plda"] = time.perf_counter() - start
    return kept, scores, confidences, skipped, seconds


def metrics_of(system, scores, labels, confidences=None):
    from vpcore import metrics

    out = metrics.evaluate(scores, labels)
    out["min_cllr"] = metrics.min_cllr(scores, labels)
    if system in LLR_SYSTEMS:
        out["act_dcf_0.01"] = metrics.act_dcf(scores, labels, p_target=0.01)
        out["act_dcf_0.001"] = metrics.act_dcf(scores, labels, p_target=0.001)
        out["cllr"] = metrics.cllr(scores, labels)
    if confidences is not None:
        far, frr = metrics.far_frr(confidences, labels, THRESHOLD)
        out.update({"confidence_threshold": THRESHOLD, "far": far, "frr": frr})
    return out


def read_ages(psv):
    ages = {}
    for line in Path(psv).read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[2].strip().isdigit():
            ages[parts[0]] = int(parts[2])
    return ages


def speaker_of(path):
    return Path(path).parent.name


def evaluate_all(kept, scores, confidences, enrol, ages=None):
    labels = np.array([lab == 1 for lab, _, _ in kept])
    systems = {s: metrics_of(s, scores[s], labels, confidences if s == "calibrated" else None)
               for s in SYSTEMS}
    subsets = {}
    if ages:
        def group(spk):
            age = ages.get(spk)
            return None if age is None else ("children" if age < common.CHILD_AGE else "adults")

        g_enrol = np.array([group(speaker_of(enrol[key][0])) for _, key, _ in kept], dtype=object)
        g_test = np.array([group(speaker_of(test)) for _, _, test in kept], dtype=object)
        for name in ("children", "adults"):
            mask = (g_enrol == name) & (g_test == name)
            lab = labels[mask]
            if lab.any() and (~lab).any():
                subsets[name] = {
                    "speakers": len({speaker_of(enrol[k][0]) for (_, k, _), m in zip(kept, mask)
                                     if m}),
                    "systems": {s: metrics_of(s, scores[s][mask], lab,
                                              confidences[mask] if s == "calibrated" else None)
                                for s in SYSTEMS}}
        cross = int(np.sum((g_enrol != g_test) & (g_enrol != None) & (g_test != None)))  # noqa: E711
        subsets["cross_group_nontarget_trials_left_out"] = cross
    return labels, systems, subsets


def write_plots(name, out_dir, scores, labels, model):
    from scipy.special import logit

    from vpcore.plots import plot_det, plot_score_histogram

    det = Path(out_dir) / f"accuracy-{name}-det.png"
    hist = Path(out_dir) / f"accuracy-{name}-hist.png"
    plot_det({LABELS[s]: (scores[s], labels) for s in SYSTEMS if s != "plda_asnorm"}, det,
             title=f"DET: {name}")
    prior = model.calibration_.prior
    llr_at_threshold = float(logit(THRESHOLD) - logit(prior))
    plot_score_histogram(scores["calibrated"], labels, hist,
                         threshold=round(llr_at_threshold, 2),
                         xlabel=f"calibrated LLR (confidence {THRESHOLD} = LLR "
                                f"{llr_at_threshold:.2f} at prior {prior:g})",
                         title=f"vpcore scores: {name}")
    return det, hist


# ---------------------------------------------------------------------- main ---

def run(args):
    from vpcore.model import load_model

    t0 = time.perf_counter()
    dev = args.trials is None
    root = common.data_root(args.root, required=True)
    if dev:
        trials_path, enroll_path = root / common.DEV_TRIALS, root / common.DEV_ENROLL
        speakers_psv = args.speakers or root / common.SPEAKERS_PSV
        model_path = Path(args.model) if args.model else common.DEV_MODEL
        if not model_path.is_file():
            common.train_dev_model(model_path, root, jobs=args.jobs)
        common.warn_if_other_code(model_path)
        model_source = ("given" if args.model else
                        "development model: trained without the 40 development speakers")
    else:
        trials_path, enroll_path = Path(args.trials), args.enroll
        speakers_psv = args.speakers
        if args.model:
            model_path, model_source = Path(args.model), "given"
        else:
            model_path, model_source = common.resolve_model()
    name = args.name or ("dev" if dev else Path(trials_path).stem)
    out_dir = Path(args.out_dir) if args.out_dir else common.RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(args.cache_dir) if args.cache_dir else common.CACHE_DIR / "accuracy-utts"
    cache_dir.mkdir(parents=True, exist_ok=True)

    model = load_model(model_path)
    trials, enrol = read_protocol(trials_path, root, enroll_path)
    files = {t for _, _, t in trials}
    for paths in enrol.values():
        files.update(paths)
    start = time.perf_counter()
    utts = load_utts(model, files, cache_dir, progress=not args.quiet)
    seconds = {"files": time.perf_counter() - start}
    kept, scores, conf, skipped, sec = score_systems(model, trials, enrol, utts,
                                                     gmm_top_k=args.gmm_top_k,
                                                     relevance=args.relevance,
                                                     progress=not args.quiet)
    seconds.update(sec)
    ages = read_ages(speakers_psv) if speakers_psv and Path(speakers_psv).is_file() else None
    labels, systems, subsets = evaluate_all(kept, scores, conf, enrol, ages)
    det, hist = write_plots(name, out_dir, scores, labels, model)
    seconds["total"] = time.perf_counter() - t0
    payload = {
        "benchmark": "accuracy",
        "protocol": {
            "name": name, "development_protocol": dev,
            "trials": ("$VPCORE_DATA/" if dev else "") + common.relative(
                trials_path, root if dev else None),
            "enroll": (("$VPCORE_DATA/" if dev else "") + common.relative(
                enroll_path, root if dev else None)) if enroll_path else None,
            "files": len(files), "unusable_files": sum(u is None for u in utts.values()),
            "trials_total": len(trials), "trials_scored": len(kept), "trials_skipped": skipped,
            "target": int(labels.sum()), "nontarget": int((~labels).sum()),
        },
        "model": {**common.model_info(model, model_path), "source": model_source,
                  "calibration": model.calibration_.to_dict()},
        "settings": {"gmm_relevance": args.relevance, "gmm_top_k": args.gmm_top_k,
                     "confidence_threshold": THRESHOLD,
                     "subsets": f"children: age < {common.CHILD_AGE} on both sides of a trial"},
        "system_labels": LABELS,
        "systems": systems,
        "subsets": subsets,
        "references": common.DEV_REFERENCES if dev else [],
        "plots": {"det": common.relative(det), "histogram": common.relative(hist)},
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
    }
    path = common.write_result(f"accuracy-{name}", payload, out_dir)
    if not args.quiet:
        print_table(payload)
    print(path)
    return path


def print_table(payload):
    print(f"\n{'system':<50} {'EER %':>7} {'minDCF.01':>9} {'minDCF.001':>10} {'Cllr':>6}")
    for s, m in payload["systems"].items():
        cllr = f"{m['cllr']:.3f}" if "cllr" in m else "-"
        print(f"{LABELS[s]:<50} {100 * m['eer']:7.2f} {m['min_dcf_0.01']:9.3f} "
              f"{m['min_dcf_0.001']:10.3f} {cllr:>6}")
    cal = payload["systems"]["calibrated"]
    print(f"at confidence {THRESHOLD}: FAR {100 * cal['far']:.2f} %  FRR {100 * cal['frr']:.2f} %")
    for ref in payload["references"]:
        print(f"reference: {ref['system'][:48]:<48} {100 * ref['eer']:7.2f} "
              f"{ref['min_dcf_0.01']:9.3f}")
    for group, sub in payload["subsets"].items():
        if isinstance(sub, dict):
            c = sub["systems"]["calibrated"]
            print(f"{group}: EER {100 * c['eer']:.2f} % minDCF {c['min_dcf_0.01']:.3f} "
                  f"FAR {100 * c['far']:.2f} % FRR {100 * c['frr']:.2f} %")


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="trained model (.npz); default for the development protocol: "
                                   "cache/bench/dev_model.npz, trained when missing")
    p.add_argument("--root", help="corpus root the lists' paths are relative to "
                                  "(default: $VPCORE_DATA or ../shared/data)")
    p.add_argument("--trials", help="trial list (default: the development protocol)")
    p.add_argument("--enroll", help="enrolment list for 'model utt target' trials")
    p.add_argument("--speakers", help="speakers.psv (speaker|sex|age) to split children/adults")
    p.add_argument("--name", help="result name (default: 'dev' or the trial file's stem)")
    p.add_argument("--out-dir", help="where JSON and plots go (default: benchmarks/results)")
    p.add_argument("--cache-dir", help="per-file cache of features/takes (resumable)")
    p.add_argument("--gmm-top-k", type=int, default=None,
                   help="GMM-UBM scoring with the top-k UBM components per frame (default: all)")
    p.add_argument("--relevance", type=float, default=16.0, help="MAP relevance factor (16)")
    p.add_argument("--jobs", type=int, default=2, help="processes when training (2)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
