"""1-v-N index refresh: full reload vs incremental refresh of a worker's index.

::

    python benchmarks/index_refresh.py [--model m.npz] [--sizes 10000 100000]
                                       [--changes 1 100] [--repeat 5]

For each size N, a SQLite store (in a temporary directory, or ``--store-dir``)
is filled with N fully enrolled users (names ``u0000000``..., 100 groups);
their voiceprints are rows generated as in :mod:`benchmarks.scale` (a few real
enrolments, the others drawn from the PLDA model's distribution) and stored
as the blobs :meth:`vpcore.model.Voiceprint.to_bytes` makes; rows are written
in one transaction, without takes (the index never reads them). The index is
the service's: :class:`server.index.VoiceprintIndex` with
``Voiceprint.from_bytes(blob).vector`` rows and a :class:`vpcore.gallery.Gallery`
with the adaptive in-domain cohort, each made from the previous one (for a
model with ``in_domain_cohort="both"`` that is where each voiceprint's pooled
statistics are computed, or kept for unchanged rows while the voiceprint pool
stays the same).

Timed, single-threaded BLAS:

* ``full_load_ms``: a new index's first refresh (``Store.load_voiceprints``,
  decoding every blob, the matrix and the Gallery) -- what every refresh cost
  before; ``load_voiceprints_ms`` is the store read alone;
* ``incremental_ms[c]``: the refresh of a loaded index after ``c`` voiceprint
  changes made through the store's API (1: a new user enrolled; 100: 50 new
  users, 25 unregistered, 25 enrolled again with a new voiceprint; each
  enrolment is three takes), ``--repeat`` times with fresh changes;
  ``voiceprint_changes_ms[c]`` is the store read alone.

After the incremental refreshes the index is compared with a fresh full load
(names, groups and rows must be identical): ``matches_full_reload``.
"""

import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

NOW = "2024-01-02 03:04:05"
N_GROUPS = 100


def voiceprint_blobs(model, V):
    """The stored form of each row of ``V`` (all rows of 3 takes), built without a
    Voiceprint object per row: the serialized header is the same for every row."""
    from vpcore.model import Voiceprint

    first = Voiceprint.from_vector(V[0], model.fingerprint)
    if first.n != 3 or not np.all(np.rint(model.scorer_.layout.column(V, "n")) == 3):
        raise ValueError("every generated row must be an enrolment of 3 takes")
    header = first.to_bytes()[:-4 * V.shape[1]]
    rows = np.ascontiguousarray(V, dtype="<f4")
    blobs = [header + rows[i].tobytes() for i in range(len(rows))]
    assert np.array_equal(Voiceprint.from_bytes(blobs[-1]).vector, V[-1])
    return blobs


def fill_store(path, model, V):
    """A store at ``path`` holding ``len(V)`` fully enrolled users; returns their names."""
    from server.store import SQLiteStore

    SQLiteStore(path, model.fingerprint).close()  # creates the current schema
    names = [f"u{i:07d}" for i in range(len(V))]
    blobs = voiceprint_blobs(model, V)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO users (name, enroll_num, group_id, update_time, revision,"
                " voiceprint) VALUES (?, 3, ?, ?, ?, ?)",
                ((n, i % N_GROUPS, NOW, i + 1, b) for i, (n, b) in enumerate(zip(names, blobs))))
            conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (len(V),))
    finally:
        conn.close()
    return names


class Changes:
    """Voiceprint changes made through the Store API, as the service makes them."""

    def __init__(self, store, model, pool, names, seed):
        self.store, self.model, self.pool = store, model, pool
        self.present = list(names)
        self.rng = np.random.default_rng(seed)
        self.counter = 0

    def _blob(self):
        from vpcore.model import Voiceprint

        row = self.pool[self.rng.integers(len(self.pool))]
        return Voiceprint.from_vector(row, self.model.fingerprint).to_bytes()

    def _enrol(self, name):
        revision = None
        for k in (1, 2, 3):
            record = self.store.save_take(name, k, b"take", int(self.rng.integers(N_GROUPS)),
                                          NOW, self._blob() if k == 3 else None, revision)
            revision = record.revision

    def _pick(self):
        return self.present.pop(int(self.rng.integers(len(self.present))))

    def make(self, count):
        """``count`` changes: one new user for 1; else half new users, a quarter
        unregistered, a quarter unregistered and enrolled again."""
        new = 1 if count == 1 else count // 2
        removed = (count - new) // 2
        for _ in range(new):
            self.counter += 1
            # between the existing names: "u0001234" < "u0001234n1" < "u0001235"
            name = f"u{int(self.rng.integers(10**7)):07d}n{self.counter}"
            self._enrol(name)
            self.present.append(name)
        for _ in range(removed):
            self.store.delete_user(self._pick())
        for _ in range(count - new - removed):
            name = self._pick()
            self.store.delete_user(name)
            self._enrol(name)
            self.present.append(name)


def new_index(model):
    from server.index import VoiceprintIndex
    from vpcore.gallery import Gallery
    from vpcore.model import Voiceprint

    # as the service builds it: adaptive in-domain cohort, each gallery made from the last
    return VoiceprintIndex(lambda blob: Voiceprint.from_bytes(blob).vector,
                           model.voiceprint_dim,
                           lambda matrix, previous: Gallery(model, matrix, adaptive_cohort=True,
                                                            previous=previous),
                           reuse_previous=True)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return 1000.0 * (time.perf_counter() - start), result


