"""server.config and the gunicorn entry point's configuration."""

import pytest

from server.__main__ import GunicornServer, main
from server.config import DEFAULT_CONSISTENCY_THRESHOLD, Config, ConfigError


def test_defaults():
    config = Config.from_env({})
    assert config.host == "0.0.0.0" and config.port == 7800
    assert config.store == "./vpcore-store.sqlite3"
    assert config.model_path is None
    assert config.consistency_threshold == DEFAULT_CONSISTENCY_THRESHOLD == 0.05
    assert config.max_body == 2 * 1024 * 1024
    assert config.workers >= 1 and config.threads >= 1
    assert config.adaptive_cohort is True


@pytest.mark.parametrize("raw, value", [("1", True), ("0", False), (" 0 ", False)])
def test_adaptive_cohort_switch(raw, value):
    assert Config.from_env({"VPCORE_ADAPTIVE_COHORT": raw}).adaptive_cohort is value


def test_every_variable_is_read():
    env = {
        "VPCORE_HOST": "127.0.0.1", "VPCORE_PORT": "8000", "VPCORE_STORE": "/tmp/x.sqlite3",
        "VPCORE_MODEL": "/models/m.npz", "VPCORE_CONSISTENCY_THRESHOLD": "0.25",
        "VPCORE_MAX_BODY": "4096", "VPCORE_WORKERS": "3", "VPCORE_THREADS": "8",
        "VPCORE_TIMEOUT": "90", "VPCORE_LOG_LEVEL": "debug",
    }
    config = Config.from_env(env)
    assert (config.host, config.port, config.store, config.model_path) == (
        "127.0.0.1", 8000, "/tmp/x.sqlite3", "/models/m.npz")
    assert (config.consistency_threshold, config.max_body, config.workers, config.threads,
            config.timeout, config.log_level) == (0.25, 4096, 3, 8, 90, "debug")


def test_empty_variable_means_default():
    assert Config.from_env({"VPCORE_PORT": "", "VPCORE_MODEL": "  "}) == Config()


@pytest.mark.parametrize("var,value", [
    ("VPCORE_PORT", "http"), ("VPCORE_PORT", "0"), ("VPCORE_PORT", "70000"),
    ("VPCORE_MAX_BODY", "1.5"), ("VPCORE_MAX_BODY", "10"), ("VPCORE_WORKERS", "0"),
    ("VPCORE_THREADS", "-1"), ("VPCORE_CONSISTENCY_THRESHOLD", "1.5"),
    ("VPCORE_CONSISTENCY_THRESHOLD", "nan"), ("VPCORE_CONSISTENCY_THRESHOLD", "high"),
    ("VPCORE_LOG_LEVEL", "LOUD"), ("VPCORE_ADAPTIVE_COHORT", "yes"),
    ("VPCORE_ADAPTIVE_COHORT", "2"), ("VPCORE_ADAPTIVE_COHORT", "true"),
])
def test_bad_value_is_a_config_error_naming_the_variable(var, value):
    with pytest.raises(ConfigError, match=var):
        Config.from_env({var: value})


def test_main_exits_2_on_a_bad_configuration(monkeypatch, capsys):
    monkeypatch.setenv("VPCORE_PORT", "not-a-port")
    assert main([]) == 2
    assert "VPCORE_PORT" in capsys.readouterr().err


def test_main_help_documents_the_variables(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for var in ("VPCORE_PORT", "VPCORE_STORE", "VPCORE_MODEL", "VPCORE_CONSISTENCY_THRESHOLD",
                "VPCORE_MAX_BODY", "VPCORE_WORKERS", "VPCORE_THREADS", "VPCORE_ADAPTIVE_COHORT"):
        assert var in out


def test_gunicorn_is_configured_from_the_config():
    server = GunicornServer(Config(host="127.0.0.1", port=7801, workers=3, threads=5,
                                   timeout=45))
    cfg = server.cfg
    assert cfg.bind == ["127.0.0.1:7801"]
    assert cfg.workers == 3 and cfg.threads == 5 and cfg.timeout == 45
    assert cfg.worker_class_str == "gthread"
    assert cfg.preload_app is False
    single = GunicornServer(Config(threads=1)).cfg
    assert single.worker_class_str == "sync" and single.bind == ["0.0.0.0:7800"]


def test_the_repr_shows_neither_the_tokens_nor_the_store_password():
    config = Config(store="postgresql://vpcore:s3cret-Pa55@db.example/vp",
                    api_token="tok-A-0123456789abcdef")
    shown = repr(config)
    assert "s3cret-Pa55" not in shown and "tok-A-0123456789abcdef" not in shown
    assert "db.example/vp" in shown and "guard_window=300" in shown
