"""Is there speech in a take? Cues that tell a voice from noise, tones, hum and music.

The energy VAD (:mod:`vpcore.vad`) keeps loud frames, so it passes any loud
sound: white noise enrolled as a voice is matched by any other noise. This
module decides, for a whole take, whether it holds *speech*, from four cues
measured on one short-time spectrum (40 ms Hann frames every 20 ms):

``modulation``
    Depth of the syllabic rhythm: the RMS of the 2-8 Hz band of the
    normalised amplitude envelope of the 300-3400 Hz band (where speech has
    most of its energy, and what a telephone channel passes; raised-cosine
    edges, so a tone gliding across an edge does not make a rhythm). Speech
    opens and closes the vocal tract 3-6 times a second, so its envelope
    swings; stationary noise, tones, hum, held chords and slow sweeps have a
    flat envelope.
``voiced``
    Fraction of the sounding frames (within 35 dB of the take's loud frames)
    that are voiced and belong to a voiced run of at least 3 frames (60 ms,
    a vowel). A frame is voiced when its normalised autocorrelation (from the
    same spectrum, corrected for the window) peaks at a lag in the pitch range
    of voices (60-600 Hz) at :data:`VOICING_PEAK` or more, and the peak rises
    by :data:`PROMINENCE` above the dip before it (low-passed noise decays
    from lag 0 without such a dip). Noise, even modulated noise, has no vowels.
``pitch_glide``
    Fraction of consecutive voiced frame pairs whose pitch changes by more than
    :data:`STEADY_PITCH` (0.2 %, relative). A voice's pitch glides all the time
    (intonation, jitter); a tone, hum, a chord or an instrument's note holds
    its pitch exactly and changes it in steps.
``rhythm_regularity``
    Largest autocorrelation of the same envelope at lags of 0.12-2 s. Speech's
    rhythm is irregular; a siren, a repeated sweep, a beat, a click train or
    noise switched on and off at a fixed rate repeats itself exactly.

:func:`check_speech` refuses a take whose cue misses its threshold
(:data:`THRESHOLDS`; the first cue that misses names the refusal). The
thresholds were chosen by measurement (``benchmarks/speech_detector.py``, on
every utterance of the two corpora, clean and degraded by babble, white noise,
a telephone channel, reverberation, clipping and raised pitch, against generated
noise, tones, hum, chords, melodies, sweeps, modulated noise and clicks);
``docs/benchmarks.md`` reports the rates. What it cannot tell: singing, and
sounds made to imitate speech (a recording of speech *is* speech).

Cost: per 20 ms of audio one float32 real FFT of 1024 points and, for a sounding
frame, a DCT-I of 513 (the autocorrelation); about 1.9 ms for 5 s on one core.

References
----------
Scheirer, E. & Slaney, M. (1997). Construction and evaluation of a robust
    multifeature speech/music discriminator. ICASSP, 1331-1334.
Houtgast, T. & Steeneken, H. J. M. (1985). A review of the MTF concept in room
    acoustics and its use for estimating speech intelligibility. JASA 77(3).
Boersma, P. (1993). Accurate short-term analysis of the fundamental frequency
    and the harmonics-to-noise ratio of a sampled sound. IFA Proceedings 17.
"""

import dataclasses
from functools import lru_cache

import numpy as np
import scipy.fft

from .audio import SAMPLE_RATE, check_waveform
from .errors import NotSpeechError

__all__ = ["SpeechCues", "SpeechThresholds", "THRESHOLDS", "speech_cues", "check_speech",
           "VOICING_PEAK", "PROMINENCE", "STEADY_PITCH"]

_WIN = 640  # 40 ms at 16 kHz: two periods of a 60 Hz voice
_HOP = 320  # 20 ms: 50 envelope samples per second, modulations up to 25 Hz
_NFFT = 1024
_RATE = 50.0  # frames per second at 16 kHz
_PITCH = (60.0, 600.0)  # voices, children and shouting included
_BAND = (300.0, 3400.0)
_TAPER = 150.0  # Hz, raised-cosine edges of the band
_MOD_BAND = (2.0, 8.0)  # syllabic rate, Hz
_RHYTHM_LAGS = (0.12, 2.0)  # seconds
_SOUNDING_DB = 35.0
_MIN_RUN = 3  # frames: a vowel lasts 60 ms or more

