"""The Flask application: routes, the response envelope, logging and error mapping.

Views are thin: parse (``server.parsing``), call the service
(``server.service``), wrap the result in the envelope. Every exception goes
through :func:`server.errors.status_for`, the one table that maps library
and store exceptions to the contract's status codes.

``GET /console`` serves the browser console (``server/static/``): a page that
drives this same API from the browser, outside the specification's envelope.
"""

import importlib.resources
import logging
import time
import uuid

from flask import Flask, abort, g, request
from werkzeug.exceptions import HTTPException

from .config import Config
from .errors import (
    ECHO,
    INVALID_PARAMETER,
    JSON_ERROR,
    OK,
    SERVICE_ERROR,
    STATUSES,
    ApiError,
    AUDIO_CONSTRAINT,
    status_for,
)
from .parsing import (
    parse_body,
    parse_enroll,
    parse_get_users_query,
    parse_user_request,
    parse_verify,
    read_body as read_limited_body,
    usable_user_name,
)
from .security import AUDITED_PATHS, AuditLog, TokenCheck, audit_record, load_tokens
from .service import VoiceprintService

__all__ = ["create_app"]

access_log = logging.getLogger("server.access")
log = logging.getLogger("server")


def create_app(config=None, model=None):
    """Build the WSGI application.

    Parameters
    ----------
    config : server.config.Config, optional
        Default: :meth:`Config.from_env`.
    model : vpcore.model.VoiceprintModel, optional
        Default: loaded from ``config.model_path`` (None: the shipped model).
    """
    config = Config.from_env() if config is None else config
    app = Flask("server", static_folder=None)  # the console's files are served below
    app.config["MAX_CONTENT_LENGTH"] = config.max_body
    app.json.sort_keys = False
    app.json.ensure_ascii = True
    service = VoiceprintService(config, model)
    app.extensions["vpcore"] = service
    tokens = TokenCheck(load_tokens(config.api_token) if config.api_token else ())
    audit = AuditLog(config.audit_log) if config.audit_log else None

    @app.before_request
    def start():
        g.task_id = str(uuid.uuid4())
        g.start = time.perf_counter()
        g.echo = None
        if not tokens.allows(request.path, request.headers.get("Authorization")):
            raise ApiError(INVALID_PARAMETER, data=None, http_status=401, message=(
                f"{STATUSES[INVALID_PARAMETER]}: this service requires the header "
                "'Authorization: Bearer <token>' with a valid token"))

    @app.after_request
    def finish(response):
        task_id = _task_id()
        response.headers["X-Task-Id"] = task_id
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="vpcore"'
        if audit is not None and request.path in AUDITED_PATHS:
            try:
                audit.write(audit_record(task_id, request.path, g.get("echo"),
                                         g.get("api_status", "-"), request.remote_addr))
            except OSError as exc:
                log.error("task_id=%s audit log %s not written: %s", task_id, audit.target,
                          exc.strerror or type(exc).__name__)
        elapsed = (time.perf_counter() - g.get("start", time.perf_counter())) * 1000.0
        access_log.info(
            "%s %s %d %s %.1fms task_id=%s", _loggable(request.method),
            _loggable(request.path), response.status_code, g.get("api_status", "-"), elapsed,
            task_id,
        )
        return response

    def route(rule, method, view):
        app.add_url_rule(rule, view.__name__, view, methods=[method],
                         provide_automatic_options=False)

    def read_body():
        body = parse_body(read_limited_body(request.environ, config.max_body))
        g.echo = usable_user_name(body.get("user_name"))
        return body

    def check_user():
        user_name = parse_user_request(read_body())
        return envelope(OK, STATUSES[OK], service.check_user(user_name))

    def get_users():
        group_id, offset, limit = parse_get_users_query(request.args)
        return envelope(OK, STATUSES[OK], service.list_users(group_id, offset, limit))

    def enroll():
        message, data = service.enroll(parse_enroll(read_body()))
        return envelope(OK, message, data)

    def verify():
        data, extra = service.verify(parse_verify(read_body()))
        return envelope(OK, STATUSES[OK], data, extra=extra)

    def unregister():
        user_name = parse_user_request(read_body())
        return envelope(OK, STATUSES[OK], service.unregister(user_name))

    def health():
        ok, data = service.health()
        status = OK if ok else SERVICE_ERROR
        return envelope(status, STATUSES[status], data)

    def openapi():
        response = app.response_class(_openapi_document(), mimetype="application/json")
        g.api_status = OK
        return response

    route("/checkUser", "POST", check_user)
    route("/getUsers", "GET", get_users)
    route("/enroll", "POST", enroll)
    route("/verify", "POST", verify)
    route("/unregister", "POST", unregister)
    route("/health", "GET", health)
    route("/openapi.json", "GET", openapi)
    route("/console", "GET", console_page)
    app.add_url_rule("/console/static/<name>", "console_file", console_file, methods=["GET"],
                     provide_automatic_options=False)

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if exc.code == 413:
            status, message = AUDIO_CONSTRAINT, (
                f"{STATUSES[AUDIO_CONSTRAINT]}: request body exceeds {config.max_body} bytes")
        elif exc.code == 404:
            status, message = INVALID_PARAMETER, (
                f"{STATUSES[INVALID_PARAMETER]}: no endpoint at {_shorten(request.path)}")
        elif exc.code == 405:
            status, message = INVALID_PARAMETER, (
                f"{STATUSES[INVALID_PARAMETER]}: method {request.method} is not allowed "
                f"for {request.path}")
        elif exc.code == 400:
            status, message = JSON_ERROR, f"{STATUSES[JSON_ERROR]}: bad request"
        elif exc.code is not None and exc.code < 500:
            status, message = INVALID_PARAMETER, f"{STATUSES[INVALID_PARAMETER]}: {exc.name}"
        else:
            return fault(exc)
        response = envelope(status, message, None, exc.code)
        if exc.code == 405:
            response.headers["Allow"] = ", ".join(
                m for m in exc.valid_methods or () if m != "OPTIONS")
        return response

    @app.errorhandler(Exception)
    def fault(exc):
        status, message, known = status_for(exc)
        if status == SERVICE_ERROR:
            cause = getattr(exc, "log_detail", None) or f"{type(exc).__name__}: {exc}"
            log.error("task_id=%s %s %s: %s%s", _task_id(), _loggable(request.method),
                      _loggable(request.path),
                      "" if known else "unexpected fault: ", cause,
                      exc_info=None if known else exc)
        data = exc.data if isinstance(exc, ApiError) else ECHO
        if data is ECHO:
            echo = g.get("echo")
            data = {"user_name": echo} if echo else None
        http_status = exc.http_status if isinstance(exc, ApiError) else 200
        return envelope(status, message, data, http_status)

    return app


