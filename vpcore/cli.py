"""Command line: ``vpcore train | enroll | score | eval | info``.

Run ``vpcore <command> --help`` for the options of each command.
"""

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

from .audio import load_file
from .corpus import data_root, read_corpus, read_list
from .errors import VpcoreError
from .features import FeatureOptions
from .vad import VadOptions

__all__ = ["main"]


def _train(args):
    from .model import VoiceprintModel

    exclude = set()
    for f in args.exclude_speakers or ():
        exclude.update(read_list(f))
    utts = []
    for corpus in args.corpus:
        found = read_corpus(corpus, exclude_speakers=exclude)
        print(f"{corpus}: {len(found)} utterances of {len({u.speaker for u in found})} speakers",
              file=sys.stderr)
        utts += found
    vad = None if args.no_vad else VadOptions()
    model = VoiceprintModel(
        n_components=args.components, tv_rank=args.rank,
        lda_dim=None if args.lda == 0 else args.lda, wccn=args.wccn,
        asnorm_top=None if args.asnorm_top == 0 else args.asnorm_top,
        calibration_prior=args.prior, features=FeatureOptions(vad=vad), n_jobs=args.jobs,
        random_state=args.seed)
    start = time.perf_counter()
    waveforms = [partial(load_file, u.path) for u in utts]
    model.fit(waveforms, [u.speaker for u in utts], progress=not args.quiet,
              scheduler=args.scheduler)
    out = model.save(args.out)
    print(f"trained in {time.perf_counter() - start:.1f} s: {out} "
          f"(fingerprint {model.fingerprint}, {out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def _load(path):
    from .model import load_model

    return load_model(path)


def _enroll(args):
    model = _load(args.model)
    vp = model.enroll([model.extract(load_file(p)) for p in args.audio])
    Path(args.out).write_bytes(vp.to_bytes())
    print(f"voiceprint of {len(args.audio)} take(s) written to {args.out}", file=sys.stderr)
    return 0


def _score(args):
    from .model import Voiceprint

    model = _load(args.model)
    vp = Voiceprint.from_bytes(Path(args.voiceprint).read_bytes())
    for path in args.audio:
        s = model.verify(vp, model.extract(load_file(path)))
        print(f"{path}\t{s.llr:.4f}\t{s.confidence:.4f}")
    return 0


def _eval(args):
    from . import metrics
    from .evaluation import score_trials

    model = _load(args.model)
    root = Path(args.root) if args.root else data_root(required=True)
    res = score_trials(model, args.trials, root, args.enroll, cache_dir=args.cache_dir,
                       n_jobs=args.jobs, progress=not args.quiet)
    # verify() returns the normalised score; actDCF and Cllr need calibrated LLRs.
    calibrated = model.calibration_.predict_llr(res.llrs)
    report = metrics.evaluate(res.llrs, res.labels, llrs=calibrated)
    far, frr = metrics.far_frr(res.confidences, res.labels, args.threshold)
    report.update({"threshold": args.threshold, "far": far, "frr": frr,
                   "skipped_trials": res.skipped, "model": model.fingerprint})
    if args.scores_out:
        metrics.write_scores(args.scores_out, zip(res.enroll, res.test, res.llrs))
    if args.det_plot:
        from .plots import plot_det

        plot_det({"vpcore": (res.llrs, res.labels)}, args.det_plot)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


def _info(args):
    model = _load(args.model)
    print(json.dumps({"fingerprint": model.fingerprint, "options": model._options(),
                      "features": model.feature_options_.to_dict(),
                      "calibration": model.calibration_.to_dict(),
                      "training": model.training_summary_}, indent=2))
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="vpcore", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model on labelled corpora")
    t.add_argument("--corpus", action="append", required=True,
                   help="corpus folder (<speaker>/<utt>.wav|flac, or wav.scp + utt2spk); "
                        "repeat for several")
    t.add_argument("--out", required=True, help="model file to write (.npz)")
    t.add_argument("--exclude-speakers", action="append",
                   help="file listing speakers to leave out (e.g. development speakers)")
    t.add_argument("--components", type=int, default=256, help="UBM components C (256)")
    t.add_argument("--rank", type=int, default=200, help="i-vector dimension S (200)")
    t.add_argument("--lda", type=int, default=150, help="LDA dimension R, 0 = no LDA (150)")
    t.add_argument("--wccn", action="store_true", help="apply WCCN after LDA")
    t.add_argument("--asnorm-top", type=int, default=100, help="AS-norm top-N, 0 = off (100)")
    t.add_argument("--prior", type=float, default=0.1,
                   help="prior of same-speaker trials behind confidence (0.1)")
    t.add_argument("--no-vad", action="store_true", help="keep every frame (not advised)")
    t.add_argument("--jobs", type=int, default=1, help="processes for feature extraction")
    t.add_argument("--seed", type=int, default=0, help="random seed (0)")
    t.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): run the "
                                       "map-reduce steps on that cluster; workers must see "
                                       "the corpus paths")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_train)

    e = sub.add_parser("enroll", help="build a voiceprint from audio files")
    e.add_argument("--model", help="model file (default: the shipped model)")
    e.add_argument("--out", required=True, help="voiceprint file to write")
    e.add_argument("audio", nargs="+")
    e.set_defaults(func=_enroll)

    s = sub.add_parser("score", help="score audio files against a voiceprint")
    s.add_argument("--model", help="model file (default: the shipped model)")
    s.add_argument("--voiceprint", required=True)
    s.add_argument("audio", nargs="+")
    s.set_defaults(func=_score)

    v = sub.add_parser("eval", help="score a trial list and report EER, minDCF, Cllr")
    v.add_argument("--model", help="model file (default: the shipped model)")
    v.add_argument("--trials", required=True,
                   help="'1 a.wav b.wav' pairs, or 'model utt target|nontarget' with --enroll")
    v.add_argument("--enroll", help="enrolment list 'model take1 take2 ...'")
    v.add_argument("--root", help="folder the lists' paths are relative to "
                                  "(default: the corpus folder, $VPCORE_DATA)")
    v.add_argument("--threshold", type=float, default=0.7,
                   help="confidence threshold for FAR/FRR (0.7)")
    v.add_argument("--cache-dir", help="per-file cache of takes (resumable runs; an entry is "
                   "reused only for the same model, vpcore code and unchanged audio file)")
    v.add_argument("--scores-out", help="write 'enroll test llr' lines here")
    v.add_argument("--det-plot", help="write a DET plot (PNG; needs matplotlib)")
    v.add_argument("--json", help="write the report as JSON here")
    v.add_argument("--jobs", type=int, default=1)
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=_eval)

    i = sub.add_parser("info", help="print a model's header")
    i.add_argument("--model", help="model file (default: the shipped model)")
    i.set_defaults(func=_info)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VpcoreError as exc:
        print(f"vpcore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"vpcore {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
