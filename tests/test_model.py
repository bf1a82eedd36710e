"""End-to-end behaviour of VoiceprintModel: training, enrolment, scoring, persistence."""

import json
import zipfile

import numpy as np
import pytest

from vpcore.audio import load_file
from vpcore.errors import (AudioError, ModelError, NotFittedError, ParameterError,
                           TooLittleSpeechError)
from vpcore.model import Take, Voiceprint, VoiceprintModel, load_model
from vpcore.synth import SyntheticSpeaker, synthesize


def _voice(speaker, utt, duration=5.0):
    return synthesize(SyntheticSpeaker.from_seed(speaker), duration=duration, random_state=utt)


@pytest.fixture(scope="module")
def enrolled(small_model):
    """Voiceprints of five training speakers from fresh utterances, and fresh probes."""
    vps = [small_model.enroll([_voice(k, 1000 + j) for j in range(3)]) for k in range(5)]
    probes = [small_model.extract(_voice(k, 2000)) for k in range(5)]
    return vps, probes


def test_same_speaker_scores_above_different_speakers(small_model, enrolled):
    vps, probes = enrolled
    llr = np.array([[small_model.verify(vp, p).llr for p in probes] for vp in vps])
    target = np.diag(llr)
    nontarget = llr[~np.eye(5, dtype=bool)]
    assert target.min() > np.median(nontarget)
    assert target.mean() > np.percentile(nontarget, 90)
    # each probe's best-scoring voiceprint is its own speaker
    assert (llr.argmax(axis=0) == np.arange(5)).all()


def test_confidence_is_a_probability_and_orders_like_llr(small_model, enrolled):
    vps, probes = enrolled
    scores = [small_model.verify(vp, p) for vp in vps for p in probes]
    conf = np.array([s.confidence for s in scores])
    llr = np.array([s.llr for s in scores])
    assert np.all((conf >= 0) & (conf <= 1))
    order = np.argsort(llr)
    assert np.all(np.diff(conf[order]) >= -1e-12)


def test_score_many_equals_verify_one_by_one(small_model, enrolled):
    vps, probes = enrolled
    V = np.stack([vp.vector for vp in vps])
    llrs, confs = small_model.score_many(V, probes[2])
    for i, vp in enumerate(vps):
        s = small_model.verify(vp, probes[2])
        assert llrs[i] == pytest.approx(s.llr, rel=1e-5, abs=1e-5)
        assert confs[i] == pytest.approx(s.confidence, abs=1e-6)


def test_score_many_handles_mixed_enrolment_counts(small_model, enrolled):
    vps, probes = enrolled
    takes = [small_model.extract(_voice(0, 3000 + j)) for j in range(2)]
    mixed = [vps[0], small_model.enroll(takes[:1]), small_model.enroll(takes), vps[3]]
    llrs, _ = small_model.score_many(np.stack([vp.vector for vp in mixed]), probes[0])
    expected = [small_model.verify(vp, probes[0]).llr for vp in mixed]
    np.testing.assert_allclose(llrs, expected, rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_gives_identical_scores(small_model, small_model_path, enrolled):
    vps, probes = enrolled
    loaded = load_model(small_model_path)
    assert loaded.fingerprint == small_model.fingerprint
    wave = _voice(3, 4000)
    a, b = small_model.extract(wave), loaded.extract(wave)
    np.testing.assert_array_equal(a.vector, b.vector)
    for vp in vps:
        assert loaded.verify(vp, b) == small_model.verify(vp, a)


def test_model_file_has_no_pickle_and_a_versioned_header(small_model_path):
    with zipfile.ZipFile(small_model_path) as zf:
        names = zf.namelist()
    assert "header.npy" in names
    with np.load(small_model_path, allow_pickle=False) as npz:  # must not need pickle
        header = json.loads(npz["header"].tobytes())
        assert all(npz[k].dtype != object for k in npz.files)
    assert header["format_version"] == 1
    assert header["features"]["n_mfcc"] == 20
    assert header["features"]["vad"]["energy_threshold"] == 5.5
    assert 0 < header["calibration"]["prior"] < 1


def _rewrite_header(src, dst, change):
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(dst, **arrays)


def test_other_format_version_fails_clearly(small_model_path, tmp_path):
    path = tmp_path / "v99.npz"
    _rewrite_header(small_model_path, path, lambda h: h.update(format_version=99))
    with pytest.raises(ModelError, match="format_version=99"):
        load_model(path)


def test_tampered_arrays_are_detected_by_fingerprint(small_model_path, tmp_path):
    with np.load(small_model_path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["plda_mean"] = arrays["plda_mean"] + 1e-3
    path = tmp_path / "tampered.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelError, match="fingerprint"):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04garbage"])
def test_corrupt_model_file_is_a_model_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="bad.npz"):
        load_model(path)


def test_missing_model_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.npz")


def test_same_seed_same_model_different_seed_differs(synthetic_corpus):
    subset = [c for c in synthetic_corpus if int(c[0][3:]) < 10]
    waves, spk = [c[2] for c in subset], [c[0] for c in subset]
    opts = dict(n_components=8, tv_rank=8, lda_dim=5, asnorm_top=10, tv_iter=3, ubm_iter=3,
                calibration_folds=2)
    feats = VoiceprintModel(**opts).extract_all(waves)
    a = VoiceprintModel(**opts, random_state=3).fit_features(feats, spk)
    b = VoiceprintModel(**opts, random_state=3).fit_features(feats, spk)
    c = VoiceprintModel(**opts, random_state=4).fit_features(feats, spk)
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.tv_.T_, b.tv_.T_)
    assert a.fingerprint != c.fingerprint


