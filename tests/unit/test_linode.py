"""LinodeHosts under Pulumi mocks for one VM and for three; its SSH scripts run against stand-in tools."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import cloud_init
from components.cloud_init import DEPLOY_USER, Role, VmConfig
from components.linode import (
    LEAVE_SWARM,
    MANAGER_READY,
    SHORT_LABEL,
    LinodeHosts,
    LinodeHostsArgs,
    join_script,
    label,
    public_ipv4,
)
from components.settings import parse
from tests.support.pulumi_mocks import Declared, RecordingMocks, use_mocks
from tests.support.secrets import unwrap
from tests.support.stacks import stack_config

INSTANCE = "linode:index/instance:Instance"
FIREWALL = "linode:index/firewall:Firewall"
BALANCER = "linode:index/nodeBalancer:NodeBalancer"
BALANCER_CONFIG = "linode:index/nodeBalancerConfig:NodeBalancerConfig"
BALANCER_NODE = "linode:index/nodeBalancerNode:NodeBalancerNode"
BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
BUCKET_KEY = "linode:index/objectStorageKey:ObjectStorageKey"
DATABASE = "linode:index/databasePostgresqlV2:DatabasePostgresqlV2"
COMMAND = "command:remote:Command"
TOKEN = "SWMTKN-1-mock-worker-token"
SWARM_PORTS = {("TCP", "2377"), ("TCP", "7946"), ("UDP", "7946"), ("UDP", "4789")}


def public(n: int) -> str:
    return f"203.0.113.{n}"


def private(n: int) -> str:
    return f"192.168.140.{n}"


@dataclass
class LinodeMocks(RecordingMocks):
    """Gives each VM its own addresses (vm-N: 203.0.113.N public, 192.168.140.N private), the bucket its
    region's endpoint and the manager's token command a token."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == INSTANCE:
            n = int(args.name.rsplit("-", 1)[1])
            outputs.update(ipv4s=[private(n), public(n)], private_ip_address=private(n))
        elif args.typ == BUCKET:
            outputs["s3_endpoint"] = f"{args.inputs['region']}-1.linodeobjects.com"
        elif args.typ == COMMAND and args.name.endswith("swarm-manager"):
            outputs["stdout"] = TOKEN
        return resource_id, outputs


MOCKS = LinodeMocks()


@pytest.fixture(autouse=True)
def mocks() -> Iterator[LinodeMocks]:
    MOCKS.resources.clear()
    pulumi.runtime.set_mocks(MOCKS, project="flightdeck", stack="iaas")
    yield MOCKS
    use_mocks()  # mocks are process-wide: hand the shared ones back to the modules that use them


OUTPUTS = (
    "manager_ip", "swarm_host", "manager_private_ip", "public_ips", "private_ips", "public_address", "url",
    "bucket_name", "bucket_region", "bucket_endpoint", "bucket_access_key", "bucket_secret_key",
)  # fmt: skip
DATABASE_OUTPUTS = ("host", "port", "username", "password", "ca_cert")


@dataclass
class Deployed:
    hosts: LinodeHosts
    args: LinodeHostsArgs
    values: dict[str, Any]
    secret: dict[str, bool]
    ids: dict[str, list[str]]
    resources: list[Declared]

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Declared:
        (found,) = self.of_type(typ)
        return found


def deploy(*, ssh_private_key: str | None = None, protect_data: bool = False, **overrides: Any) -> Deployed:
    """Declare LinodeHosts for the iaas stack with config overrides; resolve its outputs."""
    settings = parse(*stack_config("iaas", **overrides))
    assert settings.linode is not None and settings.swarm is not None
    args = LinodeHostsArgs(
        app_name=settings.app.name,
        domain=settings.app.domain,
        linode=settings.linode,
        backup_retention_days=settings.swarm.backup_retention_days,
        ssh_private_key=pulumi.Output.secret(ssh_private_key) if ssh_private_key else None,
        protect_data=protect_data,
    )
    captured: dict[str, Any] = {}
    MOCKS.resources.clear()

    async def resolve(hosts: LinodeHosts) -> None:
        outputs = {name: getattr(hosts, name) for name in OUTPUTS}
        if hosts.database is not None:
            outputs.update({f"database_{n}": getattr(hosts, f"database_{n}") for n in DATABASE_OUTPUTS})
        captured["values"] = {name: await out.future() for name, out in outputs.items()}
        captured["secret"] = {name: await out.is_secret() for name, out in outputs.items()}
        ids = {"instances": [await vm.id.future() for vm in hosts.instances]}
        if hosts.node_balancer is not None:
            ids["balancer"] = [await hosts.node_balancer.id.future()]
        captured["ids"] = ids

    @pulumi.runtime.test
    def run() -> Any:
        captured["hosts"] = hosts = LinodeHosts("hosts", args)
        return pulumi.Output.from_input(resolve(hosts))

    run()
    return Deployed(
        captured["hosts"],
        args,
        captured["values"],
        captured["secret"],
        captured["ids"],
        list(MOCKS.resources),
    )


