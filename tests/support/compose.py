"""Validate a rendered stack file against the compose spec (check-jsonschema's built-in schema, offline)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def compose_spec_problems(stack_file: str, directory: Path, name: str = "stack.yml") -> str:
    """What check-jsonschema says is wrong with the file; empty when it is valid."""
    path = directory / name
    path.write_text(stack_file)
    check = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return "" if check.returncode == 0 else check.stdout + check.stderr
