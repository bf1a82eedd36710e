"""1-v-N at scale: vpcore's Gallery against an exact inner-product FAISS index.

::

    python benchmarks/faiss_1vn.py [--sizes 100000 1000000] [--model m.npz]

Needs ``faiss-cpu`` (``pip install faiss-cpu``; a benchmark reference, not a
dependency of vpcore). The galleries are those of ``benchmarks/scale.py``
(a few real enrolments, the other rows drawn from the PLDA model). On one
core (BLAS and OpenMP limited to one thread), top-3 of one probe take:

``gallery``
    :meth:`vpcore.gallery.Gallery.search`: PLDA LLR of every row, AS-norm,
    exact top-n, calibration of the n (the service's 1-v-N).
``faiss_asnorm``
    ``faiss.IndexFlatIP`` over the rows with PLDA *and* AS-norm folded in.
    For enrolments of ``n`` takes, the normalised score of row ``e`` is

        2 s = llr (1/sd_e + 1/sd_t) - mu_e/sd_e - mu_t/sd_t,
        llr = m_e . u + o_e + c                 (u, c: the probe's, o_e = -quad_e / 2)

    which is an inner product of the row ``[m/sd_e, m, 1/sd_e, o/sd_e - mu_e/sd_e, o]``
    (2R + 3) with the query ``[u, u/sd_t, c, 1, 1/sd_t]`` plus a term of the
    probe alone: the same ranking and, with that term, the same scores.
``faiss_plda``
    ``IndexFlatIP`` over ``[m, o]`` (R + 1) with the query ``[u, 1]``: the
    raw PLDA LLR without AS-norm -- a different (worse-calibrated) score,
    timed only to show what the inner product alone costs.

Reported: median query time, build time, index bytes, peak RSS, and whether
the top rows and scores agree with the gallery's.
"""

import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common
from benchmarks.scale import make_gallery, real_voiceprints


def folded_rows(scorer, V, asnorm=True):
    """Index rows (N, 2R + 3) with PLDA and AS-norm folded in, or (N, R + 1) with PLDA only."""
    rows = scorer.prepare(V, np.float32)
    m = rows.means
    if not asnorm:
        return np.ascontiguousarray(np.column_stack([m, rows.offset]), dtype=np.float32)
    scale, offset = rows.scale[:, None], rows.offset[:, None]
    return np.ascontiguousarray(np.hstack([m * scale, m, scale,
                                           offset * scale - rows.shift[:, None], offset]),
                                dtype=np.float32)


def probe_query(scorer, z, n, asnorm=True):
    """The query vector of probe ``z`` against enrolments of ``n`` takes, and its own term."""
    plda = scorer.plda
    a, var = plda.enrol_terms(float(n))
    total = 1.0 + plda.psi_
    u = z * a / var
    c = float(-0.5 * (np.log(var).sum() - np.log(total).sum()) - 0.5 * (z**2) @ (1 / var - 1 / total))
    if not asnorm:
        return np.append(u, 1.0)[None, :].astype(np.float32), c
    mu_t, sd_t = (float(v[0]) for v in scorer.probe_stats(z[None, :]))
    q = np.concatenate([u, u / sd_t, [c, 1.0, 1.0 / sd_t]])
    return q[None, :].astype(np.float32), (c - mu_t) / sd_t


def run(args):
    try:
        import faiss
    except ImportError:
        raise SystemExit("faiss is not installed: pip install faiss-cpu (or '.[reference]')") from None
    from threadpoolctl import threadpool_limits

    from vpcore.gallery import Gallery
    from vpcore.model import load_model

    faiss.omp_set_num_threads(1)
    model_path, source = common.resolve_model(args.model)
    model = load_model(model_path)
    scorer = model.scorer_
    real, probe, desc = real_voiceprints(model, args.real_voices, args.root)
    z = probe.vector.astype(np.float64)
    rows_out = []
    with threadpool_limits(limits=1):
        for N in sorted(args.sizes):
            V = make_gallery(model, real, N, seed=args.seed)
            counts = np.unique(np.rint(V[:, scorer.layout.index("n")]))
            if len(counts) != 1:
                raise SystemExit("the folded index needs one take count per index")
            gallery = Gallery(model, V)
            repeat = max(3, min(30, int(3e6 / N)))
            g_ms = common.time_calls(lambda: gallery.search(probe, args.top_n), repeat)
            g_top, g_llr, _ = gallery.search(probe, args.top_n)
            row = {"n": N, "gallery": {"query_ms": common.summary_ms(g_ms),
                                       "bytes": int(V.nbytes)}}
            for name, asnorm in (("faiss_asnorm", True), ("faiss_plda", False)):
                start = time.perf_counter()
                X = folded_rows(scorer, V, asnorm)
                index = faiss.IndexFlatIP(X.shape[1])
                index.add(X)
                build_s = time.perf_counter() - start
                del X

                def search(asnorm=asnorm, index=index):
                    q, own = probe_query(scorer, z, counts[0], asnorm)
                    ip, top = index.search(q, args.top_n)
                    s = 0.5 * (ip[0].astype(np.float64) + own) if asnorm else ip[0] + own
                    return top[0], s, scorer.confidence(s)

                f_ms = common.time_calls(search, repeat)
                f_top, f_s, _ = search()
                entry = {"query_ms": common.summary_ms(f_ms), "build_s": round(build_s, 2),
                         "dim": int(index.d), "bytes": int(index.ntotal * index.d * 4),
                         "top_rows": [int(i) for i in f_top]}
                if asnorm:
                    entry["same_top_rows"] = bool(np.array_equal(f_top, g_top))
                    entry["max_score_difference"] = float(np.abs(f_s - g_llr).max())
                row[name] = entry
                del index
            row["gallery"]["top_rows"] = [int(i) for i in g_top]
            row["peak_rss_bytes"] = common.rss_bytes(key="VmHWM")
            row["faiss_over_gallery"] = (row["faiss_asnorm"]["query_ms"]["median"]
                                         / row["gallery"]["query_ms"]["median"])
            rows_out.append(row)
            if not args.quiet:
                print(f"N={N:>9,}: gallery {row['gallery']['query_ms']['median']:7.2f} ms | "
                      f"faiss AS-norm folded (d={row['faiss_asnorm']['dim']}) "
                      f"{row['faiss_asnorm']['query_ms']['median']:7.2f} ms, same top "
                      f"{row['faiss_asnorm']['same_top_rows']}, max score diff "
                      f"{row['faiss_asnorm']['max_score_difference']:.1e} | faiss PLDA only "
                      f"(d={row['faiss_plda']['dim']}) {row['faiss_plda']['query_ms']['median']:7.2f}"
                      f" ms | peak RSS {row['peak_rss_bytes'] / 2**20:.0f} MB", flush=True)

    payload = {
        "benchmark": "faiss_1vn",
        "model": {**common.model_info(model, model_path), "source": source},
        "faiss_version": faiss.__version__, "threads": 1, "top_n": args.top_n,
        "probe": desc, "sizes": rows_out,
        "adopted": False if all(r["faiss_over_gallery"] >= 1.0 for r in rows_out) else None,
    }
    path = common.write_result(args.name, payload, args.out_dir)
    print(path)
    return path


def build_parser():
    p = common.gallery_parser(__doc__, "faiss_1vn", [100_000, 1_000_000], real_voices=8)
    p.add_argument("--top-n", type=int, default=3)
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