def test_take_and_voiceprint_bytes_round_trip(small_model, enrolled):
    vps, probes = enrolled
    t = Take.from_bytes(probes[0].to_bytes())
    np.testing.assert_array_equal(t.vector, probes[0].vector)
    assert (t.n_frames, t.fingerprint) == (probes[0].n_frames, probes[0].fingerprint)
    vp = Voiceprint.from_bytes(vps[0].to_bytes())
    np.testing.assert_array_equal(vp.vector, vps[0].vector)
    assert small_model.verify(vp, t) == small_model.verify(vps[0], probes[0])


@pytest.mark.parametrize("data", [b"", b"VPX1" + b"\0" * 20, b"VPT1\x01"])
def test_corrupt_take_bytes_raise_model_error(data):
    with pytest.raises(ModelError):
        Take.from_bytes(data)


def test_take_of_another_model_is_refused(small_model, enrolled):
    vps, probes = enrolled
    foreign = Take(probes[0].vector, probes[0].n_frames, "0123456789abcdef")
    with pytest.raises(ModelError, match="0123456789abcdef"):
        small_model.verify(vps[0], foreign)


def test_consistency_separates_own_voice_from_another(small_model):
    first = [small_model.extract(_voice(2, 5000))]
    same = small_model.consistency(first, small_model.extract(_voice(2, 5001)))
    other = small_model.consistency(first, small_model.extract(_voice(7, 5002)))
    assert same > 0.5 > other


# ---------------------------------------------------------------- bad input ---

def test_silence_is_too_little_speech(small_model):
    with pytest.raises(TooLittleSpeechError, match="too little speech"):
        small_model.extract(np.zeros(16000 * 5, dtype=np.float32))


def test_dc_offset_alone_is_too_little_speech(small_model):
    with pytest.raises(TooLittleSpeechError):
        small_model.extract(np.full(16000 * 5, 0.3, dtype=np.float32))


@pytest.mark.parametrize("bad", [np.array([np.nan] * 16000), np.array([np.inf] * 16000),
                                 np.zeros((2, 16000)), np.zeros(0)])
def test_non_finite_or_misshaped_audio_is_an_audio_error(small_model, bad):
    with pytest.raises(AudioError):
        small_model.extract(bad)


def test_giant_array_is_refused_before_work(small_model):
    giant = np.broadcast_to(np.float32(0.1), (16000 * 3601,))
    with pytest.raises(AudioError, match="max_duration"):
        small_model.extract(giant)


@pytest.mark.parametrize("kind", ["white", "clipped", "tone"])
def test_odd_audio_gives_a_finite_score_or_a_clear_error(small_model, enrolled, kind):
    vps, _ = enrolled
    rng = np.random.default_rng(0)
    if kind == "white":
        x = rng.standard_normal(16000 * 5).astype(np.float32) * 0.3
    elif kind == "clipped":
        x = np.clip(_voice(1, 6000) * 20, -1, 1)
    else:
        x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(16000 * 5) / 16000)).astype(np.float32)
    try:
        take = small_model.extract(x)
    except AudioError:
        return
    for vp in vps:
        s = small_model.verify(vp, take)
        assert np.isfinite(s.llr) and 0.0 <= s.confidence <= 1.0


def test_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        VoiceprintModel().extract(np.zeros(16000))


@pytest.mark.parametrize("param,value", [("n_components", 1), ("tv_rank", 0),
                                         ("calibration_prior", 1.5), ("lda_dim", 10_000)])
def test_bad_options_name_the_parameter(synthetic_corpus, param, value):
    waves = [c[2] for c in synthetic_corpus[:12]]
    with pytest.raises(ParameterError, match=param):
        VoiceprintModel(**{param: value}).fit(waves, [c[0] for c in synthetic_corpus[:12]])


def test_too_few_speakers_is_a_parameter_error(synthetic_corpus):
    subset = synthetic_corpus[:12]  # two speakers
    with pytest.raises(ParameterError, match="speakers"):
        VoiceprintModel(n_components=4, tv_rank=4, lda_dim=2).fit(
            [c[2] for c in subset], [c[0] for c in subset])


def test_enroll_needs_takes(small_model):
    with pytest.raises(ParameterError, match="takes"):
        small_model.enroll([])


# ------------------------------------------------------------- real speech ---

def _speaker_audio(data_dir, speaker, utterances):
    folder = data_dir / "speechocean762" / "train" / speaker
    files = sorted(folder.glob("*.flac"))
    return [load_file(files[i]) for i in utterances]


@pytest.mark.needs_corpus
def test_default_model_separates_real_speakers(data_dir):
    try:
        model = load_model()
    except ModelError as exc:
        pytest.skip(f"no default model shipped: {exc}")
    speakers = (data_dir / "trials" / "speechocean762-dev.speakers").read_text().split()[:4]
    vps, probes = [], []
    for spk in speakers:
        audio = _speaker_audio(data_dir, spk, range(8))
        vps.append(model.enroll([model.extract(a) for a in audio[:3]]))
        probes.append(model.extract(np.concatenate(audio[5:8])))
    conf = np.array([[model.verify(vp, p).confidence for p in probes] for vp in vps])
    assert (conf.argmax(axis=0) == np.arange(len(speakers))).all()
    assert np.diag(conf).min() > conf[~np.eye(len(speakers), dtype=bool)].max()
