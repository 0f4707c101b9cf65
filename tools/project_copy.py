"""A copy of the project with a Pulumi state of its own, and scripts/pulumi-local run in it: how the
end-to-end test and the benchmark deploy the `local` stack without touching the tree's state, files or
running swarm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# Variables of the caller's own Pulumi setup that must not leak into the copy's.
PRIVATE = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "VIRTUAL_ENV")


def copy_project(dest: Path, source: Path = ROOT) -> None:
    """The project's files as git knows them (tracked and new, not ignored), committed in a new repository:
    no state, venv or caches."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (source / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, dest / name)
    # A repository of its own, as a clone has: the program tags images with the commit it deploys.
    identity = ["-c", "user.name=flightdeck", "-c", "user.email=flightdeck@localhost"]
    for command in (["init", "-q"], ["add", "-A"], [*identity, "commit", "-q", "-m", "copy"]):
        subprocess.run(["git", *command], cwd=dest, check=True, capture_output=True)


class PulumiLocalError(RuntimeError):
    """A failed scripts/pulumi-local run; `reason` is the last error line Pulumi printed."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LocalStack:
    """scripts/pulumi-local of a project copy, on its `local` stack."""

    def __init__(self, root: Path, docker_host: str) -> None:
        self.root = root
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE)}
        self.env.update(STACK="local", DOCKER_HOST=docker_host)

    @property
    def stack_file(self) -> Path:
        return self.root / "Pulumi.local.yaml"

    def configure(self, values: dict[str, Any]) -> None:
        """Set config keys (namespaced, e.g. flightdeck:httpPort) in the copy's Pulumi.local.yaml."""
        settings = yaml.safe_load(self.stack_file.read_text())
        settings["config"].update(values)
        self.stack_file.write_text(yaml.safe_dump(settings))

    def config(self, key: str) -> Any:
        return yaml.safe_load(self.stack_file.read_text())["config"][key]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.root / "scripts/pulumi-local"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if check and result.returncode != 0:
            errors = [line.strip() for line in result.stderr.splitlines() if "error:" in line]
            raise PulumiLocalError(
                f"pulumi-local {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
                reason=errors[-1] if errors else f"exit status {result.returncode}",
            )
        return result

    def preview(self) -> dict[str, Any]:
        """The planned steps ({op, urn, type}) and change summary of a preview."""
        planned: dict[str, Any] = json.loads(self.run("preview", "--json").stdout)
        return planned

    def outputs(self) -> dict[str, Any]:
        shown = self.run("cli", "stack", "output", "--json", "--show-secrets").stdout
        outputs: dict[str, Any] = json.loads(shown)
        return outputs

    def export(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["cli", "stack", "export", *(["--show-secrets"] if show_secrets else [])]
        state: dict[str, Any] = json.loads(self.run(*args).stdout)
        return state
