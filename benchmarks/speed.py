"""Milliseconds per stage and end to end, single thread, for 3/5/10/20-second utterances.

::

    python benchmarks/speed.py [--model m.npz] [--durations 3 5 10 20] [--repeat 30]

Run it with ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``: every stage also runs
inside ``threadpoolctl.threadpool_limits(1)``, and the environment variables
keep BLAS from starting helper threads at all. The stages of the library path,
timed separately on the same utterance (real speech from the shared corpora
when present, synthetic speech otherwise):

=================== ==============================================================
``base64``          base64 text of the WAV -> bytes (the service's decoder)
``wav_parse``       WAV bytes -> checked 16 kHz mono float32 waveform
``features``        MFCC + deltas, sliding mean normalisation, energy VAD
``speech_detector`` :func:`vpcore.speech.check_speech` (noise, tones, music refused)
``statistics``      UBM posteriors -> Baum-Welch statistics
``ivector``         posterior mean of the total-variability factor
``backend_plda``    centring, LDA, length-norm, projection into the PLDA space
``plda_llr``        PLDA log-likelihood ratio against one voiceprint
``asnorm``          probe against the AS-norm cohort, normalisation
``calibration``     normalised score -> calibrated confidence
``verify``          :meth:`VoiceprintModel.verify` of a take (the three above, one call)
``end_to_end``      base64 of a WAV -> confidence, measured as one call
=================== ==============================================================

Each stage reports the median wall time and the median CPU time of the thread
(``time.thread_time``); on a shared machine the CPU time is the steadier of the
two. A naive implementation runs in the same process for comparison:
``soundfile`` decode, ``librosa.feature.mfcc`` (20) + deltas, and two
``sklearn.mixture.GaussianMixture(256, 'diag').score_samples`` calls (speaker
model and UBM) -- the cost of scoring a GMM-UBM trial frame by frame.

Also: model load time, the process RSS after loading the model (fresh
interpreter), and the memory of the i-vector extraction cache.
Target: 5 s of audio to a calibrated score in <= 5 ms on one core (median).
"""

import argparse
import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

TARGET_MS_5S = 5.0
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


def stage_functions(model, vp, samples):
    """The timed stages of one utterance: name -> zero-argument callable."""
    from server.parsing import decode_base64
    from vpcore.audio import decode_bytes, encode_wav
    from vpcore.features import extract_features
    from vpcore.speech import check_speech
    from vpcore.stats import compute_stats

    wav = encode_wav(samples)
    b64 = base64.b64encode(wav).decode("ascii")
    x = decode_bytes(wav, "wav")
    opts = model.feature_options_
    feats = extract_features(x, opts)
    st = compute_stats(model.ubm_.params, feats)
    w = model.tv_.transform_one(st.n, st.f)
    take = model.take_from_features(feats)
    scorer = model.scorer_
    rows = scorer.prepare(vp.vector[None, :], np.float32)
    z = take.vector.astype(np.float64)
    llr = scorer.raw(rows, z)
    normalised = scorer.normalise(llr.copy(), rows, z)

    def backend_plda():
        return model.plda_.project(model.backend_.transform(w[None, :]))[0]

    def end_to_end():
        return model.verify(vp, model.extract(decode_bytes(decode_base64(b64), "wav")))

    stages = {
        "base64": lambda: decode_base64(b64),
        "wav_parse": lambda: decode_bytes(wav, "wav"),
        "features": lambda: extract_features(x, opts),
        "speech_detector": lambda: check_speech(x, opts.sample_rate),
        "statistics": lambda: compute_stats(model.ubm_.params, feats),
        "ivector": lambda: model.tv_.transform_one(st.n, st.f),
        "backend_plda": backend_plda,
        "plda_llr": lambda: scorer.raw(rows, z),
        "asnorm": lambda: scorer.normalise(llr.copy(), rows, z),
        "calibration": lambda: scorer.confidence(normalised[:, 0].astype(np.float64)),
        "verify": lambda: model.verify(vp, take),
        "end_to_end": end_to_end,
    }
    return stages, wav, len(feats)


#: stages whose sum is the library path (``verify`` holds the three scoring stages)
SUMMED = ("base64", "wav_parse", "features", "speech_detector", "statistics", "ivector",
          "backend_plda", "verify")


def run(args):
    from threadpoolctl import threadpool_limits

    from vpcore.model import load_model

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
    results = {}
    naive = {}
    with threadpool_limits(limits=1):
        gmm = naive_system([common.speech_of_length(15.0, seed=s, data=args.root)[0]
                            for s in range(3)], args.naive_components)
        for d in args.durations:
            samples, desc = common.speech_of_length(float(d), seed=int(d), data=args.root)
            stages, wav, n_frames = stage_functions(model, vp, samples)
            timed = {k: common.time_calls_cpu(f, args.repeat) for k, f in stages.items()}
            res = {"audio": desc, "speech_frames": int(n_frames),
                   "ms": {k: common.summary_ms(v[0]) for k, v in timed.items()},
                   "cpu_ms": {k: common.summary_ms(v[1]) for k, v in timed.items()}}
            res["sum_of_stages_ms"] = float(sum(res["ms"][k]["median"] for k in SUMMED))
            naive_ms = common.summary_ms(common.time_calls(lambda: naive_score(gmm, wav),
                                                           max(3, args.repeat // 3)))
            res["naive_end_to_end_ms"] = naive_ms
            res["naive_over_vpcore"] = naive_ms["median"] / res["ms"]["end_to_end"]["median"]
            results[f"{d:g}s"] = res
            if not args.quiet:
                m, c = res["ms"], res["cpu_ms"]
                print(f"{d:>4g} s ({n_frames} speech frames), median wall / cpu ms:", flush=True)
                for k in m:
                    print(f"    {k:<16} {m[k]['median']:7.3f} {c[k]['median']:7.3f}")
                print(f"    naive end to end {naive_ms['median']:.1f} ms "
                      f"(x{res['naive_over_vpcore']:.1f})", flush=True)
        naive = {"components": args.naive_components, "features": "librosa mfcc 20 + delta",
                 "scoring": "2 x GaussianMixture(diag).score_samples (speaker model + UBM)",
                 "decode": "soundfile"}
    five = results.get("5s")
    payload = {
        "benchmark": "speed",
        "model": {**common.model_info(model, model_path), "source": source},
        "threads": 1,
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
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
