"""Command line: ``vpcore train | enroll | score | eval | info``.

Run ``vpcore <command> --help`` for the options of each command.

Every option is checked before any work starts (numbers by their argparse
type, output folders for being writable, optional dependencies for being
installed), so a typo never costs a training run. Exit status: 0 success,
1 some inputs of a batch failed (each named on stderr), 2 an error stopped
the command (usage errors too, as argparse does).
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

from .audio import load_file
from .corpus import data_root, read_corpus, read_list
from .errors import AudioError, ModelError, ParameterError, RepeatedTakeError, VpcoreError
from .features import FeatureOptions
from .repeats import check_not_repeated
from .vad import VadOptions

__all__ = ["main", "build_parser", "corpus_size_warnings"]


# ------------------------------------------------------------------ validators ---
def _int_type(low=None, high=None, allowed=()):
    """An argparse type: an integer within [low, high] (or one of ``allowed``)."""
    def parse(text):
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value in allowed:
            return value
        if (low is not None and value < low) or (high is not None and value > high):
            if high is None:
                rule = f">= {low}"
            elif low is None:
                rule = f"<= {high}"
            else:
                rule = f"from {low} to {high}"
            extra = "".join(f" or {a}" for a in allowed)
            raise argparse.ArgumentTypeError(f"{value} must be an integer {rule}{extra}")
        return value
    return parse


def _float_type(low, high, low_open=False, high_open=False):
    """An argparse type: a finite number in the interval."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if value != value or too_low or too_high:  # NaN fails too
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise argparse.ArgumentTypeError(f"{text} must be a number in {interval}")
        return value
    return parse


_JOBS = _int_type(low=1, allowed=(-1,))


def _conditions_type(text):
    from .augment import CONDITIONS

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CONDITIONS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: conditions are comma-separated names out of {','.join(CONDITIONS)}")
    return names
_SEED = _int_type(low=0, high=2**32 - 1)


