"""The fast per-take path against plain float64 references, within stated tolerances.

The per-take path (MFCC, energy VAD, speech cues, UBM statistics, i-vector,
WAV decoding) computes in float32 where the maths allows, reuses work across
overlapping frames and precomputes per-model constants. Each test here holds
one of those steps to a direct, unoptimised float64 implementation written
out in the test:

================================ ===============================================
log-energy of overlapping frames equal to framing + sum of squares, 1e-12
MFCC                             float64 reference within 1e-3 absolute
front end (deltas, CMN, VAD)     bitwise equal to the public building blocks
speech cues                      float64 reference within 1e-4 on continuous
                                 cues, equal on fixed examples for the counts
                                 (voiced fraction, pitch glide)
UBM statistics                   float64 posteriors: N and F within 1e-4 of scale
i-vector                         dense float64 posterior mean within 1e-4
WAV decoding                     equal to libsndfile's own reading
================================ ===============================================
"""

import io
import struct
from functools import lru_cache

import librosa
import numpy as np
import pytest
import scipy.fft
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from vpcore import speech
from vpcore.audio import decode_wav
from vpcore.features import FeatureOptions, deltas, extract_features, mfcc, sliding_cmn
from vpcore.ivector import TotalVariability
from vpcore.stats import PreparedUbm, compute_stats
from vpcore.synth import SyntheticSpeaker, synthesize
from vpcore.vad import energy_vad, frame_log_energy, waveform_log_energy

SR = 16000


@lru_cache(maxsize=None)
def voice(seed, seconds=3.0):
    x = synthesize(SyntheticSpeaker.from_seed(seed), seconds, random_state=seed + 7)
    x.setflags(write=False)
    return x


# ------------------------------------------------------------------ VAD energy ---

@settings(max_examples=60, deadline=None)
@given(n=st.integers(400, 4000), win=st.integers(2, 400), hop=st.integers(1, 400),
       seed=st.integers(0, 2**16), scale=st.sampled_from([1e-6, 1e-3, 1.0]))
def test_waveform_log_energy_equals_the_energy_of_every_frame(n, win, hop, seed, scale):
    hop = min(hop, win)
    x = (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)
    frames = librosa.util.frame(x, frame_length=win, hop_length=hop, axis=0)
    np.testing.assert_allclose(waveform_log_energy(x, win, hop), frame_log_energy(frames),
                               rtol=0, atol=1e-12)


# ------------------------------------------------------------------------ MFCC ---

