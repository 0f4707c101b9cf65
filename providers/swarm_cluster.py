"""SwarmCluster: a set of Docker engines made into one swarm, as a Pulumi resource (a dynamic provider).

The manager's engine runs `swarm init` (unless it already manages a swarm, which is adopted) and every worker
joins it with the worker token, over the same engine client the deployments use: the local engine, or a
server's over SSH as its deploy user. A host removed from the config is drained (its tasks move to the
others), leaves the swarm and is removed from the node list. read() reports each node's state, so refresh
shows a node drained or removed by hand, and the next up puts it back. diff logs in to every SSH host first:
a host key that is not the pinned one stops `preview` and `up` before anything changes.

delete takes the workers out; the manager leaves only a swarm this resource created and that runs no other
stack's services.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import docker.errors
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from providers.engine import Engine, EngineUnavailable, engines, open_engine, ssh_host, unknown
from providers.ssh import SshSession, SshTrust

SWARM_PORT = 2377
READY_TIMEOUT = 120.0
DRAIN_TIMEOUT = 180.0
POLL = 1.0


class ClusterError(RuntimeError):
    """The hosts could not be made into the declared swarm; the message names the host and the fix."""


@dataclass(frozen=True)
class Host:
    name: str
    engine: str  # unix://… or ssh://user@address[:port]
    address: str  # the address the swarm advertises for it (its management and overlay traffic)
    role: str
    label: str  # how errors name it, e.g. its config key

    @classmethod
    def of(cls, props: Mapping[str, Any]) -> Host:
        return cls(*(str(props[k]) for k in ("name", "engine", "address", "role", "label")))


def _log(message: str) -> None:
    print(f"[swarm] {message}", file=sys.stderr, flush=True)


def _hosts(props: Mapping[str, Any]) -> list[Host]:
    return [Host.of(h) for h in props.get("hosts") or []]


def _manager(props: Mapping[str, Any]) -> Host:
    return next(h for h in _hosts(props) if h.role == "manager")


class _Cluster:
    """The engines of one operation, opened as they are needed and closed at the end."""

    def __init__(self, props: Mapping[str, Any], stack: contextlib.ExitStack) -> None:
        self.props = props
        self._stack = stack
        trust = SshTrust.from_props(dict(props["ssh"])) if props.get("ssh") else None
        self.session: SshSession | None = stack.enter_context(
            engines([h.engine for h in _hosts(props)], trust)
        )
        self._open: dict[str, Engine] = {}

    def engine(self, host: Host) -> Engine:
        if host.engine not in self._open:
            self._open[host.engine] = self._stack.enter_context(
                open_engine(host.engine, session=self.session, label=host.label)
            )
        return self._open[host.engine]


@contextlib.contextmanager
def _cluster(props: Mapping[str, Any]) -> Iterator[_Cluster]:
    with contextlib.ExitStack() as stack:
        yield _Cluster(props, stack)


class SwarmClusterProvider(ResourceProvider):
    serialize_as_secret_always = False

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        managers = [h for h in _hosts(news) if h.role == "manager"]
        if len(managers) != 1:
            failures.append(CheckFailure("hosts", f"exactly one manager is needed (given {len(managers)})"))
        elif olds.get("hosts") and _manager(olds).name != managers[0].name:
            failures.append(
                CheckFailure(
                    "hosts",
                    f"the manager cannot move from {_manager(olds).name} to {managers[0].name}: the database "
                    "volume and the swarm's state live on it. Keep the manager, or move the data first "
                    "(make backup, a new stack, make restore)",
                )
            )
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        with _cluster(props) as cluster:
            created = _ensure_swarm(cluster, props)
            nodes = _join_all(cluster, props)
            outs = {**props, "nodes": nodes, "created": created}
            return CreateResult(_swarm_id(cluster, _manager(props)), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with _cluster(news) as cluster:
            created = _ensure_swarm(cluster, news) or bool(olds.get("created"))
            wanted = {h.name for h in _hosts(news)}
            for host in _hosts(olds):
                if host.name not in wanted:
                    _remove(cluster, news, host, (olds.get("nodes") or {}).get(host.name, {}).get("id"))
            nodes = _join_all(cluster, news)
        return UpdateResult({**news, "nodes": nodes, "created": created})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if unknown(news.get("hosts")) or unknown(news.get("ssh")):
            return DiffResult(changes=True, replaces=[], delete_before_replace=False)  # new VMs, in a preview
        changes = _host_set(olds) != _host_set(news) or olds.get("ssh") != news.get("ssh")
        changes = not _verified_and_managing(news) or changes  # a swarm left by hand is made again
        for host in _hosts(news):
            node = (olds.get("nodes") or {}).get(host.name)
            if (
                not node
                or node.get("availability") != "active"
                or node.get("membership", "accepted") != "accepted"
            ):
                changes = True  # drained or removed by hand (refresh saw it), or never joined
        return DiffResult(changes=changes, replaces=[], delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with _cluster(props) as cluster:
            client = cluster.engine(_manager(props)).client
            swarm = client.info().get("Swarm", {})
            if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
                return ReadResult("", {})  # the swarm is gone: refresh drops it, the next up makes it again
            live = {n.id: n.attrs for n in client.nodes.list()}
        nodes = {}
        for name, node in (props.get("nodes") or {}).items():
            attrs = live.get(node.get("id"))
            if attrs is not None:
                nodes[name] = _node_state(attrs)
        return ReadResult(id_, {**props, "nodes": nodes})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with _cluster(props) as cluster:
            manager = _manager(props)
            for host in _hosts(props):
                if host.role != "manager":
                    _remove(cluster, props, host, (props.get("nodes") or {}).get(host.name, {}).get("id"))
            if not props.get("created"):
                _log(f"kept the swarm of {manager.name}: it existed before this stack")
                return
            client = cluster.engine(manager).client
            others = client.services.list()
            if others:
                _log(
                    f"kept the swarm of {manager.name}: it still runs {len(others)} service(s) of other "
                    "stacks"
                )
                return
            client.swarm.leave(force=True)
            _log(f"{manager.name} left the swarm it was made for")


def _ensure_swarm(cluster: _Cluster, props: Mapping[str, Any]) -> bool:
    """Make the manager's engine manage a swarm (adopting one it manages already); True when it made one."""
    manager = _manager(props)
    swarm = cluster.engine(manager).client.info().get("Swarm", {})
    if swarm.get("LocalNodeState") == "active":
        if not swarm.get("ControlAvailable"):
            raise ClusterError(
                f"{manager.label}: its engine is a worker of another swarm; run `docker swarm leave` there "
                "or make that swarm's manager this stack's manager"
            )
        return False
    cluster.engine(manager).client.swarm.init(
        advertise_addr=manager.address, listen_addr=f"{manager.address}:{SWARM_PORT}"
    )
    _log(f"{manager.name}: swarm initialised ({manager.address})")
    return True


