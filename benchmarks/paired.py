"""Before/after timing of the per-take stages, paired in one process: another vpcore against this one.

::

    git archive OLD_COMMIT vpcore | tar -x -C /tmp/old      # the older library code
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/paired.py /tmp/old/vpcore \\
        [--label OLD_COMMIT] [--repeat 200]

On a shared machine, timings taken minutes apart differ by more than the
changes being measured. Here the older package is imported under another name
(``vpcore_before``, from a copy in a temporary folder) beside the current one,
both load the same model file, and every stage runs alternately, before then
after, ``--repeat`` times on the same 5-s utterance, with one BLAS thread. The
result is the median of the per-pair ratios (after / before) of the thread's
CPU time, which cancels the drift of the machine's load, and each side's
median CPU time.

Two models, the same library: ``--before-model`` gives the older side its own
model file (the utterance and the alternation stay the same)::

    python benchmarks/paired.py vpcore --label "tv_rank 200" \
        --before-model cache/bench/dev_model_augment1_both.npz \
        --model cache/bench/dev_model_extractor_tv_rank150.npz
"""

import argparse
import contextlib
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

BEFORE = "vpcore_before"


def import_before(package_dir, tmp):
    """The package at ``package_dir`` imported as :data:`BEFORE` (its imports are relative)."""
    shutil.copytree(package_dir, Path(tmp) / BEFORE)
    sys.path.insert(0, str(tmp))
    for module in ("model", "audio", "features", "speech", "stats"):
        importlib.import_module(f"{BEFORE}.{module}")
    return sys.modules[BEFORE]


@contextlib.contextmanager
def before_package(package_dir):
    """:func:`import_before` for the duration of a ``with`` block, then no trace of it."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            yield import_before(package_dir, tmp)
        finally:
            sys.path.remove(str(tmp))
            for name in [m for m in sys.modules if m == BEFORE or m.startswith(BEFORE + ".")]:
                del sys.modules[name]


def stages(pkg, model_path, samples, enrolment):
    """The timed stages of one package: name -> zero-argument callable."""
    from vpcore.audio import encode_wav

    model = pkg.model.load_model(model_path)
    third = len(enrolment) // 3
    vp = model.enroll([model.extract(enrolment[i * third:(i + 1) * third]) for i in range(3)])
    wav = encode_wav(samples)
    x = pkg.audio.decode_bytes(wav, "wav")
    opts = model.feature_options_
    feats = pkg.features.extract_features(x, opts)
    st = pkg.stats.compute_stats(model.ubm_.params, feats)
    take = model.take_from_features(feats)
    return {
        "wav_parse": lambda: pkg.audio.decode_bytes(wav, "wav"),
        "features": lambda: pkg.features.extract_features(x, opts),
        "speech_detector": lambda: pkg.speech.check_speech(x),
        "statistics+ivector+backend": lambda: model.take_from_features(feats),
        "ivector": lambda: model.tv_.transform_one(st.n, st.f),
        "verify": lambda: model.verify(vp, take),
        "library_end_to_end": lambda: model.verify(vp, model.extract(
            pkg.audio.decode_bytes(wav, "wav"))),
    }


def timed_pairs(before, after, repeat, quiet=False):
    """Alternate each stage of ``before`` and ``after``; per stage the CPU-time summaries."""
    from threadpoolctl import threadpool_limits

    out = {}
    with threadpool_limits(limits=1):
        for name in before:
            ca, cb = [], []
            before[name](), after[name]()
            for _ in range(repeat):
                for fn, cpu in ((before[name], ca), (after[name], cb)):
                    start = time.thread_time()
                    fn()
                    cpu.append(1000.0 * (time.thread_time() - start))
            ratio = float(np.median(np.array(cb) / np.array(ca)))
            out[name] = {"before_cpu_ms": common.summary_ms(ca),
                         "after_cpu_ms": common.summary_ms(cb), "after_over_before": ratio}
            if not quiet:
                print(f"{name:<28} before {np.median(ca):7.3f} ms  after {np.median(cb):7.3f}"
                      f" ms  after/before (paired) {ratio:5.2f}", flush=True)
    return out


def run(args):
    import vpcore

    model_path, source = common.resolve_model(args.model)
    before_path = Path(args.before_model) if args.before_model else model_path
    samples, desc = common.speech_of_length(5.0, seed=5, data=args.root)
    enrolment, _ = common.speech_of_length(15.0, seed=7, data=args.root)
    with before_package(args.before) as pkg:
        before = stages(pkg, before_path, samples, enrolment)
        after = stages(vpcore, model_path, samples, enrolment)
        out = timed_pairs(before, after, args.repeat, args.quiet)
    payload = {"benchmark": "paired", "before": args.label or str(args.before),
               "model": {"path": common.relative(model_path), "source": source},
               "before_model": common.relative(before_path),
               "audio": f"5 s of {desc}", "repeat": args.repeat, "threads": 1,
               "stages": out}
    path = common.write_result(args.name, payload, args.out_dir)
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", type=Path, help="folder of the older vpcore package")
    p.add_argument("--label", help="what the older package is (e.g. its commit)")
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--before-model", help="the older side's model (default: --model)")
    p.add_argument("--root", help="corpus root for real speech (default: the shared corpora)")
    p.add_argument("--repeat", type=int, default=200)
    p.add_argument("--name", default="paired")
    p.add_argument("--out-dir")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
