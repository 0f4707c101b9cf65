"""The settings as a deployment meets them: manage.py in its own process with a given environment."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("key", "weakness"),
    [
        ("x", "it has 1 characters, fewer than 50"),
        ("k" * 64, "it has 1 distinct characters, fewer than 5"),
        ("django-insecure-" + secrets.token_urlsafe(50), "it starts with 'django-insecure-'"),
    ],
)
def test_a_weak_secret_key_with_debug_off_is_refused_saying_how_to_make_one(key: str, weakness: str) -> None:
    result = manage("check", env=production_env(SECRET_KEY=key))
    assert result.returncode != 0
    assert f"ImproperlyConfigured: SECRET_KEY is too weak for DEBUG off: {weakness}" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr
    assert len(key) == 1 or key not in result.stderr  # the message never shows the key itself


def test_a_weak_secret_key_is_accepted_for_development() -> None:
    result = manage("check", env=production_env(SECRET_KEY="x", DEBUG="true"))
    assert result.returncode == 0, result.stderr


MAIL_SETTINGS = (
    "EMAIL_BACKEND",
    "EMAIL_FILE_PATH",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_TIMEOUT",
    "DEFAULT_FROM_EMAIL",
)
SHOW_MAIL = (
    "from django.conf import settings; import json; "
    f"print(json.dumps({{name: getattr(settings, name) for name in {MAIL_SETTINGS!r}}}))"
)


def mail_settings(**env: str) -> dict[str, object]:
    shown = manage("shell", "--no-imports", "-c", SHOW_MAIL, env=production_env(**env))
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


def test_mail_goes_over_smtp_in_production_with_the_servers_settings() -> None:
    shown = mail_settings(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_HOST_USER="airline",
        EMAIL_HOST_PASSWORD=" pass word ",
        EMAIL_USE_TLS="true",
        DEFAULT_FROM_EMAIL="Airline <bookings@airline.test>",
    )
    assert shown == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_FILE_PATH": None,
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "airline",
        "EMAIL_HOST_PASSWORD": " pass word ",  # a password is taken as given
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10,
        "DEFAULT_FROM_EMAIL": "Airline <bookings@airline.test>",
    }
    assert mail_settings()["EMAIL_HOST"] == "localhost"


def test_mail_is_printed_in_development_and_written_to_files_given_a_directory() -> None:
    assert mail_settings(DEBUG="true")["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    shown = mail_settings(EMAIL_FILE_PATH="/tmp/mail")
    assert shown["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert shown["EMAIL_FILE_PATH"] == "/tmp/mail"
    explicit = mail_settings(EMAIL_FILE_PATH="/tmp/mail", EMAIL_BACKEND="dummy")
    assert explicit["EMAIL_BACKEND"] == "django.core.mail.backends.dummy.EmailBackend"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EMAIL_BACKEND": "sendmail"},
            "EMAIL_BACKEND='sendmail' is not one of: smtp, console, file, locmem",
        ),
        ({"EMAIL_BACKEND": "file"}, "EMAIL_BACKEND=file needs EMAIL_FILE_PATH"),
        ({"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"}, "EMAIL_USE_TLS and EMAIL_USE_SSL are both on"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT='smtp' is not an integer"),
        ({"CLEANUP_CRON": "nightly"}, "CLEANUP_CRON='nightly' is not a cron schedule"),
        ({"STALLED_JOBS_CRON": "* * *"}, "STALLED_JOBS_CRON='* * *' is not a cron schedule"),
    ],
)
def test_bad_mail_or_schedule_settings_name_their_variable(env: dict[str, str], message: str) -> None:
    result = manage("check", env=production_env(**env))
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


# The worker imports PROCRASTINATE_IMPORT_PATHS when it starts (perform_import_paths); so does this.
SHOW_SCHEDULE = (
    "from procrastinate.contrib.django import app; import json; app.perform_import_paths(); "
    "print(json.dumps({p.task.name: "
    "[p.cron, p.task.queue] for p in app.periodic_registry.periodic_tasks.values()}))"
)


def test_the_schedule_is_the_apps_own_and_its_cron_comes_from_the_environment() -> None:
    default = manage("shell", "--no-imports", "-c", SHOW_SCHEDULE, env=production_env())
    assert default.returncode == 0, default.stderr
    # The last line: procrastinate logs each registration (with its cron) to stdout before.
    assert json.loads(default.stdout.splitlines()[-1]) == {
        "airline.tasks.clean_up": ["0 3 * * *", "scheduled"],
        "airline.tasks.retry_stalled_jobs": ["* * * * *", "scheduled"],
    }
    env = production_env(CLEANUP_CRON="* * * * * */2", STALLED_JOBS_CRON="*/5 * * * *")
    short = manage("shell", "--no-imports", "-c", SHOW_SCHEDULE, env=env)
    assert json.loads(short.stdout.splitlines()[-1]) == {
        "airline.tasks.clean_up": ["* * * * * */2", "scheduled"],
        "airline.tasks.retry_stalled_jobs": ["*/5 * * * *", "scheduled"],
    }


SEND = "from django.core.mail import send_mail; send_mail('Hello', 'Body', None, ['someone@airline.test'])"


@pytest.mark.parametrize("backend", ["file", "console", "locmem", "dummy"])
def test_every_backend_name_sends(backend: str, tmp_path: Path) -> None:
    """Each short name loads one of Django's backends, which takes a message."""
    sent = manage(
        "shell",
        "--no-imports",
        "-c",
        SEND,
        env=production_env(EMAIL_BACKEND=backend, EMAIL_FILE_PATH=str(tmp_path)),
    )
    assert sent.returncode == 0, sent.stderr
    if backend == "file":
        (written,) = tmp_path.iterdir()
        assert "To: someone@airline.test" in written.read_text()
    if backend == "console":
        assert "Subject: Hello" in sent.stdout
