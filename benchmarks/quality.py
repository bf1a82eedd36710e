"""Cost and accuracy of the take-quality measures of ``vpcore.quality``.

::

    python benchmarks/quality.py [--durations 3 5 10 20] [--repeat 200] [--snrs 0 5 10 20 30]

Timing, single thread (``threadpool_limits(1)``), on real speech when the
shared corpora are present (synthetic otherwise): ``snr_estimate``,
``net_speech_seconds``, ``clipping_ratio`` and ``assess`` (all three in one
pass, what the service runs for ``"quality": true``).

Accuracy of the SNR estimate: white noise is added to clean speech (the
synthesiser's, and corpus speech when present) at known SNRs, defined as
NIST's ``stnr`` does (power of the loud frames, the 95th percentile of the
clean recording's 25 ms frame powers, over the noise power); the error of
the estimate is reported per SNR (median and 10th / 90th percentiles over
the utterances).
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common


def timings(durations, repeat, data=None):
    from threadpoolctl import threadpool_limits

    from vpcore import quality

    out = {}
    with threadpool_limits(1):
        for seconds in durations:
            samples, source = common.speech_of_length(seconds, seed=1, data=data)
            calls = {
                "snr_estimate": lambda: quality.snr_estimate(samples),
                "net_speech_seconds": lambda: quality.net_speech_seconds(samples),
                "clipping_ratio": lambda: quality.clipping_ratio(samples),
                "assess": lambda: quality.assess(samples),
            }
            out[f"{seconds:g}s"] = {
                "source": source,
                "ms": {name: common.summary_ms(common.time_calls(fn, repeat, warmup=3))
                       for name, fn in calls.items()},
            }
    return out


def _loud_power(samples):
    from vpcore.quality import frame_log_energies

    return float(np.exp(np.percentile(frame_log_energies(samples), 95.0)) / 400 / 32768.0**2)


def clean_utterances(n, data=None):
    """``n`` synthetic utterances and, when the corpora are present, ``n`` corpus ones."""
    from vpcore.audio import load_file
    from vpcore.corpus import data_root
    from vpcore.synth import SyntheticSpeaker, synthesize

    sets = {"synthetic": [synthesize(SyntheticSpeaker.from_seed(i), 5.0, random_state=i)
                          for i in range(n)]}
    root = Path(data) if data else data_root()
    if root is not None and (root / "librispeech-mini" / "train").is_dir():
        files = sorted((root / "librispeech-mini" / "train").glob("*/*.flac"))
        step = max(len(files) // n, 1)
        sets["librispeech-mini"] = [load_file(f) for f in files[::step][:n]]
    return sets


def snr_accuracy(snrs, n, data=None):
    from vpcore.quality import snr_estimate

    out = {}
    for name, utterances in clean_utterances(n, data).items():
        rows = {}
        for snr in snrs:
            errors = []
            for i, x in enumerate(utterances):
                noise = np.random.default_rng(i).standard_normal(len(x)).astype(np.float32)
                sigma = np.sqrt(_loud_power(x) / 10.0 ** (snr / 10.0))
                errors.append(snr_estimate(x + np.float32(sigma) * noise) - snr)
            rows[f"{snr:g}dB"] = {"median_error_db": float(np.median(errors)),
                                  "p10_error_db": float(np.percentile(errors, 10)),
                                  "p90_error_db": float(np.percentile(errors, 90))}
        out[name] = {"utterances": len(utterances),
                     "clean_estimate_db_median": float(np.median(
                         [snr_estimate(x) for x in utterances])),
                     "by_snr": rows}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[3, 5, 10, 20])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--snrs", type=float, nargs="+", default=[0, 5, 10, 20, 30])
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--data", default=None, help="corpora folder (default: found)")
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    payload = {
        "benchmark": "quality",
        "threads": 1,
        "timings": timings(args.durations, args.repeat, args.data),
        "snr_accuracy": snr_accuracy(args.snrs, args.utterances, args.data),
    }
    path = common.write_result("quality", payload, args.out_dir)
    if not args.quiet:
        for key, row in payload["timings"].items():
            figures = ", ".join(f"{k} {v['median']:.3f} ms" for k, v in row["ms"].items())
            print(f"{key} ({row['source']}): {figures}")
        for name, acc in payload["snr_accuracy"].items():
            errs = ", ".join(f"{k} {v['median_error_db']:+.1f} [{v['p10_error_db']:+.1f}, "
                             f"{v['p90_error_db']:+.1f}]" for k, v in acc["by_snr"].items())
            print(f"SNR error, {name} ({acc['utterances']} utterances): {errs}")
        print(f"written to {common.relative(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
