"""The vpcore command line on a small synthetic corpus written to disk."""

import contextlib
import importlib.util
import io
import json

import numpy as np
import pytest
import soundfile as sf

from vpcore.cli import build_parser, corpus_size_warnings, main


@pytest.fixture(scope="module")
def corpus_dir(synthetic_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for speaker, utt, samples in synthetic_corpus[:60]:  # 10 speakers x 6
        (root / speaker).mkdir(exist_ok=True)
        sf.write(root / speaker / f"{utt}.wav", samples, 16000, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def trained(corpus_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model.npz"
    exclude = tmp_path_factory.mktemp("lists") / "exclude.txt"
    exclude.write_text("spk009\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", "--corpus", str(corpus_dir), "--out", str(out), "--components",
                     "8", "--rank", "8", "--lda", "5", "--asnorm-top", "10", "--seed", "1",
                     "--quiet", "--exclude-speakers", str(exclude)])
    assert code == 0
    out.with_suffix(".stderr").write_text(err.getvalue())
    return out


def test_train_writes_a_loadable_model_without_excluded_speakers(trained, capsys):
    assert main(["info", "--model", str(trained)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["options"]["n_components"] == 8
    assert info["training"]["speakers"] == 9  # spk009 was excluded
    assert info["calibration"]["prior"] == pytest.approx(0.1)
    assert info["options"]["in_domain_cohort"] == "both"  # the recipe's default


def test_enroll_then_score_prints_llr_and_confidence(trained, corpus_dir, tmp_path, capsys):
    vp = tmp_path / "spk000.vp"
    takes = [str(p) for p in sorted((corpus_dir / "spk000").glob("*.wav"))[:3]]
    assert main(["enroll", "--model", str(trained), "--out", str(vp)] + takes) == 0
    probes = [str(sorted((corpus_dir / s).glob("*.wav"))[5]) for s in ("spk000", "spk004")]
    capsys.readouterr()
    assert main(["score", "--model", str(trained), "--voiceprint", str(vp)] + probes) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [r[0] for r in rows] == probes
    llr = [float(r[1]) for r in rows]
    conf = [float(r[2]) for r in rows]
    assert all(0.0 <= c <= 1.0 for c in conf)
    assert llr[0] > llr[1]  # own voice above another speaker's


def test_eval_reports_metrics_and_writes_outputs(trained, corpus_dir, tmp_path, capsys):
    trials = tmp_path / "trials.txt"
    lines = []
    for a in range(6, 10):
        for b in range(6, 10):
            lines.append(f"{int(a == b)} spk{a:03d}/spk{a:03d}_utt000.wav "
                         f"spk{b:03d}/spk{b:03d}_utt004.wav")
    trials.write_text("\n".join(lines) + "\n")
    out_json, scores = tmp_path / "r.json", tmp_path / "scores.txt"
    cache = tmp_path / "cache"
    args = ["eval", "--model", str(trained), "--trials", str(trials), "--root", str(corpus_dir),
            "--json", str(out_json), "--scores-out", str(scores), "--cache-dir", str(cache),
            "--quiet"]
    assert main(args) == 0
    report = json.loads(out_json.read_text())
    assert report["n_target"] == 4 and report["n_nontarget"] == 12
    assert 0.0 <= report["eer"] <= 1.0 and 0.0 <= report["far"] <= 1.0
    assert len(scores.read_text().splitlines()) == 16
    cached = sorted(cache.glob("*.take"))
    assert len(cached) == 8  # one take per distinct file
    # a second run reads the cache and gives the same numbers
    assert main(args) == 0
    assert json.loads(out_json.read_text())["eer"] == report["eer"]


def test_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["info", "--model", str(tmp_path / "missing.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--corpus", str(tmp_path), "--out", str(tmp_path / "m.npz")]) == 2
    assert "holds no" in capsys.readouterr().err


# ------------------------------------------------- options checked up front ---

BAD_OPTIONS = [
    ("train", "--components", ["0", "1", "4097", "x", "2.5"]),
    ("train", "--rank", ["0", "1", "-3", "1001"]),
    ("train", "--lda", ["-1", "x"]),
    ("train", "--asnorm-top", ["-1", "1e3"]),
    ("train", "--prior", ["0", "1", "1.5", "-0.1", "nan", "x"]),
    ("train", "--jobs", ["0", "-2", "x"]),
    ("train", "--seed", ["-1", "4294967296", "0.5"]),
    ("train", "--augment", ["-1", "21", "x"]),
    ("train", "--augment-conditions", ["", "noise,snow", "Noise"]),
    ("eval", "--jobs", ["0", "-2"]),
    ("eval", "--threshold", ["-0.1", "1.01", "nan", "x"]),
]
REQUIRED = {"train": ["--corpus", "c", "--out", "m.npz"], "eval": ["--trials", "t.txt"]}


@pytest.mark.parametrize("command,option,value",
                         [(c, o, v) for c, o, values in BAD_OPTIONS for v in values])
def test_every_numeric_option_is_validated_before_work(command, option, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, *REQUIRED[command], f"{option}={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


def test_every_numeric_option_of_the_parser_is_covered():
    """A numeric option added later must join BAD_OPTIONS."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    typed = {(name, opt) for name, p in sub.choices.items() for a in p._actions
             if a.type is not None for opt in a.option_strings if opt.startswith("--")}
    assert typed == {(c, o) for c, o, _ in BAD_OPTIONS}


@pytest.mark.parametrize("value", ["none", "Both", ""])
def test_in_domain_cohort_outside_its_choices_is_refused_before_work(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *REQUIRED["train"], f"--in-domain-cohort={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--in-domain-cohort" in err and "'both', 'probe'" in err


def test_jobs_minus_one_means_all_cores():
    args = build_parser().parse_args(["eval", "--trials", "t", "--jobs", "-1"])
    assert args.jobs == -1


def test_train_into_a_missing_folder_fails_before_training(corpus_dir, tmp_path, capsys):
    out = tmp_path / "nowhere" / "m.npz"
    assert main(["train", "--corpus", str(corpus_dir), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"folder {out.parent} does not exist" in err
    assert "utterances of" not in err  # not even the corpus was read


# ------------------------------------------------------ small corpus warned ---

def test_corpus_size_warnings_name_the_numbers():
    warnings = corpus_size_warnings(n_speakers=9, n_utterances=54, seconds=270.0,
                                    n_components=256, tv_rank=200, lda_dim=150, asnorm_top=100)
    text = "\n".join(warnings)
    assert len(warnings) == 5
    assert "--components 256" in text and "25,600" in text
    assert "54 utterances for --rank 200" in text
    assert "9 speakers for --lda 150" in text and "at most 8" in text
    assert "--asnorm-top 100" in text and "cohort of 18" in text
    assert "9 speakers: calibration" in text


def test_corpus_size_warnings_are_quiet_for_the_default_recipe():
    # the shipped recipe: about 2,000 utterances of 300 speakers, about 5 hours
    assert corpus_size_warnings(300, 2000, 5 * 3600.0, 256, 200, 150, 100) == []


def test_train_on_a_tiny_corpus_warns_with_the_numbers(trained):
    err = trained.with_suffix(".stderr").read_text()
    assert "warning: 9 speakers: calibration" in err
    assert "warning: calibration saw" in err and "target" in err


# ------------------------------------------------------- optional deps first ---

def _dev_trials(tmp_path):
    trials = tmp_path / "trials.txt"
    lines = [f"{int(a == b)} spk{a:03d}/spk{a:03d}_utt000.wav spk{b:03d}/spk{b:03d}_utt004.wav"
             for a in range(6, 10) for b in range(6, 10)]
    trials.write_text("\n".join(lines) + "\n")
    return trials


def test_det_plot_without_matplotlib_fails_before_scoring(trained, corpus_dir, tmp_path,
                                                          monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    cache = tmp_path / "cache"
    code = main(["eval", "--model", str(trained), "--trials", str(_dev_trials(tmp_path)),
                 "--root", str(corpus_dir), "--det-plot", str(tmp_path / "det.png"),
                 "--cache-dir", str(cache), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--det-plot needs matplotlib" in err and "pip install '.[bench]'" in err
    assert not cache.exists()  # nothing was scored


def test_a_failing_plot_keeps_the_finished_report(trained, corpus_dir, tmp_path, monkeypatch,
                                                  capsys):
    from vpcore import plots
    from vpcore.errors import ParameterError

    def broken(*args, **kwargs):
        raise ParameterError("the plot failed")

    monkeypatch.setattr(plots, "plot_det", broken)
    out_json, scores = tmp_path / "r.json", tmp_path / "s.txt"
    code = main(["eval", "--model", str(trained), "--trials", str(_dev_trials(tmp_path)),
                 "--root", str(corpus_dir), "--det-plot", str(tmp_path / "det.png"),
                 "--json", str(out_json), "--scores-out", str(scores), "--quiet"])
    assert code == 2 and "the plot failed" in capsys.readouterr().err
    assert json.loads(out_json.read_text())["n_target"] == 4
    assert len(scores.read_text().splitlines()) == 16


# -------------------------------------------------------- messages that help ---

def test_missing_audio_file_is_named(trained, corpus_dir, tmp_path, capsys):
    take = sorted((corpus_dir / "spk000").glob("*.wav"))[0]
    missing = tmp_path / "a2.wav"
    code = main(["enroll", "--model", str(trained), "--out", str(tmp_path / "vp"), str(take),
                 str(missing)])
    err = capsys.readouterr().err
    assert code == 2 and f"{missing}: the file does not exist" in err and "System error" not in err


def test_info_on_a_wav_says_it_is_not_a_model(corpus_dir, capsys):
    wav = sorted((corpus_dir / "spk000").glob("*.wav"))[0]
    assert main(["info", "--model", str(wav)]) == 2
    err = capsys.readouterr().err
    assert "is not a vpcore model file" in err and "pickle" not in err


def test_model_trials_without_enroll_ask_for_it(trained, corpus_dir, tmp_path, capsys):
    trials = tmp_path / "model.trials"
    trials.write_text("spk006 spk006/spk006_utt004.wav target\n"
                      "spk006 spk007/spk007_utt004.wav nontarget\n")
    code = main(["eval", "--model", str(trained), "--trials", str(trials), "--root",
                 str(corpus_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--enroll" in err and "unusable" not in err


def test_too_little_speech_names_the_file(trained, tmp_path, capsys):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 4, np.float32), 16000, subtype="PCM_16")
    assert main(["enroll", "--model", str(trained), "--out", str(tmp_path / "vp"),
                 str(quiet)]) == 2
    err = capsys.readouterr().err
    assert str(quiet) in err and "too little speech" in err


def test_broken_wav_header_names_the_input_not_an_object():
    from vpcore.audio import decode_bytes
    from vpcore.errors import AudioDecodeError

    with pytest.raises(AudioDecodeError) as info:
        decode_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt junkjunkjunk", "wav")
    message = str(info.value)
    assert message.startswith("data is not a parseable WAV file")
    assert "BytesIO" not in message and "0x" not in message and "fmt" in message


# ------------------------------------------------------ nothing dropped quietly ---

def test_eval_names_each_skipped_take_and_trial(trained, corpus_dir, tmp_path, capsys):
    enroll = tmp_path / "enroll.txt"
    enroll.write_text("m6 spk006/spk006_utt000.wav spk006/gone.wav\n"
                      "m7 spk007/spk007_utt000.wav\n")
    trials = tmp_path / "trials.txt"
    trials.write_text("m6 spk006/spk006_utt004.wav target\n"
                      "m7 spk007/spk007_utt004.wav target\n"
                      "m6 spk007/missing.wav nontarget\n"
                      "m7 spk006/spk006_utt004.wav nontarget\n")
    code = main(["eval", "--model", str(trained), "--trials", str(trials), "--enroll",
                 str(enroll), "--root", str(corpus_dir), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    err = captured.err
    assert f"skipped {corpus_dir / 'spk006' / 'gone.wav'}: " in err
    assert f"skipped {corpus_dir / 'spk007' / 'missing.wav'}: " in err
    assert "skipped trial m6 spk007/missing.wav: test file unusable" in err
    assert "1 trial(s) skipped, 3 scored" in err
    assert json.loads(captured.out)["skipped_trials"] == 1


def test_score_continues_past_bad_files_and_exits_1(trained, corpus_dir, tmp_path, capsys):
    vp = tmp_path / "spk000.vp"
    takes = [str(p) for p in sorted((corpus_dir / "spk000").glob("*.wav"))[:3]]
    assert main(["enroll", "--model", str(trained), "--out", str(vp)] + takes) == 0
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 4, np.float32), 16000, subtype="PCM_16")
    good = [str(sorted((corpus_dir / s).glob("*.wav"))[5]) for s in ("spk000", "spk004")]
    batch = [good[0], str(tmp_path / "missing.wav"), str(quiet), good[1]]
    capsys.readouterr()
    assert main(["score", "--model", str(trained), "--voiceprint", str(vp)] + batch) == 1
    captured = capsys.readouterr()
    assert [line.split("\t")[0] for line in captured.out.splitlines()] == good
    assert f"{tmp_path / 'missing.wav'}: the file does not exist" in captured.err
    assert f"{quiet}" in captured.err and "too little speech" in captured.err
    assert "2 of 4 file(s) could not be scored" in captured.err


def test_enroll_refuses_the_same_file_twice(trained, corpus_dir, tmp_path, capsys):
    take = str(sorted((corpus_dir / "spk000").glob("*.wav"))[0])
    other = str(sorted((corpus_dir / "spk000").glob("*.wav"))[1])
    code = main(["enroll", "--model", str(trained), "--out", str(tmp_path / "vp"), take, other,
                 take])
    err = capsys.readouterr().err
    assert code == 2 and f"{take}: " in err and "copy of take 1" in err
    assert not (tmp_path / "vp").exists()


def test_train_defaults_are_the_model_defaults():
    from vpcore.model import VoiceprintModel

    args = build_parser().parse_args(["train", "--corpus", "c", "--out", "m.npz"])
    model = VoiceprintModel()
    assert (args.components, args.rank, args.lda) == (model.n_components, model.tv_rank,
                                                      model.lda_dim)