#: normalised autocorrelation peak of a voiced frame
VOICING_PEAK = 0.5
#: rise of that peak above the smallest autocorrelation at shorter lags
PROMINENCE = 0.5
#: relative pitch change between frames 20 ms apart below which the pitch "holds"
STEADY_PITCH = 0.002


@dataclasses.dataclass(frozen=True)
class SpeechCues:
    """The cues of one take (see the module docstring), each in [0, 1] but modulation."""

    modulation: float
    voiced: float
    pitch_glide: float
    rhythm_regularity: float

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SpeechThresholds:
    """A take is speech when ``modulation``, ``voiced`` and ``pitch_glide`` reach their
    minimum and ``rhythm_regularity`` stays at or below its maximum."""

    min_modulation: float = 0.12
    min_voiced: float = 0.03
    min_pitch_glide: float = 0.60
    max_rhythm_regularity: float = 0.90


THRESHOLDS = SpeechThresholds()


@lru_cache(maxsize=4)
def _analysis(sample_rate):
    """Window, band weights, window autocorrelation and pitch lags at ``sample_rate``."""
    window = np.hanning(_WIN + 2)[1:-1].astype(np.float32)
    freqs = np.fft.rfftfreq(_NFFT, 1.0 / sample_rate)
    edge = np.clip(np.minimum(freqs - (_BAND[0] - _TAPER), (_BAND[1] + _TAPER) - freqs)
                   / _TAPER, 0.0, 1.0)
    band = (0.5 - 0.5 * np.cos(np.pi * edge)).astype(np.float32)
    w_ac = np.fft.irfft(np.abs(np.fft.rfft(window, _NFFT)) ** 2, _NFFT)
    lags = np.arange(int(np.floor(sample_rate / _PITCH[1])),
                     int(np.ceil(sample_rate / _PITCH[0])) + 1)
    if not np.array_equal(lags, np.arange(lags[0], lags[-1] + 1)):
        raise AssertionError("pitch lags must be consecutive")  # pragma: no cover
    return window, band, (w_ac[lags] / w_ac[0]).astype(np.float32), lags


