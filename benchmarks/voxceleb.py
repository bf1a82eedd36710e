"""VoxCeleb1-O runner: the official trial list against a local copy of the audio.

VoxCeleb cannot be downloaded here; with a local copy::

    python benchmarks/voxceleb.py --trials veri_test2.txt --audio-root /data/voxceleb1/wav \
        [--model m.npz] [--cache-dir DIR] [--jobs 2]

The trial list is the official ``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav``
format (label, enrolment file, test file; paths relative to ``--audio-root``).
Every file becomes a take once; takes are cached per file under ``--cache-dir``
(``vpcore.evaluation``'s cache), so an interrupted run resumes where it
stopped. Progress bars show the files done.

``--make-trials N`` first writes a seeded list of N trials in the same format
from a local corpus laid out ``<speaker>/<utt>.wav|flac`` (default: the
speechocean762 training folder of the shared corpora; ``--speakers`` keeps only
the listed speakers), then runs it: the way this runner is tested without
VoxCeleb. For a fair check use speakers the model was not trained on::

    python benchmarks/voxceleb.py --make-trials 2000 --model cache/bench/dev_model.npz \
        --speakers ../shared/data/trials/speechocean762-dev.speakers
"""

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

THRESHOLD = 0.7

#: Published VoxCeleb1-O EERs of OTHER systems, for context only (not vpcore's figures).
#: Approximate values as collected for this project (classical baselines of the VoxCeleb
#: papers and Kaldi/VoxSRC recipes); not re-measured here.
PUBLISHED = [
    {"system": "GMM-UBM (published classical baseline)", "eer_approx": 0.188},
    {"system": "i-vector / PLDA (published classical baselines)", "eer_range": [0.053, 0.088]},
    {"system": "x-vector (Kaldi VoxCeleb recipe)", "eer_approx": 0.031},
]


