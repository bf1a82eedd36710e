"""Where augmented training copies help: an ablation on the clean and robustness protocols.

Starts from a trained development model (its front end, UBM and
total-variability extractor), makes ``--copies`` augmented copies of every
training utterance with :class:`vpcore.augment.Augmenter` (seed 0, babble
from other training speakers), and retrains the backend with the copies as
extra sessions of their speaker, in the stages each variant names
(:data:`VARIANTS`: the LDA backend, the PLDA, or both as the recipe does; or
as ordinary units that also join the cohort and the calibration trials).
Each variant is scored on the clean development protocol and on every
condition of ``benchmarks/robustness.py``::

    python benchmarks/multicondition.py --copies 2
    python benchmarks/multicondition.py --variants clean copies1-backend+plda

Front-end features of the clean and augmented training utterances are
cached under ``cache/bench/multicondition``.
"""

import argparse
import sys
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from joblib import Parallel, delayed

from benchmarks import common, robustness


#: name -> (copies, which stages see them: a tuple of recipe.EXTRA_STAGES, or "units" for
#: copies that are ordinary training units, also drawn into the cohort and calibration trials)
VARIANTS = {
    "clean": (0, ()),
    "copies1-backend+plda": (1, ("backend", "plda")),  # the shipped recipe (augment_copies=1)
    "copies2-backend+plda": (2, ("backend", "plda")),
    "copies2-backend": (2, ("backend",)),
    "copies2-plda": (2, ("plda",)),
    "copies2-units": (2, "units"),
}


def training_list(data):
    from vpcore.corpus import read_corpus, read_list

    exclude = set(read_list(Path(data) / common.DEV_SPEAKERS))
    utts = []
    for corpus in ("speechocean762/train", "librispeech-mini/train"):
        utts += read_corpus(Path(data) / corpus, exclude_speakers=exclude)
    return utts


def _features_job(options, augmenter_kw, utt, copy, pool, cache):
    """Features of one training utterance, clean (copy 0) or its augmented copy."""
    from vpcore.audio import load_file
    from vpcore.augment import Augmenter
    from vpcore.errors import TooLittleSpeechError
    from vpcore.features import extract_features

    key = [options.to_dict(), str(utt.path), copy, augmenter_kw]

    def compute():
        x = load_file(utt.path)
        if copy:
            aug = Augmenter(**augmenter_kw)
            sources = [partial(load_file, p) for s, p in pool if s != utt.speaker][:7]
            x, _ = aug.augment(x, seed=[common.path_seed(utt.path), copy],
                               babble_sources=sources)
        try:
            return extract_features(x, options)
        except TooLittleSpeechError:
            return None

    return common.cached_array(cache, key, compute)


def training_features(model, utts, copies, augmenter_kw, cache, n_jobs=2):
    """{copy: [features or None per utterance]} for copy 0 (clean) .. copies."""
    Path(cache).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for copy in range(copies + 1):
        jobs = []
        for u in utts:
            # babble sources: a fixed random draw of other training utterances per utterance
            pick = rng.choice(len(utts), size=10, replace=False)
            pool = [(utts[i].speaker, utts[i].path) for i in pick]
            jobs.append(delayed(_features_job)(model.feature_options_, augmenter_kw, u, copy,
                                               pool, cache))
        out[copy] = Parallel(n_jobs=n_jobs, batch_size=8)(jobs)
    return out


def units(model, feats, speakers):
    """I-vectors of the backend's units and their speakers, as the training recipe makes them."""
    from vpcore import recipe
    from vpcore.parallel import LocalExecutor

    executor = LocalExecutor()
    keep = np.array([f is not None for f in feats])
    ivecs, spk = recipe.unit_ivectors(model, executor.scatter(recipe.make_batches(list(feats))),
                                      model.ubm_, model.tv_, speakers, keep, executor)
    return ivecs, np.asarray(spk)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(common.DEV_MODEL))
    parser.add_argument("--data")
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--conditions", nargs="+", default=list(robustness.CONDITIONS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--name", default="multicondition-dev")
    args = parser.parse_args(argv)

    from vpcore import recipe
    from vpcore.model import VoiceprintModel

    data = common.data_root(args.data)
    base = VoiceprintModel.load(args.model)
    utts = training_list(data)
    spk = [u.speaker for u in utts]
    augmenter_kw = {"random_state": 0}
    feats = training_features(base, utts, args.copies, augmenter_kw,
                              common.CACHE_DIR / "multicondition", args.jobs)
    clean_iv, clean_spk = units(base, feats[0], spk)
    aug = [units(base, feats[c], spk) for c in range(1, args.copies + 1)]
    protocol = robustness.Protocol(data, common.CACHE_DIR / "robustness")
    results = {}
    for name in args.variants:
        copies, how = VARIANTS[name]
        if copies > args.copies:
            raise SystemExit(f"variant {name} needs --copies {copies}")
        x_iv = np.concatenate([a[0] for a in aug[:copies]]) if copies else None
        x_spk = np.concatenate([a[1] for a in aug[:copies]]) if copies else None
        model = VoiceprintModel.load(args.model)
        if how == "units":  # copies as ordinary units: also cohort and calibration trials
            model.fit_backend(np.concatenate([clean_iv, x_iv]), np.concatenate([clean_spk, x_spk]))
        else:
            extra = None if x_iv is None else (x_iv, x_spk)
            backend, scorer, summary = recipe.fit_scoring(model, clean_iv, clean_spk, extra,
                                                          extra_stages=how)
            model.set_fitted(backend=backend, scorer=scorer, training_summary=summary)
        results[name] = robustness.evaluate(model, protocol, args.conditions, progress=False)
        print(f"\n## {name}\n{robustness.table(results[name])}\n"
              f"{robustness.sweep_table(results[name])}", flush=True)
    common.write_result(args.name, {"benchmark": "multicondition",
                                    "model": common.model_info(base, args.model),
                                    "copies": args.copies, "results": results})


if __name__ == "__main__":
    main()