def reference_mfcc(x, o=FeatureOptions()):
    """MFCCs in float64, each frame pre-emphasised and windowed on its own."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    frames = librosa.util.frame(x, frame_length=400, hop_length=160, axis=0)
    emphasised = np.concatenate([frames[:, :1] * (1 - o.preemphasis),
                                 frames[:, 1:] - o.preemphasis * frames[:, :-1]], axis=1)
    emphasised = emphasised * np.hamming(400)
    power = np.abs(np.fft.rfft(emphasised, n=o.n_fft, axis=1)) ** 2
    basis = librosa.filters.mel(sr=SR, n_fft=o.n_fft, n_mels=o.n_mels, fmin=o.fmin,
                                fmax=o.fmax)
    logmel = np.log(np.maximum(power @ basis.T, 1e-10))
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)[:, :o.n_mfcc]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mfcc_matches_a_float64_reference(seed):
    ceps, log_energy = mfcc(voice(seed))
    reference = reference_mfcc(voice(seed))
    assert ceps.dtype == np.float32 and ceps.shape == reference.shape
    np.testing.assert_allclose(ceps, reference, rtol=0, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(400, 8000), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1e-3, 0.1, 0.9]))
def test_mfcc_of_noise_matches_the_float64_reference(n, seed, scale):
    x = np.clip(np.random.default_rng(seed).standard_normal(n) * scale, -1, 1)
    ceps, _ = mfcc(x.astype(np.float32))
    np.testing.assert_allclose(ceps, reference_mfcc(x.astype(np.float32)), rtol=0, atol=1e-3)


@pytest.mark.parametrize("options", [FeatureOptions(), FeatureOptions(cmn="utterance"),
                                     FeatureOptions(cmn="none", deltas=1),
                                     FeatureOptions(vad=None), FeatureOptions(cvn=True)])
def test_front_end_is_bitwise_the_composition_of_its_public_steps(options):
    x = voice(3, 4.0)
    ceps, log_energy = mfcc(x, options)
    parts = [ceps] + [deltas(ceps, options.delta_width, order)
                      for order in range(1, options.deltas + 1)]
    feats = np.concatenate(parts, axis=1)
    if options.cmn == "sliding":
        feats = sliding_cmn(feats, options.cmn_window)
    if options.vad is not None:
        feats = feats[energy_vad(log_energy, options.vad)]
    if options.cmn == "utterance":
        feats = feats - feats.mean(axis=0)
    if options.cvn:
        feats = feats / np.maximum(feats.std(axis=0), 1e-5)
    assert extract_features(x, options).tobytes() == feats.astype(np.float32).tobytes()


# ----------------------------------------------------------------- speech cues ---

def reference_cues(samples):
    """The speech cues in float64 throughout (the detector's definition, unoptimised)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    window, band, w_ac, lags = speech._analysis(SR)
    window, band, w_ac = (np.asarray(a, dtype=np.float64) for a in (window, band, w_ac))
    n = 1 + (len(x) - speech._WIN) // speech._HOP
    frames = np.stack([x[i * speech._HOP:i * speech._HOP + speech._WIN] * window
                       for i in range(n)])
    power = np.abs(np.fft.rfft(frames, speech._NFFT, axis=1)) ** 2
    modulation, regularity = speech._envelope_cues(np.sqrt(power @ band))
    energy = power.sum(axis=1)
    level = 10.0 * np.log10(np.maximum(energy, 1e-20))
    sounding = (level > np.percentile(level, 95) - speech._SOUNDING_DB) & (energy > 1e-10)
    ac = np.fft.irfft(power, speech._NFFT, axis=1)[:, :lags[-1] + 1]
    ac = ac / np.maximum(ac[:, :1], 1e-30)
    r = ac[:, lags] / w_ac
    best = np.argmax(r, axis=1)
    peak = r[np.arange(n), best]
    dip = np.array([ac[t, :lags[best[t]] + 1].min() for t in range(n)])
    inside = (best > 0) & (best < len(lags) - 1)
    voiced = sounding & inside & (peak >= speech.VOICING_PEAK) & (peak - dip >= speech.PROMINENCE)
    runs = np.zeros(n, dtype=int)
    t = 0
    while t < n:
        if voiced[t]:
            e = t
            while e < n and voiced[e]:
                e += 1
            runs[t:e] = e - t
            t = e
        else:
            t += 1
    vowel = voiced & (runs >= speech._MIN_RUN)
    steps, changes = 0, 0
    for t in range(n - 1):  # pitch: parabolic interpolation of each frame's peak lag
        if vowel[t] and vowel[t + 1]:
            lag = []
            for u in (t, t + 1):
                i = min(max(best[u], 1), len(lags) - 2)
                a, b, c = r[u, i - 1], r[u, i], r[u, i + 1]
                curvature = a - 2.0 * b + c
                shift = 0.5 * (a - c) / curvature if abs(curvature) > 1e-12 else 0.0
                lag.append(lags[i] + min(max(shift, -1.0), 1.0))
            steps += 1
            changes += abs(np.log(lag[1]) - np.log(lag[0])) > speech.STEADY_PITCH
    glide = changes / steps if steps else 0.0
    return modulation, regularity, int(vowel.sum()), sounding.sum(), glide


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_speech_cues_match_the_float64_definition(seed):
    x = voice(seed, 5.0)
    cues = speech.speech_cues(x)
    modulation, regularity, vowels, sounding, glide = reference_cues(x)
    assert cues.modulation == pytest.approx(modulation, abs=1e-4)
    assert cues.rhythm_regularity == pytest.approx(regularity, abs=1e-4)
    assert cues.voiced == pytest.approx(vowels / sounding, abs=1e-12)  # the same frames
    assert cues.pitch_glide == pytest.approx(glide, abs=1e-12)  # the same frame pairs


@pytest.mark.parametrize("kind", ["tone_in_noise", "vibrato_tone", "chord", "melody",
                                  "modulated_noise"])
def test_speech_cues_of_periodic_non_speech_match_the_float64_definition(kind):
    from benchmarks.speech_detector import non_speech, quantise

    x = quantise(non_speech(kind, 3))
    cues = speech.speech_cues(x)
    _, _, vowels, sounding, glide = reference_cues(x)
    assert cues.voiced == pytest.approx(vowels / sounding, abs=1e-12)
    assert cues.pitch_glide == pytest.approx(glide, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**16), frames=st.integers(1, 5),
       scale=st.sampled_from([1e-8, 1e-3, 1.0, 1e3]))
