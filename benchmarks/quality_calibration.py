"""Would a quality-aware calibration keep 0.7's meaning across conditions? An upper bound.

On the robustness development protocol (``benchmarks/robustness.py``), every
trial's normalised score is paired with three quality measures of its probe:
the SNR estimate of :func:`vpcore.quality.snr_estimate`, a band-limitation
measure (energy above 3.8 kHz against 300-3400 Hz, in dB: a telephone
channel has none up there), the log number of speech frames and the UBM's
average log-likelihood per speech frame (how far the probe's features have
moved from the training speech the UBM models; reverberation and a changed
speaking style move them too, which the first three do not see). Three
calibrations are then fitted on the pooled trials of every condition **of
the development protocol itself** (so the figures are an upper bound of
what either could do, not a result to report as accuracy):

* ``affine``: ``llr = a s + b`` (what the shipped model does);
* ``quality``: ``llr = a s + b + w . q`` with the first three measures
  (quality-measure functions in the manner of Nautsch et al. 2016);
* ``quality+ubm``: the same with the UBM log-likelihood as a fourth measure,

all by prior-weighted logistic regression.

For each, FAR and FRR per condition at the LLR behind confidence 0.7 under
the model's prior, and at a lower LLR::

    python benchmarks/quality_calibration.py            # the development model
"""

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common, robustness

#: LLR thresholds reported besides the one of 0.7 under the model's prior.
EXTRA_THRESHOLDS = (1.95,)


def band_limitation_db(samples, sample_rate=16000):
    """Energy above 3.8 kHz relative to 300-3400 Hz, in dB (Welch spectrum)."""
    from scipy.signal import welch

    f, p = welch(samples, sample_rate, nperseg=512)
    high = p[f >= 3800].sum() + 1e-12
    band = p[(f >= 300) & (f < 3400)].sum() + 1e-12
    return float(10 * np.log10(high / band))


def probe_quality(protocol, condition, path, cache_dir):
    """``(SNR estimate dB, band limitation dB)`` of ``path`` in ``condition`` (cached)."""
    from vpcore.quality import snr_estimate

    def compute():
        sources = protocol._babble_sources(path) if condition == "babble" else None
        y = robustness.degrade(condition, protocol.audio(path), robustness._seed_of(path),
                               sources)
        return np.array([snr_estimate(y), band_limitation_db(y)])

    key = ["quality", condition, str(path), robustness.PROTOCOL_SEED,
           robustness.PROTOCOL_VERSION]
    return common.cached_array(cache_dir, key, compute)


def trials(model, protocol, condition, cache_dir):
    """``(scores, quality (M, 4), labels)`` of a condition's scorable trials."""
    vps, _ = robustness.enrolments(model, protocol, condition)
    probes = {}
    for test in protocol.tests:
        frames = protocol.features(model.feature_options_, condition, test)
        if frames is not None:  # as robustness.take, whose features are needed here too
            t = model.take_from_features(frames)
            q = probe_quality(protocol, condition, test, cache_dir)
            probes[test] = (t, [*q, np.log(t.n_frames), model.ubm_.score(frames)])
    s, q, y = [], [], []
    for label, key, test in protocol.trials:
        if key in vps and test in probes:
            take, quality = probes[test]
            s.append(model.verify(vps[key], take).llr)
            q.append(quality)
            y.append(bool(label))
    return np.array(s), np.array(q), np.array(y)


def _design(s, q, kind):
    if kind == "affine":
        return s[:, None]
    # scaled so that the regression's default penalty weighs them alike
    scaled = [np.clip(q[:, 0], -10, 40) / 10, np.clip(q[:, 1], -60, 0) / 10, q[:, 2]]
    if kind == "quality+ubm":
        scaled.append(q[:, 3] / 10)
    return np.column_stack([s, *scaled])


def fit_llr(X, y, prior):
    """Prior-weighted logistic regression -> a function of X giving LLRs."""
    from sklearn.linear_model import LogisticRegression

    w = np.where(y, prior / y.sum(), (1 - prior) / (~y).sum()) * len(y)
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(X, y, sample_weight=w)
    offset = np.log(prior / (1 - prior))
    return lambda Z: lr.decision_function(Z) - offset, lr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file (default: the development model)")
    parser.add_argument("--data")
    parser.add_argument("--name", default="quality-calibration-dev")
    args = parser.parse_args(argv)

    from vpcore import metrics
    from vpcore.model import VoiceprintModel

    data = common.data_root(args.data)
    path = Path(args.model) if args.model else common.DEV_MODEL
    model = VoiceprintModel.load(path)
    cache = common.CACHE_DIR / "robustness"
    protocol = robustness.Protocol(data, cache)
    per = {c: trials(model, protocol, c, cache) for c in robustness.CONDITIONS}
    prior = model.calibration_prior
    thresholds = [robustness._llr_at(robustness.THRESHOLD, prior), *EXTRA_THRESHOLDS]
    results = {}
    for kind in ("affine", "quality", "quality+ubm"):
        X = np.concatenate([_design(s, q, kind) for s, q, _ in per.values()])
        y = np.concatenate([lab for _, _, lab in per.values()])
        llr_of, lr = fit_llr(X, y, prior)
        rows = {}
        for cond, (s, q, lab) in per.items():
            llr = llr_of(_design(s, q, kind))
            rows[cond] = {f"{t:.2f}": dict(zip(("far", "frr"), metrics.far_frr(llr, lab, t)))
                          for t in thresholds}
        results[kind] = {"coef": lr.coef_.ravel().tolist(),
                         "intercept": float(lr.intercept_[0]), "conditions": rows}
        print(f"## {kind}")
        for cond, r in rows.items():
            print(f"| {cond} | " + " | ".join(
                f"LLR {t}: {100 * v['far']:.2f} / {100 * v['frr']:.1f} %" for t, v in r.items())
                + " |")
    names = ("snr_estimate_db", "band_limitation_db", "log_speech_frames",
             "ubm_mean_frame_loglik")
    means = {cond: dict(zip(names, np.round(q.mean(axis=0), 3).tolist()))
             for cond, (_, q, _) in per.items()}
    for cond, m in means.items():
        print(f"| {cond} | " + " | ".join(f"{k} {v}" for k, v in m.items()) + " |")
    common.write_result(args.name, {
        "benchmark": "quality_calibration", "model": common.model_info(model, path),
        "quality_means": means,
        "note": "fitted and evaluated on the same development trials: an upper bound",
        "quality_measures": list(names),
        "prior": prior, "results": results})


if __name__ == "__main__":
    main()
