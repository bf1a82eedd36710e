"""Code shared by the benchmark scripts: run environment, result files, models, audio.

Every benchmark writes one JSON document under ``benchmarks/results/`` (or
``--out-dir``) holding its figures and the environment they were measured in
(:func:`environment`): commit, date, CPU model and cores, Python and library
versions, and the BLAS configuration that numpy/scipy actually use.
"""

import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
#: Trained models and per-file caches of the benchmarks (git-ignored ``/cache/``).
CACHE_DIR = ROOT / "cache" / "bench"
#: The development model: the shipped recipe (one augmented copy per utterance) without
#: the development speakers.
DEV_MODEL = CACHE_DIR / "dev_model_augment1_both.npz"

#: The development protocol of the shared corpora (paths relative to the data root).
DEV_TRIALS = "trials/speechocean762-dev.trials"
DEV_ENROLL = "trials/speechocean762-dev.enroll"
DEV_SPEAKERS = "trials/speechocean762-dev.speakers"
SPEAKERS_PSV = "speechocean762/speakers.psv"
CHILD_AGE = 13

#: Reference figures of the development protocol, from ../shared/data/README.md
#: (measured on this machine by the data's providers; not vpcore).
DEV_REFERENCES = [
    {"system": "GE2E d-vector (deep learning, pretrained on thousands of hours), cosine vs "
               "mean of 3 enrolment embeddings", "eer": 0.0382, "min_dcf_0.01": 0.420,
     "source": "shared/data/README.md"},
    {"system": "naive GMM-UBM: 20 MFCC + deltas, CMN, 128-component UBM on librispeech-mini, "
               "MAP means, frame-average LLR", "eer": 0.0538, "min_dcf_0.01": 0.644,
     "source": "shared/data/README.md"},
]


# ---------------------------------------------------------------------- environment ---

def _git(*args, strip=True):
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        if out.returncode != 0:
            return None
        return out.stdout.strip() if strip else out.stdout
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module):
    try:
        mod = __import__(module)
        return getattr(mod, "__version__", None)
    except ImportError:
        return None


def blas_info():
    """The thread pools (BLAS/OpenMP) numpy and scipy use, as threadpoolctl reports them."""
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS too)
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer",
            "architecture")
    return [{k: v for k, v in pool.items() if k in keep} for pool in threadpool_info()]


def environment():
    """Where and with what a figure was measured (JSON-serialisable)."""
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "vpcore", "server",
                  "benchmarks", "pyproject.toml", ":(exclude)benchmarks/results", strip=False)
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "commit": _git("rev-parse", "HEAD"),
        # tracked files of the measured code that differ from the commit (the worktree is shared)
        "worktree_modified": ([line[3:] for line in status.splitlines() if line.strip()]
                              if status is not None else None),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "load_average": load,
        "memory_total_bytes": _meminfo("MemTotal"),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "vpcore_code_key": _code_key(),
        "versions": {m: _version(m) for m in ("vpcore", "numpy", "scipy", "sklearn", "librosa",
                                                "soundfile", "threadpoolctl")},
        "blas": blas_info(),
    }


def _code_key():
    try:
        import vpcore
    except ImportError:
        return None
    return vpcore.code_key()


def _meminfo(key):
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_bytes(pid="self", key="VmRSS"):
    """Resident set size of a process (``VmHWM`` for its peak), from /proc; None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_seconds(pid="self"):
    """User + system CPU time of a process, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_seconds():
    """CPU seconds all processes of the machine have been busy (non-idle), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def children_pids(pid):
    """Direct and indirect children of a process (Linux /proc)."""
    found = []
    frontier = [int(pid)]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(p) for p in task.read_text().split()]
            except OSError:
                continue
            found += kids
            frontier += kids
    return found


# ---------------------------------------------------------------------- results ---

def write_result(name, payload, out_dir=None):
    """Write ``payload`` (+ environment) as ``<out_dir>/<name>.json`` atomically; returns the path."""
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": payload.pop("benchmark", name), "name": name,
           "environment": environment(), **payload}
    from vpcore.persistence import atomic_write

    return atomic_write(out_dir / f"{name}.json",
                        json.dumps(doc, indent=2, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def display_path(path):
    """A path for result files: ``$VPCORE_DATA/...`` inside the corpora, else project-relative."""
    from vpcore.corpus import data_root as find

    root = find()
    if root is not None:
        try:
            return "$VPCORE_DATA/" + str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return relative(path)


def relative(path, start=None):
    """``path`` relative to ``start`` (default: the project root) when inside it."""
    path = Path(path).resolve()
    start = Path(start).resolve() if start else ROOT
    try:
        return str(path.relative_to(start))
    except ValueError:
        return str(path)


def percentiles(values, qs=(50, 90, 95, 99)):
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return {f"p{q}": None for q in qs}
    return {f"p{q}": float(np.percentile(values, q)) for q in qs}


def time_calls(fn, repeat, warmup=1):
    """Run ``fn`` ``warmup`` + ``repeat`` times; returns the ``repeat`` durations in ms."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(1000.0 * (time.perf_counter() - start))
    return out


