"""How often the speech detector (``vpcore.speech``) refuses speech, and refuses non-speech.

Speech: every utterance of ``speechocean762/train`` and ``librispeech-mini/train``,
as the service would take it (an utterance under 3 s is concatenated with the
next ones of its speaker until it lasts 3 s; at most 20 s), clean and degraded:

* ``babble_0db``, ``babble_5db``, ``babble_10db``: four other corpus speakers
  talking at once, mixed at that SNR;
* ``white_5db``: white noise at 5 dB SNR;
* ``telephone``: 300-3400 Hz band-pass, 8 kHz resampling round trip, 8-bit mu-law;
* ``reverb``: convolution with a synthetic room response (exponentially decaying
  noise, RT60 drawn from 0.3-1.0 s);
* ``clipped``: 20 dB too loud, clipped at full scale;
* ``pitch_up``: pitch raised by 3-7 semitones (shouting, emotion).

Non-speech, generated at many seeds (3-20 s, random level): white, pink and
brown noise, pure tones, tones in noise, mains hum, vibrato tones, held
chords, chord progressions, melodies, linear and logarithmic sweeps
(single and repeated), noise modulated at a syllabic rate, clicks.

Every condition is int16-quantised, as the service receives it. The result
(false-refusal rate per speech condition, refusal rate per non-speech kind,
the cue distributions) goes to ``benchmarks/results/speech_detector.json``
with the machine and commit.

Usage::

    python benchmarks/speech_detector.py [--data DIR] [--seeds 100] [--limit N] [--jobs 2]
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from scipy import signal

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from vpcore.audio import load_file  # noqa: E402
from vpcore.corpus import read_corpus  # noqa: E402
from vpcore.speech import THRESHOLDS, speech_cues  # noqa: E402

SR = 16000
CORPORA = ("speechocean762/train", "librispeech-mini/train")
CONDITIONS = ("clean", "babble_0db", "babble_5db", "babble_10db", "white_5db", "telephone",
              "reverb", "clipped", "pitch_up")
NON_SPEECH = ("white", "pink", "brown", "tone", "tone_in_noise", "hum", "vibrato_tone",
              "chord", "chord_progression", "melody", "sweep", "sweeps_repeated",
              "modulated_noise", "clicks")
CUES = ("modulation", "voiced", "pitch_glide", "rhythm_regularity")


# ---------------------------------------------------------------------- speech ---

def corpus_takes(root, limit=None):
    """``[(take id, [paths])]``: each utterance, extended to >= 3 s with the next ones
    of its speaker (cyclically), as a client of the service would send it."""
    by_speaker = {}
    for corpus in CORPORA:
        for u in read_corpus(Path(root) / corpus):
            by_speaker.setdefault(u.speaker, []).append(u.path)
    takes = []
    for speaker in sorted(by_speaker):
        paths = sorted(by_speaker[speaker])
        for i, path in enumerate(paths):
            takes.append((f"{speaker}/{Path(path).stem}", [paths[(i + j) % len(paths)]
                                                           for j in range(len(paths))]))
    if limit:
        rng = np.random.default_rng(0)
        takes = [takes[i] for i in sorted(rng.choice(len(takes), limit, replace=False))]
    return takes


def load_take(paths):
    """Concatenate utterances until 3 s; at most 20 s."""
    parts, n = [], 0
    for p in paths:
        x = load_file(p)
        parts.append(x)
        n += len(x)
        if n >= 3 * SR:
            break
    x = np.concatenate(parts)
    if len(x) < 3 * SR:  # a speaker whose utterances are all short: repeat
        x = np.tile(x, int(np.ceil(3 * SR / len(x))))
    return x[: 20 * SR].astype(np.float64)


def babble_pool(takes):
    """The waveforms babble is drawn from: 60 of the takes, chosen with a fixed seed."""
    rng = np.random.default_rng(12345)
    chosen = rng.choice(len(takes), min(60, len(takes)), replace=False)
    return [load_take(takes[i][1]) for i in chosen]


def _power(x):
    return float(np.mean(x ** 2)) + 1e-20


def mix(speech, noise, snr_db):
    noise = noise[: len(speech)]
    gain = np.sqrt(_power(speech) / (_power(noise) * 10 ** (snr_db / 10)))
    return speech + gain * noise


def babble(pool, n, rng, talkers=4):
    out = np.zeros(n)
    for k in rng.choice(len(pool), talkers, replace=False):
        y = pool[k]
        y = np.tile(y, int(np.ceil(n / len(y))) + 1)
        start = rng.integers(0, len(y) - n)
        seg = y[start:start + n]
        out += seg / np.sqrt(_power(seg))
    return out


def telephone(x):
    sos = signal.butter(6, [300, 3400], btype="bandpass", fs=SR, output="sos")
    y = signal.resample_poly(signal.sosfiltfilt(sos, x), 1, 2)
    y = np.clip(y / max(np.max(np.abs(y)), 1e-9) * 0.7, -1, 1)
    mu = 255.0
    code = np.round((np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) + 1) / 2 * 255)
    y = np.sign(code / 255 * 2 - 1) * ((1 + mu) ** np.abs(code / 255 * 2 - 1) - 1) / mu
    return signal.resample_poly(y, 2, 1)[: len(x)]


def reverb(x, rng):
    rt60 = rng.uniform(0.3, 1.0)
    t = np.arange(int(1.2 * rt60 * SR)) / SR
    h = rng.standard_normal(len(t)) * np.exp(-6.9078 * t / rt60)
    h[0] = 1.0
    y = signal.fftconvolve(x, h)[: len(x)]
    return y * (np.max(np.abs(x)) / max(np.max(np.abs(y)), 1e-9))


def degrade(x, condition, rng, pool):
    if condition == "clean":
        return x
    if condition.startswith("babble_"):
        return mix(x, babble(pool, len(x), rng), float(condition[7:-2]))
    if condition == "white_5db":
        return mix(x, rng.standard_normal(len(x)), 5.0)
    if condition == "telephone":
        return telephone(x)
    if condition == "reverb":
        return reverb(x, rng)
    if condition == "clipped":
        return np.clip(x / max(np.max(np.abs(x)), 1e-9) * 10.0, -1.0, 1.0)
    if condition == "pitch_up":
        import librosa

        return librosa.effects.pitch_shift(x.astype(np.float32), sr=SR,
                                           n_steps=float(rng.uniform(3.0, 7.0)))
    raise ValueError(condition)


def quantise(x):
    peak = np.max(np.abs(x))
    if peak > 1.0:
        x = x / peak
    return (np.round(x * 32767.0) / 32768.0).astype(np.float32)


def _speech_job(index, paths, pool, conditions):
    x = load_take(paths)
    out = {}
    for c, condition in enumerate(conditions):
        rng = np.random.default_rng([index, c])
        cues = speech_cues(quantise(degrade(x, condition, rng, pool)))
        out[condition] = [getattr(cues, k) for k in CUES]
    return out


# ------------------------------------------------------------------ non-speech ---

def _colored(rng, n, exponent):
    """Noise with power spectrum 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (exponent / 2), n)


