"""Model files and the atomic write."""

import numpy as np
import pytest

from vpcore.persistence import atomic_write, fingerprint, read_model_file


def test_atomic_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write(path, "old")
    assert atomic_write(path, b"new contents") == path
    assert path.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind


def test_failed_atomic_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write(path, "old")
    with pytest.raises(TypeError):
        atomic_write(path, 12345)  # not bytes: fails while writing
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_fingerprint_covers_options_names_and_values():
    arrays = {"a": np.arange(3.0), "b": np.ones(2)}
    base = fingerprint(arrays, {"x": 1})
    assert len(base) == 16 and base == fingerprint(dict(reversed(arrays.items())), {"x": 1})
    assert fingerprint(arrays, {"x": 2}) != base
    assert fingerprint({"a": np.arange(3.0), "c": np.ones(2)}, {"x": 1}) != base
    assert fingerprint({"a": np.arange(3.0), "b": np.ones(2) * 2}, {"x": 1}) != base


def test_saved_model_file_reads_back_its_header(small_model, small_model_path):
    arrays, header = read_model_file(small_model_path)
    assert header["fingerprint"] == small_model.fingerprint
    assert header["options"] == small_model.saved_options()
    np.testing.assert_array_equal(arrays["cohort"], small_model.cohort_)
