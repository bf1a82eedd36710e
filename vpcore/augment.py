"""Seeded data augmentation: the acoustic conditions a voice meets outside the studio.

No noise or impulse-response corpus ships with vpcore, so every condition is
generated. Each one is a pure function of the waveform and a random
generator, and :class:`Augmenter` draws a condition's parameters from
validated ranges, so the same seed always gives the same bytes.

========== =================================================================
condition  what happens to the waveform
========== =================================================================
noise      additive noise at an SNR drawn from ``snr_db``: stationary white,
           pink or brown noise, or non-stationary noise (coloured noise under
           a slowly wandering envelope with random bursts)
babble     additive babble at an SNR drawn from ``babble_snr_db``: the sum of
           ``babble_talkers`` segments of other speakers' speech (the caller
           hands the sources in; a speaker never babbles over himself)
reverb     convolution with a room impulse response simulated by
           pyroomacoustics (image source method): shoebox rooms of several
           sizes, RT60 drawn from ``rt60``, source-microphone distance drawn
           from ``distance``
telephone  narrowband call: 300-3400 Hz band-pass, 8 kHz round trip and one
           narrowband codec (G.711 mu-law or A-law, AMR-NB, Opus at 8 kHz)
voip       wideband VoIP or lossy streaming: G.722, Opus or MP3 at 16 kHz at
           a low bit rate
mic        microphone and level: a random equaliser (shelves and peaks of
           +-``eq_db``), a gain drawn from ``gain_db`` and, sometimes, hard
           clipping
style      speaking style, the way arousal moves it (anger and joy against
           sadness): one draw of arousal sets a pitch shift of the voice
           with its spectral envelope kept (``style_semitones``), a tempo
           (``style_tempo``), a vocal-effort tilt and a level. Not in the
           default draw (``DEFAULT_CONDITIONS``)
========== =================================================================

Codecs go through PyAV (FFmpeg); a codec this installation lacks is refused
when the :class:`Augmenter` is made, not in the middle of training.

Measured where each helps (docs/robustness.md): augmented copies serve as
extra sessions of their speaker for the backend, PLDA, cohort and
calibration.

References
----------
D. Snyder et al., "X-vectors: robust DNN embeddings for speaker
recognition", ICASSP 2018 (augmentation with noise, babble, music, reverb).
T. Ko et al., "A study on data augmentation of reverberant speech for robust
speech recognition", ICASSP 2017 (simulated room impulse responses).
"""

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.signal

from ._validation import check_float, check_int
from .audio import SAMPLE_RATE, check_waveform
from .errors import ParameterError

__all__ = ["CONDITIONS", "DEFAULT_CONDITIONS", "CODECS", "Augmenter", "available_codecs", "coloured_noise",
           "nonstationary_noise", "add_noise", "babble", "room_impulse_response",
           "reverberate", "band_limit", "spectral_tilt", "codec_round_trip", "telephone", "equalise",
           "gain_and_clip", "shift_pitch", "speaking_style"]

#: Names of the conditions :class:`Augmenter` knows.
CONDITIONS = ("noise", "babble", "reverb", "telephone", "voip", "mic", "style")
#: The conditions an :class:`Augmenter` draws from unless told otherwise.
DEFAULT_CONDITIONS = ("noise", "babble", "reverb", "telephone", "voip", "mic")


@dataclass(frozen=True)
class _Codec:
    encoder: str  # FFmpeg encoder name
    container: str
    rate: int
    bit_rates: tuple  # bits per second to draw from; () means the codec's own


