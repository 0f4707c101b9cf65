"""The test hosts themselves (scripts/test-hosts, docs/test-hosts.md): real SSH with pinned host keys and
key-only login, the docker CLI's ssh:// transport, and a 3-node swarm over the hosts' bridge with an
overlay network (VXLAN) between nodes and ports published in host mode."""

from __future__ import annotations

import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.test_hosts import (
    Host,
    Hosts,
    node_states,
    start_engine,
    stop_engine,
    swarm,
    wait_until,
)

pytestmark = pytest.mark.docker

PORT = 18080  # published in host mode on every node; each host has its own network namespace


def test_ssh_with_the_pinned_host_key_runs_docker_on_that_host(test_hosts: Hosts) -> None:
    for host in test_hosts.hosts:
        out = test_hosts.ssh(host, "id -un; hostname; echo $DOCKER_HOST; docker info --format '{{.Name}}'")
        assert out.stdout.split() == ["deploy", host.name, host.docker_host, host.name]


def test_a_wrong_or_unknown_host_key_is_refused(test_hosts: Hosts, tmp_path: Path) -> None:
    first, second = test_hosts.hosts[0], test_hosts.hosts[1]
    wrong = tmp_path / "wrong"
    wrong.write_text(f"{first.address} {second.host_key}\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    for known_hosts, message in (
        (wrong, "REMOTE HOST IDENTIFICATION HAS CHANGED"),
        (empty, "No ED25519 host key is known"),
    ):
        options = [
            o.replace(str(test_hosts.known_hosts_file), str(known_hosts)) for o in test_hosts.ssh_options()
        ]
        result = test_hosts.ssh(first, "true", options=options, check=False)
        assert result.returncode == 255
        assert "Host key verification failed" in result.stderr
        assert message in result.stderr, result.stderr


def test_only_the_deploy_user_logs_in_and_only_with_a_key(test_hosts: Hosts) -> None:
    host = test_hosts.manager
    # The server offers publickey only: no password, no keyboard-interactive.
    no_key = [
        "-o", f"UserKnownHostsFile={test_hosts.known_hosts_file}", "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
        "-o", "PreferredAuthentications=password,keyboard-interactive",
    ]  # fmt: skip
    result = test_hosts.ssh(host, "true", options=no_key, check=False)
    assert result.returncode == 255
    assert "Permission denied (publickey)." in result.stderr
    # The key that logs deploy in does not log root in.
    result = test_hosts.ssh(host, "true", user="root", check=False)
    assert result.returncode == 255
    assert "Permission denied (publickey)." in result.stderr


def test_the_docker_cli_reaches_a_host_over_its_ssh_transport(test_hosts: Hosts) -> None:
    """DOCKER_HOST=ssh://deploy@<host> runs `docker system dial-stdio` there, with the options of the `ssh`
    wrapper on PATH (OpenSSH reads ~/.ssh/config from the passwd entry's home, never from $HOME)."""
    for host in (test_hosts.manager, test_hosts.workers[-1]):
        result = subprocess.run(["docker", "info", "--format", "{{.Name}}"], env=test_hosts.ssh_env(host),
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == host.name


@pytest.fixture(scope="module")
def swarm_hosts(test_hosts: Hosts) -> Iterator[Hosts]:
    with swarm(test_hosts) as hosts:
        yield hosts


def test_the_hosts_form_a_swarm_over_their_bridge(swarm_hosts: Hosts) -> None:
    manager = swarm_hosts.manager
    assert node_states(manager) == {host.name: "ready" for host in swarm_hosts.hosts}
    names = [host.name for host in swarm_hosts.hosts]
    addresses = manager.docker("node", "inspect", "--format", "{{.Status.Addr}}", *names).split()
    assert addresses == [host.address for host in swarm_hosts.hosts]


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (the test hosts' addresses)
        return str(response.read().decode()).strip()


# Each task serves the name of its node; from one task, every task is fetched at its overlay address.
SERVE = "mkdir -p /w && hostname > /w/index.html && exec python3 -m http.server -d /w 8000"
PROBE = """
import socket, sys, urllib.request
ips = sorted({a[4][0] for a in socket.getaddrinfo("tasks." + sys.argv[1], 8000, proto=socket.IPPROTO_TCP)})
for ip in ips:
    print(ip, urllib.request.urlopen(f"http://{ip}:8000/", timeout=3).read().decode().strip())
"""


def _running_nodes(manager: Host, service: str, count: int) -> set[str]:
    out = manager.docker("service", "ps", service, "--filter", "desired-state=running",
                         "--format", "{{.Node}} {{.CurrentState}}")  # fmt: skip
    nodes = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["Running"]}
    return nodes if len(nodes) == count else set()


def _network_gone(manager: Host, network: str) -> bool:
    manager.docker("network", "rm", network, check=False)
    return network not in manager.docker("network", "ls", "--format", "{{.Name}}").split()


def test_an_overlay_network_spans_the_nodes_and_host_mode_ports_answer(swarm_hosts: Hosts) -> None:
    manager = swarm_hosts.manager
    name = f"fdtest-{uuid.uuid4().hex[:8]}"
    count = len(swarm_hosts.hosts)
    manager.docker("network", "create", "--driver", "overlay", "--attachable", name)
    try:
        manager.docker(
            "service", "create", "--detach", "--name", name, "--network", name,
            "--endpoint-mode", "dnsrr", "--replicas", str(count), "--replicas-max-per-node", "1",
            "--hostname", "{{.Node.Hostname}}", "--stop-grace-period", "1s", "--no-resolve-image",
            "--publish", f"mode=host,target=8000,published={PORT}",
            swarm_hosts.images["caddy"], "sh", "-c", SERVE,
        )  # fmt: skip
        try:
            wait_until(f"{count} tasks of {name}, one per node", lambda: _running_nodes(manager, name, count),
                       timeout=90)  # fmt: skip
        except TimeoutError as err:
            raise AssertionError(f"{err}\n{manager.docker('service', 'ps', '--no-trunc', name)}") from err

        # Ports in mode: host, from the root namespace to each node's own address.
        for host in swarm_hosts.hosts:
            url = f"http://{host.address}:{PORT}/"
            assert wait_until(url, lambda u=url: _fetch(u), timeout=30) == host.name

        # The overlay between nodes (VXLAN over the bridge): from the manager's task to every task.
        container = manager.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}"
        ).split()[0]

        def every_task() -> dict[str, str]:
            out = manager.docker("exec", container, "python3", "-c", PROBE, name, timeout=30)
            answers = dict(line.split() for line in out.splitlines())
            return answers if len(answers) == count else {}

        answers = wait_until("every task over the overlay", every_task, timeout=30, interval=1)
        assert sorted(answers.values()) == sorted(host.name for host in swarm_hosts.hosts)
    finally:
        manager.docker("service", "rm", name, check=False)
        wait_until(f"network {name} removed", lambda: _network_gone(manager, name), timeout=30, interval=1)


def test_a_stopped_engine_is_down_and_rejoins_when_started(swarm_hosts: Hosts) -> None:
    manager, worker = swarm_hosts.manager, swarm_hosts.workers[0]
    try:
        stop_engine(worker)
        wait_until(f"{worker.name} down", lambda: node_states(manager).get(worker.name) == "down", timeout=60)
    finally:
        start_engine(worker)
    wait_until(
        f"{worker.name} ready again", lambda: node_states(manager).get(worker.name) == "ready", timeout=60
    )
