"""The test hosts of `scripts/test-hosts` (docs/test-hosts.md): network namespaces on this machine, each
with its own address, sshd and Docker engine, reachable over real SSH. `up()` makes them and returns
their description (`/run/flightdeck-test-hosts/hosts.json`); the session fixture `test_hosts` brings
them up once and removes them at the end (FLIGHTDECK_KEEP_TEST_HOSTS=1 keeps them).

To use the fixture from a test module or a conftest: `from tests.support.test_hosts import
session_test_hosts  # noqa: F401`, then ask for `test_hosts`.

(No class or function here is named Test*/test_*: pytest collects this file, its name matches test_*.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker import SCRIPTS
from tests.support.required import unavailable

SCRIPT = SCRIPTS / "test-hosts"
DESCRIPTION = Path(os.environ.get("FLIGHTDECK_TEST_HOSTS_RUN", "/run/flightdeck-test-hosts")) / "hosts.json"
KEEP_ENV = "FLIGHTDECK_KEEP_TEST_HOSTS"
# The first `up` may build the stand-in images (debootstrap) before loading them into every host.
UP_TIMEOUT = 1800


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    ssh_user: str
    role: str
    host_key: str  # "ssh-ed25519 AAAA..."
    docker_host: str  # unix:///run/flightdeck-test-hosts/<name>/docker.sock

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        """Run the docker CLI against this host's engine (its unix socket, not SSH); return stdout."""
        result = subprocess.run(
            ["docker", "-H", self.docker_host, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{self.name}: docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result.stdout


@dataclass(frozen=True)
class Hosts:
    hosts: tuple[Host, ...]
    client_key: Path
    known_hosts_file: Path
    known_hosts: tuple[str, ...]
    ssh_config: Path  # for `ssh -F`
    ssh_path: Path  # a directory with an `ssh` that uses ssh_config: put it first on PATH
    gateway: str  # the root namespace's address on the hosts' bridge
    bucket_endpoint: str
    stack_file: Path
    images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DESCRIPTION) -> Hosts:
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(
            hosts=tuple(Host(**host) for host in data["hosts"]),
            client_key=Path(data["client_key"]),
            known_hosts_file=Path(data["known_hosts_file"]),
            known_hosts=tuple(data["known_hosts"]),
            ssh_config=Path(data["ssh_config"]),
            ssh_path=Path(data["ssh_path"]),
            gateway=data["gateway"],
            bucket_endpoint=data["bucket_endpoint"],
            stack_file=Path(data["stack_file"]),
            images=dict(data["images"]),
        )

    @property
    def manager(self) -> Host:
        return next(host for host in self.hosts if host.role == "manager")

    @property
    def workers(self) -> tuple[Host, ...]:
        return tuple(host for host in self.hosts if host.role != "manager")

    def __getitem__(self, name: str) -> Host:
        return next(host for host in self.hosts if host.name == name)

    def ssh_options(self) -> list[str]:
        """The options every client needs, spelled out (the same as ssh_config)."""
        return [
            "-i", str(self.client_key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts_file}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        ]  # fmt: skip

    def ssh(
        self, host: Host, command: str, *, user: str | None = None, options: list[str] | None = None,
        check: bool = True, timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run command on host over SSH (`ssh -F <no config>` plus the explicit options)."""
        args = ["ssh", "-F", "/dev/null", *(self.ssh_options() if options is None else options)]
        result = subprocess.run(
            [*args, f"{user or host.ssh_user}@{host.address}", command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"ssh {host.name} {command!r} failed ({result.returncode}):\n{result.stderr}")
        return result

    def ssh_env(self, host: Host | None = None) -> dict[str, str]:
        """An environment in which `docker` talks to host (default: the manager) over SSH: OpenSSH reads
        ~/.ssh/config from the passwd entry's home, never $HOME, so the options come from an `ssh` on PATH."""
        env = dict(os.environ)
        env["PATH"] = f"{self.ssh_path}{os.pathsep}{env.get('PATH', '')}"
        host = host or self.manager
        env["DOCKER_HOST"] = f"ssh://{host.ssh_user}@{host.address}"
        return env


def run_script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=timeout, check=False)


def up(count: int = 3) -> Hosts:
    """`scripts/test-hosts up count` (idempotent; fast when the hosts are already up)."""
    result = run_script("up", str(count), timeout=UP_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/test-hosts up {count} failed ({result.returncode}):\n{result.stderr}")
    return Hosts.load()


def down() -> None:
    result = run_script("down", timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/test-hosts down failed ({result.returncode}):\n{result.stderr}")


def stop_engine(host: Host, *, kill: bool = False) -> None:
    """Stop host's dockerd (its containers stop, the swarm sees the node go down); kill: as if it crashed."""
    result = run_script("stop-engine", host.name, *(["--kill"] if kill else []), timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/test-hosts stop-engine {host.name} failed:\n{result.stderr}")


def start_engine(host: Host) -> None:
    """Start host's dockerd again: the same engine and data (it rejoins its swarm)."""
    result = run_script("start-engine", host.name, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/test-hosts start-engine {host.name} failed:\n{result.stderr}")


def wait_until(what: str, probe: Any, *, timeout: float, interval: float = 0.5) -> Any:
    """Call probe until it returns something truthy; return that, or raise naming what after timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout} s (last: {last!r})")


def node_states(manager: Host) -> dict[str, str]:
    """hostname -> swarm node state (ready, down, ...), as the manager sees it."""
    listed = manager.docker("node", "ls", "--format", "{{.ID}}").split()
    if not listed:
        return {}
    out = manager.docker(
        "node", "inspect", "--format", "{{.Description.Hostname}} {{.Status.State}}", *listed
    )
    return dict(line.split() for line in out.splitlines() if line.strip())


@contextmanager
def swarm(hosts: Hosts) -> Iterator[Hosts]:
    """The hosts as one swarm (the manager inits it on its address, the workers join it over the bridge);
    every host leaves it afterwards, so the hosts are as `up` made them."""
    manager = hosts.manager
    for host in hosts.hosts:  # a swarm left over by an interrupted run
        if host.docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() != "inactive":
            host.docker("swarm", "leave", "--force", timeout=60)
    manager.docker("swarm", "init", "--advertise-addr", manager.address, timeout=60)
    try:
        token = manager.docker("swarm", "join-token", "-q", "worker").strip()
        for worker in hosts.workers:
            worker.docker("swarm", "join", "--advertise-addr", worker.address, "--token", token,
                          f"{manager.address}:2377", timeout=60)  # fmt: skip
        names = {host.name for host in hosts.hosts}
        wait_until(
            f"{len(names)} swarm nodes ready",
            lambda: (states := node_states(manager)) and all(states.get(n) == "ready" for n in names),
            timeout=60,
        )
        yield hosts
    finally:
        for host in (*hosts.workers, manager):
            host.docker("swarm", "leave", "--force", check=False, timeout=60)


def _session_hosts(docker_engine: str) -> Iterator[Hosts]:
    """Up (3 hosts) at the start of the session, down at the end unless FLIGHTDECK_KEEP_TEST_HOSTS=1."""
    if os.geteuid() != 0:
        unavailable("the test hosts", "scripts/test-hosts needs root (network namespaces, sshd, dockerd)")
    try:
        hosts = up(3)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        unavailable("the test hosts", str(err))
    try:
        yield hosts
    finally:
        if os.environ.get(KEEP_ENV) != "1":
            down()


session_test_hosts = pytest.fixture(scope="session", name="test_hosts")(_session_hosts)
