"""Render the README benchmark table and docs/benchmarks.md from the latest result JSONs.

::

    python benchmarks/render_table.py [--results-dir benchmarks/results] [--doc docs/benchmarks.md]

Prints the compact README table to stdout and writes the full page (every
stage, every figure, how to run each benchmark, published figures of other
systems) to ``--doc`` (``-`` to skip writing).
"""

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common

STAGE_ORDER = ("gmm_ubm_map", "ivector_cosine", "ivector_lda_cosine", "plda", "plda_asnorm",
               "calibrated")
SPEED_STAGES = ("base64", "wav_parse", "features", "speech_detector", "statistics", "ivector",
                "backend_plda", "verify", "end_to_end")


def latest(results_dir):
    """{benchmark kind: latest document}; accuracy prefers the development protocol."""
    docs = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "benchmark" in doc:
            doc["_file"] = path.name
            docs.append(doc)
    out = {}
    for doc in sorted(docs, key=lambda d: d.get("environment", {}).get("date", "")):
        kind = doc["benchmark"]
        if kind == "accuracy" and doc.get("name") != "accuracy-dev" and "accuracy" in out \
                and out["accuracy"].get("name") == "accuracy-dev":
            continue
        if kind == "voxceleb" and doc.get("protocol", {}).get("made_trials"):
            kind = "voxceleb_format_check"
        if kind == "load" and doc.get("settings", {}).get("paced_rate_per_s"):
            kind = "load_paced"
        if kind == "robustness" and doc.get("protocol", {}).get("adaptive_cohort"):
            # scored through a gallery, as the service does: kept per model fingerprint
            out.setdefault("robustness_service", {})[
                doc.get("model", {}).get("fingerprint")] = doc
            continue
        out[kind] = doc
    return out


