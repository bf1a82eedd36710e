"""The backend's dimensions re-chosen for the multi-condition recipe.

``lda_dim`` (150) and ``wccn`` (off) were chosen on the clean development
protocol before augmented copies joined the LDA and the PLDA. With copies,
the within-speaker scatter that the LDA sees is mostly channel and noise, so
fewer (or more) dimensions may serve the degraded conditions better. This
benchmark starts from the development model (front end, UBM, extractor),
rebuilds the recipe's own training units exactly as ``vpcore train
--augment`` makes them (clean units and the augmented copies, same seeds,
same ``copy_of`` links for the calibration trials), and refits
:func:`vpcore.recipe.fit_scoring` once per variant, scoring each on every
condition of ``benchmarks/robustness.py`` (adaptive cohort, as the service
scores)::

    python benchmarks/backend_sweep.py
    python benchmarks/backend_sweep.py --variants lda150 lda100 --conditions clean noise

The variant ``lda150`` repeats the development model's own options; its
backend must come out as the model's (checked, so the sweep compares like
with like). The units are cached under ``cache/bench/backend_sweep``, and
each variant's model is saved there (``<variant>.npz``) for
``benchmarks/paired_accuracy.py``.
"""

import argparse
import sys
import time
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common, multicondition, robustness

#: name -> the model options it changes
VARIANTS = {
    "lda150": {},  # the development model's own options
    "lda100": {"lda_dim": 100},
    "lda120": {"lda_dim": 120},
    "lda180": {"lda_dim": 180},
    "nolda": {"lda_dim": None},
    "lda150-wccn": {"wccn": True},
    "lda100-wccn": {"lda_dim": 100, "wccn": True},
}


UNIT_KEYS = ("ivecs", "spk", "origin", "x_ivecs", "x_spk", "x_origin")


def recipe_units(model, waveforms, speakers, n_jobs=1):
    """``(ivecs, spk, origin, x_ivecs, x_spk, x_origin)``: the training units of ``model``'s
    recipe, as :func:`vpcore.recipe.fit_waveforms` makes them from these waveforms.

    Clean units and the ``augment_copies`` augmented copies (same augmenter and
    seeds), each with the index of the training utterance it comes from.
    """
    from vpcore import recipe
    from vpcore.parallel import LocalExecutor

    if not model.augment_copies:
        raise SystemExit("the model has no augmented copies (augment_copies=0)")
    options = model.feature_options_
    feats = recipe.extract_features(waveforms, options, n_jobs=n_jobs)
    x_feats, x_speakers = recipe.augmented_features(
        waveforms, speakers, options, recipe.make_augmenter(model), model.augment_copies,
        n_jobs=n_jobs)
    copy_of = np.tile(np.arange(len(waveforms)), model.augment_copies)
    executor = LocalExecutor()

    def units(features, spk):
        keep = recipe._batch_lengths((0, features)) > 0  # the rule of recipe.train
        iv, unit_spk, origin = recipe.unit_ivectors(model, recipe.make_batches(list(features)),
                                                    model.ubm_, model.tv_, spk, keep, executor,
                                                    with_origin=True)
        return iv, np.asarray(unit_spk), origin

    ivecs, spk, origin = units(feats, speakers)
    x_ivecs, x_spk, x_index = units(x_feats, x_speakers)
    return ivecs, spk, origin, x_ivecs, x_spk, copy_of[x_index]


def cached_recipe_units(model, data, n_jobs, cache):
    """:func:`recipe_units` of the development training list, cached by model fingerprint."""
    from vpcore.audio import load_file

    path = Path(cache) / f"units-{model.fingerprint}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return tuple(z[k] for k in UNIT_KEYS)
    utts = multicondition.training_list(data)  # the order of `vpcore train`'s corpora
    start = time.perf_counter()
    out = recipe_units(model, [partial(load_file, u.path) for u in utts],
                       [u.speaker for u in utts], n_jobs)
    print(f"units of {len(utts)} utterances and their copies in "
          f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **dict(zip(UNIT_KEYS, out)))
    return out


def refit(model, units, **options):
    """``model`` with ``options`` set and its backend and scorer refitted on ``units``, in
    place (pass a copy to keep the original); returns it."""
    from vpcore import recipe

    ivecs, spk, origin, x_ivecs, x_spk, x_origin = units
    model.set_params(**options)
    backend, scorer, summary = recipe.fit_scoring(model, ivecs, spk, (x_ivecs, x_spk),
                                                  origins=(origin, x_origin))
    model.set_fitted(backend=backend, scorer=scorer,
                     training_summary={**model.training_summary_, **summary})
    return model


def same_backend(a, b):
    """Largest absolute difference of the two models' PLDA-space projections of random rows."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((20, a.tv_rank))
    return float(np.max(np.abs(a.scorer_.plda.project(a.backend_.transform(W))
                               - b.scorer_.plda.project(b.backend_.transform(W)))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(common.DEV_MODEL))
    parser.add_argument("--data")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--conditions", nargs="+", default=list(robustness.CONDITIONS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--name", default="backend-sweep-dev")
    args = parser.parse_args(argv)

    from vpcore.model import VoiceprintModel

    data = common.data_root(args.data)
    base = VoiceprintModel.load(args.model)
    units = cached_recipe_units(base, data, args.jobs, common.CACHE_DIR / "backend_sweep")
    protocol = robustness.Protocol(data, common.CACHE_DIR / "robustness")
    results, checks, backend_seconds = {}, {}, {}
    for name in args.variants:
        start = time.perf_counter()
        model = refit(VoiceprintModel.load(args.model), units, **VARIANTS[name])
        seconds = time.perf_counter() - start
        if not VARIANTS[name]:
            checks[name] = {"same_fingerprint": model.fingerprint == base.fingerprint,
                            "largest_projection_difference": same_backend(model, base)}
            print(f"{name}: {checks[name]}", flush=True)
        results[name] = robustness.evaluate(model, protocol, args.conditions, progress=False,
                                            adaptive_cohort=True)
        backend_seconds[name] = round(seconds, 1)
        model.save(common.CACHE_DIR / "backend_sweep" / f"{name}.npz")  # for paired_accuracy.py
        print(f"\n## {name} {VARIANTS[name]}\n{robustness.table(results[name])}", flush=True)
    common.write_result(args.name, {"benchmark": "backend_sweep",
                                    "model": common.model_info(base, args.model),
                                    "variants": VARIANTS, "reproduction": checks,
                                    "adaptive_cohort": True, "backend_seconds": backend_seconds,
                                    "results": results})


if __name__ == "__main__":
    main()
