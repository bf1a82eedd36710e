"""Load test of the real HTTP service: throughput, latency and errors under concurrent clients.

::

    python benchmarks/load.py [--model m.npz] [--users 20] [--requests 600] [--seconds 60]
                              [--clients 8] [--workers 2] [--threads 4]

Starts the service (``python -m server``, i.e. ``vpcore-server``: gunicorn with
its gthread workers) on 127.0.0.1 on a free port, with a temporary SQLite store
(``VPCORE_STORE``) and the model (``VPCORE_MODEL``); enrols ``--users`` users
with three takes each; then ``--clients`` threads (``requests`` sessions) send
a fixed mix of requests until ``--requests`` are done or ``--seconds`` have
passed, whichever comes first:

* 1-v-1 verify (``--mix`` share, default 60 %), genuine or impostor claim;
* 1-v-N verify over all groups (default 30 %);
* enrolment take 1 of a new user (default 10 %).

By default the clients run in a closed loop (each sends its next request when
the last is answered), which measures the saturated throughput; latency then
includes queueing behind the other clients. ``--rate R`` paces the requests at
R per second instead, which measures the latency at that offered load.

Audio: 5-second WAVs (``--seconds-audio``) of corpus speakers (speechocean762
utterances joined) when the shared corpora are present, synthetic voices
otherwise. Reports requests/s, verify requests/s, latency percentiles per kind,
status counts and errors (transport failures, HTTP status other than 200,
status ``22151``, or a status the request should not get), then stops the
server (its own process group) and deletes the temporary store.
Targets: saturated, >= 150 verify/s with 5-s audio on 2 cores with verify p99 <= 150 ms;
paced (``--rate``), verify p99 <= 200 ms; no errors.
"""

import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common
from benchmarks.common import body, post

TARGETS = {"verify_per_s": 150.0, "p99_ms": 150.0, "errors": 0}
#: a paced run measures latency at an offered rate, not throughput
PACED_TARGETS = {"verify_per_s": 0.0, "p99_ms": 200.0, "errors": 0}
OK = "00000"
#: statuses a request may legitimately get besides success
EXPECTED = {"enroll_refused": {"22124"}}


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The service in its own process group on 127.0.0.1."""

    def __init__(self, model_path, store, workers, threads, log_path, command=None,
                 extra_env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({"VPCORE_HOST": "127.0.0.1", "VPCORE_PORT": str(self.port),
                    "VPCORE_STORE": str(store), "VPCORE_MODEL": str(model_path),
                    "VPCORE_WORKERS": str(workers), "VPCORE_THREADS": str(threads),
                    "VPCORE_LOG_LEVEL": "WARNING"})
        env.update(extra_env or {})
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(command or [sys.executable, "-m", "server"], env=env,
                                     cwd=str(common.ROOT), stdout=self.log, stderr=self.log,
                                     start_new_session=True)

    def wait_ready(self, timeout=120.0):
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}")
            try:
                if requests.get(self.url + "/health", timeout=2).json()["status"] == OK:
                    return time.monotonic()
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout} s")

    def pids(self):
        """The gunicorn master and its workers."""
        return [self.proc.pid] + common.children_pids(self.proc.pid)

    def cpu(self):
        """CPU seconds used so far by the master and each worker."""
        return {str(p): common.cpu_seconds(p) for p in self.pids()}

    def rss(self):
        """RSS of the master and of each worker (bytes)."""
        return {str(p): common.rss_bytes(p) for p in self.pids()}

    def stop(self):
        """SIGTERM the process group, then SIGKILL whatever is left of it."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


# ------------------------------------------------------------------------ audio ---

def corpus_voices(root, n_users, seconds, seed=0):
    """{user index: [4 WAV base64 strings: 3 enrolment takes, 1 probe]} from speechocean762."""
    from vpcore.audio import load_file

    train = Path(root) / "speechocean762" / "train"
    speakers = sorted(p for p in train.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(speakers), size=min(n_users, len(speakers)), replace=False)
    voices = []
    for i in chosen:
        files = sorted(speakers[i].glob("*.flac"))
        joined = np.concatenate([load_file(f) for f in files])  # 8 utterances, ~30 s
        # 4 disjoint stretches of the speaker's speech where possible.
        n = int(seconds * 16000)
        starts = np.linspace(0, max(0, len(joined) - n), 4).astype(int)
        voices.append([_b64(common.fit_length(joined[s:s + n] if len(joined) >= s + n
                                              else joined[s:], seconds)) for s in starts])
    return voices, f"speechocean762 speakers, {seconds:g} s WAV"


