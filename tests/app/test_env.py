"""The parsers behind the settings: strict, and every error names its variable."""

from __future__ import annotations

import secrets

import pytest
from airline import env
from django.core.exceptions import ImproperlyConfigured


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " true "])
def test_boolean_true(raw: str) -> None:
    assert env.boolean({"DEBUG": raw}, "DEBUG", default=False) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off"])
def test_boolean_false(raw: str) -> None:
    assert env.boolean({"DEBUG": raw}, "DEBUG", default=True) is False


@pytest.mark.parametrize("environ", [{}, {"DEBUG": ""}])
def test_boolean_unset_is_the_default(environ: dict[str, str]) -> None:
    assert env.boolean(environ, "DEBUG", default=True) is True
    assert env.boolean(environ, "DEBUG", default=False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "t"])
def test_boolean_rejects_anything_else(raw: str) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=rf"DEBUG='{raw}' is not a boolean; use one of: 0, 1, false"
    ):
        env.boolean({"DEBUG": raw}, "DEBUG", default=False)


def test_items_split_on_commas_and_drop_blanks() -> None:
    environ = {"ALLOWED_HOSTS": " a.example, .b.example,,"}
    assert env.items(environ, "ALLOWED_HOSTS") == ["a.example", ".b.example"]
    assert env.items({}, "ALLOWED_HOSTS") == []


def test_integer() -> None:
    assert env.integer({"N": "42"}, "N", 1) == 42
    assert env.integer({}, "N", 7) == 7
    with pytest.raises(ImproperlyConfigured, match="N='x' is not an integer"):
        env.integer({"N": "x"}, "N", 1)
    with pytest.raises(ImproperlyConfigured, match="N=0 must be at least 1"):
        env.integer({"N": "0"}, "N", 1, minimum=1)


def test_proxy_ssl_header() -> None:
    name = "SECURE_PROXY_SSL_HEADER"
    assert env.proxy_ssl_header({name: "HTTP_X_FORWARDED_PROTO,https"}, name) == (
        "HTTP_X_FORWARDED_PROTO",
        "https",
    )
    assert env.proxy_ssl_header({}, name) is None
    for bad in ("HTTP_X_FORWARDED_PROTO", "X-Forwarded-Proto,https", "HTTP_A,b,c"):
        with pytest.raises(ImproperlyConfigured, match=name):
            env.proxy_ssl_header({name: bad}, name)


def test_log_level() -> None:
    assert env.log_level({"LOG_LEVEL": "info"}, "LOG_LEVEL", "WARNING") == "INFO"
    assert env.log_level({}, "LOG_LEVEL", "WARNING") == "WARNING"
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL='loud' is not a log level"):
        env.log_level({"LOG_LEVEL": "loud"}, "LOG_LEVEL", "INFO")


def test_choice() -> None:
    choices = ("smtp", "file")
    assert env.choice({"EMAIL_BACKEND": " SMTP "}, "EMAIL_BACKEND", choices, "file") == "smtp"
    assert env.choice({}, "EMAIL_BACKEND", choices, "file") == "file"
    with pytest.raises(
        ImproperlyConfigured, match="EMAIL_BACKEND='carrier-pigeon' is not one of: smtp, file"
    ):
        env.choice({"EMAIL_BACKEND": "carrier-pigeon"}, "EMAIL_BACKEND", choices, "file")


@pytest.mark.parametrize("schedule", ["0 3 * * *", "*/5 * * * *", "* * * * * */10", " 0  3 * * * "])
def test_cron_takes_five_fields_or_six_with_seconds(schedule: str) -> None:
    assert env.cron({"CLEANUP_CRON": schedule}, "CLEANUP_CRON", "* * * * *") == " ".join(schedule.split())


@pytest.mark.parametrize("schedule", ["every night", "61 * * * *", "* * *", "@daily", "* * * * * * * *"])
def test_cron_rejects_anything_else_naming_the_variable(schedule: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"CLEANUP_CRON='.*' is not a cron schedule; use five"):
        env.cron({"CLEANUP_CRON": schedule}, "CLEANUP_CRON", "* * * * *")


def test_cron_unset_is_the_default() -> None:
    assert env.cron({}, "CLEANUP_CRON", "0 3 * * *") == "0 3 * * *"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("x", "it has 1 characters, fewer than 50"),
        ("a" * 49, "it has 49 characters, fewer than 50"),
        ("abcd" * 20, "it has 4 distinct characters, fewer than 5"),
        ("django-insecure-" + "k3y" * 20, "it starts with 'django-insecure-'"),
    ],
)
def test_weak_secret_keys_by_djangos_own_measure(key: str, reason: str) -> None:
    weakness = env.weak_secret_key(key)
    assert weakness is not None and weakness.startswith(reason)


def test_a_long_random_secret_key_is_not_weak() -> None:
    assert env.weak_secret_key("abcde" * 10) is None  # exactly the limits: 50 characters, 5 distinct
    assert env.weak_secret_key(secrets.token_urlsafe(50)) is None