#: Codecs by the name the :class:`Augmenter` takes. "narrowband" ones run at
#: 8 kHz (telephone), the others at 16 kHz (voip).
CODECS = {
    "mulaw": _Codec("pcm_mulaw", "wav", 8000, ()),
    "alaw": _Codec("pcm_alaw", "wav", 8000, ()),
    "amr-nb": _Codec("libopencore_amrnb", "amr", 8000, (4750, 7400, 12200)),
    "opus-nb": _Codec("libopus", "ogg", 8000, (8000, 12000)),
    "g722": _Codec("g722", "wav", 16000, ()),
    "opus-wb": _Codec("libopus", "ogg", 16000, (12000, 16000, 24000)),
    "mp3": _Codec("libmp3lame", "mp3", 16000, (16000, 24000, 32000)),
}
_NARROWBAND = ("mulaw", "alaw", "amr-nb", "opus-nb")
_WIDEBAND = ("g722", "opus-wb", "mp3")


@lru_cache(maxsize=1)
def available_codecs():
    """Names of :data:`CODECS` whose encoder this PyAV/FFmpeg build has (empty without PyAV)."""
    try:
        import av
    except ImportError:
        return ()
    have = av.codecs_available
    return tuple(name for name, c in CODECS.items() if c.encoder in have)


# ---------------------------------------------------------------- noise ---

def coloured_noise(n_samples, exponent, rng):
    """Gaussian noise with power spectrum ``1 / f**exponent``, unit variance.

    ``exponent`` 0 is white, 1 pink, 2 brown noise.
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    exponent = check_float("exponent", exponent, low=0.0, high=3.0)
    spec = np.fft.rfft(rng.standard_normal(n_samples))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2.0)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n=n_samples)
    return (x / max(float(np.std(x)), 1e-12)).astype(np.float32)


def nonstationary_noise(n_samples, rng, sample_rate=SAMPLE_RATE):
    """Coloured noise under a wandering envelope, with random loud bursts; unit variance."""
    x = coloured_noise(n_samples, rng.uniform(0.0, 2.0), rng).astype(np.float64)
    # envelope: low-passed log-normal wander (about 2 Hz) ...
    hop = max(1, sample_rate // 20)
    knots = np.exp(rng.normal(0.0, 0.6, n_samples // hop + 2))
    env = np.interp(np.arange(n_samples) / hop, np.arange(len(knots)), knots)
    # ... plus bursts (doors, keyboard, traffic) of 50-300 ms, up to 12 dB louder
    for _ in range(rng.poisson(max(1.0, n_samples / sample_rate / 2))):
        length = int(rng.uniform(0.05, 0.3) * sample_rate)
        start = rng.integers(0, max(1, n_samples - length))
        env[start:start + length] *= 10 ** (rng.uniform(3.0, 12.0) / 20)
    x *= env
    return (x / max(float(np.std(x)), 1e-12)).astype(np.float32)


def _power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


def add_noise(samples, noise, snr_db):
    """``samples`` plus ``noise`` scaled to ``snr_db`` (powers over the whole signal).

    ``noise`` is tiled or cut to the length of ``samples``.
    """
    x = check_waveform(samples, SAMPLE_RATE)
    snr_db = check_float("snr_db", snr_db, low=-20.0, high=60.0)
    noise = np.resize(np.asarray(noise, dtype=np.float32), len(x))
    p_noise = _power(noise)
    if p_noise == 0.0:
        raise ParameterError("noise is all zeros: it cannot be scaled to an SNR")
    scale = np.sqrt(_power(x) / p_noise / 10 ** (snr_db / 10))
    return _safe_level(x + scale * noise)


def babble(sources, n_samples, rng):
    """Sum of segments of several talkers, unit variance.

    Parameters
    ----------
    sources : sequence of ndarray, or of callables returning one
        One waveform per talker (each at least a few tenths of a second). A
        callable (e.g. ``functools.partial(vpcore.audio.load_file, path)``)
        is called only here, so a large pool of talkers costs nothing until
        babble is drawn.
    n_samples : int
    rng : numpy.random.Generator
    """
    n_samples = check_int("n_samples", n_samples, low=1)
    if len(sources) == 0:
        raise ParameterError("babble needs at least one source talker, got none")
    out = np.zeros(n_samples, dtype=np.float64)
    for src in sources:
        src = np.asarray(src() if callable(src) else src, dtype=np.float64)
        p = _power(src)
        if p == 0.0:
            continue
        start = rng.integers(0, len(src))
        seg = np.roll(src, -start)  # a random start, wrapping: every talker talks throughout
        out += np.resize(seg, n_samples) / np.sqrt(p)
    return (out / max(float(np.std(out)), 1e-12)).astype(np.float32)


def _safe_level(x):
    """Scale down (never up) so that the peak stays below full scale; float32."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak > 0.99:
        x = x * (0.99 / peak)
    return np.asarray(x, dtype=np.float32)


