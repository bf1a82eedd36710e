"""Seeded source-filter speech synthesiser for tests and benchmarks.

Nothing in vpcore needs a speech corpus to be exercised end to end: this
module makes speech-like audio whose *voices* a classical MFCC + GMM /
i-vector system can tell apart.

A voice (:class:`SyntheticSpeaker`) is the stable part: mean pitch, vocal
tract length (one factor that scales every formant), the speaker's own
deviation of each formant, formant bandwidths, glottal pulse shape and
spectral tilt, breathiness, jitter and shimmer, intonation range and speaking
rate. An utterance (:func:`synthesize`) is the variable part, decided by
``random_state``: which vowels are said in which order, how long each
syllable, fricative and pause lasts, and the intonation contour.

The signal chain of one utterance is::

    pitch contour ─▶ Rosenberg glottal flow derivative ─▶ tilt FIR ─┐
                     aspiration noise (gated by the glottal cycle) ─┴▶ source
    source, per voiced syllable, in 5 ms blocks
        ─▶ cascade of 2nd-order resonators F1..F6 (time-varying) ─▶ syllable
    white noise ─▶ band-pass ─▶ fricative
    low-passed noise 40-50 dB below the vowels ─▶ floor (what pauses contain)

The source is computed for the whole utterance at once (vectorised over the
glottal phase). Each voiced syllable is then filtered block by block: the
resonator cascade, multiplied out into one all-pole filter per block, runs in
``scipy.signal.lfilter`` with a state derived from the previous outputs, so
formants glide without clicks and 20 s of 16 kHz audio take about 0.15 s.

References
----------
Klatt, D. H. (1980). Software for a cascade/parallel formant synthesizer.
    JASA 67(3), 971-995.
Rosenberg, A. E. (1971). Effect of glottal pulse shape on the quality of
    natural vowels. JASA 49(2B), 583-590.
Peterson, G. E. & Barney, H. L. (1952). Control methods used in a study of
    the vowels. JASA 24(2), 175-184.
"""

import dataclasses
import numbers

import numpy as np
from scipy import signal

from ._validation import check_array, check_float, check_int, check_random_state
from .audio import encode_wav
from .errors import ParameterError

__all__ = [
    "SyntheticSpeaker",
    "synthesize",
    "synthesize_corpus",
    "to_wav_bytes",
    "to_pcm_bytes",
    "SAMPLE_RATES",
    "VOWELS",
]

#: Sample rates the synthesiser produces.
SAMPLE_RATES = (8000, 16000, 22050, 44100, 48000)

#: Longest utterance, in seconds.
MAX_DURATION = 600.0

#: Formant targets F1..F4 (Hz) of an adult male voice (formant_scale 1.0),
#: after Peterson & Barney (1952).
VOWELS = {
    "i": (270.0, 2290.0, 3010.0, 3500.0),
    "I": (390.0, 1990.0, 2550.0, 3400.0),
    "E": (530.0, 1840.0, 2480.0, 3400.0),
    "ae": (660.0, 1720.0, 2410.0, 3350.0),
    "A": (730.0, 1090.0, 2440.0, 3300.0),
    "O": (570.0, 840.0, 2410.0, 3250.0),
    "u": (300.0, 870.0, 2240.0, 3300.0),
    "V": (640.0, 1190.0, 2390.0, 3350.0),
}
_VOWEL_TABLE = np.array(
    [formants + (4500.0, 5500.0) for formants in VOWELS.values()]
)  # (n_vowels, 6): F5 and F6 do not depend on the vowel; F6 stands in for all
# the higher resonances, without which the spectrum would fall too fast.
_SCHWA = np.array([500.0, 1500.0, 2500.0, 3500.0, 4500.0, 5500.0])
_BASE_BANDWIDTHS = np.array([70.0, 95.0, 140.0, 220.0, 300.0, 450.0])  # Hz, F1..F6
# Relative formant positions at a consonant release (labial, alveolar, velar).
_LOCI = np.array(
    [
        [0.75, 0.75, 0.92, 1.0, 1.0, 1.0],
        [0.75, 1.12, 1.05, 1.0, 1.0, 1.0],
        [0.80, 1.15, 0.90, 1.0, 1.0, 1.0],
    ]
)
# Fricative noise bands (Hz at formant_scale 1.0) and level re. vowels (dB).
_FRICATIVES = (
    ((3800.0, 7500.0), -11.0),  # /s/
    ((2200.0, 5000.0), -11.0),  # /sh/
    ((1200.0, 7000.0), -16.0),  # /f/
)

