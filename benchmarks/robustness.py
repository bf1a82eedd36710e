"""Robustness development protocol: the clean dev trials with probes in other conditions.

The 40 development speakers enrol from their three clean takes (as in the
clean protocol); every test utterance is then degraded, one condition at a
time, and scored against all 40 voiceprints (200 target and 7,800
non-target trials per condition)::

    python benchmarks/robustness.py                     # the dev model (trained if missing)
    python benchmarks/robustness.py --model m.npz --name robustness-m
    python benchmarks/robustness.py --adaptive-cohort --name robustness-dev-aug1-mc-adaptive

========== ==================================================================
condition  probe
========== ==================================================================
clean      as recorded
noise      white, pink, brown or non-stationary noise at 0-15 dB SNR
babble     3-6 other development speakers talking at once, 0-10 dB SNR
reverb     simulated rooms (12, other than any used in training), RT60 0.3-1.2 s
telephone  300-3400 Hz, 8 kHz, G.711 mu/A-law, AMR-NB or Opus narrowband
voip       G.722, Opus or MP3 at 16 kHz, low bit rates
channel    enrolment AND probe through one fixed unseen channel (microphone
           colouring and a small room): the shift of a new recording setup
style      speaking-style proxy: tempo 0.8-1.25 (time stretch), vocal-effort
           tilt and level. Not emotional speech: there is no such corpus here
emotion    an arousal proxy: pitch shifted by -3 to +6 semitones with the
           spectral envelope kept, tempo 0.8-1.25, effort tilt and level moved
           together (``vpcore.augment.speaking_style`` with wider ranges and
           the protocol's seeds). Still a proxy, not acted emotion
========== ==================================================================

Every condition is drawn with seeds and parameters other than those of
training (``PROTOCOL_SEED``; the training augmenter uses ``random_state`` 0
and its own room bank). Reports EER, minDCF(0.01), actDCF, Cllr and FAR/FRR
at the service's confidence threshold 0.7 per condition, and the enrolment
consistency check per condition (a genuine third take in that condition
accepted? an impostor's third take refused?).
"""

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import accuracy, common
from server.config import DEFAULT_CONSISTENCY_THRESHOLD

THRESHOLD = 0.7
#: The service's default enrolment consistency threshold.
CONSISTENCY_THRESHOLD = DEFAULT_CONSISTENCY_THRESHOLD
#: Priors at which FAR/FRR at 0.7 are also reported (confidence = sigmoid(llr + logit(prior))).
PRIORS = (0.1, 0.2, 0.3, 0.5)
#: Consistency thresholds at which the enrolment check is also reported.
CONSISTENCY_SWEEP = (0.02, 0.05, 0.1, 0.2, 0.3)
PROTOCOL_SEED = 424242
CONDITIONS = ("clean", "noise", "babble", "reverb", "telephone", "voip", "channel", "style",
              "emotion")
#: Bump when a condition's definition changes (part of the feature cache key).
PROTOCOL_VERSION = 1


def _augmenter(condition):
    from vpcore.augment import Augmenter

    kw = {
        "noise": dict(snr_db=(0.0, 15.0)),
        "babble": dict(babble_snr_db=(0.0, 10.0), babble_talkers=(3, 6)),
        "reverb": dict(rt60=(0.3, 1.2), n_rooms=12),
        "telephone": {}, "voip": {},
    }[condition]
    return Augmenter(conditions=(condition,), random_state=PROTOCOL_SEED, **kw)


def _style(x, rng):
    import librosa

    from vpcore.augment import spectral_tilt

    rate = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    y = librosa.effects.time_stretch(x.astype(np.float32), rate=rate)
    y = spectral_tilt(y, rng.uniform(-0.5, 0.5))  # > 0: soft voice; < 0: raised effort
    y = y * 10 ** (rng.uniform(-10, 6) / 20)
    peak = float(np.max(np.abs(y)))
    return (y * min(1.0, 0.99 / peak) if peak > 0 else y).astype(np.float32)


