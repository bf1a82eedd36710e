"""Tests of vpcore.corpus: folder and Kaldi corpora, lists and enrolment lists."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vpcore import corpus
from vpcore.audio import load_file
from vpcore.corpus import (
    Utterance,
    data_root,
    read_corpus,
    read_enrollments,
    read_kaldi,
    read_list,
    scan_folder,
)
from vpcore.errors import ParameterError

SR = 16000


def write_audio(path, seed=0, seconds=0.1):
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.random.default_rng(seed).integers(-3000, 3000, int(SR * seconds), dtype=np.int16)
    sf.write(path, pcm, SR, subtype="PCM_16")
    return pcm


@pytest.fixture
def tree(tmp_path):
    """<root>/<speaker>/<utt> with wav and flac files plus things to ignore."""
    root = tmp_path / "corpus"
    written = {}
    for i, rel in enumerate(["bob/b2.flac", "bob/b1.wav", "alice/a1.wav", "alice/a2.FLAC",
                             "carol/c1.wav"]):
        written[rel] = write_audio(root / rel, seed=i)
    (root / "alice" / "notes.txt").write_text("not audio")
    (root / "alice" / "a3.mp3").write_bytes(b"ID3")
    (root / "README").write_text("top-level file")
    write_audio(root / "top.wav", seed=9)                 # not inside a speaker folder
    write_audio(root / "bob" / "nested" / "deep.wav", seed=10)  # too deep
    (root / "empty_speaker").mkdir()
    return root, written


# ---------------------------------------------------------------------------
# folder layout


def test_scan_folder_lists_speaker_utterances_sorted_by_path(tree):
    root, _ = tree
    utts = scan_folder(root)
    assert [u.utt_id for u in utts] == ["alice/a1", "alice/a2", "bob/b1", "bob/b2", "carol/c1"]
    assert [u.speaker for u in utts] == ["alice", "alice", "bob", "bob", "carol"]
    assert all(isinstance(u, Utterance) and u.path.is_file() for u in utts)
    assert utts[1].path == root / "alice" / "a2.FLAC"


def test_scanned_files_load_to_the_samples_written(tree):
    root, written = tree
    for u in scan_folder(str(root)):  # a str root works too
        rel = u.path.relative_to(root).as_posix()
        np.testing.assert_array_equal(load_file(u.path), written[rel] / 32768.0)


def test_scan_folder_errors(tmp_path):
    with pytest.raises(ParameterError, match="is not a folder"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "file.wav").write_bytes(b"")
    with pytest.raises(ParameterError, match="is not a folder"):
        scan_folder(tmp_path / "file.wav")
    (tmp_path / "spk").mkdir()
    (tmp_path / "spk" / "x.txt").write_text("")
    with pytest.raises(ParameterError, match="holds no"):
        scan_folder(tmp_path)


def test_read_corpus_excludes_speakers_in_the_folder_layout(tree):
    root, _ = tree
    utts = read_corpus(root, exclude_speakers=["bob", "nobody"])
    assert {u.speaker for u in utts} == {"alice", "carol"}
    assert read_corpus(root) == scan_folder(root)
    assert read_corpus(root, exclude_speakers=("alice", "bob", "carol")) == []


# ---------------------------------------------------------------------------
# Kaldi layout


@pytest.fixture
def kaldi(tmp_path):
    data = tmp_path / "data"
    audio = tmp_path / "audio"
    write_audio(audio / "u1.wav", seed=1)
    write_audio(audio / "u2.flac", seed=2)
    write_audio(data / "local" / "u3.wav", seed=3)
    write_audio(tmp_path / "with space" / "u4.wav", seed=4)
    (data / "wav.scp").write_text(
        f"utt2 {audio / 'u2.flac'}\n"
        f"\n"
        f"utt1 {audio / 'u1.wav'}\n"
        f"utt3 local/u3.wav\n"
        f"utt4   {tmp_path / 'with space' / 'u4.wav'}  \n")
    (data / "utt2spk").write_text("utt1 spkA\nutt2 spkB\nutt3 spkA\n\nutt4 spkC\n")
    return data, audio


def test_read_kaldi_pairs_wav_scp_with_utt2spk(kaldi, tmp_path):
    data, audio = kaldi
    utts = read_kaldi(data)
    assert [(u.utt_id, u.speaker) for u in utts] == [
        ("utt1", "spkA"), ("utt2", "spkB"), ("utt3", "spkA"), ("utt4", "spkC")]
    assert utts[0].path == audio / "u1.wav"
    assert utts[2].path == data / "local" / "u3.wav"         # relative to the data folder
    assert utts[3].path == tmp_path / "with space" / "u4.wav"  # spaces in a path survive
    assert all(u.path.is_file() for u in utts)


def test_read_corpus_detects_the_kaldi_layout_and_excludes_speakers(kaldi):
    data, _ = kaldi
    assert read_corpus(data) == read_kaldi(data)
    assert [u.utt_id for u in read_corpus(data, exclude_speakers={"spkA"})] == ["utt2", "utt4"]


def test_kaldi_command_pipes_are_rejected(tmp_path):
    (tmp_path / "wav.scp").write_text("utt1 sox in.sph -t wav - |\n")
    (tmp_path / "utt2spk").write_text("utt1 spk\n")
    with pytest.raises(ParameterError, match="command pipe"):
        read_kaldi(tmp_path)


def test_kaldi_utterance_without_speaker_is_rejected(tmp_path):
    (tmp_path / "wav.scp").write_text("utt1 a.wav\nutt2 b.wav\n")
    (tmp_path / "utt2spk").write_text("utt1 spk\n")
    with pytest.raises(ParameterError, match="'utt2' of wav.scp has no speaker"):
        read_kaldi(tmp_path)


@pytest.mark.parametrize("bad_file", ["wav.scp", "utt2spk"])
def test_kaldi_malformed_line_names_the_file_and_line(tmp_path, bad_file):
    (tmp_path / "wav.scp").write_text("utt1 a.wav\n")
    (tmp_path / "utt2spk").write_text("utt1 spk\n")
    (tmp_path / bad_file).write_text("utt1 a\n\nlonely\n")
    with pytest.raises(ParameterError, match=rf"{bad_file}:3: expected '<key> <value>'"):
        read_kaldi(tmp_path)


def test_kaldi_missing_utt2spk_is_a_file_not_found_error_naming_it(tmp_path):
    (tmp_path / "wav.scp").write_text("utt1 a.wav\n")
    with pytest.raises(FileNotFoundError, match="utt2spk"):
        read_corpus(tmp_path)


# ---------------------------------------------------------------------------
# lists


def test_read_list_strips_and_skips_blank_lines(tmp_path):
    path = tmp_path / "speakers.txt"
    path.write_text("  spk1\n\nspk2  \n\t\nspk3")
    assert read_list(path) == ["spk1", "spk2", "spk3"]


def test_read_enrollments_maps_models_to_paths(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    path = lists / "enroll.txt"
    path.write_text("m1 a/x.wav a/y.wav\n\nm2  b/z.flac\nm3 /abs/w.wav\n")
    models = read_enrollments(path, root=tmp_path / "audio")
    assert models == {
        "m1": [tmp_path / "audio" / "a" / "x.wav", tmp_path / "audio" / "a" / "y.wav"],
        "m2": [tmp_path / "audio" / "b" / "z.flac"],
        "m3": [Path("/abs/w.wav")],
    }
    # default root: the list's own folder
    assert read_enrollments(path)["m2"] == [lists / "b" / "z.flac"]


def test_read_enrollments_rejects_a_model_without_paths(tmp_path):
    path = tmp_path / "enroll.txt"
    path.write_text("m1 a.wav\nm2\n")
    with pytest.raises(ParameterError, match=r"enroll.txt:2: expected '<model> <path>"):
        read_enrollments(path)


def test_read_enrollments_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_enrollments(tmp_path / "nope.txt")


# ---------------------------------------------------------------------------
# data_root


def test_data_root_prefers_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("VPCORE_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(required=True) == tmp_path


def test_data_root_without_any_candidate(tmp_path, monkeypatch):
    monkeypatch.setenv("VPCORE_DATA", str(tmp_path / "does-not-exist"))
    fake_project = tmp_path / "a" / "b"
    monkeypatch.setattr(corpus, "__file__", str(fake_project / "vpcore" / "corpus.py"))
    monkeypatch.chdir(fake_project.parent if fake_project.parent.exists() else tmp_path)
    assert data_root() is None
    with pytest.raises(ParameterError, match="VPCORE_DATA"):
        data_root(required=True)


def test_data_root_found_from_a_subfolder_of_the_project(tmp_path, monkeypatch):
    """An installed vpcore run from <project>/notebooks finds <project>/../shared/data."""
    monkeypatch.delenv("VPCORE_DATA", raising=False)
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    notebooks = tmp_path / "project" / "notebooks"
    notebooks.mkdir(parents=True)
    site = tmp_path / "venv" / "site-packages"
    monkeypatch.setattr(corpus, "__file__", str(site / "vpcore" / "corpus.py"))
    monkeypatch.chdir(notebooks)
    assert data_root() == shared
    monkeypatch.chdir(tmp_path / "project")
    assert data_root() == shared