_BLOCK_SECONDS = 0.005  # resonator coefficients are updated every block
_TAIL_SECONDS = 0.025  # ringing kept after a syllable's excitation stops
_TILT_TAPS = 63
_TILT_REF_HZ = 500.0
_ROSENBERG_TILT = -12.0  # dB/octave of the Rosenberg glottal flow itself


def _seed_int(name, value):
    """Return an integer seed (``None`` means 0)."""
    if value is None:
        return 0
    return check_int(name, value, low=0)


@dataclasses.dataclass(frozen=True)
class SyntheticSpeaker:
    """The stable characteristics of one synthetic voice.

    Parameters
    ----------
    speaker_id : int
        Identifier (>= 0); :meth:`from_seed` draws the voice from it.
    f0 : float
        Mean (median) pitch in Hz, 80..300.
    formant_scale : float
        Vocal-tract-length factor, 0.75..1.3: every formant frequency is
        multiplied by it (1.0 is an adult male, ~1.17 an adult female).
    spectral_tilt : float
        Slope of the glottal flow spectrum in dB/octave above 500 Hz,
        -24..-6 (-12 is typical; more negative is softer, breathier
        phonation). Lip radiation adds +6 dB/octave on top.
    breathiness : float
        Share of aspiration noise in the glottal source, 0..0.6.
    jitter : float
        Relative standard deviation of the period from cycle to cycle, 0..0.05.
    shimmer : float
        Relative standard deviation of the amplitude from cycle to cycle, 0..0.2.
    bandwidth_scale : float
        Factor on all formant bandwidths, 0.5..2.0.
    open_quotient : float
        Open fraction of the glottal cycle, 0.3..0.85.
    pitch_range : float
        Height of pitch accents in semitones, 0..8.
    speaking_rate : float
        Syllables are this many times shorter than average, 0.6..1.6.
    formant_offsets : tuple of 5 float
        The speaker's own relative deviation of F1..F5, each in -0.15..0.15.
    """

    speaker_id: int
    f0: float = 120.0
    formant_scale: float = 1.0
    spectral_tilt: float = -12.0
    breathiness: float = 0.1
    jitter: float = 0.008
    shimmer: float = 0.04
    bandwidth_scale: float = 1.0
    open_quotient: float = 0.6
    pitch_range: float = 3.0
    speaking_rate: float = 1.0
    formant_offsets: tuple = (0.0, 0.0, 0.0, 0.0, 0.0)

    _RANGES = {
        "f0": (80.0, 300.0),
        "formant_scale": (0.75, 1.3),
        "spectral_tilt": (-24.0, -6.0),
        "breathiness": (0.0, 0.6),
        "jitter": (0.0, 0.05),
        "shimmer": (0.0, 0.2),
        "bandwidth_scale": (0.5, 2.0),
        "open_quotient": (0.3, 0.85),
        "pitch_range": (0.0, 8.0),
        "speaking_rate": (0.6, 1.6),
    }

    def __post_init__(self):
        object.__setattr__(self, "speaker_id", check_int("speaker_id", self.speaker_id, low=0))
        for name, (low, high) in self._RANGES.items():
            value = check_float(name, getattr(self, name), low=low, high=high)
            object.__setattr__(self, name, value)
        offsets = self.formant_offsets
        if isinstance(offsets, (str, bytes)) or not hasattr(offsets, "__len__"):
            raise ParameterError(
                f"formant_offsets={offsets!r} must be a sequence of 5 numbers"
            )
        if len(offsets) != 5:
            raise ParameterError(
                f"formant_offsets={tuple(offsets)!r} must have 5 entries (F1..F5), "
                f"got {len(offsets)}"
            )
        offsets = tuple(
            check_float(f"formant_offsets[{k}]", v, low=-0.15, high=0.15)
            for k, v in enumerate(offsets)
        )
        object.__setattr__(self, "formant_offsets", offsets)

    @classmethod
    def from_seed(cls, speaker_id, random_state=None):
        """Draw a voice deterministically from ``speaker_id`` (and a corpus seed).

        Parameters
        ----------
        speaker_id : int
            Identifier >= 0; different ids give different voices.
        random_state : int or None
            Corpus seed >= 0 (``None`` means 0): the same id in another corpus
            is another voice.

        Returns
        -------
        SyntheticSpeaker
        """
        speaker_id = check_int("speaker_id", speaker_id, low=0)
        corpus = _seed_int("random_state", random_state)
        rng = np.random.default_rng(np.random.SeedSequence([corpus, speaker_id, 0x5917]))
        # Position between a low-pitched long vocal tract and a high-pitched
        # short one; pitch and tract length are correlated, not tied.
        size = rng.uniform(0.0, 1.0)
        f0 = 85.0 * (270.0 / 85.0) ** np.clip(size + rng.normal(0.0, 0.08), 0.0, 1.0)
        formant_scale = np.clip(0.86 + 0.30 * size + rng.normal(0.0, 0.05), 0.8, 1.25)
        breathiness = rng.uniform(0.02, 0.35)
        return cls(
            speaker_id=speaker_id,
            f0=float(f0),
            formant_scale=float(formant_scale),
            spectral_tilt=float(rng.uniform(-15.0, -9.0) - 4.0 * breathiness),
            breathiness=float(breathiness),
            jitter=float(rng.uniform(0.003, 0.02)),
            shimmer=float(rng.uniform(0.02, 0.08)),
            bandwidth_scale=float(np.exp(rng.uniform(np.log(0.7), np.log(1.5)))),
            open_quotient=float(rng.uniform(0.45, 0.75)),
            pitch_range=float(rng.uniform(1.5, 5.0)),
            speaking_rate=float(rng.uniform(0.85, 1.2)),
            formant_offsets=tuple(float(v) for v in np.clip(rng.normal(0, 0.065, 5), -0.14, 0.14)),
        )

    def formant_targets(self):
        """Return the speaker's formant targets F1..F6, shape ``(n_vowels, 6)`` in Hz."""
        return _VOWEL_TABLE * self.formant_scale * self._offset_factors()

    def _offset_factors(self):
        return np.concatenate((1.0 + np.asarray(self.formant_offsets), [1.0]))

    def bandwidths(self):
        """Return the speaker's formant bandwidths F1..F6, shape ``(6,)`` in Hz."""
        return _BASE_BANDWIDTHS * self.bandwidth_scale


