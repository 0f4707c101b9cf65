"""LinodeNetwork: the VPC the swarm talks over and the Cloud Firewall, both made before any VM.

The firewall is attached to each VM when Linode creates it (`Instance(firewall_id=...)`), so no VM ever boots
unfirewalled. That needs rules that do not name the VMs: the swarm's ports are opened to the VPC subnet, a
range fixed here, where each VM gets a fixed address. A VPC is private to this account, unlike Linode's shared
private network (192.168.128.0/17, which other customers' VMs in the region share): the swarm ports are never
open to those. Linode applies a Linode's firewall to its public and VPC interfaces alike, hence the rule.

Inbound, everything else is dropped but HTTP(S) from anywhere and SSH from the allow-list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_linode as linode

from render.linode_labels import label, tags

ANYWHERE_V4 = "0.0.0.0/0"
ANYWHERE_V6 = "::/0"
# Outside Docker's default pools (overlay networks take 10.0.0.0/8, bridges 172.17.0.0/16 and up) and
# Linode's shared private network, so no route on a VM ever overlaps it.
VPC_SUBNET = "172.16.0.0/24"
# VM n (from 1) is .10+n: clear of the addresses Linode reserves at the start of a subnet.
_FIRST_HOST = 10
MAX_VMS = 200
# Docker's swarm ports: cluster management, node gossip, overlay network (VXLAN) traffic.
SWARM_PORTS = (
    ("swarm-manage", "TCP", "2377"),
    ("swarm-gossip-tcp", "TCP", "7946"),
    ("swarm-gossip-udp", "UDP", "7946"),
    ("swarm-overlay", "UDP", "4789"),
)


def vpc_address(number: int) -> str:
    """The fixed VPC address of VM `number` (1-based): what it advertises to the swarm."""
    if not 1 <= number <= MAX_VMS:
        raise ValueError(f"VM number {number} is outside 1-{MAX_VMS}")
    return str(ipaddress.ip_network(VPC_SUBNET)[_FIRST_HOST + number])


def inbound_rules(ssh_allow_list: Sequence[str], swarm_subnet: str = VPC_SUBNET) -> list[dict[str, Any]]:
    """Cloud Firewall inbound rules (the policy drops everything else): HTTP(S) from anywhere, SSH from the
    allow-list (IPv4 and IPv6 kept apart, as Linode wants them), the swarm ports from the VPC subnet."""
    networks = [ipaddress.ip_network(cidr) for cidr in ssh_allow_list]
    ssh: dict[str, Any] = {"label": "allow-ssh", "action": "ACCEPT", "protocol": "TCP", "ports": "22"}
    if v4 := [str(n) for n in networks if n.version == 4]:
        ssh["ipv4s"] = v4
    if v6 := [str(n) for n in networks if n.version == 6]:
        ssh["ipv6s"] = v6
    rules: list[dict[str, Any]] = [
        {
            "label": f"allow-{name}",
            "action": "ACCEPT",
            "protocol": "TCP",
            "ports": port,
            "ipv4s": [ANYWHERE_V4],
            "ipv6s": [ANYWHERE_V6],
        }
        for name, port in (("http", "80"), ("https", "443"))
    ]
    rules.append(ssh)
    rules.extend(
        {"label": name, "action": "ACCEPT", "protocol": protocol, "ports": port, "ipv4s": [swarm_subnet]}
        for name, protocol, port in SWARM_PORTS
    )
    return rules


def _as_int(value: str) -> int:
    return int(value)


@dataclass(frozen=True)
class LinodeNetworkArgs:
    app_name: str
    region: str
    ssh_allow_list: Sequence[str]


class LinodeNetwork(pulumi.ComponentResource):
    """Outputs: firewall_id, subnet_id (ints, for the VMs), subnet (the CIDR, plain)."""

    firewall_id: pulumi.Output[int]
    subnet_id: pulumi.Output[int]
    subnet: str

    def __init__(
        self, name: str, args: LinodeNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:linode:LinodeNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc = linode.Vpc(
            f"{name}-vpc",
            label=label(args.app_name, "vpc", 64),
            region=args.region,
            description="flightdeck: the swarm's own network",
            opts=child,
        )
        subnet = linode.VpcSubnet(
            f"{name}-subnet", vpc_id=vpc.id.apply(_as_int), label="swarm", ipv4=VPC_SUBNET, opts=child
        )
        self.subnet_id = subnet.id.apply(_as_int)
        self.subnet = VPC_SUBNET
        # No `linodes`: each VM attaches itself at creation, and the provider leaves such devices alone.
        firewall = linode.Firewall(
            f"{name}-firewall",
            label=label(args.app_name, "firewall"),
            inbound_policy="DROP",
            outbound_policy="ACCEPT",
            inbounds=inbound_rules(args.ssh_allow_list),
            tags=tags(args.app_name),
            opts=child,
        )
        self.firewall_id = firewall.id.apply(_as_int)
        self.register_outputs(
            {
                "firewall_id": self.firewall_id,
                "subnet_id": self.subnet_id,
                "subnet": self.subnet,
            }
        )
