"""What the model hands out: takes, voiceprints, scores, and the packed voiceprint row.

A :class:`Take` is one utterance in the PLDA's diagonal space; a
:class:`Voiceprint` is an enrolment of one or more takes; a :class:`Score` is
what verifying a probe gives. A voiceprint is stored and searched as one
float32 row whose columns :class:`RowLayout` names::

    [mean (R), n, quad, norm_mean, norm_std]

Code that reads or writes such rows addresses the columns by these names
(``layout.mean``, ``layout.index("quad")``, ``layout.column(V, "norm_std")``),
never by position. Takes and voiceprints also have a small byte format (magic,
dimensions, model fingerprint, little-endian float32 data) for stores.
"""

import struct
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import ModelError, ParameterError

__all__ = ["Take", "Voiceprint", "Score", "RowLayout", "check_takes"]

_TAKE_MAGIC = b"VPT1"
_VP_MAGIC = b"VPV1"


@dataclass(frozen=True)
class RowLayout:
    """Named columns of a packed voiceprint row ``[mean (R), n, quad, norm_mean, norm_std]``.

    Parameters
    ----------
    rank : int
        R, the dimension of the PLDA space (the length of the mean).

    Attributes
    ----------
    FIELDS : tuple of str
        The scalar columns after the mean, in row order: ``n`` (takes behind
        the mean), ``quad`` (the enrolment's quadratic term of the PLDA LLR),
        ``norm_mean`` and ``norm_std`` (enrolment-side AS-norm statistics; 0
        and 1 without AS-norm).
    """

    rank: int
    FIELDS: ClassVar[tuple] = ("n", "quad", "norm_mean", "norm_std")

    @classmethod
    def of_width(cls, width):
        """The layout of rows ``width`` long."""
        if width <= len(cls.FIELDS):
            raise ParameterError(f"a voiceprint row of width {width} has no mean: it must be "
                                 f"longer than {len(cls.FIELDS)}")
        return cls(int(width) - len(cls.FIELDS))

    @property
    def width(self):
        """Row length, ``R + 4``."""
        return self.rank + len(self.FIELDS)

    @property
    def mean(self):
        """Slice of the mean's columns."""
        return slice(0, self.rank)

    def index(self, name):
        """Column index of the scalar field ``name``."""
        try:
            return self.rank + self.FIELDS.index(name)
        except ValueError:
            raise ParameterError(f"name={name!r} is not a voiceprint row field; the fields are "
                                 f"{self.FIELDS}") from None

    def column(self, V, name):
        """Column ``name`` of rows ``V`` (..., width): a view, no copy."""
        return np.asarray(V)[..., self.index(name)]

    def pack(self, mean, n, quad, norm_mean, norm_std, dtype=np.float32):
        """Rows of ``dtype`` from means (..., R) and per-row scalars (broadcast to (...))."""
        mean = np.asarray(mean)
        out = np.empty(mean.shape[:-1] + (self.width,), dtype=dtype)
        out[..., self.mean] = mean
        for name, value in zip(self.FIELDS, (n, quad, norm_mean, norm_std)):
            out[..., self.index(name)] = value
        return out

    def check(self, V, name="V"):
        """Raise unless ``V`` is a 2-D array of rows of this layout."""
        if V.ndim != 2 or V.shape[1] != self.width:
            raise ParameterError(f"{name} has shape {V.shape}, expected (N, {self.width}) rows "
                                 "of Voiceprint.vector")


@dataclass(frozen=True)
class Score:
    """Result of scoring a probe.

    ``llr`` is the PLDA log-likelihood ratio after AS-norm (when enabled): a
    score, not yet calibrated; ``model.calibration_.predict_llr(llr)`` gives the
    calibrated LLR. ``confidence`` is the calibrated posterior in [0, 1].
    """

    llr: float
    confidence: float


