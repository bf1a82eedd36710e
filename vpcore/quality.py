"""Quality of a take: net speech, an SNR estimate, clipping, and advice.

These measures explain a take to the person recording it; none of them
decides whether a take is accepted (the voice-activity rule of
:mod:`vpcore.vad` and the model do). All are cheap (one pass of frame
energies, the same frames the VAD looks at) and deterministic.

* :func:`net_speech_seconds` counts the frames the front end's VAD keeps,
  exactly as :func:`vpcore.features.extract_features` selects them.
* :func:`snr_estimate` is a frame-energy percentile estimate in the manner of
  NIST's ``stnr`` and ISIP's histogram method: the noise power is a low
  percentile of the frame powers (the pauses), the signal-plus-noise power a
  high percentile (loud speech), and ``SNR = 10 log10((P_hi - P_lo) / P_lo)``.
  Like every blind estimate it is partly a definition: speech without any
  pause reads low, and stationary noise alone reads about -7 dB.
* :func:`clipping_ratio` is the fraction of samples at full scale.

:func:`assess` computes all three at once and :func:`advice` turns a
:class:`TakeQuality` into what to do about it.

References
----------
NIST Speech Quality Assurance package, ``stnr``: SNR as peak speech power
over mean noise power, from a histogram of 20 ms frame powers.
J. Picone et al., ISIP "signal_to_noise" (energy histogram, 95 % / 15 %
percentile thresholds).
"""

from dataclasses import asdict, dataclass, replace

import librosa
import numpy as np

from ._validation import check_float
from .audio import check_waveform
from .errors import ParameterError, TooLittleSpeechError
from .features import FeatureOptions
from .vad import energy_vad, frame_log_energy

__all__ = [
    "NOISE_PERCENTILE",
    "SPEECH_PERCENTILE",
    "FULL_SCALE",
    "REFUSAL_RULES",
    "QualityThresholds",
    "TakeQuality",
    "frame_log_energies",
    "net_speech_seconds",
    "snr_estimate",
    "clipping_ratio",
    "assess",
    "advice",
]

#: Percentile of the frame powers taken as the noise level.
NOISE_PERCENTILE = 15.0
#: Percentile of the frame powers taken as the signal-plus-noise level.
SPEECH_PERCENTILE = 95.0
#: Largest magnitude of a 16-bit sample on the [-1, 1] scale (32767 / 32768).
FULL_SCALE = 32767.0 / 32768.0

#: Refusal rules :func:`advice` explains (``refused=``).
REFUSAL_RULES = ("speech", "consistency", "audio")


@dataclass(frozen=True)
class QualityThresholds:
    """Levels at which :func:`advice` warns about a take.

    Attributes
    ----------
    recommended_speech_seconds : float
        Net speech (after VAD) a take should have; the VAD refuses a take
        below its own, lower, minimum (``VadOptions.min_speech_frames``).
    min_snr_db : float
        Below this SNR estimate a take is "too noisy".
    max_clipping_ratio : float
        Above this fraction of full-scale samples a take is "clipped".
    """

    recommended_speech_seconds: float = 3.0
    min_snr_db: float = 10.0
    max_clipping_ratio: float = 0.001

    def validate(self):
        check_float("recommended_speech_seconds", self.recommended_speech_seconds, low=0.0)
        check_float("min_snr_db", self.min_snr_db)
        check_float("max_clipping_ratio", self.max_clipping_ratio, low=0.0, high=1.0)
        return self


@dataclass(frozen=True)
class TakeQuality:
    """What :func:`assess` measured on one waveform.

    Attributes
    ----------
    duration : float
        Length of the recording in seconds.
    speech_seconds : float
        Net speech after voice-activity detection, in seconds.
    min_speech_seconds : float
        The least net speech the VAD accepts (0 when the front end has no VAD).
    snr_db : float
        :func:`snr_estimate`, in dB.
    clipping_ratio : float
        :func:`clipping_ratio`, in [0, 1].
    """

    duration: float
    speech_seconds: float
    min_speech_seconds: float
    snr_db: float
    clipping_ratio: float

    def to_dict(self):
        return asdict(self)


