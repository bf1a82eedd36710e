"""Real server processes (gunicorn, several workers) on 127.0.0.1: the production entry
points, concurrency across threads and processes, and crash safety under SIGKILL."""

import glob
import random
import sqlite3
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from vpcore.model import Take, Voiceprint
from vpserver_support import (STATUSES, ContendedEnrolment, call, checked_state, client_session,
                              enroll_body, rows_of, run_clients, server_env, verify_body)

#: the tests that take ``security`` (the crash test) run open and with an API token and a
#: store key set (see conftest.py)
SECURITY = ("open", "secured")


def db_state(path, rows=None):
    """Read the store file directly: {name: (enroll_num, group_id, voiceprint, [takes])};
    ``rows`` opens the blobs of an encrypted store."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return checked_state(
            conn.execute("SELECT name, enroll_num, group_id, voiceprint FROM users"),
            conn.execute("SELECT user_name, take_num, take FROM takes"), rows)
    finally:
        conn.close()


# ------------------------------------------------------------- entry points ---

def test_vpcore_server_console_script_runs_gunicorn(start_server, tmp_path):
    script = Path(sys.executable).parent / "vpcore-server"
    if not script.exists():
        pytest.skip(f"console script not installed at {script} (pip install -e .)")
    server = start_server(command=[str(script)], workers=2, threads=2,
                          extra_env={"VPCORE_MAX_BODY": "65536"})
    # curl without -H: no Content-Type header at all
    response = requests.post(server.url + "/checkUser", data=b'{"user_name": "alice"}',
                             timeout=10)
    assert "Content-Type" not in response.request.headers
    body = response.json()
    assert body["status"] == "00000" and body["data"]["enroll_num"] == 0
    missing = requests.get(server.url + "/nowhere", timeout=10)
    assert missing.status_code == 404 and missing.json()["status"] == "22121"
    wrong = requests.get(server.url + "/enroll", timeout=10)
    assert wrong.status_code == 405 and wrong.json()["status"] == "22121"
    big = requests.post(server.url + "/enroll", json=enroll_body("alice", 1, "A" * 70000),
                        timeout=10)
    assert big.status_code == 413 and big.json()["status"] == "22124"
    time.sleep(0.3)
    log = server.log_tail(20000)
    assert "gunicorn" in log.lower() and "gthread" in log
    assert f"task_id={body['task_id']}" in log
    assert "Running on" not in log  # never the Flask development server


# -------------------------------------------------------------- concurrency ---

def test_concurrent_enrolment_and_verification_stay_consistent(start_server, voices, model,
                                                               tmp_path):
    store = tmp_path / "concurrent.sqlite3"
    server = start_server(store=store, workers=2, threads=4)
    n_threads = 6
    responses = []  # (thread, path, body sent, response) of every request
    lock = threading.Lock()

    def record(t, path, body, data):
        with lock:
            responses.append((t, path, body, data))

    def worker(t):
        session = requests.Session()
        own, voice, group = f"own{t}", t % len(voices), t % 3
        shared = ContendedEnrolment("shared", voices)

        def send(body, path="/enroll"):
            data = call(session, server, path, body)
            record(t, path, body, data)
            return data

        for k in (1, 2, 3):
            data = send(enroll_body(own, k, voices.wav(voice, k - 1), group_id=group))
            assert data["status"] == "00000", data
            shared.attempts(send, 3)  # interleave attempts on the user every thread fights over
            data = send(verify_body(voices.wav(0, 3), user_name="shared"), "/verify")
            assert data["status"] in ("00000", "22133", "22134"), data
            data = call(session, server, "/verify", verify_body(voices.wav(voice, 4)))
            assert data["status"] in ("00000", "22136"), data
            assert call(session, server, "/getUsers")["status"] == "00000"
        shared.attempts(send, 30)
        assert shared.done
        data = call(session, server, "/verify",
                    verify_body(voices.wav(voice, 3), user_name=own))
        assert data["status"] == "00000" and data["data"]["confidence"] > 0.7, data

    run_clients(worker, n_threads, 180)

    session = requests.Session()
    # every acknowledged own take is reflected; the final group is the last one sent
    for t in range(n_threads):
        data = call(session, server, "/checkUser", {"user_name": f"own{t}"})["data"]
        assert (data["enroll_num"], data["group_id"]) == (3, t % 3)
    shared = call(session, server, "/checkUser", {"user_name": "shared"})["data"]
    assert shared["enroll_num"] == 3
    completions = [d for _, p, b, d in responses
                   if b.get("user_name") == "shared" and b.get("enroll_num") == 3
                   and d["status"] == "00000"]
    assert len(completions) == 1, "the shared voiceprint was completed more than once"
    assert all(d["status"] in STATUSES for *_, d in responses)

    state = db_state(store)
    count, _, vp, takes = state["shared"]
    expected = model.enroll([Take.from_bytes(b) for b in takes])
    assert Voiceprint.from_bytes(vp).vector.tobytes() == expected.vector.tobytes()

    # both workers' 1-v-N indexes hold every fully enrolled user
    everyone = sorted([f"own{t}" for t in range(n_threads)] + ["shared"])
    for _ in range(8):
        data = call(session, server, "/verify", verify_body(voices.wav(1, 4), top_n=100))
        assert sorted(m["user_name"] for m in data["data"]) == everyone


# ----------------------------------------------------------------- crashes ---

def store_bytes(path):
    """Every file of the SQLite store (database, WAL, shared-memory index), concatenated."""
    return b"".join(Path(f).read_bytes() for f in glob.glob(glob.escape(str(path)) + "*"))


class EnrolmentStream:
    """Client threads enrolling their own users take by take, and unregistering every
    other user once it is complete, recording what was acknowledged and what was in
    flight when the server died.

    ``pending[name]`` is the enrolment count the request in flight would leave (0 for
    an unregistration); ``gone`` holds the users whose unregistration is known to have
    happened (acknowledged, or seen after a crash that hid the answer).
    """

    def __init__(self, voices, security=None, n_threads=3, users_per_thread=4, seed=0):
        self.voices, self.security = voices, security
        self.rng = random.Random(seed)
        self.plan = {}  # user -> voice
        self.leaving = set()  # users unregistered once fully enrolled
        self.gone = set()
        self.acked = {}  # user -> count after its last acknowledged request
        self.pending = {}
        self.order = []
        for t in range(n_threads):
            names = [f"crash{t}u{i}" for i in range(users_per_thread)]
            self.order.append(names)
            for i, name in enumerate(names):
                self.plan[name] = (t + i) % len(voices)
                if i % 2:
                    self.leaving.add(name)
        self.restarted = set()

    def finished(self, name):
        return name in self.gone if name in self.leaving else self.acked.get(name, 0) == 3

    def next_k(self, name):
        count = self.acked.get(name, 0)
        if count == 2 and name not in self.restarted and self.rng.random() < 0.3:
            self.restarted.add(name)
            return 1  # a client restarting its enrolment
        return count + 1

    def run_thread(self, server, t, stop):
        session = client_session(self.security)
        for name in self.order[t]:
            while not stop.is_set() and not self.finished(name):
                if self.acked.get(name, 0) == 3:  # complete and leaving: unregister
                    k, path, body = 0, "/unregister", {"user_name": name}
                else:
                    k = self.next_k(name)
                    path = "/enroll"
                    body = enroll_body(name, k, self.voices.wav(self.plan[name], k - 1))
                self.pending[name] = k
                try:
                    response = session.post(server.url + path, json=body, timeout=30)
                    data = response.json()
                except (requests.RequestException, ValueError):
                    return  # the server died under us: outcome unknown
                assert data["status"] == "00000", data
                self.acked[name] = k
                if k == 0:
                    self.gone.add(name)
                del self.pending[name]

    def resync(self, server, state):
        """After a crash, learn each user's state the way a client would (checkUser)."""
        session = client_session(self.security)
        for name in self.plan:
            data = call(session, server, "/checkUser", {"user_name": name})["data"]
            assert data["enroll_num"] == state.get(name, (0,))[0]
            if data["enroll_num"] == 0 and self.pending.get(name) == 0:
                self.gone.add(name)  # the unregistration in flight happened
            self.acked[name] = data["enroll_num"]
        self.pending.clear()


