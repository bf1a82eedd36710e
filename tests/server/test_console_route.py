"""GET /console and its files: served by the app itself, self-contained (no CDN), shipped
in the package."""

import re
from pathlib import Path

import pytest

from server.app import CONSOLE_FILES, CONSOLE_POLICY

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "server" / "static"


def test_console_page_is_served_with_its_policy(api):
    response = api.client.get("/console")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONSOLE_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(console/static/[^"]+)"', page)
    assert sorted(assets) == ["console/static/console.css", "console/static/console.js"]
    for asset in assets + ["console/static/recorder-worklet.js"]:  # the worklet is loaded by the JS
        got = api.client.get("/" + asset)
        assert got.status_code == 200, asset
        assert got.mimetype == CONSOLE_FILES[asset.split("/")[2]]
        assert got.data == (STATIC / asset.split("/")[2]).read_bytes()


@pytest.mark.parametrize("path", ["/console/static/missing.js",
                                  "/console/static/console.html", "/console/console.js",
                                  "/console/static/..%2fapp.py", "/static/console.js"])
def test_nothing_else_is_served(api, path):
    body = api.get(path, expect_http=404)
    assert body["status"] == "22121" and body["data"] is None


def test_console_works_offline():
    """No file of the page loads anything from another origin."""
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path.name
        assert not re.search(r"""(fetch|import|addModule|url)\s*\(\s*["']?(https?:)?//""",
                             text), path.name
    assert "connect-src 'self'" in CONSOLE_POLICY and "default-src 'self'" in CONSOLE_POLICY


def test_every_console_file_is_package_data():
    """``pip install .`` ships the page: the package-data globs cover every file."""
    text = (ROOT / "pyproject.toml").read_text()
    line = re.search(r"^server = \[(.*)\]$", text.split("[tool.setuptools.package-data]")[1], re.M)
    globs = re.findall(r'"([^"]+)"', line.group(1))
    shipped = {p.name for g in globs for p in (ROOT / "server").glob(g)}
    assert {p.name for p in STATIC.iterdir()} <= shipped
    assert set(CONSOLE_FILES) == {p.name for p in STATIC.iterdir()}
