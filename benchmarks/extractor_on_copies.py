"""Does the UBM / i-vector extractor gain from augmented copies too? One measurement.

The shipped recipe (``--augment 1``) trains LDA and PLDA on the clean
training utterances plus one augmented copy of each, and the UBM and the
total-variability extractor on the clean utterances only. This variant
trains all four on clean + copy (the same copies, the same seed), keeps the
cohort and calibration trials clean as the recipe does, and scores the
robustness development protocol::

    python benchmarks/extractor_on_copies.py       # about 15 minutes on 2 cores
"""

import argparse
import sys
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common, multicondition, robustness


def train(data, jobs=2, seed=0):
    """The recipe with the copies in UBM and total-variability training as well."""
    from vpcore import recipe
    from vpcore.audio import load_file
    from vpcore.model import VoiceprintModel
    from vpcore.parallel import LocalExecutor

    utts = multicondition.training_list(data)
    spk = [u.speaker for u in utts]
    params = VoiceprintModel(n_jobs=jobs, random_state=seed, augment_copies=1)
    waves = [partial(load_file, u.path) for u in utts]
    feats = recipe.extract_features(waves, params.feature_options, jobs)
    x_feats, x_spk = recipe.augmented_features(waves, spk, params.feature_options,
                                               recipe.make_augmenter(params), 1, n_jobs=jobs)
    ex = LocalExecutor()
    both = ex.scatter(recipe.make_batches(feats + x_feats))
    lengths = np.concatenate(ex.gather(ex.map(recipe._batch_lengths, both)))
    ubm = recipe.fit_ubm(params, both, lengths, ex)
    tv = recipe.fit_tv(params, both, ubm, ex)

    def units(f, s):
        keep = np.array([x is not None for x in f])
        return recipe.unit_ivectors(params, ex.scatter(recipe.make_batches(f)), ubm, tv, s,
                                    keep, ex)

    ivecs, unit_spk = units(feats, spk)
    backend, scorer, summary = recipe.fit_scoring(params, ivecs, unit_spk, units(x_feats, x_spk))
    return VoiceprintModel(random_state=seed, augment_copies=1).set_fitted(
        feature_options=params.feature_options, ubm=ubm, tv=tv, backend=backend, scorer=scorer,
        training_summary=summary)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", default="extractor-on-copies-dev")
    args = parser.parse_args(argv)
    data = common.data_root(args.data)
    model = train(data, args.jobs)
    path = common.CACHE_DIR / "dev_model_extractor_on_copies.npz"
    model.save(path)
    protocol = robustness.Protocol(data, common.CACHE_DIR / "robustness")
    results = robustness.evaluate(model, protocol, progress=False)
    print(robustness.table(results))
    common.write_result(args.name, {"benchmark": "extractor_on_copies",
                                    "model": common.model_info(model, path),
                                    "results": results})


if __name__ == "__main__":
    main()
