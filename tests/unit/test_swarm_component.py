"""SwarmStack and LocalRegistry under Pulumi mocks: the commands they declare and what those get."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
import yaml

from components.local_registry import LocalRegistry, LocalRegistryArgs
from components.settings import parse
from components.swarm import DEPLOY_SCRIPT, SshTarget, StackExtension, SwarmStack, SwarmStackArgs
from tests.support.pulumi_mocks import MOCKS, RecordingMocks, use_mocks
from tests.support.secrets import unwrap
from tests.support.stacks import stack_config

IMAGE = "127.0.0.1:5000/flightdeck-local/web@sha256:" + "cd" * 32


@pytest.fixture(scope="module", autouse=True)
def mocks() -> Iterator[RecordingMocks]:
    yield use_mocks()


def local_settings(**overrides: Any) -> Any:
    return parse(*stack_config("local", **overrides))


@pulumi.runtime.test
def test_local_deploy_feeds_the_rendered_file_to_the_deploy_script() -> Any:
    MOCKS.resources.clear()
    s = local_settings()
    stack = SwarmStack(
        "app",
        SwarmStackArgs(
            app=s.app,
            swarm=s.swarm,
            image=IMAGE,
            secret_key=pulumi.Output.secret("k" * 50),
            database_password=pulumi.Output.secret("db-password-1"),
        ),
    )

    def check(outputs: list[Any]) -> None:
        stack_file, url, image = outputs
        assert [r.type for r in MOCKS.resources] == ["flightdeck:swarm:SwarmStack", "command:local:Command"]
        deploy = MOCKS.named("app-deploy")
        inputs = deploy.inputs
        assert inputs["create"] == inputs["update"] == DEPLOY_SCRIPT.read_text()
        assert inputs["delete"] == "FLIGHTDECK_ACTION=delete\n" + DEPLOY_SCRIPT.read_text()
        assert inputs["interpreter"] == ["/bin/sh", "-c"]
        assert inputs["addPreviousOutputInEnv"] is False
        # The stack file is plain (its diff shows in a preview); the environment holds the secrets.
        stdin, stdin_secret = unwrap(inputs["stdin"])
        assert not stdin_secret
        assert stdin == stack_file
        assert yaml.safe_load(stdin)["services"]["web"]["image"] == IMAGE
        assert "k" * 50 not in stdin and "db-password-1" not in stdin
        environment, environment_secret = unwrap(inputs["environment"])
        assert environment_secret
        assert environment["FLIGHTDECK_SECRET_SECRET_KEY"] == "k" * 50
        assert environment["FLIGHTDECK_SECRET_postgres_password"] == "db-password-1"
        assert environment["FLIGHTDECK_SECRET_DATABASE_URL"] == "postgres://app:db-password-1@db:5432/app"
        assert environment["FLIGHTDECK_IMAGE"] == IMAGE
        assert environment["FLIGHTDECK_STACK"] == "flightdeck-local"
        assert url == "http://localhost:8080"
        assert image == IMAGE

    return pulumi.Output.all(stack.stack_file, stack.url, stack.image).apply(check)


@pulumi.runtime.test
def test_iaas_deploys_the_same_file_over_ssh() -> Any:
    MOCKS.resources.clear()
    s = local_settings(domain="air.example.com")
    stack = SwarmStack(
        "app",
        SwarmStackArgs(
            app=s.app,
            swarm=s.swarm,
            image=IMAGE,
            secret_key="k" * 50,
            database_url=pulumi.Output.secret("postgres://u:pw@db.example:5432/app"),
            ssh=SshTarget(host="203.0.113.7", private_key="-----BEGIN OPENSSH PRIVATE KEY-----"),
            public_hosts=["203.0.113.7"],
            extension=StackExtension(services={"backup": {"image": "postgres:16"}}, secrets={"s3": ""}),
            extra_secrets={"s3": "s3-key"},
        ),
    )

    def check(outputs: list[Any]) -> None:
        stack_file, url, image = outputs
        assert image == IMAGE
        deploy = MOCKS.named("app-deploy")
        assert deploy.type == "command:remote:Command"
        connection, connection_secret = unwrap(deploy.inputs["connection"])
        assert connection_secret  # the private key makes it secret
        assert connection["host"] == "203.0.113.7"
        assert connection["user"] == "root"
        assert unwrap(deploy.inputs["stdin"]) == (stack_file, False)
        document = yaml.safe_load(stack_file)
        assert "db" not in document["services"]
        assert document["services"]["backup"] == {"image": "postgres:16"}
        assert "203.0.113.7" in document["services"]["web"]["environment"]["ALLOWED_HOSTS"]
        environment, _ = unwrap(deploy.inputs["environment"])
        assert environment["FLIGHTDECK_SECRET_DATABASE_URL"] == "postgres://u:pw@db.example:5432/app"
        assert environment["FLIGHTDECK_SECRET_s3"] == "s3-key"
        assert url == "https://air.example.com:8443"

    return pulumi.Output.all(stack.stack_file, stack.url, stack.image).apply(check)


def test_exactly_one_database_is_required() -> None:
    s = local_settings()
    with pytest.raises(ValueError, match="exactly one"):
        SwarmStack("bad", SwarmStackArgs(app=s.app, swarm=s.swarm, image=IMAGE, secret_key="k"))


@pulumi.runtime.test
def test_local_registry_runs_a_registry_container_on_loopback() -> Any:
    MOCKS.resources.clear()
    registry = LocalRegistry(
        "reg", LocalRegistryArgs(image="registry:2", port=5000, prefix="flightdeck-local")
    )

    def check(address: str) -> None:
        assert address == "127.0.0.1:5000"
        run = MOCKS.named("reg-container")
        assert run.type == "command:local:Command"
        assert "--name flightdeck-local-registry --network host" in run.inputs["create"]
        assert "REGISTRY_HTTP_ADDR=127.0.0.1:5000" in run.inputs["create"]
        assert "flightdeck-local-registry-data:/var/lib/registry registry:2" in run.inputs["create"]
        assert run.inputs["delete"].startswith("docker rm --force flightdeck-local-registry")

    return registry.address.apply(check)
