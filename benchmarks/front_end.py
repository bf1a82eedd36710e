"""Front-end variants of the shipped recipe on the clean and robustness protocols.

Trains the shipped recipe (``augment_copies=1``, seed 0, development speakers
left out) with some :class:`vpcore.features.FeatureOptions` changed, and
scores every condition of ``benchmarks/robustness.py``::

    python benchmarks/front_end.py --set cvn=true
    python benchmarks/front_end.py --set fmin=100 --set fmax=7000
    python benchmarks/front_end.py --set 'vad={"noise_floor_margin": 1.0}'

(``vad`` takes a JSON object of :class:`vpcore.vad.VadOptions` fields that
differ from the defaults.)

Each run takes about as long as a training of the recipe plus the features
of the protocol in the new front end (cached under ``cache/bench/robustness``).
"""

import argparse
import json
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=_setting, action="append", required=True,
                        metavar="NAME=VALUE", help="a FeatureOptions field (JSON value)")
    parser.add_argument("--data")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", help="result name (default: front-end-<settings>)")
    args = parser.parse_args(argv)

    from dataclasses import replace

    from vpcore.audio import load_file
    from vpcore.features import FeatureOptions
    from vpcore.model import VoiceprintModel

    from vpcore.vad import VadOptions

    settings = dict(args.set)
    fields = dict(settings)
    try:
        if isinstance(fields.get("vad"), dict):
            fields["vad"] = VadOptions(**fields["vad"])
        options = replace(FeatureOptions(), **fields)
    except TypeError:
        parser.error(f"--set: {sorted(settings)} are not all FeatureOptions fields")
    options.validate()
    data = common.data_root(args.data)
    utts = multicondition.training_list(data)
    model = VoiceprintModel(features=options, augment_copies=1, n_jobs=args.jobs, random_state=0)
    model.fit([partial(load_file, u.path) for u in utts], [u.speaker for u in utts])
    label = "-".join(f"{k}{v}" for k, v in settings.items()).lower()
    label = "".join(c for c in label if c.isalnum() or c in "-_.")
    path = common.CACHE_DIR / f"dev_model_front_end_{label}.npz"
    model.save(path)
    results = robustness.evaluate(model, robustness.Protocol(data, common.CACHE_DIR / "robustness"),
                                  progress=False)
    print(robustness.table(results))
    common.write_result(args.name or f"front-end-{label}", {
        "benchmark": "front_end", "settings": settings, "model": common.model_info(model, path),
        "training_seconds": model.training_summary_.get("seconds"), "results": results})


if __name__ == "__main__":
    main()
