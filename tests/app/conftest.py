"""Django for the app's tests only: airline.settings evaluated with a production-like environment, and a
real PostgreSQL (the session's postgres_url) for the test database. Other test directories never see Django
unless this directory is collected too, and then only through DJANGO_SETTINGS_MODULE.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dj_database_url
import django
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from pytest_django import DjangoDbBlocker

# Every variable airline.settings reads; the ones not in TEST_ENV are unset while the settings load, so the
# caller's shell cannot change what the tests see.
SETTINGS_VARIABLES = (
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "DB_CONN_MAX_AGE",
    "DB_CONNECT_TIMEOUT",
    "DB_SSL_REQUIRE",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
    "SECURE_COOKIES",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "LOG_LEVEL",
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
    "CLEANUP_CRON",
    "STALLED_JOBS_CRON",
)

# Production defaults (DEBUG off, HTTPS redirect, secure cookies, HSTS), behind a TLS-terminating proxy.
TEST_ENV = {
    "SECRET_KEY": "tests-only-5f0c1e9a7b3d4c2e8f6a1b0d9c7e5a3f2b4d6c8e0a1f3b5d7c9e",
    "ALLOWED_HOSTS": "airline.test",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    # Filled in by django_db_modify_db_settings from postgres_url before any connection is made.
    "DATABASE_URL": "postgres://127.0.0.1:5432/filled-in-by-the-postgres-url-fixture",
}

# What a browser's requests look like to Django once the TLS-terminating proxy has forwarded them.
HTTPS = {"Host": "airline.test", "X-Forwarded-Proto": "https"}
ORIGIN = "https://airline.test"


def _setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "airline.settings"
    saved = {name: os.environ.pop(name, None) for name in SETTINGS_VARIABLES}
    os.environ.update(TEST_ENV)
    try:
        django.setup()  # evaluates the settings now, with TEST_ENV only
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


_setup_django()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(postgres_url: str) -> None:
    """Point the default database at the session's PostgreSQL (fails, not skips, with REQUIRE_DOCKER=1).

    The dict is updated in place: Django's connection objects hold this very dict.
    """
    database = settings.DATABASES["default"]
    parsed = dj_database_url.parse(postgres_url)
    for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
        database[key] = parsed[key]
    # One test database per session, so concurrent runs on one server do not drop each other's.
    database.setdefault("TEST", {})["NAME"] = f"test_airline_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _block_database_access(django_db_blocker: DjangoDbBlocker) -> Iterator[None]:
    """Only tests marked django_db reach the database (pytest-django blocks it when it sets Django up)."""
    with django_db_blocker.block():
        yield


@pytest.fixture(scope="session", autouse=True)
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """collectstatic into a temporary STATIC_ROOT: the manifest storage needs it to render any page."""
    root = tmp_path_factory.mktemp("staticfiles")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", "--noinput", verbosity=0)
        yield root


@pytest.fixture
def browser() -> Client:
    """A client that enforces CSRF like production and arrives over HTTPS through the proxy."""
    return Client(enforce_csrf_checks=True, headers=HTTPS)


@pytest.fixture(scope="session")
def test_database_url(django_db_setup: None) -> str:
    """The session's migrated test database, as a DATABASE_URL for the app's own processes."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