def _note(f0, n, rng, harmonics=None, decay=None):
    t = np.arange(n) / SR
    harmonics = harmonics or int(rng.integers(1, 8))
    y = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3))
            for h in range(1, harmonics + 1) if f0 * h < SR / 2)
    if decay:
        y = y * np.exp(-t / decay) * (1 - np.exp(-t / 0.005))
    return y


def _midi(m):
    return 440.0 * 2 ** ((m - 69) / 12)


def non_speech(kind, seed):
    """One generated non-speech waveform of ``kind`` (float64, peak <= 1)."""
    rng = np.random.default_rng([NON_SPEECH.index(kind), seed])
    n = int(rng.uniform(3.0, 20.0) * SR)
    t = np.arange(n) / SR
    if kind == "white":
        y = rng.standard_normal(n)
    elif kind == "pink":
        y = _colored(rng, n, 1.0)
    elif kind == "brown":
        y = _colored(rng, n, 2.0)
    elif kind == "tone":
        y = np.sin(2 * np.pi * np.exp(rng.uniform(np.log(50), np.log(4000))) * t)
    elif kind == "tone_in_noise":
        y = np.sin(2 * np.pi * np.exp(rng.uniform(np.log(80), np.log(2000))) * t)
        y = mix(y, rng.standard_normal(n), rng.uniform(0, 20))
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0])
        y = sum(rng.uniform(0.1, 1.0) / h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3))
                for h in range(1, 12))
        y = y + 0.01 * rng.standard_normal(n)
    elif kind == "vibrato_tone":
        f0 = np.exp(rng.uniform(np.log(100), np.log(800)))
        rate, depth = rng.uniform(4, 7), rng.uniform(0.005, 0.03)
        phase = 2 * np.pi * np.cumsum(f0 * (1 + depth * np.sin(2 * np.pi * rate * t))) / SR
        y = sum(np.sin(h * phase) / h for h in range(1, int(rng.integers(1, 6)) + 1))
    elif kind == "chord":
        root = rng.integers(40, 70)
        y = sum(_note(_midi(root + i), n, rng) for i in rng.choice([0, 3, 4, 7, 10, 12], 3,
                                                                   replace=False))
    elif kind in ("chord_progression", "melody"):
        y = np.zeros(n)
        start = 0
        lengths = (0.4, 1.5) if kind == "chord_progression" else (0.12, 0.6)
        while start < n:
            length = int(rng.uniform(*lengths) * SR)
            seg = min(length + SR // 2, n - start)
            decay = rng.uniform(0.1, 1.0) if rng.random() < 0.7 else None
            root = rng.integers(45, 80)
            notes = [0, 4, 7] if kind == "chord_progression" else [0]
            for i in notes:
                y[start:start + seg] += _note(_midi(root + i), seg, rng, decay=decay) * (
                    1.0 if decay else np.minimum(1, np.arange(seg)[::-1] / 200.0))
            start += length
    elif kind in ("sweep", "sweeps_repeated"):
        period = n / SR if kind == "sweep" else rng.uniform(0.2, 1.5)
        tt = t % period
        f1, f2 = np.exp(rng.uniform(np.log(50), np.log(1000))), np.exp(
            rng.uniform(np.log(1000), np.log(7000)))
        if rng.random() < 0.5:
            f1, f2 = f2, f1
        method = "linear" if rng.random() < 0.5 else "logarithmic"
        y = signal.chirp(tt, f1, period, f2, method=method)
    elif kind == "modulated_noise":
        rate = rng.uniform(2, 8)
        y = _colored(rng, n, rng.uniform(0, 2)) * (1 + np.sin(2 * np.pi * rate * t)) ** 2
    elif kind == "clicks":
        y = np.zeros(n)
        y[:: int(rng.integers(SR // 200, SR // 2))] = 1.0
        y = y + 1e-3 * rng.standard_normal(n)
    else:
        raise ValueError(kind)
    return y / max(np.max(np.abs(y)), 1e-12) * rng.uniform(0.05, 0.99)


def _non_speech_job(kind, seed):
    cues = speech_cues(quantise(non_speech(kind, seed)))
    return [getattr(cues, k) for k in CUES]


# ---------------------------------------------------------------------- decide ---

def refused(cues, t=THRESHOLDS):
    """Boolean per row of ``cues`` (columns in :data:`CUES`): the decision of
    :func:`vpcore.speech.check_speech`."""
    c = np.asarray(cues, dtype=np.float64).reshape(-1, len(CUES))
    return ((c[:, 0] < t.min_modulation) | (c[:, 1] < t.min_voiced)
            | (c[:, 2] < t.min_pitch_glide) | (c[:, 3] > t.max_rhythm_regularity))


def summary(values):
    q = np.percentile(values, [0, 0.5, 1, 5, 50, 95, 99, 100], axis=0)
    return {k: dict(zip(("min", "p0.5", "p1", "p5", "median", "p95", "p99", "max"),
                        np.round(q[:, j], 4).tolist())) for j, k in enumerate(CUES)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="corpus folder (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--seeds", type=int, default=100, help="seeds per non-speech kind (100)")
    parser.add_argument("--limit", type=int, help="use this many corpus takes (default: all)")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--name", default="speech_detector")
    parser.add_argument("--out-dir", help="results folder (default: benchmarks/results)")
    parser.add_argument("--save-cues", help="also write every cue value to this .npz")
    args = parser.parse_args(argv)
    root = common.data_root(args.data)
    start = time.perf_counter()
    takes = corpus_takes(root, args.limit)
    pool = babble_pool(takes)
    rows = Parallel(n_jobs=args.jobs, batch_size=8)(
        delayed(_speech_job)(i, paths, pool, args.conditions) for i, (_, paths) in
        enumerate(takes))
    speech = {c: np.array([r[c] for r in rows]) for c in args.conditions}
    kinds = {k: np.array(Parallel(n_jobs=args.jobs, batch_size=16)(
        delayed(_non_speech_job)(k, s) for s in range(args.seeds))) for k in NON_SPEECH}
    seconds = time.perf_counter() - start
    result = {
        "benchmark": "speech_detector",
        "thresholds": dataclasses.asdict(THRESHOLDS),
        "speech_takes": len(takes),
        "non_speech_seeds": args.seeds,
        "false_refusal": {c: float(refused(v).mean()) for c, v in speech.items()},
        "false_refusal_count": {c: int(refused(v).sum()) for c, v in speech.items()},
        "refused_takes": {c: [takes[i][0] for i in np.flatnonzero(refused(v))][:20]
                          for c, v in speech.items()},
        "non_speech_refusal": {k: float(refused(v).mean()) for k, v in kinds.items()},
        "non_speech_refusal_all": float(np.mean([refused(v).mean() for v in kinds.values()])),
        "speech_cues": {c: summary(v) for c, v in speech.items()},
        "non_speech_cues": {k: summary(v) for k, v in kinds.items()},
        "seconds": round(seconds, 1),
    }
    if args.save_cues:
        np.savez(args.save_cues, **{f"speech_{c}": v for c, v in speech.items()},
                 **{f"non_{k}": v for k, v in kinds.items()})
    path = common.write_result(args.name, result, args.out_dir)
    for c in args.conditions:
        print(f"speech {c:>12}: false refusal {100 * result['false_refusal'][c]:6.2f} % "
              f"({result['false_refusal_count'][c]} of {len(takes)})", file=sys.stderr)
    for k in NON_SPEECH:
        print(f"non-speech {k:>18}: refused {100 * result['non_speech_refusal'][k]:6.1f} %",
              file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
