"""Real server processes: start-up refuses permanent misconfiguration, and the body
limit holds on chunked uploads (gunicorn and the Flask development server)."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from server.app import create_app
from server.config import Config
from server.store import open_store
from vpserver_support import ROOT, ServerProcess, assert_envelope, b64, enroll_body, free_port


def run_server(env_overrides, timeout=120):
    """Run ``python -m server`` to its end; returns (exit status, stderr)."""
    env = dict(os.environ)
    env.update({"VPCORE_HOST": "127.0.0.1", "VPCORE_PORT": str(free_port()),
                "VPCORE_WORKERS": "1", "VPCORE_THREADS": "1"})
    env.update(env_overrides)
    proc = subprocess.run([sys.executable, "-m", "server"], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


# ------------------------------------------------------------------ start-up ---

def test_missing_model_file_refuses_to_start(tmp_path):
    missing = tmp_path / "my_model.npz"
    code, err = run_server({"VPCORE_MODEL": str(missing),
                            "VPCORE_STORE": str(tmp_path / "s.sqlite3")})
    assert code == 2
    assert "cannot start" in err and str(missing) in err and "does not exist" in err
    assert not (tmp_path / "s.sqlite3").exists()  # nothing was created on the way


def test_a_file_that_is_not_a_model_refuses_to_start(tmp_path):
    wav = tmp_path / "a1.wav"
    wav.write_bytes(b"RIFF" + b"\0" * 100)
    code, err = run_server({"VPCORE_MODEL": str(wav),
                            "VPCORE_STORE": str(tmp_path / "s.sqlite3")})
    assert code == 2 and "not a vpcore model file" in err and "pickle" not in err


def test_store_of_another_model_refuses_to_start(tmp_path, small_model_path):
    store = tmp_path / "vpcore-store.sqlite3"
    open_store(str(store), "0123456789abcdef").close()  # an earlier run with another model
    code, err = run_server({"VPCORE_MODEL": str(small_model_path), "VPCORE_STORE": str(store)})
    assert code == 2
    assert "cannot start" in err and "0123456789abcdef" in err and "another store" in err


def test_unreachable_store_still_starts_and_reports_it(small_model_path, tmp_path):
    """A database that is down may come up later: the service starts and says 22151."""
    server = ServerProcess("postgresql://vpcore@127.0.0.1:1/none", small_model_path,
                           workers=1, threads=1, log_path=tmp_path / "server.log")
    try:
        deadline = time.monotonic() + 120
        body = None
        while body is None and time.monotonic() < deadline:
            assert server.proc.poll() is None, server.log_tail()
            try:
                body = requests.get(server.url + "/health", timeout=5).json()
            except requests.RequestException:
                time.sleep(0.2)
        assert body is not None, server.log_tail()
        assert body["status"] == "22151" and body["data"]["store"]["status"] == "error"
    finally:
        server.stop()


# ---------------------------------------------------------- chunked bodies ---

def chunked_post(port, path, total, chunk=64 * 1024, prefix=b'{"user_name": "alice", "pad": "'):
    """POST ``total`` bytes with Transfer-Encoding: chunked; returns (HTTP status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def body():
        yield prefix
        sent = len(prefix)
        while sent < total - 2:
            n = min(chunk, total - 2 - sent)
            yield b"x" * n
            sent += n
        yield b'"}'

    conn.request("POST", path, body=body(), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"})
    response = conn.getresponse()
    data = json.loads(response.read())
    conn.close()
    return response.status, data


@pytest.fixture
def dev_server(model, tmp_path):
    """The app under the Flask / Werkzeug development server, in a thread."""
    from werkzeug.serving import make_server

    app = create_app(Config(store=str(tmp_path / "dev.sqlite3"), retry_interval=0.0,
                            max_body=64 * 1024), model=model)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    app.extensions["vpcore"].close()


@pytest.fixture(scope="module")
def gunicorn_port(small_model_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chunked")
    server = ServerProcess(folder / "store.sqlite3", small_model_path, workers=1, threads=2,
                           log_path=folder / "server.log",
                           extra_env={"VPCORE_MAX_BODY": str(64 * 1024)})
    try:
        server.wait_ready()
        yield server.port
    finally:
        server.stop()


@pytest.mark.parametrize("total", [64 * 1024 + 1, 3 * 1000 * 1000, 50 * 1000 * 1000])
@pytest.mark.parametrize("which", ["gunicorn", "flask-dev"])
def test_chunked_body_over_the_limit_is_413_with_22124(request, which, total):
    port = request.getfixturevalue("gunicorn_port" if which == "gunicorn" else "dev_server")
    status, body = chunked_post(port, "/checkUser", total)
    assert_envelope(body)
    assert (status, body["status"], body["data"]) == (413, "22124", None), body
    assert str(64 * 1024) in body["message"]


@pytest.mark.parametrize("which", ["gunicorn", "flask-dev"])
def test_chunked_body_within_the_limit_is_read_whole(request, which):
    port = request.getfixturevalue("gunicorn_port" if which == "gunicorn" else "dev_server")
    status, body = chunked_post(port, "/checkUser", 64 * 1024, chunk=1000)
    assert (status, body["status"]) == (200, "00000"), body
    assert body["data"]["enroll_num"] == 0


def test_declared_length_over_the_limit_is_413_before_reading(gunicorn_port):
    big = json.dumps(enroll_body("alice", 1, b64(b"\0" * 60000)))
    response = requests.post(f"http://127.0.0.1:{gunicorn_port}/enroll", data=big, timeout=30)
    assert response.status_code == 413 and response.json()["status"] == "22124"