def same(a, b):
    """Whether two index snapshots hold the same names, groups and rows (their galleries'
    prepared rows are compared by the caller)."""
    return (list(a.names) == list(b.names) and np.array_equal(a.group_ids, b.group_ids)
            and np.array_equal(a.matrix, b.matrix))


def measure(model, real, N, args, store_dir):
    from server.store import SQLiteStore

    from benchmarks.scale import make_gallery

    V = make_gallery(model, real, N, seed=args.seed)
    path = os.path.join(store_dir, f"index-refresh-{N}.sqlite3")
    if os.path.exists(path):
        os.remove(path)
    start = time.perf_counter()
    names = fill_store(path, model, V)
    fill_s = time.perf_counter() - start
    store = SQLiteStore(path, model.fingerprint)
    try:
        read_ms = [timed(store.load_voiceprints)[0] for _ in range(args.full_repeat)]
        full_ms = []
        for _ in range(args.full_repeat):
            index = new_index(model)
            full_ms.append(timed(lambda: index.refresh(store))[0])
        assert len(index) == N
        changes = Changes(store, model, V[:min(N, 1000)], names, args.seed + 1)
        incremental, changes_ms, reused = {}, {}, {}
        for count in args.changes:
            incremental[count], changes_ms[count], reused[count] = [], [], []
            for _ in range(args.repeat):
                changes.make(count)
                since = index.generation
                incremental[count].append(timed(lambda: index.refresh(store))[0])
                changes_ms[count].append(timed(lambda: store.voiceprint_changes(since))[0])
                reused[count].append(int(getattr(index._snapshot.gallery, "reused_", 0)))
        check = new_index(model)
        check.refresh(store)
        a, b = index.refresh(store), check.refresh(store)
        matches = same(a, b) and np.array_equal(a.gallery.rows_.matrix, b.gallery.rows_.matrix)
        row = {
            "n": N,
            "store_bytes": os.path.getsize(path),
            "fill_store_seconds": round(fill_s, 2),
            "load_voiceprints_ms": common.summary_ms(read_ms),
            "full_load_ms": common.summary_ms(full_ms),
            "voiceprint_changes_ms": {str(c): common.summary_ms(t)
                                      for c, t in changes_ms.items()},
            "incremental_ms": {str(c): common.summary_ms(t) for c, t in incremental.items()},
            # rows whose pooled voiceprint-side statistics the new gallery took from the last
            "reused_rows": {str(c): r for c, r in reused.items()},
            "full_loads": index.full_loads,
            "incremental_updates": index.incremental_updates,
            "matches_full_reload": bool(matches),
            "final_voiceprints": len(index),
        }
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(path + suffix)
            except FileNotFoundError:
                pass
    if not matches:
        raise AssertionError(f"N={N}: the incrementally refreshed index differs from a full load")
    return row


def run(args):
    from threadpoolctl import threadpool_limits

    from benchmarks.scale import real_voiceprints
    from vpcore.model import load_model

    model_path, source = common.resolve_model(args.model)
    model = load_model(model_path)
    real, _, desc = real_voiceprints(model, args.real_voices, args.root)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.store_dir) as store_dir, \
            threadpool_limits(limits=args.threads):
        for N in sorted(args.sizes):
            row = measure(model, real, N, args, store_dir)
            rows.append(row)
            if not args.quiet:
                inc = "  ".join(f"after {c}: {row['incremental_ms'][c]['median']:.1f} ms"
                                for c in row["incremental_ms"])
                print(f"N={N:>8,}: full load {row['full_load_ms']['median']:8.1f} ms "
                      f"(store read {row['load_voiceprints_ms']['median']:.1f} ms); "
                      f"incremental {inc}", flush=True)
    payload = {
        "benchmark": "index_refresh",
        "model": {**common.model_info(model, model_path), "source": source},
        "threads": args.threads,
        "real_enrolments": len(real), "real_audio": desc,
        "voiceprint_dim": model.voiceprint_dim,
        "backend": "sqlite",
        "changes": args.changes, "repeat": args.repeat, "full_repeat": args.full_repeat,
        "sizes": rows,
        "note": "one worker's VoiceprintIndex.refresh on a SQLite store: a full load (every "
                "blob decoded) vs applying the changes of Store.voiceprint_changes after c "
                "voiceprint changes (c=1: a new user; c=100: 50 new, 25 unregistered, 25 "
                "re-enrolled), store writes not timed",
    }
    path = common.write_result(args.name, payload, args.out_dir)
    print(path)
    return path


def build_parser():
    p = common.gallery_parser(__doc__, "index_refresh", [10_000, 100_000], real_voices=4)
    p.add_argument("--changes", type=int, nargs="+", default=[1, 100])
    p.add_argument("--repeat", type=int, default=5, help="incremental refreshes per change count")
    p.add_argument("--full-repeat", type=int, default=3, help="full loads per size")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (1)")
    p.add_argument("--store-dir", help="where the temporary stores go (default: $TMPDIR)")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if any(c < 1 for c in args.changes) or any(n < 2 for n in args.sizes):
        raise SystemExit("--changes must be >= 1 and --sizes >= 2")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
