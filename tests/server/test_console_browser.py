"""The browser console (GET /console) in a real headless Chromium against a real service.

Chromium's fake capture device plays a WAV file of a synthetic voice as the
microphone, so the page records, converts to 16 kHz WAV and enrols exactly as
it does for a person. Screenshots of every step are saved in
``$VPCORE_TEST_ARTIFACTS/console/<test name>`` (default: the test's temporary folder).

Needs ``chromium`` and ``chromedriver`` (Debian: ``apt-get install chromium
chromium-driver``; CI installs them) and selenium; skipped with the reason
where they are absent.
"""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import requests

from vpserver_support import enroll_body, wav_bytes

USER = "console_user"
RECORD_SECONDS = 4.5
WAIT = 90  # seconds; generous for a busy CI machine


def _browser_paths():
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                    "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install 'vpcore[test]')")
    if missing and os.environ.get("VPCORE_REQUIRE_BROWSER"):
        pytest.fail(f"VPCORE_REQUIRE_BROWSER is set but {', '.join(missing)} is missing")
    if missing:
        pytest.skip(f"browser test needs {', '.join(missing)}: not found "
                    "(Debian: apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture
def artefacts(request, tmp_path):
    root = os.environ.get("VPCORE_TEST_ARTIFACTS")
    name = request.node.name.removeprefix("test_")
    folder = Path(root) / "console" / name if root else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def microphone_wav(voices, tmp_path):
    """What the fake microphone plays (in a loop): utterances of voice 0 with short pauses."""
    pause = np.zeros(4000, dtype=np.float32)
    parts = []
    for u in range(5, 13):
        parts += [voices.samples(0, u, 4.0), pause]
    path = tmp_path / "microphone.wav"
    path.write_bytes(wav_bytes(np.concatenate(parts)))
    return path


@pytest.fixture
def browser(microphone_wav, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone_wav}",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,2400",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except Exception as exc:  # a browser that cannot start here is an environment problem
        log = (tmp_path / "chromedriver.log")
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"Chromium did not start: {exc}\n{tail}") from exc
    yield driver
    driver.quit()


class Page:
    """The console page in the browser, with a screenshot per step."""

    def __init__(self, driver, url, artefacts):
        self.driver = driver
        self.url = url
        self.artefacts = artefacts
        self.shots = 0

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        return self.find(css).text

    def wait(self, condition, what):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT, poll_frequency=0.2).until(
            lambda d: condition(), message=f"waiting for {what}")

    def wait_text(self, css, pattern):
        return self.wait(lambda: re.search(pattern, self.text(css)), f"{css} ~ {pattern!r}")

    def fill(self, css, value):
        field = self.find(css)
        field.clear()
        field.send_keys(str(value))

    def shot(self, name):
        self.shots += 1
        path = self.artefacts / f"{self.shots:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path