def _envelope_cues(env):
    """``(modulation, rhythm_regularity)`` of a band envelope sampled at 50 Hz."""
    mean = env.mean()
    if not mean > 0:
        return 0.0, 0.0
    e = env / mean - 1.0
    n = len(e)
    spec = np.abs(np.fft.rfft(e)) ** 2
    fm = np.fft.rfftfreq(n, 1.0 / _RATE)
    sel = (fm >= _MOD_BAND[0]) & (fm <= _MOD_BAND[1])
    modulation = float(np.sqrt(2.0 * spec[sel].sum()) / n)
    centred = e - e.mean()
    acf = np.fft.irfft(np.abs(np.fft.rfft(centred, 2 * n)) ** 2)[:n]
    lo, hi = int(_RHYTHM_LAGS[0] * _RATE), min(int(_RHYTHM_LAGS[1] * _RATE), n // 2)
    if acf[0] <= 0 or hi <= lo:
        return modulation, 0.0
    unbiased = acf[lo:hi] / acf[0] * n / (n - np.arange(lo, hi))
    return modulation, float(unbiased.max())


def _runs(mask):
    """Lengths of the runs of True in a boolean vector, each repeated over its run."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    lengths = edges[1::2] - edges[::2]
    out = np.zeros(len(mask), dtype=int)
    out[mask] = np.repeat(lengths, lengths)  # the True entries, run after run
    return out


def speech_cues(samples, sample_rate=SAMPLE_RATE):
    """Measure the cues of a waveform.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        Waveform in [-1, 1] at 16 kHz.
    sample_rate : int

    Returns
    -------
    SpeechCues
    """
    x = check_waveform(samples, sample_rate)
    x = x - x.mean(dtype=np.float64).astype(np.float32)
    if len(x) < _WIN + _HOP:
        return SpeechCues(0.0, 0.0, 0.0, 0.0)
    window, band, w_ac, lags = _analysis(sample_rate)
    n = 1 + (len(x) - _WIN) // _HOP
    # float32 FFTs: several times faster than float64, precise enough for every cue
    frames = np.zeros((n, _NFFT), dtype=np.float32)  # zero padding included
    np.multiply(np.lib.stride_tricks.sliding_window_view(x, _WIN)[::_HOP][:n], window,
                out=frames[:, :_WIN])
    spectrum = scipy.fft.rfft(frames, axis=1, overwrite_x=True)
    power = np.square(spectrum.real)  # (T, F)
    power += np.square(spectrum.imag)
    modulation, regularity = _envelope_cues(np.sqrt(power @ band, dtype=np.float64))
    energy = power.sum(axis=1, dtype=np.float64)
    level = 10.0 * np.log10(np.maximum(energy, 1e-20))
    sounding = (level > np.percentile(level, 95) - _SOUNDING_DB) & (energy > 1e-10)
    if sounding.sum() < _MIN_RUN:
        return SpeechCues(modulation, 0.0, 0.0, regularity)
    # Periodicity, of the sounding frames only (no other frame can be voiced): the
    # autocorrelation of a frame is the inverse FFT of its power, which for a real, even
    # spectrum is a DCT-I, _NFFT times larger (a fraction of the cost of a complex inverse)
    sounding_rows = np.flatnonzero(sounding)
    ac = scipy.fft.dct(power[sounding_rows], type=1, axis=1,
                       overwrite_x=True)[:, : lags[-1] + 1]
    ac /= np.maximum(ac[:, :1], _NFFT * 1e-30)
    r = ac[:, lags[0]:lags[-1] + 1] / w_ac  # the pitch lags are consecutive
    best = np.argmax(r, axis=1)
    rows = np.arange(len(r))
    peak = r[rows, best]
    dip = np.minimum.accumulate(ac, axis=1)[rows, lags[best]]  # min over lags <= the peak's
    inside = (best > 0) & (best < len(lags) - 1)
    voiced = np.zeros(n, dtype=bool)
    voiced[sounding_rows] = inside & (peak >= VOICING_PEAK) & (peak - dip >= PROMINENCE)
    vowel = voiced & (_runs(voiced) >= _MIN_RUN)
    # pitch of voiced frames: parabolic interpolation of the peak lag
    i = np.clip(best, 1, len(lags) - 2)
    a, b, c = r[rows, i - 1], r[rows, i], r[rows, i + 1]
    curvature = a - 2.0 * b + c
    safe = np.where(np.abs(curvature) > 1e-12, curvature, 1.0)
    shift = np.where(np.abs(curvature) > 1e-12, 0.5 * (a - c) / safe, 0.0)
    log_lag = np.zeros(n)  # only read at vowels, which are sounding
    log_lag[sounding_rows] = np.log(lags[i] + np.clip(shift, -1.0, 1.0))
    pairs = vowel[:-1] & vowel[1:]
    glide = 0.0
    if pairs.any():
        glide = float(np.mean(np.abs(np.diff(log_lag))[pairs] > STEADY_PITCH))
    return SpeechCues(modulation, float(vowel.sum() / sounding.sum()), glide, regularity)


def check_speech(samples, sample_rate=SAMPLE_RATE, thresholds=THRESHOLDS):
    """Raise :class:`~vpcore.errors.NotSpeechError` unless the waveform holds speech.

    Returns the :class:`SpeechCues` of a take that passes. The message names
    the first cue that misses its threshold, its value and the rule.
    """
    cues = speech_cues(samples, sample_rate)
    t = thresholds
    if cues.modulation < t.min_modulation:
        raise NotSpeechError(
            f"syllabic modulation={cues.modulation:.3f} must be at least {t.min_modulation}: "
            "not speech (the sound is steady: noise, a tone, hum or a held chord)")
    if cues.voiced < t.min_voiced:
        raise NotSpeechError(
            f"voiced fraction={cues.voiced:.3f} must be at least {t.min_voiced}: not speech "
            "(no vowels: no periodic sound in the pitch range of voices)")
    if cues.pitch_glide < t.min_pitch_glide:
        raise NotSpeechError(
            f"pitch glide={cues.pitch_glide:.3f} must be at least {t.min_pitch_glide}: not "
            "speech (the pitch holds or steps like a tone or an instrument, not like a voice)")
    if cues.rhythm_regularity > t.max_rhythm_regularity:
        raise NotSpeechError(
            f"rhythm regularity={cues.rhythm_regularity:.3f} must be at most "
            f"{t.max_rhythm_regularity}: not speech (the sound repeats itself exactly: a "
            "siren, a beat, clicks)")
    return cues