# --------------------------------------------------------------------------- helpers


def _check_sample_rate(sample_rate):
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, numbers.Integral):
        raise ParameterError(f"sample_rate={sample_rate!r} must be one of {SAMPLE_RATES}")
    if int(sample_rate) not in SAMPLE_RATES:
        raise ParameterError(f"sample_rate={sample_rate} must be one of {SAMPLE_RATES}")
    return int(sample_rate)


def _check_duration(name, value):
    return check_float(name, value, low=0.0, high=MAX_DURATION, low_inclusive=False)


def _split(total, weights):
    """Split the integer ``total`` into parts proportional to ``weights`` (sum kept)."""
    cum = np.round(np.cumsum(weights) / np.sum(weights) * total).astype(np.int64)
    return np.diff(np.concatenate(([0], cum)))


def _raised_cosine_envelope(n, attack, release):
    env = np.ones(n)
    attack = min(attack, n // 3)
    release = min(release, n // 3)
    if attack > 0:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(attack) + 0.5) / attack)
    if release > 0:
        env[n - release :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 0.5) / release)
    return env


def _smoothstep(p):
    p = np.clip(p, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * p)


def _tilt_filter(correction_db_per_octave, sample_rate):
    """FIR whose gain falls by ``correction`` dB per octave above 500 Hz."""
    nyquist = sample_rate / 2.0
    freqs = np.linspace(0.0, nyquist, 64)
    octaves = np.log2(np.maximum(freqs, _TILT_REF_HZ) / _TILT_REF_HZ)
    gains = 10.0 ** (correction_db_per_octave * octaves / 20.0)
    return signal.firwin2(_TILT_TAPS, freqs, gains, fs=sample_rate)