def time_calls_cpu(fn, repeat, warmup=1):
    """Like :func:`time_calls`, also the thread's CPU time: ``(wall_ms, cpu_ms)`` lists."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(1000.0 * (time.thread_time() - start_cpu))
        wall.append(1000.0 * (time.perf_counter() - start))
    return wall, cpu


def summary_ms(samples):
    s = np.asarray(samples, dtype=float)
    return {"median": float(np.median(s)), "mean": float(s.mean()), "min": float(s.min()),
            "p90": float(np.percentile(s, 90)), "n": int(s.size)}


# --------------------------------------------------------------------------- HTTP ---

def body(data, **fields):
    """A request body of the voiceprint API carrying base64 WAV ``data``."""
    return {"format": "wav", "sample_rate": 16000, "data": data, **fields}


def post(session, url, path, payload, timeout=60):
    """POST JSON with a ``requests`` session.

    Returns ``(latency ms, status, error text or None)``: the body's
    ``status`` field, ``"http<code>"`` for another HTTP status, or
    ``"transport"`` when the request failed.
    """
    import requests

    start = time.perf_counter()
    try:
        r = session.post(url + path, json=payload, timeout=timeout)
        ms = 1000.0 * (time.perf_counter() - start)
        if r.status_code != 200:
            return ms, f"http{r.status_code}", r.text[:200]
        return ms, r.json().get("status", "?"), None
    except (requests.RequestException, ValueError) as exc:
        return 1000.0 * (time.perf_counter() - start), "transport", repr(exc)[:200]


# ------------------------------------------------------------------------- models ---

def data_root(arg=None, required=True):
    from vpcore.corpus import data_root as find

    if arg:
        path = Path(arg)
        if not path.is_dir():
            raise SystemExit(f"corpus root {path} is not a folder")
        return path
    return find(required=required)


def train_dev_model(out=DEV_MODEL, data=None, jobs=2, seed=0, quiet=False):
    """Train the development model (dev speakers excluded) with the documented recipe.

    ``vpcore train --corpus $DATA/speechocean762/train --corpus $DATA/librispeech-mini/train
    --exclude-speakers $DATA/trials/speechocean762-dev.speakers --out <out> --jobs 2 --seed 0
    --augment 1`` (and the CLI's default ``--in-domain-cohort both``)
    """
    data = data_root(data)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "vpcore.cli", "train",
           "--corpus", str(data / "speechocean762" / "train"),
           "--corpus", str(data / "librispeech-mini" / "train"),
           "--exclude-speakers", str(data / DEV_SPEAKERS),
           "--out", str(out), "--jobs", str(jobs), "--seed", str(seed), "--augment", "1"]
    if quiet:
        cmd.append("--quiet")
    print("training the development model:", " ".join(cmd), file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"trained in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return out


def resolve_model(arg=None, train_if_missing=True):
    """The model a benchmark uses: ``arg``; else the shipped default; else the dev model."""
    from vpcore.model import default_model_path

    if arg:
        return Path(arg), "given"
    shipped = default_model_path()
    if shipped.is_file():
        return shipped, "shipped default model"
    if not DEV_MODEL.is_file():
        if not train_if_missing:
            raise SystemExit(f"no model: pass --model, install {shipped}, or train {DEV_MODEL}")
        train_dev_model()
    warn_if_other_code(DEV_MODEL)
    return DEV_MODEL, "development model (shipped default model not installed)"


def warn_if_other_code(path):
    """Say so when a cached model was trained by other vpcore code than the running one.

    The result is still valid for the model it names (its fingerprint is in
    every result file); retrain (delete the file) to measure the current code.
    """
    import vpcore
    from vpcore.model import load_model

    trained_by = load_model(path).training_summary_.get("code")
    if trained_by != vpcore.code_key():
        print(f"note: {path} was trained by vpcore code {trained_by or 'unknown'}, this is "
              f"{vpcore.code_key()}; delete it to retrain with the current code",
              file=sys.stderr)


def model_info(model, path):
    path = Path(path)
    return {
        "path": relative(path),
        "file_bytes": path.stat().st_size if path.is_file() else None,
        "fingerprint": model.fingerprint,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None,
        "options": model.saved_options(),
        "training": getattr(model, "training_summary_", {}),
    }


# -------------------------------------------------------------------------- audio ---

def path_seed(path):
    """A 32-bit seed derived from a file path (the same file gets the same draws)."""
    return int(hashlib.sha256(str(path).encode()).hexdigest()[:8], 16)


def cached_array(cache_dir, key, compute):
    """``compute()`` (an array or None) stored under a hash of the JSON ``key``.

    None is stored as an empty array and read back as None, so a file with too
    little speech is not computed again.
    """
    path = Path(cache_dir) / (hashlib.sha256(json.dumps(key, sort_keys=True).encode())
                              .hexdigest()[:24] + ".npy")
    if path.is_file():
        a = np.load(path, allow_pickle=False)
        return None if a.size == 0 else a
    a = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.zeros((0, 0), np.float32) if a is None else a)
    return a


def write_synthetic_corpus(root, n_speakers=4, n_utterances=4, duration=(3.5, 4.5), seed=0):
    """Write a seeded synthetic corpus ``<root>/<speaker>/<utt>.wav``; returns {speaker: [rel paths]}.

    For smoke runs of the benchmarks where the real corpora are not at hand.
    """
    from vpcore.audio import encode_wav
    from vpcore.synth import synthesize_corpus

    root = Path(root)
    layout = {}
    for spk, utt, samples in synthesize_corpus(n_speakers, n_utterances, duration=duration,
                                              random_state=seed):
        folder = root / spk
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{utt}.wav").write_bytes(encode_wav(samples))
        layout.setdefault(spk, []).append(f"{spk}/{utt}.wav")
    return layout


def fit_length(samples, seconds, sample_rate=16000):
    """Repeat or cut a waveform to exactly ``seconds``."""
    n = int(round(seconds * sample_rate))
    reps = int(np.ceil(n / len(samples)))
    return np.tile(samples, reps)[:n].astype(np.float32)


def speech_of_length(seconds, seed=0, data=None, speaker=None):
    """A waveform of ``seconds``: a corpus speaker's utterances joined when the corpora are
    present (librispeech-mini, else speechocean762), synthetic speech otherwise.

    Returns (samples, description).
    """
    from vpcore.audio import load_file
    from vpcore.corpus import data_root as find

    root = Path(data) if data else find()
    if root is not None and (root / "librispeech-mini" / "train").is_dir():
        rng = np.random.default_rng(seed)
        speakers = sorted(p for p in (root / "librispeech-mini" / "train").iterdir() if p.is_dir())
        folder = speaker or speakers[int(rng.integers(len(speakers)))]
        parts = [load_file(f) for f in sorted(Path(folder).glob("*.flac"))]
        joined = np.concatenate(parts)
        return fit_length(joined, seconds), f"librispeech-mini {Path(folder).name}"
    from vpcore.synth import SyntheticSpeaker, synthesize

    return (synthesize(SyntheticSpeaker.from_seed(seed), duration=seconds, random_state=seed),
            f"synthetic voice {seed}")


def gallery_parser(doc, name, sizes, real_voices):
    """The options the gallery benchmarks (scale, index_refresh, service_1vn) share."""
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--root", help="corpus root for the real enrolments (default: shared corpora)")
    p.add_argument("--sizes", type=int, nargs="+", default=sizes)
    p.add_argument("--real-voices", type=int, default=real_voices)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=name)
    p.add_argument("--out-dir")
    p.add_argument("--quiet", action="store_true")
    return p
