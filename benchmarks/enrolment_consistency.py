"""How often the enrolment consistency check refuses genuine takes and admits impostors.

The service refuses take 2 (or 3) when its calibrated confidence against the
earlier takes is below ``VPCORE_CONSISTENCY_THRESHOLD``. This script measures,
on the development speakers of ``../shared/data`` (model trained without them):

* genuine: take 2 against take 1, and take 3 against takes 1 + 2, of each speaker's
  enrolment list;
* impostor: take 2 of speaker B against take 1 of speaker A, for every pair A != B;

and prints the refusal rate of genuine takes (false refusals) and the acceptance
rate of impostor takes at a range of thresholds, as JSON.

Usage::

    python benchmarks/enrolment_consistency.py --model dev_model.npz [--out result.json]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vpcore.corpus import data_root, read_enrollments
from vpcore.evaluation import take_of_file
from vpcore.model import load_model


def measure(model, enrollments):
    takes = {m: [take_of_file(model, p) for p in paths] for m, paths in enrollments.items()}
    takes = {m: t for m, t in takes.items() if all(x is not None for x in t)}
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
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", help="corpus folder (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--out", help="write the JSON result here")
    args = parser.parse_args(argv)
    root = Path(args.data) if args.data else data_root(required=True)
    model = load_model(args.model)
    enrol = read_enrollments(root / "trials" / "speechocean762-dev.enroll", root)
    genuine, impostor = measure(model, enrol)
    rows = []
    for threshold in (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7):
        rows.append({"threshold": threshold,
                     "genuine_refused": float(np.mean(genuine < threshold)),
                     "impostor_accepted": float(np.mean(impostor >= threshold))})
    result = {"model": model.fingerprint, "genuine_checks": len(genuine),
              "impostor_checks": len(impostor), "rates": rows}
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
