"""Helpers of the HTTP service tests (imported by conftest.py and the test modules)."""

import base64
import dataclasses
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "server" / "openapi.json"

#: every status of the contract's table, and 22137 of the verification guard (off by
#: default; README "Security")
STATUSES = {"00000", "22111", "22121", "22123", "22124", "22131", "22132", "22133", "22134",
            "22135", "22136", "22137", "22151", "22152"}

UTTERANCE_SECONDS = 3.5


class Voices:
    """Synthetic voices the small model separates well; audio is cached.

    ``voices.wav(i, u)`` is base64 of a WAV of voice ``i``, utterance ``u``
    (utterances 0, 1, 2 are the enrolment takes the voices were picked with,
    3 and 4 probes).
    """

    def __init__(self, seeds):
        self.seeds = list(seeds)

    def __len__(self):
        return len(self.seeds)

    @functools.lru_cache(maxsize=None)
    def samples(self, i, utterance, duration=UTTERANCE_SECONDS):
        from vpcore.synth import SyntheticSpeaker, synthesize

        return synthesize(SyntheticSpeaker.from_seed(self.seeds[i]), duration=duration,
                          random_state=utterance)

    @functools.lru_cache(maxsize=None)
    def received(self, i, utterance, duration=UTTERANCE_SECONDS):
        """The waveform the service decodes from :meth:`wav` (int16-quantised)."""
        from vpcore.audio import decode_bytes

        return decode_bytes(base64.b64decode(self.wav(i, utterance, duration)), "wav")

    @functools.lru_cache(maxsize=None)
    def wav(self, i, utterance, duration=UTTERANCE_SECONDS):
        from vpcore.synth import to_wav_bytes

        return b64(to_wav_bytes(self.samples(i, utterance, duration)))

    @functools.lru_cache(maxsize=None)
    def pcm(self, i, utterance, duration=UTTERANCE_SECONDS):
        from vpcore.synth import to_pcm_bytes

        return b64(to_pcm_bytes(self.samples(i, utterance, duration)))


def b64(data):
    return base64.b64encode(data).decode("ascii")


def wav_bytes(samples, sample_rate=16000, channels=1, sampwidth=2):
    """A RIFF/WAVE file of any layout (for the constraint tests): ``samples`` on every channel."""
    from vpcore.audio import encode_wav

    x = np.asarray(samples, dtype=np.float64)
    return encode_wav(x if channels == 1 else np.repeat(x[:, None], channels, axis=1),
                      sample_rate, sampwidth)


def tone(seconds, sample_rate=16000):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return 0.3 * np.sin(2 * np.pi * 220.0 * t)


def enroll_body(user_name, k, data, **extra):
    body = {"format": "wav", "sample_rate": 16000, "user_name": user_name, "enroll_num": k,
            "data": data}
    body.update(extra)
    return body


def verify_body(data, **extra):
    body = {"format": "wav", "sample_rate": 16000, "data": data}
    body.update(extra)
    return body


@dataclasses.dataclass(frozen=True)
class Secured:
    """The API token and the store key file of a secured run."""

    token: str
    key_path: str

    @property
    def env(self):
        """The service's environment variables."""
        return {"VPCORE_API_TOKEN": self.token, "VPCORE_STORE_KEY": self.key_path}

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def rows(self):
        """The store key's cipher, to read the store's raw rows."""
        from server.store import RowCipher, read_key

        return RowCipher(read_key(self.key_path))


def server_env(security):
    """The environment variables of a service process run with ``security`` (None: open)."""
    return {} if security is None else security.env


def rows_of(security):
    """What opens the raw rows of a store written with ``security`` (None: open)."""
    from server.store import PlainRows

    return PlainRows() if security is None else security.rows()


def client_session(security):
    """A ``requests`` session that sends the token of ``security`` (None: no token)."""
    session = requests.Session()
    if security is not None:
        session.headers.update(security.headers)
    return session


