"""MFCC features with deltas, voice-activity selection and mean normalisation.

Frames are rows: every function returns ``(n_frames, D)``. The extractor is
deterministic (no dither), so the same waveform always gives the same bytes.

References
----------
S. Davis and P. Mermelstein, "Comparison of parametric representations for
monosyllabic word recognition", IEEE TASSP 1980.
"""

from dataclasses import asdict, dataclass, field
from functools import lru_cache

import librosa
import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal
import scipy.special

from ._validation import check_array, check_float, check_int, without_later_defaults
from .audio import SAMPLE_RATE, check_waveform
from .errors import ParameterError, TooLittleSpeechError
from .vad import VadOptions, energy_vad, waveform_log_energy

__all__ = ["FeatureOptions", "mfcc", "deltas", "sliding_cmn", "warp", "subtract_noise",
           "extract_features"]


@dataclass(frozen=True)
class FeatureOptions:
    """Every parameter of the front end; a model stores them in its header.

    Attributes
    ----------
    sample_rate : int
    frame_length, frame_shift : float
        Window and hop in seconds (25 ms / 10 ms).
    n_fft : int
    n_mels : int
    n_mfcc : int
        Cepstral coefficients kept, c0 included.
    fmin, fmax : float
        Mel filterbank edges in Hz.
    preemphasis : float
    deltas : int
        0, 1 (deltas) or 2 (deltas and double deltas).
    delta_width : int
        Frames in the delta regression window (odd, >= 3).
    cmn : {"sliding", "utterance", "warp", "none"}
        Mean normalisation. ``"sliding"`` (default) subtracts the mean of a
        centred window of ``cmn_window`` frames of the whole recording, before
        VAD selection (Kaldi's ``apply-cmvn-sliding --center=true``, as in its
        i-vector recipes); ``"utterance"`` subtracts the mean of the
        utterance's speech frames (the earlier default: a saved model keeps
        the choice it was trained with); ``"warp"`` is feature warping
        (:func:`warp`) over a centred window of ``cmn_window`` speech frames.
    cmn_window : int
        Window of the sliding mean normalisation or of the warping, in frames
        (300 = 3 s).
    cvn : bool
        Also normalise the variance.
    noise_subtraction : float
        Over-subtraction factor of the mel-domain noise suppression
        (:func:`subtract_noise`); 0 (default) turns it off.
    multitaper : int
        Number of Thomson (DPSS) tapers whose periodograms are averaged into
        each frame's power spectrum, a lower-variance estimate than one
        Hamming window (Kinnunen et al. 2012); 0 (default) keeps the Hamming
        window.
    vad : VadOptions or None
        None keeps every frame.

    Fields added after the first model format (``noise_subtraction``, ``multitaper``) are
    written by :meth:`to_dict` only when they differ from their default, so
    the headers of models trained without them stay as they were.
    """

    sample_rate: int = SAMPLE_RATE
    frame_length: float = 0.025
    frame_shift: float = 0.010
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 20
    fmin: float = 20.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    deltas: int = 2
    delta_width: int = 5
    cmn: str = "sliding"
    cmn_window: int = 300
    cvn: bool = False
    noise_subtraction: float = 0.0
    multitaper: int = 0
    vad: VadOptions = field(default_factory=VadOptions)

    @property
    def dim(self):
        """Feature dimension D."""
        return self.n_mfcc * (1 + self.deltas)

    def validate(self):
        check_int("sample_rate", self.sample_rate, low=8000, high=48000)
        check_float("frame_length", self.frame_length, low=0.005, high=0.1)
        check_float("frame_shift", self.frame_shift, low=0.001, high=self.frame_length)
        win = int(round(self.frame_length * self.sample_rate))
        check_int("n_fft", self.n_fft, low=win)
        check_int("n_mels", self.n_mels, low=4, high=256)
        check_int("n_mfcc", self.n_mfcc, low=2, high=self.n_mels)
        check_float("fmin", self.fmin, low=0.0)
        check_float("fmax", self.fmax, low=self.fmin, high=self.sample_rate / 2)
        check_float("preemphasis", self.preemphasis, low=0.0, high=1.0)
        check_int("deltas", self.deltas, low=0, high=2)
        check_int("delta_width", self.delta_width, low=3, high=15)
        if self.delta_width % 2 == 0:
            raise ParameterError(f"delta_width={self.delta_width} must be odd")
        if self.cmn not in _CMN:
            raise ParameterError(f"cmn={self.cmn!r} must be one of {', '.join(map(repr, _CMN))}")
        check_int("cmn_window", self.cmn_window, low=1)
        check_float("noise_subtraction", self.noise_subtraction, low=0.0, high=_MAX_OVERSUBTRACTION)
        check_int("multitaper", self.multitaper, low=0, high=_MAX_TAPERS)
        if self.vad is not None:
            self.vad.validate()
        return self

    def to_dict(self):
        d = without_later_defaults(asdict(self), _LATER_FIELDS)
        d["vad"] = None if self.vad is None else self.vad.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        vad = d.pop("vad", VadOptions().to_dict())  # an absent key means the default VAD
        try:
            return cls(vad=None if vad is None else VadOptions(**vad), **d).validate()
        except TypeError as exc:
            raise ParameterError(f"feature options {d!r} are not valid: {exc}") from None


