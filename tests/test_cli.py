"""The vpcore command line on a small synthetic corpus written to disk."""

import json

import numpy as np
import pytest
import soundfile as sf

from vpcore.cli import main


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
    code = main(["train", "--corpus", str(corpus_dir), "--out", str(out), "--components", "8",
                 "--rank", "8", "--lda", "5", "--asnorm-top", "10", "--seed", "1", "--quiet",
                 "--exclude-speakers", str(exclude)])
    assert code == 0
    return out


def test_train_writes_a_loadable_model_without_excluded_speakers(trained, capsys):
    assert main(["info", "--model", str(trained)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["options"]["n_components"] == 8
    assert info["training"]["speakers"] == 9  # spk009 was excluded
    assert info["calibration"]["prior"] == pytest.approx(0.1)


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
