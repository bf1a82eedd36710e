"""Fixtures of the HTTP service tests.

One small model is trained per vpcore source version and cached in pytest's
cache directory (training takes tens of seconds on two cores); a handful of
synthetic voices that this model tells apart well are picked once and cached
with it. Tests get a fresh app (own empty store) from ``make_app``, or a
real gunicorn server process from ``start_server``.

Store backends: a test module that sets ``STORE_BACKENDS = ("sqlite",
"postgresql")`` runs every test that uses a store (``make_app``, ``api``,
``new_store_url``, ``backend``...) once per backend; the others use SQLite.
The PostgreSQL runs are marked ``needs_postgres`` and skip, with the reason,
when ``$VPCORE_TEST_POSTGRES`` is unset or unreachable (``.ci/postgres``
starts a throwaway server). Each PostgreSQL store is a fresh schema of that
database, dropped at the end of the session.

Security: a module that sets ``SECURITY = ("open", "secured")`` runs every test
that uses ``make_app`` / ``api`` also with an API token and a store key set (the
test client then sends the token with every request); the others run open, or
secured too when ``$VPCORE_TEST_SECURITY`` is ``secured`` (a whole-suite check;
apps built without ``make_app`` and real server processes started by the tests keep
the settings each test gives them).
"""

import hashlib
import itertools
import json
import os
import re
import secrets
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

import vpcore

sys.path.insert(0, str(Path(__file__).resolve().parent))  # vpserver_support, any import mode
from server.app import create_app  # noqa: E402
from server.config import Config  # noqa: E402
from vpserver_support import UTTERANCE_SECONDS, Api, Secured, ServerProcess, Voices

SMALL_MODEL = dict(n_components=16, tv_rank=20, lda_dim=10, random_state=0)
N_VOICES = 4


def _source_key():
    """The small model's options and the vpcore code that trains it."""
    ident = json.dumps(SMALL_MODEL, sort_keys=True) + vpcore.code_key()
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


@pytest.fixture(scope="session")
def model_cache_dir(request, tmp_path_factory):
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("vpcore-model")
    return Path(cache.mkdir("vpcore_server_model"))


@pytest.fixture(scope="session")
def small_model_path(model_cache_dir):
    """Path of a small trained model (cached per vpcore source version)."""
    from vpcore.model import VoiceprintModel, load_model
    from vpcore.errors import ModelError
    from vpcore.synth import synthesize_corpus

    path = model_cache_dir / f"small-{_source_key()}.npz"
    if path.is_file():
        try:
            load_model(path)
            return path
        except ModelError:
            path.unlink()
    corpus = synthesize_corpus(n_speakers=20, n_utterances=6, duration=(4.0, 6.0), random_state=0)
    model = VoiceprintModel(**SMALL_MODEL).fit([c[2] for c in corpus], [c[0] for c in corpus])
    model.save(path)  # atomic: a concurrent session sees the old file or the whole new one
    for old in model_cache_dir.glob("small-*"):  # keep one version only
        if old.name not in (path.name, path.with_suffix(".voices.json").name):
            old.unlink(missing_ok=True)
    return path


@pytest.fixture(scope="session")
def model(small_model_path):
    from vpcore.model import load_model

    return load_model(small_model_path)


def _pick_voices(model, want, candidates=range(1000, 1040)):
    """Greedily pick voices with high self-consistency and low cross-consistency."""
    from vpcore.synth import SyntheticSpeaker, synthesize

    takes = {}
    chosen = []
    for seed in candidates:
        t = [model.extract(synthesize(SyntheticSpeaker.from_seed(seed),
                                      duration=UTTERANCE_SECONDS, random_state=u))
             for u in range(5)]
        vp = model.enroll(t[:3])
        own = [model.consistency(t[:1], t[1]), model.consistency(t[:2], t[2]),
               model.verify(vp, t[3]).confidence, model.verify(vp, t[4]).confidence]
        if min(own) < 0.8:
            continue
        takes[seed] = t
        ok = True
        for other in chosen:
            for a, b in ((seed, other), (other, seed)):
                ta, tb = takes[a], takes[b]
                cross = [model.consistency(ta[:1], tb[1]), model.consistency(ta[:2], tb[2]),
                         model.verify(model.enroll(ta[:3]), tb[3]).confidence]
                ok = ok and max(cross) < 0.2
        if ok:
            chosen.append(seed)
            if len(chosen) == want:
                return chosen
    raise RuntimeError(f"only {len(chosen)} of {want} well separated synthetic voices found "
                       f"among seeds {candidates}: the small model separates voices poorly")


@pytest.fixture(scope="session")
def voices(model, small_model_path):
    cache = small_model_path.with_suffix(".voices.json")
    if cache.is_file():
        seeds = json.loads(cache.read_text())
    else:
        from vpcore.persistence import atomic_write

        seeds = _pick_voices(model, N_VOICES)
        atomic_write(cache, json.dumps(seeds))
    return Voices(seeds)


# ------------------------------------------------------------------ backends ---

def pytest_generate_tests(metafunc):
    """Run a module's store-using tests once per backend of its ``STORE_BACKENDS``, and
    its app-using tests once per mode of its ``SECURITY``."""
    backends = getattr(metafunc.module, "STORE_BACKENDS", None)
    if backends is not None and "backend" in metafunc.fixturenames:
        params = [pytest.param(b, id=b, marks=[pytest.mark.needs_postgres]
                               if b == "postgresql" else []) for b in backends]
        metafunc.parametrize("backend", params, indirect=True, scope="session")
    modes = getattr(metafunc.module, "SECURITY", None)
    if modes is not None and "security" in metafunc.fixturenames:
        metafunc.parametrize("security", modes, indirect=True, scope="session")