_CMN = ("sliding", "utterance", "warp", "none")
_MAX_OVERSUBTRACTION = 8.0
#: fields saved only when not at their default (see FeatureOptions)
_LATER_FIELDS = {"noise_subtraction": 0.0, "multitaper": 0}
_MAX_TAPERS = 16
_WARP_BLOCK = 32  # rows ranked together in warp()


@lru_cache(maxsize=8)
def _mel_basis(sample_rate, n_fft, n_mels, fmin, fmax):
    basis = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np.float32
    )
    return np.ascontiguousarray(basis.T)  # (n_fft // 2 + 1, n_mels)


@lru_cache(maxsize=8)
def _window(length):
    return np.hamming(length).astype(np.float32)


@lru_cache(maxsize=8)
def _tapers(length, k):
    """``k`` Thomson tapers (DPSS, half-bandwidth ``k / 2``) of ``length``, (k, length),
    scaled to the energy of the Hamming window, so the power keeps its level."""
    tapers = scipy.signal.windows.dpss(length, k / 2.0, Kmax=k).reshape(k, -1)
    scale = np.sqrt(np.sum(np.hamming(length) ** 2))
    return (tapers * scale).astype(np.float32)


def _frame_sizes(options):
    win = int(round(options.frame_length * options.sample_rate))
    hop = int(round(options.frame_shift * options.sample_rate))
    return win, hop


def _frames(samples, options):
    win, hop = _frame_sizes(options)
    if len(samples) < win:
        raise TooLittleSpeechError(
            f"samples length={len(samples)} is shorter than one frame ({win} samples)"
        )
    return librosa.util.frame(samples, frame_length=win, hop_length=hop, axis=0)


def _multitaper_power(emphasised, win, tapers):
    """Mean of the periodograms of ``emphasised[:, :win]`` under each taper, (T, n_fft//2+1)."""
    tapered = np.zeros((len(tapers),) + emphasised.shape, dtype=np.float32)
    np.multiply(emphasised[None, :, :win], tapers[:, None, :], out=tapered[:, :, :win])
    spectrum = scipy.fft.rfft(tapered, axis=2, overwrite_x=True)
    power = np.square(spectrum.real).mean(axis=0)
    power += np.square(spectrum.imag).mean(axis=0)
    return power


@lru_cache(maxsize=8)
def _dct_matrix(n_mels, n_mfcc):
    """The first ``n_mfcc`` columns of the orthonormal DCT-II of ``n_mels`` points, float32.

    ``logmel @ _dct_matrix(...)`` equals ``scipy.fft.dct(logmel, type=2, norm="ortho",
    axis=1)[:, :n_mfcc]`` up to float32 rounding, in one small matrix product.
    """
    return np.ascontiguousarray(
        scipy.fft.dct(np.eye(n_mels), type=2, norm="ortho", axis=1)[:, :n_mfcc],
        dtype=np.float32)


