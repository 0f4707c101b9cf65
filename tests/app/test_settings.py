"""The settings as a deployment meets them: manage.py in its own process with a given environment."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tests.app.processes import copy_app, manage, production_env


def test_missing_secret_key_with_debug_off_is_refused_with_a_clear_message() -> None:
    env = production_env()
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set and DEBUG is off." in result.stderr
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_debug_on_runs_without_a_secret_key() -> None:
    env = production_env(DEBUG="true")
    del env["SECRET_KEY"]
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_a_bad_boolean_names_its_variable() -> None:
    result = manage("check", env=production_env(DEBUG="maybe"))
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_https_redirect_is_switched_off() -> None:
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(SECURE_SSL_REDIRECT="false")
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr


def test_migrate_without_database_url_names_the_variable() -> None:
    env = production_env()
    del env["DATABASE_URL"]
    result = manage("migrate", "--noinput", env=env)
    assert result.returncode != 0
    assert "flights.E001" in result.stderr
    assert "DATABASE_URL is not set" in result.stderr


def test_collectstatic_needs_no_database_and_no_real_secret(tmp_path: Path) -> None:
    """What the image build does: a throwaway key in the command's environment, nothing else."""
    app = copy_app(tmp_path)
    result = manage("collectstatic", "--noinput", env={"SECRET_KEY": secrets.token_urlsafe(50)}, cwd=app)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((app / "staticfiles" / "staticfiles.json").read_text())
    hashed = manifest["paths"]["flights/style.css"]
    assert (app / "staticfiles" / hashed).is_file()
    assert (app / "staticfiles" / f"{hashed}.gz").is_file()


def test_logs_go_to_stdout_at_the_configured_level() -> None:
    say = "import logging; log = logging.getLogger('flights'); log.info('hello'); log.warning('hey')"
    info = manage("shell", "-c", say, env=production_env(LOG_LEVEL="info"))
    assert info.returncode == 0, info.stderr
    assert "INFO flights: hello" in info.stdout
    assert "WARNING flights: hey" in info.stdout
    warning = manage("shell", "-c", say, env=production_env(LOG_LEVEL="WARNING"))
    assert "hello" not in warning.stdout
    assert "WARNING flights: hey" in warning.stdout


def test_database_url_gives_persistent_checked_connections_with_a_short_connect_timeout() -> None:
    url = "postgres://airline:pw@db.internal:5432/airline"
    code = "from django.conf import settings; import json; print(json.dumps(settings.DATABASES['default']))"
    shown = manage(
        "shell", "--no-imports", "-c", code, env=production_env(DATABASE_URL=url, DB_SSL_REQUIRE="true")
    )
    assert shown.returncode == 0, shown.stderr
    database = json.loads(shown.stdout)
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.internal", 5432, "airline")
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["OPTIONS"] == {"connect_timeout": 3, "sslmode": "require"}