def test_the_dct_i_of_a_power_spectrum_is_nfft_times_its_inverse_fft(seed, frames, scale):
    """The detector's autocorrelation: a DCT-I of the power, as the inverse real FFT."""
    x = np.random.default_rng(seed).standard_normal((frames, speech._WIN)) * scale
    power = np.abs(np.fft.rfft(x, speech._NFFT, axis=1)) ** 2
    by_dct = scipy.fft.dct(power, type=1, axis=1)
    by_ifft = np.fft.irfft(power, speech._NFFT, axis=1)[:, :power.shape[1]] * speech._NFFT
    np.testing.assert_allclose(by_dct, by_ifft, rtol=0, atol=1e-9 * by_ifft[:, :1].max())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), max_size=60))
def test_runs_gives_each_true_entry_the_length_of_its_run(mask):
    mask = np.array(mask, dtype=bool)
    expected = np.zeros(len(mask), dtype=int)
    start = None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        if not v and start is not None:
            expected[start:i] = i - start
            start = None
    np.testing.assert_array_equal(speech._runs(mask), expected)


# ------------------------------------------------------------------ statistics ---

def reference_stats(weights, means, variances, X, min_posterior=1e-4):
    X = X.astype(np.float64)
    ll = (np.log(weights) - 0.5 * (np.log(2 * np.pi * variances).sum(axis=1)
                                   + (((X[:, None, :] - means) ** 2) / variances).sum(axis=2)))
    post = np.exp(ll - ll.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    post[post < min_posterior] = 0.0
    post /= post.sum(axis=1, keepdims=True)
    n = post.sum(axis=0)
    return n, (post.T @ X - n[:, None] * means) / np.sqrt(variances)


EPS32 = float(np.finfo(np.float32).eps)


@settings(max_examples=30, deadline=None)
@given(C=st.integers(2, 32), D=st.integers(1, 12), T=st.integers(1, 300),
       seed=st.integers(0, 2**16))
def test_float32_statistics_match_float64_posteriors(C, D, T, seed):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(C))
    means = rng.normal(0, 2, (C, D))
    variances = rng.uniform(0.3, 3.0, (C, D))
    X = (rng.normal(0, 2, (T, D))).astype(np.float32)
    st_ = compute_stats((weights, means, variances), X, min_posterior=0.0)
    n, f = reference_stats(weights, means, variances, X, min_posterior=0.0)
    # float32 rounding of the log-densities: a few ulps of the terms they are summed from
    X64 = X.astype(np.float64)
    terms = (np.abs(X64) @ np.abs(means / variances).T + 0.5 * (X64**2) @ (1 / variances).T
             + np.abs(np.log(weights)) + 0.5 * (np.log(2 * np.pi * variances)
                                                + means**2 / variances).sum(axis=1))
    e = 8 * (D + 2) * EPS32 * terms.max(axis=1)  # (T,) bound on |error of ll_t - max ll_t|
    dpost = np.minimum(2 * e, 2.0) + 1e-6  # bound on sum_c |error of post_tc|
    spread = (np.abs(X64[:, None, :] - means) / np.sqrt(variances)).max(axis=(1, 2))
    np.testing.assert_allclose(st_.n, n, rtol=0, atol=dpost.sum())
    np.testing.assert_allclose(st_.f, f, rtol=0, atol=(dpost * spread).sum()
                               + 1e-5 * max(1.0, np.abs(f).max()))


def test_prepared_ubm_gives_the_same_statistics_as_the_parameters():
    rng = np.random.default_rng(0)
    weights, means = rng.dirichlet(np.ones(16)), rng.normal(0, 1, (16, 6))
    variances = rng.uniform(0.5, 2.0, (16, 6))
    X = rng.normal(0, 1, (200, 6)).astype(np.float32)
    a = compute_stats((weights, means, variances), X)
    b = compute_stats(PreparedUbm(weights, means, variances), X)
    assert a.n.tobytes() == b.n.tobytes() and a.f.tobytes() == b.f.tobytes()