def mfcc(samples, options=FeatureOptions()):
    """Static MFCCs and the frame log-energies used by the VAD.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
        Waveform in [-1, 1] at ``options.sample_rate``.
    options : FeatureOptions

    Returns
    -------
    ceps : ndarray of shape (n_frames, n_mfcc), float32
    log_energy : ndarray of shape (n_frames,), float64

    Notes
    -----
    Each frame is pre-emphasised on its own (its first sample scaled by
    ``1 - preemphasis``, as Kaldi does), Hamming-windowed and zero-padded to
    ``n_fft``. The pre-emphasis is computed once over the waveform and framed,
    which gives the very same float32 values as emphasising every frame, with
    a fraction of the work (frames overlap 2.5 times).
    """
    options.validate()
    x = check_waveform(samples, options.sample_rate)
    x = x - x.mean(dtype=np.float64).astype(np.float32)  # remove any DC offset
    frames = _frames(x, options)  # (T, win), a strided view
    T, win = frames.shape
    hop = _frame_sizes(options)[1]
    log_energy = waveform_log_energy(x, win, hop, T)
    a = options.preemphasis
    emphasised = np.zeros((T, options.n_fft), dtype=np.float32)  # zero padding included
    # x[n] - a x[n-1] for n >= 1 of the whole waveform, framed like x from sample 1 on
    diff = x[1:] - a * x[:-1]
    emphasised[:, 1:win] = librosa.util.frame(diff, frame_length=win - 1, hop_length=hop,
                                              axis=0)[:T]
    emphasised[:, 0] = frames[:, 0] * (1.0 - a)
    if options.multitaper:
        power = _multitaper_power(emphasised, win, _tapers(win, options.multitaper))
    else:
        emphasised[:, :win] *= _window(win)
        spectrum = scipy.fft.rfft(emphasised, axis=1, overwrite_x=True)  # complex64
        power = np.square(spectrum.real)
        power += np.square(spectrum.imag)
    basis = _mel_basis(options.sample_rate, options.n_fft, options.n_mels, options.fmin,
                       options.fmax)
    logmel = power @ basis
    if options.noise_subtraction:
        logmel = subtract_noise(logmel, options.noise_subtraction)
    np.maximum(logmel, 1e-10, out=logmel)
    np.log(logmel, out=logmel)
    return logmel @ _dct_matrix(options.n_mels, options.n_mfcc), log_energy


@lru_cache(maxsize=8)
def _delta_kernel(width, order):
    """Savitzky-Golay derivative filter of a polynomial of degree ``order`` over ``width`` frames.

    The same filter as ``librosa.feature.delta`` (``scipy.signal.savgol_coeffs``),
    reversed for correlation.
    """
    return scipy.signal.savgol_coeffs(width, order, deriv=order, use="dot")


def deltas(ceps, width=5, order=1):
    """Delta (``order=1``) or double-delta (``order=2``) features along frames.

    Equal to ``librosa.feature.delta(ceps, width=width, order=order, axis=0)``
    (Savitzky-Golay derivative with ``mode="interp"``): because the fitted
    polynomial has degree ``order``, its ``order``-th derivative is constant over
    a window, so the first and last ``width // 2`` frames take the value of the
    first and last full window. Several times faster than the general routine.

    Parameters
    ----------
    ceps : ndarray of shape (T, n_mfcc), T >= width

    Returns
    -------
    ndarray of shape (T, n_mfcc), float32
    """
    ceps = np.asarray(ceps, dtype=np.float32)
    out = np.empty_like(ceps)
    _deltas_into(ceps, width, order, out)
    return out