class _VowelBag:
    """Vowels in random order, each used once per round of ``len(VOWELS)`` syllables.

    Like a phonetically balanced sentence: every utterance has nearly the same
    vowel mix in another order, so utterances of a voice differ in their
    words, not in their average timbre.
    """

    def __init__(self, rng):
        self._rng = rng
        self._bag = []
        self._last = None

    def draw(self):
        if not self._bag:
            self._bag = [int(v) for v in self._rng.permutation(len(VOWELS))]
            if self._bag[-1] == self._last:  # no vowel twice in a row
                self._bag[0], self._bag[-1] = self._bag[-1], self._bag[0]
        self._last = self._bag.pop()
        return self._last


def _plan(rng, n, sample_rate, speaking_rate):
    """Lay out the utterance: a list of ``(kind, start, stop, info)`` segments.

    ``kind`` is ``"vowel"`` (info = vowel index) or ``"fricative"`` (info =
    fricative type); whatever no segment covers is pause.
    """
    pause_fraction = rng.uniform(0.16, 0.24)
    n_pause = int(round(pause_fraction * n))
    n_speech = n - n_pause
    phrase_seconds = rng.uniform(1.2, 2.4)
    n_phrases = max(1, int(round(n_speech / sample_rate / phrase_seconds)))
    pauses = _split(n_pause, rng.dirichlet(np.full(n_phrases + 1, 6.0)))
    phrases = _split(n_speech, rng.dirichlet(np.full(n_phrases, 8.0)))

    segments = []
    phrase_spans = []
    position = int(pauses[0])
    vowels = _VowelBag(rng)
    for phrase_length, pause_after in zip(phrases, pauses[1:]):
        target = phrase_length / sample_rate
        items = []  # (kind, seconds, info)
        total = 0.0
        while total < target:
            if rng.random() < 0.4:
                items.append(("fricative", rng.uniform(0.05, 0.11), int(rng.integers(3))))
            items.append(("vowel", rng.uniform(0.09, 0.24), vowels.draw()))
            if rng.random() < 0.12:
                items.append(("fricative", rng.uniform(0.04, 0.09), int(rng.integers(3))))
            total = sum(seconds for _, seconds, _ in items) / speaking_rate
        lengths = _split(phrase_length, [seconds for _, seconds, _ in items])
        phrase_start = position
        for (kind, _, info), length in zip(items, lengths):
            if length > 0:
                segments.append((kind, position, position + int(length), info))
            position += int(length)
        phrase_spans.append((phrase_start, position))
        position += int(pause_after)
    return segments, phrase_spans


