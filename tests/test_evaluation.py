"""Trial scoring's per-file take cache: reused only for the same model, code and file."""

import shutil

import numpy as np
import pytest
import soundfile as sf

import vpcore
from vpcore import evaluation
from vpcore._provenance import source_digest
from vpcore.evaluation import file_cache_key, take_of_file
from vpcore.model import Take


@pytest.fixture()
def wav(synthetic_corpus, tmp_path):
    path = tmp_path / "utt.wav"
    sf.write(path, synthetic_corpus[0][2], 16000, subtype="PCM_16")
    return path


def _poison(cache_dir, take):
    """Overwrite the single cached take with a recognisably different one."""
    (cached,) = cache_dir.glob("*.take")
    fake = Take(np.full_like(take.vector, 7.0), take.n_frames, take.fingerprint)
    cached.write_bytes(fake.to_bytes())
    return fake


def test_cache_is_reused_for_the_same_model_code_and_file(small_model, wav, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    take = take_of_file(small_model, wav, cache_dir=cache)
    np.testing.assert_array_equal(take.vector, small_model.extract(sf.read(wav)[0]).vector)
    fake = _poison(cache, take)
    np.testing.assert_array_equal(take_of_file(small_model, wav, cache_dir=cache).vector,
                                  fake.vector)


def test_cache_written_by_other_code_is_not_reused(small_model, wav, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    take = take_of_file(small_model, wav, cache_dir=cache)
    _poison(cache, take)
    monkeypatch.setattr(evaluation, "code_key", lambda: vpcore.__version__ + "+otherversion")
    again = take_of_file(small_model, wav, cache_dir=cache)
    np.testing.assert_array_equal(again.vector, take.vector)
    assert len(list(cache.glob("*.take"))) == 2


def test_cache_of_an_edited_file_is_not_reused(small_model, wav, synthetic_corpus, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    take = take_of_file(small_model, wav, cache_dir=cache)
    _poison(cache, take)
    sf.write(wav, synthetic_corpus[6][2], 16000, subtype="PCM_16")  # another speaker, same path
    again = take_of_file(small_model, wav, cache_dir=cache)
    np.testing.assert_array_equal(again.vector, small_model.extract(sf.read(wav)[0]).vector)
    assert not np.allclose(again.vector, take.vector)


def test_cache_key_depends_on_the_model(small_model, wav):
    other = type("M", (), {"fingerprint": "0" * 16})()
    assert file_cache_key(small_model, wav) != file_cache_key(other, wav)
    assert file_cache_key(small_model, wav) == file_cache_key(small_model, str(wav))


def test_source_digest_changes_with_any_source_byte(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(vpcore.__path__[0], src, ignore=shutil.ignore_patterns("data", "__pycache__"))
    before = source_digest(src)
    assert before == vpcore.code_key().split("+")[1]
    features = src / "features.py"
    features.write_bytes(features.read_bytes() + b"\n# changed\n")
    assert source_digest(src) != before


def test_missing_file_is_skipped_not_raised(small_model, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    assert take_of_file(small_model, tmp_path / "absent.wav", cache_dir=cache) is None
    assert take_of_file(small_model, tmp_path / "absent.wav") is None


def test_cache_key_of_a_missing_file_is_an_audio_error(small_model, tmp_path):
    from vpcore.errors import AudioDecodeError

    with pytest.raises(AudioDecodeError, match="cannot read audio file .*absent.wav"):
        file_cache_key(small_model, tmp_path / "absent.wav")
