"""Tests of vpcore.vad (energy voice-activity detection) and its use by the front end."""

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vpcore.errors import ParameterError, TooLittleSpeechError
from vpcore.features import FeatureOptions, extract_features, mfcc
from vpcore.synth import SyntheticSpeaker, synthesize
from vpcore.vad import VadOptions, energy_vad, frame_log_energy

SR = 16000
HOP, WIN = 160, 400


def tone(seconds, freq=440.0, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def frames_inside(n_frames, start, stop, margin):
    """Indices of frames lying wholly in samples [start, stop), ``margin`` frames from each end."""
    first = -(-start // HOP) + margin
    last = (stop - WIN) // HOP - margin
    return np.arange(max(first, 0), min(last, n_frames - 1) + 1)


def vad_of(samples, options=VadOptions()):
    _, log_energy = mfcc(samples)
    return energy_vad(log_energy, options)


# ---------------------------------------------------------------------------
# silence is not speech


def test_all_zero_signal_raises_too_little_speech_with_a_clear_message():
    with pytest.raises(TooLittleSpeechError, match=r"speech frames=0 .* at least 100"):
        vad_of(np.zeros(3 * SR, dtype=np.float32))
    with pytest.raises(TooLittleSpeechError, match="too little speech"):
        extract_features(np.zeros(3 * SR, dtype=np.float32))


@pytest.mark.parametrize("lsb", [1, 4])
def test_near_silence_of_a_few_lsb_raises_too_little_speech(lsb):
    rng = np.random.default_rng(lsb)
    x = rng.integers(-lsb, lsb + 1, size=5 * SR).astype(np.float32) / 32768.0
    with pytest.raises(TooLittleSpeechError):
        extract_features(x)


@pytest.mark.parametrize("level", [0.3, -0.8, 1.0])
def test_a_constant_dc_offset_alone_is_not_speech(level):
    x = np.full(4 * SR, level, dtype=np.float32)
    with pytest.raises(TooLittleSpeechError):
        extract_features(x)


def test_a_dc_offset_does_not_change_which_frames_are_speech():
    x = np.concatenate([tone(1.0), np.zeros(SR, np.float32), tone(1.0)])
    plain = vad_of(x)
    # remove the tone's own (tiny) mean so that only the added offset differs
    np.testing.assert_array_equal(vad_of(x + 0.25), plain)
    assert extract_features(x + 0.25).shape == extract_features(x).shape


def test_too_short_for_min_speech_frames_raises():
    # 0.5 s of loud tone: ~48 frames, fewer than the default 100
    with pytest.raises(TooLittleSpeechError, match="at least 100"):
        extract_features(tone(0.5))


# ---------------------------------------------------------------------------
# pauses are dropped, sound is kept


def test_tone_silence_tone_drops_exactly_the_silence():
    x = np.concatenate([tone(1.0), np.zeros(SR, np.float32), tone(1.0, freq=300.0)])
    speech = vad_of(x)
    n = len(speech)
    assert n == 1 + (len(x) - WIN) // HOP
    ctx = VadOptions().context
    first = frames_inside(n, 0, SR, ctx)
    pause = frames_inside(n, SR, 2 * SR, ctx)
    second = frames_inside(n, 2 * SR, 3 * SR, ctx)
    assert speech[first].all() and speech[second].all()
    assert not speech[pause].any()
    # the blurred region at each boundary is at most a window of context frames
    assert abs(int(speech.sum()) - (len(first) + len(second) + 4 * ctx)) <= 4 * ctx + 6


def test_steady_tone_is_speech_up_to_the_edges():
    speech = vad_of(tone(2.0))
    assert speech.all()


def test_features_keep_only_the_speech_frames():
    x = np.concatenate([tone(1.0), np.zeros(SR, np.float32), tone(1.0, freq=300.0)])
    feats = extract_features(x)
    assert len(feats) == int(vad_of(x).sum())
    no_vad = extract_features(x, FeatureOptions(vad=None))
    assert len(no_vad) == 1 + (len(x) - WIN) // HOP > len(feats)


@functools.lru_cache(maxsize=None)
def speech_with_known_pauses(seed=0):
    """Synthetic speech with two 0.75 s pauses of -70 dB noise inserted at known samples."""
    speaker = SyntheticSpeaker.from_seed(seed)
    rng = np.random.default_rng(seed)
    parts, pauses, pos = [], [], 0
    for k, seconds in enumerate([1.5, 1.5, 1.0]):
        s = synthesize(speaker, seconds, random_state=seed * 10 + k)
        parts.append(s)
        pos += len(s)
        if k < 2:
            p = (rng.standard_normal(12000) * 1e-4).astype(np.float32)
            pauses.append((pos, pos + len(p)))
            parts.append(p)
            pos += len(p)
    return np.concatenate(parts), pauses


def test_synthetic_speech_keeps_its_voiced_frames_and_drops_inserted_pauses():
    x, pauses = speech_with_known_pauses()
    _, log_energy = mfcc(x)
    speech = energy_vad(log_energy)
    n = len(speech)
    in_pause = np.zeros(n, bool)
    for start, stop in pauses:
        idx = frames_inside(n, start, stop, VadOptions().context)
        assert len(idx) > 40
        in_pause[idx] = True
    assert not speech[in_pause].any()
    # "voiced": frames within 25 dB of the loudest frames (an independent criterion)
    voiced = (log_energy > np.percentile(log_energy, 95) - 2.5 * np.log(10)) & ~in_pause
    assert voiced.sum() > 150
    assert speech[voiced].mean() > 0.95
    # and the speech parts are mostly kept (the synthesiser itself has ~20 % pause)
    assert speech[~in_pause].mean() > 0.6


# ---------------------------------------------------------------------------
# the decision rule itself


def test_frame_log_energy_is_on_the_16_bit_scale_and_floored_at_zero():
    frames = np.zeros((3, 400), np.float32)
    frames[1, :] = 1.0 / 32768.0          # one LSB in every sample: energy 400
    frames[2, 0] = 0.5                    # energy (16384)^2
    out = frame_log_energy(frames)
    np.testing.assert_allclose(out, [0.0, np.log(400.0), np.log(16384.0**2)], rtol=1e-6)


log_energies = hnp.arrays(np.float64, st.integers(1, 300),
                          elements=st.floats(0.0, 30.0, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(log_energies, st.floats(0.0, 1.0))
def test_without_context_each_frame_is_judged_alone(le, proportion):
    opts = VadOptions(context=0, proportion=max(proportion, 1e-3), min_speech_frames=1)
    expected = le > opts.energy_threshold + opts.energy_mean_scale * le.mean()
    if expected.sum() < 1:
        with pytest.raises(TooLittleSpeechError):
            energy_vad(le, opts)
    else:
        np.testing.assert_array_equal(energy_vad(le, opts), expected)


@settings(max_examples=60, deadline=None)
@given(log_energies, st.integers(0, 8), st.floats(0.05, 1.0))
def test_decision_is_symmetric_in_time(le, context, proportion):
    opts = VadOptions(context=context, proportion=proportion, min_speech_frames=1)
    try:
        forward = energy_vad(le, opts)
    except TooLittleSpeechError:
        with pytest.raises(TooLittleSpeechError):
            energy_vad(le[::-1].copy(), opts)
        return
    backward = energy_vad(le[::-1].copy(), opts)
    assert forward.dtype == bool and forward.shape == le.shape
    np.testing.assert_array_equal(backward[::-1], forward)


@settings(max_examples=40, deadline=None)
@given(log_energies)
def test_proportion_zero_keeps_every_frame(le):
    opts = VadOptions(proportion=0.0, min_speech_frames=1)
    assert energy_vad(le, opts).all()


def test_voting_removes_a_click_and_fills_a_short_gap():
    le = np.zeros(200)
    le[50] = 25.0                 # an isolated loud frame in silence
    le[100:180] = 25.0            # a speech segment ...
    le[140] = 0.0                 # ... with a one-frame gap
    speech = energy_vad(le, VadOptions(min_speech_frames=1))
    assert not speech[50]
    assert speech[140]
    assert speech[110:170].all() and not speech[:90].any()


def test_min_speech_frames_boundary_is_inclusive():
    le = np.zeros(300)
    le[:120] = 25.0
    kept = int(energy_vad(le, VadOptions(min_speech_frames=1)).sum())
    assert energy_vad(le, VadOptions(min_speech_frames=kept)).sum() == kept
    with pytest.raises(TooLittleSpeechError, match=f"speech frames={kept}"):
        energy_vad(le, VadOptions(min_speech_frames=kept + 1))


def test_threshold_rises_with_the_mean_energy():
    # Frames at 12 pass the bare threshold 5.5 but not 5.5 + 0.5 * mean when
    # most of the utterance is much louder.
    le = np.r_[np.full(150, 30.0), np.full(150, 12.0)]
    speech = energy_vad(le, VadOptions(context=0))
    assert speech[:150].all() and not speech[150:].any()
    relaxed = energy_vad(le, VadOptions(context=0, energy_mean_scale=0.0))
    assert relaxed.all()


# ---------------------------------------------------------------------------
# options


@pytest.mark.parametrize("field, value", [
    ("energy_threshold", float("nan")),
    ("energy_threshold", "5"),
    ("energy_mean_scale", -0.1),
    ("energy_mean_scale", 1.5),
    ("context", -1),
    ("context", 101),
    ("context", 2.0),
    ("proportion", 1.01),
    ("proportion", -0.5),
    ("min_speech_frames", 0),
    ("min_speech_frames", True),
    ("noise_floor_margin", -1.0),
    ("noise_floor_margin", float("inf")),
    ("noise_floor_quantile", 0.0),
    ("noise_floor_quantile", 1.0),
])
def test_invalid_vad_options_name_the_field(field, value):
    with pytest.raises(ParameterError, match=field):
        VadOptions(**{field: value}).validate()


def test_invalid_vad_options_are_caught_through_feature_options():
    with pytest.raises(ParameterError, match="proportion"):
        FeatureOptions(vad=VadOptions(proportion=2.0)).validate()


def test_vad_options_to_dict_round_trip():
    opts = VadOptions(energy_threshold=4.0, context=3, proportion=0.5, min_speech_frames=50)
    assert VadOptions(**opts.to_dict()) == opts
    assert opts.validate() is opts


# ---------------------------------------------------------------------------
# the noise-floor rule


def _in_noise(snr_db, seed=0, seconds=4.0):
    """Tone bursts (1 s on, 1 s off) in white noise at ``snr_db`` (of the bursts' power)."""
    rng = np.random.default_rng(seed)
    x = tone(seconds, amp=0.3)
    on = (np.arange(len(x)) // SR) % 2 == 0
    x = x * on
    noise = rng.normal(size=len(x)).astype(np.float32)
    noise *= np.sqrt(np.mean(x[on] ** 2) / 10 ** (snr_db / 10)) / noise.std()
    return (x + noise).astype(np.float32), on


def test_in_steady_noise_kaldis_rule_keeps_the_pauses_and_the_noise_floor_rule_drops_them():
    x, on = _in_noise(10.0)
    _, le = mfcc(x)
    centre = np.arange(len(le)) * HOP + WIN // 2
    speech_frames, pause_frames = on[centre], ~on[centre]
    plain = energy_vad(le, VadOptions(min_speech_frames=1))
    floor = energy_vad(le, VadOptions(min_speech_frames=1, noise_floor_margin=1.0))
    assert plain[pause_frames].mean() > 0.9  # the noise lifts every frame over the threshold
    assert floor[pause_frames].mean() < 0.05
    assert floor[speech_frames].mean() > 0.9


def test_the_noise_floor_rule_changes_nothing_in_a_quiet_recording():
    x = synthesize(SyntheticSpeaker.from_seed(3), 4.0, random_state=3)
    _, le = mfcc(x)
    np.testing.assert_array_equal(energy_vad(le, VadOptions(noise_floor_margin=1.0)),
                                  energy_vad(le))


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.integers(20, 300), elements=st.floats(0.0, 30.0)),
       st.floats(0.0, 5.0))
def test_the_noise_floor_rule_only_removes_frames(le, margin):
    opts = VadOptions(min_speech_frames=1, context=0, proportion=1.0)
    try:
        base = energy_vad(le, opts)
    except TooLittleSpeechError:
        return
    try:
        with_floor = energy_vad(le, VadOptions(min_speech_frames=1, context=0, proportion=1.0,
                                               noise_floor_margin=margin))
    except TooLittleSpeechError:
        return
    assert not np.any(with_floor & ~base)


def test_vad_options_added_later_are_saved_only_when_set():
    assert set(VadOptions().to_dict()) == {"energy_threshold", "energy_mean_scale", "context",
                                           "proportion", "min_speech_frames"}
    opts = VadOptions(noise_floor_margin=1.5, noise_floor_quantile=0.2)
    assert VadOptions(**opts.to_dict()) == opts
