"""In-memory 1-v-N index of the fully enrolled voiceprints of one worker process.

The index holds a matrix ``V`` of shape (N, R) (one ``vp.vector`` row per
fully enrolled user, sorted by name) with the names and group ids. Several
worker processes share one store, so before each 1-v-N search the index
compares its generation with the store's change counter and reloads when
another process (or thread) changed anything. Scoring a probe against all
candidates of the chosen groups is one vectorised ``model.score_many`` call.
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
    matrix: np.ndarray  # (N, R) float32


class VoiceprintIndex:
    """Matrix of voiceprints kept in step with a :class:`server.store.Store`.

    Parameters
    ----------
    to_vector : callable
        ``bytes -> ndarray (R,)``: turns a stored voiceprint into its row.
    dim : int
        Row length R (``model.voiceprint_dim``).
    """

    def __init__(self, to_vector, dim):
        self._to_vector = to_vector
        self._dim = int(dim)
        self._lock = threading.Lock()
        self._snapshot = _Snapshot(-1, (), np.zeros(0, dtype=np.int64),
                                   np.zeros((0, self._dim), dtype=np.float32))

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
            matrix = np.zeros((len(rows), self._dim), dtype=np.float32)
            for i, (_, _, blob) in enumerate(rows):
                vector = np.asarray(self._to_vector(blob), dtype=np.float32)
                if vector.shape != (self._dim,):
                    raise ValueError(
                        f"voiceprint of {rows[i][0]!r} has shape {vector.shape}, "
                        f"expected ({self._dim},)"
                    )
                matrix[i] = vector
            self._snapshot = _Snapshot(
                generation,
                tuple(r[0] for r in rows),
                np.asarray([r[1] for r in rows], dtype=np.int64),
                matrix,
            )
            return self._snapshot

    def search(self, store, model, take, group_ids=(), top_n=3):
        """Score ``take`` against the fully enrolled users of ``group_ids`` (empty: all).

        Returns at most ``top_n`` :class:`Candidate` best first (ties by name),
        never cut by a threshold; an empty list when there is no candidate.
        """
        snapshot = self.refresh(store)
        if group_ids:
            rows = np.flatnonzero(np.isin(snapshot.group_ids, np.asarray(group_ids)))
        else:
            rows = np.arange(len(snapshot.names))
        if rows.size == 0:
            return []
        _, confidences = model.score_many(snapshot.matrix[rows], take)
        confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
        if confidences.shape != rows.shape or not np.all(np.isfinite(confidences)):
            raise ValueError("score_many returned confidences of the wrong shape or not finite")
        order = np.argsort(-confidences, kind="stable")[:top_n]
        return [
            Candidate(snapshot.names[rows[i]], round_confidence(confidences[i]),
                      int(snapshot.group_ids[rows[i]]))
            for i in order
        ]


def round_confidence(value):
    """A confidence as the API reports it: a float in [0, 1] rounded to 4 decimals."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"confidence={value} is not finite")
    return round(min(1.0, max(0.0, value)), 4)
