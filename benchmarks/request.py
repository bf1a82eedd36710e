"""One 5-s ``/verify`` 1-v-1 request, stage by stage, through HTTP, and against a
deep-learning embedding measured side by side.

::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/request.py \\
        [--model m.npz] [--repeat 200] [--http-requests 200] [--no-http] [--no-reference]

Three parts, one process (the service runs in its own processes):

1. **In-process stages** of the request as the service runs them, on one
   thread (``threadpool_limits(1)``), with a temporary SQLite store holding one
   enrolled user:

   ============== ===========================================================
   ``body_read``  the body from ``wsgi.input`` (:func:`server.parsing.read_body`)
   ``json``       :func:`server.parsing.parse_body`
   ``base64``     :func:`server.parsing.decode_base64`
   ``wav_parse``  :func:`vpcore.audio.decode_bytes`
   ``extract``    :meth:`VoiceprintModel.extract` (features, speech detector,
                  statistics, i-vector, backend)
   ``store_read`` the user's voiceprint from the store, unsealed and unpacked
   ``score``      :meth:`VoiceprintModel.verify` (PLDA, AS-norm, calibration)
   ``response``   the JSON envelope (``flask.Response``)
   ``flask``      the whole request through the Flask app (``test_client``,
                  no socket): routing, hooks, logging and all of the above
   ============== ===========================================================

2. **HTTP**: the service as the README starts it (``python -m server``:
   gunicorn, gthread workers, 2 x 4 by default), one client on loopback
   sending the requests one after the other over a kept-alive connection
   (``http.client``); latency from the first byte sent to the last byte read.

3. **Reference** (optional, ``pip install resemblyzer``; not a dependency of
   vpcore, not in CI): Resemblyzer's ``VoiceEncoder`` on the CPU with one
   torch thread, ``preprocess_wav`` + ``embed_utterance`` of the same 5-s
   probe + cosine against an enrolled embedding, in this process. HTTP and
   reference requests alternate, one of each per round, so that both see the
   same machine load. Target: the HTTP verify at least 3x faster.
"""

import argparse
import base64
import http.client
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks import common

TARGET_RATIO = 3.0
USER = "speed_user"


def _body(b64, **fields):
    return json.dumps({"format": "wav", "sample_rate": 16000, "data": b64, **fields}).encode()


