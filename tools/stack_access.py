"""A deployed swarm stack reached from its Pulumi state: the manager's engine (over SSH with the pinned keys
the state holds, for the servers targets), and one-off jobs on the stack's network, as `make rollback`,
`make releases` and `make restore` need them. Nothing here needs a secret's value: jobs mount the docker
secrets the stack already has, by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from contract import ROOT
from providers import jobs
from providers.engine import Engine, engines, open_engine
from providers.ssh import SshTrust

DEPLOYMENT = "pulumi-python:dynamic/flightdeck:SwarmDeployment"


class AccessError(RuntimeError):
    """The stack cannot be reached or has no such thing; the message says what to do."""


def pulumi_local(stack: str, *args: str, input: str | None = None) -> str:
    """scripts/pulumi-local on the stack; stdout, or AccessError with its error output."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "pulumi-local"), *args],
        env={**os.environ, "STACK": stack},
        input=input,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AccessError(f"pulumi-local {' '.join(args[:3])} failed:\n{result.stderr.strip()[-3000:]}")
    return result.stdout


def app_deployment(stack: str) -> dict[str, Any]:
    """The app's SwarmDeployment from the stack's state (the one with app services): its outputs, and the
    registry login of its inputs (the nodes pull the jobs' images with it)."""
    state = json.loads(pulumi_local(stack, "cli", "stack", "export", "--show-secrets"))
    for resource in state["deployment"].get("resources") or []:
        if resource["type"] == DEPLOYMENT and (resource.get("inputs") or {}).get("app_services"):
            return {**resource["outputs"], "registry_auth": _plain(resource["inputs"].get("registry_auth"))}
    raise AccessError(f"the stack {stack} has no deployed swarm stack (is it a swarm target, and deployed?)")


def _plain(value: Any) -> Any:
    """A value of an exported state without its secret wrapper (the export shows secrets as plaintext)."""
    if isinstance(value, dict) and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


@contextlib.contextmanager
def manager(deployment: Mapping[str, Any]) -> Iterator[Engine]:
    """The manager's engine, logged in to the stack's registry when it has one."""
    ssh = deployment.get("ssh")
    trust = SshTrust.from_props(dict(ssh)) if isinstance(ssh, dict) and "hosts" in ssh else None
    url = str(deployment["engine"])
    with engines([url], trust) as session, open_engine(url, session=session) as engine:
        auth = deployment.get("registry_auth")
        if auth:
            engine.client.login(str(auth["username"]), str(auth["password"]), registry=str(auth["address"]))
        yield engine


def run_job(
    engine: Engine, service: str, args: Sequence[str], *, image: str | None = None, timeout: float = 600
) -> jobs.JobResult:
    """Run args once as a swarm job shaped like the stack's service `service` (its image unless given)."""
    spec = jobs.like_service(engine.client, service, args, image)
    try:
        return jobs.run_job(
            engine.client, f"{service}_job", spec, timeout=timeout, labels={"flightdeck.job": service}
        )
    except jobs.JobTimeout as err:
        raise AccessError(str(err)) from None
