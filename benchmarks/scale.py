"""1-v-N search cost: time and memory of a top-n query against N enrolled voiceprints.

::

    python benchmarks/scale.py [--model m.npz] [--sizes 1000 10000 100000 1000000]

The gallery is N packed voiceprint rows (``Voiceprint.vector``, float32).
A few real enrolments are made from speech (corpus audio when present,
synthetic otherwise); the other rows are generated around them: the PLDA-space
mean is drawn from the PLDA model's distribution of a 3-take enrolment
(``N(0, psi + 1/3)`` per dimension), its quadratic term computed exactly, and
the AS-norm statistics drawn around those of the real enrolments. This keeps
the arithmetic and the memory traffic of a real gallery.

Timed (library side, one probe take already extracted):
:meth:`vpcore.gallery.Gallery.search` (PLDA LLR for all rows, AS-norm, exact
top-n, calibration of the n), over all rows and over a group of every tenth
row; the gallery is prepared once (``prepare_ms``), as the service does. Memory: the gallery's bytes, the temporary memory of one query
(tracemalloc peak of numpy's allocations) and the process' peak RSS.
Targets: N = 100,000 in <= 10 ms; N = 1,000,000 in <= 100 ms and < 1.5 GB.
"""

import sys
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

TARGETS = {100_000: {"ms": 10.0}, 1_000_000: {"ms": 100.0, "bytes": 1.5 * 2**30}}


def real_voiceprints(model, n_voices, root=None):
    """Voiceprints of ``n_voices`` speakers (3 takes of 4 s each) and one probe take."""
    vps = []
    for i in range(n_voices):
        samples, _ = common.speech_of_length(12.0, seed=1000 + i, data=root)
        third = len(samples) // 3
        vps.append(model.enroll([model.extract(samples[k * third:(k + 1) * third])
                                 for k in range(3)]))
    probe_samples, desc = common.speech_of_length(5.0, seed=1000, data=root)
    return vps, model.extract(probe_samples), desc


def make_gallery(model, real, N, seed=0, chunk=100_000):
    """N voiceprint rows (float32): the real ones first, the rest generated (see module doc)."""
    rng = np.random.default_rng(seed)
    layout = model.scorer_.layout
    R = layout.rank
    V = np.empty((N, layout.width), dtype=np.float32)
    real_rows = np.stack([v.vector for v in real])[:N]
    V[:len(real_rows)] = real_rows
    sd = np.sqrt(model.plda_.psi_ + 1.0 / 3.0).astype(np.float32)
    nm = np.array([v.norm_mean for v in real])
    ns = np.array([v.norm_std for v in real])
    for start in range(len(real_rows), N, chunk):
        stop = min(N, start + chunk)
        m = rng.standard_normal((stop - start, R), dtype=np.float32) * sd
        V[start:stop] = layout.pack(
            m, 3.0, model.plda_.quad_term(m.astype(np.float64), 3.0),
            rng.normal(nm.mean(), nm.std() + 1e-3, stop - start),
            np.abs(rng.normal(ns.mean(), ns.std() + 1e-3, stop - start)) + 1e-3)
    return V


def query(gallery, take, top_n, rows=None):
    top, _, conf = gallery.search(take, top_n, rows)
    return top, conf


def run(args):
    from threadpoolctl import threadpool_limits

    from vpcore.gallery import Gallery
    from vpcore.model import load_model

    model_path, source = common.resolve_model(args.model)
    model = load_model(model_path)
    real, probe, desc = real_voiceprints(model, args.real_voices, args.root)
    rows = []
    with threadpool_limits(limits=args.threads):
        for N in sorted(args.sizes):
            rss_before = common.rss_bytes()
            start = time.perf_counter()
            V = make_gallery(model, real, N, seed=args.seed)
            gen_s = time.perf_counter() - start
            start = time.perf_counter()
            gallery = Gallery(model, V)
            prepare_ms = (time.perf_counter() - start) * 1e3
            # a group filter: every tenth row (gathered, since it is under a quarter)
            group = np.arange(0, N, 10)
            repeat = max(3, min(50, int(2e6 / N)))
            times = common.time_calls(lambda: query(gallery, probe, args.top_n), repeat)
            group_times = common.time_calls(lambda: query(gallery, probe, args.top_n, group),
                                            repeat)
            tracemalloc.start()
            query(gallery, probe, args.top_n)
            _, query_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            top, _ = query(gallery, probe, args.top_n)
            row = {
                "n": N, "gallery_bytes": int(V.nbytes), "row_bytes": int(V.shape[1] * 4),
                "query_ms": common.summary_ms(times),
                "group_query_ms": common.summary_ms(group_times), "group_rows": len(group),
                "prepare_ms": round(prepare_ms, 2),
                "query_temporary_bytes": int(query_peak),
                "rss_bytes": common.rss_bytes(), "rss_before_gallery": rss_before,
                "peak_rss_bytes": common.rss_bytes(key="VmHWM"),
                "generate_seconds": round(gen_s, 2),
                "top_rows": [int(i) for i in top],
            }
            target = TARGETS.get(N)
            if target:
                row["target"] = target
                row["meets_target"] = (row["query_ms"]["median"] <= target["ms"]
                                       and (("bytes" not in target)
                                            or row["peak_rss_bytes"] < target["bytes"]))
            rows.append(row)
            if not args.quiet:
                print(f"N={N:>9,}: {row['query_ms']['median']:8.2f} ms (group {row['group_query_ms']['median']:.2f} ms)  gallery "
                      f"{V.nbytes / 2**20:7.1f} MB  query temp {query_peak / 2**20:6.1f} MB  "
                      f"peak RSS {row['peak_rss_bytes'] / 2**20:7.0f} MB", flush=True)
            del gallery, V
    growth = None
    if len(rows) >= 2:
        n = np.log([r["n"] for r in rows])
        t = np.log([r["query_ms"]["median"] for r in rows])
        growth = float(np.polyfit(n, t, 1)[0])
    payload = {
        "benchmark": "scale",
        "model": {**common.model_info(model, model_path), "source": source},
        "threads": args.threads, "top_n": args.top_n,
        "real_enrolments": len(real), "probe": desc,
        "voiceprint_dim": model.voiceprint_dim,
        "sizes": rows,
        "time_growth_exponent": growth,
        "note": "library-side: Gallery.search (PLDA LLRs of all rows, AS-norm, top-n, "
                "calibration of the top n) on a prepared probe take; the probe's extraction "
                "is not included (see speed.py); group_query_ms searches every tenth row",
    }
    path = common.write_result(args.name, payload, args.out_dir)
    if not args.quiet and growth is not None:
        print(f"query time grows as N^{growth:.2f}")
    print(path)
    return path


def build_parser():
    p = common.gallery_parser(__doc__, "scale", [1_000, 10_000, 100_000, 1_000_000],
                              real_voices=8)
    p.add_argument("--top-n", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (1)")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
