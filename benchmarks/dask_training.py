"""Training on a Dask cluster: wall time with 1 and 2 local workers, against local training.

::

    python benchmarks/dask_training.py [--workers 1 2] [--local] [--exclude-dev]

For each worker count it starts a ``distributed.LocalCluster`` (worker
processes of one thread each) and runs the default recipe's
``vpcore train --scheduler <address> --seed 0`` on the shared corpora
(``--exclude-dev``: without the development speakers, as the development
model). ``--local`` also times ``vpcore train --jobs 2`` without Dask. Each
run's wall time, training summary (seconds per stage) and model fingerprint
are written to ``benchmarks/results/dask_training.json``.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common


def train(out, data, extra, exclude_dev, train_args=()):
    cmd = [sys.executable, "-m", "vpcore.cli", "train",
           "--corpus", str(data / "speechocean762" / "train"),
           "--corpus", str(data / "librispeech-mini" / "train"),
           "--out", str(out), "--seed", "0", "--quiet", *extra, *train_args]
    if exclude_dev:
        cmd += ["--exclude-speakers", str(data / common.DEV_SPEAKERS)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    info = json.loads(subprocess.run([sys.executable, "-m", "vpcore.cli", "info", "--model",
                                      str(out)], check=True, capture_output=True,
                                     text=True).stdout)
    return {"wall_seconds": round(seconds, 1), "fingerprint": info["fingerprint"],
            "training": info["training"]}


def run(args):
    from distributed import LocalCluster

    data = common.data_root(args.root, required=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="vpcore-dask-") as work:
        if args.local:
            row = train(Path(work) / "local.npz", data, ["--jobs", "2"], args.exclude_dev,
                        args.train_args)
            runs.append({"mode": "local, --jobs 2", **row})
            print(f"local --jobs 2: {row['wall_seconds']} s", flush=True)
        for n in args.workers:
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                row = train(Path(work) / f"dask{n}.npz", data,
                            ["--scheduler", cluster.scheduler_address], args.exclude_dev,
                            args.train_args)
            runs.append({"mode": f"Dask LocalCluster, {n} worker(s) x 1 thread", "workers": n,
                         **row})
            print(f"{n} worker(s): {row['wall_seconds']} s", flush=True)
    payload = {
        "benchmark": "dask_training",
        "recipe": "default (C=256, S=200, LDA 150, seed 0)" + (
            f" with {' '.join(args.train_args)}" if args.train_args else "") + (
            ", without the development speakers" if args.exclude_dev else ""),
        "runs": runs,
        "note": "wall time of the whole `vpcore train` process (corpus reading, features, UBM "
                "and total-variability EM, i-vectors, backend); the machine has 2 cores",
    }
    path = common.write_result(args.name, payload, args.out_dir)
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", help="corpus root (default: the shared corpora)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--local", action="store_true", help="also time local --jobs 2 training")
    p.add_argument("--exclude-dev", action="store_true",
                   help="leave the development speakers out (the development model's recipe)")
    p.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                   help="further `vpcore train` options (last on the line)")
    p.add_argument("--name", default="dask_training")
    p.add_argument("--out-dir")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