def test_pruned_statistics_match_float64_pruning_on_speech(small_model):
    feats = extract_features(voice(4, 5.0), small_model.feature_options_)
    st_ = compute_stats(small_model.ubm_.params, feats)
    n, f = reference_stats(*small_model.ubm_.params, feats)
    np.testing.assert_allclose(st_.n, n, rtol=0, atol=1e-4 * len(feats))
    np.testing.assert_allclose(st_.f, f, rtol=0, atol=1e-4 * np.abs(f).max())


# -------------------------------------------------------------------- i-vector ---

@settings(max_examples=25, deadline=None)
@given(C=st.integers(1, 8), D=st.integers(1, 5), S=st.integers(1, 12),
       seed=st.integers(0, 2**16))
def test_ivector_matches_the_dense_float64_posterior_mean(C, D, S, seed):
    rng = np.random.default_rng(seed)
    T = rng.normal(0, 0.5, (C * D, S))
    offset = rng.normal(0, 0.5, C * D)
    tv = TotalVariability(rank=S).set_fitted(T, C, offset)
    n = rng.uniform(0, 50, C)
    f = rng.normal(0, 3, (C, D))
    L = np.eye(S) + sum(n[c] * T[c * D:(c + 1) * D].T @ T[c * D:(c + 1) * D] for c in range(C))
    centred = f.reshape(-1) - np.repeat(n, D) * offset
    expected = np.linalg.solve(L, T.T @ centred)
    got = tv.transform_one(n, f)
    # float32 T_c'T_c and T: relative error of L and b a few ulps of their terms
    inv_norm = np.linalg.norm(np.linalg.inv(L), 2)
    abs_L = sum(n[c] * np.abs(T[c * D:(c + 1) * D]).T @ np.abs(T[c * D:(c + 1) * D])
                for c in range(C))
    err_L = 4 * (C + D) * EPS32 * np.linalg.norm(abs_L, 2)
    err_b = 4 * (C * D) * EPS32 * np.linalg.norm(np.abs(T).T @ np.abs(centred))
    bound = inv_norm * (err_b + err_L * np.linalg.norm(expected)) + 1e-12
    assert np.linalg.norm(got - expected) <= bound


def test_ivector_of_the_model_matches_the_dense_float64_posterior_mean(small_model):
    feats = extract_features(voice(5, 5.0), small_model.feature_options_)
    stats = compute_stats(small_model.ubm_.params, feats)
    tv = small_model.tv_
    C, D, S = tv.n_components_, tv.n_features_, tv.T_.shape[1]
    Tc = tv.T_.reshape(C, D, S)
    L = np.eye(S) + np.einsum("c,cds,cdt->st", stats.n, Tc, Tc)
    expected = np.linalg.solve(L, tv.T_.T @ (stats.f.reshape(-1)
                                             - np.repeat(stats.n, D) * tv.offset_))
    np.testing.assert_allclose(tv.transform_one(stats.n, stats.f), expected, rtol=0,
                               atol=1e-4 * np.abs(expected).max())


# ------------------------------------------------------------------ WAV decode ---

def riff(chunks):
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
                              for cid, data in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


@settings(max_examples=60, deadline=None)
@given(samples=st.lists(st.integers(-32768, 32767), min_size=1, max_size=400),
       before=st.lists(st.binary(max_size=9), max_size=3),
       after=st.lists(st.binary(max_size=9), max_size=2),
       cut=st.integers(0, 3))
def test_wav_samples_equal_libsndfile_reading(samples, before, after, cut):
    pcm = np.array(samples, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, SR, 2 * SR, 2, 16)
    chunks = ([(b"fmt ", fmt)] + [(b"LIST", b) for b in before] + [(b"data", pcm)]
              + [(b"junk", b) for b in after])
    data = riff(chunks)
    if cut and not after:  # a file cut short inside its samples
        data = data[:len(data) - 2 * cut]
    try:
        expected, _ = sf.read(io.BytesIO(data), dtype="int16", always_2d=False)
    except (sf.LibsndfileError, RuntimeError):
        return
    got = decode_wav(data)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float32) / 32768.0)
