"""The whole program for a stack file under the recording mocks (tests/support/program.py), with further
config set as secrets (`pulumi config set --secret`) and the environment the program reads, and the checks
every stack shares: where secrets may appear, how the component tree is named."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from reports.stack_files import config_text
from settings import NAMESPACE
from tests.support import program
from tests.support.pulumi_mocks import Declared, RecordingMocks
from tests.support.secrets import is_secret


def run_stack(
    stack: str, *, secrets: Mapping[str, Any] | None = None, **overrides: Any
) -> tuple[RecordingMocks, dict[str, Any]]:
    """run_program(stack, **overrides), with `secrets` (flightdeck keys) set as secret config."""
    if not secrets:
        return program.run_program(stack, **overrides)
    original = program.stack_config

    def with_secrets(name: str, **given: Any) -> tuple[dict[str, str], set[str]]:
        raw, keys = original(name, **given)
        for key, value in secrets.items():
            raw[f"{NAMESPACE}:{key}"] = config_text(value)
            keys.add(f"{NAMESPACE}:{key}")
        return raw, keys

    program.stack_config = with_secrets  # type: ignore[assignment]
    try:
        return program.run_program(stack, **overrides)
    finally:
        program.stack_config = original  # type: ignore[assignment]


def plain_strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, string) of every string in a recorded input that is not under a secret wrapper."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in plain_strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in plain_strings(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def leaks(mocks: RecordingMocks, secrets: Iterable[str]) -> list[str]:
    """Where a secret value (or a text holding one) sits in a resource's input that is not marked secret."""
    wanted = [s for s in secrets if s]
    found = []
    for resource in mocks.resources:
        for path, text in plain_strings({k: v for k, v in resource.inputs.items() if k != "__provider"}):
            found += [f"{resource.name}{path} holds {secret[:12]}…" for secret in wanted if secret in text]
    return found


def tree_problems(mocks: RecordingMocks, root: str) -> list[str]:
    """What breaks the component tree: a resource without a declared parent (but the target itself, at the
    stack's root), or one not named after its parent."""
    by_urn = {r.urn: r for r in mocks.resources}
    problems = []
    for resource in mocks.resources:
        if resource.name == root:
            if "::pulumi:pulumi:Stack::" not in resource.parent:
                problems.append(f"{root} is not at the stack's root")
            continue
        parent: Declared | None = by_urn.get(resource.parent)
        if parent is None:
            problems.append(f"{resource.name} ({resource.type}) has no parent among the declared resources")
        elif not resource.name.startswith(f"{parent.name}-"):
            problems.append(f"{resource.name} is not named after its parent {parent.name}")
    return problems


def stack_document(deployment: Declared) -> dict[str, Any]:
    """The stack file a SwarmDeployment was given (plain), as a document."""
    text = deployment.inputs["stack_file"]
    assert isinstance(text, str), "the stack file must be a plain input"
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded
