"""Energy-based voice-activity detection.

The rule follows Kaldi's ``compute-vad``: a frame's log-energy is compared
with a threshold that rises with the utterance's mean log-energy, and the
decision is smoothed by voting over a context window. Energies are measured
on the 16-bit integer scale, so the absolute offset means the same as in
Kaldi's recipes.

References
----------
Kaldi ``ivectorbin/compute-vad.cc`` and ``ivector/voice-activity-detection.h``.
"""

from dataclasses import asdict, dataclass
from math import gcd

import numpy as np
from scipy.ndimage import uniform_filter1d

from ._validation import check_float, check_int, without_later_defaults
from .errors import ParameterError, TooLittleSpeechError

__all__ = ["VadOptions", "frame_log_energy", "waveform_log_energy", "energy_vad"]


@dataclass(frozen=True)
class VadOptions:
    """Options of :func:`energy_vad`.

    Attributes
    ----------
    energy_threshold : float
        Constant part of the threshold on natural-log frame energy (16-bit scale).
    energy_mean_scale : float
        Weight of the utterance's mean log-energy in the threshold.
    context : int
        Frames on each side that vote with a frame.
    proportion : float
        Fraction of the votes that must be above threshold.
    min_speech_frames : int
        Fewer speech frames than this is "too little speech".
    noise_floor_margin : float or None
        When set, a frame must also exceed the recording's noise floor (the
        ``noise_floor_quantile`` of its frame log-energies) by this many nats
        (1.0 = 4.3 dB). In a quiet recording the floor lies far below the
        energy threshold and changes nothing; in steady noise, which lifts
        every frame over that threshold, it keeps the frames where speech
        stands out of the noise. None (default) is Kaldi's rule alone.
    noise_floor_quantile : float
        The quantile, in (0, 1), taken as the noise floor.

    Fields added after the first model format (the two above) are written by
    :meth:`to_dict` only when they differ from their default, so the headers
    of models trained without them stay as they were.
    """

    energy_threshold: float = 5.5
    energy_mean_scale: float = 0.5
    context: int = 5
    proportion: float = 0.6
    min_speech_frames: int = 100
    noise_floor_margin: float = None
    noise_floor_quantile: float = 0.1

    def validate(self):
        check_float("energy_threshold", self.energy_threshold)
        check_float("energy_mean_scale", self.energy_mean_scale, low=0.0, high=1.0)
        check_int("context", self.context, low=0, high=100)
        check_float("proportion", self.proportion, low=0.0, high=1.0)
        check_int("min_speech_frames", self.min_speech_frames, low=1)
        if self.noise_floor_margin is not None:
            check_float("noise_floor_margin", self.noise_floor_margin, low=0.0, high=10.0)
        check_float("noise_floor_quantile", self.noise_floor_quantile, low=0.0, high=1.0,
                    low_inclusive=False)
        if self.noise_floor_quantile >= 1.0:
            raise ParameterError(f"noise_floor_quantile={self.noise_floor_quantile} must be < 1")
        return self

    def to_dict(self):
        return without_later_defaults(asdict(self), _LATER_FIELDS)


#: fields saved only when not at their default (see VadOptions)
_LATER_FIELDS = {"noise_floor_margin": None, "noise_floor_quantile": 0.1}


def frame_log_energy(frames):
    """Natural-log energy of each frame on the 16-bit scale.

    Parameters
    ----------
    frames : ndarray of shape (n_frames, frame_length)
        Frames of a waveform scaled to [-1, 1].

    Returns
    -------
    log_energy : ndarray of shape (n_frames,)
    """
    energy = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) * 32768.0**2
    return np.log(np.maximum(energy, 1.0))


def waveform_log_energy(samples, frame_length, hop_length, n_frames=None):
    """:func:`frame_log_energy` of the frames of a waveform, without forming the frames.

    Frames of ``frame_length`` samples every ``hop_length`` overlap; both are
    multiples of ``g = gcd(frame_length, hop_length)``, so each frame's energy
    is a sum of ``frame_length / g`` block energies, each block summed once.
    Equal to ``frame_log_energy(librosa.util.frame(samples, ...))`` up to the
    order of the float64 additions.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        Waveform in [-1, 1], at least ``frame_length`` samples.
    frame_length, hop_length : int
    n_frames : int, optional
        Frames to return (default: every whole frame).

    Returns
    -------
    log_energy : ndarray of shape (n_frames,)
    """
    x = np.asarray(samples)
    if n_frames is None:
        n_frames = 1 + (len(x) - frame_length) // hop_length
    g = gcd(frame_length, hop_length)
    n_blocks = ((n_frames - 1) * hop_length + frame_length) // g
    blocks = np.square(x[:n_blocks * g], dtype=np.float64).reshape(n_blocks, g).sum(axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(blocks, frame_length // g)
    energy = windows[::hop_length // g][:n_frames].sum(axis=1) * 32768.0**2
    return np.log(np.maximum(energy, 1.0))


def energy_vad(log_energy, options=VadOptions()):
    """Decide which frames hold speech.

    Parameters
    ----------
    log_energy : ndarray of shape (n_frames,)
        From :func:`frame_log_energy`.
    options : VadOptions

    Returns
    -------
    speech : ndarray of shape (n_frames,), bool

    Raises
    ------
    TooLittleSpeechError
        Fewer than ``options.min_speech_frames`` frames were kept.
    """
    log_energy = np.asarray(log_energy, dtype=np.float64)
    threshold = options.energy_threshold + options.energy_mean_scale * log_energy.mean()
    if options.noise_floor_margin is not None:
        floor = np.quantile(log_energy, options.noise_floor_quantile)
        threshold = max(threshold, floor + options.noise_floor_margin)
    above = (log_energy > threshold).astype(np.float64)
    width = 2 * options.context + 1
    votes = uniform_filter1d(above, size=width, mode="constant", cval=0.0)
    # Near the edges the window is cut short: compare with the frames that exist.
    counts = uniform_filter1d(np.ones_like(above), size=width, mode="constant", cval=0.0)
    speech = votes >= options.proportion * counts - 1e-12
    n_speech = int(speech.sum())
    if n_speech < options.min_speech_frames:
        raise TooLittleSpeechError(
            f"speech frames={n_speech} after voice-activity detection must be at least "
            f"{options.min_speech_frames} ({options.min_speech_frames / 100:.1f} s): "
            "too little speech to model a voice"
        )
    return speech
