"""Does another version of the speech detector measure and decide every take as this one?

::

    git archive OLD vpcore | tar -x -C /tmp/old
    python benchmarks/speech_equivalence.py /tmp/old/vpcore --label OLD [--limit N] [--seeds 100]

The takes, conditions and generated non-speech of ``benchmarks/speech_detector.py``
(every utterance of both corpora, clean and degraded, and 100 seeds of each
non-speech kind), each degraded once and measured by both versions in one
process (the older one imported beside this one, as ``benchmarks/paired.py``
does). Writes, per cue, the largest difference and how many values are equal
bit for bit, and every take whose decision differs, to
``benchmarks/results/speech_equivalence.json``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, paired  # noqa: E402
from benchmarks.speech_detector import (CONDITIONS, CUES, NON_SPEECH, babble_pool,  # noqa: E402
                                        corpus_takes, degrade, load_take, non_speech,
                                        quantise, refused)


def _inputs(root, limit, seeds, conditions):
    """``(name, waveform)`` of every measured input, in the order of speech_detector.py."""
    takes = corpus_takes(root, limit)
    pool = babble_pool(takes)
    for index, (take, paths) in enumerate(takes):
        x = load_take(paths)
        for c, condition in enumerate(conditions):
            rng = np.random.default_rng([index, c])
            yield f"{condition}:{take}", quantise(degrade(x, condition, rng, pool))
    for kind in NON_SPEECH:
        for seed in range(seeds):
            yield f"{kind}:{seed}", quantise(non_speech(kind, seed))


def compare(before, after, inputs):
    """Cues of ``before`` and ``after`` (two ``speech_cues`` functions) on every input."""
    names, a, b = [], [], []
    for name, x in inputs:
        names.append(name)
        a.append([getattr(before(x), k) for k in CUES])
        b.append([getattr(after(x), k) for k in CUES])
    a, b = np.array(a), np.array(b)
    differs = np.flatnonzero(refused(a) != refused(b))
    return {
        "inputs": len(names),
        "max_abs_difference": dict(zip(CUES, np.abs(a - b).max(axis=0).tolist())),
        "bitwise_equal": dict(zip(CUES, (a == b).sum(axis=0).tolist())),
        "decisions_differ": len(differs),
        "differing_inputs": [names[i] for i in differs][:50],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="folder of the other vpcore package")
    parser.add_argument("--label", help="what the other package is (e.g. its commit)")
    parser.add_argument("--data", help="corpus folder (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--limit", type=int, help="use this many corpus takes (default: all)")
    parser.add_argument("--seeds", type=int, default=100, help="seeds per non-speech kind")
    parser.add_argument("--name", default="speech_equivalence")
    parser.add_argument("--out-dir")
    args = parser.parse_args(argv)
    from vpcore.speech import speech_cues

    start = time.perf_counter()
    with paired.before_package(args.before) as pkg:
        result = compare(pkg.speech.speech_cues, speech_cues,
                         _inputs(common.data_root(args.data), args.limit, args.seeds, CONDITIONS))
    result.update(benchmark="speech_equivalence", before=args.label or str(args.before),
                  seconds=round(time.perf_counter() - start, 1))
    path = common.write_result(args.name, result, args.out_dir)
    print(f"{result['inputs']} inputs, decisions that differ: {result['decisions_differ']}; "
          f"largest differences {result['max_abs_difference']}")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
