"""SwarmCluster's provider (providers/swarm_cluster.py) without an engine: what check refuses, what diff sees
(on hosts reached without SSH, or not known yet), and the node state read from the engine's answer."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime.rpc import UNKNOWN

from providers import swarm_cluster as sc
from providers.swarm_cluster import SwarmClusterProvider

PROVIDER = SwarmClusterProvider()
SSH = {
    "hosts": [{"address": "203.0.113.21", "port": 22, "host_key": "ssh-ed25519 AAAA"}],
    "identity_file": None,
}


def host(name: str, role: str = "worker", engine: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "engine": engine or f"ssh://deploy@{name}.example:22",
        "address": f"{name}.example",
        "role": role,
        "label": f"{name} (flightdeck:servers[0])",
    }


def cluster(*hosts: dict[str, Any], ssh: Any = None) -> dict[str, Any]:
    return {"hosts": list(hosts), "ssh": ssh, "nodes": None, "created": None}


def local(name: str = "local", role: str = "manager") -> dict[str, Any]:
    return host(name, role, engine="unix:///var/run/docker.sock")


def node(state: str = "ready", availability: str = "active", membership: str = "accepted") -> dict[str, Any]:
    return {
        "id": "n1",
        "state": state,
        "availability": availability,
        "membership": membership,
        "role": "manager",
    }


def test_check_takes_exactly_one_manager() -> None:
    assert PROVIDER.check({}, cluster(host("web1", "manager"), host("web2"))).failures == []
    two = PROVIDER.check({}, cluster(host("web1", "manager"), host("web2", "manager"))).failures
    assert [f.property for f in two] == ["hosts"] and "exactly one manager" in two[0].reason
    assert "given 2" in two[0].reason
    none = PROVIDER.check({}, cluster(host("web1"), host("web2"))).failures
    assert "given 0" in none[0].reason


def test_check_refuses_to_move_the_manager() -> None:
    olds = cluster(host("web1", "manager"), host("web2"))
    moved = PROVIDER.check(olds, cluster(host("web1"), host("web2", "manager"))).failures
    assert [f.property for f in moved] == ["hosts"]
    reason = moved[0].reason
    assert "cannot move from web1 to web2" in reason and "database volume" in reason
    # Workers come and go; the manager stays.
    assert PROVIDER.check(olds, cluster(host("web1", "manager"), host("web3"), host("web4"))).failures == []


@pytest.fixture
def managing(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The manager's answer to diff's look (the logins and `docker info`), without an engine."""
    answer = {"managing": True}
    monkeypatch.setattr(sc, "_verified_and_managing", lambda _props: answer["managing"])
    return answer


def test_diff_sees_nothing_when_every_host_is_an_active_member(managing: dict[str, bool]) -> None:
    olds = {**cluster(local()), "nodes": {"local": node()}}
    assert PROVIDER.diff("swarm", olds, cluster(local())).changes is False
    managing["managing"] = False  # `docker swarm leave --force` by hand: the next up makes the swarm again
    assert PROVIDER.diff("swarm", olds, cluster(local())).changes is True


@pytest.mark.parametrize(
    "seen", [node(availability="drain"), node(availability="pause"), node(membership="pending"), None]
)
@pytest.mark.usefixtures("managing")
def test_diff_puts_back_a_node_drained_removed_or_never_joined(seen: dict[str, Any] | None) -> None:
    nodes = {"local": seen} if seen is not None else {}
    olds = {**cluster(local()), "nodes": nodes}
    assert PROVIDER.diff("swarm", olds, cluster(local())).changes is True


@pytest.mark.usefixtures("managing")
def test_diff_sees_a_host_added_or_removed() -> None:
    other = host("other", engine="unix:///run/other.sock")
    one = {**cluster(local()), "nodes": {"local": node()}}
    two = {**cluster(local(), other), "nodes": {"local": node(), "other": node()}}
    assert PROVIDER.diff("swarm", one, cluster(local(), other)).changes is True
    assert PROVIDER.diff("swarm", two, cluster(local())).changes is True
    assert PROVIDER.diff("swarm", two, cluster(local(), other)).changes is False


def test_diff_of_hosts_not_known_yet_is_a_change_without_logging_in() -> None:
    olds = {**cluster(host("web1", "manager"), ssh=SSH), "nodes": {"web1": node()}}
    new_vm = {**host("web2"), "engine": UNKNOWN, "address": UNKNOWN}
    # A login attempt would fail here (nobody answers at these addresses): the preview must not try.
    result = PROVIDER.diff("swarm", olds, cluster(host("web1", "manager"), new_vm, ssh=UNKNOWN))
    assert result.changes is True and result.replaces == []


def test_the_node_state_read_from_the_engine() -> None:
    attrs = {
        "ID": "x1",
        "Spec": {"Role": "worker", "Availability": "drain"},
        "Status": {"State": "down", "Addr": "192.0.2.12"},
    }
    assert sc._node_state(attrs) == {
        "id": "x1", "state": "down", "availability": "drain", "membership": "accepted", "role": "worker"
    }  # fmt: skip


def test_a_host_from_the_state() -> None:
    parsed = sc.Host.of(host("web1", "manager"))
    assert parsed == sc.Host(
        "web1", "ssh://deploy@web1.example:22", "web1.example", "manager", "web1 (flightdeck:servers[0])"
    )
    assert sc._manager(cluster(host("web2"), host("web1", "manager"))).name == "web1"