class _Channel:
    """One fixed unseen recording setup: an equaliser and a small room."""

    def __init__(self):
        from vpcore.augment import room_impulse_response

        rng = np.random.default_rng([PROTOCOL_SEED, 99])
        self.eq_seed = int(rng.integers(2**31))
        self.rir = room_impulse_response(0.35, [4.2, 3.5, 2.7], 1.0, rng)

    def __call__(self, x):
        from vpcore.augment import equalise, reverberate

        return equalise(reverberate(x, self.rir), np.random.default_rng(self.eq_seed), 8.0)


def degrade(condition, x, seed, babble_sources=None, _cache={}):
    """``x`` in ``condition`` (deterministic in ``seed``)."""
    if condition == "clean":
        return x
    rng = np.random.default_rng([PROTOCOL_SEED, *seed])
    if condition == "style":
        return _style(x, rng)
    if condition == "emotion":
        from vpcore.augment import speaking_style

        y, _ = speaking_style(x, float(rng.uniform(-1.0, 1.0)), rng, semitones=(-3.0, 6.0),
                              tempo=(0.8, 1.25))
        return y
    if condition == "channel":
        if "channel" not in _cache:
            _cache["channel"] = _Channel()
        return _cache["channel"](x)
    if condition not in _cache:
        _cache[condition] = _augmenter(condition)
    y, _ = _cache[condition].augment(x, seed=seed, babble_sources=babble_sources)
    return y


def _seed_of(path):
    return [common.path_seed(path)]


class Protocol:
    """The dev protocol's files, their speakers and per-condition features (cached on disk)."""

    def __init__(self, data, cache_dir):
        root = Path(data)
        self.trials, self.enrol = accuracy.read_protocol(root / common.DEV_TRIALS, root,
                                                       root / common.DEV_ENROLL)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.tests = sorted({t for _, _, t in self.trials})
        self.speaker = {p: p.parent.name for p in self.tests}
        for key, paths in self.enrol.items():
            for p in paths:
                self.speaker[p] = key
        self._audio = {}

    def audio(self, path):
        from vpcore.audio import load_file

        if path not in self._audio:
            self._audio[path] = load_file(path)
        return self._audio[path]

    def _babble_sources(self, path):
        spk = self.speaker[path]
        return [self.audio(p) for p in self.tests if self.speaker[p] != spk]

    def features(self, options, condition, path):
        """Front-end features of ``path`` in ``condition`` (None: too little speech)."""
        from vpcore.errors import TooLittleSpeechError
        from vpcore.features import extract_features

        def compute():
            sources = self._babble_sources(path) if condition == "babble" else None
            try:
                return extract_features(degrade(condition, self.audio(path), _seed_of(path),
                                                sources), options)
            except TooLittleSpeechError:
                return None

        key = [options.to_dict(), condition, str(path), PROTOCOL_SEED, PROTOCOL_VERSION]
        return common.cached_array(self.cache_dir, key, compute)


def take(model, protocol, condition, path):
    """The model's take of ``path`` in ``condition`` (None: too little speech)."""
    f = protocol.features(model.feature_options_, condition, path)
    return None if f is None else model.take_from_features(f)


def enrolments(model, protocol, condition):
    """``({key: Voiceprint}, {key: [Take]})``: clean three-take enrolments (in the channel
    for ``channel``); keys without a usable take get no voiceprint."""
    enrol_cond = "channel" if condition == "channel" else "clean"
    vps, enrol_takes = {}, {}
    for key, paths in protocol.enrol.items():
        takes = [t for t in (take(model, protocol, enrol_cond, p) for p in paths)
                 if t is not None]
        enrol_takes[key] = takes
        if takes:
            vps[key] = model.enroll(takes)
    return vps, enrol_takes


