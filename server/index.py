"""In-memory 1-v-N index of the fully enrolled voiceprints of one worker process.

The index holds a matrix ``V`` of shape (N, R) (one ``vp.vector`` row per
fully enrolled user, sorted by name) with the names and group ids. Several
worker processes share one store, so before each 1-v-N search the index
compares its generation with the store's change counter and, when another
process (or thread) changed anything, catches up:

* incrementally, from :meth:`server.store.Store.voiceprint_changes`: only the
  changed users' voiceprints are read and decoded, and the new matrix is the
  previous one with those rows removed, replaced or inserted in name order
  (block copies of the unchanged rows);
* fully, from :meth:`server.store.Store.load_voiceprints`, at start-up and
  whenever the store no longer holds the history since the index's generation.

Both give the same snapshot (names, groups, rows). Each refresh builds a new
immutable snapshot and swaps it in under the index's lock, so searches in
other threads keep using the one they started with. Scoring a probe against
all candidates of the chosen groups is one
:meth:`vpcore.gallery.Gallery.search`: one matrix-vector product over the
rows, with only the best ``top_n`` calibrated.
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
    """One immutable state of the index (nothing in it is written after it is made)."""

    generation: int
    names: np.ndarray  # (N,) object: the user names, strictly increasing (code points)
    group_ids: np.ndarray  # (N,) int64
    group_rows: dict  # group id -> sorted row indices
    matrix: np.ndarray  # (N, R) float32, C-contiguous: row i is the voiceprint of names[i]
    gallery: object  # what make_gallery made of the matrix


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
    reuse_previous : bool, default False
        Call ``make_gallery(matrix, previous)`` instead, ``previous`` being the
        gallery of the snapshot being replaced on an incremental refresh (None
        on a full load), so a gallery can keep what it computed for unchanged
        rows (:class:`vpcore.gallery.Gallery`'s ``previous``).

    Attributes
    ----------
    full_loads : int
        Refreshes that reloaded every voiceprint.
    incremental_updates : int
        Refreshes that applied only the changes.
    """

    def __init__(self, to_vector, dim, make_gallery, reuse_previous=False):
        self._to_vector = to_vector
        self._dim = int(dim)
        self._make_gallery = make_gallery
        self._reuse_previous = bool(reuse_previous)
        self._lock = threading.Lock()
        self.full_loads = 0
        self.incremental_updates = 0
        self._snapshot = self._build(-1, [])

    @property
    def generation(self):
        return self._snapshot.generation

    def __len__(self):
        return len(self._snapshot.names)

    def refresh(self, store):
        """Catch up with ``store`` if its generation differs from the index's; return
        the snapshot.

        Applies :meth:`~server.store.Store.voiceprint_changes` when the store has
        the history since the index's generation, else reloads everything.
        """
        snapshot = self._snapshot
        if store.generation() == snapshot.generation:
            return snapshot
        with self._lock:
            # another thread may have caught up while this one waited
            snapshot = self._snapshot
            if store.generation() == snapshot.generation:
                return snapshot
            changes = None
            if snapshot.generation >= 0:
                changes = store.voiceprint_changes(snapshot.generation)
            if changes is None:
                generation, rows = store.load_voiceprints()
                self._snapshot = self._build(generation, rows)
                self.full_loads += 1
            else:
                generation, changed = changes
                self._snapshot = self._apply(snapshot, generation, changed)
                self.incremental_updates += 1
            return self._snapshot

    # -- snapshots -------------------------------------------------------------

    def _vector(self, name, blob):
        vector = np.asarray(self._to_vector(blob), dtype=np.float32)
        if vector.shape != (self._dim,):
            raise ValueError(
                f"voiceprint of {name!r} has shape {vector.shape}, expected ({self._dim},)"
            )
        return vector

    def _build(self, generation, rows):
        """The snapshot of ``rows`` (``(name, group_id, blob)``, sorted by name)."""
        names = np.empty(len(rows), dtype=object)
        names[:] = [r[0] for r in rows]
        if len(names) > 1 and not np.all(names[1:] > names[:-1]):
            raise ValueError("the store's voiceprints are not sorted by name, or repeat one")
        matrix = np.zeros((len(rows), self._dim), dtype=np.float32)
        for i, (name, _, blob) in enumerate(rows):
            matrix[i] = self._vector(name, blob)
        group_ids = np.asarray([r[1] for r in rows], dtype=np.int64)
        return self._snapshot_of(generation, names, group_ids, matrix, None)

    def _apply(self, snapshot, generation, changed):
        """``snapshot`` with ``changed`` (``(name, group_id, blob or None)``) applied.

        A changed user's old row (if any) goes; its new row (if it has a
        voiceprint) goes in at its place in name order. Unchanged rows are
        block-copied from the old matrix, never decoded again.
        """
        latest = {name: (group_id, blob) for name, group_id, blob in changed}
        if not latest:
            return dataclasses.replace(snapshot, generation=generation)
        old_names, n_old = snapshot.names, len(snapshot.names)
        keys = np.empty(len(latest), dtype=object)
        keys[:] = sorted(latest)
        # the changed users the snapshot holds lose their old row
        at = np.searchsorted(old_names, keys)
        found = at < n_old
        found[found] = old_names[at[found]] == keys[found]
        keep = np.ones(n_old, dtype=bool)
        keep[at[found]] = False
        kept = np.flatnonzero(keep)
        # the fully enrolled ones get their new row, decoded here
        added = [name for name in keys if latest[name][1] is not None]
        vectors = np.empty((len(added), self._dim), dtype=np.float32)
        for i, name in enumerate(added):
            vectors[i] = self._vector(name, latest[name][1])
        added_names = np.empty(len(added), dtype=object)
        added_names[:] = added
        # new rows: kept and added merged by name (no name is in both)
        kept_names = old_names[kept]
        new_at = np.searchsorted(kept_names, added_names) + np.arange(len(added))
        total = len(kept) + len(added)
        is_added = np.zeros(total, dtype=bool)
        is_added[new_at] = True
        kept_at = np.flatnonzero(~is_added)
        names = np.empty(total, dtype=object)
        names[kept_at], names[new_at] = kept_names, added_names
        group_ids = np.empty(total, dtype=np.int64)
        group_ids[kept_at] = snapshot.group_ids[kept]
        group_ids[new_at] = [latest[name][0] for name in added]
        matrix = np.empty((total, self._dim), dtype=np.float32)
        _copy_rows(matrix, kept_at, snapshot.matrix, kept)
        matrix[new_at] = vectors
        return self._snapshot_of(generation, names, group_ids, matrix, snapshot.gallery)

    def _snapshot_of(self, generation, names, group_ids, matrix, previous):
        order = np.argsort(group_ids, kind="stable")  # rows of each group stay sorted
        groups, starts = np.unique(group_ids[order], return_index=True)
        group_rows = {int(g): rows for g, rows in zip(groups, np.split(order, starts[1:]))}
        gallery = (self._make_gallery(matrix, previous) if self._reuse_previous
                   else self._make_gallery(matrix))
        return _Snapshot(generation, names, group_ids, group_rows, matrix, gallery)

    # -- scoring ---------------------------------------------------------------

    def score(self, store, take, name, vector):
        """Normalised score of ``take`` against one user's voiceprint row ``vector``.

        Scored by the current snapshot's gallery, so that a 1-v-1 score is the
        one a 1-v-N search gives the same user (with the adaptive in-domain
        cohort, the other enrolled voiceprints take part). When the snapshot's
        row of ``name`` differs from ``vector`` (changed meanwhile) or is
        missing, ``vector`` is scored in its place.
        """
        snapshot = self.refresh(store)
        vector = np.asarray(vector, dtype=np.float32)
        names = snapshot.names
        i = int(np.searchsorted(names, name)) if len(names) else 0
        own = -1
        if i < len(names) and names[i] == name:
            if np.array_equal(snapshot.matrix[i], vector):
                return float(snapshot.gallery.scores(take, np.array([i]))[0])
            own = i
        return float(snapshot.gallery.score_vectors(take, vector[None, :],
                                                    own=np.array([own]))[0])

    # -- search ----------------------------------------------------------------

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
        if len(snapshot.names) == 0 or (rows is not None and rows.size == 0):
            return []
        indices, _, confidences = snapshot.gallery.search(take, top_n, rows)
        confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
        if confidences.shape != np.shape(indices) or not np.all(np.isfinite(confidences)):
            raise ValueError("the gallery returned confidences of the wrong shape or not finite")
        return [
            Candidate(snapshot.names[i], round_confidence(c), int(snapshot.group_ids[i]))
            for i, c in zip(indices, confidences)
        ]


def _copy_rows(dst, dst_rows, src, src_rows):
    """``dst[dst_rows] = src[src_rows]`` for increasing row indices, as one slice copy
    per run of rows that are consecutive on both sides (few runs when few rows changed)."""
    if len(dst_rows) == 0:
        return
    breaks = np.flatnonzero((np.diff(dst_rows) != 1) | (np.diff(src_rows) != 1)) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(dst_rows)]))
    if len(starts) > len(dst_rows) // 64:  # scattered: one gather is cheaper than many slices
        dst[dst_rows] = src[src_rows]
        return
    for a, b in zip(starts, stops):
        d, s = dst_rows[a], src_rows[a]
        dst[d:d + b - a] = src[s:s + b - a]


def round_confidence(value):
    """A confidence as the API reports it: a float in [0, 1] rounded to 4 decimals."""
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"confidence={value} is not finite")
    return round(min(1.0, max(0.0, value)), 4)
