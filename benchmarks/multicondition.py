"""Where augmented training copies help: an ablation on the clean and robustness protocols.

Starts from a trained development model (its front end, UBM and
total-variability extractor), makes ``--copies`` augmented copies of every
training utterance with :class:`vpcore.augment.Augmenter` (seed 0, babble
from other training speakers), and retrains the backend (LDA, PLDA, cohort,
calibration) with the copies as extra sessions of their speaker. Each
variant is scored on the clean development protocol and on every condition
of ``benchmarks/robustness.py``::

    python benchmarks/multicondition.py --copies 2

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
    parser.add_argument("--name", default="multicondition-dev")
    args = parser.parse_args(argv)

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
    variants = {"clean": (clean_iv, clean_spk),
                "clean+augmented": (np.concatenate([clean_iv] + [a[0] for a in aug]),
                                    np.concatenate([clean_spk] + [a[1] for a in aug]))}
    for name, (iv, s) in variants.items():
        model = VoiceprintModel.load(args.model)
        model.fit_backend(iv, s)
        results[name] = robustness.evaluate(model, protocol, args.conditions, progress=False)
        print(f"\n## {name}\n{robustness.table(results[name])}", flush=True)
    common.write_result(args.name, {"benchmark": "multicondition",
                                    "model": common.model_info(base, args.model),
                                    "copies": args.copies, "results": results})


if __name__ == "__main__":
    main()