def frame_log_energies(samples, options=FeatureOptions()):
    """Natural-log frame energies (16-bit scale) of the frames the VAD judges.

    The DC offset is removed and the waveform cut into frames of
    ``options.frame_length`` every ``options.frame_shift`` seconds, as
    :func:`vpcore.features.mfcc` does, so the energies are the VAD's input.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        Waveform in [-1, 1] at ``options.sample_rate``.
    options : FeatureOptions

    Returns
    -------
    log_energy : ndarray of shape (n_frames,), float64

    Raises
    ------
    AudioError
        ``samples`` is not a finite 1-D array.
    TooLittleSpeechError
        ``samples`` is shorter than one frame.
    """
    options = _check_options(options)
    return _frame_log_energies(check_waveform(samples, options.sample_rate), options)


def _frame_log_energies(x, options):
    x = x - x.mean(dtype=np.float64).astype(np.float32)
    win = int(round(options.frame_length * options.sample_rate))
    hop = int(round(options.frame_shift * options.sample_rate))
    if len(x) < win:
        raise TooLittleSpeechError(
            f"samples length={len(x)} is shorter than one frame ({win} samples)")
    return frame_log_energy(librosa.util.frame(x, frame_length=win, hop_length=hop, axis=0))


def _speech_frames(log_energy, options):
    """Frames the front end's VAD keeps; 0 instead of its too-little-speech refusal."""
    if options.vad is None:
        return len(log_energy)
    try:
        return int(energy_vad(log_energy, replace(options.vad, min_speech_frames=1)).sum())
    except TooLittleSpeechError:  # not even one frame
        return 0


def net_speech_seconds(samples, options=FeatureOptions()):
    """Seconds of speech the front end's voice-activity detection keeps.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
    options : FeatureOptions
        The front end of the model the take is for (its VAD and framing).

    Returns
    -------
    seconds : float
        Speech frames times the frame shift; never raises for too little
        speech (0.0 for silence).
    """
    options = _check_options(options)
    return _speech_frames(frame_log_energies(samples, options), options) * options.frame_shift


def _snr_from_log_energy(log_energy, noise_percentile, speech_percentile):
    low, high = np.percentile(log_energy, [noise_percentile, speech_percentile])
    # (P_hi - P_lo) / P_lo = exp(log P_hi - log P_lo) - 1; floored so that
    # constant audio gives a finite number.
    return float(10.0 * np.log10(max(np.expm1(high - low), 1e-10)))


def snr_estimate(samples, options=FeatureOptions(), noise_percentile=NOISE_PERCENTILE,
                 speech_percentile=SPEECH_PERCENTILE):
    """Blind signal-to-noise ratio estimate of a speech recording, in dB.

    The frame powers of :func:`frame_log_energies` are sorted; the
    ``noise_percentile``-th is taken as the noise power ``P_lo`` and the
    ``speech_percentile``-th as the power of loud speech plus noise ``P_hi``::

        SNR = 10 log10((P_hi - P_lo) / P_lo)

    It needs pauses to see the noise: a recording that is speech throughout
    reads lower than its true SNR. Stationary noise alone reads about -7 dB
    (the spread of its own frame powers); constant or silent audio -100 dB.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
    options : FeatureOptions
        Framing (sample rate, frame length and shift).
    noise_percentile, speech_percentile : float
        0 <= noise_percentile < speech_percentile <= 100.

    Returns
    -------
    snr_db : float
        In [-100, about 116] dB (16-bit audio with digital silence in its pauses).

    References
    ----------
    NIST ``stnr``; ISIP "signal_to_noise" (see the module docstring).
    """
    noise_percentile, speech_percentile = _check_percentiles(noise_percentile, speech_percentile)
    return _snr_from_log_energy(frame_log_energies(samples, options), noise_percentile,
                                speech_percentile)


def clipping_ratio(samples, level=FULL_SCALE):
    """Fraction of samples whose magnitude reaches ``level`` (full scale by default).

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        Waveform in [-1, 1].
    level : float
        0 < level <= 1; the default is the largest 16-bit magnitude, 32767 / 32768.

    Returns
    -------
    ratio : float in [0, 1]
    """
    x = check_waveform(samples)
    level = check_float("level", level, low=0.0, high=1.0, low_inclusive=False)
    # 1 - 2**-15 is exact in float32, so full-scale 16-bit samples compare equal.
    return float(np.count_nonzero(np.abs(x) >= np.float32(level)) / x.size)


