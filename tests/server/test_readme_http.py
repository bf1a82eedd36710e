"""The README's HTTP example runs as written (bash + curl) against a real service, with
20 s takes: the longest audio the API accepts, far past one command-line argument."""

import json
import re
import shutil
import subprocess

import pytest
import soundfile as sf

from vpserver_support import ROOT

TAKE_SECONDS = 20.0


def readme_http_block():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    (block,) = [b for b in blocks if "curl" in b]
    return block


def responses(stdout):
    """The JSON envelopes curl printed one after another."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while i < len(stdout):
        if stdout[i].isspace():
            i += 1
            continue
        doc, i = decoder.raw_decode(stdout, i)
        out.append(doc)
    return out


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("base64") is None,
                    reason="the README's example needs curl and base64")
def test_readme_curl_lines_run_as_written_with_20_s_takes(start_server, voices, tmp_path):
    block = readme_http_block()
    server = start_server(store=tmp_path / "store.sqlite3", workers=1, threads=2)
    # the one change: the test's service listens on a free port, not on 7800
    script = block.replace("localhost:7800", f"127.0.0.1:{server.port}")
    assert script != block
    for name, utterance in (("take1", 0), ("take2", 1), ("take3", 2), ("probe", 3)):
        samples = voices.samples(0, utterance, duration=TAKE_SECONDS)
        sf.write(tmp_path / f"{name}.wav", samples, 16000, subtype="PCM_16")
    assert (tmp_path / "take1.wav").stat().st_size > 128 * 1024 * 4  # base64 > 128 KiB
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Argument list too long" not in done.stderr
    replies = responses(done.stdout)
    curl_lines = [line for line in script.splitlines() if "curl " in line]
    assert len(replies) == len(curl_lines), done.stdout[:2000]
    assert [r["status"] for r in replies] == ["00000"] * len(replies), replies
    check, e1, e2, e3, users, one, many, unregister = replies
    assert check["data"]["enroll_num"] == 0
    assert [e["data"]["enroll_num"] for e in (e1, e2, e3)] == [1, 2, 3]
    assert users["data"][0]["user_name"] == "alice" and users["data"][0]["enroll_num"] == 3
    assert one["data"]["user_name"] == "alice" and one["data"]["confidence"] > 0.5
    assert many["data"][0]["user_name"] == "alice"
    assert unregister["data"] == {"user_name": "alice"}