def trial_scores(model, protocol, vps, probes, adaptive_cohort=False, rows_of=None,
                 every_trial=False):
    """``(llr, labels, skipped)``: normalised scores of the trials with a voiceprint in ``vps``
    and a usable probe in ``probes``, their labels, and how many trials were skipped.

    ``adaptive_cohort``: through a :class:`vpcore.gallery.Gallery` of every
    voiceprint (keys sorted), each probe's AS-norm pooling the others (and,
    for a model whose ``in_domain_cohort`` is ``"both"``, each voiceprint's
    too), as the service scores; else one trial at a time with
    :meth:`VoiceprintModel.verify`. ``rows_of`` maps the voiceprints' rows
    (E, width) to the rows the gallery holds (default: as stored).
    ``every_trial``: return ``(keys, labels, llr)`` over every trial of the
    protocol instead, NaN where a trial is skipped.
    """
    from vpcore.gallery import Gallery

    keys = sorted(vps)
    row = {key: i for i, key in enumerate(keys)}
    gallery = None
    if adaptive_cohort and keys:
        V = np.stack([vps[k].vector for k in keys])
        gallery = Gallery(model, V if rows_of is None else rows_of(V), adaptive_cohort=True)
    by_probe = {}
    trial_keys, llr, lab = [], [], []
    skipped = 0
    for label, key, test in protocol.trials:
        if key not in vps or probes[test] is None:
            skipped += 1
            if every_trial:
                trial_keys.append(key)
                llr.append(np.nan)
                lab.append(label)
            continue
        if gallery is None:
            llr.append(model.verify(vps[key], probes[test]).llr)
        else:
            if test not in by_probe:
                by_probe[test] = gallery.scores(probes[test]).astype(np.float64)
            llr.append(float(by_probe[test][row[key]]))
        trial_keys.append(key)
        lab.append(label)
    if every_trial:
        return np.array(trial_keys), np.array(lab, dtype=bool), np.array(llr)
    return np.array(llr), np.array(lab, dtype=bool), skipped


def evaluate(model, protocol, conditions=CONDITIONS, progress=True, adaptive_cohort=False):
    """Metrics per condition for ``model`` -> {condition: dict}.

    ``adaptive_cohort``: score as the service does by default, each probe's
    AS-norm statistics pooling the cohort with its scores against the other
    enrolled voiceprints (:class:`vpcore.gallery.Gallery`); else one trial at a
    time with :meth:`VoiceprintModel.verify` (cohort only).
    """
    from tqdm.auto import tqdm

    from vpcore import metrics

    out = {}
    for condition in conditions:
        start = time.perf_counter()
        vps, enrol_takes = enrolments(model, protocol, condition)
        probes = {p: take(model, protocol, condition, p)
                  for p in tqdm(protocol.tests, desc=condition, disable=not progress)}
        llr, lab, skipped = trial_scores(model, protocol, vps, probes, adaptive_cohort)
        conf = model.scorer_.confidence(llr)
        cal = model.calibration_.predict_llr(llr)
        res = metrics.evaluate(llr, lab, llrs=cal)
        far, frr = metrics.far_frr(conf, lab, THRESHOLD)
        res.update(far_at_0_7=far, frr_at_0_7=frr, skipped=skipped)
        res["at_0_7_by_prior"] = {
            str(p): dict(zip(("far", "frr"), metrics.far_frr(cal, lab, _llr_at(THRESHOLD, p))))
            for p in PRIORS}
        res["consistency"] = _consistency(model, protocol, enrol_takes, probes)
        res["seconds"] = round(time.perf_counter() - start, 1)
        out[condition] = res
    return out


def _llr_at(confidence, prior):
    """The calibrated LLR at which the posterior under ``prior`` is ``confidence``."""
    return float(np.log(confidence / (1 - confidence)) - np.log(prior / (1 - prior)))