def _check_output(option, path):
    """Raise ParameterError unless ``path`` can be written (checked before the work)."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ParameterError(f"{option}={path}: is a folder, not a file")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ParameterError(f"{option}={path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ParameterError(f"{option}={path}: folder {folder} is not writable")


def _check_inputs(option, paths):
    """Raise AudioError naming the first input file that does not exist."""
    for p in paths:
        if not Path(p).is_file():
            what = "it is a folder" if Path(p).is_dir() else "the file does not exist"
            raise AudioError(f"cannot read {option} audio file {p}: {what}")


def _need_module(module, option, extra):
    if importlib.util.find_spec(module) is None:
        raise ParameterError(f"{option} needs {module}, which is not installed: "
                             f"pip install {module} (or, from a vpcore checkout, "
                             f"pip install '.[{extra}]')")


def _warn(command, message):
    print(f"vpcore {command}: warning: {message}", file=sys.stderr)


# ---------------------------------------------------------------------- train ---
def corpus_size_warnings(n_speakers, n_utterances, seconds, n_components, tv_rank, lda_dim,
                         asnorm_top, cohort_per_speaker=2):
    """Warnings (strings, with the numbers) when a corpus is too small for the sizes.

    Parameters
    ----------
    n_speakers, n_utterances : int
        Of the training list.
    seconds : float
        Total audio duration of the training list.
    n_components, tv_rank, lda_dim, asnorm_top : int or None
        C, S, R and the AS-norm top-N (None: off).

    The rules are rules of thumb, each a necessary condition: a diagonal UBM
    needs well over 100 frames per Gaussian (60-dimensional features); the
    total-variability matrix has S columns to estimate from the utterances, so
    fewer than 5 S utterances leave it mostly noise; LDA finds at most
    (speakers - 1) directions; AS-norm's top-N are taken from a cohort of
    ``cohort_per_speaker`` vectors per speaker; calibration scores held-out
    speakers with 4 or more utterances, and with fewer than about 50 of them
    the confidence threshold means little.
    """
    warnings = []
    frames = seconds * 100.0 * 0.7  # 10 ms frames, about 70 % of them speech
    if frames < 100 * n_components:
        warnings.append(
            f"about {frames:,.0f} speech frames ({seconds:,.0f} s of audio) for "
            f"--components {n_components}: a UBM needs at least {100 * n_components:,} "
            f"(100 per component); use fewer components or more audio")
    if n_utterances < 5 * tv_rank:
        warnings.append(
            f"{n_utterances} utterances for --rank {tv_rank}: the total-variability matrix "
            f"needs at least {5 * tv_rank} (5 per i-vector dimension); use a smaller --rank")
    if lda_dim is not None and lda_dim > n_speakers - 1:
        warnings.append(
            f"{n_speakers} speakers for --lda {lda_dim}: LDA finds at most {n_speakers - 1} "
            f"directions; use --lda {max(n_speakers - 1, 1)} or less")
    cohort = cohort_per_speaker * n_speakers
    if asnorm_top is not None and asnorm_top > cohort // 2:
        warnings.append(
            f"cohort of {cohort} vectors ({cohort_per_speaker} per speaker) for "
            f"--asnorm-top {asnorm_top}: the top-N should be at most half the cohort "
            f"({cohort // 2})")
    if n_speakers < 50:
        warnings.append(
            f"{n_speakers} speakers: calibration (the confidence behind the 0.7 threshold) "
            "is estimated on held-out training speakers and needs at least 50 to mean much")
    return warnings


def _audio_seconds(paths):
    import soundfile as sf

    total = 0.0
    for p in paths:
        try:
            info = sf.info(str(p))
        except (RuntimeError, OSError):  # unreadable: training reports it
            continue
        total += info.frames / float(info.samplerate or 1)
    return total


def _train(args):
    from .model import VoiceprintModel

    _check_output("--out", args.out)
    if args.augment:  # codecs and conditions are checked by the model before any work
        _need_module("pyroomacoustics", "--augment", "augment")
        _need_module("av", "--augment", "augment")
    exclude = set()
    for f in args.exclude_speakers or ():
        exclude.update(read_list(f))
    utts = []
    for corpus in args.corpus:
        found = read_corpus(corpus, exclude_speakers=exclude)
        print(f"{corpus}: {len(found)} utterances of {len({u.speaker for u in found})} speakers",
              file=sys.stderr)
        utts += found
    lda = None if args.lda == 0 else args.lda
    asnorm_top = None if args.asnorm_top == 0 else args.asnorm_top
    if lda is not None and lda > args.rank:
        raise ParameterError(f"--lda {lda} must be at most --rank {args.rank}")
    n_speakers = len({u.speaker for u in utts})
    for message in corpus_size_warnings(n_speakers, len(utts), _audio_seconds(u.path for u in utts),
                                        args.components, args.rank, lda, asnorm_top):
        _warn("train", message)
    vad = None if args.no_vad else VadOptions()
    model = VoiceprintModel(
        n_components=args.components, tv_rank=args.rank, lda_dim=lda, wccn=args.wccn,
        asnorm_top=asnorm_top, calibration_prior=args.prior, features=FeatureOptions(vad=vad),
        augment_copies=args.augment, augment_conditions=args.augment_conditions,
        in_domain_cohort=args.in_domain_cohort, n_jobs=args.jobs, random_state=args.seed)
    start = time.perf_counter()
    waveforms = [partial(load_file, u.path) for u in utts]
    model.fit(waveforms, [u.speaker for u in utts], progress=not args.quiet,
              scheduler=args.scheduler)
    out = model.save(args.out)
    trials = model.training_summary_.get("calibration_trials", {})
    if trials.get("target", 0) < 100:
        _warn("train", f"calibration saw {trials.get('target', 0)} target and "
                       f"{trials.get('nontarget', 0)} non-target trials (fewer than 100 "
                       "target trials): confidences of this model are unreliable")
    print(f"trained in {time.perf_counter() - start:.1f} s: {out} "
          f"(fingerprint {model.fingerprint}, {out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def _load(path):
    from .model import load_model

    return load_model(path)


def _take(model, path):
    """The take of one audio file; an unusable file's error names the file."""
    try:
        return model.extract(load_file(path))
    except AudioError as exc:
        text = str(exc)
        raise type(exc)(text if str(path) in text else f"{path}: {text}") from None


# --------------------------------------------------------------- enroll/score ---
def _enroll(args):
    _check_output("--out", args.out)
    _check_inputs("enrolment", args.audio)
    model = _load(args.model)
    takes = []
    for p in args.audio:
        take = _take(model, p)
        try:
            check_not_repeated(takes, take)
        except RepeatedTakeError as exc:
            raise RepeatedTakeError(f"{p}: {exc}") from None
        takes.append(take)
    vp = model.enroll(takes)
    Path(args.out).write_bytes(vp.to_bytes())
    print(f"voiceprint of {len(args.audio)} take(s) written to {args.out}", file=sys.stderr)
    return 0


