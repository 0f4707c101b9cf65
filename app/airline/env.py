"""Parsers for settings read from the environment: strict, and every error names the variable."""

from __future__ import annotations

from collections.abc import Mapping

from croniter import croniter
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """The variable as a boolean; unset or empty gives the default, anything unrecognised is an error."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    allowed = ", ".join(sorted(TRUE | FALSE))
    raise ImproperlyConfigured(f"{name}={environ[name]!r} is not a boolean; use one of: {allowed}")


def integer(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """The variable as an integer of at least minimum; unset or empty gives the default."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def items(environ: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated variable as a list, blanks dropped: 'a.example, b.example' -> ['a.example', ...]."""
    return [item.strip() for item in environ.get(name, "").split(",") if item.strip()]


def proxy_ssl_header(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """'HTTP_X_FORWARDED_PROTO,https' -> ('HTTP_X_FORWARDED_PROTO', 'https'); unset gives None."""
    parts = items(environ, name)
    if not parts:
        return None
    if len(parts) != 2 or not parts[0].startswith("HTTP_"):
        raise ImproperlyConfigured(
            f"{name}={environ[name]!r} must be 'HEADER,value' with the header in Django's META form, "
            "e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    return parts[0], parts[1]


def log_level(environ: Mapping[str, str], name: str, default: str) -> str:
    """A logging level name, case-insensitive (gunicorn's 'info' and Python's 'INFO' both work)."""
    level = environ.get(name, "").strip().upper() or default
    if level not in LOG_LEVELS:
        raise ImproperlyConfigured(
            f"{name}={environ[name]!r} is not a log level; use one of: {', '.join(LOG_LEVELS)}"
        )
    return level


def choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """One of choices (case-insensitive); unset or empty gives the default."""
    value = environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={environ[name]!r} is not one of: {', '.join(choices)}")
    return value


def cron(environ: Mapping[str, str], name: str, default: str) -> str:
    """A cron schedule: five fields (minute hour day month weekday), or six with seconds last."""
    value = " ".join(environ.get(name, "").split()) or default
    if not croniter.is_valid(value) or len(value.split()) not in (5, 6):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a cron schedule; use five fields (minute hour day-of-month month "
            "day-of-week, e.g. '0 3 * * *' for 03:00 every day) or six with seconds last "
            "(e.g. '* * * * * */10' for every ten seconds)"
        )
    return value


def weak_secret_key(key: str) -> str | None:
    """Why key is too weak for production by Django's own measure (check security.W009), or None."""
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"it has {len(key)} characters, fewer than {SECRET_KEY_MIN_LENGTH}"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"it has {len(set(key))} distinct characters, fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS}"
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"it starts with {SECRET_KEY_INSECURE_PREFIX!r}, the mark of a key Django made for development"
    return None
