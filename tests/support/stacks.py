"""Read a stack's config as the Pulumi engine hands it to the program: Pulumi.yaml defaults overlaid by
Pulumi.<stack>.yaml, every key namespaced, structured values as JSON text."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from components.settings import NAMESPACE

ROOT = Path(__file__).resolve().parents[2]
STACKS = ("local", "dev", "prod", "iaas")
# Stand-in values for the secrets a stack holds encrypted or in the environment (CI's HEROKU_API_KEY).
TEST_SECRETS = {"heroku:apiKey": "test-heroku-api-key-0000"}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@functools.cache
def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def stack_config(stack: str, **overrides: Any) -> tuple[dict[str, str], set[str]]:
    """(config, secret keys) of Pulumi.<stack>.yaml; overrides are flightdeck keys (None removes one)."""
    project = _load("Pulumi.yaml")
    config = {
        f"{NAMESPACE}:{key}": _text(spec["default"])
        for key, spec in project["config"].items()
        if "default" in spec
    }
    stack_file = _load(f"Pulumi.{stack}.yaml")
    config.update({key: _text(value) for key, value in stack_file["config"].items()})
    secrets: set[str] = set()
    if config.get(f"{NAMESPACE}:target") == "heroku":
        config.update(TEST_SECRETS)
        secrets.update(TEST_SECRETS)
    for key, value in overrides.items():
        if value is None:
            config.pop(f"{NAMESPACE}:{key}", None)
        else:
            config[f"{NAMESPACE}:{key}"] = _text(value)
    return config, secrets