class Api:
    """Thin client over Flask's test client that checks the envelope of every response."""

    def __init__(self, app, token=None):
        self.app = app
        self.client = app.test_client()
        if token is not None:  # sent with every request
            self.client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        self.store = app.extensions["vpcore"]._store

    def _check(self, response):
        assert response.mimetype == "application/json", response.data[:200]
        body = response.get_json()
        assert_envelope(body)
        assert response.headers["X-Task-Id"] == body["task_id"]
        return body

    def post(self, path, body=None, raw=None, expect_http=200, **kwargs):
        if raw is None:
            response = self.client.post(path, json=body, **kwargs)
        else:
            response = self.client.post(path, data=raw, **kwargs)
        assert response.status_code == expect_http, (response.status_code, response.data[:300])
        return self._check(response)

    def get(self, path, expect_http=200, **kwargs):
        response = self.client.get(path, **kwargs)
        assert response.status_code == expect_http, (response.status_code, response.data[:300])
        return self._check(response)

    def enroll(self, user_name, k, data, **extra):
        return self.post("/enroll", enroll_body(user_name, k, data, **extra))

    def verify(self, data, **extra):
        return self.post("/verify", verify_body(data, **extra))

    def check(self, user_name):
        return self.post("/checkUser", {"user_name": user_name})

    def enroll_fully(self, user_name, voices, voice, group_id=None, utterances=(0, 1, 2)):
        extra = {} if group_id is None else {"group_id": group_id}
        for k, u in zip((1, 2, 3), utterances):
            body = self.enroll(user_name, k, voices.wav(voice, u), **extra)
            assert body["status"] == "00000", body


def assert_envelope(body):
    assert isinstance(body, dict), body
    assert list(body) == ["task_id", "status", "message", "data"], body
    task_id = body["task_id"]
    assert isinstance(task_id, str) and len(task_id) == 36 and task_id[14] == "4", body
    assert body["status"] in STATUSES, body
    assert isinstance(body["message"], str) and body["message"], body