# --------------------------------------------------------------- reverb ---

def room_impulse_response(rt60, room, source_distance, rng, sample_rate=SAMPLE_RATE,
                          max_order=40):
    """A room impulse response simulated with pyroomacoustics' image source method.

    Parameters
    ----------
    rt60 : float
        Target reverberation time in seconds (Sabine), in [0.1, 2.0].
    room : sequence of 3 floats
        Shoebox dimensions in metres, each in [1.5, 50].
    source_distance : float
        Metres between talker and microphone; both are placed at random
        inside the room (at least 0.3 m from the walls).
    rng : numpy.random.Generator
    max_order : int
        Reflection order cap; 40 keeps the measured RT60 within about 15 %
        of the target for rooms up to 10 m and costs well under a second.

    Returns
    -------
    rir : ndarray, float32
        Starting at the direct path, peak normalised to 1.
    """
    import pyroomacoustics as pra

    rt60 = check_float("rt60", rt60, low=0.1, high=2.0)
    room = np.asarray(room, dtype=np.float64)
    if room.shape != (3,) or not np.all((room >= 1.5) & (room <= 50)):
        raise ParameterError(f"room={room.tolist()} must be 3 dimensions in [1.5, 50] m")
    source_distance = check_float("source_distance", source_distance, low=0.1,
                                  high=float(np.linalg.norm(room - 0.6)))
    absorption, order = pra.inverse_sabine(rt60, room)
    shoebox = pra.ShoeBox(room, fs=sample_rate, materials=pra.Material(absorption),
                          max_order=int(min(order, max_order)))
    for _ in range(100):  # a source and a microphone at that distance, both inside
        src = rng.uniform(0.3, room - 0.3)
        direction = rng.normal(size=3)
        mic = src + source_distance * direction / np.linalg.norm(direction)
        if np.all((mic > 0.3) & (mic < room - 0.3)):
            break
    else:
        mic = np.clip(mic, 0.3, room - 0.3)
    shoebox.add_source(src)
    shoebox.add_microphone(mic)
    shoebox.compute_rir()
    h = np.asarray(shoebox.rir[0][0], dtype=np.float64)
    h = h[int(np.argmax(np.abs(h))):]  # start at the direct path: no added delay
    return (h / np.max(np.abs(h))).astype(np.float32)


def reverberate(samples, rir):
    """Convolve with ``rir`` (the direct path first), keeping length and speech level."""
    x = check_waveform(samples, SAMPLE_RATE)
    rir = np.asarray(rir, dtype=np.float64)
    if rir.ndim != 1 or len(rir) == 0 or not np.all(np.isfinite(rir)):
        raise ParameterError(f"rir must be a finite 1-D impulse response, got shape {rir.shape}")
    y = scipy.signal.fftconvolve(x.astype(np.float64), rir)[: len(x)]
    p = _power(y)
    if p > 0:
        y *= np.sqrt(_power(x) / p)
    return _safe_level(y)


# -------------------------------------------------------------- channel ---

@lru_cache(maxsize=16)
def _band_sos(low, high, sample_rate):
    return scipy.signal.butter(6, [low, high], btype="bandpass", fs=sample_rate, output="sos")