def sliding_cmn(feats, window):
    """Subtract from each frame the mean of a centred window of ``window`` frames.

    As Kaldi's ``apply-cmvn-sliding --center=true``: the window is shifted to
    stay inside the recording, so it always holds ``min(window, T)`` frames
    (a recording shorter than the window loses its overall mean).

    Parameters
    ----------
    feats : ndarray of shape (T, D)
    window : int

    Returns
    -------
    ndarray of shape (T, D), float32
    """
    feats = check_array("feats", feats, ndim=2, dtype=np.float32, min_rows=1)
    window = check_int("window", window, low=1)
    return _sliding_cmn_rows(feats, window)


def _centred_windows(n_frames, window):
    """``(w, start)``: each frame's window of ``w = min(window, n_frames)`` frames starts at
    ``start[t]``, centred on ``t`` and shifted to stay inside the recording."""
    w = min(window, n_frames)
    return w, np.clip(np.arange(n_frames) - window // 2, 0, n_frames - w)


def warp(feats, window):
    """Feature warping: map each value to the standard-normal quantile of its rank.

    Each frame's value in each dimension is ranked among the values of a
    centred window of ``window`` frames (shifted to stay inside the
    recording, as :func:`sliding_cmn`), and replaced by
    ``ndtri((below + 1/2) / n)``, ``below`` being the number of the window's
    ``n = min(window, T)`` values under it. The result has the same short-term distribution, N(0, 1), in every
    dimension whatever the channel or the noise did to the original one
    (Pelecanos and Sridharan, "Feature warping for robust speaker
    verification", Odyssey 2001). Ties count half.

    Parameters
    ----------
    feats : ndarray of shape (T, D)
    window : int

    Returns
    -------
    ndarray of shape (T, D), float32
    """
    feats = check_array("feats", feats, ndim=2, dtype=np.float32, min_rows=1)
    window = check_int("window", window, low=1)
    T = len(feats)
    w, start = _centred_windows(T, window)
    ranks = np.empty(feats.shape, dtype=np.float64)
    for a in range(0, T, _WARP_BLOCK):
        b = min(a + _WARP_BLOCK, T)
        u0, k = start[a], start[b - 1] - start[a]  # the block's windows span U = [u0, u0 + w + k)
        union = feats[u0:u0 + w + k]
        # rank among U (ties half) ...
        rank = _ranks_among(feats[a:b], union)
        if k:
            # ... less what U holds outside each row's window: left U[:s], right U[w + s:]
            x = feats[a:b, None, :]
            s = (start[a:b] - u0)[:, None, None]
            j = np.arange(k)[None, :, None]
            for fringe, outside in ((union[:k], j < s), (union[w:], j >= s)):
                less = (fringe[None] < x) + 0.5 * (fringe[None] == x)
                rank -= (less * outside).sum(axis=1)
        ranks[a:b] = rank
    return scipy.special.ndtri(ranks / w).astype(np.float32)


def _order_keys(values):
    """uint64 keys that sort like the float32 ``values`` (the sign-flip of their bits)."""
    bits = (values + np.float32(0.0)).view(np.uint32)  # -0.0 becomes +0.0
    return np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31)).astype(np.uint64)


def _ranks_among(rows, pool):
    """Per column, the number of ``pool`` values below each of ``rows``' plus half the equal ones.

    One sort of the pool per column; the columns' sorted keys, tagged with their
    column number in the high bits, form one sorted array that a single
    ``searchsorted`` answers for every row and column at once.
    """
    n, D = pool.shape
    tag = np.arange(D, dtype=np.uint64)[:, None] << np.uint64(32)
    keys = (_order_keys(np.sort(pool.T, axis=1)) | tag).ravel()
    queries = (_order_keys(np.ascontiguousarray(rows.T)) | tag).ravel()
    below = np.searchsorted(keys, queries, side="left").reshape(D, len(rows))
    upto = np.searchsorted(keys, queries, side="right").reshape(D, len(rows))
    return ((below + upto) / 2.0 - n * np.arange(D)[:, None]).T


