"""The swarm targets' components under Pulumi mocks, one at a time: SwarmHosts, SwarmStack, LocalRegistry,
PrivateRegistry (what each declares, with which options, and the outputs it hands on)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
import yaml

from components.local_registry import LocalRegistry, LocalRegistryArgs
from components.private_registry import PrivateRegistry, PrivateRegistryArgs
from components.swarm_hosts import HostSpec, SwarmHosts, SwarmHostsArgs, ssh_trust
from components.swarm_stack import SwarmStack, SwarmStackArgs
from render.registry_config import S3Storage
from settings import parse
from targets.processes import app_processes
from tests.support.pulumi_mocks import COMPUTED, MOCK_SECRET, RecordingMocks, use_mocks
from tests.support.secrets import is_secret, reveal
from tests.support.stacks import stack_config

DEPLOYMENT = "pulumi-python:dynamic/flightdeck:SwarmDeployment"
VOLUME = "pulumi-python:dynamic/flightdeck:SwarmVolume"
IMAGE = "127.0.0.1:5000/flightdeck-local/web@sha256:" + "cd" * 32
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMQX6dXz52fUk8uBNZV6t5EkScCAlgyW3aAEFu0ckaN"


@dataclass
class Declared:
    mocks: RecordingMocks
    component: Any
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    secret: dict[str, bool] = field(default_factory=dict)


def declare(make: Callable[[pulumi.ResourceOptions], Any], outputs: tuple[str, ...] = ()) -> Declared:
    """Declare make(opts) (opts record every descendant's options) and resolve the outputs named."""
    mocks = use_mocks("local")
    done = Declared(mocks, None)

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        done.options[args.name] = args.opts

    async def resolve(component: Any) -> None:
        for name in outputs:
            output = pulumi.Output.from_input(getattr(component, name))
            done.values[name] = await output.future()
            done.secret[name] = await output.is_secret()

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[None]:
        done.component = make(pulumi.ResourceOptions(transformations=[record]))
        return pulumi.Output.from_input(resolve(done.component))

    program()
    return done


def server(name: str, role: str, port: int = 22) -> HostSpec:
    return HostSpec(name=name, address=f"203.0.113.{len(name)}{port % 10}", role=role, label=f"{name} (test)",  # type: ignore[arg-type]
                    user="deploy", port=port, host_key=KEY)  # fmt: skip


# -- SwarmHosts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("roles", [("worker", "worker"), ("manager", "manager"), ()])
def test_a_swarm_has_exactly_one_manager(roles: tuple[str, ...]) -> None:
    hosts = [server(f"h{i}", role) for i, role in enumerate(roles)]
    with pytest.raises(ValueError, match="exactly one manager"):
        declare(lambda opts: SwarmHosts("swarm", SwarmHostsArgs(hosts=hosts), opts=opts))


def test_a_host_without_ssh_is_this_machines_engine_which_must_be_named() -> None:
    local = HostSpec(name="local", address="127.0.0.1", role="manager", label="this machine's engine")
    with pytest.raises(ValueError, match="local engine"):
        declare(lambda opts: SwarmHosts("swarm", SwarmHostsArgs(hosts=[local]), opts=opts))


def test_servers_are_reached_as_their_user_and_port_with_their_keys_pinned() -> None:
    hosts = [server("web1", "manager", 2222), server("web2", "worker")]
    done = declare(
        lambda opts: SwarmHosts(
            "swarm", SwarmHostsArgs(hosts=hosts, identity_file="/home/me/.ssh/id"), opts=opts
        ),
        ("manager_engine", "manager_address", "node_engines", "ssh"),
    )
    assert done.values["manager_engine"] == f"ssh://deploy@{hosts[0].address}:2222"
    assert done.values["node_engines"] == [
        f"ssh://deploy@{hosts[0].address}:2222",
        f"ssh://deploy@{hosts[1].address}:22",
    ]
    assert done.values["manager_address"] == hosts[0].address
    assert done.values["ssh"] == {
        "hosts": [{"address": h.address, "port": h.port, "host_key": KEY} for h in hosts],
        "identity_file": "/home/me/.ssh/id",
    }
    [cluster] = done.mocks.of_type("pulumi-python:dynamic/flightdeck:SwarmCluster")
    assert done.options["swarm-cluster"].parent is done.component
    assert [h["address"] for h in cluster.inputs["hosts"]] == [h.address for h in hosts]


def test_a_vm_advertises_its_private_address_to_the_swarm() -> None:
    vm = HostSpec(name="vm-1", address="203.0.113.1", swarm_address="192.168.140.1", role="manager",
                  label="the Linode VM vm-1", user="deploy", host_key=KEY)  # fmt: skip
    done = declare(
        lambda opts: SwarmHosts("swarm", SwarmHostsArgs(hosts=[vm]), opts=opts), ("manager_engine",)
    )
    [cluster] = done.mocks.of_type("pulumi-python:dynamic/flightdeck:SwarmCluster")
    assert cluster.inputs["hosts"][0]["address"] == "192.168.140.1"  # management and overlay traffic
    assert done.values["manager_engine"] == "ssh://deploy@203.0.113.1:22"  # SSH to the public address


def test_this_machines_engine_needs_no_ssh_trust() -> None:
    local = HostSpec(name="local", address="127.0.0.1", role="manager", label="this machine's engine")
    assert ssh_trust([local], "/home/me/.ssh/id") is None
    done = declare(
        lambda opts: SwarmHosts(
            "swarm", SwarmHostsArgs(hosts=[local], local_engine="unix:///run/d.sock"), opts=opts
        ),
        ("manager_engine", "node_engines"),
    )
    assert done.values == {"manager_engine": "unix:///run/d.sock", "node_engines": ["unix:///run/d.sock"]}
    assert done.component.ssh is None


# -- SwarmStack ---------------------------------------------------------------------------------------------


def stack(opts: pulumi.ResourceOptions, **overrides: Any) -> SwarmStack:
    settings = parse(*stack_config("local"))
    given: dict[str, Any] = {
        "app": settings.app,
        "swarm": settings.swarm,
        "processes": app_processes(settings),
        "image": IMAGE,
        "values": {
            "SECRET_KEY": "k" * 64,
            "DATABASE_URL": "postgres://app:db-password-1@db:5432/app",
            "postgres_password": "db-password-1",
        },
        "bundled_database": True,
        "engine": "unix:///var/run/docker.sock",
        "health_host": "127.0.0.1",
        **overrides,
    }
    return SwarmStack("app", SwarmStackArgs(**given), opts=opts)


def test_the_stack_file_is_plain_and_the_values_go_as_one_secret() -> None:
    done = declare(stack, ("stack_file", "url", "image"))
    [deployment] = done.mocks.of_type(DEPLOYMENT)
    assert not done.secret["stack_file"]  # its diff shows in `pulumi preview`
    assert deployment.inputs["stack_file"] == done.values["stack_file"]
    assert "db-password-1" not in done.values["stack_file"] and "k" * 64 not in done.values["stack_file"]
    assert is_secret(deployment.inputs["secrets"])
    assert reveal(deployment.inputs["secrets"]) == {
        "SECRET_KEY": "k" * 64,
        "DATABASE_URL": "postgres://app:db-password-1@db:5432/app",
        "postgres_password": "db-password-1",
    }
    assert yaml.safe_load(done.values["stack_file"])["services"]["web"]["image"] == IMAGE
    assert done.values["url"] == "http://localhost:8080"
    assert done.values["image"] == IMAGE  # what the deployment reports serving


def test_the_database_volume_is_its_own_resource_kept_and_protected_on_request() -> None:
    done = declare(lambda opts: stack(opts, protect_data=True))
    [volume] = done.mocks.of_type(VOLUME)
    assert (volume.inputs["stack"], volume.inputs["name"]) == ("flightdeck-local", "flightdeck-local_db-data")
    options = done.options["app-database-volume"]
    assert options.protect is True and options.retain_on_delete is True
    [deployment] = done.mocks.of_type(DEPLOYMENT)
    assert done.mocks.waits_for(deployment, volume)
    unprotected = declare(stack).options["app-database-volume"]
    assert not unprotected.protect and unprotected.retain_on_delete is True  # never removed with the stack


def test_a_managed_database_needs_no_volume() -> None:
    values = {"SECRET_KEY": "k" * 64, "DATABASE_URL": "postgres://u:p@db.example:5432/d"}
    done = declare(lambda opts: stack(opts, values=values, bundled_database=False))
    assert done.mocks.of_type(VOLUME) == []
    [deployment] = done.mocks.of_type(DEPLOYMENT)
    assert "database" not in deployment.inputs and deployment.inputs["kept_volumes"] == []


def test_the_url_names_the_host_given_and_the_domain_wins() -> None:
    done = declare(lambda opts: stack(opts, url_host="203.0.113.21"), ("url",))
    assert done.values["url"] == "http://203.0.113.21:8080"
    settings = parse(*stack_config("local", domain="air.example.com", httpsPort=443))
    done = declare(
        lambda opts: stack(opts, app=settings.app, swarm=settings.swarm, url_host="203.0.113.21"), ("url",)
    )
    assert done.values["url"] == "https://air.example.com"


def test_every_child_is_the_stacks_and_named_after_it() -> None:
    done = declare(stack)
    children = {name: opts for name, opts in done.options.items() if name != "app"}
    assert set(children) == {"app-deployment", "app-database-volume"}
    assert all(opts.parent is done.component for opts in children.values())


# -- registries ---------------------------------------------------------------------------------------------


def test_the_local_registry_answers_at_its_port_once_its_container_runs() -> None:
    args = LocalRegistryArgs(
        engine="unix:///var/run/docker.sock", image="registry:2", prefix="flightdeck-servers-build", port=5050
    )
    done = declare(lambda opts: LocalRegistry("reg", args, opts=opts), ("address",))
    assert done.values["address"] == "127.0.0.1:5050"
    [container] = done.mocks.of_type("pulumi-python:dynamic/flightdeck:RegistryContainer")
    assert (container.inputs["container"], container.inputs["volume"]) == (
        "flightdeck-servers-build-registry", "flightdeck-servers-build-registry-data"
    )  # fmt: skip
    assert done.options["reg-container"].parent is done.component


def test_the_private_registry_draws_its_password_and_http_secret_once() -> None:
    args = PrivateRegistryArgs(
        app_name="airline",
        image="registry:2",
        bucket=S3Storage(bucket="airline-data", endpoint="https://eu-central-1.linodeobjects.com"),
        bucket_credentials=pulumi.Output.secret(
            "[default]\naws_access_key_id = A\naws_secret_access_key = S\n"
        ),
        engine="ssh://deploy@203.0.113.21:22",
        ssh={"hosts": [{"address": "203.0.113.21", "port": 22, "host_key": KEY}]},
    )
    done = declare(
        lambda opts: PrivateRegistry("registry", args, opts=opts), ("address", "username", "password")
    )
    assert done.values == {"address": "127.0.0.1:5000", "username": "flightdeck", "password": MOCK_SECRET}
    assert done.secret == {"address": False, "username": False, "password": True}
    recipes = {
        r.name: (r.inputs["length"], r.inputs["bcrypt"])
        for r in done.mocks.resources
        if r.type.endswith("GeneratedSecret")
    }
    assert recipes == {"registry-password": (32, True), "registry-http-secret": (48, False)}
    [deployment] = done.mocks.of_type(DEPLOYMENT)
    files = reveal(deployment.inputs["secrets"])
    assert (
        files["registry_htpasswd"]
        == f"flightdeck:{COMPUTED['pulumi-python:dynamic/flightdeck:GeneratedSecret']['bcrypt_hash']}\n"
    )
    assert yaml.safe_load(files["registry_config"])["http"]["secret"] == MOCK_SECRET
    assert deployment.inputs["stack"] == "airline-registry" and deployment.inputs["app_services"] == []
    assert all(opts.parent is done.component for name, opts in done.options.items() if name != "registry")