def redact(text, url):
    """``text`` without the password of ``url``."""
    match = re.match(r"^[a-z]+://[^:/@]*:([^@/]*)@", url or "")
    return text.replace(match.group(1), "***") if match and match.group(1) else text


@pytest.fixture(scope="session")
def postgres_url():
    """``$VPCORE_TEST_POSTGRES``, checked to answer; skips (with the reason) otherwise."""
    url = os.environ.get("VPCORE_TEST_POSTGRES", "").strip()
    if not url:
        pytest.skip("VPCORE_TEST_POSTGRES is not set: no PostgreSQL server to test against "
                    "(source .ci/postgres to start a throwaway one)")
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"psycopg / psycopg-pool are not installed ({exc}): "
                    "pip install '.[postgres]'")
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.skip("VPCORE_TEST_POSTGRES is unreachable: " + redact(" ".join(str(exc).split()),
                                                                      url))
    return url


def with_search_path(url, schema):
    """``url`` with the libpq option that makes ``schema`` the connection's search path."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


class PostgresSchemas:
    """Fresh schemas of the test database (each a separate, empty store)."""

    def __init__(self, url):
        self.url = url
        self.made = []
        self._counter = itertools.count()

    def new(self):
        import psycopg

        name = f"vpt_{os.getpid()}_{next(self._counter)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        self.made.append(name)
        return with_search_path(self.url, name)

    def drop_all(self):
        import psycopg

        if not self.made:
            return
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SET lock_timeout = '10s'")
                for name in self.made:
                    try:
                        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
                    except psycopg.Error:
                        pass
        except psycopg.Error:
            pass
        self.made.clear()


@pytest.fixture(scope="session")
def postgres_schemas():
    schemas = PostgresSchemas(os.environ.get("VPCORE_TEST_POSTGRES", "").strip())
    yield schemas
    schemas.drop_all()


@pytest.fixture(scope="session")
def backend(request):
    """The store backend of this test: ``"sqlite"`` unless the module asks for more."""
    name = getattr(request, "param", "sqlite")
    if name == "postgresql":
        request.getfixturevalue("postgres_url")  # skips here when there is no server
    return name


@pytest.fixture(scope="session")
def store_urls(postgres_schemas, tmp_path_factory):
    """``store_urls(backend)`` -> location of a fresh, empty store of that backend."""

    def new(backend):
        if backend == "postgresql":
            return postgres_schemas.new()
        return str(tmp_path_factory.mktemp("store") / "store.sqlite3")

    return new


@pytest.fixture
def new_store_url(backend, store_urls):
    """``new_store_url()`` -> location of a fresh, empty store of the test's backend."""
    return lambda: store_urls(backend)


#: model fingerprint of the stores opened by the ``store`` fixture
STORE_FP = "feedfacecafebeef"


@pytest.fixture
def store_url(new_store_url):
    """Location of a fresh store of the test's backend."""
    return new_store_url()


@pytest.fixture
def store(store_url):
    """A fresh, open store of the test's backend (fingerprint ``STORE_FP``)."""
    from server.store import open_store

    s = open_store(store_url, STORE_FP)
    yield s
    s.close()


@pytest.fixture(scope="session")
def secured(tmp_path_factory):
    """An API token and a store key file for the secured runs."""
    from server.store import write_new_key

    key_path = tmp_path_factory.mktemp("key") / "store.key"
    write_new_key(str(key_path))
    return Secured(token=secrets.token_urlsafe(24), key_path=str(key_path))


@pytest.fixture(scope="session")
def security(request, secured):
    """None (``"open"``: no token, no key) or the :class:`Secured` settings of the run."""
    mode = getattr(request, "param", os.environ.get("VPCORE_TEST_SECURITY", "open"))
    if mode not in ("open", "secured"):
        raise pytest.UsageError(f"VPCORE_TEST_SECURITY={mode!r} must be 'open' or 'secured'")
    return secured if mode == "secured" else None


@pytest.fixture
def make_app(model, new_store_url, security):
    """``make_app(**config)`` -> :class:`Api` on a fresh store of the test's backend
    (with the token and key of ``security`` when the run is secured)."""
    made = []

    def make(model=model, store=None, **config):
        config.setdefault("retry_interval", 0.0)
        # The service default (0.2) is chosen for the shipped model; the small test
        # model's calibration is coarser, so the tests use a stricter consistency check.
        config.setdefault("consistency_threshold", 0.5)
        if security is not None:
            config.setdefault("api_token", security.token)
            config.setdefault("store_key", security.key_path)
        cfg = Config(store=str(store or new_store_url()), **config)
        app = create_app(cfg, model=model)
        made.append(app)
        return Api(app, token=security.token if security is not None else None)

    yield make
    for app in made:
        app.extensions["vpcore"].close()


@pytest.fixture
def api(make_app):
    return make_app()


@pytest.fixture
def start_server(small_model_path, tmp_path):
    started = []

    def start(store=None, **kwargs):
        kwargs.setdefault("log_path", tmp_path / "server.log")
        for attempt in range(3):
            server = ServerProcess(store or tmp_path / "store.sqlite3", small_model_path,
                                   **kwargs)
            started.append(server)
            try:
                return server.wait_ready()
            except RuntimeError as exc:
                # another process took the free port between probe and bind: try another
                if "in use" not in str(exc) or attempt == 2:
                    raise

    yield start
    for server in started:
        server.stop()
