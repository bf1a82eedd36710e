"""Is a take a copy of an earlier one? The same recording sent as takes 1, 2 and 3.

An enrolment needs three *recordings* of a voice: three copies of one file
give a voiceprint that has never seen the voice vary, and pass any
consistency check. Two takes are compared by :func:`take_distance`, the
squared distance of their :class:`~vpcore.model.Take` vectors per dimension,
halved. Take vectors live in the PLDA's diagonal space, where the
within-speaker covariance is the identity, so two *different* utterances of
one speaker are about 1 apart whatever the model's size, while the same
recording gives the same vector whatever its level (VAD and CMN), and almost
the same after a shift, a trim, re-encoding or faint added noise. The
threshold :data:`COPY_DISTANCE` was chosen by measurement
(``benchmarks/repeated_takes.py``: near-copies against pairs of different
utterances of one speaker in the corpora).
"""

import numpy as np

from .errors import ParameterError, RepeatedTakeError

__all__ = ["COPY_DISTANCE", "take_distance", "check_not_repeated"]

#: :func:`take_distance` at or below which two takes are one recording.
COPY_DISTANCE = 0.05


def take_distance(a, b):
    """``||a - b||^2 / (2 R)`` of two :class:`~vpcore.model.Take` vectors (R dimensions):
    0 for the same recording, about 1 for two utterances of one speaker."""
    x = np.asarray(a.vector, dtype=np.float64)
    y = np.asarray(b.vector, dtype=np.float64)
    if x.shape != y.shape:
        raise ParameterError(f"take vectors of shapes {x.shape} and {y.shape} cannot be "
                             "compared (takes of different models)")
    return float(np.sum((x - y) ** 2) / (2 * len(x)))


def check_not_repeated(previous_takes, take, threshold=COPY_DISTANCE):
    """Raise :class:`~vpcore.errors.RepeatedTakeError` if ``take`` is a copy of one of
    ``previous_takes`` (distance <= ``threshold``), naming which (1-based)."""
    for number, earlier in enumerate(previous_takes, 1):
        distance = take_distance(earlier, take)
        if distance <= threshold:
            raise RepeatedTakeError(
                f"take distance={distance:.4f} to take {number} must be above {threshold}: "
                f"this take is a copy of take {number} of the same enrolment (the same "
                "recording again); record each take separately")
