"""Augmentation: each condition does what it says, deterministically, and bad options fail early."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vpcore import augment
from vpcore.augment import Augmenter
from vpcore.errors import ParameterError, VpcoreError
from vpcore.synth import SyntheticSpeaker, synthesize

SR = 16000


@pytest.fixture(scope="module")
def speech():
    return synthesize(SyntheticSpeaker.from_seed(3), duration=4.0, random_state=1)


@pytest.fixture(scope="module")
def talkers():
    return [synthesize(SyntheticSpeaker.from_seed(10 + i), duration=3.0, random_state=i)
            for i in range(5)]


def _power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


def _band_power(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


def test_add_noise_reaches_the_snr(speech):
    rng = np.random.default_rng(0)
    noise = augment.coloured_noise(len(speech), 0.0, rng)
    for snr in (0.0, 7.5, 20.0):
        y = augment.add_noise(speech * 0.3, noise, snr)
        added = y.astype(np.float64) - speech * 0.3
        measured = 10 * np.log10(_power(speech * 0.3) / _power(added))
        assert measured == pytest.approx(snr, abs=0.01)


@pytest.mark.parametrize("exponent, db_per_octave", [(0.0, 0.0), (1.0, -3.0), (2.0, -6.0)])
def test_coloured_noise_has_its_slope(exponent, db_per_octave):
    x = augment.coloured_noise(SR * 8, exponent, np.random.default_rng(1))
    assert np.std(x) == pytest.approx(1.0, rel=1e-6)
    # power per octave band ~ f^(1-exponent); the density slope is what we check
    lo = _band_power(x, 500, 1000) / 500
    hi = _band_power(x, 1000, 2000) / 1000
    assert 10 * np.log10(hi / lo) == pytest.approx(db_per_octave, abs=0.6)


def test_nonstationary_noise_varies_in_level():
    x = augment.nonstationary_noise(SR * 6, np.random.default_rng(2))
    frames = x[: len(x) // 800 * 800].reshape(-1, 800)
    level = 10 * np.log10(np.mean(frames**2, axis=1))
    assert np.percentile(level, 95) - np.percentile(level, 5) > 6.0
    white = augment.coloured_noise(SR * 6, 0.0, np.random.default_rng(2))
    frames = white[: len(white) // 800 * 800].reshape(-1, 800)
    wl = 10 * np.log10(np.mean(frames**2, axis=1))
    assert np.percentile(wl, 95) - np.percentile(wl, 5) < 1.5


def test_babble_mixes_every_talker_and_accepts_loaders(talkers):
    rng = np.random.default_rng(3)
    b = augment.babble(talkers, SR * 2, rng)
    assert b.shape == (SR * 2,) and np.std(b) == pytest.approx(1.0, rel=1e-5)
    lazy = augment.babble([lambda t=t: t for t in talkers], SR * 2, np.random.default_rng(3))
    np.testing.assert_array_equal(b, lazy)
    with pytest.raises(ParameterError, match="at least one source"):
        augment.babble([], 100, rng)


def test_room_impulse_response_has_about_its_rt60():
    import pyroomacoustics as pra

    for rt60 in (0.3, 0.8):
        h = augment.room_impulse_response(rt60, [6.0, 5.0, 3.0], 1.5, np.random.default_rng(4))
        assert np.argmax(np.abs(h)) == 0 and np.max(np.abs(h)) == pytest.approx(1.0)
        measured = pra.experimental.measure_rt60(h, fs=SR)
        assert 0.7 * rt60 < measured < 1.4 * rt60


def test_reverberation_smears_but_keeps_length_and_level(speech):
    h = augment.room_impulse_response(0.9, [8.0, 6.0, 3.0], 3.0, np.random.default_rng(5))
    y = augment.reverberate(speech * 0.5, h)
    assert y.shape == speech.shape
    assert _power(y) == pytest.approx(_power(speech * 0.5), rel=0.05)
    # the silence after the speech fills up with the room's tail
    tail = slice(int(3.9 * SR), None)
    assert _power(y[tail]) > 10 * _power(speech[tail] * 0.5) or _power(speech[tail]) == 0


def test_band_limit_removes_out_of_band_energy():
    t = np.arange(SR) / SR
    tones = {f: (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (100, 1000, 6000)}
    out = {f: augment.band_limit(x) for f, x in tones.items()}
    assert _power(out[1000]) == pytest.approx(_power(tones[1000]), rel=0.05)
    for f in (100, 6000):
        assert 10 * np.log10(_power(out[f]) / _power(tones[f])) < -30


@pytest.mark.parametrize("codec", augment.available_codecs())
def test_codec_round_trip_keeps_the_signal(codec, speech):
    y = augment.codec_round_trip(speech * 0.5, codec, bit_rate=None)
    assert y.shape == speech.shape and np.all(np.isfinite(y))
    # lossy, but still the same waveform in the codec's band (delays of a few ms allowed)
    lo, hi = 300, 3400 if augment.CODECS[codec].rate == 8000 else 7000
    assert _band_power(y, lo, hi) == pytest.approx(_band_power(speech * 0.5, lo, hi), rel=0.5)
    if augment.CODECS[codec].rate == 8000:
        assert _band_power(y, 4100, 8000) < 0.01 * _band_power(y, 0, 8000)


def test_telephone_is_narrowband(speech):
    codec = [c for c in ("mulaw", "alaw") if c in augment.available_codecs()][0]
    y = augment.telephone(speech * 0.5, codec)
    assert _band_power(y, 3800, 8000) < 0.01 * _band_power(y, 300, 3400)
    assert _band_power(y, 0, 150) < 0.02 * _band_power(y, 300, 3400)
    with pytest.raises(ParameterError, match="narrowband"):
        augment.telephone(speech, "g722")


def test_gain_and_clip(speech):
    y = augment.gain_and_clip(speech, 20.0, clip=0.4)
    assert np.max(np.abs(y)) <= 0.4 + 1e-7
    assert np.mean(np.abs(y) >= 0.4 - 1e-6) > 0.01
    quiet = augment.gain_and_clip(speech, -20.0)
    assert _power(quiet) == pytest.approx(_power(speech) / 100, rel=1e-4)


def test_equalise_changes_the_spectrum_not_the_length(speech):
    y = augment.equalise(speech * 0.3, np.random.default_rng(6), eq_db=10.0)
    assert y.shape == speech.shape
    bands = [(200, 600), (600, 1500), (1500, 4000), (4000, 7500)]
    ratio = [10 * np.log10(_band_power(y, *b) / _band_power(speech * 0.3, *b)) for b in bands]
    assert np.ptp(ratio) > 2.0


def test_augmenter_is_deterministic_and_seeds_matter(speech, talkers):
    aug = Augmenter(conditions=augment.CONDITIONS, random_state=3, n_rooms=2)
    for cond in aug.conditions:
        a, info_a = aug.augment(speech, seed=[5, 1], condition=cond, babble_sources=talkers)
        b, info_b = Augmenter(conditions=augment.CONDITIONS, random_state=3, n_rooms=2).augment(
            speech, seed=[5, 1], condition=cond, babble_sources=talkers)
        np.testing.assert_array_equal(a, b)
        assert info_a == info_b and info_a["condition"] == cond
        c, _ = aug.augment(speech, seed=[5, 2], condition=cond, babble_sources=talkers)
        assert not np.array_equal(a, c)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_every_draw_is_a_valid_waveform(seed, speech, talkers):
    aug = Augmenter(conditions=("noise", "babble", "reverb", "mic"), n_rooms=2)
    y, info = aug.augment(speech, seed=seed, babble_sources=talkers)
    assert y.dtype == np.float32 and y.shape == speech.shape
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
    if "snr_db" in info:
        assert aug.snr_db[0] <= info["snr_db"] <= max(aug.snr_db[1], aug.babble_snr_db[1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(conditions=()), "conditions is empty"),
    (dict(conditions=("noise", "thunder")), "'thunder' is unknown"),
    (dict(snr_db=(10.0, 0.0)), "snr_db=.*low <= high"),
    (dict(snr_db=(0.0, 90.0)), r"snr_db\[1\]=90.0 must be <= 40"),
    (dict(snr_db=5), "snr_db=5 must be a"),
    (dict(rt60=(0.0, 1.0)), r"rt60\[0\]=0.0 must be >= 0.1"),
    (dict(babble_talkers=(2.5, 4)), "babble_talkers=.*integers"),
    (dict(codecs=("speex",)), "codec='speex' must be one of"),
    (dict(conditions=("telephone",), codecs=("mp3",)), "needs a narrowband codec"),
    (dict(n_rooms=0), "n_rooms=0 must be >= 1"),
    (dict(clip_probability=1.5), "clip_probability=1.5 must be <= 1"),
    (dict(style_semitones=(-2.0, 20.0)), r"style_semitones\[1\]=20.0 must be <= 12"),
    (dict(style_tempo=(1.2, 0.9)), "style_tempo=.*low <= high"),
])
def test_bad_options_are_refused_up_front(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Augmenter(**kwargs)


def test_a_codec_that_is_not_installed_is_refused_clearly(monkeypatch):
    monkeypatch.setattr(augment, "available_codecs", lambda: ("mulaw",))
    with pytest.raises(ParameterError, match="'amr-nb' is not available.*libopencore_amrnb"):
        Augmenter(codecs=("mulaw", "amr-nb"))


def test_babble_without_sources_and_foreign_condition(speech):
    aug = Augmenter(conditions=("babble", "noise"))
    with pytest.raises(ParameterError, match="babble_sources"):
        aug.augment(speech, seed=0, condition="babble")
    with pytest.raises(ParameterError, match="'reverb' is not one of"):
        aug.augment(speech, seed=0, condition="reverb")
    with pytest.raises(VpcoreError):
        aug.augment(np.array([np.nan, 0.0]), seed=0)


def _f0(x):
    import librosa

    f, voiced, _ = librosa.pyin(x, fmin=60, fmax=600, sr=SR, frame_length=1024)
    return float(np.nanmedian(f[voiced]))


def _envelope_db(x):
    """Long-term spectrum in 500-Hz bands, dB (the formants' share, not the harmonics')."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return np.array([10 * np.log10(spec[(f >= lo) & (f < lo + 500)].mean())
                     for lo in range(500, 6500, 500)])


