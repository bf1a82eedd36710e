"""Approximate i-vector precision matrices: how far the i-vectors, scores and accuracy move.

::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/precision_approx.py \\
        [--model M] [--ranks 0 16 64 128] [--conditions clean noise ...]

The precision of a take's i-vector posterior is ``L = I + sum_c N_c M_c`` with
``M_c = T_c' T_c`` (C of them, each S x S). Building it streams all C packed
products per take. Here it is replaced by a sum over K << C fixed matrices,
computed once per model from the model alone (deterministic):

    L ~ I + n Mbar + sum_k a_k B_k,   n = sum_c N_c,  Mbar = sum_c pi_c M_c,
    a_k = sum_c (N_c - n pi_c) g_ck,

where ``pi`` are the UBM weights, and ``B_k`` / ``g_ck`` are the top K of the
singular value decomposition of the stacked products weighted by
``sqrt(pi_c)`` (in the Frobenius metric of the symmetric matrices), i.e. the
best rank-K fit of ``sum_c d_c M_c`` when the occupancy deviations ``d_c`` are
independent with variance proportional to ``pi_c``. K = 0 is the approximation
of Glembek et al. (2011): every take's occupancies in the UBM's proportions.

Each variant replaces the extractor's precision only (the linear term and the
backend are the model's) and runs the robustness development protocol
(:func:`benchmarks.robustness.evaluate`, clean and degraded probes) on the
features cached by ``benchmarks/robustness.py``; the script only reads that
cache and stops if an entry is missing. It also reports, on the clean takes,
the relative change of the i-vectors and the change of the scores against the
exact extractor, and the paired CPU time of building ``L`` both ways.

References
----------
O. Glembek, L. Burget, P. Matejka, M. Karafiat, P. Kenny, "Simplification and
optimization of i-vector extraction", ICASSP 2011.
"""

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common, robustness


class LowRankPrecision:
    """``sum_c N_c M_c`` approximated through K fixed matrices (see the module docstring).

    Parameters
    ----------
    tv : TotalVariability
        Fitted; its packed products ``_tt_packed`` (C, S (S + 1) / 2) are read.
    weights : ndarray of shape (C,)
        UBM weights.
    rank : int
        K, at most C.
    """

    def __init__(self, tv, weights, rank):
        packed = tv._tt_packed.astype(np.float64)
        S = tv.T_.shape[1]
        iu = np.triu_indices(S)
        fro = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))  # packed dot = Frobenius product
        self.weights = np.asarray(weights, dtype=np.float64)
        self.mean = (self.weights @ packed).astype(np.float32)
        X = np.sqrt(self.weights)[:, None] * (packed * fro)
        ev, U = np.linalg.eigh(X @ X.T)  # (C, C) Gram: the SVD of the (C, P) stack
        order = np.argsort(ev)[::-1][:rank]
        V = (U[:, order].T @ X) / np.sqrt(np.maximum(ev[order], 1e-300))[:, None]
        self.coef = ((packed * fro) @ V.T).astype(np.float32)        # g (C, K)
        self.basis = np.ascontiguousarray(V / fro, dtype=np.float32)  # B (K, P)
        self.energy = float(ev[order].sum() / ev.sum()) if rank else 0.0

    def packed(self, n):
        """Approximate packed ``sum_c N_c M_c`` of occupancies n (C,)."""
        total = float(n.sum())
        out = total * self.mean
        if len(self.basis):
            d = (n - total * self.weights).astype(np.float32)
            out = out + (d @ self.coef) @ self.basis
        return out


