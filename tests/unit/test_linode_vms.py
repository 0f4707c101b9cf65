"""LinodeVms (and its LinodeNetwork) under Pulumi mocks, for one VM and for three: the firewall made first and
attached at creation, the VPC the swarm talks over, no key for root, a generated host key in each VM's
secret user-data."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from components.linode_network import SWARM_PORTS, VPC_SUBNET, inbound_rules, vpc_address
from components.linode_vms import LINODE_PRIVATE_NETWORK, LinodeVms, LinodeVmsArgs, public_ipv4
from render.cloud_init import DEPLOY_USER
from render.linode_labels import SHORT_LABEL, label
from tests.support.linode_mocks import (
    FIREWALL,
    HOST_KEY,
    INSTANCE,
    SECRET,
    SSH_KEY,
    SSH_PUBLIC_KEY,
    SUBNET,
    VPC,
    Run,
    linode_options,
    private,
    public,
    run,
)
from tests.support.pulumi_mocks import COMPUTED
from tests.support.secrets import unwrap

APP = "flightdeck-iaas"


def deploy(count: int, **overrides: Any) -> Run[LinodeVms]:
    def outputs(vms: LinodeVms) -> dict[str, Any]:
        per_vm = {
            f"{field}-{n}": getattr(vm, field)
            for n, vm in enumerate(vms.vms, start=1)
            for field in ("public_ipv4", "private_ipv4", "host_key")
        }
        return {"public_ips": vms.public_ips, "firewall_id": vms.firewall_id, **per_vm}

    args = LinodeVmsArgs(app_name=APP, linode=linode_options(instance_count=count, **overrides))
    return run(lambda opts: LinodeVms("vms", args, opts=opts), outputs)


def instances(deployed: Run[LinodeVms]) -> list[Any]:
    return sorted(deployed.of_type(INSTANCE), key=lambda vm: int(vm.name.rsplit("-", 1)[1]))


def user_data(instance: Any) -> tuple[dict[str, Any], bool]:
    metadatas, secret = unwrap(instance.inputs["metadatas"])  # the secret marks the whole property
    ((encoded, inner),) = [unwrap(m["userData"]) for m in metadatas]
    assert not inner
    text = base64.b64decode(encoded).decode()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text), secret


@pytest.mark.parametrize("count", [1, 3])
def test_vms_boot_debian_the_first_one_the_manager(count: int) -> None:
    deployed = deploy(count)
    vms = instances(deployed)
    assert [vm.name for vm in vms] == [f"vms-vm-{n}" for n in range(1, count + 1)]
    for n, vm in enumerate(vms, start=1):
        role = "manager" if n == 1 else "worker"
        assert vm.inputs["label"] == f"{APP}-{n}"
        assert vm.inputs["type"] == "g6-standard-1"
        assert vm.inputs["region"] == "eu-central"
        assert vm.inputs["image"] == "linode/debian12"
        assert vm.inputs["backupsEnabled"] is True
        assert vm.inputs["privateIp"] is True  # the NodeBalancer's way in
        assert vm.inputs["tags"] == ["flightdeck", APP, role]
    component = deployed.component
    assert [vm.role for vm in component.vms] == ["manager"] + ["worker"] * (count - 1)
    assert [vm.name for vm in component.vms] == [f"{APP}-{n}" for n in range(1, count + 1)]
    assert deployed.values["public_ips"] == [public(n) for n in range(1, count + 1)]
    for n in range(1, count + 1):
        assert deployed.values[f"public_ipv4-{n}"] == public(n)
        assert deployed.values[f"private_ipv4-{n}"] == private(n)
    assert component.deploy_user == DEPLOY_USER


@pytest.mark.parametrize("count", [1, 3])
def test_the_firewall_exists_first_and_each_vm_is_created_inside_it(count: int) -> None:
    deployed = deploy(count)
    firewall = deployed.one(FIREWALL)
    position = deployed.resources.index(firewall)
    firewall_id = deployed.values["firewall_id"]
    assert isinstance(firewall_id, int)
    for vm in instances(deployed):
        assert deployed.resources.index(vm) > position
        assert vm.inputs["firewallId"] == firewall_id  # attached by Linode when it creates the VM
    # Attached from the VMs' side only: the firewall names no device (nothing to re-attach, no cycle).
    assert "linodes" not in firewall.inputs and "nodebalancers" not in firewall.inputs


def _rules(deployed: Run[LinodeVms]) -> dict[str, dict[str, Any]]:
    return {rule["label"]: rule for rule in deployed.one(FIREWALL).inputs["inbounds"]}


@pytest.mark.parametrize("count", [1, 3])
def test_firewall_drops_all_but_web_ssh_from_the_allow_list_and_swarm_from_the_vpc(count: int) -> None:
    deployed = deploy(count)
    firewall = deployed.one(FIREWALL)
    assert firewall.inputs["inboundPolicy"] == "DROP"
    assert firewall.inputs["outboundPolicy"] == "ACCEPT"
    rules = _rules(deployed)
    assert all(rule["action"] == "ACCEPT" for rule in rules.values())
    for name, port in (("allow-http", "80"), ("allow-https", "443")):
        assert rules[name]["protocol"] == "TCP" and rules[name]["ports"] == port
        assert rules[name]["ipv4s"] == ["0.0.0.0/0"] and rules[name]["ipv6s"] == ["::/0"]
    assert rules["allow-ssh"] == {
        "label": "allow-ssh",
        "action": "ACCEPT",
        "protocol": "TCP",
        "ports": "22",
        "ipv4s": ["203.0.113.0/24"],
    }
    swarm = [rule for name, rule in rules.items() if name.startswith("swarm-")]
    assert {(r["protocol"], r["ports"]) for r in swarm} == {(p, port) for _, p, port in SWARM_PORTS}
    # Only the VPC: never Linode's shared private network, which other customers' VMs are on.
    shared = ipaddress.ip_network(LINODE_PRIVATE_NETWORK)
    for rule in swarm:
        assert rule["ipv4s"] == [VPC_SUBNET] and "ipv6s" not in rule
        assert not ipaddress.ip_network(VPC_SUBNET).overlaps(shared)
    assert set(rules) == {"allow-http", "allow-https", "allow-ssh", *(name for name, _, _ in SWARM_PORTS)}
    assert [name for name, rule in rules.items() if "22" in rule["ports"].split(",")] == ["allow-ssh"]


@pytest.mark.parametrize("count", [1, 3])
def test_each_vm_joins_the_vpc_at_its_fixed_address(count: int) -> None:
    deployed = deploy(count)
    vpc, subnet = deployed.one(VPC), deployed.one(SUBNET)
    assert vpc.inputs["region"] == "eu-central"
    assert subnet.inputs["ipv4"] == VPC_SUBNET
    subnet_id = int(deployed.resources.index(subnet) + 1)  # the mocks number Linode ids by declaration
    assert subnet.inputs["vpcId"] == deployed.resources.index(vpc) + 1
    for n, vm in enumerate(instances(deployed), start=1):
        assert vm.inputs["interfaceGeneration"] == "legacy_config"  # the firewall then covers both
        public_interface, vpc_interface = vm.inputs["interfaces"]
        assert public_interface == {"purpose": "public", "primary": True}
        assert vpc_interface == {"purpose": "vpc", "subnetId": subnet_id, "ipv4": {"vpc": vpc_address(n)}}
        assert deployed.component.vms[n - 1].vpc_ipv4 == vpc_address(n)
    addresses = [vm.vpc_ipv4 for vm in deployed.component.vms]
    assert len(set(addresses)) == count
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(VPC_SUBNET) for a in addresses)


@pytest.mark.parametrize("count", [1, 3])
def test_root_gets_no_key_only_a_random_password_nobody_uses(count: int) -> None:
    deployed = deploy(count)
    assert deployed.of_type(SSH_KEY) == []
    passwords = {s.name: s for s in deployed.of_type(SECRET)}
    for n, vm in enumerate(instances(deployed), start=1):
        assert "authorizedKeys" not in vm.inputs and "authorizedUsers" not in vm.inputs
        password, secret = unwrap(vm.inputs["rootPass"])
        assert secret and password == COMPUTED[SECRET]["value"]
        # Its own secret, drawn once for this VM.
        recipe = passwords[f"vms-vm-{n}-root-password"].inputs
        assert (recipe["length"], recipe["alphabet"]) == (64, "alphanumeric")
        assert deployed.resources.index(passwords[f"vms-vm-{n}-root-password"]) < deployed.resources.index(vm)


@pytest.mark.parametrize("count", [1, 3])
def test_each_vm_presents_its_own_generated_host_key_given_in_secret_user_data(count: int) -> None:
    deployed = deploy(count)
    keys = {k.name: k for k in deployed.of_type(HOST_KEY)}
    assert set(keys) == {f"vms-vm-{n}-host-key" for n in range(1, count + 1)}
    published = set()
    for n, vm in enumerate(instances(deployed), start=1):
        assert deployed.resources.index(keys[f"vms-vm-{n}-host-key"]) < deployed.resources.index(vm)
        doc, secret = user_data(vm)
        assert secret  # the private key is in it
        pinned = deployed.values[f"host_key-{n}"]
        assert doc["ssh_keys"]["ed25519_public"] == pinned
        assert doc["ssh_deletekeys"] is True
        private_key = serialization.load_ssh_private_key(doc["ssh_keys"]["ed25519_private"].encode(), None)
        assert isinstance(private_key, Ed25519PrivateKey)
        derived = private_key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        assert derived.decode() == pinned
        (user,) = doc["users"]
        assert user["name"] == DEPLOY_USER and user["ssh_authorized_keys"] == [SSH_PUBLIC_KEY]
        assert doc["hostname"] == f"{APP}-{n}"
        published.add(pinned)
    assert len(published) == count
    assert all(not deployed.secret[f"host_key-{n}"] for n in range(1, count + 1))  # plain, for known_hosts


def test_a_user_data_edit_never_replaces_a_running_vm() -> None:
    deployed = deploy(2)
    for n in (1, 2):
        options = deployed.options[f"vms-vm-{n}"]
        assert options.ignore_changes == ["metadatas"]
        assert options.delete_before_replace is True  # fixed label and VPC address


def test_ssh_allow_list_keeps_ipv4_and_ipv6_apart() -> None:
    (ssh,) = [r for r in inbound_rules(["198.51.100.7/32", "2001:db8::/48"]) if r["label"] == "allow-ssh"]
    assert ssh["ipv4s"] == ["198.51.100.7/32"]
    assert ssh["ipv6s"] == ["2001:db8::/48"]


def test_vpc_addresses_are_fixed_per_vm_number() -> None:
    assert [vpc_address(n) for n in (1, 2, 3)] == ["172.16.0.11", "172.16.0.12", "172.16.0.13"]
    with pytest.raises(ValueError, match="outside"):
        vpc_address(0)


def test_public_ipv4_skips_the_private_addresses() -> None:
    assert public_ipv4(["192.168.140.3", "203.0.113.3"]) == "203.0.113.3"
    with pytest.raises(ValueError, match="no public IPv4"):
        public_ipv4(["192.168.140.3", "172.16.0.11"])


def test_labels_fit_linodes_limits() -> None:
    long_name = "a" * 30
    for suffix in ("firewall", "lb", "db"):
        made = label(long_name, suffix)
        assert len(made) <= SHORT_LABEL and made.endswith(f"-{suffix}")
    assert label("flightdeck-iaas", "firewall") == "flightdeck-iaas-firewall"
    assert label("ab-cd-efgh", "firewall", 14) == "ab-cd-firewall"  # no "--" where the cut falls