def pct(x, digits=2):
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def num(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def mb(x):
    return "-" if x is None else f"{x / 2**20:,.0f} MB"


def ok(flag):
    return "-" if flag is None else ("yes" if flag else "**no**")


def env_line(doc):
    env = doc.get("environment", {})
    commit = (env.get("commit") or "?")[:10]
    modified = env.get("worktree_modified")
    dirty = (f" + uncommitted changes to {', '.join(modified)}"
             if isinstance(modified, list) and modified else "")
    return (f"commit `{commit}`{dirty}, {env.get('date', '?')}, {env.get('cpu_model', '?')}, "
            f"{env.get('cpus_available', '?')} cores, Python {env.get('python', '?')}, numpy "
            f"{env.get('versions', {}).get('numpy', '?')}, load average "
            f"{', '.join(f'{x:.1f}' for x in env.get('load_average') or [])}")


# ---------------------------------------------------------------------- tables ---

def readme_table(res):
    lines = ["| benchmark | measured | target |", "|---|---|---|"]
    acc = res.get("accuracy")
    if acc:
        cal = acc["systems"]["calibrated"]
        gmm = acc["systems"]["gmm_ubm_map"]
        lines.append(f"| speechocean762 dev: EER / minDCF(0.01), vpcore | {pct(cal['eer'])} / "
                     f"{num(cal['min_dcf_0.01'])} | <= 2.5 % / <= 0.30 (references: naive "
                     "GMM-UBM 5.38 % / 0.644, d-vector 3.82 % / 0.420) |")
        lines.append(f"| same trials, GMM-UBM on vpcore's front end | {pct(gmm['eer'])} / "
                     f"{num(gmm['min_dcf_0.01'])} | - |")
        lines.append(f"| FAR / FRR at confidence 0.7, library path (no gallery) | "
                     f"{pct(cal['far'])} / {pct(cal['frr'])} | FAR <= 1 % |")
        rob = res.get("robustness_service", {}).get(acc.get("model", {}).get("fingerprint"))
        if rob and "clean" in rob.get("results", {}):  # the same model as the rows above
            c = rob["results"]["clean"]
            lines.append(f"| FAR / FRR at confidence 0.7, through a gallery as the service "
                         f"scores | {pct(c['far_at_0_7'])} / {pct(c['frr_at_0_7'])} | FAR <= 1 % |")
        for group in ("children", "adults"):
            sub = acc.get("subsets", {}).get(group)
            if isinstance(sub, dict):
                c = sub["systems"]["calibrated"]
                lines.append(f"| {group}: EER / minDCF(0.01) | {pct(c['eer'])} / "
                             f"{num(c['min_dcf_0.01'])} | - |")
    sp = res.get("speed")
    if sp:
        five = sp["stages"].get("5s")
        if five:
            lines.append(f"| 5 s utterance to a calibrated score, 1 core (median) | "
                         f"{five['ms']['end_to_end']['median']:.1f} ms | <= {sp['target']['end_to_end_5s_ms']:g} ms |")
        m = sp["memory"]
        lines.append(f"| RSS after loading the model | {mb(m['rss_after_load'])} | < 500 MB |")
    rq = res.get("request")
    if rq and "ms" in rq.get("reference", {}):
        lines.append(f"| 5 s verify through HTTP (median) vs Resemblyzer in process, side by side | "
                     f"{rq['http']['ms']['median']:.1f} ms vs {rq['reference']['ms']['median']:.1f}"
                     f" ms: {rq['reference']['reference_over_http']:.2f} x | >= "
                     f"{rq['target']['reference_over_http']:g} x |")
    sc = res.get("scale")
    if sc:
        for row in sc["sizes"]:
            if row["n"] in (100_000, 1_000_000):
                target = "<= 10 ms" if row["n"] == 100_000 else "<= 100 ms, < 1.5 GB"
                lines.append(f"| 1-v-N top-3 over {row['n']:,} voiceprints, 1 core | "
                             f"{row['query_ms']['median']:.1f} ms, peak RSS "
                             f"{mb(row['peak_rss_bytes'])} | {target} |")
    sv = res.get("service_1vn")
    if sv:
        for row in sv["sizes"]:
            if row["n"] == 100_000:
                lines.append(f"| service 1-v-N over {row['n']:,} users, 5-s probe (p50 / p99, "
                             f"client on loopback) | {row['all_groups_ms']['p50']:.1f} / "
                             f"{row['all_groups_ms']['p99']:.1f} ms | <= 50 ms |")
    ld = res.get("load")
    if ld:
        lv = ld["latency_ms"]["verify"]
        lines.append(f"| service, saturated ({ld['settings']['clients']} clients, "
                     f"{ld['server']['workers']} workers): verify/s with 5-s audio | "
                     f"{ld['verify_per_s']:.1f} /s | >= {ld['targets']['verify_per_s']:g} /s |")
        lines.append(f"| service, saturated: verify latency p50 / p95 / p99 | {lv['p50']:.0f} / "
                     f"{lv['p95']:.0f} / {lv['p99']:.0f} ms | p99 <= {ld['targets']['p99_ms']:g} ms |")
    lp = res.get("load_paced")
    if lp:
        lv = lp["latency_ms"]["verify"]
        lines.append(f"| service at {lp['settings']['paced_rate_per_s']:g} requests/s offered: "
                     f"verify latency p50 / p95 / p99 | {lv['p50']:.0f} / {lv['p95']:.0f} / "
                     f"{lv['p99']:.0f} ms | p99 <= {lp['targets']['p99_ms']:g} ms |")
    errors = [d for d in (ld, lp) if d]
    if errors:
        lines.append(f"| service: errors | {sum(d['errors'] for d in errors)} of "
                     f"{sum(d['requests'] for d in errors)} requests | 0 |")
    sd = res.get("speech_detector")
    if sd:
        fr = sd["false_refusal"]
        worst = max((c for c in fr if c != "clean"), key=lambda c: fr[c])
        lines.append(f"| speech detector: corpus takes refused, clean / worst degraded "
                     f"({worst.replace('_', ' ')}) | {pct(fr['clean'])} / {pct(fr[worst])} | "
                     "<= 0.5 % / <= 1 % |")
        lines.append(f"| speech detector: generated non-speech refused | "
                     f"{pct(sd['non_speech_refusal_all'])} | >= 99 % |")
    return "\n".join(lines) + "\n"


def accuracy_section(acc):
    labels = acc.get("system_labels", {})
    p = acc["protocol"]
    out = [f"## Accuracy: {p['name']} protocol", "",
           f"{p['trials_scored']} trials ({p['target']} target, {p['nontarget']} non-target; "
           f"{p['trials_skipped']} skipped for unusable audio), model `{acc['model']['path']}` "
           f"({acc['model']['source']}; fingerprint {acc['model']['fingerprint']}, C="
           f"{acc['model']['options']['n_components']}, S={acc['model']['options']['tv_rank']}, "
           f"R={acc['model']['options']['lda_dim']}).", "",
           f"Measured: {env_line(acc)}.", "",
           "| system (same trials, same front end) | EER | minDCF 0.01 | minDCF 0.001 | "
           "actDCF 0.01 | Cllr | minCllr |",
           "|---|---|---|---|---|---|---|"]
    for s in STAGE_ORDER:
        m = acc["systems"].get(s)
        if m is None:
            continue
        out.append(f"| {labels.get(s, s)} | {pct(m['eer'])} | {num(m['min_dcf_0.01'])} | "
                   f"{num(m['min_dcf_0.001'])} | {num(m.get('act_dcf_0.01'))} | "
                   f"{num(m.get('cllr'))} | {num(m['min_cllr'])} |")
    for ref in acc.get("references", []):
        out.append(f"| *reference, not vpcore:* {ref['system']} | {pct(ref['eer'])} | "
                   f"{num(ref['min_dcf_0.01'])} | - | - | - | - |")
    out += ["", "All rows but the references share vpcore's front end (20 MFCC + deltas + "
                "double deltas, energy VAD, CMN) and, where they use one, its UBM and i-vector "
                "extractor, so each row isolates one stage: the GMM-UBM row MAP-adapts the "
                "means of vpcore's UBM (relevance 16) and scores the frame-averaged LLR; the "
                "cosine rows score centred (and LDA-projected, length-normalised) i-vectors; "
                "the PLDA rows add PLDA, AS-norm and calibration. EER and minDCF do not change "
                "with calibration (a monotone map); actDCF and Cllr are given for the scores "
                "that claim to be LLRs."]
    cal = acc["systems"]["calibrated"]
    out += ["", f"At the service's confidence threshold 0.7 (calibration prior "
                f"{acc['model']['calibration']['prior']:g}): FAR {pct(cal['far'])}, "
                f"FRR {pct(cal['frr'])}.", ""]
    subs = {k: v for k, v in acc.get("subsets", {}).items() if isinstance(v, dict)}
    if subs:
        out += ["Children (age < 13) and adults, trials with both sides in the group "
                f"({acc['subsets'].get('cross_group_nontarget_trials_left_out', 0)} "
                "cross-group non-target trials left out):", "",
                "| group | system | EER | minDCF 0.01 | FAR@0.7 | FRR@0.7 |",
                "|---|---|---|---|---|---|"]
        for g, sub in subs.items():
            for s in ("gmm_ubm_map", "plda", "calibrated"):
                m = sub["systems"][s]
                out.append(f"| {g} ({sub['speakers']} speakers) | {labels.get(s, s)} | "
                           f"{pct(m['eer'])} | {num(m['min_dcf_0.01'])} | {pct(m.get('far'))} | "
                           f"{pct(m.get('frr'))} |")
        out.append("")
    plots = acc.get("plots", {})
    if plots:
        det = Path(plots["det"]).name
        hist = Path(plots["histogram"]).name
        out += [f"![DET curves](../benchmarks/results/{det})",
                f"![score histogram](../benchmarks/results/{hist})", ""]
    return out


def speed_section(sp):
    out = ["## Speed (one core)", "", f"Measured: {env_line(sp)}. Model "
           f"`{sp['model']['path']}` ({sp['model']['source']}). Median of "
           f"{sp['repeat']} runs, milliseconds, `threadpool_limits(1)`.", "",
           "| audio | speech frames | " + " | ".join(SPEED_STAGES) + " | naive | naive / vpcore |",
           "|---|---|" + "---|" * (len(SPEED_STAGES) + 2)]
    for d, r in sp["stages"].items():
        out.append(f"| {d} | {r['speech_frames']} | "
                   + " | ".join(f"{r['ms'][k]['median']:.2f}" for k in SPEED_STAGES)
                   + f" | {r['naive_end_to_end_ms']['median']:.1f} | "
                     f"{r['naive_over_vpcore']:.1f}x |")
    m = sp["memory"]
    out += ["", f"Naive implementation in the same run: {sp['naive']['decode']} decode, "
                f"{sp['naive']['features']}, {sp['naive']['scoring']} with "
                f"{sp['naive']['components']} components.", "",
            f"Model load {sp['model_load_ms']['median']:.0f} ms (file "
            f"{mb(sp['model']['file_bytes'])}); fresh process RSS after imports "
            f"{mb(m['rss_after_imports'])}, after loading the model {mb(m['rss_after_load'])} "
            f"(target < 500 MB: {ok(m['rss_meets_target'])}); i-vector extraction cache "
            f"{m['tv_cache_bytes'] / 2**20:.1f} MB. Target 5 s in <= "
            f"{sp['target']['end_to_end_5s_ms']:g} ms: "
            f"{ok(sp['target']['met'])}.", ""]
    return out


def request_section(rq):
    ip, http = rq["in_process"]["cpu_ms"], rq.get("http")
    out = ["## One `/verify` request", "", f"Measured: {env_line(rq)}. {rq['probe']}; CPU "
           "ms (median) of each stage in process, one thread; details and the changes behind "
           "them: [speed.md](speed.md).", "",
           "| " + " | ".join(ip) + " |", "|" + "---|" * len(ip),
           "| " + " | ".join(f"{v['median']:.2f}" for v in ip.values()) + " |", ""]
    if http:
        ref = rq.get("reference", {})
        line = (f"Through HTTP ({http['workers']} workers x {http['threads']} threads, "
                f"{http['client']}): median {http['ms']['median']:.1f} ms, p99 "
                f"{http['ms']['p99']:.1f} ms.")
        if "ms" in ref:
            line += (f" Reference, same run, alternating: {ref['system']}: median "
                     f"{ref['ms']['median']:.1f} ms, {ref['reference_over_http']:.2f} x the "
                     f"HTTP verify (target >= {rq['target']['reference_over_http']:g} x: "
                     f"{ok(rq['target']['met'])}).")
        out += [line, ""]
    return out


def scale_section(sc):
    out = ["## 1-v-N scale (library side)", "", f"Measured: {env_line(sc)}. "
           f"{sc['threads']} BLAS thread(s), top-{sc['top_n']}, voiceprint rows of "
           f"{sc['voiceprint_dim']} float32; {sc['real_enrolments']} real enrolments, the "
           "other rows generated from the PLDA model's distribution.", "",
           "| N | query median | p90 | group of N/10, median | gallery | query temporaries "
           "| peak RSS | target met |",
           "|---|---|---|---|---|---|---|---|"]
    for r in sc["sizes"]:
        group = r.get("group_query_ms")
        group = f"{group['median']:.2f} ms" if group else "-"
        out.append(f"| {r['n']:,} | {r['query_ms']['median']:.2f} ms | "
                   f"{r['query_ms']['p90']:.2f} ms | {group} | {mb(r['gallery_bytes'])} | "
                   f"{mb(r['query_temporary_bytes'])} | {mb(r['peak_rss_bytes'])} | "
                   f"{ok(r.get('meets_target'))} |")
    if sc.get("time_growth_exponent") is not None:
        out += ["", f"Query time grows as N^{sc['time_growth_exponent']:.2f} over this range."]
    return out + [""]


def service_1vn_section(sv):
    s = sv["server"]
    out = ["## 1-v-N through the service", "", f"Measured: {env_line(sv)}.", "",
           f"`python -m server` ({s['workers']} worker x {s['threads']} thread, SQLite store) on "
           f"127.0.0.1; {sv['requests']} requests one at a time with a 5-s probe ({sv['probe']}), "
           "alternating between all users and one group; latency measured by the client, so "
           "an upper bound of the server-side time.", "",
           "| users | all users p50 / p90 / p99 | one group (N/100) p50 | first request (index "
           "load) | worker RSS | target met |", "|---|---|---|---|---|---|"]
    for r in sv["sizes"]:
        a = r["all_groups_ms"]
        out.append(f"| {r['n']:,} | {a['p50']:.1f} / {a['p90']:.1f} / {a['p99']:.1f} ms | "
                   f"{r['one_group_ms']['p50']:.1f} ms | {r['warmup_ms']:.0f} ms | "
                   f"{mb(r['max_process_rss_bytes'])} | {ok(r.get('meets_target'))} |")
    return out + [""]


def load_section(ld):
    s = ld["server"]
    rate = ld["settings"].get("paced_rate_per_s")
    title = (f"## Service load, paced at {rate:g} requests/s" if rate else
             "## Service load, saturated (closed loop)")
    out = [title, "", f"Measured: {env_line(ld)}.", "",
           f"`python -m server` (gunicorn, {s['workers']} workers x {s['threads']} threads) on "
           f"127.0.0.1; {ld['users']['enrolled']} of {ld['users']['attempted']} users enrolled "
           f"({ld['users']['refused_consistency']} refused by the consistency check); audio: "
           f"{ld['audio']}; {ld['settings']['clients']} client threads, mix "
           f"{ld['settings']['mix']}; {ld['requests']} requests in {ld['seconds']:.1f} s.", "",
           "| kind | count | p50 | p95 | p99 |", "|---|---|---|---|---|"]
    for kind, lat in ld["latency_ms"].items():
        count = sum(ld["statuses"].get(kind, {}).values()) if kind in ld["statuses"] else "-"
        if kind == "verify":
            count = sum(sum(ld["statuses"].get(k, {}).values())
                        for k in ("verify_1v1", "verify_1vN"))
        if kind == "all":
            count = ld["requests"]
        out.append(f"| {kind} | {count} | {num(lat['p50'], 0)} ms | {num(lat['p95'], 0)} ms | "
                   f"{num(lat['p99'], 0)} ms |")
    mt = ld["meets_targets"]
    out += ["", f"{ld['requests_per_s']:.1f} requests/s, {ld['verify_per_s']:.1f} verify/s "
                f"(target >= {ld['targets']['verify_per_s']:g}: {ok(mt['verify_per_s'])}); verify p99 "
                f"target <= {ld['targets']['p99_ms']:g} ms: "
                f"{ok(mt['p99_ms'])}; errors {ld['errors']} (target 0: {ok(mt['errors'])}). "
                + (f"CPU: the service used {ld['cpu']['server_cores_busy']:.2f} cores "
                   f"({ld['cpu']['server_ms_per_request']:.0f} ms of CPU per request), the "
                   f"load generator on the same machine {ld['cpu']['client_cores_busy']:.2f} "
                   f"cores, other processes {ld['cpu'].get('other_processes_cores_busy', '?')} "
                   "cores. " if "cpu" in ld else "")
                + f"Status counts: `{json.dumps(ld['statuses'])}`. Server startup "
                f"{s['startup_seconds']:.1f} s; RSS of master and workers: "
                + ", ".join(mb(v) for v in s["rss_bytes"].values()) + ".", ""]
    return out


def voxceleb_section(res):
    vox = res.get("voxceleb")
    check = res.get("voxceleb_format_check")
    out = ["## VoxCeleb1-O", ""]
    if vox:
        m = vox["metrics"]
        out += [f"Measured: {env_line(vox)}. {vox['protocol']['trials_scored']} trials: EER "
                f"{pct(m['eer'])}, minDCF(0.01) {num(m['min_dcf_0.01'])}, Cllr "
                f"{num(m['cllr'])}, FAR/FRR at 0.7 {pct(m['far'])} / {pct(m['frr'])}.", ""]
    else:
        out += ["Not measured: VoxCeleb cannot be downloaded on the build machine. The runner "
                "(`benchmarks/voxceleb.py`) takes the official list and a local copy of the "
                "audio."]
        if check:
            m = check["metrics"]
            p = check["protocol"]
            who = (f"the speakers of `{p['speakers']}`" if p.get("speakers")
                   else "every speaker of the folder")
            out += ["", f"Runner check (measured: {env_line(check)}): "
                        f"{p['trials_scored']} trials in the VoxCeleb format (one-utterance "
                        f"enrolment), drawn with seed {p['seed']} from {who} in "
                        f"`{p['audio_root']}`, model `{check['model']['path']}` "
                        f"({check['model']['source']}): EER {pct(m['eer'])}, minDCF(0.01) "
                        f"{num(m['min_dcf_0.01'])}, Cllr {num(m['cllr'])}, FAR/FRR at 0.7 "
                        f"{pct(m['far'])} / {pct(m['frr'])}."]
        out.append("")
    return out


SPEECH_CONDITIONS = {
    "clean": "clean", "babble_0db": "babble (4 corpus talkers), 0 dB SNR",
    "babble_5db": "babble, 5 dB SNR", "babble_10db": "babble, 10 dB SNR",
    "white_5db": "white noise, 5 dB SNR",
    "telephone": "telephone: 300-3400 Hz, 8 kHz round trip, 8-bit mu-law",
    "reverb": "reverberation, RT60 0.3-1.0 s", "clipped": "20 dB too loud, clipped",
    "pitch_up": "pitch raised 3-7 semitones",
}


def speech_detector_section(doc):
    t = doc["thresholds"]
    out = ["## Speech detector (non-speech refused with 22124)", "",
           f"Measured: {env_line(doc)}. `benchmarks/speech_detector.py`: every utterance of "
           f"both corpora as the service would take it ({doc['speech_takes']} takes of 3-20 s), "
           "clean and degraded, and generated non-speech at "
           f"{doc['non_speech_seeds']} seeds per kind; thresholds: syllabic modulation >= "
           f"{t['min_modulation']}, voiced fraction >= {t['min_voiced']}, pitch glide >= "
           f"{t['min_pitch_glide']}, rhythm regularity <= {t['max_rhythm_regularity']} "
           "(`vpcore/speech.py`).", "",
           "| speech condition | refused (false refusals) | target |", "|---|---|---|"]
    for c, rate in doc["false_refusal"].items():
        target = "<= 0.5 %" if c == "clean" else "<= 1 %"
        out.append(f"| {SPEECH_CONDITIONS.get(c, c)} | {pct(rate)} "
                   f"({doc['false_refusal_count'][c]} of {doc['speech_takes']}) | {target} |")
    out += ["", "| non-speech kind | refused |", "|---|---|"]
    for k, rate in doc["non_speech_refusal"].items():
        out.append(f"| {k.replace('_', ' ')} | {pct(rate, 1)} |")
    out += [f"| **all kinds** | **{pct(doc['non_speech_refusal_all'], 2)}** (target >= 99 %) |",
            "", SPEECH_DETECTOR_NOTES, ""]
    return out


SPEECH_DETECTOR_NOTES = """How the cues were chosen: on the same takes, spectral flatness and the
spread of frame energies separate clean speech from noise but not speech in
white noise at 5 dB from noise; an autocorrelation voicing measure alone is
fooled by low-passed (brown, pink) noise, which decays from lag 0 without a
dip, hence the prominence rule and the 60 ms runs; modulation and voicing
alone pass melodies and chord progressions (whose pitch holds within a note,
hence the pitch glide) and repeated sweeps and noise switched at a fixed rate
(hence the rhythm regularity). Every threshold sits below the smallest value
that speech showed in any condition except the few refused takes (white noise
at 5 dB over a quiet utterance leaves no vowels; one clipped take), and above
what the generated non-speech showed. Not refused by design: singing and
recordings of speech; the misses are chord progressions whose quick chord
changes make the pitch estimate jump, and slow sweeps crossing the speech band.
The detector costs about 2 ms per 5 s of audio on one core (docs/speed.md)."""


def repeated_takes_section(doc):
    d = doc["different_takes"]
    out = ["## Repeated takes (the same recording as take 2 or 3, refused with 22124)", "",
           f"Measured: {env_line(doc)}. `benchmarks/repeated_takes.py` with model "
           f"`{doc['model']['path']}`: take distance threshold {doc['threshold']} "
           "(`vpcore/repeats.py`). Pairs of different takes of one speaker (sharing no audio): "
           f"{d['pairs']}, refused {pct(d['refused'], 3)}, smallest distance "
           f"{num(d['percentiles']['0'])}.", "",
           "| near-copy | refused | largest distance |", "|---|---|---|"]
    for k, v in doc["copies"].items():
        out.append(f"| {k.replace('_', ' ')} | {pct(v['refused'], 1)} | "
                   f"{num(v['percentiles']['100'], 4)} |")
    out.append("")
    return out


VARIANCE = """## How stable these figures are

Each figure is one run on a shared 2-core VM; the load average at the end of
each run is printed with it. Timing figures move with what else runs on the
machine: earlier runs while another job held about one core gave 14-21 ms for
a 5-s utterance end to end and 37-41 verify/s with verify p99 300-350 ms for
the saturated service (where quiet-machine runs give about 67 verify/s and
p99 190 ms). Accuracy figures do not depend on the load: training and
scoring are deterministic for a given seed (the development model retrained
from scratch had the same fingerprint). They do depend on the training seed:
seeds 0, 1 and 2 of the shipped recipe gave development EER 2.46 / 2.50 /
3.00 % and minDCF 0.217 / 0.251 / 0.277 (docs/model_card.md).
"""


PUBLISHED = """## Published figures of other systems (context only, NOT vpcore)

These are other systems' published VoxCeleb1-O results, quoted approximately
for orientation; they were not measured here and are on a different, much
harder corpus (celebrity interviews in the wild) than the development
protocol above:

| system (published, other authors) | VoxCeleb1-O EER |
|---|---|
| GMM-UBM | about 18.8 % |
| i-vector / PLDA | about 5.3-8.8 % |
| x-vector (Kaldi recipe) | about 3.1 % |

On the development protocol, the two reference rows of the accuracy table come
from `../shared/data/README.md` (measured by the data's providers on this
machine), not from vpcore.
"""

HOW_TO_RUN = """## How to run

All scripts write `benchmarks/results/<name>.json` (commit, date, CPU, cores,
Python/library versions and BLAS configuration included) and run from the
project root with the virtualenv's Python. Run one at a time on a shared machine.

| benchmark | command | time on 2 cores |
|---|---|---|
| accuracy, development protocol (trains `cache/bench/dev_model.npz` without the dev speakers when missing) | `python benchmarks/accuracy.py` | ~2 min + training 5-8 min |
| accuracy, any trial list | `python benchmarks/accuracy.py --model M --root R --trials T [--enroll E]` | |
| VoxCeleb1-O | `python benchmarks/voxceleb.py --trials veri_test2.txt --audio-root VOX1/wav` | hours; resumable |
| speed | `python benchmarks/speed.py` | ~2 min |
| speed before/after, paired in one process | `python benchmarks/paired.py OLD/vpcore` | ~1 min |
| two models, one library, paired timing | `python benchmarks/paired.py vpcore --before-model A --model B` | ~1 min |
| robustness protocol, every condition (`--adaptive-cohort`: scored as the service does, through a gallery of the enrolled voiceprints; `--conditions emotion` for one) | `python benchmarks/robustness.py [--model M] [--adaptive-cohort]` | ~3-6 min (features cached) |
| a variant of the recipe (front end or extractor) on the robustness protocol | `python benchmarks/front_end.py --model n_components=128` | ~5-20 min |
| the backend's LDA dimension and WCCN re-fitted on the recipe's own training units (rebuilt from the development model and checked against it), every robustness condition | `python benchmarks/backend_sweep.py [--variants lda150 lda180]` | ~2 min per variant + ~2 min for the units |
| the adaptive cohort on the probe side only (previous recipe) or on both sides (the shipped one), FAR/FRR at one threshold set by the worst condition | `python benchmarks/two_sided_cohort.py` | ~8 min |
| quality-aware calibration, an upper bound fitted on the development trials | `python benchmarks/quality_calibration.py` | ~10 min (quality measures cached) |
| models against a reference on the same trials, paired speaker bootstrap (`--adaptive-cohort`: through a gallery) | `python benchmarks/paired_accuracy.py M1 [M2 ...] [--adaptive-cohort]` | ~3 min per model |
| speech detector: another version's cues and decisions on every input | `python benchmarks/speech_equivalence.py OLD/vpcore` | ~12 min |
| one `/verify` request: stages, HTTP, Resemblyzer side by side | `python benchmarks/request.py` | ~2 min |
| 1-v-N gallery against an exact FAISS index | `python benchmarks/faiss_1vn.py` | ~4 min, 3.5 GB RAM |
| 1-v-N scale | `python benchmarks/scale.py` | ~2 min, 1.5 GB RAM |
| 1-v-N through the service | `python benchmarks/service_1vn.py` | ~1 min |
| index refresh (full vs incremental) | `python benchmarks/index_refresh.py` | ~1 min |
| training on a Dask LocalCluster, 1 and 2 workers | `python benchmarks/dask_training.py --local` | ~17 min |
| service load | `python benchmarks/load.py` | ~2 min |
| this page and the README table | `python benchmarks/render_table.py` | seconds |

Models: `--model`, else the shipped `vpcore/data/default_model.npz`, else the
development model. The accuracy benchmark on the development protocol always
uses a model trained without the development speakers.
"""


def render(results_dir):
    res = latest(results_dir)
    table = readme_table(res)
    lines = ["# Benchmarks", "",
             "Generated by `benchmarks/render_table.py` from the JSON files in "
             "`benchmarks/results/`. Every figure below was measured by vpcore's benchmark "
             "scripts, misses included, except where a row says *reference* or a section "
             "says *published*.", "", "## Summary", "", table]
    if "accuracy" in res:
        lines += accuracy_section(res["accuracy"])
    if "speed" in res:
        lines += speed_section(res["speed"])
    if "request" in res:
        lines += request_section(res["request"])
    if "scale" in res:
        lines += scale_section(res["scale"])
    if "service_1vn" in res:
        lines += service_1vn_section(res["service_1vn"])
    for kind in ("load", "load_paced"):
        if kind in res:
            lines += load_section(res[kind])
    lines += voxceleb_section(res)
    if "speech_detector" in res:
        lines += speech_detector_section(res["speech_detector"])
    if "repeated_takes" in res:
        lines += repeated_takes_section(res["repeated_takes"])
    lines += [VARIANCE, PUBLISHED, HOW_TO_RUN]
    return table, "\n".join(lines).rstrip() + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results-dir", default=str(common.RESULTS_DIR))
    p.add_argument("--doc", default=str(common.ROOT / "docs" / "benchmarks.md"),
                   help="page to write ('-' to skip)")
    args = p.parse_args(argv)
    table, doc = render(args.results_dir)
    sys.stdout.write(table)
    if args.doc != "-":
        Path(args.doc).parent.mkdir(parents=True, exist_ok=True)
        Path(args.doc).write_text(doc, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
