"""LinodeVms: the swarm's VMs, booted with cloud-init inside their firewall and VPC, each with a pinned host
key.

VM 1 is the swarm's manager, the others its workers (providers/swarm_cluster.py makes the swarm over SSH once
they answer). Each VM is created with the firewall attached (components/linode_network.py), a public
interface, a VPC interface at a fixed address (what the swarm advertises), and a private IPv4 on Linode's
shared network (what a NodeBalancer reaches its nodes on; the firewall admits only HTTP(S) there).

Nobody logs in as root: the Linode API wants some root credential for an image, so each VM gets a long random
root password that is used by nothing (sshd refuses root and passwords), and no SSH key. Only the cloud-init
`deploy` user gets the stack's key (flightdeck:sshPublicKey). The host key is generated here
(providers/generated_ssh_key.py) and handed to cloud-init, so the deploy can pin it from the first connection.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_linode as linode

from components.linode_network import VPC_SUBNET, LinodeNetwork, LinodeNetworkArgs, vpc_address
from providers.generated_secret import GeneratedSecret, GeneratedSecretArgs
from providers.generated_ssh_key import GeneratedSshKey
from render import cloud_init
from render.linode_labels import label, tags
from settings import LinodeOptions, Role

# Linode's shared private network in every region (the VMs' private_ip_address is in it).
LINODE_PRIVATE_NETWORK = "192.168.128.0/17"
_NOT_PUBLIC = [ipaddress.ip_network(LINODE_PRIVATE_NETWORK), ipaddress.ip_network(VPC_SUBNET)]


def public_ipv4(addresses: Sequence[str]) -> str:
    """The public one of a Linode's IPv4 addresses (the others are private)."""
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.version == 4 and not any(ip in network for network in _NOT_PUBLIC):
            return address
    raise ValueError(f"no public IPv4 address among {list(addresses)}")


def _user_data(hostname: str, ssh_public_key: str, reboot_at: str, keys: list[Any]) -> str:
    host_key = cloud_init.HostKey(private=str(keys[0]), public=str(keys[1]))
    vm = cloud_init.VmConfig(hostname, ssh_public_key, host_key, reboot_at)
    return cloud_init.encode(cloud_init.render(vm))


@dataclass(frozen=True)
class LinodeVm:
    """One VM as the swarm and the balancer see it."""

    name: str  # its Linode label and host name
    role: Role
    vpc_ipv4: str  # the swarm's address for it (advertise and listen here), fixed
    public_ipv4: pulumi.Output[str]  # where the deploy connects over SSH
    private_ipv4: pulumi.Output[str]  # on Linode's shared private network: the NodeBalancer's way in
    host_key: pulumi.Output[str]  # the host's public key, "ssh-ed25519 <base64>": pin it
    instance: linode.Instance

    def outputs(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "vpc_ipv4": self.vpc_ipv4,
            "public_ipv4": self.public_ipv4,
            "private_ipv4": self.private_ipv4,
            "host_key": self.host_key,
        }


@dataclass(frozen=True)
class LinodeVmsArgs:
    app_name: str
    linode: LinodeOptions


class LinodeVms(pulumi.ComponentResource):
    """Outputs: vms (LinodeVm each, the manager first), public_ips, deploy_user, firewall_id, vpc_subnet."""

    vms: list[LinodeVm]
    public_ips: pulumi.Output[list[str]]
    deploy_user: str
    firewall_id: pulumi.Output[int]
    vpc_subnet: str

    def __init__(self, name: str, args: LinodeVmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:linode:LinodeVms", name, None, opts)
        settings, app = args.linode, args.app_name
        child = pulumi.ResourceOptions(parent=self)
        network = LinodeNetwork(
            f"{name}-network",
            LinodeNetworkArgs(app_name=app, region=settings.region, ssh_allow_list=settings.ssh_allow_list),
            opts=child,
        )
        self.firewall_id = network.firewall_id
        self.vpc_subnet = network.subnet
        self.deploy_user = cloud_init.DEPLOY_USER

        self.vms = []
        for index in range(settings.instance_count):
            number = index + 1
            hostname = label(app, str(number), 63)
            role: Role = "manager" if index == 0 else "worker"
            host_key = GeneratedSshKey(f"{name}-vm-{number}-host-key", opts=child)
            root_password = GeneratedSecret(
                f"{name}-vm-{number}-root-password", GeneratedSecretArgs(length=64), opts=child
            )
            render = functools.partial(
                _user_data, hostname, settings.ssh_public_key, cloud_init.reboot_time(index)
            )
            # The host key's private half is in it.
            user_data: pulumi.Output[str] = pulumi.Output.secret(
                pulumi.Output.all(host_key.private_key, host_key.public_key).apply(render)
            )
            address = vpc_address(number)
            instance = linode.Instance(
                f"{name}-vm-{number}",
                label=hostname,
                region=settings.region,
                type=settings.instance_type,
                image=settings.image,
                root_pass=root_password.value,
                firewall_id=network.firewall_id,
                # Configuration-profile interfaces: the firewall then covers the Linode, public and VPC alike.
                interface_generation="legacy_config",
                interfaces=[
                    linode.InstanceInterfaceArgs(purpose="public", primary=True),
                    linode.InstanceInterfaceArgs(
                        purpose="vpc",
                        subnet_id=network.subnet_id,
                        ipv4=linode.InstanceInterfaceIpv4Args(vpc=address),
                    ),
                ],
                private_ip=True,
                backups_enabled=settings.backups,
                metadatas=[linode.InstanceMetadataArgs(user_data=user_data)],
                tags=[*tags(app), role],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # cloud-init reads user-data on the first boot only: an edit must not replace (wipe) a
                    # running VM. A new VM gets the current user-data; a replaced one keeps its host key.
                    ignore_changes=["metadatas"],
                    # Its label and VPC address are fixed, and Linode refuses a second VM holding either.
                    delete_before_replace=True,
                ),
            )
            self.vms.append(
                LinodeVm(
                    name=hostname,
                    role=role,
                    vpc_ipv4=address,
                    public_ipv4=instance.ipv4s.apply(public_ipv4),
                    private_ipv4=instance.private_ip_address,
                    host_key=host_key.public_key,
                    instance=instance,
                )
            )
        self.public_ips = pulumi.Output.all(*[vm.public_ipv4 for vm in self.vms])
        self.register_outputs(
            {
                "vms": [vm.outputs() for vm in self.vms],
                "public_ips": self.public_ips,
                "deploy_user": self.deploy_user,
                "firewall_id": self.firewall_id,
                "vpc_subnet": self.vpc_subnet,
            }
        )
