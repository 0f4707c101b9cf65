"""The docker CLI's own reading of a stack file (`docker stack config`: the compose loader, interpolation
included), which needs no engine."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import yaml

from tests.support.required import unavailable

# Variables a careless file would interpolate: set here, so a `$NAME` left unescaped shows as their value.
BAIT = {"HOME": "/bait-home", "USER": "bait-user", "PATH": "/usr/local/bin:/usr/bin:/bin", "C": "bait-c"}


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's core schema, which docker prints in (go-yaml v3): `on`, `y` and `1_000` are strings there
    and `<<` an ordinary key, where PyYAML's YAML 1.1 reads a boolean, a number and a merge."""

    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, re.Pattern[str]]]]] = {}


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    value = str(loader.construct_scalar(node))
    sign, digits = (-1, value[1:]) if value.startswith("-") else (1, value.lstrip("+"))
    base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    value = str(loader.construct_scalar(node)).lower()
    return float(value.replace(".inf", "inf").replace(".nan", "nan"))


for tag, pattern, first in (
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("bool", r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    (
        "float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        list("-+.0123456789"),
    ),
):
    Yaml12Loader.add_implicit_resolver(f"tag:yaml.org,2002:{tag}", re.compile(rf"\A(?:{pattern})\Z"), first)
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _float)


def read_yaml12(text: str) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 (a SafeLoader with YAML 1.2's resolvers)


def docker_reads(stack_file: str, directory: Path, name: str = "stack.yml") -> dict[str, Any]:
    """The stack file as `docker stack deploy` would read it (after interpolation, with BAIT as the
    environment), as a document."""
    if shutil.which("docker", path=BAIT["PATH"]) is None:
        unavailable("the docker CLI", "not installed (scripts/setup installs it)")
    path = directory / name
    path.write_text(stack_file)
    result = subprocess.run(
        ["docker", "stack", "config", "--compose-file", str(path)],
        env={**BAIT, "DOCKER_HOST": f"unix://{directory}/no-engine.sock", "DOCKER_CONFIG": str(directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "unknown flag" in result.stderr or "is not a docker command" in result.stderr:
        unavailable("`docker stack config`", f"this docker CLI lacks it: {result.stderr.strip()[:80]}")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = read_yaml12(result.stdout)
    return loaded
