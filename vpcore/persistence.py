"""Model files: named arrays plus a versioned JSON header, written atomically, read without pickle.

A model file is an ``.npz`` archive of the primary fitted arrays (UBM,
total-variability matrix, backend, PLDA covariances, AS-norm cohort) and one
``header`` array holding UTF-8 JSON: format name and version, the model's
options and feature options, the calibration, a training summary and the
fingerprint. Derived quantities (PLDA diagonalisation, extraction caches) are
recomputed on load. :func:`fingerprint` is the model's identity: a digest of
the options and every array, so a take or voiceprint made by one model is
never scored by another.

:func:`atomic_write` is the project's one way to write a file atomically
(temporary file in the same folder, fsync, rename): a reader sees the old
file or the new one, never half of one.
"""

import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._validation import check_array
from .backend import Backend
from .calibration import LogisticCalibration
from .errors import ModelError, ParameterError
from .features import FeatureOptions
from .ivector import TotalVariability
from .plda import PLDA
from .scoring import Scorer
from .ubm import DiagonalGMM

__all__ = ["FORMAT_VERSION", "atomic_write", "fingerprint", "model_arrays", "model_header",
           "save_model", "read_model_file", "fitted_stages", "default_model_path"]

#: Version of the saved model format; a file of another version does not load.
FORMAT_VERSION = 1


def default_model_path():
    """Path of the model shipped inside the package."""
    return Path(__file__).resolve().parent / "data" / "default_model.npz"


def atomic_write(path, data):
    """Write ``data`` (bytes or str, str as UTF-8) to ``path`` atomically; returns the path.

    The bytes go to a temporary file in the same folder, are flushed and
    fsync'ed, and the file is renamed over ``path``; on any failure the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------- model -> file ---
def model_arrays(model):
    """The primary fitted arrays of a fitted model, by their names in the file."""
    return {
        "ubm_weights": model.ubm_.weights_, "ubm_means": model.ubm_.means_,
        "ubm_variances": model.ubm_.variances_,
        "tv_matrix": model.tv_.T_.astype(np.float32), "tv_offset": model.tv_.offset_,
        "backend_mean": model.backend_.mean_, "backend_projection": model.backend_.projection_,
        "plda_mean": model.plda_.mean_, "plda_between": model.plda_.between_,
        "plda_within": model.plda_.within_, "cohort": model.cohort_,
    }


def model_header(model):
    """The JSON header of a fitted model (without its fingerprint)."""
    return {
        "format": "vpcore-model", "format_version": FORMAT_VERSION,
        "options": model.saved_options(), "features": model.feature_options_.to_dict(),
        "backend": {"length_norm": model.backend_.length_norm},
        "calibration": model.calibration_.to_dict(),
        "training": getattr(model, "training_summary_", {}),
    }


def fingerprint(arrays, options):
    """16 hex digits of SHA-256 over the options (sorted JSON) and every named array."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()[:16]


def save_model(model, path):
    """Write a fitted model to ``path`` atomically (``.npz``, no pickle); returns the path."""
    arrays = model_arrays(model)
    header = dict(model_header(model), fingerprint=model.fingerprint)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write(path, buf.getvalue())


# ---------------------------------------------------------------- file -> model ---
def read_model_file(path):
    """``(arrays, header)`` of a model file, its format and version checked.

    Raises
    ------
    ModelError
        Missing, not an ``.npz``, without or with a corrupt header, not a vpcore
        model, or of another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):  # np.load would speak of pickles here
        raise ModelError(f"model file {str(path)!r} is not a vpcore model file "
                         "(not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"model file {str(path)!r} is not a readable .npz: {exc}") from None
    if "header" not in arrays:
        raise ModelError(f"model file {str(path)!r} has no header")
    try:
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model file {str(path)!r} has a corrupt header: {exc}") from None
    if header.get("format") != "vpcore-model":
        raise ModelError(f"model file {str(path)!r} is not a vpcore model")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"model file {str(path)!r} has format_version="
                         f"{header.get('format_version')!r}; this vpcore reads version "
                         f"{FORMAT_VERSION}")
    return arrays, header


def fitted_stages(arrays, header):
    """The fitted stages that a file's arrays and header describe, as ``set_fitted`` takes them.

    Raises
    ------
    KeyError, TypeError, ParameterError, ModelError
        Missing or inconsistent entries (the caller names the file).
    """
    options = header["options"]
    ubm = DiagonalGMM(n_components=int(arrays["ubm_weights"].shape[0])).set_fitted(
        arrays["ubm_weights"], arrays["ubm_means"], arrays["ubm_variances"])
    tv = TotalVariability(rank=int(arrays["tv_matrix"].shape[1])).set_fitted(
        arrays["tv_matrix"].astype(np.float64), ubm.n_components, arrays["tv_offset"])
    backend = Backend(lda_dim=options["lda_dim"], wccn=options["wccn"],
                      length_norm=header["backend"]["length_norm"]).set_fitted(
        arrays["backend_mean"], arrays["backend_projection"])
    plda = PLDA(n_iter=options.get("plda_iter", 10)).set_fitted(
        arrays["plda_mean"], arrays["plda_between"], arrays["plda_within"])
    scorer = Scorer(plda, check_array("cohort", arrays["cohort"], ndim=2), options["asnorm_top"],
                    LogisticCalibration.from_dict(header["calibration"]))
    return {"feature_options": FeatureOptions.from_dict(header["features"]), "ubm": ubm, "tv": tv,
            "backend": backend, "scorer": scorer, "training_summary": header.get("training", {})}


def load_stages(path):
    """``(options, stages, stored fingerprint)`` of a model file; ModelError names the file."""
    arrays, header = read_model_file(path)
    try:
        return header["options"], fitted_stages(arrays, header), header.get("fingerprint")
    except (KeyError, TypeError, ParameterError) as exc:
        raise ModelError(f"model file {str(Path(path))!r} is inconsistent: {exc}") from None
