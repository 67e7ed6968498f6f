"""Settings come from the environment: production refuses to start half-configured
and passes Django's deployment checklist; development needs no configuration."""

import os
import runpy
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

import core.settings

PROJECT_ROOT = Path(core.settings.__file__).resolve().parent.parent
SETTINGS_FILE = PROJECT_ROOT / "core" / "settings.py"

# Everything settings.py reads; each test starts from none of them.
SETTINGS_ENV = [
    "FABPOOL_ENV",
    "FABPOOL_VAR_DIR",
    "FABPOOL_BASE_URL",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "CONN_MAX_AGE",
    "EMAIL_BACKEND",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "LOG_LEVEL",
    "FABPOOL_TASKS",
]


def clean_environ(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env["DJANGO_SETTINGS_MODULE"] = "core.settings"
    env.update(values)
    return env


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=clean_environ(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def load_settings(monkeypatch):
    """Run settings.py afresh under the given environment; returns its names."""

    def load(**env: str) -> dict:
        for name in SETTINGS_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS_FILE))

    return load


# --- Production -------------------------------------------------------------------------------


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "FABPOOL_ENV": "production",
        "FABPOOL_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "fabpool.example",
        "FABPOOL_BASE_URL": "https://fabpool.example",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        **extra,
    }


def test_production_passes_the_deployment_checklist_without_a_single_warning(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env(tmp_path))

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in output
    assert "?:" not in output  # how Django prefixes each issue


def test_production_secures_cookies_https_and_hsts(tmp_path, load_settings):
    prod = load_settings(**production_env(tmp_path))

    assert prod["DEBUG"] is False
    assert prod["SESSION_COOKIE_SECURE"] and prod["CSRF_COOKIE_SECURE"]
    assert prod["SECURE_SSL_REDIRECT"]
    assert prod["SECURE_HSTS_SECONDS"] >= 60 * 60 * 24 * 365
    assert prod["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert prod["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert prod["ALLOWED_HOSTS"] == ["fabpool.example"]


def test_production_queues_background_work_for_the_worker_and_development_runs_it_at_once(
    tmp_path, load_settings
):
    prod = load_settings(**production_env(tmp_path))
    dev = load_settings(FABPOOL_VAR_DIR=str(tmp_path))
    dev_queued = load_settings(FABPOOL_VAR_DIR=str(tmp_path), FABPOOL_TASKS="database")

    assert prod["TASKS"]["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    assert dev["TASKS"]["default"]["BACKEND"].endswith("ImmediateBackend")
    assert dev_queued["TASKS"]["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    with pytest.raises(ImproperlyConfigured, match="FABPOOL_TASKS"):
        load_settings(FABPOOL_VAR_DIR=str(tmp_path), FABPOOL_TASKS="celery")


def test_production_refuses_to_start_without_a_secret_key(tmp_path, load_settings):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]

    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        load_settings(**env)
    assert not (tmp_path / "var" / "secret_key").exists()


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ("REDIS_URL", "REDIS_URL must be set"),
        ("FABPOOL_BASE_URL", "FABPOOL_BASE_URL must be set"),
        ("ALLOWED_HOSTS", "ALLOWED_HOSTS must be set"),
    ],
)
def test_production_refuses_to_start_without_what_several_processes_share(
    tmp_path, load_settings, missing, reason
):
    env = production_env(tmp_path)
    del env[missing]

    with pytest.raises(ImproperlyConfigured, match=reason):
        load_settings(**env)


def test_manage_py_in_production_without_a_secret_key_fails_with_a_clear_message(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]

    result = manage("check", **env)

    assert result.returncode != 0
    assert (
        "ImproperlyConfigured: SECRET_KEY must be set when FABPOOL_ENV=production." in result.stderr
    )


def test_production_refuses_to_start_without_allowed_hosts(tmp_path, load_settings):
    env = production_env(tmp_path)
    del env["ALLOWED_HOSTS"]

    with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS must be set"):
        load_settings(**env)


def test_an_unknown_environment_name_is_refused(tmp_path, load_settings):
    with pytest.raises(ImproperlyConfigured, match="FABPOOL_ENV"):
        load_settings(FABPOOL_ENV="staging", FABPOOL_VAR_DIR=str(tmp_path))


# --- Development ------------------------------------------------------------------------------


def test_development_generates_a_secret_key_file_once_and_reuses_it(tmp_path, load_settings):
    var = tmp_path / "var"

    first = load_settings(FABPOOL_VAR_DIR=str(var))["SECRET_KEY"]

    key_file = var / "secret_key"
    assert key_file.read_text().strip() == first
    assert len(first) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_settings(FABPOOL_VAR_DIR=str(var))["SECRET_KEY"] == first


def test_each_development_checkout_gets_its_own_secret_key(tmp_path, load_settings):
    one = load_settings(FABPOOL_VAR_DIR=str(tmp_path / "one"))["SECRET_KEY"]
    two = load_settings(FABPOOL_VAR_DIR=str(tmp_path / "two"))["SECRET_KEY"]

    assert one != two


def test_a_secret_key_from_the_environment_wins_in_development(tmp_path, load_settings):
    dev = load_settings(FABPOOL_VAR_DIR=str(tmp_path), SECRET_KEY="from-the-environment")

    assert dev["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_development_defaults_need_no_configuration(tmp_path, load_settings):
    dev = load_settings(FABPOOL_VAR_DIR=str(tmp_path))

    assert dev["DEBUG"] is True
    assert "localhost" in dev["ALLOWED_HOSTS"]
    assert dev["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert dev["DATABASES"]["default"]["NAME"] == str(tmp_path / "fabpool.sqlite3")
    assert dev["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert dev["EMAIL_TIMEOUT"] == 30  # a silent mail server never holds a worker for good


def test_database_url_selects_postgresql(tmp_path, load_settings):
    dev = load_settings(
        FABPOOL_VAR_DIR=str(tmp_path), DATABASE_URL="postgres://fab:pw@db.example:5432/fabpool"
    )

    database = dev["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["NAME"], database["USER"]) == (
        "db.example",
        "fabpool",
        "fab",
    )
