"""A copy of the project with a Pulumi state of its own, and scripts/pulumi-local run in it: how the
end-to-end test and the benchmark deploy the `local` stack without touching the tree's state, files or
running swarm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from contract import ROOT

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


# What the engine prints after a resource failed: the resource's own error line says why.
ENGINE_NOISE = ("Resource monitor has terminated", "update failed", "preview failed", "destroy failed")


class PulumiLocalError(RuntimeError):
    """A failed scripts/pulumi-local run; `reason` is the last error line Pulumi printed."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class LocalStack:
    """scripts/pulumi-local of a project copy, on one of its stacks (`local` unless told)."""

    def __init__(self, root: Path, docker_host: str, stack: str = "local") -> None:
        self.root = root
        self.stack = stack
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE)}
        self.env.update(STACK=stack, DOCKER_HOST=docker_host)

    @property
    def stack_file(self) -> Path:
        return self.root / f"Pulumi.{self.stack}.yaml"

    def make(self, target: str, *variables: str) -> subprocess.CompletedProcess[str]:
        """`make <target> STACK=<stack> [VAR=value ...]` in the copy (the README's commands)."""
        return subprocess.run(
            ["make", "--no-print-directory", target, f"STACK={self.stack}", *variables],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip

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
            errors = [
                line.strip()
                for line in result.stderr.splitlines()
                if "error:" in line and not any(noise in line for noise in ENGINE_NOISE)
            ]
            raise PulumiLocalError(
                f"pulumi-local {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
                reason=errors[-1] if errors else f"exit status {result.returncode}",
            )
        return result

    @property
    def app_name(self) -> str:
        return str(self.config("flightdeck:appName"))

    def commit(self, message: str) -> None:
        """Commit the copy's changes, as a user's checkout would have them."""
        identity = ["-c", "user.name=flightdeck", "-c", "user.email=flightdeck@localhost"]
        for command in (["add", "-A"], [*identity, "commit", "-q", "--allow-empty", "-m", message]):
            subprocess.run(["git", *command], cwd=self.root, check=True, capture_output=True)

    def git_status(self) -> str:
        """`git status --porcelain` of the copy: empty when no command wrote into the work tree."""
        return subprocess.run(
            ["git", "status", "--porcelain"], cwd=self.root, check=True, capture_output=True, text=True
        ).stdout

    @staticmethod
    def last_summary(stdout: str) -> dict[str, int]:
        """The resource changes an up/refresh/destroy reported (tools/pulumi_inline.py's last line)."""
        changes: dict[str, int] = json.loads(stdout.strip().splitlines()[-1])["resourceChanges"]
        return changes

    def _docker(self, *args: str) -> str:
        return subprocess.run(
            ["docker", *args], env=self.env, check=True, capture_output=True, text=True, timeout=120
        ).stdout

    def remove_kept_volumes(self) -> list[str]:
        """Remove the volumes `destroy` keeps (the database's, the registry's, the proxy's); their names."""
        names = self._docker("volume", "ls", "--format", "{{.Name}}").split()
        kept = [n for n in names if n.startswith((f"{self.app_name}_", f"{self.app_name}-"))]
        if kept:
            self._docker("volume", "rm", *kept)
        return kept

    def release_images(self) -> list[str]:
        """The images of the stack's recorded releases, oldest first."""
        listed = self._docker(
            "config", "ls", "--filter", f"label=flightdeck.release={self.app_name}",
            "--format", '{{.Label "flightdeck.number"}} {{.Label "flightdeck.image"}}',
        )  # fmt: skip
        return [
            image
            for _, image in sorted((int(n), i) for n, i in (line.split() for line in listed.splitlines()))
        ]

    def psql(self, query: str) -> str:
        """A query in the stack's database, through its container's local socket."""
        [container] = self._docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.app_name}_db"
        ).split()
        return self._docker("exec", container, "psql", "-U", "app", "-d", "app", "-tAc", query).strip()

    def forget_own_records_and_add_legacy_ones(self) -> None:
        """Make the state look like an older flightdeck's: no record of the generated secrets and the
        deployment (that layout had pulumi-random's and pulumi-command's instead), while the stack runs."""
        state = self.export(show_secrets=False)
        resources = state["deployment"]["resources"]
        ours = (
            "pulumi-python:dynamic/flightdeck:GeneratedSecret",
            "pulumi-python:dynamic/flightdeck:SwarmDeployment",
        )
        kept = [r for r in resources if r["type"] not in ours]
        stack_urn = next(r["urn"] for r in kept if r["type"] == "pulumi:pulumi:Stack")
        prefix = stack_urn.split("::pulumi:pulumi:Stack::")[0]
        for package, kind, name in (
            ("random", "random:index/randomPassword:RandomPassword", "database-password"),
            ("command", "command:local:Command", "swarm-deploy"),
        ):
            provider_urn, provider_id = f"{prefix}::pulumi:providers:{package}::default", str(uuid.uuid4())
            common = {"custom": True, "parent": stack_urn, "inputs": {}, "outputs": {}}
            kept.append(
                {**common, "urn": provider_urn, "id": provider_id, "type": f"pulumi:providers:{package}"}
            )
            kept.append(
                {**common, "urn": f"{prefix}::{kind}::{name}", "id": name, "type": kind,
                 "provider": f"{provider_urn}::{provider_id}"}
            )  # fmt: skip
        state["deployment"]["resources"] = kept
        path = self.root / ".pulumi-state" / "legacy-state.json"
        path.write_text(json.dumps(state))
        self.run("cli", "stack", "import", "--file", str(path))

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