def plain(value: Any) -> Any:
    """A resource input with Pulumi's secret wrapper removed."""
    return unwrap(value)[0]


@pytest.mark.parametrize("count", [1, 3])
def test_instances_boot_debian_with_their_user_data(count: int):
    deployed = deploy(linodeInstanceCount=count)
    settings = deployed.args.linode
    vms = sorted(deployed.of_type(INSTANCE), key=lambda vm: int(vm.name.rsplit("-", 1)[1]))
    assert [vm.name for vm in vms] == [f"hosts-vm-{n}" for n in range(1, count + 1)]
    for index, vm in enumerate(vms):
        role = Role.MANAGER if index == 0 else Role.WORKER
        assert vm.inputs["type"] == "g6-standard-1" == settings.instance_type
        assert vm.inputs["region"] == "eu-central"
        assert vm.inputs["image"] == "linode/debian12"
        assert vm.inputs["privateIp"] is True
        assert vm.inputs["backupsEnabled"] is True
        assert vm.inputs["authorizedKeys"] == [settings.ssh_public_key]
        assert role.value in vm.inputs["tags"]
        (metadata,) = vm.inputs["metadatas"]
        expected = VmConfig(
            f"flightdeck-iaas-{index + 1}", role, settings.ssh_public_key, cloud_init.reboot_time(index)
        )
        assert base64.b64decode(metadata["userData"]).decode() == cloud_init.render(expected)
    assert deployed.values["public_ips"] == [public(n) for n in range(1, count + 1)]
    assert deployed.values["private_ips"] == [private(n) for n in range(1, count + 1)]
    assert deployed.values["manager_ip"] == public(1)
    assert deployed.values["manager_private_ip"] == private(1)


def _rules(deployed: Deployed) -> dict[str, dict[str, Any]]:
    firewall = deployed.one(FIREWALL)
    return {rule["label"]: rule for rule in firewall.inputs["inbounds"]}


@pytest.mark.parametrize("count", [1, 3])
def test_firewall_drops_all_but_web_ssh_from_the_allow_list_and_swarm_between_vms(count: int):
    deployed = deploy(linodeInstanceCount=count)
    firewall = deployed.one(FIREWALL)
    assert firewall.inputs["inboundPolicy"] == "DROP"
    assert firewall.inputs["outboundPolicy"] == "ACCEPT"
    assert firewall.inputs["linodes"] == [int(i) for i in deployed.ids["instances"]]
    assert len(set(firewall.inputs["linodes"])) == count
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
    swarm = {name: rule for name, rule in rules.items() if name.startswith("swarm-")}
    if count == 1:
        assert swarm == {}
        assert set(rules) == {"allow-http", "allow-https", "allow-ssh"}
    else:
        assert {(r["protocol"], r["ports"]) for r in swarm.values()} == SWARM_PORTS
        peers = [f"{private(n)}/32" for n in range(1, count + 1)]
        assert all(r["ipv4s"] == peers and "ipv6s" not in r for r in swarm.values())
    # Nothing else opens SSH.
    assert [name for name, rule in rules.items() if "22" in rule["ports"].split(",")] == ["allow-ssh"]


def test_ssh_allow_list_keeps_ipv4_and_ipv6_apart():
    deployed = deploy(linodeInstanceCount=1, sshAllowList=["198.51.100.7/32", "2001:db8::/48"])
    ssh = _rules(deployed)["allow-ssh"]
    assert ssh["ipv4s"] == ["198.51.100.7/32"]
    assert ssh["ipv6s"] == ["2001:db8::/48"]


def test_one_vm_has_no_balancer_and_is_the_public_address():
    deployed = deploy(linodeInstanceCount=1, domain=None)
    assert deployed.of_type(BALANCER) == []
    assert deployed.of_type(BALANCER_CONFIG) == []
    assert deployed.of_type(BALANCER_NODE) == []
    assert deployed.values["public_address"] == public(1)
    assert deployed.values["url"] == f"http://{public(1)}"


