"""The quickstart notebook is committed executed and runs headlessly from top to bottom
(the run needs the corpora; about 40 s on two cores)."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_committed_notebook_is_executed():
    """The notebook in the repository shows its outputs (it is committed executed)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c.get("execution_count") for c in code)
    assert all(c["outputs"] for c in code)
    assert not any(o.get("output_type") == "error" for c in code for o in c["outputs"])
    assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])


@pytest.mark.needs_corpus
def test_quickstart_notebook_executes(data_dir, monkeypatch):
    """Re-executes the notebook with nbclient (in the 'test' and 'notebook' extras)."""
    monkeypatch.setenv("VPCORE_DATA", str(data_dir))  # the kernel inherits it
    nbformat = pytest.importorskip("nbformat", reason="needs the 'notebook' extra")
    nbclient = pytest.importorskip("nbclient", reason="needs the 'notebook' extra")
    pytest.importorskip("ipykernel", reason="needs the 'notebook' extra")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not any(o.get("output_type") == "error" for o in outputs)
    text = "".join(o.get("text", "") for o in outputs)
    assert "EER" in text and "false-accept rate" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