#: Files of the browser console (server/static/) and their media types.
CONSOLE_FILES = {
    "console.html": "text/html",
    "console.css": "text/css",
    "console.js": "text/javascript",
    "recorder-worklet.js": "text/javascript",
}

#: The console loads nothing but its own files and talks only to this service.
CONSOLE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                  "img-src 'self' data:; connect-src 'self'; media-src 'self' blob:; "
                  "object-src 'none'; base-uri 'self'; frame-ancestors 'none'")


def console_page():
    """``GET /console``: the browser page to try the service (no build step, works offline)."""
    return _console_response("console.html")


def console_file(name):
    """``GET /console/static/<name>``: the page's stylesheet and scripts."""
    if name not in CONSOLE_FILES or name == "console.html":
        abort(404)
    return _console_response(name)


def _console_response(name):
    from flask import current_app

    body = importlib.resources.files("server").joinpath("static", name).read_bytes()
    response = current_app.response_class(body, mimetype=CONSOLE_FILES[name])
    response.headers["Content-Security-Policy"] = CONSOLE_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _task_id():
    task_id = g.get("task_id")
    if task_id is None:  # a failure before before_request ran
        task_id = g.task_id = str(uuid.uuid4())
    return task_id


def envelope(status, message, data, http_status=200, extra=None):
    """The contract's response: ``{"task_id", "status", "message", "data"}``.

    ``extra``: extension keys after ``data``, only when the request asked for
    one (e.g. ``quality`` of a 1-v-N answer).
    """
    from flask import current_app

    g.api_status = status
    body = {"task_id": _task_id(), "status": status, "message": message, "data": data}
    body.update(extra or {})
    response = current_app.json.response(body)
    response.status_code = http_status
    return response


def _loggable(text, limit=200):
    """User-controlled text for a log line: one line, printable ASCII, bounded."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return text.encode("unicode_escape").decode("ascii")


def _shorten(path, limit=100):
    return path if len(path) <= limit else path[: limit - 3] + "..."


_OPENAPI = None


def _openapi_document():
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = importlib.resources.files("server").joinpath("openapi.json").read_bytes()
    return _OPENAPI