def test_several_vms_sit_behind_a_balancer_checking_healthz():
    deployed = deploy(linodeInstanceCount=3)
    balancer = deployed.one(BALANCER)
    assert balancer.inputs["region"] == "eu-central"
    assert deployed.values["public_address"] == "203.0.113.200"  # the balancer's (shared mock outputs)
    assert deployed.values["url"] == "https://flights-iaas.example.com"
    configs = {c.inputs["port"]: c.inputs for c in deployed.of_type(BALANCER_CONFIG)}
    assert set(configs) == {80, 443}
    assert configs[80]["protocol"] == "http"
    assert configs[80]["check"] == "http" and configs[80]["checkPath"] == "/healthz"
    assert configs[443]["protocol"] == "tcp" and configs[443]["check"] == "connection"
    (balancer_id,) = deployed.ids["balancer"]
    assert all(c["nodebalancerId"] == int(balancer_id) for c in configs.values())
    nodes = deployed.of_type(BALANCER_NODE)
    assert sorted(n.inputs["address"] for n in nodes) == sorted(
        f"{private(n)}:{port}" for n in range(1, 4) for port in (80, 443)
    )
    assert all(n.inputs["mode"] == "accept" for n in nodes)


def test_bucket_is_versioned_expires_backups_and_has_a_key_for_itself_only():
    deployed = deploy()
    bucket = deployed.one(BUCKET)
    assert bucket.inputs["label"] == "flightdeck-iaas-data"
    assert bucket.inputs["region"] == "eu-central"
    assert bucket.inputs["versioning"] is True
    rules = {r["id"]: r for r in bucket.inputs["lifecycleRules"]}
    assert rules["expire-backups"]["prefix"] == "backups/"
    assert rules["expire-backups"]["expiration"] == {"days": 30}  # backupRetentionDays of the iaas stack
    assert all(r["enabled"] for r in rules.values())
    assert rules["tidy-versions"]["noncurrentVersionExpiration"] == {"days": 30}
    assert "prefix" not in rules["tidy-versions"]
    key = deployed.one(BUCKET_KEY)
    assert key.inputs["bucketAccesses"] == [
        {"bucketName": "flightdeck-iaas-data", "region": "eu-central", "permissions": "read_write"}
    ]
    assert "regions" not in key.inputs  # no account-wide access
    assert deployed.values["bucket_name"] == "flightdeck-iaas-data"
    assert deployed.values["bucket_endpoint"] == "eu-central-1.linodeobjects.com"
    assert deployed.values["bucket_access_key"] == "MOCKACCESSKEY0000000"
    assert deployed.secret["bucket_access_key"] and deployed.secret["bucket_secret_key"]
    assert not deployed.secret["bucket_name"]


def test_retention_follows_the_setting():
    deployed = deploy(backupRetentionDays=7)
    rules = {r["id"]: r for r in deployed.one(BUCKET).inputs["lifecycleRules"]}
    assert rules["expire-backups"]["expiration"] == {"days": 7}


def test_no_managed_database_unless_asked():
    deployed = deploy()
    assert deployed.of_type(DATABASE) == []
    assert deployed.hosts.database is None


@pytest.mark.parametrize("count", [1, 3])
def test_managed_database_admits_only_the_vms(count: int):
    deployed = deploy(
        linodeInstanceCount=count,
        linodeManagedDatabase=True,
        linodeDatabaseType="g6-dedicated-2",
        linodeDatabaseClusterSize=3,
    )
    database = deployed.one(DATABASE)
    assert database.inputs["engineId"] == "postgresql/16"
    assert database.inputs["type"] == "g6-dedicated-2"
    assert database.inputs["clusterSize"] == 3
    assert database.inputs["region"] == "eu-central"
    assert database.inputs["allowLists"] == [f"{public(n)}/32" for n in range(1, count + 1)]
    assert deployed.values["database_host"] == "a1-mock.g2a.akamaidb.net"
    assert deployed.values["database_port"] == 24035
    for part in ("username", "password", "ca_cert"):
        assert deployed.secret[f"database_{part}"]


@pytest.mark.parametrize("count", [1, 3])
def test_workers_join_the_manager_over_ssh(count: int):
    deployed = deploy(linodeInstanceCount=count)
    commands = {c.name: c.inputs for c in deployed.of_type(COMMAND)}
    assert set(commands) == {"hosts-swarm-manager"} | {f"hosts-swarm-join-{n}" for n in range(2, count + 1)}
    manager = commands["hosts-swarm-manager"]
    assert manager["create"] == MANAGER_READY
    assert manager["logging"] == "stderr"  # stdout is the join token
    assert plain(manager["connection"])["host"] == public(1)
    assert plain(manager["connection"])["user"] == DEPLOY_USER
    for n in range(2, count + 1):
        join = commands[f"hosts-swarm-join-{n}"]
        assert plain(join["connection"])["host"] == public(n)
        assert join["create"] == join_script(private(n), private(1))
        assert plain(join["stdin"]) == TOKEN
        assert join["delete"] == LEAVE_SWARM
    assert len(deployed.hosts.swarm_ready) == count
    assert deployed.values["swarm_host"] == public(1)


