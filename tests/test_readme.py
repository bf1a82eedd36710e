"""The README's library example runs as written (on synthetic speech files)."""

import re
from pathlib import Path

import soundfile as sf

from vpcore.synth import SyntheticSpeaker, synthesize

README = Path(__file__).resolve().parents[1] / "README.md"


def _library_example():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Library example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_library_example_runs_and_finds_the_speaker(tmp_path, monkeypatch, capsys):
    files = {"a1.wav": (0, 1), "a2.wav": (0, 2), "a3.wav": (0, 3), "probe.wav": (0, 4),
             "b1.wav": (1, 1)}
    for name, (speaker, utt) in files.items():
        wave = synthesize(SyntheticSpeaker.from_seed(speaker), duration=5.0, random_state=utt)
        sf.write(tmp_path / name, wave, 16000, subtype="PCM_16")
    monkeypatch.chdir(tmp_path)
    exec(compile(_library_example(), "README.md", "exec"), {})
    llr_line, search_line = capsys.readouterr().out.strip().splitlines()
    llr, confidence = map(float, llr_line.split())
    assert 0.0 <= confidence <= 1.0
    assert search_line.startswith("[('alice'")  # the probe's own speaker first