def test_console_enrols_verifies_lists_and_unregisters_in_chromium(
        browser, start_server, voices, artefacts, tmp_path):
    server = start_server(tmp_path / "store.sqlite3", workers=1, threads=4)
    page = Page(browser, server.url, artefacts)
    browser.get(server.url + "/console")
    page.wait(lambda: page.find("#service").get_attribute("data-state") == "ok",
              "the service to report ready")
    assert page.find("#mic-unavailable").get_attribute("hidden") is not None  # localhost: mic ok
    page.fill("#record-seconds", RECORD_SECONDS)
    page.fill("#countdown-seconds", 1)
    page.fill("#user-name", USER)
    page.shot("loaded")

    # 1. the name is free
    page.find("#check-user").click()
    page.wait_text("#check-result", "free: not registered yet")

    # 2. three takes recorded from the (fake) microphone
    for k in (1, 2, 3):
        page.find(f'button.record[data-take="{k}"]').click()
        page.wait_text("#countdown", "get ready|speak now")
        result = f"#take-{k} .result"
        page.wait_text(result, r"✔|✖")
        page.shot(f"take-{k}")
        assert "✔" in page.text(result), page.text(result)
        assert re.search(r"speech \d+\.\d s of 4\.5 s · SNR about -?\d+ dB · clipping",
                         page.text(result)), page.text(result)
        assert "done" in page.find(f"#take-{k}").get_attribute("class")
    assert "registration completed" in page.text("#take-3 .result")
    page.find("#check-user").click()
    page.wait_text("#check-result", "fully enrolled")

    # 3a. 1-v-1 from the microphone: the confidence against the 0.7 threshold
    page.find("#verify-record").click()
    page.wait(lambda: page.find_all("#verify-result .confidence-value"), "a confidence")
    confidence = float(page.text("#verify-result .confidence-value"))
    page.shot("verify-1v1")
    assert 0.0 <= confidence <= 1.0
    verdict = page.text("#verify-result .verdict")
    assert verdict == ("accepted (≥ 0.7)" if confidence >= 0.7 else "not accepted (< 0.7)")
    assert confidence >= 0.7, "the enrolled voice itself was not accepted"
    width = re.search(r"width: ([\d.]+)%", page.find("#verify-result .fill").get_attribute("style"))
    assert float(width.group(1)) == pytest.approx(100 * confidence, abs=0.06)
    assert "left: 70%" in page.find("#verify-result .threshold").get_attribute("style")

    # 3b. 1-v-N from an uploaded file: 44.1 kHz stereo, converted by the page
    other = _stereo_44k(voices.samples(0, 3), tmp_path / "probe-44k-stereo.wav")
    page.find('input[name="verify-mode"][value="many"]').click()
    page.find("#verify-file").send_keys(str(other))
    page.wait(lambda: page.find_all("#verify-result .matches li"), "the 1-v-N matches")
    page.shot("verify-1vN-upload")
    first = page.text("#verify-result .matches li")
    assert first.startswith(f"1. {USER} (group 0)"), first

    # 4. list users with paging (three more, partly enrolled, through the API)
    for name in ("page_a", "page_b", "page_c"):
        answer = requests.post(server.url + "/enroll", timeout=30,
                               json=enroll_body(name, 1, voices.wav(1, 0))).json()
        assert answer["status"] == "00000", answer
    page.fill("#list-limit", 2)
    page.find("#list-users").click()
    page.wait_text("#list-page", "users 1 to 2")
    names = [row.text.split()[0] for row in page.find_all("#users-table tbody tr")]
    assert names == ["console_user", "page_a"]
    assert page.find("#list-prev").get_attribute("disabled") is not None
    page.find("#list-next").click()
    page.wait_text("#list-page", "users 3 to 4")
    assert [r.text.split()[0] for r in page.find_all("#users-table tbody tr")] == ["page_b",
                                                                                    "page_c"]
    page.find("#list-prev").click()
    page.wait_text("#list-page", "users 1 to 2")
    page.shot("users")

    # 5. unregister from the table (a second click confirms)
    button = page.find(f'#users-table button[data-user="{USER}"]')
    button.click()
    assert button.text == "Click again to unregister"
    button.click()
    page.wait_text("#unregister-result", "is removed")
    page.wait(lambda: USER not in page.text("#users-table"), "the table without the user")
    page.shot("unregistered")
    check = requests.post(server.url + "/checkUser", json={"user_name": USER}, timeout=30).json()
    assert check["data"]["enroll_num"] == 0

    # no JavaScript errors, no blocked resources, no failed loads
    entries = browser.get_log("browser")
    (artefacts / "browser-console.log").write_text(
        "\n".join(f"{e['level']} {e['message']}" for e in entries) + "\n")
    errors = [e for e in entries if e["level"] == "SEVERE"]
    assert not errors, errors


def test_console_reports_a_refused_take_and_its_advice(browser, start_server, artefacts,
                                                       tmp_path):
    """A silent upload is refused (22124) and the page says that no speech was heard."""
    server = start_server(tmp_path / "store.sqlite3", workers=1, threads=2)
    page = Page(browser, server.url, artefacts)
    browser.get(server.url + "/console")
    page.wait(lambda: page.find("#service").get_attribute("data-state") == "ok", "ready")
    page.fill("#user-name", "quiet_user")
    silent = tmp_path / "silence.wav"
    silent.write_bytes(wav_bytes(np.zeros(4 * 16000)))
    page.find('input[type="file"][data-take="1"]').send_keys(str(silent))
    page.wait_text("#take-1 .result", "✖")
    page.shot("refused-take")
    text = page.text("#take-1 .result")
    assert "status 22124" in text and "no speech was heard" in text, text
    assert page.find_all('#take-1 .advice[data-code="speech"]')
    assert "refused" in page.find("#take-1").get_attribute("class")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def _stereo_44k(samples, path):
    """``samples`` (16 kHz) as a 44.1 kHz stereo 16-bit WAV file."""
    import soundfile as sf
    from scipy.signal import resample_poly

    up = resample_poly(np.asarray(samples, dtype=np.float64), 441, 160)
    sf.write(str(path), np.stack([up, 0.8 * up], axis=1), 44100, subtype="PCM_16")
    return path


def test_chromium_is_the_one_ci_installs():
    """Guard: CI's script installs the browser this test needs before running the tests."""
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    install = re.search(r"apt-get install[^\n]* chromium chromium-driver\b", ci)
    assert install and install.start() < ci.index("\npytest")
    assert "export VPCORE_REQUIRE_BROWSER=1" in ci
