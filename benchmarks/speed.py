"""Milliseconds per stage and end to end, single thread, for 3/5/10/20-second utterances.

::

    python benchmarks/speed.py [--model m.npz] [--durations 3 5 10 20] [--repeat 30]

Stages, timed separately on the same utterance (real speech from the shared
corpora when present, synthetic speech otherwise), with one BLAS/OpenMP
thread (``threadpoolctl.threadpool_limits(1)``):

=================== ==============================================================
``decode``          base64 -> bytes -> checked 16 kHz mono waveform (as the service)
``vad_features``    MFCC + deltas, energy VAD, mean normalisation
``statistics``      UBM posteriors -> Baum-Welch statistics
``ivector``         posterior mean of the total-variability factor
``backend_plda``    centring, LDA, length-norm, PLDA projection, scoring against
                    one voiceprint (with AS-norm and calibration)
``end_to_end``      base64 of a WAV -> confidence (one ``verify``), measured as one call
=================== ==============================================================

A naive implementation runs in the same process for comparison:
``soundfile`` decode, ``librosa.feature.mfcc`` (20) + deltas, and two
``sklearn.mixture.GaussianMixture(256, 'diag').score_samples`` calls (speaker
model and UBM) -- the cost of scoring a GMM-UBM trial frame by frame.

Also: model load time, the process RSS after loading the model (fresh
interpreter), and the memory of the i-vector extraction cache.
Target: 5 s of audio to a score in <= 15 ms on one core.
"""

import argparse
import base64
import io
import json
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

TARGET_MS_5S = 15.0
TARGET_RSS = 500 * 2**20

_RSS_SNIPPET = r"""
import json, sys, time
sys.path.insert(0, {root!r})
from benchmarks.common import rss_bytes
import numpy, scipy, sklearn, librosa
import vpcore.model
before = rss_bytes()
start = time.perf_counter()
m = vpcore.model.load_model({path!r})
seconds = time.perf_counter() - start
print(json.dumps({{"rss_after_imports": before, "rss_after_load": rss_bytes(),
                  "peak_rss": rss_bytes(key="VmHWM"), "load_seconds_cold": seconds}}))
"""


