"""A stack's config as the Pulumi engine hands it to the program, read from the files: Pulumi.yaml's
defaults overlaid by Pulumi.<stack>.yaml, every key namespaced, structured values as JSON text.

For tools that work from the committed stack files without an engine (the cost report, the tests)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from contract import ROOT
from settings import NAMESPACE


def config_text(value: Any) -> str:
    """A YAML value as the engine passes it: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@functools.cache
def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def stack_names(root: Path = ROOT) -> list[str]:
    """The committed stacks (a `*-test` stack file is generated on a machine, e.g. by scripts/test-hosts)."""
    names = (p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))
    return sorted(name for name in names if not name.endswith("-test"))


def read_stack_config(stack: str, root: Path = ROOT) -> dict[str, str]:
    """Every key of the stack, defaults included. Values of `secure:` keys are not decrypted: a stack file
    holding one yields the encrypted form, which settings reject as not secret."""
    project = _load(root / "Pulumi.yaml")
    config = {
        f"{NAMESPACE}:{key}": config_text(spec["default"])
        for key, spec in project["config"].items()
        if "default" in spec
    }
    stack_file = _load(root / f"Pulumi.{stack}.yaml")
    config.update({key: config_text(value) for key, value in stack_file["config"].items()})
    return config
