"""The one Docker engine client of the swarm targets' providers.

An engine is an address: `unix:///…` (this machine's engine, the `local` target) or `ssh://user@host[:port]`
(a server's, reached over `providers.ssh`). Either way the Docker SDK for Python does the API work
(services, tasks, secrets, configs, containers, images) and the docker CLI runs what only it has
(`docker stack deploy`), both through the same local socket. The CLI gets a minimal environment: the stack
file cannot interpolate anything from it, and no secret of the deploying process reaches it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN

from contract import CLI_ENVIRONMENT
from providers.ssh import SshHost, SshSession, SshTrust

API_VERSION = "1.41"  # Docker 20.10, the oldest engine flightdeck drives (Debian 12's docker.io)


def unknown(value: Any) -> bool:
    """Whether a provider input holds a value Pulumi does not know yet (in a preview, before it is made)."""
    if isinstance(value, dict):
        return any(unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(unknown(v) for v in value)
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


class EngineUnavailable(RuntimeError):
    """No Docker engine answers at the address; the message names it and what to do."""


class CliError(RuntimeError):
    """A docker CLI command failed; the message carries its error output."""


def ssh_host(url: str, label: str = "") -> SshHost:
    """The SshHost of an `ssh://user@host[:port]` engine address."""
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname or not parts.username:
        raise ValueError(f"{url!r} is not an engine address of the form ssh://user@host[:port]")
    return SshHost(address=parts.hostname, user=parts.username, port=parts.port or 22, label=label)


@dataclass
class Engine:
    url: str  # the address as configured (unix://… or ssh://…)
    socket_url: str  # where this process reaches it (the same unix socket, or the SSH bridge's)
    client: docker.DockerClient

    def cli(
        self,
        args: Sequence[str],
        *,
        input: str | None = None,
        auth: Mapping[str, tuple[str, str]] | None = None,
        timeout: float = 600,
    ) -> str:
        """Run `docker <args>` against this engine; return stdout, or raise CliError with stderr.

        auth: registry address -> (user, password), written to a private docker config for this command
        only (what `--with-registry-auth` hands to the nodes)."""
        env = {key: os.environ[key] for key in CLI_ENVIRONMENT if key in os.environ}
        env["DOCKER_HOST"] = self.socket_url
        with contextlib.ExitStack() as stack:
            if auth is not None:
                config = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fd-docker-")))
                (config / "config.json").write_text(docker_config(auth))
                (config / "config.json").chmod(0o600)
                env["DOCKER_CONFIG"] = str(config)
            result = subprocess.run(
                ["docker", *args],
                input=input,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            raise CliError(f"docker {' '.join(args[:3])} failed on {self.url}: {result.stderr.strip()}")
        return result.stdout


def docker_config(auth: Mapping[str, tuple[str, str]]) -> str:
    """A docker CLI config.json holding basic-auth credentials per registry."""
    auths = {
        address: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for address, (user, password) in auth.items()
    }
    return json.dumps({"auths": auths})


@contextlib.contextmanager
def open_engine(url: str, *, session: SshSession | None = None, label: str = "") -> Iterator[Engine]:
    """The engine at url, checked to answer. ssh:// needs a session (its pinned keys)."""
    if url.startswith("ssh://"):
        if session is None:
            raise ValueError(f"{url}: an SSH engine needs the stack's pinned host keys")
        socket_url = session.docker_socket(ssh_host(url, label))
    elif url.startswith(("unix://", "tcp://")):
        socket_url = url
    else:
        raise EngineUnavailable(
            f"{url!r} is not a Docker engine address (unix://…, tcp://… or ssh://user@host)"
        )
    client = docker.DockerClient(base_url=socket_url, version=API_VERSION, timeout=120)
    try:
        client.ping()
    except (docker.errors.DockerException, OSError) as err:
        client.close()
        where = label or url
        hint = (
            "start it (`make services` starts the project's own engine) or point DOCKER_HOST at a running one"
            if url.startswith("unix://")
            else "check that dockerd runs on the host and that the deploy user may use it (docker group)"
        )
        raise EngineUnavailable(f"no Docker engine answers at {where} ({url}): {err}; {hint}") from None
    try:
        yield Engine(url=url, socket_url=socket_url, client=client)
    finally:
        client.close()


@contextlib.contextmanager
def engines(urls: Sequence[str], trust: SshTrust | None) -> Iterator[SshSession | None]:
    """An SSH session for the ssh:// addresses among urls (None when all are local)."""
    if not any(url.startswith("ssh://") for url in urls):
        yield None
        return
    if trust is None:
        raise ValueError("ssh:// engines need pinned host keys")
    with SshSession(trust) as session:
        yield session