def synthetic_voices(n_users, seconds, seed=0):
    from vpcore.synth import SyntheticSpeaker, synthesize

    voices = []
    for i in range(n_users):
        spk = SyntheticSpeaker.from_seed(2000 + i, random_state=seed)
        voices.append([_b64(synthesize(spk, duration=seconds, random_state=u))
                       for u in range(4)])
    return voices, f"synthetic voices, {seconds:g} s WAV"


def _b64(samples):
    from vpcore.audio import encode_wav

    return base64.b64encode(encode_wav(samples)).decode("ascii")


# ---------------------------------------------------------------------- driving ---

class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {}
        self.statuses = {}
        self.errors = []

    def add(self, kind, ms, status, error=None):
        with self.lock:
            self.latency.setdefault(kind, []).append(ms)
            self.statuses.setdefault(kind, {}).setdefault(status, 0)
            self.statuses[kind][status] += 1
            if error:
                self.errors.append({"kind": kind, "status": status, "error": error[:300]})


def enrol_users(url, voices, prefix):
    """Three takes per user; returns the names enrolled completely and refusal counts."""
    import requests

    session = requests.Session()
    done, refused, failures = [], 0, []
    for i, takes in enumerate(voices):
        name = f"{prefix}{i:04d}"
        ok = True
        for k in (1, 2, 3):
            _, status, err = post(session, url, "/enroll",
                                  body(takes[k - 1], user_name=name, enroll_num=k))
            if status != OK:
                ok = False
                if status == "22124":
                    refused += 1
                else:
                    failures.append({"user": name, "take": k, "status": status, "error": err})
                break
        if ok:
            done.append(i)
    return done, refused, failures