def transform_with(tv, precision, exact, fallbacks):
    """``tv.transform_one`` with the packed precision term from ``precision(n)``.

    When the approximate precision is not positive definite (the truncated
    deviation term can make it indefinite), the take gets the ``exact``
    i-vector and ``fallbacks`` (a one-element list) counts it.
    """
    from scipy.linalg.lapack import dpotrf, dpotrs

    S = tv.T_.shape[1]

    def transform_one(n, f):
        n = np.asarray(n, dtype=np.float64)
        flat = np.empty(S * S)
        flat[tv._packed_to_upper] = precision(n)
        flat[::S + 1] += 1.0
        L = flat.reshape(S, S, order="F")
        centred = np.asarray(f, dtype=np.float64).reshape(tv._offset_cd.shape)
        centred = centred - n[:, None] * tv._offset_cd
        b = centred.reshape(-1).astype(np.float32) @ tv._T32
        chol, info = dpotrf(L, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            fallbacks[0] += 1
            return exact(n, f)
        return dpotrs(chol, b.astype(np.float64), lower=0)[0]

    return transform_one


def read_only(cache_dir, key, compute):
    """:func:`benchmarks.common.cached_array` that never writes (a missing entry stops the run)."""
    import hashlib
    import json

    path = Path(cache_dir) / (hashlib.sha256(json.dumps(key, sort_keys=True).encode())
                              .hexdigest()[:24] + ".npy")
    if not path.is_file():
        raise SystemExit(f"feature cache entry missing ({path.name}): run "
                         "benchmarks/robustness.py with this model first")
    a = np.load(path, allow_pickle=False)
    return None if a.size == 0 else a


def deviations(model, protocol, exact, approx):
    """Relative i-vector change and score change on the clean protocol's takes."""
    from vpcore.stats import compute_stats

    rel, vecs = [], {}
    for path in protocol.tests:
        f = protocol.features(model.feature_options_, "clean", path)
        if f is None:
            continue
        st = compute_stats(model._prepared_ubm(), f)
        w0, w1 = exact(st.n, st.f), approx(st.n, st.f)
        rel.append(float(np.linalg.norm(w1 - w0) / np.linalg.norm(w0)))
        vecs[path] = (w0, w1)
    return {"ivector_relative_change": {"median": float(np.median(rel)),
                                        "p95": float(np.percentile(rel, 95)),
                                        "max": float(np.max(rel))}, "takes": len(rel)}


def time_precision(tv, low_rank, n, repeat):
    """Paired CPU time (ms) of the exact packed product and the approximation."""
    from threadpoolctl import threadpool_limits

    exact = lambda: n.astype(np.float32) @ tv._tt_packed  # noqa: E731
    approx = lambda: low_rank.packed(n)  # noqa: E731
    a, b = [], []
    with threadpool_limits(limits=1):
        exact(), approx()
        for _ in range(repeat):
            for fn, out in ((exact, a), (approx, b)):
                start = time.thread_time()
                fn()
                out.append(1000.0 * (time.thread_time() - start))
    return {"exact_cpu_ms": float(np.median(a)), "approx_cpu_ms": float(np.median(b)),
            "approx_over_exact": float(np.median(np.array(b) / np.array(a)))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file (default: the cached development model)")
    parser.add_argument("--data", help="corpus root (default: $VPCORE_DATA or ../shared/data)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[0, 16, 64, 128])
    parser.add_argument("--conditions", nargs="+", default=list(robustness.CONDITIONS),
                        choices=robustness.CONDITIONS)
    parser.add_argument("--cache", default=str(common.CACHE_DIR / "robustness"))
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--name", default="precision-approx")
    parser.add_argument("--out-dir")
    args = parser.parse_args(argv)

    from vpcore.model import load_model

    path = Path(args.model) if args.model else common.DEV_MODEL
    model = load_model(path)
    common.cached_array = read_only
    protocol = robustness.Protocol(common.data_root(args.data), args.cache)
    tv = model.tv_
    exact = tv.transform_one
    some_n = None
    variants = {"exact": robustness.evaluate(model, protocol, args.conditions, progress=False)}
    print("exact", {c: round(r["eer"], 4) for c, r in variants["exact"].items()}, flush=True)
    for f in (protocol.features(model.feature_options_, "clean", p) for p in protocol.tests):
        if f is not None and len(f) > 400:
            from vpcore.stats import compute_stats

            some_n = compute_stats(model._prepared_ubm(), f).n
            break
    approx = {}
    for rank in args.ranks:
        low = LowRankPrecision(tv, model.ubm_.params[0], rank)
        fallbacks = [0]
        fn = transform_with(tv, low.packed, exact, fallbacks)
        entry = {"rank": rank, "basis_bytes": low.basis.nbytes + low.coef.nbytes,
                 "weighted_energy_kept": low.energy,
                 **deviations(model, protocol, exact, fn)}
        entry["clean_takes_not_positive_definite"] = fallbacks[0]
        if some_n is not None:
            entry["precision_build"] = time_precision(tv, low, some_n, args.repeat)
        tv.transform_one = fn
        try:
            entry["metrics"] = robustness.evaluate(model, protocol, args.conditions,
                                                   progress=False)
        finally:
            del tv.transform_one
        entry["protocol_takes_not_positive_definite"] = fallbacks[0] - \
            entry["clean_takes_not_positive_definite"]
        approx[str(rank)] = entry
        print(rank, {c: round(r["eer"], 4) for c, r in entry["metrics"].items()},
              entry["ivector_relative_change"], entry.get("precision_build"),
              "not PD:", fallbacks[0], flush=True)
    payload = {"model": common.relative(path), "packed_products_bytes": tv._tt_packed.nbytes,
               "exact": variants["exact"], "approximations": approx}
    print(common.write_result(args.name, payload, args.out_dir))


if __name__ == "__main__":
    main()
