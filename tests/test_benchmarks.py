"""Smoke checks of the benchmark scripts on tiny inputs: each runs and writes well-formed JSON.

The real benchmarks take minutes and are run by hand (docs/benchmarks.md);
here every script runs on a small synthetic model, a handful of utterances,
N = 1000 voiceprints, and a few requests to a real server process.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402

ENV_KEYS = {"commit", "date", "cpu_model", "cpu_count", "python", "versions", "blas"}


def read_result(path):
    doc = json.loads(Path(path).read_text())
    assert ENV_KEYS <= set(doc["environment"]), doc["environment"].keys()
    versions = doc["environment"]["versions"]
    for lib in ("numpy", "scipy", "sklearn", "librosa"):
        assert versions[lib], lib
    assert isinstance(doc["environment"]["blas"], list)
    return doc


def run_script(args, timeout=240):
    out = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    """4 synthetic speakers x 4 WAV files, an enrolment list, Kaldi trials and ages."""
    root = tmp_path_factory.mktemp("tiny-corpus")
    layout = common.write_synthetic_corpus(root / "audio", n_speakers=4, n_utterances=4,
                                           duration=(3.0, 3.5), seed=3)
    enroll, trials = [], []
    for spk, files in layout.items():
        enroll.append(f"{spk} " + " ".join(f"audio/{f}" for f in files[:2]))
    for spk in layout:
        for other, files in layout.items():
            for f in files[2:]:
                trials.append(f"{spk} audio/{f} {'target' if spk == other else 'nontarget'}")
    (root / "enroll.txt").write_text("\n".join(enroll) + "\n")
    (root / "trials.txt").write_text("\n".join(trials) + "\n")
    ages = ["speaker|sex|age"] + [f"{spk}|F|{8 if i < 2 else 30}"
                                  for i, spk in enumerate(sorted(layout))]
    (root / "speakers.psv").write_text("\n".join(ages) + "\n")
    return root


def test_environment_is_complete():
    env = common.environment()
    assert ENV_KEYS <= set(env)
    assert env["cpu_count"] >= 1 and env["python"].count(".") == 2
    json.dumps(env)


def test_accuracy_script_writes_every_stage(tiny_corpus, small_model_path, tmp_path):
    path = run_script(["benchmarks/accuracy.py", "--model", small_model_path,
                       "--root", tiny_corpus, "--trials", tiny_corpus / "trials.txt",
                       "--enroll", tiny_corpus / "enroll.txt",
                       "--speakers", tiny_corpus / "speakers.psv", "--name", "tiny",
                       "--out-dir", tmp_path, "--cache-dir", tmp_path / "cache", "--quiet"])
    doc = read_result(path)
    assert doc["benchmark"] == "accuracy" and path.name == "accuracy-tiny.json"
    assert doc["protocol"]["target"] == 8 and doc["protocol"]["nontarget"] == 24
    for name in ("gmm_ubm_map", "ivector_cosine", "ivector_lda_cosine", "plda", "plda_asnorm",
                 "calibrated"):
        m = doc["systems"][name]
        assert 0.0 <= m["eer"] <= 1.0 and 0.0 <= m["min_cllr"] <= 1.0
    cal = doc["systems"]["calibrated"]
    assert {"far", "frr", "cllr", "act_dcf_0.01"} <= set(cal)
    assert set(doc["subsets"]) >= {"children", "adults"}
    for plot in doc["plots"].values():
        assert (tmp_path / Path(plot).name).stat().st_size > 1000
    # cached takes make a second run reuse them (resumable)
    assert any((tmp_path / "cache").iterdir())


def test_voxceleb_runner_on_a_seeded_pair_list(tiny_corpus, small_model_path, tmp_path):
    trials = tmp_path / "pairs.txt"
    path = run_script(["benchmarks/voxceleb.py", "--model", small_model_path,
                       "--make-trials", 12, "--audio-root", tiny_corpus / "audio",
                       "--trials", trials, "--seed", 1, "--name", "vox-tiny",
                       "--out-dir", tmp_path, "--cache-dir", tmp_path / "takes", "--quiet"])
    lines = trials.read_text().split("\n")
    assert all(line.split()[0] in "01" and len(line.split()) == 3 for line in lines if line)
    doc = read_result(path)
    assert doc["benchmark"] == "voxceleb" and doc["protocol"]["trials_scored"] == 12
    assert 0.0 <= doc["metrics"]["eer"] <= 1.0
    assert len(list((tmp_path / "takes").glob("*.take"))) > 0
    from benchmarks.voxceleb import make_trials

    again = make_trials(tiny_corpus / "audio", tmp_path / "again.txt", 12, seed=1)
    assert again.read_text() == trials.read_text()  # seeded
    two = make_trials(tiny_corpus / "audio", tmp_path / "two.txt", 6, seed=1,
                      speakers=["spk000", "spk001"])
    for line in two.read_text().split():
        assert line in "01" or line.split("/")[0] in ("spk000", "spk001")


def test_speed_script(small_model_path, tmp_path):
    from benchmarks import speed

    speed.main(["--model", str(small_model_path), "--durations", "3", "--repeat", "2",
                "--naive-components", "8", "--out-dir", str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "speed.json")
    stages = doc["stages"]["3s"]["ms"]
    assert set(stages) == {"base64", "wav_parse", "features", "speech_detector", "statistics",
                           "ivector", "backend_plda", "plda_llr", "asnorm", "calibration",
                           "verify", "end_to_end"}
    assert set(doc["stages"]["3s"]["cpu_ms"]) == set(stages)
    assert all(v["median"] > 0 for v in stages.values())
    assert doc["memory"]["rss_after_load"] > doc["memory"]["rss_after_imports"] > 0
    assert doc["memory"]["tv_cache_bytes"] > 0 and doc["threads"] == 1


def test_request_script_in_process(small_model_path, tmp_path):
    from benchmarks import request

    request.main(["--model", str(small_model_path), "--root", str(tmp_path), "--repeat", "2",
                  "--no-http", "--out-dir", str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "request.json")
    stages = doc["in_process"]["ms"]
    assert set(stages) == {"body_read", "json", "base64", "wav_parse", "extract", "store_read",
                           "score", "response", "flask"}
    assert all(v["median"] > 0 for v in stages.values())
    assert 0.0 <= doc["in_process"]["confidence"] <= 1.0


def test_paired_script_times_another_copy_of_the_library(small_model_path, tmp_path):
    from benchmarks import paired

    paired.main([str(common.ROOT / "vpcore"), "--label", "this code", "--model",
                 str(small_model_path), "--root", str(tmp_path), "--repeat", "2",
                 "--out-dir", str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "paired.json")
    assert doc["before"] == "this code"
    assert {"features", "speech_detector", "ivector", "library_end_to_end"} <= set(doc["stages"])
    assert all(v["after_over_before"] > 0 for v in doc["stages"].values())


def test_faiss_script_agrees_with_the_gallery(small_model_path, tmp_path):
    pytest.importorskip("faiss", reason="faiss-cpu is an optional benchmark reference")
    from benchmarks import faiss_1vn

    faiss_1vn.main(["--model", str(small_model_path), "--root", str(tmp_path), "--sizes", "500",
                    "--real-voices", "2", "--out-dir", str(tmp_path), "--quiet"])
    (row,) = read_result(tmp_path / "faiss_1vn.json")["sizes"]
    assert row["faiss_asnorm"]["same_top_rows"]
    assert row["faiss_asnorm"]["max_score_difference"] < 1e-3


def test_scale_script(small_model_path, tmp_path):
    from benchmarks import scale

    scale.main(["--model", str(small_model_path), "--sizes", "1000", "--real-voices", "2",
                "--out-dir", str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "scale.json")
    (row,) = doc["sizes"]
    assert row["n"] == 1000 and row["query_ms"]["median"] > 0
    assert row["gallery_bytes"] == 1000 * row["row_bytes"]
    assert len(row["top_rows"]) == 3


def test_gallery_rows_score_like_real_voiceprints(small_model):
    """Generated rows have the packed layout and finite scores."""
    import numpy as np

    from benchmarks.scale import make_gallery, query, real_voiceprints

    real, probe, _ = real_voiceprints(small_model, 2)
    V = make_gallery(small_model, real, 500)
    np.testing.assert_array_equal(V[0], real[0].vector)
    llr, conf = small_model.score_many(V, probe)
    assert np.all(np.isfinite(llr)) and np.all((conf >= 0) & (conf <= 1))
    from vpcore.gallery import Gallery

    top, _ = query(Gallery(small_model, V), probe, 3)
    assert llr[top[0]] == llr.max()


def test_load_script_against_a_real_server(small_model_path, tmp_path):
    from benchmarks import load

    load.main(["--model", str(small_model_path), "--synthetic", "--users", "3",
               "--requests", "12", "--seconds", "30", "--clients", "2", "--workers", "1",
               "--threads", "2", "--consistency-threshold", "0", "--out-dir", str(tmp_path),
               "--quiet"])
    doc = read_result(tmp_path / "load.json")
    assert doc["requests"] == 12 and doc["errors"] == 0, doc["error_samples"]
    assert doc["users"]["enrolled"] == 3
    assert doc["latency_ms"]["all"]["p50"] > 0 and doc["requests_per_s"] > 0
    assert doc["server"]["host"] == "127.0.0.1"


def test_render_table_from_results(tiny_corpus, small_model_path, tmp_path):
    from benchmarks import render_table, scale

    scale.main(["--model", str(small_model_path), "--sizes", "1000", "--real-voices", "2",
                "--out-dir", str(tmp_path), "--quiet"])
    doc_path = tmp_path / "benchmarks.md"
    render_table.main(["--results-dir", str(tmp_path), "--doc", str(doc_path)])
    text = doc_path.read_text()
    assert text.startswith("# Benchmarks") and "## 1-v-N scale" in text
    assert "NOT vpcore" in text


def test_service_1vn_script_against_a_real_server(small_model_path, tmp_path):
    from benchmarks import service_1vn

    service_1vn.main(["--model", str(small_model_path), "--sizes", "300", "--requests", "4",
                      "--real-voices", "2", "--out-dir", str(tmp_path), "--work-dir",
                      str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "service_1vn.json")
    (row,) = doc["sizes"]
    assert row["n"] == 300 and row["group_size"] == 3
    assert row["all_groups_ms"]["p50"] > 0 and row["one_group_ms"]["p50"] > 0
    assert row["top_candidate"]["user_name"].startswith("u")
    assert 0.0 <= row["top_candidate"]["confidence"] <= 1.0


def test_dask_training_script_on_a_tiny_corpus(synthetic_corpus, tmp_path):
    pytest.importorskip("distributed", reason="needs the 'dask' extra")
    import soundfile as sf

    from benchmarks import dask_training

    for corpus, items in (("speechocean762", synthetic_corpus[:48]),
                          ("librispeech-mini", synthetic_corpus[48:60])):
        for speaker, utt, samples in items:
            folder = tmp_path / "data" / corpus / "train" / speaker
            folder.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f"{utt}.wav", samples, 16000, subtype="PCM_16")
    dask_training.main(["--root", str(tmp_path / "data"), "--workers", "1", "--out-dir",
                        str(tmp_path), "--train-args", "--components", "8", "--rank", "8",
                        "--lda", "5", "--asnorm-top", "10"])
    doc = read_result(tmp_path / "dask_training.json")
    (run,) = doc["runs"]
    assert run["workers"] == 1 and run["wall_seconds"] > 0
    assert run["training"]["speakers"] == 10 and len(run["fingerprint"]) == 16


def test_replicas_script_on_postgresql(small_model_path, tmp_path):
    import os

    if not os.environ.get("VPCORE_TEST_POSTGRES"):
        pytest.skip("VPCORE_TEST_POSTGRES is not set: no PostgreSQL server to run against "
                    "(source .ci/postgres to start a throwaway one)")
    from benchmarks import replicas

    replicas.main(["--model", str(small_model_path), "--replicas", "1",
                   "--reference-workers", "1", "--requests", "8", "--seconds", "30",
                   "--users", "2", "--clients", "2", "--out-dir", str(tmp_path),
                   "--name", "replicas"])
    doc = read_result(tmp_path / "replicas.json")
    assert doc["runs"] and all(run["errors"] == 0 for run in doc["runs"]), doc["runs"]


def test_quality_script(tmp_path):
    from benchmarks import quality

    quality.main(["--durations", "3", "--repeat", "2", "--snrs", "10", "--utterances", "2",
                  "--data", str(tmp_path / "no-corpus"), "--out-dir", str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "quality.json")
    ms = doc["timings"]["3s"]["ms"]
    assert set(ms) == {"snr_estimate", "net_speech_seconds", "clipping_ratio", "assess"}
    assert all(v["median"] > 0 for v in ms.values())
    row = doc["snr_accuracy"]["synthetic"]["by_snr"]["10dB"]
    assert row["p10_error_db"] <= row["median_error_db"] <= row["p90_error_db"]


def test_enrolment_consistency_script_records_its_environment(tiny_corpus, small_model_path,
                                                               tmp_path):
    enroll = tmp_path / "enroll3.txt"
    lines = [f"{d.name} " + " ".join(f"audio/{d.name}/{f.name}" for f in sorted(d.iterdir())[:3])
             for d in sorted((tiny_corpus / "audio").iterdir())]
    enroll.write_text("\n".join(lines) + "\n")
    path = run_script(["benchmarks/enrolment_consistency.py", "--model", small_model_path,
                       "--data", tiny_corpus, "--enroll", enroll, "--name", "consistency-tiny",
                       "--out-dir", tmp_path])
    doc = read_result(path)
    assert doc["benchmark"] == "enrolment_consistency" and path.name == "consistency-tiny.json"
    assert doc["genuine_checks"] == 8 and doc["impostor_checks"] == 12
    assert all(0.0 <= r["genuine_refused"] <= 1.0 for r in doc["rates"])


def test_low_rank_precision_is_exact_at_full_rank_and_glembeks_at_rank_zero(small_model):
    import numpy as np

    from benchmarks.precision_approx import LowRankPrecision, transform_with

    tv, weights = small_model.tv_, small_model.ubm_.params[0]
    C = tv.n_components_
    rng = np.random.default_rng(0)
    n = rng.gamma(2.0, 10.0, C)
    exact = n.astype(np.float32) @ tv._tt_packed
    scale = np.abs(exact).max()
    full = LowRankPrecision(tv, weights, C)
    assert full.energy == pytest.approx(1.0)
    np.testing.assert_allclose(full.packed(n), exact, rtol=0, atol=1e-4 * scale)
    zero = LowRankPrecision(tv, weights, 0)
    np.testing.assert_allclose(zero.packed(n), n.sum() * (weights @ tv._tt_packed),
                               rtol=0, atol=1e-5 * scale)
    # at full rank the i-vector is the exact one; no take falls back
    f = rng.standard_normal((C, tv.n_features_))
    fallbacks = [0]
    w = transform_with(tv, full.packed, tv.transform_one, fallbacks)(n, f)
    np.testing.assert_allclose(w, tv.transform_one(n, f), rtol=1e-3, atol=1e-4)
    assert fallbacks == [0]


def test_low_rank_precision_falls_back_to_the_exact_ivector_when_indefinite(small_model):
    import numpy as np

    from benchmarks.precision_approx import transform_with

    tv = small_model.tv_
    C, D = tv.n_components_, tv.n_features_
    P = tv._tt_packed.shape[1]
    fallbacks = [0]
    n, f = np.full(C, 5.0), np.ones((C, D))
    indefinite = lambda n: np.full(P, -1.0, dtype=np.float32)  # noqa: E731
    w = transform_with(tv, indefinite, tv.transform_one, fallbacks)(n, f)
    np.testing.assert_array_equal(w, tv.transform_one(n, f))
    assert fallbacks == [1]


def test_paired_script_gives_the_older_side_its_own_model(small_model_path, tmp_path):
    from benchmarks import paired

    paired.main([str(common.ROOT / "vpcore"), "--model", str(small_model_path),
                 "--before-model", str(small_model_path), "--root", str(tmp_path),
                 "--repeat", "2", "--out-dir", str(tmp_path), "--quiet"])
    doc = read_result(tmp_path / "paired.json")
    assert doc["before_model"] == common.relative(small_model_path)


def test_front_end_variant_is_the_recipe_with_the_options_given():
    from benchmarks import front_end
    from vpcore.errors import ParameterError

    model = front_end.variant({"cvn": True}, {"tv_rank": 120, "lda_dim": 120})
    assert (model.tv_rank, model.lda_dim, model.features.cvn) == (120, 120, True)
    assert (model.augment_copies, model.random_state) == (1, 0)  # the shipped recipe
    with pytest.raises(ParameterError, match="lda_dim=150 must be <= 120"):
        front_end.variant({}, {"tv_rank": 120})
    with pytest.raises(ParameterError, match=r"\['random_state'\] must be among"):
        front_end.variant({}, {"random_state": 1})  # the recipe's seed is not a variant
    with pytest.raises(ParameterError, match="FeatureOptions"):
        front_end.variant({"no_such_field": 1}, {})
    assert front_end.label({}, {"tv_rank": 150}) == ("extractor", "tv_rank150")
    assert front_end.label({"cvn": True}, {}) == ("front_end", "cvntrue")


def test_front_end_compare_counts_changes_in_standard_errors():
    from benchmarks import front_end

    ref = {"eer": 0.1, "frr_at_0_7": 0.5, "far_at_0_7": 0.0, "min_dcf_0.01": 0.3,
           "n_target": 200, "n_nontarget": 8000}
    se = (0.1 * 0.9 / 200) ** 0.5
    new = {**ref, "eer": 0.1 + 2 * se, "frr_at_0_7": 0.5 - 0.005, "min_dcf_0.01": 0.25}
    rows = front_end.compare({"clean": new}, {"clean": ref})["clean"]
    assert rows["EER"]["sigmas"] == pytest.approx(2.0)
    assert rows["FRR at 0.7"]["change"] == pytest.approx(-0.005)
    assert rows["FAR at 0.7"]["sigmas"] == 0.0  # a zero rate still has a finite error
    assert rows["minDCF(0.01)"]["change"] == pytest.approx(-0.05)
    assert "(+2.0 SE)" in front_end.comparison_table({"clean": rows})


def _trials(seed, n_speakers=10, per_speaker=40):
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.arange(n_speakers), per_speaker)
    labels = np.tile(np.arange(per_speaker) < 5, n_speakers)
    llr = rng.normal(np.where(labels, 2.0, -2.0), 1.0)
    return keys, labels, llr, 1.0 / (1.0 + np.exp(-llr))


def test_paired_accuracy_of_a_model_against_itself_is_zero_and_within_noise():
    from benchmarks import paired_accuracy

    keys, labels, llr, conf = _trials(0)
    draws = paired_accuracy.bootstrap_draws(keys, 50)
    assert all(set(np.unique(keys[d])) <= set(keys) and len(d) % 40 == 0 for d in draws)
    out = paired_accuracy.paired_differences((llr, conf), (llr, conf), labels, draws)
    assert all(r["difference"] == 0 and r["interval_90"] == [0, 0] for r in out.values())
    assert {r["verdict"] for r in out.values()} == {"within noise"}


def test_paired_accuracy_flags_a_clearly_worse_model():
    from benchmarks import paired_accuracy

    keys, labels, llr, conf = _trials(1)
    worse = np.where(labels, llr - 3.0, llr)  # every target trial loses 3 nats
    draws = paired_accuracy.bootstrap_draws(keys, 200)
    out = paired_accuracy.paired_differences(
        (llr, conf), (worse, 1.0 / (1.0 + np.exp(-worse))), labels, draws)
    assert out["eer"]["verdict"] == "worse" and out["frr_at_0_7"]["verdict"] == "worse"
    assert out["far_at_0_7"]["difference"] == 0  # non-target trials did not move
    assert "**worse**" in paired_accuracy.table({"clean": out})


def test_speech_equivalence_counts_equal_cues_and_changed_decisions():
    from benchmarks import speech_equivalence
    from vpcore.speech import SpeechCues, speech_cues

    inputs = [("a", np.zeros(16000 * 3)),
              ("b", np.random.default_rng(0).standard_normal(16000 * 3) * 0.1)]
    same = speech_equivalence.compare(speech_cues, speech_cues, inputs)
    assert same["decisions_differ"] == 0 and same["bitwise_equal"]["voiced"] == 2
    assert set(same["max_abs_difference"].values()) == {0.0}

    def always_speech(x):
        return SpeechCues(1.0, 1.0, 1.0, 0.0)

    other = speech_equivalence.compare(speech_cues, always_speech, inputs)
    assert other["decisions_differ"] == 2 and other["differing_inputs"] == ["a", "b"]


def test_backend_sweep_rebuilds_the_recipes_units(synthetic_corpus):
    pytest.importorskip("pyroomacoustics")
    pytest.importorskip("av")
    from benchmarks import backend_sweep
    from vpcore.model import VoiceprintModel

    waves = [c[2] for c in synthetic_corpus]
    speakers = [c[0] for c in synthetic_corpus]
    small = dict(n_components=16, tv_rank=20, lda_dim=10, asnorm_top=20, random_state=0)
    model = VoiceprintModel(**small, augment_copies=1).fit(waves, speakers)
    units = backend_sweep.recipe_units(model, waves, speakers)
    ivecs, spk, origin, x_ivecs, x_spk, x_origin = units
    assert len(ivecs) + len(x_ivecs) == (model.training_summary_["backend_units"]
                                         + model.training_summary_["extra_units"])
    assert all(speakers[i] == s for i, s in zip(x_origin, x_spk))  # a copy keeps its speaker
    # refitted with the model's own options, the backend is the model's, bit for bit
    same = backend_sweep.refit(copy.deepcopy(model), units)
    assert same.fingerprint == model.fingerprint
    assert backend_sweep.same_backend(same, model) == 0.0
    other = backend_sweep.refit(copy.deepcopy(model), units, lda_dim=6)
    assert other.lda_dim == 6 and other.fingerprint != model.fingerprint
    assert other.backend_.transform(ivecs[:3]).shape == (3, 6)


def test_pooled_rows_pool_the_other_voiceprints_and_the_common_threshold(small_model,
                                                                         synthetic_corpus):
    from benchmarks.two_sided_cohort import common_threshold
    from vpcore.normalisation import top_n_stats

    by_spk = {}
    for spk, _, wave in synthetic_corpus:
        by_spk.setdefault(spk, []).append(wave)
    V = np.stack([small_model.enroll([small_model.extract(w) for w in waves[:3]]).vector
                  for waves in list(by_spk.values())[:6]])
    sc, L = small_model.scorer_, small_model.scorer_.layout
    W = sc.pooled_rows(V, V[:, L.mean].astype(np.float64), np.arange(len(V)))
    np.testing.assert_array_equal(W[:, L.mean], V[:, L.mean])  # only the statistics change
    rows = sc.prepare(V.astype(np.float64), np.float64)
    cohort = sc.raw(rows, sc.cohort)
    dom = sc.raw(rows, V[:, L.mean].astype(np.float64))
    K, P = cohort.shape[1], cohort.shape[1] + len(V) - 1
    for e in range(len(V)):  # by definition: the top of cohort + the other rows, own left out
        pool = np.concatenate([cohort[e], np.delete(dom[e], e)])
        mu, sd = top_n_stats(pool, min(P, max(1, round(sc.asnorm_top * P / K))))
        assert W[e, L.index("norm_mean")] == pytest.approx(mu, rel=1e-5, abs=1e-5)
        assert W[e, L.index("norm_std")] == pytest.approx(sd, rel=1e-5, abs=1e-6)
    # the common threshold keeps the worst condition's false accepts at the limit
    rng = np.random.default_rng(0)
    per = {c: (np.concatenate([rng.normal(m, 1, 50), rng.normal(0, 1, 500)]),
               np.r_[np.ones(50, bool), np.zeros(500, bool)]) for c, m in (("a", 3), ("b", 2))}
    t = common_threshold(per, 0.02)
    assert max(np.mean(s[~y] >= t) for s, y in per.values()) <= 0.02
    below = np.concatenate([s for s, _ in per.values()])
    below = below[below < t].max()  # the next lower candidate already lets too many through
    assert max(np.mean(s[~y] >= below) for s, y in per.values()) > 0.02