def assess(samples, options=FeatureOptions()):
    """Measure a take: duration, net speech, SNR estimate and clipping in one pass.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
    options : FeatureOptions
        The front end of the model the take is for.

    Returns
    -------
    TakeQuality
    """
    options = _check_options(options)
    x = check_waveform(samples, options.sample_rate)
    log_energy = _frame_log_energies(x, options)
    min_frames = 0 if options.vad is None else options.vad.min_speech_frames
    return TakeQuality(
        duration=len(x) / float(options.sample_rate),
        speech_seconds=_speech_frames(log_energy, options) * options.frame_shift,
        min_speech_seconds=min_frames * options.frame_shift,
        snr_db=_snr_from_log_energy(log_energy, NOISE_PERCENTILE, SPEECH_PERCENTILE),
        clipping_ratio=float(np.count_nonzero(np.abs(x) >= np.float32(FULL_SCALE)) / x.size),
    )


def advice(quality, thresholds=QualityThresholds(), refused=None):
    """What the speaker should do about a take, as ``(code, message)`` pairs.

    Parameters
    ----------
    quality : TakeQuality
    thresholds : QualityThresholds
    refused : {None, "speech", "consistency", "audio"}
        The rule that refused the take, if one did: ``"speech"`` too little
        speech after VAD, ``"consistency"`` the voice does not match the
        earlier takes, ``"audio"`` any other property of the audio.

    Returns
    -------
    list of (str, str)
        Codes ``"speech"``, ``"noise"``, ``"clipping"``, ``"consistency"``,
        ``"audio"``, each once at most, refusal first; empty for a good take.
    """
    if not isinstance(quality, TakeQuality):
        raise ParameterError(f"quality={quality!r} must be a TakeQuality")
    thresholds = thresholds.validate() if isinstance(thresholds, QualityThresholds) else None
    if thresholds is None:
        raise ParameterError("thresholds must be a QualityThresholds")
    if refused is not None and refused not in REFUSAL_RULES:
        raise ParameterError(f"refused={refused!r} must be None or one of {REFUSAL_RULES}")
    out = []
    if refused == "consistency":
        out.append(("consistency",
                    "the voice does not match the earlier takes: the same person must record "
                    "every take, in the same place, with the same microphone"))
    elif refused == "audio":
        out.append(("audio", "the recording does not sound like speech: record a spoken "
                             "sentence"))
    wanted = max(thresholds.recommended_speech_seconds, quality.min_speech_seconds)
    if quality.speech_seconds == 0.0 and refused == "speech":
        out.append(("speech", "no speech was heard: check that the microphone is on and "
                              "speak for at least {:.1f} seconds".format(wanted)))
    elif quality.speech_seconds < wanted or refused == "speech":
        more = max(wanted - quality.speech_seconds, 0.1)
        out.append(("speech", f"speak for at least {more:.1f} more seconds "
                              f"({quality.speech_seconds:.1f} s of speech heard, "
                              f"{wanted:.1f} s recommended)"))
    if quality.snr_db < thresholds.min_snr_db:
        out.append(("noise", f"too noisy (SNR about {quality.snr_db:.0f} dB): move to a quieter "
                             "place or closer to the microphone"))
    if quality.clipping_ratio > thresholds.max_clipping_ratio:
        out.append(("clipping", "clipped: move away from the microphone or lower its input "
                                "gain"))
    return out


def _check_options(options):
    if not isinstance(options, FeatureOptions):
        raise ParameterError(f"options={options!r} must be a FeatureOptions")
    return options.validate()


def _check_percentiles(noise_percentile, speech_percentile):
    noise = check_float("noise_percentile", noise_percentile, low=0.0, high=100.0)
    speech = check_float("speech_percentile", speech_percentile, low=0.0, high=100.0)
    if not noise < speech:
        raise ParameterError(f"noise_percentile={noise} must be below "
                             f"speech_percentile={speech}")
    return noise, speech