def subtract_noise(mel_power, factor, quantile=0.1, floor=0.1):
    """Mel-band power with a stationary noise estimate subtracted.

    The noise power of each band is the mean of its lowest ``quantile`` of
    frames (the pauses between words, when there are any); ``factor`` times
    that is subtracted from every frame, and no value is cut below ``floor``
    times its original power (power spectral subtraction in the mel domain,
    Boll 1979, with over-subtraction and a spectral floor as in Berouti et
    al. 1979).

    Parameters
    ----------
    mel_power : ndarray of shape (T, n_mels)
    factor : float
        Over-subtraction, >= 0.
    quantile, floor : float in (0, 1]

    Returns
    -------
    ndarray of shape (T, n_mels), float32
    """
    mel_power = check_array("mel_power", mel_power, ndim=2, dtype=np.float32, min_rows=1)
    check_float("factor", factor, low=0.0, high=_MAX_OVERSUBTRACTION)
    check_float("quantile", quantile, low=0.0, high=1.0, low_inclusive=False)
    check_float("floor", floor, low=0.0, high=1.0)
    k = max(1, int(np.ceil(quantile * len(mel_power))))
    lowest = np.partition(mel_power, k - 1, axis=0)[:k]
    noise = lowest.mean(axis=0, dtype=np.float64).astype(np.float32)
    return np.maximum(mel_power - factor * noise, floor * mel_power)


def _deltas_into(ceps, width, order, out):
    """:func:`deltas` written into ``out`` (T, n_mfcc), a float32 view."""
    half = width // 2
    scipy.ndimage.correlate1d(ceps, _delta_kernel(width, order), axis=0, mode="nearest",
                              output=out)
    out[:half] = out[half]
    out[-half:] = out[-half - 1]


def _sliding_cmn_rows(feats, window, rows=None):
    """``sliding_cmn(feats, window)[rows]`` (rows: a boolean mask or None for all)."""
    T = len(feats)
    w, start = _centred_windows(T, window)
    csum = np.zeros((T + 1, feats.shape[1]))
    np.cumsum(feats, axis=0, dtype=np.float64, out=csum[1:])
    if rows is not None:
        start, feats = start[rows], feats[rows]
    means = (csum[start + w] - csum[start]) / w
    return (feats - means).astype(np.float32)


def extract_features(samples, options=FeatureOptions()):
    """The full front end: MFCC, deltas, VAD frame selection, mean normalisation.

    Parameters
    ----------
    samples : ndarray of shape (n_samples,)
    options : FeatureOptions

    Returns
    -------
    features : ndarray of shape (n_speech_frames, D), float32

    Raises
    ------
    TooLittleSpeechError
        The VAD kept too few frames (silence, a click, a very short file).
    """
    ceps, log_energy = mfcc(samples, options)
    T, n_ceps = ceps.shape
    if options.deltas and T < options.delta_width:
        raise TooLittleSpeechError(
            f"n_frames={T} is fewer than delta_width={options.delta_width}"
        )
    speech = None if options.vad is None else energy_vad(log_energy, options.vad)
    feats = np.empty((T, n_ceps * (1 + options.deltas)), dtype=np.float32)
    feats[:, :n_ceps] = ceps
    for order in range(1, options.deltas + 1):
        _deltas_into(ceps, options.delta_width, order, feats[:, order * n_ceps:(order + 1) * n_ceps])
    if options.cmn == "sliding":
        # the means of the windows of the speech frames only: the others are dropped
        feats = _sliding_cmn_rows(feats, options.cmn_window, speech)
    elif speech is not None:
        feats = feats[speech]
    if options.cmn == "warp":
        feats = warp(feats, options.cmn_window)
    if options.cmn == "utterance":
        feats = feats - feats.mean(axis=0)
    if options.cvn:
        feats = feats / np.maximum(feats.std(axis=0), 1e-5)
    return np.ascontiguousarray(feats, dtype=np.float32)
