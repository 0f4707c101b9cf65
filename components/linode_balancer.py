"""LinodeBalancer: the public entry point of the VMs. With more than one VM, a NodeBalancer spreads HTTP(S)
over them; with one, that VM's own address is the entry point and nothing is created.

Port 80 is balanced as HTTP with active checks of /healthz, so a VM whose proxy fails them leaves the
rotation. Port 443 is passed through as TCP (TLS ends at each VM's proxy), where Linode can only check that
the port accepts connections. A NodeBalancer reaches its nodes on Linode's shared private network.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_linode as linode

from components.linode_vms import LinodeVm
from contract import HEALTH_PATH
from render.linode_labels import label, tags

# (port, protocol, check) of each NodeBalancer config.
PORTS = ((80, "http", "http"), (443, "tcp", "connection"))


def _as_int(value: str) -> int:
    return int(value)


def _node_address(port: int, ip: str) -> str:
    return f"{ip}:{port}"


@dataclass(frozen=True)
class LinodeBalancerArgs:
    app_name: str
    region: str
    vms: Sequence[LinodeVm]


class LinodeBalancer(pulumi.ComponentResource):
    """Outputs: public_address (the NodeBalancer's IPv4, or the only VM's). node_balancer: None for one VM."""

    public_address: pulumi.Output[str]
    node_balancer: linode.NodeBalancer | None

    def __init__(
        self, name: str, args: LinodeBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:linode:LinodeBalancer", name, None, opts)
        if not args.vms:
            raise ValueError("a balancer needs at least one VM")
        self.node_balancer = None
        if len(args.vms) == 1:
            self.public_address = args.vms[0].public_ipv4
        else:
            self.node_balancer = self._balance(name, args)
            self.public_address = self.node_balancer.ipv4
        self.register_outputs({"public_address": self.public_address})

    def _balance(self, name: str, args: LinodeBalancerArgs) -> linode.NodeBalancer:
        child = pulumi.ResourceOptions(parent=self)
        balancer = linode.NodeBalancer(
            f"{name}-lb",
            label=label(args.app_name, "lb"),
            region=args.region,
            tags=tags(args.app_name),
            opts=child,
        )
        balancer_id = balancer.id.apply(_as_int)
        for port, protocol, check in PORTS:
            config = linode.NodeBalancerConfig(
                f"{name}-lb-{port}",
                nodebalancer_id=balancer_id,
                port=port,
                protocol=protocol,
                algorithm="roundrobin",
                stickiness="none",
                check=check,
                check_path=HEALTH_PATH if check == "http" else None,
                check_interval=10,
                check_timeout=5,
                check_attempts=3,
                check_passive=True,
                opts=child,
            )
            for number, vm in enumerate(args.vms, start=1):
                linode.NodeBalancerNode(
                    f"{name}-lb-{port}-vm-{number}",
                    nodebalancer_id=balancer_id,
                    config_id=config.id.apply(_as_int),
                    label=f"vm-{number}",  # node labels are at most 32 characters
                    address=vm.private_ipv4.apply(functools.partial(_node_address, port)),
                    mode="accept",
                    opts=child,
                )
        return balancer