def call(session, server, path, body=None, timeout=30):
    """GET (no ``body``) or POST JSON to a running server; returns the checked envelope.

    The answer must be HTTP 200, JSON, a valid envelope and never an internal error.
    """
    if body is None:
        response = session.get(server.url + path, timeout=timeout)
    else:
        response = session.post(server.url + path, json=body, timeout=timeout)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json"
    data = response.json()
    assert_envelope(data)
    assert data["status"] != "22151", data
    return data


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real service process (gunicorn via ``python -m server``) on 127.0.0.1."""

    def __init__(self, store, model_path, workers=2, threads=4, log_path=None,
                 command=None, extra_env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({
            "VPCORE_HOST": "127.0.0.1", "VPCORE_PORT": str(self.port),
            "VPCORE_STORE": str(store), "VPCORE_MODEL": str(model_path),
            "VPCORE_WORKERS": str(workers), "VPCORE_THREADS": str(threads),
            "VPCORE_LOG_LEVEL": "INFO",
        })
        env.update(extra_env or {})
        self.log_path = log_path
        self._log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "server"], env=env, cwd=str(ROOT),
            stdout=self._log, stderr=self._log, start_new_session=True,
        )

    def wait_ready(self, timeout=120.0):
        """Wait until /health answers 00000 (generous: CI machines can be busy)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server on port {self.port} exited with "
                                   f"{self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "/health", timeout=5)
                last = r.text[:500]
                if r.json()["status"] == "00000":
                    return self
            except (requests.RequestException, ValueError) as exc:
                last = repr(exc)[:500]
            time.sleep(0.1)
        raise RuntimeError(f"server on port {self.port} not ready after {timeout} s; last "
                           f"health answer: {last}; log:\n{self.log_tail()}")

    def log_tail(self, n=6000):
        if not self.log_path:
            return ""
        return Path(self.log_path).read_bytes()[-n:].decode(errors="replace")

    def kill(self, sig=signal.SIGKILL):
        """Signal the whole process group (gunicorn master and workers)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        finally:
            if self._log is not subprocess.DEVNULL:
                self._log.close()

    def stop(self):
        """End the server (tests need no graceful shutdown: the store is crash-safe)."""
        self.kill(signal.SIGKILL)


class DotGallery:
    """A stand-in for vpcore's Gallery on dot products: ``confidence = sigmoid(V @ probe)``,
    best first, ties by row (what the index's bookkeeping tests need)."""

    def __init__(self, V):
        self.V = V

    def search(self, take, top_n, rows=None):
        rows = np.arange(len(self.V)) if rows is None else rows
        llr = self.V[rows] @ take
        best = np.lexsort((rows, -llr))[:top_n]
        return rows[best], llr[best], 1.0 / (1.0 + np.exp(-llr[best]))


def run_clients(worker, n_threads, timeout):
    """Run ``worker(t)`` for ``t`` in ``range(n_threads)`` on client threads; fail the test
    if a thread is still running after ``timeout`` seconds or any raised."""
    failures = []

    def guarded(t):
        try:
            worker(t)
        except BaseException as exc:  # reported by the main thread
            failures.append((t, exc))

    threads = [threading.Thread(target=guarded, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), "client threads hung"
    assert not failures, failures


class ContendedEnrolment:
    """One client thread's attempts at enrolling a user that several threads enrol at once.

    Each thread sends the take it believes comes next and follows the answer: a success
    moves it on, 22132 tells it how many takes the user really has, 22131 that someone
    completed the enrolment. Any other answer fails the test.

    Parameters
    ----------
    user_name : str
    voices : Voices
    voice : int
        Which voice's utterances 0, 1, 2 are the takes.
    """

    def __init__(self, user_name, voices, voice=0):
        self.user_name, self.voices, self.voice = user_name, voices, voice
        self.next_take, self.done = 1, False

    def attempt(self, send):
        """Send the next take with ``send(body) -> response envelope``; return the envelope."""
        k = self.next_take
        data = send(enroll_body(self.user_name, k, self.voices.wav(self.voice, k - 1)))
        if data["status"] == "00000":
            self.done = k == 3
            self.next_take = min(k + 1, 3)
        elif data["status"] == "22132":
            self.next_take = data["data"]["enroll_num"] + 1
        elif data["status"] == "22131":
            self.done = True
        else:
            raise AssertionError(data)
        return data

    def attempts(self, send, n):
        """At most ``n`` attempts, fewer once the enrolment is complete."""
        for _ in range(n):
            if self.done:
                return
            self.attempt(send)


def checked_state(user_rows, take_rows, rows=None):
    """The store's state from its raw rows, checked against its integrity rules.

    ``user_rows`` are ``(name, enroll_num, group_id, voiceprint)`` and ``take_rows``
    ``(user_name, take_num, take)``, as read from the database past the Store interface;
    ``rows`` (a ``RowCipher``) opens them when the store is encrypted.
    Returns ``{name: (enroll_num, group_id, voiceprint, [takes 1..enroll_num])}``;
    fails if a user is half-written or a take has no user.
    """
    from server.store import PlainRows
    from server.store.base import row_aad

    rows = PlainRows() if rows is None else rows
    users = {n: (c, g, None if v is None else rows.open(row_aad("voiceprint", n), v))
             for n, c, g, v in user_rows}
    takes = {}
    for name, k, blob in sorted(take_rows, key=lambda row: (row[0], row[1])):
        takes.setdefault(name, []).append((k, rows.open(row_aad(f"take{k}", name), blob)))
    assert set(takes) <= set(users), "takes of a user that does not exist"
    state = {}
    for name, (count, group, vp) in users.items():
        numbers = [k for k, _ in takes.get(name, [])]
        assert numbers == list(range(1, count + 1)), (name, count, numbers)  # not half-written
        assert (count == 3) == (vp is not None), (name, count)
        state[name] = (count, group, vp, [b for _, b in takes.get(name, [])])
    return state
