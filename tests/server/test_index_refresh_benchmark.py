"""Smoke check of benchmarks/index_refresh.py on tiny sizes: it runs, the incremental
refreshes match a full reload, and it writes well-formed JSON."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_index_refresh_benchmark_runs_on_tiny_sizes(small_model_path, tmp_path):
    out = subprocess.run(
        [sys.executable, "benchmarks/index_refresh.py", "--model", str(small_model_path),
         "--sizes", "300", "1000", "--changes", "1", "20", "--repeat", "2", "--full-repeat", "1",
         "--real-voices", "2", "--store-dir", str(tmp_path), "--out-dir", str(tmp_path / "out"),
         "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    path = Path(out.stdout.strip().splitlines()[-1])
    assert path == tmp_path / "out" / "index_refresh.json"
    doc = json.loads(path.read_text())
    assert doc["benchmark"] == "index_refresh" and doc["environment"]["commit"]
    assert [row["n"] for row in doc["sizes"]] == [300, 1000]
    for row in doc["sizes"]:
        assert row["matches_full_reload"] is True
        assert row["full_loads"] == 1 and row["incremental_updates"] == 4
        assert row["full_load_ms"]["median"] > 0
        assert set(row["incremental_ms"]) == set(row["voiceprint_changes_ms"]) == {"1", "20"}
        # per repeat: 1 new user; 10 new, 5 unregistered, 5 enrolled again
        assert row["final_voiceprints"] == row["n"] + 2 * 1 + 2 * (10 - 5)
    assert list(tmp_path.glob("*/*.sqlite3")) == []  # the stores are removed