def band_limit(samples, low=300.0, high=3400.0, sample_rate=SAMPLE_RATE):
    """6th-order Butterworth band-pass (the telephone band by default)."""
    x = check_waveform(samples, sample_rate)
    low = check_float("low", low, low=1.0)
    high = check_float("high", high, low=low, high=sample_rate / 2 - 1)
    return scipy.signal.sosfilt(_band_sos(low, high, sample_rate), x).astype(np.float32)


def codec_round_trip(samples, codec, sample_rate=SAMPLE_RATE, bit_rate=None):
    """Encode and decode through one of :data:`CODECS` (PyAV), at the codec's rate.

    The waveform is resampled to the codec's rate, encoded, decoded and
    resampled back to ``sample_rate``; the output has the input's length.
    """
    import av

    x = check_waveform(samples, sample_rate)
    spec = _check_codec(codec)
    pcm = scipy.signal.resample_poly(x, spec.rate, sample_rate) if spec.rate != sample_rate else x
    pcm = (np.clip(pcm, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format=spec.container) as out:
        stream = out.add_stream(spec.encoder, rate=spec.rate)
        stream.layout = "mono"
        if bit_rate is not None:
            stream.bit_rate = int(bit_rate)
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.rate = spec.rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    decoded = []
    with av.open(buf, "r") as inp:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=spec.rate)
        for frame in inp.decode(audio=0):
            decoded.extend(f.to_ndarray().ravel() for f in resampler.resample(frame))
        decoded.extend(f.to_ndarray().ravel() for f in resampler.resample(None))
    y = np.concatenate(decoded).astype(np.float32) / 32768.0 if decoded else np.zeros(1, np.float32)
    if spec.rate != sample_rate:
        y = scipy.signal.resample_poly(y, sample_rate, spec.rate).astype(np.float32)
    y = np.resize(y, len(x)) if len(y) < len(x) else y[: len(x)]
    return _safe_level(y)


def _check_codec(codec):
    if codec not in CODECS:
        raise ParameterError(f"codec={codec!r} must be one of {sorted(CODECS)}")
    if codec not in available_codecs():
        raise ParameterError(f"codec={codec!r} is not available: this PyAV/FFmpeg build lacks "
                             f"the encoder {CODECS[codec].encoder!r} (available: "
                             f"{list(available_codecs())})")
    return CODECS[codec]


def telephone(samples, codec="mulaw", rng=None, sample_rate=SAMPLE_RATE):
    """A narrowband call: telephone band-pass, then an 8 kHz codec round trip."""
    if CODECS.get(codec) is not None and CODECS[codec].rate != 8000:
        raise ParameterError(f"codec={codec!r} is not a narrowband (8 kHz) codec; use one of "
                             f"{list(_NARROWBAND)}")
    rates = _check_codec(codec).bit_rates
    bit_rate = None if not rates or rng is None else int(rng.choice(rates))
    x = band_limit(samples, 300.0, 3400.0, sample_rate)
    return codec_round_trip(x, codec, sample_rate, bit_rate)


# ------------------------------------------------------------ microphone ---

def _peaking(f0, gain_db, q, sample_rate):
    """RBJ cookbook peaking equaliser as (b, a)."""
    A = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / sample_rate
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * A, -2 * np.cos(w), 1 - alpha * A])
    a = np.array([1 + alpha / A, -2 * np.cos(w), 1 - alpha / A])
    return b / a[0], a / a[0]


def spectral_tilt(samples, amount):
    """First-order tilt: ``amount`` in (0, 1) dulls (one-pole low-pass), in (-1, 0) brightens."""
    x = np.asarray(samples, dtype=np.float64)
    amount = check_float("amount", amount, low=-0.99, high=0.99)
    if amount > 0:
        return scipy.signal.lfilter([1.0 - amount], [1.0, -amount], x)
    return scipy.signal.lfilter([1.0, amount], [1.0], x)