def drive(url, voices, enrolled, prefix, n_requests, seconds, clients, mix, seed, rec,
          rate=None):
    """Concurrent clients until ``n_requests`` are sent or ``seconds`` have passed.

    Without ``rate`` every client sends its next request as soon as the last one is
    answered (closed loop: the service runs saturated, latency includes queueing).
    With ``rate`` (requests/s over all clients) request j is not sent before
    ``start + j / rate`` (paced: latency at that offered load).
    """
    import requests

    counter = iter(range(n_requests))
    counter_lock = threading.Lock()
    t_start = time.monotonic()
    deadline = t_start + seconds
    kinds = ("verify_1v1", "verify_1vN", "enroll")
    p = np.asarray(mix, dtype=float) / np.sum(mix)

    def worker(wid):
        rng = np.random.default_rng([seed, wid])
        session = requests.Session()
        while time.monotonic() < deadline:
            with counter_lock:
                j = next(counter, None)
            if j is None:
                return
            if rate:
                wait = t_start + j / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            kind = kinds[int(rng.choice(3, p=p))]
            if kind == "verify_1v1":
                claimed = enrolled[int(rng.integers(len(enrolled)))]
                speaker = claimed if rng.random() < 0.5 else int(rng.integers(len(voices)))
                payload = body(voices[speaker][3], user_name=f"{prefix}{claimed:04d}")
                ms, status, err = post(session, url, "/verify", payload)
                bad = status != OK
            elif kind == "verify_1vN":
                speaker = int(rng.integers(len(voices)))
                ms, status, err = post(session, url, "/verify", body(voices[speaker][3]))
                bad = status != OK
            else:
                speaker = int(rng.integers(len(voices)))
                name = f"{prefix}n{wid:02d}{j:05d}"[:16]
                ms, status, err = post(session, url, "/enroll",
                                       body(voices[speaker][0], user_name=name, enroll_num=1))
                bad = status != OK
            rec.add(kind, ms, status, (err or f"unexpected status {status}") if bad else None)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def run(args):
    from vpcore.corpus import data_root

    model_path, source = common.resolve_model(args.model)
    root = Path(args.root) if args.root else data_root()
    if root is not None and (root / "speechocean762" / "train").is_dir() and not args.synthetic:
        voices, audio = corpus_voices(root, args.users, args.seconds_audio, args.seed)
    else:
        voices, audio = synthetic_voices(args.users, args.seconds_audio, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="vpcore-load-"))
    log_path = workdir / "server.log"
    extra = {}
    if args.consistency_threshold is not None:
        extra["VPCORE_CONSISTENCY_THRESHOLD"] = str(args.consistency_threshold)
    server = Server(model_path, workdir / "store.sqlite3", args.workers, args.threads, log_path,
                    extra_env=extra)
    rec = Recorder()
    try:
        t0 = time.monotonic()
        ready_at = server.wait_ready()
        startup = ready_at - t0
        prefix = "ld"
        start = time.perf_counter()
        enrolled, refused, failures = enrol_users(server.url, voices, prefix)
        enrol_seconds = time.perf_counter() - start
        if not enrolled:
            raise RuntimeError(f"no user could be enrolled: {failures[:3]}")
        cpu_before, client_before = server.cpu(), time.process_time()
        machine_before = common.machine_busy_seconds()
        elapsed = drive(server.url, voices, enrolled, prefix, args.requests, args.seconds,
                        args.clients, args.mix, args.seed, rec, rate=args.rate)
        client_cpu = time.process_time() - client_before
        machine_busy = common.machine_busy_seconds() - machine_before
        cpu_after = server.cpu()
        server_cpu = sum((cpu_after[p] or 0) - (cpu_before.get(p) or 0) for p in cpu_after)
        rss = server.rss()
        log_tail = log_path.read_bytes()[-2000:].decode(errors="replace")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    lat_all = np.concatenate([np.asarray(v) for v in rec.latency.values()])
    verify_n = sum(len(rec.latency.get(k, [])) for k in ("verify_1v1", "verify_1vN"))
    verify_lat = np.concatenate([np.asarray(rec.latency.get(k, []))
                                 for k in ("verify_1v1", "verify_1vN")])
    n_errors = len(rec.errors)
    targets = PACED_TARGETS if args.rate else TARGETS
    payload = {
        "benchmark": "load",
        "model": {"path": common.relative(model_path), "source": source},
        "server": {"command": "python -m server (gunicorn, gthread)", "workers": args.workers,
                   "threads": args.threads, "host": "127.0.0.1", "startup_seconds": startup,
                   "consistency_threshold": args.consistency_threshold,
                   "rss_bytes": rss},
        "audio": audio,
        "users": {"attempted": len(voices), "enrolled": len(enrolled),
                  "refused_consistency": refused, "enrol_failures": failures,
                  "enrol_seconds": round(enrol_seconds, 2)},
        "settings": {"clients": args.clients, "requests_limit": args.requests,
                     "paced_rate_per_s": args.rate,
                     "seconds_limit": args.seconds, "mix": dict(zip(
                         ("verify_1v1", "verify_1vN", "enroll"), args.mix))},
        "cpu": {"server_seconds": round(server_cpu, 2), "client_seconds": round(client_cpu, 2),
                "server_cores_busy": round(server_cpu / elapsed, 2),
                "client_cores_busy": round(client_cpu / elapsed, 2),
                "other_processes_cores_busy": round(
                    max(0.0, machine_busy - server_cpu - client_cpu) / elapsed, 2),
                "server_ms_per_request": round(1000 * server_cpu / max(lat_all.size, 1), 1),
                "note": "the load generator runs on the same cores as the service"},
        "requests": int(lat_all.size),
        "seconds": round(elapsed, 3),
        "requests_per_s": lat_all.size / elapsed,
        "verify_per_s": verify_n / elapsed,
        "latency_ms": {"all": common.percentiles(lat_all), "verify": common.percentiles(verify_lat),
                       **{k: common.percentiles(v) for k, v in rec.latency.items()}},
        "statuses": rec.statuses,
        "errors": n_errors,
        "error_samples": rec.errors[:10],
        "targets": targets,
        "meets_targets": {
            "verify_per_s": verify_n / elapsed >= targets["verify_per_s"],
            "p99_ms": common.percentiles(verify_lat)["p99"] is not None
            and common.percentiles(verify_lat)["p99"] <= targets["p99_ms"],
            "errors": n_errors == 0},
        "server_log_tail": log_tail if n_errors else "",
    }
    path = common.write_result(args.name, payload, args.out_dir)
    if not args.quiet:
        lv = payload["latency_ms"]["verify"]
        print(f"{payload['requests']} requests in {elapsed:.1f} s: "
              f"{payload['requests_per_s']:.1f} req/s, {payload['verify_per_s']:.1f} verify/s; "
              f"verify p50 {lv['p50']:.0f} p95 {lv['p95']:.0f} p99 {lv['p99']:.0f} ms; "
              f"errors {n_errors}; enrolled {len(enrolled)}/{len(voices)}")
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--root", help="corpus root (default: the shared corpora)")
    p.add_argument("--synthetic", action="store_true", help="synthetic voices even with corpora")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--requests", type=int, default=600, help="request count limit (600)")
    p.add_argument("--seconds", type=float, default=60.0, help="time limit (60 s)")
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    p.add_argument("--rate", type=float,
                   help="pace requests at this many per second over all clients (default: "
                        "closed loop, as fast as the service answers)")
    p.add_argument("--mix", type=float, nargs=3, default=[0.6, 0.3, 0.1],
                   metavar=("V1V1", "V1VN", "ENROLL"))
    p.add_argument("--seconds-audio", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (4)")
    p.add_argument("--consistency-threshold", type=float,
                   help="VPCORE_CONSISTENCY_THRESHOLD of the server (default: the service's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="load")
    p.add_argument("--out-dir")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
