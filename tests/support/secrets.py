"""Read resource inputs recorded by the mocks, where Pulumi wraps every secret value in a signature object."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import rpc


def is_secret(value: Any) -> bool:
    return bool(rpc.is_rpc_secret(value))


def unwrap(value: Any) -> tuple[Any, bool]:
    """(the value without its outer secret wrapper, whether it had one)."""
    if is_secret(value):
        return value["value"], True
    return value, False


def reveal(value: Any) -> Any:
    """The plain value, with every secret wrapper (at any depth) removed."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
