"""Shared fixtures: the corpus folder (when present) and a small model trained on synthetic speech."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from vpcore.corpus import data_root

# CI (.ci/run sets VPCORE_HYPOTHESIS_PROFILE=ci) draws the same examples on every run, so a
# red run can be reproduced and is never a lucky draw; local runs explore new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("VPCORE_HYPOTHESIS_PROFILE", "default"))


def corpus_root():
    """The speech corpora folder, or None on a machine without them."""
    return data_root()


@pytest.fixture(scope="session")
def data_dir():
    root = corpus_root()
    if root is None:
        pytest.skip("speech corpora not found: set VPCORE_DATA or place them in ../shared/data")
    return root


@pytest.fixture(scope="session")
def synthetic_corpus():
    """20 synthetic speakers x 6 utterances of 4-6 s (deterministic)."""
    from vpcore.synth import synthesize_corpus

    return synthesize_corpus(n_speakers=20, n_utterances=6, duration=(4.0, 6.0), random_state=0)


@pytest.fixture(scope="session")
def small_model(synthetic_corpus):
    """A small model (C=16, S=20, R=10) trained on the synthetic corpus in a few seconds."""
    from vpcore.model import VoiceprintModel

    waves = [c[2] for c in synthetic_corpus]
    speakers = [c[0] for c in synthetic_corpus]
    return VoiceprintModel(n_components=16, tv_rank=20, lda_dim=10, asnorm_top=20,
                           random_state=0).fit(waves, speakers)


@pytest.fixture(scope="session")
def small_model_path(small_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.npz"
    small_model.save(path)
    return path