def test_ssh_steps_use_the_given_private_key_else_the_agent():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock\n-----END OPENSSH PRIVATE KEY-----\n"
    with_key = deploy(linodeInstanceCount=2, ssh_private_key=key)
    connections = [plain(c.inputs["connection"]) for c in with_key.of_type(COMMAND)]
    assert len(connections) == 2
    assert all(plain(c["privateKey"]) == key for c in connections)
    agent = deploy(linodeInstanceCount=2)
    assert all("privateKey" not in plain(c.inputs["connection"]) for c in agent.of_type(COMMAND))


def test_data_resources_are_protected_on_request():
    unprotected = deploy(linodeManagedDatabase=True)
    assert not unprotected.hosts.bucket._protect
    protected = deploy(linodeManagedDatabase=True, protect_data=True)
    assert protected.hosts.bucket._protect
    assert protected.hosts.database is not None and protected.hosts.database._protect


def _tools(tmp_path: Path, swarm_state: str, control: str = "true") -> tuple[dict[str, str], Path]:
    """`docker` and `cloud-init` stand-ins: docker records its arguments and answers `info` and
    `join-token`."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {
        "cloud-init": f'#!/bin/sh\necho "cloud-init $*" >> {calls}\n',
        "docker": (
            f'#!/bin/sh\necho "docker $*" >> {calls}\n'
            'case "$*" in\n'
            f"  *LocalNodeState*) echo {swarm_state} ;;\n"
            f"  *ControlAvailable*) echo {control} ;;\n"
            f"  'swarm join-token -q worker') echo {TOKEN} ;;\n"
            "esac\n"
        ),
    }
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


def test_manager_ready_waits_for_cloud_init_then_prints_the_token(tmp_path: Path):
    env, calls = _tools(tmp_path, "active")
    done = subprocess.run(["sh", "-c", MANAGER_READY], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == TOKEN
    assert calls.read_text().splitlines()[0] == "cloud-init status --wait"


def test_manager_ready_fails_on_a_vm_that_is_no_manager(tmp_path: Path):
    env, _ = _tools(tmp_path, "inactive", control="false")
    done = subprocess.run(["sh", "-c", MANAGER_READY], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "is not a swarm manager" in done.stderr
    assert done.stdout == ""


def test_join_reads_the_token_from_stdin(tmp_path: Path):
    env, calls = _tools(tmp_path, "inactive")
    script = join_script("192.168.140.2", "192.168.140.1")
    subprocess.run(["sh", "-c", script], env=env, input=f"{TOKEN}\n", text=True, check=True)
    assert calls.read_text().splitlines()[-1] == (
        f"docker swarm join --token {TOKEN} --advertise-addr 192.168.140.2 "
        "--listen-addr 192.168.140.2:2377 192.168.140.1:2377"
    )


def test_join_does_nothing_on_a_vm_already_in_the_swarm(tmp_path: Path):
    env, calls = _tools(tmp_path, "active")
    subprocess.run(
        ["sh", "-c", join_script("192.168.140.2", "192.168.140.1")], env=env, input="", text=True, check=True
    )
    assert not any("swarm join" in line for line in calls.read_text().splitlines())


def test_ssh_scripts_pass_shellcheck(tmp_path: Path):
    for name, body in (("ready", MANAGER_READY), ("join", join_script("192.168.140.2", "192.168.140.1"))):
        script = tmp_path / name
        script.write_text(body)
        checked = subprocess.run(
            ["shellcheck", "--shell=sh", str(script)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout


def test_labels_fit_linodes_limits():
    long_name = "a" * 30
    for suffix in ("firewall", "lb", "db"):
        made = label(long_name, suffix)
        assert len(made) <= SHORT_LABEL and made.endswith(f"-{suffix}")
    assert label("flightdeck-iaas", "firewall") == "flightdeck-iaas-firewall"
    assert label("ab-cd-efgh", "firewall", 14) == "ab-cd-firewall"  # no "--" where the cut falls


def test_public_ipv4_skips_the_private_address():
    assert public_ipv4(["192.168.140.3", "203.0.113.3"]) == "203.0.113.3"
    with pytest.raises(ValueError, match="no public IPv4"):
        public_ipv4(["192.168.140.3"])