def test_shift_pitch_moves_the_pitch_and_keeps_envelope_and_level(speech):
    speech = (0.3 * speech).astype(np.float32)  # room for the peaks: the level is then kept
    up = augment.shift_pitch(speech, 4.0)
    assert up.shape == speech.shape and up.dtype == np.float32
    assert _f0(up) / _f0(speech) == pytest.approx(2 ** (4 / 12), rel=0.06)
    assert _power(up) == pytest.approx(_power(speech), rel=0.02)
    # the formants stay: each 500-Hz band within a few dB (the excitation
    # alone, without its envelope re-applied, differs by 10-20 dB)
    kept = np.abs(_envelope_db(up) - _envelope_db(speech))
    assert np.median(kept) < 4.0 and kept.max() < 6.0
    np.testing.assert_array_equal(augment.shift_pitch(speech, 0.0), speech)


def test_speaking_style_follows_arousal(speech):
    rng = lambda: np.random.default_rng(4)  # noqa: E731
    low, low_info = augment.speaking_style(speech, -1.0, rng())
    high, high_info = augment.speaking_style(speech, 1.0, rng())
    assert low_info["semitones"] < high_info["semitones"]
    assert -2.0 <= low_info["semitones"] and high_info["semitones"] <= 5.0
    assert 0.85 <= low_info["tempo"] <= 1.2 and 0.85 <= high_info["tempo"] <= 1.2
    assert len(high) == pytest.approx(len(speech) / high_info["tempo"], rel=0.01)
    assert _f0(high) > _f0(low)
    bright = lambda y: _band_power(y, 2000, 6000) / _band_power(y, 0, 2000)  # noqa: E731
    assert bright(high) > bright(low)  # raised effort is brighter
    assert np.max(np.abs(high)) <= 1.0 and np.all(np.isfinite(low))


def test_style_is_not_drawn_unless_asked(speech, talkers):
    assert "style" in augment.CONDITIONS and "style" not in augment.DEFAULT_CONDITIONS
    assert Augmenter().conditions == augment.DEFAULT_CONDITIONS
    y, info = Augmenter(conditions=("style",)).augment(speech, seed=3)
    assert info["condition"] == "style" and -1 <= info["arousal"] <= 1
    assert len(y) == pytest.approx(len(speech) / info["tempo"], rel=0.01)
    with pytest.raises(ParameterError, match="semitones=13.0 must be <= 12"):
        augment.shift_pitch(speech, 13.0)
