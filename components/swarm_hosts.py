"""The hosts of a swarm target made into one swarm: this machine's engine (`local`), or servers reached over
SSH as their deploy user with pinned host keys (`servers`, and `iaas` on its VMs).

`SwarmHosts` declares the SwarmCluster resource (providers/swarm_cluster.py) and hands the deployments what
they need to reach the swarm: the manager's engine address, every node's, and the SSH trust (pinned keys,
private key) as one value. The engine addresses are known only once the cluster exists, so every deployment
that uses them waits for it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

from providers.swarm_cluster import ClusterHost, SwarmCluster


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: pulumi.Input[str]  # what SSH connects to (and the swarm advertises, unless swarm_address)
    role: Literal["manager", "worker"]
    label: str  # how errors name the host (its config key, or its VM)
    user: str | None = None  # None: this machine's engine, no SSH
    port: int = 22
    host_key: pulumi.Input[str] | None = None  # the pinned public host key
    # What the swarm advertises for the host when it is not the SSH address (a VM's private VPC address).
    swarm_address: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class SwarmHostsArgs:
    hosts: Sequence[HostSpec]
    local_engine: str | None = None  # unix://… for the host without a user
    identity_file: str | None = None  # the deploy user's private key; None: the SSH agent


def _engine(host: HostSpec, local_engine: str | None) -> pulumi.Output[str]:
    if host.user is None:
        if local_engine is None:
            raise ValueError(f"{host.name}: a host without an SSH user needs the local engine's address")
        return pulumi.Output.from_input(local_engine)
    return pulumi.Output.from_input(host.address).apply(lambda a: f"ssh://{host.user}@{a}:{host.port}")


def _pin(values: list[Any], port: int) -> dict[str, Any]:
    return {"address": str(values[0]), "port": port, "host_key": str(values[1])}


def ssh_trust(hosts: Sequence[HostSpec], identity_file: str | None) -> pulumi.Output[dict[str, Any]] | None:
    """The SSH trust of the providers: each host's pinned key, and the private key to log in with."""
    remote = [h for h in hosts if h.user is not None]
    if not remote:
        return None
    pinned = [
        pulumi.Output.all(h.address, h.host_key).apply(functools.partial(_pin, port=h.port)) for h in remote
    ]
    return pulumi.Output.all(*pinned).apply(
        lambda keys: {"hosts": list(keys), "identity_file": identity_file}
    )


class SwarmHosts(pulumi.ComponentResource):
    manager_engine: pulumi.Output[str]
    manager_address: pulumi.Output[str]
    node_engines: pulumi.Output[list[str]]
    ssh: pulumi.Output[dict[str, Any]] | None

    def __init__(self, name: str, args: SwarmHostsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:swarm:SwarmHosts", name, None, opts)
        managers = [h for h in args.hosts if h.role == "manager"]
        if len(managers) != 1:
            raise ValueError(f"a swarm has exactly one manager here (given {len(managers)})")
        engines = {h.name: _engine(h, args.local_engine) for h in args.hosts}
        self.ssh = ssh_trust(args.hosts, args.identity_file)
        cluster = SwarmCluster(
            f"{name}-cluster",
            [
                ClusterHost(
                    name=h.name,
                    engine=engines[h.name],
                    address=h.swarm_address if h.swarm_address is not None else h.address,
                    role=h.role,
                    label=h.label,
                )
                for h in args.hosts
            ],
            self.ssh,
            opts=pulumi.ResourceOptions(parent=self),
        )
        manager = managers[0]
        # Known once the cluster exists: whoever deploys to these engines waits for the swarm.
        self.manager_engine = pulumi.Output.all(cluster.id, engines[manager.name]).apply(lambda v: str(v[1]))
        self.manager_address = pulumi.Output.all(cluster.id, manager.address).apply(lambda v: str(v[1]))
        self.node_engines = pulumi.Output.all(cluster.id, *engines.values()).apply(
            lambda v: [str(u) for u in v[1:]]
        )
        self.register_outputs(
            {
                "manager_engine": self.manager_engine,
                "manager_address": self.manager_address,
                "node_engines": self.node_engines,
            }
        )
