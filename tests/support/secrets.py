"""Read resource inputs recorded by the mocks, where Pulumi wraps every secret value in a signature object."""

from __future__ import annotations

from typing import Any

# The engine's marker for a secret value in serialized properties.
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == SECRET_SIG


def reveal(value: Any) -> Any:
    """The plain value, with every secret wrapper (at any depth) removed."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