def _verified_and_managing(props: Mapping[str, Any]) -> bool:
    """Log in to every SSH host with the pinned keys (a changed key raises before anything else runs), and
    say whether the manager still manages a swarm."""
    with _cluster(props) as cluster:
        if cluster.session is not None:
            for host in _hosts(props):
                cluster.session.verify(ssh_host(host.engine, host.label))
        swarm = cluster.engine(_manager(props)).client.info().get("Swarm", {})
    return bool(swarm.get("LocalNodeState") == "active" and swarm.get("ControlAvailable"))


def _host_set(props: Mapping[str, Any]) -> set[Host]:
    return set(_hosts(props))


def _swarm_id(cluster: _Cluster, manager: Host) -> str:
    return str(cluster.engine(manager).client.info()["Swarm"]["Cluster"]["ID"])


def _node_state(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": attrs["ID"],
        "state": attrs.get("Status", {}).get("State"),
        "availability": attrs.get("Spec", {}).get("Availability"),
        "membership": attrs.get("Spec", {}).get("Membership", "accepted"),
        "role": attrs.get("Spec", {}).get("Role"),
    }


def _join_all(cluster: _Cluster, props: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Join every host that is not in the manager's swarm; reactivate drained ones; return the nodes."""
    manager = _manager(props)
    client = cluster.engine(manager).client
    token = client.swarm.attrs["JoinTokens"]["Worker"]
    ids: dict[str, str] = {}
    for host in _hosts(props):
        info = cluster.engine(host).client.info().get("Swarm", {})
        known = {n.id for n in client.nodes.list()}
        if info.get("LocalNodeState") == "active" and info.get("NodeID") in known:
            ids[host.name] = str(info["NodeID"])
            continue
        if info.get("LocalNodeState") == "active":
            raise ClusterError(
                f"{host.label}: its engine is in another swarm; run `docker swarm leave --force` on it, then "
                "`pulumi up` again"
            )
        _log(f"{host.name}: joining the swarm of {manager.name}")
        cluster.engine(host).client.swarm.join(
            remote_addrs=[f"{manager.address}:{SWARM_PORT}"],
            join_token=token,
            advertise_addr=host.address,
            listen_addr=f"{host.address}:{SWARM_PORT}",
        )
        ids[host.name] = str(cluster.engine(host).client.info()["Swarm"]["NodeID"])
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        nodes = {n.id: n for n in client.nodes.list()}
        for name, node_id in ids.items():
            node = nodes[node_id]
            spec = node.attrs["Spec"]
            if spec.get("Availability") != "active":
                _log(f"{name}: availability {spec.get('Availability')} -> active")
                node.update({**spec, "Availability": "active"})
        waiting = [
            name for name, node_id in ids.items() if nodes[node_id].attrs["Status"]["State"] != "ready"
        ]
        if not waiting:
            break
        if time.monotonic() > deadline:
            raise ClusterError(f"nodes not ready after {READY_TIMEOUT:.0f}s: {', '.join(waiting)}")
        time.sleep(POLL)
    live = {n.id: n.attrs for n in client.nodes.list()}
    return {name: _node_state(live[node_id]) for name, node_id in ids.items()}


def _remove(cluster: _Cluster, props: Mapping[str, Any], host: Host, node_id: str | None) -> None:
    """Drain the host (its tasks move to the other nodes), make it leave, and remove its node."""
    client = cluster.engine(_manager(props)).client
    if node_id is None:
        return
    try:
        node = client.nodes.get(node_id)
    except docker.errors.NotFound:
        return
    _log(f"{host.name}: draining")
    node.update({**node.attrs["Spec"], "Availability": "drain"})
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while client.api.tasks(filters={"node": node_id, "desired-state": "running"}):
        if time.monotonic() > deadline:
            raise ClusterError(f"{host.name}: its tasks did not move to other nodes in {DRAIN_TIMEOUT:.0f}s")
        time.sleep(POLL)
    try:
        cluster.engine(host).client.swarm.leave()
    except (EngineUnavailable, docker.errors.APIError) as err:
        _log(f"{host.name}: could not leave by itself ({err}); removing its node anyway")
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_node(node_id, force=True)
    _log(f"{host.name}: removed from the swarm")


@dataclass(frozen=True)
class ClusterHost:
    name: str
    engine: pulumi.Input[str]
    address: pulumi.Input[str]
    role: str
    label: str


class SwarmCluster(Resource, module="flightdeck", name="SwarmCluster"):
    nodes: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        name: str,
        hosts: list[ClusterHost],
        ssh: pulumi.Input[dict[str, Any]] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "hosts": [
                {"name": h.name, "engine": h.engine, "address": h.address, "role": h.role, "label": h.label}
                for h in hosts
            ],
            "ssh": ssh,
            "nodes": None,
            "created": None,
        }
        super().__init__(SwarmClusterProvider(), name, props, opts)