def _score(args):
    from .model import Voiceprint

    model = _load(args.model)
    path = Path(args.voiceprint)
    if not path.is_file():
        raise ModelError(f"voiceprint file {args.voiceprint} does not exist")
    vp = Voiceprint.from_bytes(path.read_bytes())
    failed = 0
    for p in args.audio:
        try:
            if not Path(p).is_file():
                raise AudioError(f"cannot read audio file {p}: the file does not exist")
            s = model.verify(vp, _take(model, p))
        except VpcoreError as exc:
            failed += 1
            print(f"vpcore score: error: {exc}", file=sys.stderr)
            continue
        print(f"{p}\t{s.llr:.4f}\t{s.confidence:.4f}", flush=True)
    if failed:
        print(f"vpcore score: {failed} of {len(args.audio)} file(s) could not be scored",
              file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------- eval ---
def _eval(args):
    from . import metrics
    from .evaluation import score_trials

    for option in ("json", "scores_out", "det_plot"):
        _check_output("--" + option.replace("_", "-"), getattr(args, option))
    if args.det_plot:
        _need_module("matplotlib", "--det-plot", "bench")
    model = _load(args.model)
    root = Path(args.root) if args.root else data_root(required=True)
    res = score_trials(model, args.trials, root, args.enroll, cache_dir=args.cache_dir,
                       n_jobs=args.jobs, progress=not args.quiet)
    for path, reason in sorted(res.skipped_files.items()):
        _warn("eval", f"skipped {path}: {reason}")
    for key, test, reason in res.skipped_trials:
        _warn("eval", f"skipped trial {key} {test}: {reason}")
    if res.skipped:
        _warn("eval", f"{res.skipped} trial(s) skipped, {len(res)} scored")
    # verify() returns the normalised score; actDCF and Cllr need calibrated LLRs.
    calibrated = model.calibration_.predict_llr(res.llrs)
    report = metrics.evaluate(res.llrs, res.labels, llrs=calibrated)
    far, frr = metrics.far_frr(res.confidences, res.labels, args.threshold)
    report.update({"threshold": args.threshold, "far": far, "frr": frr,
                   "skipped_trials": res.skipped, "model": model.fingerprint})
    # The finished computation is written out before anything that may still fail.
    text = json.dumps(report, indent=2)
    print(text, flush=True)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if args.scores_out:
        metrics.write_scores(args.scores_out, zip(res.enroll, res.test, res.llrs))
    if args.det_plot:
        from .plots import plot_det

        plot_det({"vpcore": (res.llrs, res.labels)}, args.det_plot)
    return 0


def _info(args):
    model = _load(args.model)
    print(json.dumps({"fingerprint": model.fingerprint, "options": model.saved_options(),
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
    t.add_argument("--components", type=_int_type(2, 4096), default=256,
                   help="UBM components C, 2..4096 (256)")
    t.add_argument("--rank", type=_int_type(2, 1000), default=200,
                   help="i-vector dimension S, 2..1000 (200)")
    t.add_argument("--lda", type=_int_type(0, 1000), default=150,
                   help="LDA dimension R <= S, 0 = no LDA (150)")
    t.add_argument("--wccn", action="store_true", help="apply WCCN after LDA")
    t.add_argument("--asnorm-top", type=_int_type(0), default=100,
                   help="AS-norm top-N, 0 = off (100)")
    t.add_argument("--prior", type=_float_type(0.0, 1.0, low_open=True, high_open=True),
                   default=0.1, help="prior of same-speaker trials behind confidence, "
                                     "in (0, 1) (0.1)")
    t.add_argument("--augment", type=_int_type(0, 20), default=0, metavar="COPIES",
                   help="augmented copies of every utterance (noise, babble, reverberation, "
                        "telephone, VoIP, microphone) as extra sessions of the backend, PLDA "
                        "and calibration, 0..20 (0: clean only); needs the 'augment' extra")
    t.add_argument("--augment-conditions", type=_conditions_type, metavar="A,B,...",
                   help="conditions of the copies, comma-separated (default: "
                        "noise,babble,reverb,telephone,voip,mic; style is also known)")
    t.add_argument("--in-domain-cohort", choices=("both", "probe"), default="both",
                   help="sides of AS-norm that a service's enrolled voiceprints join, and that "
                        "the calibration is fitted for (both)")
    t.add_argument("--no-vad", action="store_true", help="keep every frame (not advised)")
    t.add_argument("--jobs", type=_JOBS, default=1,
                   help="processes for feature extraction, >= 1 or -1 = all cores (1)")
    t.add_argument("--seed", type=_SEED, default=0, help="random seed, >= 0 (0)")
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

    s = sub.add_parser("score", help="score audio files against a voiceprint (a file that "
                                     "fails is named on stderr, the others are still scored; "
                                     "exit 1 if any failed)")
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
    v.add_argument("--threshold", type=_float_type(0.0, 1.0), default=0.7,
                   help="confidence threshold for FAR/FRR, in [0, 1] (0.7)")
    v.add_argument("--cache-dir", help="per-file cache of takes (resumable runs; an entry is "
                   "reused only for the same model, vpcore code and unchanged audio file)")
    v.add_argument("--scores-out", help="write 'enroll test llr' lines here")
    v.add_argument("--det-plot", help="write a DET plot (PNG; needs matplotlib)")
    v.add_argument("--json", help="write the report as JSON here")
    v.add_argument("--jobs", type=_JOBS, default=1,
                   help="processes, >= 1 or -1 = all cores (1)")
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
    except (VpcoreError, OSError) as exc:
        print(f"vpcore {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
