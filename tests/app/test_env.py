"""The parsers behind the settings: strict, and every error names its variable."""

from __future__ import annotations

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
