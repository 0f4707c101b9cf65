"""Parsers for settings read from the environment: strict, and every error names the variable."""

from __future__ import annotations

from collections.abc import Mapping

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
