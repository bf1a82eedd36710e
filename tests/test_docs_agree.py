"""Docs, hints and result files say what the code does."""

import builtins
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_config_table_shows_the_real_defaults():
    import server.config as config_module
    from server.config import Config

    rows = dict(re.findall(r"^``(VPCORE_[A-Z_]+)``\s+``([^`]+)``", config_module.__doc__, re.M))
    defaults = Config()
    assert float(rows["VPCORE_CONSISTENCY_THRESHOLD"]) == defaults.consistency_threshold
    assert int(rows["VPCORE_MAX_BODY"]) == defaults.max_body
    assert int(rows["VPCORE_PORT"]) == defaults.port
    assert int(rows["VPCORE_WORKERS"]) == defaults.workers
    assert int(rows["VPCORE_THREADS"]) == defaults.threads
    assert int(rows["VPCORE_TIMEOUT"]) == defaults.timeout
    assert rows["VPCORE_STORE"] == defaults.store
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"`VPCORE_CONSISTENCY_THRESHOLD` \(([0-9.]+)\)", readme)
    assert shown and float(shown.group(1)) == defaults.consistency_threshold


def _extras_form_of_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install '.[dask]'" in readme
    return "'.["


def test_install_hints_use_the_readme_form(monkeypatch):
    """vpcore is installed from a checkout: ``pip install '.[extra]'``, not 'vpcore[extra]'."""
    form = _extras_form_of_the_readme()
    from vpcore.errors import ParameterError
    from vpcore.parallel import DaskExecutor
    from vpcore.plots import _pyplot

    real_import = builtins.__import__

    def no_optional(name, *args, **kwargs):
        if name.split(".")[0] in ("matplotlib", "distributed"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optional)
    for call, extra in ((_pyplot, "bench"), (lambda: DaskExecutor("tcp://x:1"), "dask")):
        with pytest.raises(ParameterError) as info:
            call()
        assert f"pip install {form}{extra}]'" in str(info.value)
    for path in list((ROOT / "vpcore").rglob("*.py")) + list((ROOT / "server").rglob("*.py")):
        assert "'vpcore[" not in path.read_text(encoding="utf-8"), path


def _notebook():
    nb = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text(encoding="utf-8"))
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    outputs = "\n".join("".join(o.get("text", "")) for c in nb["cells"]
                        if c["cell_type"] == "code" for o in c["outputs"])
    return markdown, outputs


def test_notebook_text_quotes_its_own_training_time():
    markdown, outputs = _notebook()
    seconds = re.search(r"trained in (\d+) s", outputs).group(1)
    assert f"({seconds} s in the run shown" in markdown
    assert "minutes on two cores" not in markdown


def test_notebook_explains_its_eer_against_the_shipped_recipe():
    markdown, outputs = _notebook()
    eer = re.search(r"EER (\d+\.\d+) %", outputs).group(1)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shipped = re.search(r"\*\*vpcore: \+ calibration\*\* \(the shipped recipe, library "
                        r"path\) \| (\d+\.\d+) %", readme).group(1)
    assert f"EER ({eer} %)" in markdown and f"({shipped} % in the README)" in markdown
    assert "seed" in markdown and "200 target trials" in markdown


def test_every_result_file_records_commit_and_machine_or_says_why_not():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        env = json.loads(path.read_text())["environment"]
        if env.get("recorded") is False:
            assert "not written down" in env["note"] and env["date"], path
        else:
            assert env["commit"] and env["cpu_model"] and env["date"], path


def test_architecture_page_names_every_module_and_the_readme_links_it():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^\| `([\w/]+\.py)` \|", page, re.M))
    modules = {p.name for p in (ROOT / "vpcore").glob("*.py")} | {
        str(p.relative_to(ROOT / "server")) for p in (ROOT / "server").rglob("*.py")}
    assert modules - named == set(), "modules the architecture page does not describe"
    assert named - modules == set(), "the architecture page describes modules that are gone"
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
