"""Front-end and extractor variants of the shipped recipe on the clean and robustness protocols.

Trains the shipped recipe (``augment_copies=1``, seed 0, development speakers
left out) with some :class:`vpcore.features.FeatureOptions` (``--set``) or
:class:`vpcore.model.VoiceprintModel` options (``--model``) changed, and
scores every condition of ``benchmarks/robustness.py``::

    python benchmarks/front_end.py --set cvn=true
    python benchmarks/front_end.py --set fmin=100 --set fmax=7000
    python benchmarks/front_end.py --set 'vad={"noise_floor_margin": 1.0}'
    python benchmarks/front_end.py --model tv_rank=120 --model lda_dim=120

(``vad`` takes a JSON object of :class:`vpcore.vad.VadOptions` fields that
differ from the defaults.) Each run also prints its figures against the
development model's (:data:`REFERENCE`), in standard errors of the protocol
(:func:`compare`); ``--compare NAME...`` prints that for saved results. A
run with model options only is named
``extractor-<options>`` (its model ``cache/bench/dev_model_extractor_<options>.npz``).

Each run takes about as long as a training of the recipe plus the features
of the protocol in the new front end (cached under ``cache/bench/robustness``).
"""

import argparse
import json
import math
import sys
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, multicondition, robustness


def _setting(text):
    name, _, value = text.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, json.loads(value)


#: The development model's figures (the recipe as shipped) that a variant is compared with.
REFERENCE = "robustness-dev-aug1-mc"
#: Rates compared in :func:`compare`: name, result key, trials it is counted on.
RATES = (("EER", "eer", "n_target"), ("FRR at 0.7", "frr_at_0_7", "n_target"),
         ("FAR at 0.7", "far_at_0_7", "n_nontarget"))


def _saved(name):
    return json.loads((common.RESULTS_DIR / f"{name}.json").read_text())


def compare(results, reference):
    """Per condition, each rate of :data:`RATES` and minDCF(0.01) against ``reference``.

    A rate's noise is the binomial standard error of the reference rate over the
    trials it is counted on, ``sqrt(p (1 - p) / n)`` (200 target trials: one target
    trial is 0.5 points of EER or FRR); ``sigmas`` is the change (variant minus
    reference, > 0: worse) in those units.

    Returns
    -------
    dict
        condition -> name -> ``{"reference", "variant", "change", "sigmas"}``
        (minDCF: no ``sigmas``).
    """
    out = {}
    for condition, ref in reference.items():
        new, rows = results[condition], {}
        for name, key, trials in RATES:
            p, n = ref[key], ref[trials]
            se = math.sqrt(max(p * (1.0 - p), 1.0 / n) / n)
            rows[name] = {"reference": p, "variant": new[key], "change": new[key] - p,
                          "sigmas": (new[key] - p) / se}
        rows["minDCF(0.01)"] = {"reference": ref["min_dcf_0.01"],
                                "variant": new["min_dcf_0.01"],
                                "change": new["min_dcf_0.01"] - ref["min_dcf_0.01"]}
        out[condition] = rows
    return out


def comparison_table(comparison):
    """Markdown: per condition the reference -> variant values, rates in % with the
    change in standard errors."""
    names = list(next(iter(comparison.values())))
    lines = ["| condition | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for condition, rows in comparison.items():
        cells = []
        for name in names:
            r = rows[name]
            if "sigmas" in r:
                cells.append(f"{100 * r['reference']:.2f} -> {100 * r['variant']:.2f} "
                             f"({r['sigmas']:+.1f} SE)")
            else:
                cells.append(f"{r['reference']:.3f} -> {r['variant']:.3f}")
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: The recipe's own settings, which a variant does not change.
RECIPE = {"augment_copies": 1, "random_state": 0}


def variant(settings, model_settings, n_jobs=2):
    """The shipped recipe's unfitted model with the given feature and model options.

    Parameters
    ----------
    settings : dict
        :class:`vpcore.features.FeatureOptions` fields (``vad``: a dict of
        :class:`vpcore.vad.VadOptions` fields).
    model_settings : dict
        :class:`vpcore.model.VoiceprintModel` options other than ``features``,
        ``n_jobs`` and the recipe's own (:data:`RECIPE`).

    Returns
    -------
    VoiceprintModel
        Validated; raises :class:`vpcore.errors.ParameterError` for a bad value.
    """
    from dataclasses import replace

    from vpcore.errors import ParameterError
    from vpcore.features import FeatureOptions
    from vpcore.model import VoiceprintModel
    from vpcore.vad import VadOptions

    fields = dict(settings)
    try:
        if isinstance(fields.get("vad"), dict):
            fields["vad"] = VadOptions(**fields["vad"])
        options = replace(FeatureOptions(), **fields)
    except TypeError:
        raise ParameterError(f"settings={sorted(settings)} must all be FeatureOptions fields")
    options.validate()
    allowed = set(VoiceprintModel._get_param_names()) - {"features", "n_jobs", *RECIPE}
    unknown = sorted(set(model_settings) - allowed)
    if unknown:
        raise ParameterError(f"model_settings={unknown} must be among {sorted(allowed)}")
    model = VoiceprintModel(features=options, n_jobs=n_jobs, **RECIPE, **model_settings)
    model._validate()
    return model


def label(settings, model_settings):
    """``(kind, text)`` naming a variant: kind ``front_end``, or ``extractor`` for model
    options only; text the options, e.g. ``tv_rank150``."""
    text = "-".join(f"{k}{v}" for k, v in {**settings, **model_settings}.items()).lower()
    text = "".join(c for c in text if c.isalnum() or c in "-_.")
    return ("front_end" if settings else "extractor"), text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="a FeatureOptions field (JSON value)")
    parser.add_argument("--model", type=_setting, action="append", default=[],
                        metavar="NAME=VALUE", help="a VoiceprintModel option (JSON value)")
    parser.add_argument("--data")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", help="result name (default: front-end-<settings> or "
                                       "extractor-<options>)")
    parser.add_argument("--compare", nargs="+", metavar="NAME",
                        help="only print saved results against the development model's")
    args = parser.parse_args(argv)
    if args.compare:
        reference = _saved(REFERENCE)["results"]
        for name in args.compare:
            print(f"{name} (against {REFERENCE}):")
            print(comparison_table(compare(_saved(name)["results"], reference)))
        return
    if not args.set and not args.model:
        parser.error("give at least one --set or --model")

    from vpcore.audio import load_file
    from vpcore.errors import ParameterError

    settings, model_settings = dict(args.set), dict(args.model)
    try:
        model = variant(settings, model_settings, args.jobs)
    except ParameterError as exc:
        parser.error(str(exc))
    data = common.data_root(args.data)
    utts = multicondition.training_list(data)
    model.fit([partial(load_file, u.path) for u in utts], [u.speaker for u in utts])
    kind, text = label(settings, model_settings)
    path = common.CACHE_DIR / f"dev_model_{kind}_{text}.npz"
    model.save(path)
    results = robustness.evaluate(model, robustness.Protocol(data, common.CACHE_DIR / "robustness"),
                                  progress=False)
    print(robustness.table(results))
    comparison = compare(results, _saved(REFERENCE)["results"])
    print(comparison_table(comparison))
    common.write_result(args.name or f"{kind.replace('_', '-')}-{text}", {
        "benchmark": "front_end", "settings": settings, "model_settings": model_settings,
        "model": common.model_info(model, path),
        "training_seconds": model.training_summary_.get("seconds"), "results": results,
        "against_development_model": comparison})


if __name__ == "__main__":
    main()
