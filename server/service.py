"""What the endpoints do once a request is parsed: state rules and library calls.

:class:`VoiceprintService` owns the model, the store and the 1-v-N index of
one worker process. It raises :class:`server.errors.ApiError` for refusals
the contract defines and lets library / store exceptions propagate to the
app's exception table.
"""

import logging
import threading
import time
import zlib

import numpy as np

from vpcore.errors import AudioError, TooLittleSpeechError
from vpcore.gallery import Gallery
from vpcore.model import Take, Voiceprint, load_model
from vpcore.quality import QualityThresholds, advice, assess
from vpcore.repeats import check_not_repeated

from .errors import (
    ALREADY_COMPLETED,
    AUDIO_CONSTRAINT,
    ENROLL_MESSAGES,
    INCOMPLETE_USER,
    MISMATCH_MESSAGE,
    NO_CANDIDATES,
    PREVIOUS_MISSING,
    SERVICE_ERROR,
    UNKNOWN_USER,
    UNREGISTER_FAILED,
    VERIFY_LOCKED,
    ApiError,
    status_for,
)
from .index import VoiceprintIndex, round_confidence
from .security import VerifyGuard
from .store import ConflictError, open_store, redact_url, rows_for

__all__ = ["VoiceprintService", "quality_json"]

log = logging.getLogger("server")

#: in-process locks, one per user name hash bucket
_LOCK_STRIPES = 64
#: attempts of an enrolment whose user another process changed meanwhile
_MAX_CONFLICT_RETRIES = 20