def equalise(samples, rng, eq_db=8.0, sample_rate=SAMPLE_RATE):
    """A random microphone colouring: 3 peaking bands and a tilt of up to +-``eq_db``."""
    x = check_waveform(samples, sample_rate).astype(np.float64)
    eq_db = check_float("eq_db", eq_db, low=0.0, high=24.0)
    for _ in range(3):
        f0 = float(np.exp(rng.uniform(np.log(150.0), np.log(0.9 * sample_rate / 2))))
        b, a = _peaking(f0, rng.uniform(-eq_db, eq_db), rng.uniform(0.5, 2.0), sample_rate)
        x = scipy.signal.lfilter(b, a, x)
    x = spectral_tilt(x, rng.uniform(-0.6, 0.6))  # a bright (< 0) or dull (> 0) capsule
    return _safe_level(x)


def gain_and_clip(samples, gain_db, clip=None):
    """Change the level by ``gain_db``; with ``clip`` (in (0, 1]) clip hard at that level."""
    x = check_waveform(samples, SAMPLE_RATE)
    gain_db = check_float("gain_db", gain_db, low=-60.0, high=40.0)
    y = x.astype(np.float64) * 10 ** (gain_db / 20)
    if clip is not None:
        clip = check_float("clip", clip, low=0.01, high=1.0)
        y = np.clip(y, -clip, clip)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# -------------------------------------------------------- speaking style ---

