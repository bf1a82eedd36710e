"""Replicas on one PostgreSQL: throughput and latency of 1, 2 and 3 service replicas.

::

    bash -c '. .ci/postgres && python benchmarks/replicas.py'      # throwaway PostgreSQL
    python benchmarks/replicas.py --postgres postgresql://user:pass@127.0.0.1/db
                                  [--replicas 1 2 3] [--workers 1] [--threads 4]
                                  [--reference-workers 2] [--clients 8]
                                  [--requests 400] [--seconds 30] [--users 20]

The database is ``--postgres``, else ``$VPCORE_TEST_POSTGRES``. The benchmark
works in a fresh schema of it (dropped at the end). For each replica count n
it starts n service processes (``python -m server``: gunicorn, ``--workers``
worker processes of ``--threads`` threads each) on 127.0.0.1 with
``VPCORE_STORE`` pointing at that schema, enrols ``--users`` users once (three
5-s takes each), warms every replica up, then ``--clients`` client threads send
a fixed mix of requests, spread over the replicas round-robin as a load
balancer would, until ``--requests`` are done or ``--seconds`` have passed:

* 1-v-1 verify (60 %), genuine or impostor claim;
* 1-v-N verify over all groups (30 %);
* enrolment take 1 of a new user (10 %): a write on the shared database.

A reference run, one replica with ``--reference-workers`` workers, shows what
the same cores give without replication. Reports per run: requests/s, verify/s,
latency percentiles (all, per kind), statuses, errors (transport, HTTP other
than 200, an unexpected status), the machine's CPU busy share, and the CPU
seconds used by the PostgreSQL processes and by this client. All processes stop
by themselves; everything listens on 127.0.0.1 only.

Audio: corpus speakers (librispeech-mini) when the shared corpora are present,
synthetic voices otherwise (:func:`benchmarks.common.speech_of_length`).
"""

import argparse
import base64
import datetime
import functools
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common
from benchmarks.common import body
from benchmarks.load import Server  # one service process group on 127.0.0.1

OK = "00000"
KINDS = ("verify_1v1", "verify_1vN", "enroll")
#: statuses a request may legitimately get besides success
EXPECTED = {"enroll": {"22124"}}


# ------------------------------------------------------------------- database ---

def redact(url):
    """``url`` without its password."""
    return re.sub(r"^([a-z]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def with_search_path(url, schema):
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


def postgres_info(url):
    import psycopg

    with psycopg.connect(url) as conn:
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("server_version", "synchronous_commit", "fsync",
                                 "shared_buffers", "max_connections")}
    return {"url": redact(url), **settings}


