"""Where to draw the line between "the same recording again" and "another take".

For every speaker of ``speechocean762/train`` (8 utterances each), the take of
each utterance (as the service would take it, extended to >= 3 s with the
speaker's next utterances) is compared, by :func:`vpcore.repeats.take_distance`,

* with the takes of the speaker's other utterances that share no audio with it
  (different takes: must pass);
* with near-copies of itself: 6 dB quieter, shifted by 10 ms, its first and last
  0.3 s cut off, faint white noise at 40 dB SNR, an 8-bit mu-law round trip
  (must be refused).

The result (the distributions and the rates at :data:`vpcore.repeats.COPY_DISTANCE`)
goes to ``benchmarks/results/repeated_takes.json`` with the machine and commit.

Usage::

    python benchmarks/repeated_takes.py [--model M] [--data DIR] [--speakers N]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from benchmarks.speech_detector import load_take, quantise  # noqa: E402
from vpcore.corpus import read_corpus  # noqa: E402
from vpcore.errors import AudioError  # noqa: E402
from vpcore.model import load_model  # noqa: E402
from vpcore.repeats import COPY_DISTANCE, take_distance  # noqa: E402

SR = 16000
VARIANTS = ("quieter_6db", "shifted_10ms", "trimmed_0.3s", "noise_40db", "mu_law")


def n_used(paths):
    """How many of ``paths`` :func:`load_take` concatenates."""
    import soundfile as sf

    n = 0
    for k, p in enumerate(paths, 1):
        n += sf.info(str(p)).frames
        if n >= 3 * SR:
            return k
    return len(paths)


def variant(x, kind, rng):
    if kind == "quieter_6db":
        return x * 0.5
    if kind == "shifted_10ms":
        return np.concatenate([np.zeros(SR // 100), x])
    if kind == "trimmed_0.3s":
        cut = int(0.3 * SR)
        return x[cut:-cut] if len(x) > 3 * SR + 2 * cut else x[cut:]
    if kind == "noise_40db":
        noise = rng.standard_normal(len(x))
        return x + noise * np.sqrt(np.mean(x ** 2) / 1e4)
    if kind == "mu_law":
        mu = 255.0
        y = np.clip(x, -1, 1)
        code = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127) / 127
        return np.sign(code) * ((1 + mu) ** np.abs(code) - 1) / mu
    raise ValueError(kind)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--data", help="corpus folder (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--speakers", type=int, help="use the first N speakers (default: all)")
    parser.add_argument("--out-dir", help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    root = common.data_root(args.data)
    model_path, source = common.resolve_model(args.model)
    model = load_model(model_path)
    by_speaker = {}
    for u in read_corpus(root / "speechocean762" / "train"):
        by_speaker.setdefault(u.speaker, []).append(u.path)
    speakers = sorted(by_speaker)[: args.speakers]
    different, copies = [], {k: [] for k in VARIANTS}
    rng = np.random.default_rng(0)
    for speaker in speakers:
        paths = sorted(by_speaker[speaker])
        takes, waves, used = [], [], []
        for i in range(len(paths)):
            order = paths[i:] + paths[:i]
            x = load_take(order)
            try:
                takes.append(model.extract(quantise(x)))
            except AudioError:
                continue
            waves.append(x)
            used.append(set(order[: n_used(order)]))
        for i in range(len(takes)):
            for j in range(i + 1, len(takes)):
                if not used[i] & used[j]:
                    different.append(take_distance(takes[i], takes[j]))
            for kind in VARIANTS:
                try:
                    copy = model.extract(quantise(variant(waves[i], kind, rng)))
                except AudioError:
                    continue
                copies[kind].append(take_distance(takes[i], copy))
    different = np.array(different)
    q = (0, 0.1, 1, 50, 99, 99.9, 100)
    result = {
        "benchmark": "repeated_takes",
        "model": common.model_info(model, model_path), "model_source": source,
        "threshold": COPY_DISTANCE,
        "speakers": len(speakers),
        "different_takes": {"pairs": len(different),
                            "refused": float(np.mean(different <= COPY_DISTANCE)),
                            "percentiles": dict(zip(map(str, q),
                                                    np.percentile(different, q).round(4)))},
        "copies": {k: {"pairs": len(v), "refused": float(np.mean(np.array(v) <= COPY_DISTANCE)),
                       "percentiles": dict(zip(map(str, q), np.percentile(v, q).round(4)))}
                   for k, v in copies.items()},
    }
    path = common.write_result("repeated_takes", result, args.out_dir)
    print(f"different takes: {len(different)} pairs, refused "
          f"{100 * result['different_takes']['refused']:.3f} %, min distance "
          f"{different.min():.4f}", file=sys.stderr)
    for k, v in result["copies"].items():
        print(f"copy {k:>13}: refused {100 * v['refused']:.2f} %, max distance "
              f"{v['percentiles']['100']:.4f}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
