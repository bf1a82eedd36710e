"""Labelled speech corpora and trial lists.

Two layouts are read:

* a folder tree ``<root>/<speaker>/<utterance>.{wav,flac}``;
* Kaldi style: a ``wav.scp`` (``utt path``) and an ``utt2spk`` (``utt speaker``).

The corpora shipped beside the project live in ``../shared/data``;
:func:`data_root` finds them (or ``$VPCORE_DATA``).
"""

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ParameterError

__all__ = ["Utterance", "data_root", "scan_folder", "read_kaldi", "read_corpus",
           "read_list", "read_enrollments", "AUDIO_SUFFIXES"]

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class Utterance:
    """One recording: its id, speaker label and file path."""

    utt_id: str
    speaker: str
    path: Path


def data_root(required=False):
    """The corpus folder: ``$VPCORE_DATA``, else ``../shared/data`` beside the project.

    "Beside the project" is tried from the source tree vpcore runs from, then
    from the current folder and its two parents (so a notebook running in
    ``notebooks/`` of an installed vpcore finds it too). Returns None when no
    candidate exists, unless ``required`` (then raises).
    """
    env = os.environ.get("VPCORE_DATA")
    candidates = [Path(env)] if env else []
    project = Path(__file__).resolve().parent.parent
    here = Path.cwd()
    candidates += [project.parent / "shared" / "data"]
    candidates += [d.parent / "shared" / "data" for d in (here, *here.parents[:2])]
    for path in candidates:
        if path.is_dir():
            return path
    if required:
        raise ParameterError(
            f"no corpus folder found (looked at {', '.join(map(str, candidates))}); "
            "set VPCORE_DATA to the folder holding the corpora")
    return None


def scan_folder(root):
    """Utterances of a ``<root>/<speaker>/<utt>.{wav,flac}`` tree, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"corpus root={str(root)!r} is not a folder")
    utts = []
    for spk_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(spk_dir.iterdir()):
            if f.suffix.lower() in AUDIO_SUFFIXES:
                utts.append(Utterance(f"{spk_dir.name}/{f.stem}", spk_dir.name, f))
    if not utts:
        raise ParameterError(f"corpus root={str(root)!r} holds no <speaker>/<utt>.wav|flac files")
    return utts


def _read_pairs(path):
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ParameterError(f"{path}:{lineno}: expected '<key> <value>', got {line!r}")
            pairs.append((parts[0], parts[1].strip()))
    return pairs


def read_kaldi(folder):
    """Utterances of a Kaldi data folder with ``wav.scp`` and ``utt2spk``.

    Only plain paths are supported in ``wav.scp`` (no piped commands).
    """
    folder = Path(folder)
    wavs = dict(_read_pairs(folder / "wav.scp"))
    spk = dict(_read_pairs(folder / "utt2spk"))
    utts = []
    for utt, path in sorted(wavs.items()):
        if path.endswith("|"):
            raise ParameterError(f"wav.scp entry {utt!r} is a command pipe, not a file path")
        if utt not in spk:
            raise ParameterError(f"utterance {utt!r} of wav.scp has no speaker in utt2spk")
        p = Path(path)
        utts.append(Utterance(utt, spk[utt], p if p.is_absolute() else folder / p))
    return utts


def read_corpus(path, exclude_speakers=()):
    """Utterances of a corpus in either layout, without ``exclude_speakers``."""
    path = Path(path)
    if (path / "wav.scp").is_file():
        utts = read_kaldi(path)
    else:
        utts = scan_folder(path)
    exclude = set(exclude_speakers)
    return [u for u in utts if u.speaker not in exclude]


def read_list(path):
    """Non-empty, stripped lines of a text file (e.g. a speaker list)."""
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def read_enrollments(path, root=None):
    """An enrolment list ``model path1 path2 ...`` -> {model: [Path, ...]}.

    Relative paths are taken relative to ``root`` (default: the list's folder's parent's
    parent is not assumed; pass ``root`` explicitly).
    """
    root = Path(root) if root is not None else Path(path).parent
    models = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ParameterError(f"{path}:{lineno}: expected '<model> <path> [<path> ...]'")
            models[parts[0]] = [root / p for p in parts[1:]]
    return models