def _proc_stat(path):
    """(command name, CPU seconds user + system) of one /proc/<pid>/stat, or None."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return text[text.index("(") + 1:text.rindex(")")], seconds


def postgres_cpu_seconds():
    """CPU seconds of every process named ``postgres`` on this machine."""
    stats = (_proc_stat(p) for p in Path("/proc").glob("[0-9]*/stat"))
    return sum(s[1] for s in stats if s is not None and s[0] == "postgres")


def cpu_seconds(pids):
    """CPU seconds of the given processes (those that still exist)."""
    stats = (_proc_stat(f"/proc/{pid}/stat") for pid in pids)
    return sum(s[1] for s in stats if s is not None)


def cpu_times():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


# ---------------------------------------------------------------------- audio ---

def make_voices(n_users, seconds, data=None):
    """``n_users`` lists of 4 WAV base64 strings of one speaker (3 takes, 1 probe)."""
    from vpcore.audio import encode_wav
    from vpcore.corpus import data_root

    root = Path(data) if data else data_root(required=False)
    speakers = []
    if root is not None and (root / "librispeech-mini" / "train").is_dir():
        speakers = sorted(p for p in (root / "librispeech-mini" / "train").iterdir()
                          if p.is_dir())
    voices, description = [], None
    for i in range(n_users):
        speaker = speakers[i % len(speakers)] if speakers else None
        samples, description = common.speech_of_length(4 * seconds, seed=3000 + i, data=root,
                                                       speaker=speaker)
        n = int(seconds * 16000)
        voices.append([base64.b64encode(encode_wav(samples[j * n:(j + 1) * n]))
                       .decode("ascii") for j in range(4)])
    kind = "librispeech-mini speakers" if speakers else "synthetic voices"
    return voices, f"{kind}, {seconds:g} s WAV (e.g. {description})"


# -------------------------------------------------------------------- driving ---

# A request may queue behind the other replicas' work: wait longer than a single service.
post = functools.partial(common.post, timeout=120)


def enrol(url, voices, prefix):
    """Three takes per user through one replica; returns the indices enrolled completely."""
    import requests

    session = requests.Session()
    done, failures = [], []
    for i, takes in enumerate(voices):
        for k in (1, 2, 3):
            _, status, err = post(session, url, "/enroll",
                                  body(takes[k - 1], user_name=f"{prefix}{i:04d}", enroll_num=k))
            if status != OK:
                failures.append({"user": i, "take": k, "status": status, "error": err})
                break
        else:
            done.append(i)
    return done, failures


def drive(urls, voices, enrolled, prefix, n_requests, seconds, clients, seed):
    """``clients`` threads until ``n_requests`` are sent or ``seconds`` have passed; request
    j goes to replica ``j % len(urls)``. Returns (elapsed s, latency, statuses, errors)."""
    import requests

    lock = threading.Lock()
    counter = iter(range(n_requests))
    latency = {k: [] for k in KINDS}
    statuses = {k: {} for k in KINDS}
    errors = []
    deadline = time.monotonic() + seconds
    mix = np.array([0.6, 0.3, 0.1])
    run_id = uuid.uuid4().hex[:4]

    def worker(wid):
        rng = np.random.default_rng([seed, wid])
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                j = next(counter, None)
            if j is None:
                return
            url = urls[j % len(urls)]
            kind = KINDS[int(rng.choice(3, p=mix))]
            speaker = int(rng.integers(len(voices)))
            if kind == "verify_1v1":
                claimed = enrolled[int(rng.integers(len(enrolled)))]
                speaker = claimed if rng.random() < 0.5 else speaker
                payload = body(voices[speaker][3], user_name=f"{prefix}{claimed:04d}")
                ms, status, err = post(session, url, "/verify", payload)
            elif kind == "verify_1vN":
                ms, status, err = post(session, url, "/verify", body(voices[speaker][3]))
            else:
                name = f"n{run_id}{wid:02d}{j:06d}"[:16]
                ms, status, err = post(session, url, "/enroll",
                                       body(voices[speaker][0], user_name=name, enroll_num=1))
            bad = status != OK and status not in EXPECTED.get(kind, ())
            with lock:
                latency[kind].append(ms)
                statuses[kind][status] = statuses[kind].get(status, 0) + 1
                if bad:
                    errors.append({"kind": kind, "status": status,
                                   "error": err or f"unexpected status {status}"})

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latency, statuses, errors


def warm_up(urls, voices, prefix, enrolled, per_replica):
    """A few 1-v-N and 1-v-1 requests per replica (first-request costs, index loads)."""
    import requests

    session = requests.Session()
    for url in urls:
        for i in range(per_replica):
            post(session, url, "/verify", body(voices[i % len(voices)][3]))
            claimed = enrolled[i % len(enrolled)]
            post(session, url, "/verify", body(voices[claimed][3],
                                               user_name=f"{prefix}{claimed:04d}"))


def measure(label, n_replicas, workers, args, model_path, store, voices, enrolled, prefix,
            workdir):
    replicas = [Server(model_path, store, workers, args.threads,
                        workdir / f"{label}-replica{i}.log") for i in range(n_replicas)]
    try:
        t0 = time.monotonic()
        for r in replicas:
            r.wait_ready(timeout=180.0)
        startup = time.monotonic() - t0
        urls = [r.url for r in replicas]
        warm_up(urls, voices, prefix, enrolled, per_replica=2 * workers * args.threads)
        load_before = os.getloadavg()
        pids = [pid for r in replicas for pid in r.pids()]
        busy0, total0 = cpu_times()
        pg0, client0, service0 = postgres_cpu_seconds(), time.process_time(), cpu_seconds(pids)
        elapsed, latency, statuses, errors = drive(urls, voices, enrolled, prefix,
                                                   args.requests, args.seconds, args.clients,
                                                   args.seed)
        busy1, total1 = cpu_times()
        pg1, client1, service1 = postgres_cpu_seconds(), time.process_time(), cpu_seconds(pids)
    finally:
        for r in replicas:
            r.stop()
    every = np.concatenate([np.asarray(v, dtype=float) for v in latency.values()])
    verify = np.concatenate([np.asarray(latency[k], dtype=float)
                             for k in ("verify_1v1", "verify_1vN")])
    result = {
        "label": label,
        "replicas": n_replicas,
        "workers_per_replica": workers,
        "threads_per_worker": args.threads,
        "worker_processes": n_replicas * workers,
        "startup_seconds": round(startup, 2),
        "requests": int(every.size),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(every.size / elapsed, 2),
        "verify_per_s": round(verify.size / elapsed, 2),
        "latency_ms": {"all": common.percentiles(every), "verify": common.percentiles(verify),
                       **{k: common.percentiles(v) for k, v in latency.items()}},
        "statuses": statuses,
        "errors": len(errors),
        "error_samples": errors[:5],
        "machine_cpu_busy": round((busy1 - busy0) / max(1, total1 - total0), 3),
        "service_cpu_seconds": round(service1 - service0, 2),
        "service_cpu_share_of_machine": round((service1 - service0) / elapsed
                                              / (os.cpu_count() or 1), 3),
        "service_cpu_ms_per_request": round(1000.0 * (service1 - service0) / every.size, 2),
        "postgres_cpu_seconds": round(pg1 - pg0, 2),
        "postgres_cpu_ms_per_request": round(1000.0 * (pg1 - pg0) / every.size, 2),
        "client_cpu_seconds": round(client1 - client0, 2),
        "load_average_before": load_before,
    }
    p = result["latency_ms"]["all"]
    print(f"{label}: {result['requests']} requests in {elapsed:.1f} s = "
          f"{result['requests_per_s']:.1f} req/s; p50 {p['p50']:.0f} ms, p99 {p['p99']:.0f} ms;"
          f" errors {len(errors)}; machine CPU busy {result['machine_cpu_busy']:.0%}, of which"
          f" the service {result['service_cpu_share_of_machine']:.0%} "
          f"({result['service_cpu_ms_per_request']:.1f} CPU ms/request), PostgreSQL "
          f"{result['postgres_cpu_ms_per_request']:.2f} CPU ms/request", file=sys.stderr,
          flush=True)
    return result


def run(args):
    import psycopg

    url = args.postgres or os.environ.get("VPCORE_TEST_POSTGRES")
    if not url:
        raise SystemExit("no PostgreSQL: pass --postgres URL or set VPCORE_TEST_POSTGRES "
                         "(bash -c '. .ci/postgres && python benchmarks/replicas.py' starts "
                         "a throwaway one)")
    model_path, source = common.resolve_model(args.model, train_if_missing=False)
    voices, audio = make_voices(args.users, args.seconds_audio, args.root)
    schema = f"vpbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    store = with_search_path(url, schema)
    workdir = Path(tempfile.mkdtemp(prefix="vpcore-replicas-"))
    runs = []
    try:
        prefix = "rb"
        first = Server(model_path, store, 1, args.threads, workdir / "enrol.log")
        try:
            first.wait_ready(timeout=180.0)
            start = time.perf_counter()
            enrolled, failures = enrol(first.url, voices, prefix)
            enrol_seconds = time.perf_counter() - start
        finally:
            first.stop()
        if not enrolled:
            raise RuntimeError(f"no user could be enrolled: {failures[:3]}")
        for n in args.replicas:
            runs.append(measure(f"{n}x{args.workers}", n, args.workers, args, model_path,
                                store, voices, enrolled, prefix, workdir))
        if args.reference_workers:
            runs.append(measure(f"1x{args.reference_workers}", 1, args.reference_workers, args,
                                model_path, store, voices, enrolled, prefix, workdir))
        info = postgres_info(url)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for log in sorted(workdir.glob("*.log")):
            log.unlink()
        workdir.rmdir()
    base = runs[0]["requests_per_s"]
    payload = {
        "benchmark": "replicas",
        "model": {"path": common.relative(model_path), "source": source},
        "postgres": info,
        "audio": audio,
        "users": {"attempted": len(voices), "enrolled": len(enrolled),
                  "enrol_failures": failures, "enrol_seconds": round(enrol_seconds, 2)},
        "settings": {"clients": args.clients, "requests_limit": args.requests,
                     "seconds_limit": args.seconds, "threads_per_worker": args.threads,
                     "mix": dict(zip(KINDS, (0.6, 0.3, 0.1))),
                     "routing": "round-robin per request over the replicas",
                     "host": "127.0.0.1 (client, replicas and PostgreSQL share the machine)"},
        "runs": runs,
        "speedup_vs_first": {r["label"]: round(r["requests_per_s"] / base, 2) for r in runs},
    }
    name = args.name or f"replicas-{datetime.date.today().isoformat()}"
    path = common.write_result(name, payload, args.out_dir)
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--postgres", help="PostgreSQL URL (default: $VPCORE_TEST_POSTGRES)")
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--root", help="corpus root (default: the shared corpora, if present)")
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica (1)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (4)")
    p.add_argument("--reference-workers", type=int, default=2,
                   help="also run 1 replica with this many workers (0: no)")
    p.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    p.add_argument("--requests", type=int, default=400, help="request limit per run (400)")
    p.add_argument("--seconds", type=float, default=30.0, help="time limit per run (30 s)")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds-audio", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="result name (default: replicas-<date>)")
    p.add_argument("--out-dir")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
