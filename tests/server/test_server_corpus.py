"""Real speech end to end through the HTTP API: speechocean762 speakers with the default
model shipped in vpcore. Skipped, with the reason shown, when the corpus or the shipped
model is absent."""

import base64
import os
from pathlib import Path

import numpy as np
import pytest

from server.app import create_app
from server.config import Config
from vpcore.audio import encode_wav
from vpserver_support import Api, enroll_body, verify_body

DATA = Path(os.environ.get("VPCORE_DATA", "/work/shared/data"))
CORPUS = DATA / "speechocean762"
DEV_SPEAKERS = DATA / "trials" / "speechocean762-dev.speakers"

pytestmark = [
    pytest.mark.needs_corpus,
    pytest.mark.skipif(not (CORPUS / "train").is_dir(),
                       reason=f"speechocean762 corpus not found at {CORPUS} (set VPCORE_DATA)"),
]


@pytest.fixture(scope="module")
def shipped_model():
    from vpcore.errors import ModelError
    from vpcore.model import load_model

    try:
        return load_model()
    except ModelError as exc:
        pytest.skip(f"default model not shipped in vpcore yet: {exc}")


def _adult_speakers():
    ages = {}
    for line in (CORPUS / "speakers.psv").read_text().splitlines()[1:]:
        speaker, _, age = line.split("|")
        ages[speaker] = int(age)
    dev = DEV_SPEAKERS.read_text().split() if DEV_SPEAKERS.is_file() else sorted(ages)
    return [s for s in dev if ages.get(s, 0) >= 18]


def _takes(speaker, n=4, min_seconds=3.5):
    """Concatenate a speaker's utterances into ``n`` takes of at least ``min_seconds``."""
    import soundfile as sf

    takes, current = [], []
    for path in sorted((CORPUS / "train" / speaker).glob("*.flac")):
        samples, rate = sf.read(str(path), dtype="int16")
        assert rate == 16000 and samples.ndim == 1
        current.append(samples)
        if sum(len(c) for c in current) >= min_seconds * rate:
            takes.append(np.concatenate(current))
            current = []
        if len(takes) == n:
            return takes
    return None


def _wav_b64(samples):
    return base64.b64encode(encode_wav(samples.astype(np.int16))).decode("ascii")


@pytest.fixture(scope="module")
def speakers():
    chosen = {}
    for speaker in _adult_speakers():
        takes = _takes(speaker)
        if takes is not None:
            chosen[speaker] = [_wav_b64(t) for t in takes]
        if len(chosen) == 4:
            return chosen
    pytest.skip("fewer than 4 adult speechocean762 speakers with enough speech")


def test_real_speech_enrol_verify_and_identify(shipped_model, speakers, tmp_path):
    app = create_app(Config(store=str(tmp_path / "store.sqlite3")), model=shipped_model)
    api = Api(app)
    names = list(speakers)
    for speaker, takes in speakers.items():
        for k in (1, 2, 3):
            result = api.post("/enroll", enroll_body(speaker, k, takes[k - 1]))
            assert result["status"] == "00000", (speaker, k, result)
    target, other = names[0], names[1]
    probe = speakers[target][3]  # an utterance set not used for enrolment
    same = api.post("/verify", verify_body(probe, user_name=target))
    assert same["status"] == "00000"
    assert same["data"]["confidence"] > 0.7, same
    impostor = api.post("/verify", verify_body(speakers[other][3], user_name=target))
    assert impostor["data"]["confidence"] < 0.7, impostor
    for speaker in names:
        ranked = api.post("/verify", verify_body(speakers[speaker][3]))
        assert ranked["data"][0]["user_name"] == speaker, (speaker, ranked)
    app.extensions["vpcore"].close()