def local_time():
    """Local server time as the API reports it: ``"YYYY-MM-DD HH:MM:SS"``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())


def quality_json(quality, refused=None, thresholds=QualityThresholds()):
    """The ``quality`` extension object of an answer (see openapi.json, ``TakeQuality``).

    Parameters
    ----------
    quality : vpcore.quality.TakeQuality
    refused : {None, "speech", "consistency", "audio"}
        The rule that refused the take, None for an accepted one.
    """
    return {
        "duration": round(quality.duration, 2),
        "speech_seconds": round(quality.speech_seconds, 2),
        "min_speech_seconds": round(quality.min_speech_seconds, 2),
        "recommended_speech_seconds": thresholds.recommended_speech_seconds,
        "snr_db": round(quality.snr_db, 1),
        "clipping_ratio": round(quality.clipping_ratio, 6),
        "refused": refused,
        "advice": [{"code": code, "message": message}
                   for code, message in advice(quality, thresholds, refused)],
    }


class VoiceprintService:
    """The model, the store and the index of one worker process.

    Parameters
    ----------
    config : server.config.Config
    model : vpcore.model.VoiceprintModel, optional
        Already loaded model (tests share one); None loads ``config.model_path``
        (None: the model shipped with vpcore).

    A model that fails to load or a store that fails to open does not stop the
    service: requests that need them answer 22151 and the service retries at
    most every ``config.retry_interval`` seconds. ``/health`` says what failed.
    """

    def __init__(self, config, model=None):
        self.config = config
        self._model = model
        self._store = None
        self._index = None
        self._error = None  # (component, message) of the last failed initialisation
        self._next_attempt = 0.0
        self._init_lock = threading.Lock()
        self._user_locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self.guard = VerifyGuard(config.guard_failures, config.guard_window,
                                 config.guard_confidence)
        self._initialise()

    # -- resources ----------------------------------------------------------

    def _initialise(self):
        with self._init_lock:
            if self._index is not None:
                return
            if time.monotonic() < self._next_attempt:
                return
            self._next_attempt = time.monotonic() + self.config.retry_interval
            component = "model"
            try:
                if self._model is None:
                    self._model = load_model(self.config.model_path)
                component = "store"
                if self._store is None:
                    self._store = open_store(self.config.store, self._model.fingerprint,
                                             rows=rows_for(self.config.store_key))
                component = "index"
                model = self._model
                index = VoiceprintIndex(
                    lambda blob: Voiceprint.from_bytes(blob).vector,
                    model.voiceprint_dim,
                    lambda matrix, previous: Gallery(
                        model, matrix, adaptive_cohort=self.config.adaptive_cohort,
                        previous=previous),
                    reuse_previous=True,
                )
                index.refresh(self._store)
                self._index = index
                self._error = None
                log.info("model %s and store %s ready (%d voiceprints)",
                         self._model.fingerprint, redact_url(self.config.store), len(index))
            except Exception as exc:  # any failure: answer 22151 and retry later
                self._error = (component, f"{type(exc).__name__}: {exc}")
                log.error("%s unavailable: %s: %s", component, type(exc).__name__, exc)

    def _resources(self):
        """Return ``(model, store, index)`` or raise 22151 if they are not available."""
        if self._index is None:
            self._initialise()
            if self._index is None:
                component, message = self._error or ("service", "not initialised")
                raise ApiError(SERVICE_ERROR, log_detail=f"{component} unavailable: {message}")
        return self._model, self._store, self._index

    def _user_lock(self, user_name):
        return self._user_locks[zlib.crc32(user_name.encode("utf-8")) % _LOCK_STRIPES]

    def close(self):
        if self._store is not None:
            self._store.close()

    # -- health -------------------------------------------------------------

    def health(self):
        """Return ``(ok, data)`` describing the model, the store and the index."""
        self._resources_quietly()
        model = {"status": "ok"}
        if self._model is not None:
            model["fingerprint"] = self._model.fingerprint
            model["voiceprint_dim"] = int(self._model.voiceprint_dim)
        else:
            model = {"status": "error", "error": self._error[1] if self._error else "not loaded"}
        store = {"status": "unavailable"}
        if self._store is not None:
            try:
                store = {"status": "ok", **self._store.status()}
            except Exception as exc:
                store = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        elif self._error and self._error[0] == "store":
            store = {"status": "error", "error": self._error[1]}
        index = {"status": "unavailable"}
        if self._index is not None:
            index = {"status": "ok", "generation": self._index.generation,
                     "voiceprints": len(self._index)}
        elif self._error and self._error[0] == "index":
            index = {"status": "error", "error": self._error[1]}
        ok = model["status"] == store["status"] == index["status"] == "ok"
        return ok, {"model": model, "store": store, "index": index}

    def _resources_quietly(self):
        if self._index is None:
            self._initialise()

    # -- endpoints ----------------------------------------------------------

    def check_user(self, user_name):
        _, store, _ = self._resources()
        record = store.get_user(user_name)
        if record is None:
            return {"user_name": user_name, "enroll_num": 0, "update_time": "", "group_id": None}
        return record.to_json()

    def list_users(self, group_id=None, offset=0, limit=None):
        _, store, _ = self._resources()
        return [r.to_json() for r in store.list_users(group_id, offset, limit)]

    def enroll(self, req):
        """Accept take ``req.enroll_num`` of ``req.user_name``; return ``(message, data)``."""
        model, store, _ = self._resources()
        name, k = req.user_name, req.enroll_num
        quality = self._measure(model, req)
        take = self._extract(model, req, quality, {"user_name": name})
        take_bytes = take.to_bytes()
        with self._user_lock(name):
            for _ in range(_MAX_CONFLICT_RETRIES):
                record, stored = store.get_enrollment(name)
                count = 0 if record is None else record.enroll_num
                if count == 3:
                    raise ApiError(ALREADY_COMPLETED, data={"user_name": name, "enroll_num": 3})
                if k > count + 1:
                    raise ApiError(PREVIOUS_MISSING, data={"user_name": name, "enroll_num": count})
                previous = [Take.from_bytes(b) for b in stored[: k - 1]]
                check_not_repeated(previous, take)  # RepeatedTakeError -> 22124
                if previous:
                    consistency = float(model.consistency(previous, take))
                    if not consistency >= self.config.consistency_threshold:
                        log.info("enroll %s take %d refused: consistency %.4f < %.4f", name, k,
                                 consistency, self.config.consistency_threshold)
                        data = {"user_name": name}
                        if quality is not None:
                            data["quality"] = quality_json(quality, "consistency")
                        raise ApiError(AUDIO_CONSTRAINT, message=MISMATCH_MESSAGE, data=data)
                voiceprint = model.enroll(previous + [take]).to_bytes() if k == 3 else None
                try:
                    store.save_take(
                        name, k, take_bytes, req.group_id, local_time(), voiceprint,
                        expected_revision=None if record is None else record.revision,
                    )
                except ConflictError:
                    continue  # another process changed this user: re-read and decide again
                data = {"user_name": name, "enroll_num": k}
                if quality is not None:
                    data["quality"] = quality_json(quality)
                return ENROLL_MESSAGES[k], data
        raise ApiError(SERVICE_ERROR, log_detail=(
            f"enroll {name} take {k}: gave up after {_MAX_CONFLICT_RETRIES} concurrent changes"))

    def verify(self, req):
        """1-v-1 (``req.user_name``) or 1-v-N; return ``(data, extra)``.

        ``extra`` holds extension keys of the envelope itself: ``quality`` of a
        1-v-N answer that asked for it (its ``data`` is the specification's list).
        """
        model, store, index = self._resources()
        quality = self._measure(model, req)
        echo = {} if req.user_name is None else {"user_name": req.user_name}
        take = self._extract(model, req, quality, echo)
        if req.user_name is not None:
            record, voiceprint = store.get_voiceprint(req.user_name)
            if record is None:
                raise ApiError(UNKNOWN_USER, data={"user_name": req.user_name})
            if voiceprint is None:
                raise ApiError(INCOMPLETE_USER,
                               data={"user_name": req.user_name, "enroll_num": record.enroll_num})
            if self.guard.locked(store, req.user_name):
                raise ApiError(VERIFY_LOCKED, data={"user_name": req.user_name,
                                                    "retry_after": self.guard.retry_after})
            confidence = self._confidence(model, store, index, req.user_name,
                                          Voiceprint.from_bytes(voiceprint), take)
            self.guard.record(store, req.user_name, confidence)
            data = {"user_name": req.user_name, "confidence": round_confidence(confidence)}
            if quality is not None:
                data["quality"] = quality_json(quality)
            return data, {}
        candidates = index.search(store, take, req.group_ids, req.top_n)
        if not candidates:
            raise ApiError(NO_CANDIDATES, data=None)
        extra = {} if quality is None else {"quality": quality_json(quality)}
        return [c.to_json() for c in candidates], extra

    def _confidence(self, model, store, index, user_name, voiceprint, take):
        """1-v-1 confidence: through the index's gallery with the adaptive in-domain
        cohort (the same score a 1-v-N search gives this user), else the model's."""
        if not self.config.adaptive_cohort:
            return model.verify(voiceprint, take).confidence
        if voiceprint.fingerprint != model.fingerprint:
            return model.verify(voiceprint, take).confidence  # raises ModelError
        llr = index.score(store, take, user_name, voiceprint.vector)
        return float(model.scorer_.confidence(np.array([llr]))[0])

    # -- take quality (extension) ---------------------------------------------

    @staticmethod
    def _measure(model, req):
        """The take's :class:`vpcore.quality.TakeQuality` if the request asked for it, else None."""
        return assess(req.samples, model.feature_options_) if req.quality else None

    @staticmethod
    def _extract(model, req, quality, echo):
        """``model.extract`` of the request's audio; a refusal of the take carries its quality."""
        try:
            return model.extract(req.samples)  # TooLittleSpeechError -> 22124
        except AudioError as exc:
            if quality is None:
                raise
            status, message, _ = status_for(exc)
            rule = "speech" if isinstance(exc, TooLittleSpeechError) else "audio"
            raise ApiError(status, message=message,
                           data={**echo, "quality": quality_json(quality, rule)}) from exc

    def unregister(self, user_name):
        _, store, _ = self._resources()
        with self._user_lock(user_name):
            if not store.delete_user(user_name):
                raise ApiError(UNREGISTER_FAILED, data={"user_name": user_name})
        return {"user_name": user_name}