def fresh_process_memory(model_path):
    """RSS of a fresh interpreter after importing vpcore and after loading the model."""
    code = _RSS_SNIPPET.format(root=str(common.ROOT), path=str(model_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def naive_system(train_samples, n_components, seed=0):
    """A librosa MFCC + sklearn diagonal GMM 'system' fitted quickly (for timing only)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    feats = np.concatenate([naive_features(x) for x in train_samples])
    gmm = GaussianMixture(n_components=n_components, covariance_type="diag", max_iter=3,
                          init_params="random_from_data", random_state=seed, reg_covar=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=3 on purpose
        gmm.fit(feats[: max(20 * n_components, 2000)])
    return gmm


def naive_features(samples):
    import librosa

    m = librosa.feature.mfcc(y=samples, sr=16000, n_mfcc=20)
    return np.concatenate([m, librosa.feature.delta(m)]).T


def naive_score(gmm, wav):
    import soundfile as sf

    samples, _ = sf.read(io.BytesIO(wav), dtype="float32")
    X = naive_features(samples)
    return float(gmm.score_samples(X).mean() - gmm.score_samples(X).mean())


def run(args):
    from threadpoolctl import threadpool_limits

    from vpcore.audio import decode_bytes, encode_wav
    from vpcore.features import extract_features
    from vpcore.model import Take, load_model
    from vpcore.stats import compute_stats

    model_path, source = common.resolve_model(args.model)
    load_ms = common.time_calls(lambda: load_model(model_path), repeat=3, warmup=0)
    model = load_model(model_path)
    memory = fresh_process_memory(model_path)
    memory["tv_cache_bytes"] = int(model.tv_.cache_bytes)
    memory["rss_target_bytes"] = TARGET_RSS
    memory["rss_meets_target"] = memory["rss_after_load"] < TARGET_RSS

    # One enrolment (3 takes of one speaker) to score against.
    vp_samples, vp_desc = common.speech_of_length(15.0, seed=7, data=args.root)
    third = len(vp_samples) // 3
    vp = model.enroll([model.extract(vp_samples[i * third:(i + 1) * third]) for i in range(3)])
    opts = model.feature_options_
    ubm = model.ubm_.params
    results = {}
    naive = {}
    with threadpool_limits(limits=1):
        gmm = naive_system([common.speech_of_length(15.0, seed=s, data=args.root)[0]
                            for s in range(3)], args.naive_components)
        for d in args.durations:
            samples, desc = common.speech_of_length(float(d), seed=int(d), data=args.root)
            wav = encode_wav(samples)
            b64 = base64.b64encode(wav).decode("ascii")
            x = decode_bytes(base64.b64decode(b64), "wav")
            feats = extract_features(x, opts)
            st = compute_stats(ubm, feats)
            w = model.tv_.transform_one(st.n, st.f)
            rep = args.repeat

            def backend_plda():
                z = model.plda_.project(model.backend_.transform(w[None, :]))[0]
                return model.verify(vp, Take(z.astype(np.float32), len(feats), model.fingerprint))

            stages = {
                "decode": lambda: decode_bytes(base64.b64decode(b64), "wav"),
                "vad_features": lambda: extract_features(x, opts),
                "statistics": lambda: compute_stats(ubm, feats),
                "ivector": lambda: model.tv_.transform_one(st.n, st.f),
                "backend_plda": backend_plda,
                "end_to_end": lambda: model.verify(
                    vp, model.extract(decode_bytes(base64.b64decode(b64), "wav"))),
            }
            res = {"audio": desc, "speech_frames": int(len(feats)),
                   "ms": {k: common.summary_ms(common.time_calls(f, rep)) for k, f in stages.items()}}
            res["sum_of_stages_ms"] = float(sum(v["median"] for k, v in res["ms"].items()
                                                if k != "end_to_end"))
            naive_ms = common.summary_ms(common.time_calls(lambda: naive_score(gmm, wav),
                                                           max(3, rep // 3)))
            res["naive_end_to_end_ms"] = naive_ms
            res["naive_over_vpcore"] = naive_ms["median"] / res["ms"]["end_to_end"]["median"]
            results[f"{d:g}s"] = res
            if not args.quiet:
                m = res["ms"]
                print(f"{d:>4g} s: " + "  ".join(f"{k} {v['median']:.2f}" for k, v in m.items())
                      + f"  | naive {naive_ms['median']:.1f} ms (x{res['naive_over_vpcore']:.1f})",
                      flush=True)
        naive = {"components": args.naive_components, "features": "librosa mfcc 20 + delta",
                 "scoring": "2 x GaussianMixture(diag).score_samples (speaker model + UBM)",
                 "decode": "soundfile"}
    five = results.get("5s")
    payload = {
        "benchmark": "speed",
        "model": {**common.model_info(model, model_path), "source": source},
        "threads": 1,
        "repeat": args.repeat,
        "durations_s": list(args.durations),
        "stages": results,
        "naive": naive,
        "model_load_ms": common.summary_ms(load_ms),
        "memory": memory,
        "target": {"end_to_end_5s_ms": TARGET_MS_5S,
                   "met": None if five is None else
                   five["ms"]["end_to_end"]["median"] <= TARGET_MS_5S},
        "enrolment": f"3 takes of 5 s cut from 15 s of {vp_desc}",
    }
    path = common.write_result(args.name, payload, args.out_dir)
    if not args.quiet:
        print(f"model load {payload['model_load_ms']['median']:.0f} ms; RSS after load "
              f"{memory['rss_after_load'] / 2**20:.0f} MB; i-vector cache "
              f"{memory['tv_cache_bytes'] / 2**20:.1f} MB")
        print("numpy/BLAS:", json.dumps(common.blas_info()))
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--root", help="corpus root for real speech (default: the shared corpora; "
                                  "synthetic speech when absent)")
    p.add_argument("--durations", type=float, nargs="+", default=[3, 5, 10, 20])
    p.add_argument("--repeat", type=int, default=30, help="timed runs per stage (30)")
    p.add_argument("--naive-components", type=int, default=256)
    p.add_argument("--name", default="speed")
    p.add_argument("--out-dir")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