def _lpc_frames(x, order, frame, hop):
    """Hann-windowed frames of ``x`` (padded) and their LPC polynomials."""
    import librosa

    pad = np.concatenate([np.zeros(frame), x, np.zeros(frame)])
    n = 1 + (len(pad) - frame) // hop
    window = scipy.signal.get_window("hann", frame, fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(pad, frame)[::hop][:n] * window
    quiet = np.sum(frames * frames, axis=1) < 1e-12
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    if (~quiet).any():
        # a little white floor keeps each frame's normal equations well conditioned
        loud = frames[~quiet] + 1e-6 * np.random.default_rng(0).standard_normal(
            (int((~quiet).sum()), frame))
        a[~quiet] = librosa.lpc(loud, order=order, axis=-1)
    return pad, window, a


def _overlap_add(frames, hop, length):
    out = np.zeros(length)
    for i, f in enumerate(frames):
        out[i * hop:i * hop + len(f)] += f
    return out


def shift_pitch(samples, semitones, order=18, sample_rate=SAMPLE_RATE):
    """Shift a voice's pitch by ``semitones`` while keeping its spectral envelope.

    Source-filter split: per 32-ms frame (hop 8 ms) a linear-prediction
    filter of ``order`` is the envelope (the vocal tract) and its inverse
    leaves the excitation; the excitation alone is pitch-shifted
    (:func:`librosa.effects.pitch_shift`, which moves every frequency by the
    factor) and filtered again by each frame's envelope. The formants stay
    where they were, so the voice sounds higher or lower, not smaller or
    larger. The level is kept (lowered only where peaks would clip).
    """
    import librosa

    x = check_waveform(samples, sample_rate).astype(np.float64)
    semitones = check_float("semitones", semitones, low=-12.0, high=12.0)
    order = check_int("order", order, low=2, high=40)
    if semitones == 0.0 or not np.any(x):
        return x.astype(np.float32)
    frame, hop = int(0.032 * sample_rate), int(0.008 * sample_rate)
    pad, window, a = _lpc_frames(x, order, frame, hop)
    # Hann frames at a quarter hop overlap-add to 2 (analysis) and, windowed
    # twice, to 1.5 (synthesis): both constants divide out below
    idx = np.arange(len(a))[:, None] * hop + np.arange(frame)
    residual = _overlap_add([scipy.signal.lfilter(ai, [1.0], pad[j]) * window
                             for ai, j in zip(a, idx)], hop, len(pad)) / 2.0
    shifted = librosa.effects.pitch_shift(residual.astype(np.float32), sr=sample_rate,
                                          n_steps=semitones).astype(np.float64)
    y = _overlap_add([scipy.signal.lfilter([1.0], ai, shifted[j] * window) * window
                      for ai, j in zip(a, idx)], hop, len(pad)) / 1.5
    y = y[frame:frame + len(x)]
    gain = np.sqrt(_power(x) / max(_power(y), 1e-20))
    return _safe_level(y * gain)


def speaking_style(samples, arousal, rng, semitones=(-2.0, 5.0), tempo=(0.85, 1.2),
                   sample_rate=SAMPLE_RATE):
    """The voice moved along arousal: pitch, tempo, vocal effort and level together.

    ``arousal`` in [-1, 1] (sad and soft to angry or elated) sets, with a
    little jitter from ``rng``, a pitch shift within ``semitones`` (the
    envelope kept: :func:`shift_pitch`), a tempo within ``tempo``
    (:func:`librosa.effects.time_stretch`), a spectral tilt (raised effort is
    brighter) and a level change of -8 to +6 dB.
    """
    import librosa

    x = check_waveform(samples, sample_rate)
    arousal = check_float("arousal", arousal, low=-1.0, high=1.0)
    lo, hi = _check_range("semitones", semitones, -12.0, 12.0)
    t_lo, t_hi = _check_range("tempo", tempo, 0.5, 2.0)
    u = float(np.clip((arousal + 1) / 2 + rng.uniform(-0.15, 0.15), 0.0, 1.0))
    steps = lo + u * (hi - lo)
    rate = float(np.exp(np.log(t_lo) + float(np.clip(u + rng.uniform(-0.3, 0.3), 0, 1))
                        * (np.log(t_hi) - np.log(t_lo))))
    y = shift_pitch(x, steps, sample_rate=sample_rate)
    y = librosa.effects.time_stretch(y, rate=rate).astype(np.float64)
    y = spectral_tilt(y, float(np.clip(0.3 - 0.6 * u + rng.uniform(-0.1, 0.1), -0.9, 0.9)))
    y = y * 10 ** ((-8.0 + 14.0 * u) / 20)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    y = y * min(1.0, 0.99 / peak) if peak > 0 else y
    return y.astype(np.float32), {"semitones": float(steps), "tempo": rate}


# ------------------------------------------------------------- augmenter ---

def _check_range(name, value, low, high):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ParameterError(f"{name}={value!r} must be a (low, high) pair")
    a = check_float(f"{name}[0]", value[0], low=low, high=high)
    b = check_float(f"{name}[1]", value[1], low=low, high=high)
    if a > b:
        raise ParameterError(f"{name}={value!r} must have low <= high")
    return a, b


class Augmenter:
    """Draws conditions and their parameters, seeded, and applies them.

    Parameters
    ----------
    conditions : sequence of str
        Names from :data:`CONDITIONS` to draw from (uniformly).
    snr_db : (float, float)
        SNR range of ``noise``, in dB within [-10, 40].
    babble_snr_db : (float, float)
        SNR range of ``babble``.
    babble_talkers : (int, int)
        How many talkers make one babble.
    rt60 : (float, float)
        Reverberation time range of ``reverb``, seconds within [0.1, 2.0].
    distance : (float, float)
        Talker-microphone distance range, metres.
    n_rooms : int
        Impulse responses simulated once (lazily) and reused: a bank of
        ``n_rooms`` rooms of random size (small office to hall) and RT60.
    codecs : sequence of str or None
        Codecs for ``telephone`` (narrowband ones) and ``voip`` (wideband
        ones); None: every one this installation has. A named codec that is
        not installed is refused here.
    eq_db : float
        Strength of the microphone colouring.
    gain_db : (float, float)
        Level change range of ``mic``.
    clip_probability : float
        Chance that a ``mic`` copy is also clipped (at 0.3-0.8 of full scale).
    style_semitones : (float, float)
        Pitch shift range of ``style``, semitones within [-12, 12].
    style_tempo : (float, float)
        Tempo range of ``style`` (1: unchanged; 1.2 speaks 20 % faster and the
        copy is shorter), within [0.5, 2].
    random_state : int
        Seed of the room bank and the base of every draw.

    Examples
    --------
    >>> import numpy as np
    >>> from vpcore.augment import Augmenter
    >>> aug = Augmenter(conditions=("noise", "mic"), random_state=0)
    >>> x = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    >>> y, info = aug.augment(x, seed=7)
    >>> y.shape == x.shape and info["condition"] in ("noise", "mic")
    True
    """

    def __init__(self, conditions=DEFAULT_CONDITIONS, snr_db=(0.0, 20.0), babble_snr_db=(0.0, 15.0),
                 babble_talkers=(3, 7), rt60=(0.2, 1.0), distance=(0.5, 4.0), n_rooms=24,
                 codecs=None, eq_db=8.0, gain_db=(-20.0, 10.0), clip_probability=0.3,
                 style_semitones=(-2.0, 5.0), style_tempo=(0.85, 1.2), random_state=0):
        self.conditions = tuple(conditions)
        self.snr_db = snr_db
        self.babble_snr_db = babble_snr_db
        self.babble_talkers = babble_talkers
        self.rt60 = rt60
        self.distance = distance
        self.n_rooms = n_rooms
        self.codecs = codecs
        self.eq_db = eq_db
        self.gain_db = gain_db
        self.clip_probability = clip_probability
        self.style_semitones = style_semitones
        self.style_tempo = style_tempo
        self.random_state = random_state
        self._validate()
        self._rooms = None

    def _validate(self):
        if not self.conditions:
            raise ParameterError("conditions is empty: name at least one of "
                                 f"{list(CONDITIONS)}")
        for c in self.conditions:
            if c not in CONDITIONS:
                raise ParameterError(f"condition {c!r} is unknown; conditions are "
                                     f"{list(CONDITIONS)}")
        _check_range("snr_db", self.snr_db, -10.0, 40.0)
        _check_range("babble_snr_db", self.babble_snr_db, -10.0, 40.0)
        lo, hi = _check_range("babble_talkers", self.babble_talkers, 1, 20)
        if lo != int(lo) or hi != int(hi):
            raise ParameterError(f"babble_talkers={self.babble_talkers!r} must be integers")
        _check_range("rt60", self.rt60, 0.1, 2.0)
        _check_range("distance", self.distance, 0.1, 10.0)
        check_int("n_rooms", self.n_rooms, low=1, high=1000)
        check_float("eq_db", self.eq_db, low=0.0, high=24.0)
        _check_range("gain_db", self.gain_db, -60.0, 40.0)
        check_float("clip_probability", self.clip_probability, low=0.0, high=1.0)
        _check_range("style_semitones", self.style_semitones, -12.0, 12.0)
        _check_range("style_tempo", self.style_tempo, 0.5, 2.0)
        check_int("random_state", self.random_state, low=0)
        codecs = available_codecs() if self.codecs is None else tuple(self.codecs)
        for c in codecs:
            _check_codec(c)
        self.narrowband_ = [c for c in codecs if c in _NARROWBAND]
        self.wideband_ = [c for c in codecs if c in _WIDEBAND]
        if "telephone" in self.conditions and not self.narrowband_:
            raise ParameterError(f"condition 'telephone' needs a narrowband codec; codecs="
                                 f"{list(codecs)} has none of {list(_NARROWBAND)}")
        if "voip" in self.conditions and not self.wideband_:
            raise ParameterError(f"condition 'voip' needs a wideband codec; codecs="
                                 f"{list(codecs)} has none of {list(_WIDEBAND)}")

    def prepare(self):
        """Simulate the room bank now (it is otherwise made at the first ``reverb``).

        Call it before the augmenter is sent to worker processes, so that the
        rooms are simulated once and not in every worker; returns self.
        """
        if "reverb" in self.conditions:
            self._room_bank()
        return self

    def _room_bank(self):
        if self._rooms is None:
            rng = np.random.default_rng([self.random_state, 0x7007])
            lo, hi = self.rt60
            bank = []
            for _ in range(self.n_rooms):
                size = np.exp(rng.uniform(np.log([3.0, 2.5, 2.4]), np.log([20.0, 15.0, 6.0])))
                rt60 = rng.uniform(lo, hi)
                dist = rng.uniform(*self.distance)
                bank.append((room_impulse_response(rt60, size, min(dist, 0.8 * size.min()),
                                                   rng), float(rt60)))
            self._rooms = bank
        return self._rooms

    def augment(self, samples, seed, condition=None, babble_sources=None):
        """One augmented copy of ``samples`` -> ``(waveform, info)``.

        Parameters
        ----------
        samples : ndarray (n_samples,)
            A 16 kHz waveform.
        seed : int or sequence of int
            Decides the condition (when not given) and all its parameters,
            together with ``random_state``.
        condition : str or None
            One of ``conditions``; None draws one.
        babble_sources : sequence of ndarray (or callables returning one) or None
            Other speakers' waveforms for ``babble`` (required by it); see
            :func:`babble`.

        Returns
        -------
        waveform : ndarray, float32
            As long as ``samples``, except in ``style``, whose tempo changes it.
        info : dict
            The condition and the parameters drawn (e.g. ``snr_db``).
        """
        x = check_waveform(samples, SAMPLE_RATE)
        seed = [seed] if np.isscalar(seed) else list(seed)
        rng = np.random.default_rng([self.random_state, *seed])
        if condition is None:
            condition = self.conditions[int(rng.integers(len(self.conditions)))]
        elif condition not in self.conditions:
            raise ParameterError(f"condition={condition!r} is not one of this augmenter's "
                                 f"conditions {list(self.conditions)}")
        info = {"condition": condition}
        if condition == "noise":
            kind = str(rng.choice(["white", "pink", "brown", "nonstationary"]))
            noise = (nonstationary_noise(len(x), rng) if kind == "nonstationary" else
                     coloured_noise(len(x), {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng))
            info.update(kind=kind, snr_db=float(rng.uniform(*self.snr_db)))
            y = add_noise(x, noise, info["snr_db"])
        elif condition == "babble":
            if not babble_sources:
                raise ParameterError("condition 'babble' needs babble_sources (other "
                                     "speakers' waveforms), got none")
            lo, hi = (int(v) for v in self.babble_talkers)
            k = min(int(rng.integers(lo, hi + 1)), len(babble_sources))
            pick = rng.choice(len(babble_sources), size=k, replace=False)
            info.update(talkers=k, snr_db=float(rng.uniform(*self.babble_snr_db)))
            y = add_noise(x, babble([babble_sources[i] for i in pick], len(x), rng),
                          info["snr_db"])
        elif condition == "reverb":
            rir, rt60 = self._room_bank()[int(rng.integers(self.n_rooms))]
            info.update(rt60=rt60)
            y = reverberate(x, rir)
        elif condition == "telephone":
            codec = str(rng.choice(self.narrowband_))
            info.update(codec=codec)
            y = telephone(x, codec, rng)
        elif condition == "voip":
            codec = str(rng.choice(self.wideband_))
            rates = CODECS[codec].bit_rates
            info.update(codec=codec)
            y = codec_round_trip(x, codec, bit_rate=int(rng.choice(rates)) if rates else None)
        elif condition == "style":
            arousal = float(rng.uniform(-1.0, 1.0))
            y, drawn = speaking_style(x, arousal, rng, self.style_semitones, self.style_tempo)
            info.update(arousal=arousal, **drawn)
        else:  # mic
            y = equalise(x, rng, self.eq_db)
            gain = float(rng.uniform(*self.gain_db))
            clip = float(rng.uniform(0.3, 0.8)) if rng.random() < self.clip_probability else None
            info.update(gain_db=gain, clip=clip)
            y = gain_and_clip(y, gain, clip)
        return y, info
