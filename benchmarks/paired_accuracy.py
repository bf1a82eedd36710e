"""Models against a reference on the robustness protocol, trial by trial, with a paired speaker bootstrap.

::

    python benchmarks/paired_accuracy.py cache/bench/dev_model_extractor_tv_rank150.npz \\
        [more models] [--reference cache/bench/dev_model_augment1_both.npz] [--draws 1000] \
        [--adaptive-cohort]

Every model scores the same trials of every condition of
``benchmarks/robustness.py`` (the same cached features). For EER, minDCF(0.01)
and FAR/FRR at the service's threshold 0.7, the difference (model minus
reference; > 0 is worse) is bootstrapped by drawing the 40 enrolled speakers
with replacement (each with all its trials, target and non-target), the same
draw for both models, so what the two share cancels. A figure is **worse
beyond noise** when the lower end of the 90 % interval of its difference is
above 0 (a one-sided 5 % test), **better beyond noise** when the upper end is
below 0. With 8 conditions and 4 figures, an equal model would still show
about one or two such flags in either direction by chance.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, robustness  # noqa: E402

FIGURES = ("eer", "min_dcf_0.01", "far_at_0_7", "frr_at_0_7")


def trial_scores(model, protocol, condition, adaptive_cohort=False):
    """``(key, label, llr, confidence)`` arrays of the condition's trials (NaN: skipped);
    ``adaptive_cohort`` scores through a gallery of the enrolled voiceprints, as the
    service does (:func:`benchmarks.robustness.trial_scores`)."""
    vps, _ = robustness.enrolments(model, protocol, condition)
    probes = {p: robustness.take(model, protocol, condition, p) for p in protocol.tests}
    keys, labels, llr = robustness.trial_scores(model, protocol, vps, probes, adaptive_cohort,
                                                every_trial=True)
    conf = np.full(len(llr), np.nan)
    ok = ~np.isnan(llr)
    conf[ok] = model.scorer_.confidence(llr[ok])
    return keys, labels, llr, conf


def figures(llr, conf, labels):
    """The :data:`FIGURES` of one set of trials."""
    from vpcore import metrics

    far, frr = metrics.far_frr(conf, labels, robustness.THRESHOLD)
    return np.array([metrics.eer(llr, labels), metrics.min_dcf(llr, labels, 0.01), far, frr])


def bootstrap_draws(keys, draws, seed=0):
    """``draws`` index arrays, each the trials of the speakers drawn with replacement."""
    speakers = np.unique(keys)
    rows = [np.flatnonzero(keys == s) for s in speakers]
    rng = np.random.default_rng(seed)
    return [np.concatenate([rows[i] for i in rng.integers(len(speakers), size=len(speakers))])
            for _ in range(draws)]


def paired_differences(reference, variant, labels, draws):
    """Per figure: observed difference, its 90 % interval and the verdict.

    ``reference`` and ``variant`` are ``(llr, conf)`` over the same trials.
    """
    base = figures(*reference, labels)
    observed = figures(*variant, labels) - base
    boot = np.array([figures(variant[0][d], variant[1][d], labels[d])
                     - figures(reference[0][d], reference[1][d], labels[d]) for d in draws])
    lo, hi = np.percentile(boot, [5, 95], axis=0)
    out = {}
    for j, name in enumerate(FIGURES):
        verdict = "worse" if lo[j] > 0 else "better" if hi[j] < 0 else "within noise"
        out[name] = {"reference": float(base[j]), "variant": float(base[j] + observed[j]),
                     "difference": float(observed[j]), "interval_90": [float(lo[j]), float(hi[j])],
                     "verdict": verdict}
    return out


def table(comparison):
    """Markdown: per condition and figure, the difference and its 90 % interval."""
    lines = ["| condition | " + " | ".join(FIGURES) + " |", "|---" * (len(FIGURES) + 1) + "|"]
    for condition, rows in comparison.items():
        cells = []
        for name in FIGURES:
            r = rows[name]
            scale, unit = (1, "") if name.startswith("min_dcf") else (100, " pt")
            mark = {"worse": " **worse**", "better": " better", "within noise": ""}[r["verdict"]]
            cells.append(f"{scale * r['difference']:+.2f}{unit} [{scale * r['interval_90'][0]:+.2f}, "
                         f"{scale * r['interval_90'][1]:+.2f}]{mark}")
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--reference", type=Path,
                        default=common.DEV_MODEL.relative_to(common.ROOT))
    parser.add_argument("--data")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--conditions", nargs="+", default=list(robustness.CONDITIONS),
                        choices=robustness.CONDITIONS)
    parser.add_argument("--name", default="paired-accuracy")
    parser.add_argument("--out-dir")
    parser.add_argument("--adaptive-cohort", action="store_true",
                        help="score through a gallery of the enrolled voiceprints, as the service")
    args = parser.parse_args(argv)
    from vpcore.model import load_model

    protocol = robustness.Protocol(common.data_root(args.data), common.CACHE_DIR / "robustness")
    reference = load_model(common.ROOT / args.reference)  # relative paths: to the project
    variants = {path: load_model(common.ROOT / path) for path in args.models}
    out = {str(p): {} for p in args.models}
    for condition in args.conditions:
        keys, labels, llr, conf = trial_scores(reference, protocol, condition, args.adaptive_cohort)
        scored = {p: trial_scores(m, protocol, condition, args.adaptive_cohort)[2:]
                  for p, m in variants.items()}
        usable = ~np.isnan(llr)
        for v_llr, _ in scored.values():
            usable &= ~np.isnan(v_llr)
        draws = bootstrap_draws(keys[usable], args.draws)
        for path, (v_llr, v_conf) in scored.items():
            out[str(path)][condition] = paired_differences(
                (llr[usable], conf[usable]), (v_llr[usable], v_conf[usable]), labels[usable],
                draws)
        print(f"{condition} done", file=sys.stderr, flush=True)
    for path, comparison in out.items():
        print(f"{path} against {args.reference} (difference [90 % interval]):")
        print(table(comparison))
    result = common.write_result(args.name, {
        "benchmark": "paired_accuracy", "reference": str(args.reference),
        "adaptive_cohort": args.adaptive_cohort,
        "draws": args.draws, "figures": list(FIGURES), "models": out}, args.out_dir)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