@dataclass(frozen=True)
class Take:
    """One utterance as the model sees it.

    Attributes
    ----------
    vector : ndarray of shape (R,), float32
        The utterance in the PLDA's diagonal space.
    n_frames : int
        Speech frames behind it.
    fingerprint : str
        Fingerprint of the model that made it.
    """

    vector: np.ndarray
    n_frames: int
    fingerprint: str

    def to_bytes(self):
        fp = self.fingerprint.encode("ascii")
        head = _TAKE_MAGIC + struct.pack("<IIB", len(self.vector), self.n_frames, len(fp)) + fp
        return head + np.asarray(self.vector, dtype="<f4").tobytes()

    @classmethod
    def from_bytes(cls, data):
        dim, n_frames, fp, rest = _unpack(data, _TAKE_MAGIC, "take")
        if len(rest) != 4 * dim:
            raise ModelError(f"take bytes hold {len(rest)} data bytes, expected {4 * dim}")
        return cls(np.frombuffer(rest, dtype="<f4").astype(np.float32), n_frames, fp)


@dataclass(frozen=True)
class Voiceprint:
    """An enrolment: the mean of its takes in PLDA space and what scoring needs.

    Attributes
    ----------
    mean : ndarray of shape (R,)
    n : int
        Number of takes.
    quad : float
        The enrolment's quadratic term of the PLDA LLR (precomputed).
    norm_mean, norm_std : float
        Enrolment-side AS-norm statistics (0 and 1 when AS-norm is off).
    fingerprint : str
    """

    mean: np.ndarray
    n: int
    quad: float
    norm_mean: float
    norm_std: float
    fingerprint: str

    @property
    def vector(self):
        """Packed float32 row ``[mean (R), n, quad, norm_mean, norm_std]`` (see :class:`RowLayout`)."""
        return RowLayout(len(self.mean)).pack(self.mean, self.n, self.quad, self.norm_mean,
                                              self.norm_std)

    @classmethod
    def from_vector(cls, vector, fingerprint):
        """The voiceprint of one packed row (float32, or float64 straight from enrolment)."""
        v = np.asarray(vector)
        if v.dtype != np.float64:
            v = v.astype(np.float32)
        layout = RowLayout.of_width(len(v))
        field = {name: float(v[layout.index(name)]) for name in layout.FIELDS}
        return cls(v[layout.mean].astype(np.float32), int(round(field["n"])), field["quad"],
                   field["norm_mean"], field["norm_std"], fingerprint)

    def to_bytes(self):
        fp = self.fingerprint.encode("ascii")
        v = self.vector
        return (_VP_MAGIC + struct.pack("<IIB", len(v), self.n, len(fp)) + fp
                + v.astype("<f4").tobytes())

    @classmethod
    def from_bytes(cls, data):
        dim, _, fp, rest = _unpack(data, _VP_MAGIC, "voiceprint")
        if len(rest) != 4 * dim:
            raise ModelError(f"voiceprint bytes hold {len(rest)} data bytes, expected {4 * dim}")
        return cls.from_vector(np.frombuffer(rest, dtype="<f4"), fp)


def check_takes(takes, fingerprint, name="takes"):
    """``takes`` (one Take or a non-empty sequence) as a list, all of the model ``fingerprint``."""
    if isinstance(takes, Take):
        takes = [takes]
    if not takes:
        raise ParameterError(f"{name} is empty: at least one take is needed")
    for t in takes:
        if not isinstance(t, Take):
            raise ParameterError(f"{name} must hold Take objects, got {type(t).__name__}")
        if t.fingerprint != fingerprint:
            raise ModelError(f"take of model {t.fingerprint} cannot be used with model "
                             f"{fingerprint}")
    return list(takes)


def _unpack(data, magic, what):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParameterError(f"{what} data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 13 or data[:4] != magic:
        raise ModelError(f"bytes are not a serialised {what} (bad magic)")
    dim, count, fp_len = struct.unpack("<IIB", data[4:13])
    fp = data[13:13 + fp_len].decode("ascii", errors="replace")
    return dim, count, fp, data[13 + fp_len:]
