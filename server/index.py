"""In-memory 1-v-N index of the fully enrolled voiceprints of one worker process.

The index holds a matrix ``V`` of shape (N, R) (one ``vp.vector`` row per
fully enrolled user, sorted by name) with the names and group ids. Several
worker processes share one store, so before each 1-v-N search the index
compares its generation with the store's change counter and reloads when
another process (or thread) changed anything. Scoring a probe against all
candidates of the chosen groups is one :meth:`vpcore.gallery.Gallery.search`:
one matrix-vector product over the rows, with only the best ``top_n``
calibrated.
"""

import dataclasses
import threading

import numpy as np

__all__ = ["VoiceprintIndex", "Candidate"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    user_name: str
    confidence: float
    group_id: int

    def to_json(self):
        return {"user_name": self.user_name, "confidence": self.confidence,
                "group_id": self.group_id}


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    generation: int
    names: tuple
    group_ids: np.ndarray  # (N,) int
    group_rows: dict  # group id -> sorted row indices
    gallery: object  # what make_gallery made of the (N, R) float32 matrix


class VoiceprintIndex:
    """Matrix of voiceprints kept in step with a :class:`server.store.Store`.

    Parameters
    ----------
    to_vector : callable
        ``bytes -> ndarray (R,)``: turns a stored voiceprint into its row.
    dim : int
        Row length R (``model.voiceprint_dim``).
    make_gallery : callable
        ``matrix (N, R) -> gallery`` with ``gallery.search(take, top_n, rows)``
        returning ``(row indices, llrs, confidences)`` best first, ties by row
        (e.g. ``lambda V: vpcore.gallery.Gallery(model, V)``).
    """

    def __init__(self, to_vector, dim, make_gallery):
        self._to_vector = to_vector
        self._dim = int(dim)
        self._make_gallery = make_gallery
        self._lock = threading.Lock()
        self._snapshot = self._build(-1, [])

    @property
    def generation(self):
        return self._snapshot.generation

    def __len__(self):
        return len(self._snapshot.names)

    def refresh(self, store):
        """Reload from ``store`` if its generation differs from the index's; return the snapshot."""
        snapshot = self._snapshot
        if store.generation() == snapshot.generation:
            return snapshot
        with self._lock:
            # another thread may have reloaded while this one waited
            if store.generation() == self._snapshot.generation:
                return self._snapshot
            generation, rows = store.load_voiceprints()
            self._snapshot = self._build(generation, rows)
            return self._snapshot

    def _build(self, generation, rows):
        matrix = np.zeros((len(rows), self._dim), dtype=np.float32)
        for i, (_, _, blob) in enumerate(rows):
            vector = np.asarray(self._to_vector(blob), dtype=np.float32)
            if vector.shape != (self._dim,):
                raise ValueError(
                    f"voiceprint of {rows[i][0]!r} has shape {vector.shape}, "
                    f"expected ({self._dim},)"
                )
            matrix[i] = vector
        group_ids = np.asarray([r[1] for r in rows], dtype=np.int64)
        return _Snapshot(
            generation,
            tuple(r[0] for r in rows),
            group_ids,
            {int(g): np.flatnonzero(group_ids == g) for g in np.unique(group_ids)},
            self._make_gallery(matrix),
        )

    def search(self, store, take, group_ids=(), top_n=3):
        """Score ``take`` against the fully enrolled users of ``group_ids`` (empty: all).

        Returns at most ``top_n`` :class:`Candidate` best first (ties by name),
        never cut by a threshold; an empty list when there is no candidate.
        """
        snapshot = self.refresh(store)
        rows = None
        if group_ids:
            parts = [snapshot.group_rows[g] for g in set(group_ids) if g in snapshot.group_rows]
            rows = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
            if len(rows) == len(snapshot.names):
                rows = None  # the groups cover everyone
        if not snapshot.names or (rows is not None and rows.size == 0):
            return []
        indices, _, confidences = snapshot.gallery.search(take, top_n, rows)
        confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
        if confidences.shape != np.shape(indices) or not np.all(np.isfinite(confidences)):
            raise ValueError("the gallery returned confidences of the wrong shape or not finite")
        return [
            Candidate(snapshot.names[i], round_confidence(c), int(snapshot.group_ids[i]))
            for i, c in zip(indices, confidences)
        ]


def round_confidence(value):
    """A confidence as the API reports it: a float in [0, 1] rounded to 4 decimals."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"confidence={value} is not finite")
    return round(min(1.0, max(0.0, value)), 4)