@pytest.mark.parametrize("kills", [
    3, pytest.param(12, marks=pytest.mark.slow, id="many-kills")])
def test_sigkill_at_random_moments_loses_no_acknowledged_take(start_server, voices, model,
                                                              tmp_path, kills, security):
    """``python -m server`` (gunicorn, 2 workers) is killed with SIGKILL ``kills`` times
    during a stream of enrolments and unregistrations, then runs the stream to its end.
    After every kill the store passes ``PRAGMA integrity_check``, no user is half-written,
    every acknowledged take is there (byte for byte), nothing unacknowledged appears except
    the change that was in flight, and once the service is up again the store files hold no
    byte of the name of a user whose unregistration happened. Secured: the service has a
    token and a key, and every take and voiceprint in the file opens with that key."""
    store = tmp_path / "crash.sqlite3"
    rows = rows_of(security)
    stream = EnrolmentStream(voices, security)
    expected_take = {}  # (voice, k) -> the take bytes the model makes of that audio
    for voice in range(len(voices)):
        for k in (1, 2, 3):
            expected_take[voice, k] = model.extract(voices.received(voice, k - 1)).to_bytes()
    rng = random.Random(1)
    done = 0
    in_flight_at_kill = []
    for cycle in range(kills + 1):
        server = start_server(store=store, workers=2, threads=2,
                              log_path=tmp_path / f"server{cycle}.log",
                              extra_env=server_env(security))
        if cycle:
            stream.resync(server, db_state(store, rows))
            data = store_bytes(store)  # the restarted service cleared the WAL
            assert [n for n in stream.gone if n.encode() in data] == [], cycle
        stop = threading.Event()
        threads = [threading.Thread(target=stream.run_thread, args=(server, t, stop))
                   for t in range(len(stream.order))]
        for th in threads:
            th.start()
        last = cycle == kills
        if not last:
            time.sleep(rng.uniform(0.2, 1.5))
            in_flight_at_kill.append(len(stream.pending))
            server.kill()  # SIGKILL to gunicorn's master and workers at once
            done += 1
            stop.set()
        for th in threads:
            th.join(120)
        assert not any(th.is_alive() for th in threads)
        if last:
            server.stop()

        state = db_state(store, rows)  # integrity, no half-written user
        for name, voice in stream.plan.items():
            count = state.get(name, (0,))[0]
            allowed = {stream.acked.get(name, 0)}
            if name in stream.pending:
                allowed.add(stream.pending[name])
            assert count in allowed, (cycle, name, count, allowed)
            _, _, vp, takes = state.get(name, (0, 0, None, []))
            for k, blob in enumerate(takes, start=1):
                # The worker runs BLAS on one thread, this process on several: the take
                # is the same up to the last bits of floating-point reassociation.
                stored, expected_k = Take.from_bytes(blob), Take.from_bytes(expected_take[voice, k])
                assert stored.n_frames == expected_k.n_frames, (name, k)
                np.testing.assert_allclose(stored.vector, expected_k.vector, rtol=1e-4,
                                           atol=1e-4, err_msg=f"{name} take {k}")
            if count == 3:
                expected = model.enroll([Take.from_bytes(b) for b in takes])
                assert Voiceprint.from_bytes(vp).vector.tobytes() == expected.vector.tobytes()
    assert done == kills
    assert sum(in_flight_at_kill) > 0, "no kill landed while a request was in flight"
    final = db_state(store, rows)
    assert all(stream.finished(name) for name in stream.plan), "the stream did not finish"
    assert {name for name in stream.plan if name not in stream.leaving} == set(final)
    assert all(count == 3 for count, *_ in final.values())
    data = store_bytes(store)
    assert [n for n in stream.leaving if n.encode() in data] == []
