"""The README's "Security" example runs as written (bash, vpcore-server, curl): a service
with a store key, an API token and an audit log, then a key rotation and a restart."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from server.store import read_key
from vpserver_support import ROOT, free_port

SCRIPT_DIR = Path(sys.executable).parent


def readme_security_block():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Security", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.S)
    return block


def responses(text):
    """The JSON envelopes curl printed, among the commands' lines of text."""
    decoder, out, i = json.JSONDecoder(), [], text.find("{")
    while i >= 0:
        doc, i = decoder.raw_decode(text, i)
        out.append(doc)
        i = text.find("{", i)
    return out


@pytest.mark.skipif(not (SCRIPT_DIR / "vpcore-server").exists(),
                    reason="the vpcore-server console script is not installed (pip install .)")
@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("shred") is None,
                    reason="the README's example needs curl and shred")
def test_readme_security_commands_run_as_written(small_model_path, tmp_path):
    block = readme_security_block()
    port = free_port()
    # the changes: the test's folders instead of /etc/vpcore and /var/log, a free port
    script = (block.replace("/etc/vpcore", str(tmp_path / "etc"))
              .replace("/var/log", str(tmp_path / "log"))
              .replace("localhost:7800", f"127.0.0.1:{port}"))
    (tmp_path / "log").mkdir()
    env = {**os.environ, "VPCORE_HOST": "127.0.0.1", "VPCORE_PORT": str(port),
           "VPCORE_MODEL": str(small_model_path), "VPCORE_WORKERS": "1",
           "PATH": f"{SCRIPT_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("VPCORE_STORE", "VPCORE_STORE_KEY", "VPCORE_API_TOKEN", "VPCORE_AUDIT_LOG"):
        env.pop(name, None)
    out, err = open(tmp_path / "stdout", "wb"), open(tmp_path / "stderr", "wb")
    shell = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                             stdout=out, stderr=err, start_new_session=True)
    try:
        assert shell.wait(timeout=300) == 0, (tmp_path / "stderr").read_text()[-3000:]
        health = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the service the block started last
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
                break
            except (requests.RequestException, ValueError):
                time.sleep(0.5)
    finally:
        try:
            os.killpg(shell.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        out.close()
        err.close()
    stdout = (tmp_path / "stdout").read_text()
    stderr = (tmp_path / "stderr").read_text()
    with_token, without = responses(stdout)
    assert with_token["status"] == "00000" and with_token["data"]["enroll_num"] == 0
    assert without["status"] == "22121" and without["data"] is None
    assert "re-sealed 0 takes and voiceprints" in stdout
    # the old key is gone, the new one took its place, and the service opened the store with it
    keys = sorted(p.name for p in (tmp_path / "etc").iterdir())
    assert keys == ["store.key"] and len(read_key(str(tmp_path / "etc" / "store.key"))) == 32
    assert health is not None, stderr[-3000:]
    assert health["status"] == "00000" and health["data"]["store"]["encrypted"] is True
    audit = tmp_path / "log" / "vpcore-audit.jsonl"
    assert audit.stat().st_mode & 0o077 == 0  # created private; checkUser is not audited
    assert "Traceback" not in stderr