def make_trials(corpus, out, n_trials, seed=0, speakers=None):
    """Write ``n_trials`` seeded ``label a b`` lines (half targets) from ``<spk>/<utt>`` files.

    ``speakers`` (iterable of str) restricts the draw to those speakers, e.g. the
    development speakers that a model was trained without. Returns the trial
    file path; paths inside are relative to ``corpus``.
    """
    from vpcore.corpus import scan_folder

    corpus = Path(corpus)
    utts = scan_folder(corpus)
    if speakers is not None:
        keep = set(speakers)
        utts = [u for u in utts if u.speaker in keep]
    by_spk = {}
    for u in utts:
        by_spk.setdefault(u.speaker, []).append(u.path.relative_to(corpus).as_posix())
    speakers = sorted(s for s, files in by_spk.items() if len(files) >= 2)
    if len(speakers) < 2:
        raise SystemExit(f"{corpus} needs at least 2 speakers with 2 or more files")
    rng = np.random.default_rng(seed)
    lines = set()
    attempts = 0
    while len(lines) < n_trials and attempts < 100 * n_trials:
        attempts += 1
        target = len(lines) % 2 == 0
        a_spk = speakers[int(rng.integers(len(speakers)))]
        if target:
            a, b = rng.choice(by_spk[a_spk], 2, replace=False)
        else:
            b_spk = speakers[int(rng.integers(len(speakers)))]
            if b_spk == a_spk:
                continue
            a = by_spk[a_spk][int(rng.integers(len(by_spk[a_spk])))]
            b = by_spk[b_spk][int(rng.integers(len(by_spk[b_spk])))]
        lines.add(f"{int(target)} {a} {b}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(sorted(lines, key=lambda s: (s[2:], s[0]))) + "\n")
    return out


def run(args):
    from vpcore import metrics
    from vpcore.evaluation import score_trials
    from vpcore.model import load_model
    from vpcore.plots import plot_det, plot_score_histogram

    t0 = time.perf_counter()
    out_dir = Path(args.out_dir) if args.out_dir else common.RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.make_trials:
        corpus = Path(args.audio_root) if args.audio_root else (
            common.data_root(None) / "speechocean762" / "train")
        trials = Path(args.trials) if args.trials else (
            common.CACHE_DIR / f"voxceleb-format-{args.make_trials}-seed{args.seed}.txt")
        from vpcore.corpus import read_list

        speakers = read_list(args.speakers) if args.speakers else None
        make_trials(corpus, trials, args.make_trials, seed=args.seed, speakers=speakers)
        audio_root = corpus
        name = args.name or f"voxceleb-format-{corpus.parent.name}-{args.make_trials}"
    else:
        if not args.trials or not args.audio_root:
            raise SystemExit("--trials and --audio-root are required (or --make-trials N)")
        trials, audio_root = Path(args.trials), Path(args.audio_root)
        name = args.name or "voxceleb1-o"
    model_path, source = common.resolve_model(args.model)
    model = load_model(model_path)
    cache_dir = Path(args.cache_dir) if args.cache_dir else common.CACHE_DIR / "voxceleb-takes"
    res = score_trials(model, trials, audio_root, cache_dir=cache_dir, n_jobs=args.jobs,
                       progress=not args.quiet)
    report = metrics.evaluate(res.llrs, res.labels, llrs=res.llrs)
    report["act_dcf_0.001"] = metrics.act_dcf(res.llrs, res.labels, p_target=0.001)
    # ``res.llrs`` are AS-normed scores; the calibrated LLR is what actDCF/Cllr should see.
    llr = model.calibration_.predict_llr(res.llrs)
    report.update({"act_dcf_0.01": metrics.act_dcf(llr, res.labels, p_target=0.01),
                   "act_dcf_0.001": metrics.act_dcf(llr, res.labels, p_target=0.001),
                   "cllr": metrics.cllr(llr, res.labels),
                   "min_cllr": metrics.min_cllr(llr, res.labels)})
    far, frr = metrics.far_frr(res.confidences, res.labels, THRESHOLD)
    report.update({"confidence_threshold": THRESHOLD, "far": far, "frr": frr})
    det = out_dir / f"{name}-det.png"
    hist = out_dir / f"{name}-hist.png"
    plot_det({"vpcore": (res.llrs, res.labels)}, det, title=f"DET: {name}")
    plot_score_histogram(res.confidences, res.labels, hist, threshold=THRESHOLD,
                         xlabel="confidence", title=name)
    payload = {
        "benchmark": "voxceleb",
        "protocol": {"name": name, "trials": common.relative(trials),
                     "audio_root": common.display_path(audio_root),
                     "made_trials": bool(args.make_trials),
                     "seed": args.seed if args.make_trials else None,
                     "speakers": common.display_path(args.speakers) if args.speakers else None,
                     "trials_scored": len(res), "trials_skipped": res.skipped},
        "model": {**common.model_info(model, model_path), "source": source},
        "metrics": report,
        "published_other_systems": PUBLISHED,
        "plots": {"det": common.relative(det), "histogram": common.relative(hist)},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    path = common.write_result(name, payload, out_dir)
    if not args.quiet:
        print(f"{name}: EER {100 * report['eer']:.2f} %  minDCF {report['min_dcf_0.01']:.3f}  "
              f"Cllr {report['cllr']:.3f}  FAR/FRR@{THRESHOLD} {100 * far:.2f}/{100 * frr:.2f} %")
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", help="official trial list (veri_test2.txt), or where "
                                    "--make-trials writes its list")
    p.add_argument("--audio-root", help="folder the trial paths are relative to (with "
                                        "--make-trials: the corpus to draw from)")
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--cache-dir", help="per-file take cache (default cache/bench/voxceleb-takes)")
    p.add_argument("--make-trials", type=int, metavar="N",
                   help="first build N seeded trials in the VoxCeleb format from a local corpus")
    p.add_argument("--speakers", help="with --make-trials: draw only these speakers (a list "
                                      "file, e.g. trials/speechocean762-dev.speakers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="result name (default voxceleb1-o)")
    p.add_argument("--out-dir", help="default benchmarks/results")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