def _consistency(model, protocol, enrol_takes, probes):
    """Enrolment check: two clean takes, then a third in the condition (own or another's)."""
    keys = sorted(k for k, t in enrol_takes.items() if len(t) >= 2)
    by_spk = {}
    for p, t in probes.items():
        if t is not None:
            by_spk.setdefault(protocol.speaker[p], []).append(t)
    genuine, impostor = [], []
    for i, key in enumerate(keys):
        first = enrol_takes[key][:2]
        for t in by_spk.get(key, [])[:2]:
            genuine.append(model.consistency(first, t))
        other = keys[(i + 1) % len(keys)]
        for t in by_spk.get(other, [])[:2]:
            impostor.append(model.consistency(first, t))
    genuine, impostor = np.array(genuine), np.array(impostor)

    def rates(threshold):
        return {"genuine_refused": float(np.mean(genuine < threshold)) if len(genuine) else None,
                "impostor_accepted": (float(np.mean(impostor >= threshold))
                                      if len(impostor) else None)}

    return {"threshold": CONSISTENCY_THRESHOLD, **rates(CONSISTENCY_THRESHOLD),
            "n_genuine": len(genuine), "n_impostor": len(impostor),
            "by_threshold": {str(t): rates(t) for t in CONSISTENCY_SWEEP}}


def table(results):
    """Markdown table of :func:`evaluate` output."""
    lines = ["| condition | EER | minDCF(0.01) | actDCF(0.01) | Cllr | FAR at 0.7 | FRR at 0.7 "
             "| genuine take 3 refused | impostor take 3 accepted |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cond, r in results.items():
        c = r["consistency"]
        lines.append(f"| {cond} | {100 * r['eer']:.2f} % | {r['min_dcf_0.01']:.3f} | "
                     f"{r['act_dcf_0.01']:.3f} | {r['cllr']:.3f} | {100 * r['far_at_0_7']:.2f} % | "
                     f"{100 * r['frr_at_0_7']:.1f} % | {100 * c['genuine_refused']:.1f} % | "
                     f"{100 * c['impostor_accepted']:.1f} % |")
    return "\n".join(lines)


def sweep_table(results):
    """Markdown: FAR/FRR at 0.7 under each prior, and the consistency check per threshold."""
    lines = ["| condition | " + " | ".join(f"prior {p}: FAR / FRR" for p in PRIORS) + " | "
             + " | ".join(f"check {t}: genuine refused / impostor accepted"
                          for t in CONSISTENCY_SWEEP) + " |",
             "|---" * (1 + len(PRIORS) + len(CONSISTENCY_SWEEP)) + "|"]
    for cond, r in results.items():
        cells = [f"{100 * r['at_0_7_by_prior'][str(p)]['far']:.2f} / "
                 f"{100 * r['at_0_7_by_prior'][str(p)]['frr']:.1f} %" for p in PRIORS]
        by = r["consistency"]["by_threshold"]
        cells += [f"{100 * by[str(t)]['genuine_refused']:.1f} / "
                  f"{100 * by[str(t)]['impostor_accepted']:.1f} %" for t in CONSISTENCY_SWEEP]
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file (default: the dev model, trained if missing)")
    parser.add_argument("--data", help="corpus root (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS),
                        choices=CONDITIONS)
    parser.add_argument("--name", default="robustness-dev", help="result file name")
    parser.add_argument("--out-dir", help="folder of the result file")
    parser.add_argument("--cache", default=str(common.CACHE_DIR / "robustness"))
    parser.add_argument("--adaptive-cohort", action="store_true",
                        help="normalise each probe with the cohort pooled with its scores "
                             "against the other enrolled voiceprints (the service's default)")
    args = parser.parse_args(argv)

    from vpcore.model import VoiceprintModel

    data = common.data_root(args.data)
    path = Path(args.model) if args.model else common.DEV_MODEL
    if not path.is_file():
        if args.model:
            raise SystemExit(f"model {path} does not exist")
        common.train_dev_model(path, data)
    model = VoiceprintModel.load(path)
    protocol = Protocol(data, args.cache)
    results = evaluate(model, protocol, args.conditions, adaptive_cohort=args.adaptive_cohort)
    print(table(results))
    print(sweep_table(results))
    out = common.write_result(args.name, {
        "benchmark": "robustness", "model": common.model_info(model, path),
        "protocol": {"seed": PROTOCOL_SEED, "version": PROTOCOL_VERSION,
                     "threshold": THRESHOLD, "conditions": list(args.conditions),
                     "adaptive_cohort": bool(args.adaptive_cohort)},
        "results": results}, args.out_dir)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