def in_process_stages(model, store_path, takes_b64, probe_b64, repeat):
    """Median wall / CPU ms of each stage of a ``/verify`` 1-v-1 request."""
    from server.app import create_app, envelope
    from server.config import Config
    from server.parsing import decode_base64, parse_body, read_body
    from vpcore.audio import decode_bytes
    from vpcore.model import Voiceprint

    config = Config(store=f"sqlite:///{store_path}")
    app = create_app(config, model=model)
    service = app.extensions["vpcore"]
    client = app.test_client()
    for k, b64 in enumerate(takes_b64, 1):
        r = client.post("/enroll", data=_body(b64, user_name=USER, enroll_num=k)).get_json()
        if r["status"] != "00000":
            raise RuntimeError(f"enrolment take {k} refused: {r}")
    raw = _body(probe_b64, user_name=USER)
    body = parse_body(raw)
    audio = decode_base64(body["data"])
    samples = decode_bytes(audio, "wav")
    take = model.extract(samples)
    store = service._resources()[1]
    _, blob = store.get_voiceprint(USER)
    voiceprint = Voiceprint.from_bytes(blob)
    score = model.verify(voiceprint, take)
    data = {"user_name": USER, "confidence": round(score.confidence, 4)}

    def body_read():
        environ = {"wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
        return read_body(environ, config.max_body)

    def store_read():
        return Voiceprint.from_bytes(store.get_voiceprint(USER)[1])

    def response():
        with app.test_request_context("/verify", method="POST"):
            return envelope("00000", "success", data)

    stages = {
        "body_read": body_read,
        "json": lambda: parse_body(raw),
        "base64": lambda: decode_base64(body["data"]),
        "wav_parse": lambda: decode_bytes(audio, "wav"),
        "extract": lambda: model.extract(samples),
        "store_read": store_read,
        "score": lambda: model.verify(voiceprint, take),
        "response": response,
        "flask": lambda: client.post("/verify", data=raw),
    }
    reply = client.post("/verify", data=raw).get_json()
    if reply["status"] != "00000":
        raise RuntimeError(f"verify refused: {reply}")
    timed = {k: common.time_calls_cpu(f, repeat) for k, f in stages.items()}
    service.close()
    return ({k: common.summary_ms(v[0]) for k, v in timed.items()},
            {k: common.summary_ms(v[1]) for k, v in timed.items()}, reply["data"]["confidence"])


class Connection:
    """One kept-alive HTTP/1.1 connection to the service."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path, raw):
        start = time.perf_counter()
        self.conn.request("POST", path, body=raw, headers={"Content-Type": "application/json"})
        reply = self.conn.getresponse().read()
        return 1000.0 * (time.perf_counter() - start), json.loads(reply)


def reference_system(enrol_samples):
    """Resemblyzer (``VoiceEncoder`` on CPU, one torch thread) or None when not installed.

    Returns ``(verify(samples) -> score, description)``.
    """
    try:
        import torch
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as exc:
        return None, f"not installed ({exc})"
    import resemblyzer

    torch.set_num_threads(1)
    encoder = VoiceEncoder("cpu", verbose=False)
    enrolled = np.mean([encoder.embed_utterance(preprocess_wav(x, source_sr=16000))
                        for x in enrol_samples], axis=0)
    enrolled /= np.linalg.norm(enrolled)

    def verify(samples):
        embedding = encoder.embed_utterance(preprocess_wav(samples, source_sr=16000))
        return float(embedding @ enrolled)

    version = getattr(resemblyzer, "__version__", None)
    return verify, (f"Resemblyzer {version or ''} VoiceEncoder (GE2E d-vector), CPU, "
                    f"torch {torch.__version__} with 1 thread: preprocess_wav + "
                    "embed_utterance + cosine").replace("  ", " ")


def run(args):
    from threadpoolctl import threadpool_limits

    from benchmarks.load import Server
    from vpcore.audio import encode_wav
    from vpcore.model import load_model

    model_path, source = common.resolve_model(args.model)
    model = load_model(model_path)
    enrol, _ = common.speech_of_length(15.0, seed=7, data=args.root)
    third = len(enrol) // 3
    enrol_takes = [enrol[i * third:(i + 1) * third] for i in range(3)]
    takes_b64 = [base64.b64encode(encode_wav(t)).decode("ascii") for t in enrol_takes]
    probe, probe_desc = common.speech_of_length(5.0, seed=5, data=args.root)
    probe_b64 = base64.b64encode(encode_wav(probe)).decode("ascii")
    payload = {"benchmark": "request", "model": {**common.model_info(model, model_path),
                                                 "source": source},
               "probe": f"5 s of {probe_desc}", "repeat": args.repeat,
               "thread_env": {k: os.environ.get(k)
                              for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    tmp = Path(tempfile.mkdtemp(prefix="vpcore-request-"))
    try:
        with threadpool_limits(limits=1):
            wall, cpu, confidence = in_process_stages(model, tmp / "inproc.db", takes_b64,
                                                      probe_b64, args.repeat)
        payload["in_process"] = {"ms": wall, "cpu_ms": cpu, "confidence": confidence}
        if not args.quiet:
            print("in-process stages, median wall / cpu ms:")
            for k in wall:
                print(f"    {k:<11} {wall[k]['median']:7.3f} {cpu[k]['median']:7.3f}",
                      flush=True)
        if args.no_http:
            return common.write_result(args.name, payload, args.out_dir)
        verify_ref, ref_desc = (None, "not measured (--no-reference)")
        if not args.no_reference:
            verify_ref, ref_desc = reference_system(enrol_takes)
        server = Server(model_path, f"sqlite:///{tmp / 'http.db'}", args.workers, args.threads,
                        tmp / "server.log")
        try:
            started = time.monotonic()
            ready = server.wait_ready()
            conn = Connection(server.port)
            for k, b64 in enumerate(takes_b64, 1):
                _, reply = conn.post("/enroll", _body(b64, user_name=USER, enroll_num=k))
                if reply["status"] != "00000":
                    raise RuntimeError(f"enrolment take {k} refused over HTTP: {reply}")
            raw = _body(probe_b64, user_name=USER)
            for _ in range(10):  # warm both workers' caches and the connection
                conn.post("/verify", raw)
                if verify_ref is not None:
                    verify_ref(probe)
            http_ms, ref_ms, statuses = [], [], {}
            for _ in range(args.http_requests):
                ms, reply = conn.post("/verify", raw)
                http_ms.append(ms)
                statuses[reply["status"]] = statuses.get(reply["status"], 0) + 1
                if verify_ref is not None:
                    start = time.perf_counter()
                    verify_ref(probe)
                    ref_ms.append(1000.0 * (time.perf_counter() - start))
        finally:
            server.stop()
        http = common.summary_ms(http_ms)
        http.update(common.percentiles(http_ms))
        payload["http"] = {"ms": http, "statuses": statuses, "workers": args.workers,
                           "threads": args.threads, "startup_s": ready - started,
                           "client": "http.client, one kept-alive connection, sequential"}
        payload["reference"] = {"system": ref_desc}
        if ref_ms:
            ref = common.summary_ms(ref_ms)
            ref.update(common.percentiles(ref_ms))
            ratio = ref["median"] / http["median"]
            payload["reference"].update({"ms": ref, "reference_over_http": ratio})
            payload["target"] = {"reference_over_http": TARGET_RATIO, "met": ratio >= TARGET_RATIO}
        if not args.quiet:
            print(f"HTTP /verify: median {http['median']:.2f} ms, p99 {http['p99']:.2f} ms, "
                  f"statuses {statuses}")
            if ref_ms:
                print(f"reference ({ref_desc}): median {ref['median']:.2f} ms; "
                      f"reference / HTTP = {ratio:.2f} (target >= {TARGET_RATIO:g})")
            else:
                print(f"reference: {ref_desc}")
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    path = common.write_result(args.name, payload, args.out_dir)
    print(path)
    return path


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model (default: shipped model, else the dev model)")
    p.add_argument("--root", help="corpus root for real speech (default: the shared corpora)")
    p.add_argument("--repeat", type=int, default=200, help="timed runs per in-process stage")
    p.add_argument("--http-requests", type=int, default=200, help="sequential HTTP verifies")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    p.add_argument("--threads", type=int, default=4, help="threads per worker (4)")
    p.add_argument("--no-http", action="store_true", help="in-process stages only")
    p.add_argument("--no-reference", action="store_true", help="skip the deep-learning reference")
    p.add_argument("--name", default="request")
    p.add_argument("--out-dir")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv=None):
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
