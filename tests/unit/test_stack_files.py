"""A stack's config as the engine hands it to the program, read from the stack files (reports/stack_files.py):
Pulumi.yaml's defaults overlaid by Pulumi.<stack>.yaml, structured values as JSON text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from contract import ROOT
from reports import stack_files
from reports.stack_files import config_text, read_stack_config, stack_names
from settings import KEYS, parse
from tests.support.stacks import STACKS

PROJECT = """name: flightdeck
runtime: python
config:
  appName:
    type: string
    default: flightdeck-local
  webInstances:
    type: integer
    default: 1
  configVars:
    default: {}
  accessories:
    default: []
  protectData:
    type: boolean
    default: false
  imageDigest:
    type: string
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    stack_files._load.cache_clear()
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    (tmp_path / "Pulumi.one.yaml").write_text(
        "config:\n  flightdeck:webInstances: 3\n  flightdeck:configVars:\n    LOG_LEVEL: INFO\n"
        "  flightdeck:protectData: true\n  heroku:apiKey:\n    secure: AAABAxyz\n"
    )
    (tmp_path / "Pulumi.two.yaml").write_text("config: {}\n")
    yield tmp_path
    stack_files._load.cache_clear()


def test_values_are_passed_as_the_engine_passes_them() -> None:
    assert config_text("air") == "air"
    assert config_text(True) == "true" and config_text(False) == "false"
    assert config_text(3) == "3"
    assert config_text({"A": "b"}) == '{"A": "b"}' and config_text(["redis"]) == '["redis"]'
    assert config_text("$HOME") == "$HOME"  # a string is never re-quoted


def test_defaults_are_overlaid_by_the_stack_file(project: Path) -> None:
    one = read_stack_config("one", project)
    assert one["flightdeck:appName"] == "flightdeck-local"  # the project's default
    assert one["flightdeck:webInstances"] == "3"
    assert json.loads(one["flightdeck:configVars"]) == {"LOG_LEVEL": "INFO"}
    assert one["flightdeck:accessories"] == "[]" and one["flightdeck:protectData"] == "true"
    assert "flightdeck:imageDigest" not in one  # declared without a default: unset
    # An encrypted value stays encrypted (settings refuse it as not secret: nothing is decrypted here).
    assert one["heroku:apiKey"] == '{"secure": "AAABAxyz"}'
    two = read_stack_config("two", project)
    assert two["flightdeck:webInstances"] == "1" and two["flightdeck:protectData"] == "false"


def test_the_stacks_are_the_stack_files(project: Path) -> None:
    assert stack_names(project) == ["one", "two"]
    assert set(STACKS) <= set(stack_names(ROOT))


def test_every_key_the_project_declares_is_a_setting() -> None:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(KEYS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_committed_stack_parses_with_its_secrets_given(stack: str) -> None:
    raw = read_stack_config(stack)
    secrets = {
        "heroku:apiKey": "test-heroku-api-key-0000",
        "flightdeck:bucketAccessKey": "AKIA0",
        "flightdeck:bucketSecretKey": "s",
    }
    target = raw.get("flightdeck:target", "local")
    given = {k: v for k, v in secrets.items() if (target == "heroku") == k.startswith("heroku:")}
    if target != "servers":
        given = {k: v for k, v in given.items() if not k.startswith("flightdeck:bucket")}
    settings = parse({**raw, **given}, set(given))
    assert settings.target == target
    assert settings.app.name == f"flightdeck-{stack}"
