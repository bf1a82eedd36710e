"""``vpcore-server`` / ``python -m server``: run the service under gunicorn.

Configuration comes from the ``VPCORE_*`` environment variables (see
:mod:`server.config`). Each worker process loads the model and opens the
store itself (no preloading: SQLite connections must not cross a fork).
The Flask development server is never used here.

Before any worker starts, :func:`preflight` refuses a configuration that
cannot heal by itself — a bad variable, a model file that is missing or not
a vpcore model, a store made with another model — with the cause on stderr
and exit status 2. A store that is only unreachable (a database still
starting) does not stop the start: the workers retry it and answer 22151
meanwhile, and ``/health`` says why.
"""

import logging
import sys

from gunicorn.app.base import BaseApplication

from . import config as config_module
from . import keys
from .config import Config, ConfigError
from .security import load_tokens, redact_tokens_in_logs
from .store import (StoreError, StoreKeyError, StoreModelMismatchError, open_store, redact_url,
                    rows_for)

__all__ = ["main", "preflight", "GunicornServer", "StartupError"]

log = logging.getLogger("server")


def _post_fork(server, worker):
    """One BLAS thread per worker: concurrency comes from workers x threads, and the
    per-request linear algebra (a 200 x 200 Cholesky, small products) is fastest on one
    thread; several BLAS threads per request only contend for the cores. And no API token
    in any log line of the worker, even one a client put into a URL."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    if server.app.config.api_token:
        redact_tokens_in_logs(load_tokens(server.app.config.api_token))


class StartupError(Exception):
    """A permanent misconfiguration: the service must not start."""


def preflight(config):
    """Check what no retry can fix, in the master process, before any worker starts.

    Loads the model of ``config.model_path`` and opens the store with its
    fingerprint (creating it if needed, as a worker would), then closes both.

    Raises
    ------
    StartupError
        The model cannot be loaded, or the store belongs to another model.
        An unreachable store is only logged: it may come up later.
    """
    from vpcore.errors import ModelError
    from vpcore.model import load_model

    try:
        model = load_model(config.model_path)
    except ModelError as exc:
        where = f"VPCORE_MODEL={config.model_path}" if config.model_path else "shipped model"
        raise StartupError(f"{where}: {exc}") from None
    fingerprint = model.fingerprint
    del model
    try:
        open_store(config.store, fingerprint, rows=rows_for(config.store_key)).close()
    except StoreModelMismatchError as exc:
        raise StartupError(f"VPCORE_STORE={redact_url(config.store)}: {exc}") from None
    except StoreKeyError as exc:  # the key is not the store's: no retry can fix it
        raise StartupError(str(exc)) from None
    except StoreError as exc:
        log.warning("store %s is not available yet (%s); the workers keep retrying",
                    redact_url(config.store), exc)


class GunicornServer(BaseApplication):
    """gunicorn driven programmatically with a :class:`server.config.Config`."""

    def __init__(self, config):
        self.config = config
        super().__init__()

    def load_config(self):
        cfg = self.config
        options = {
            "bind": f"{cfg.host}:{cfg.port}",
            "workers": cfg.workers,
            "threads": cfg.threads,
            "worker_class": "gthread" if cfg.threads > 1 else "sync",
            "timeout": cfg.timeout,
            "graceful_timeout": min(cfg.timeout, 30),
            "preload_app": False,
            "accesslog": None,  # the app logs each request with its task_id
            "errorlog": "-",
            "loglevel": cfg.log_level.lower(),
            "proc_name": "vpcore-server",
            # A request line or header block past these is refused before Flask sees it.
            "limit_request_line": 8190,
            "post_fork": _post_fork,
        }
        # gunicorn >= 25.1 opens a control socket at a fixed per-user path by
        # default; two services on one machine would fight over it.
        if "control_socket_disable" in self.cfg.settings:
            options["control_socket_disable"] = True
        for key, value in options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self):
        from .app import create_app

        return create_app(self.config)


def main(argv=None):
    """Start the service; returns the process exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in keys.COMMANDS:
        return keys.main(args)
    if args and args[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\n" + config_module.__doc__.strip())
        print("\n" + keys.__doc__.strip())
        return 0
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"vpcore-server: {exc}", file=sys.stderr)
        return 2
    try:
        keys.check_store_key(config)
    except StoreKeyError as exc:
        print(f"vpcore-server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        preflight(config)
    except StartupError as exc:
        print(f"vpcore-server: cannot start: {exc}", file=sys.stderr)
        return 2
    log.info("starting on %s:%d with %d workers x %d threads, store %s, model %s",
             config.host, config.port, config.workers, config.threads, redact_url(config.store),
             config.model_path or "(shipped)")
    # Import the application's modules (numpy, scipy, librosa, vpcore...) once in the
    # master, so forked workers start fast; each worker still loads the model and opens
    # the store itself, after the fork.
    import server.app  # noqa: F401

    # gunicorn parses sys.argv in some versions' Config; keep it to the program name.
    sys.argv = sys.argv[:1]
    GunicornServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