def _pitch_contour(rng, speaker, n, segments, phrase_spans, sample_rate):
    """Semitones relative to the speaker's f0, per sample; median 0 over voiced samples."""
    semitones = np.zeros(n)
    for start, stop in phrase_spans:
        fall = rng.uniform(1.0, 4.0)  # declination over the phrase
        semitones[start:stop] = np.linspace(fall / 2.0, -fall / 2.0, stop - start)
        if rng.random() < 0.2 and stop - start > 1:  # question-like final rise
            rise = min(stop - start, int(0.3 * sample_rate))
            semitones[stop - rise : stop] += speaker.pitch_range * _smoothstep(
                np.linspace(0.0, 1.0, rise)
            )
    for kind, start, stop, _ in segments:
        if kind == "vowel" and rng.random() < 0.45:
            accent = speaker.pitch_range * rng.uniform(0.5, 1.0)
            semitones[start:stop] += accent * np.sin(np.linspace(0.0, np.pi, stop - start))
    # Slow wander of about half a semitone.
    knots = rng.normal(0.0, 0.5, n // max(1, int(0.15 * sample_rate)) + 2)
    semitones += np.interp(np.arange(n), np.linspace(0, n, len(knots)), knots)
    voiced = np.zeros(n, dtype=bool)
    for kind, start, stop, _ in segments:
        if kind == "vowel":
            voiced[start:stop] = True
    if voiced.any():
        semitones -= np.median(semitones[voiced])
    return semitones


def _glottal_source(rng, speaker, semitones, sample_rate):
    """Excitation for the whole utterance (unit RMS), shape ``(n,)``."""
    n = len(semitones)
    f0 = speaker.f0 * 2.0 ** (semitones / 12.0)
    max_periods = int(np.ceil(np.sum(f0) / sample_rate * 1.2)) + 4
    period_jitter = rng.standard_normal(max_periods)
    period_shimmer = rng.standard_normal(max_periods)
    nominal = np.floor(np.cumsum(f0) / sample_rate).astype(np.int64)
    f0 = f0 * np.clip(1.0 + speaker.jitter * period_jitter[nominal], 0.5, 1.5)
    phase = np.cumsum(f0) / sample_rate
    period = np.minimum(np.floor(phase).astype(np.int64), max_periods - 1)
    u = phase - np.floor(phase)

    opening = 0.7 * speaker.open_quotient
    closing = 0.3 * speaker.open_quotient
    flow_derivative = np.zeros(n)
    rising = u < opening
    falling = ~rising & (u < opening + closing)
    flow_derivative[rising] = np.pi / (2 * opening) * np.sin(np.pi * u[rising] / opening)
    flow_derivative[falling] = -np.pi / (2 * closing) * np.sin(
        np.pi * (u[falling] - opening) / (2 * closing)
    )
    flow_derivative *= np.maximum(1.0 + speaker.shimmer * period_shimmer[period], 0.0)
    taps = _tilt_filter(speaker.spectral_tilt - _ROSENBERG_TILT, sample_rate)
    pulses = signal.oaconvolve(flow_derivative, taps)[(_TILT_TAPS - 1) // 2 :][:n]
    pulses /= np.sqrt(np.mean(pulses**2)) + 1e-12

    # Aspiration noise, louder while the glottis is open.
    noise = rng.standard_normal(n) * np.where(u < opening + closing, 1.0, 0.35)
    noise /= np.sqrt(np.mean(noise**2)) + 1e-12
    return (1.0 - speaker.breathiness) * pulses + speaker.breathiness * noise


def _resonator_polynomials(freqs, bandwidths, sample_rate):
    """Cascade of unity-DC-gain 2-pole resonators (Klatt 1980) as one all-pole filter.

    Parameters
    ----------
    freqs : ndarray, shape (n_blocks, K)
        Formant frequencies in Hz.
    bandwidths : ndarray, shape (K,)
        Formant bandwidths in Hz.
    sample_rate : int

    Returns
    -------
    gain : ndarray, shape (n_blocks,)
        Numerator (a constant: the cascade has unity gain at 0 Hz).
    a : ndarray, shape (n_blocks, 2K + 1)
        Denominator polynomials, ``a[:, 0] == 1``.
    """
    radius = np.exp(-np.pi * bandwidths / sample_rate)
    a1 = -2.0 * radius * np.cos(2.0 * np.pi * freqs / sample_rate)
    a2 = np.broadcast_to(radius**2, a1.shape)
    gain = np.prod(1.0 + a1 + a2, axis=1)
    a = np.zeros((freqs.shape[0], 2 * freqs.shape[1] + 1))
    a[:, 0] = 1.0
    for k in range(freqs.shape[1]):  # multiply in one quadratic at a time
        width = 2 * k + 1
        product = a.copy()
        product[:, 1 : width + 1] += a1[:, k, None] * a[:, :width]
        product[:, 2 : width + 2] += a2[:, k, None] * a[:, :width]
        a = product
    return gain, a


def _all_pole_state(a, past):
    """``lfilter`` state (transposed direct form II) for the all-pole filter ``a``.

    ``past`` holds the previous outputs, newest first. Deriving the state from
    the outputs rather than carrying it over makes a coefficient change act
    like a direct-form-I filter (Klatt's resonators): no click at block edges.
    """
    order = len(a) - 1
    return -np.convolve(a[1:], past[::-1])[order - 1 :]


def _vowel_segment(rng, source, onset, target, neutral, bandwidths, sample_rate):
    """Filter one syllable's excitation through time-varying formants.

    Returns the syllable followed by ``_TAIL_SECONDS`` of resonator ringing.
    """
    n = len(source)
    n_tail = int(_TAIL_SECONDS * sample_rate)
    block = max(1, int(_BLOCK_SECONDS * sample_rate))
    envelope = _raised_cosine_envelope(
        n, int(rng.uniform(0.012, 0.025) * sample_rate), int(rng.uniform(0.02, 0.04) * sample_rate)
    )
    excitation = np.concatenate((source * envelope, np.zeros(n_tail)))
    n_blocks = -(-len(excitation) // block)

    # Formant track: glide from the onset to the vowel target over the first
    # 25-40 % of the syllable, hold, then drift 30 % towards the speaker's schwa.
    progress = (np.arange(n_blocks) + 0.5) * block / n
    w_in = _smoothstep(progress / rng.uniform(0.25, 0.4))[:, None]
    w_out = 0.3 * _smoothstep((progress - 0.85) / 0.15)[:, None]
    freqs = onset + (target - onset) * w_in
    freqs = freqs + (neutral - freqs) * w_out  # (n_blocks, K)
    gain, a = _resonator_polynomials(freqs, bandwidths, sample_rate)

    order = a.shape[1] - 1
    out = np.zeros(order + len(excitation))  # ``order`` leading zeros: the past
    for b in range(n_blocks):
        start, stop = b * block, min((b + 1) * block, len(excitation))
        state = _all_pole_state(a[b], out[start : start + order][::-1])
        out[order + start : order + stop] = signal.lfilter(
            gain[b : b + 1], a[b], excitation[start:stop], zi=state
        )[0]
    return out[order:]


def _fricative_segment(rng, n, kind, formant_scale, sample_rate, cache):
    if kind not in cache:
        (low, high), level_db = _FRICATIVES[kind]
        high = min(high * formant_scale, 0.45 * sample_rate)
        low = min(low * formant_scale, 0.6 * high)
        sos = signal.butter(2, (low, high), "bandpass", fs=sample_rate, output="sos")
        cache[kind] = (sos, level_db)
    sos, level_db = cache[kind]
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    noise *= _raised_cosine_envelope(n, int(0.015 * sample_rate), int(0.015 * sample_rate))
    rms = np.sqrt(np.mean(noise**2)) + 1e-12
    return noise / rms * 10.0 ** ((level_db + rng.uniform(-3.0, 3.0)) / 20.0)


# --------------------------------------------------------------------------- public API


def synthesize(speaker, duration=5.0, sample_rate=16000, random_state=0):
    """Synthesise one utterance of ``speaker``.

    Parameters
    ----------
    speaker : SyntheticSpeaker
        The voice.
    duration : float
        Length in seconds, 0 < duration <= 600.
    sample_rate : int
        One of 8000, 16000, 22050, 44100, 48000.
    random_state : int, numpy.random.Generator or None
        Decides the content (vowels, durations, intonation, noise). Same
        arguments give the identical array.

    Returns
    -------
    samples : ndarray of float32, shape (round(duration * sample_rate),)
        Mono audio with peak 0.5: syllables, fricatives and pauses (about
        15-25 % of the time) of low-level noise 40-50 dB below the vowels.
    """
    if not isinstance(speaker, SyntheticSpeaker):
        raise ParameterError(f"speaker={speaker!r} must be a SyntheticSpeaker")
    duration = _check_duration("duration", duration)
    sample_rate = _check_sample_rate(sample_rate)
    rng = check_random_state(random_state)
    n = int(round(duration * sample_rate))
    if n < 1:
        raise ParameterError(
            f"duration={duration} must give at least one sample at sample_rate={sample_rate}"
        )

    segments, phrase_spans = _plan(rng, n, sample_rate, speaker.speaking_rate)
    semitones = _pitch_contour(rng, speaker, n, segments, phrase_spans, sample_rate)
    source = _glottal_source(rng, speaker, semitones, sample_rate)

    targets = speaker.formant_targets()  # (n_vowels, 6)
    bandwidths = speaker.bandwidths()
    active = targets.max(axis=0) < 0.45 * sample_rate  # formants below Nyquist
    targets, bandwidths = targets[:, active], bandwidths[active]
    neutral = (_SCHWA * speaker.formant_scale * speaker._offset_factors())[active]
    loci = _LOCI[:, active]

    n_tail = int(_TAIL_SECONDS * sample_rate)
    out = np.zeros(n + n_tail)
    fricative_cache = {}
    previous = None  # (kind, stop, info) of the segment before
    for kind, start, stop, info in segments:
        length = stop - start
        if kind == "vowel":
            target = targets[info]
            if previous is not None and previous[0] == "vowel" and previous[1] == start:
                onset = targets[previous[2]]  # glide on from the previous vowel
            else:
                onset = target * loci[int(rng.integers(len(loci)))]
            voiced = _vowel_segment(
                rng, source[start:stop], onset, target, neutral, bandwidths, sample_rate
            )
            rms = np.sqrt(np.mean(voiced[:length] ** 2)) + 1e-12
            gain = 10.0 ** (rng.uniform(-3.0, 3.0) / 20.0) / rms
            out[start : stop + n_tail] += gain * voiced
        else:
            out[start:stop] += _fricative_segment(
                rng, length, info, speaker.formant_scale, sample_rate, fricative_cache
            )
        previous = (kind, stop, info)
    out = out[:n]

    # Background noise 40-50 dB below the vowels, falling 6 dB/octave above
    # 200 Hz like room noise (a white floor would bury the weak high formants).
    pole = np.exp(-2.0 * np.pi * 200.0 / sample_rate)
    floor = signal.lfilter([1.0 - pole], [1.0, -pole], rng.standard_normal(n))
    floor /= np.sqrt(np.mean(floor**2)) + 1e-12
    out += floor * 10.0 ** (-rng.uniform(40.0, 50.0) / 20.0)
    peak = np.max(np.abs(out))
    out *= 0.5 / peak
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def synthesize_corpus(n_speakers, n_utterances, duration=(3.0, 6.0), sample_rate=16000,
                      random_state=0):
    """Synthesise ``n_utterances`` utterances for each of ``n_speakers`` voices.

    Parameters
    ----------
    n_speakers, n_utterances : int
        Counts >= 1.
    duration : (float, float) or float
        Range ``(low, high)`` of utterance durations in seconds, drawn
        uniformly; a single number fixes the duration.
    sample_rate : int
        One of 8000, 16000, 22050, 44100, 48000.
    random_state : int or None
        Corpus seed >= 0; decides the voices (speaker ``i`` is
        ``SyntheticSpeaker.from_seed(i, random_state)``) and the utterances.

    Returns
    -------
    list of (str, str, ndarray)
        ``(speaker_label, utterance_id, samples)`` in speaker-major order, e.g.
        ``("spk003", "spk003_utt001", samples)``.
    """
    n_speakers = check_int("n_speakers", n_speakers, low=1, high=100_000)
    n_utterances = check_int("n_utterances", n_utterances, low=1, high=100_000)
    if isinstance(duration, numbers.Real) and not isinstance(duration, (bool, np.bool_)):
        low = high = _check_duration("duration", duration)
    else:
        try:
            low, high = duration
        except (TypeError, ValueError):
            raise ParameterError(
                f"duration={duration!r} must be a number or a (low, high) pair"
            ) from None
        low = _check_duration("duration[0]", low)
        high = _check_duration("duration[1]", high)
        if high < low:
            raise ParameterError(f"duration={duration!r} must have low <= high")
    sample_rate = _check_sample_rate(sample_rate)
    corpus = _seed_int("random_state", random_state)

    rng = np.random.default_rng(np.random.SeedSequence([corpus, 0xC0, 0x4B05]))
    durations = rng.uniform(low, high, size=(n_speakers, n_utterances))
    seeds = rng.integers(0, 2**63 - 1, size=(n_speakers, n_utterances))
    corpus_items = []
    for i in range(n_speakers):
        speaker = SyntheticSpeaker.from_seed(i, random_state=corpus)
        label = f"spk{i:03d}"
        for j in range(n_utterances):
            samples = synthesize(
                speaker, float(durations[i, j]), sample_rate, random_state=int(seeds[i, j])
            )
            corpus_items.append((label, f"{label}_utt{j:03d}", samples))
    return corpus_items


def to_pcm_bytes(samples):
    """Return ``samples`` (clipped to [-1, 1]) as raw little-endian 16-bit PCM.

    Parameters
    ----------
    samples : array_like, shape (n,)

    Returns
    -------
    bytes
        ``2 * n`` bytes.
    """
    samples = check_array("samples", samples, ndim=1)
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    return pcm.tobytes()


def to_wav_bytes(samples, sample_rate=16000):
    """Return ``samples`` as a 16-bit PCM mono RIFF/WAVE file in memory.

    Parameters
    ----------
    samples : array_like, shape (n,)
        Values outside [-1, 1] are clipped.
    sample_rate : int
        One of 8000, 16000, 22050, 44100, 48000.

    Returns
    -------
    bytes
    """
    return encode_wav(check_array("samples", samples, ndim=1), _check_sample_rate(sample_rate))
