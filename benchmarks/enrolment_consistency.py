"""How often the enrolment consistency check refuses genuine takes and admits impostors.

The service refuses take 2 (or 3) when its calibrated confidence against the
earlier takes is below ``VPCORE_CONSISTENCY_THRESHOLD``. This script measures,
on the development speakers of ``../shared/data`` (model trained without them):

* genuine: take 2 against take 1, and take 3 against takes 1 + 2, of each speaker's
  enrolment list;
* impostor: take 2 of speaker B against take 1 of speaker A, for every pair A != B;

and prints the refusal rate of genuine takes (false refusals) and the acceptance
rate of impostor takes at a range of thresholds, as JSON.

The result is written to ``benchmarks/results/enrolment-consistency-dev.json``
with the environment it was measured in (commit, machine, versions), like
every other benchmark.

Usage::

    python benchmarks/enrolment_consistency.py [--model dev_model.npz] [--out-dir DIR]

Without ``--model`` the development model (dev speakers left out) is used,
trained into the benchmark cache if missing.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from vpcore.corpus import read_enrollments  # noqa: E402
from vpcore.evaluation import take_of_file  # noqa: E402
from vpcore.model import load_model  # noqa: E402

THRESHOLDS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)


def measure(model, enrollments):
    takes = {m: [take_of_file(model, p) for p in paths] for m, paths in enrollments.items()}
    takes = {m: t[:3] for m, t in takes.items()
             if len(t) >= 3 and all(x is not None for x in t[:3])}
    genuine, impostor = [], []
    for m, (t1, t2, t3) in takes.items():
        genuine.append(model.consistency([t1], t2))
        genuine.append(model.consistency([t1, t2], t3))
        for other, (o1, o2, _) in takes.items():
            if other != m:
                impostor.append(model.consistency([o1], t2))
    return np.array(genuine), np.array(impostor)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the development model, "
                                            "trained into the benchmark cache if missing)")
    parser.add_argument("--data", help="corpus folder (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--enroll", help="enrolment list of 3 takes per model (default: the "
                                         "development protocol's)")
    parser.add_argument("--name", default="enrolment-consistency-dev",
                        help="result name (default: enrolment-consistency-dev)")
    parser.add_argument("--out-dir", help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    root = common.data_root(args.data)
    if args.model:
        model_path = Path(args.model)
    else:
        if not common.DEV_MODEL.is_file():
            common.train_dev_model(data=root)
        model_path = common.DEV_MODEL
    model = load_model(model_path)
    enrol = read_enrollments(args.enroll or root / common.DEV_ENROLL, root)
    genuine, impostor = measure(model, enrol)
    rows = [{"threshold": t, "genuine_refused": float(np.mean(genuine < t)),
             "impostor_accepted": float(np.mean(impostor >= t))} for t in THRESHOLDS]
    result = {"benchmark": "enrolment_consistency", "model": model.fingerprint,
              "model_info": common.model_info(model, model_path),
              "genuine_checks": len(genuine), "impostor_checks": len(impostor), "rates": rows}
    path = common.write_result(args.name, result, args.out_dir)
    print(json.dumps(result, indent=2, default=common._json_default))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
