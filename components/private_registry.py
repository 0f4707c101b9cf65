"""The iaas target's private registry as a swarm stack of its own, `<app>-registry`, deployed over SSH on the
swarm manager before any image is pushed (the app stack pulls from it, so it cannot be part of that stack).

One registry task runs on every node (a global service, all on the stack's bucket), published on the node's
port 5000: each node pulls from its own 127.0.0.1:5000, which Docker trusts over plain HTTP, and the Cloud
Firewall keeps 5000 closed from outside and between the VMs. `render_registry_stack` renders the stack file
(pure); `RegistryStack` feeds it to components/registry_stack.sh, which creates the docker secrets from
environment variables Pulumi holds as secrets, deploys, waits until the registry asks for credentials on the
manager and logs the deploy user in to it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

from components.registry import (
    BUCKET_CREDENTIALS_SECRET,
    CONFIG_SECRET,
    HTPASSWD_SECRET,
    PORT,
    SERVICE,
    registry_service,
)
from components.swarm import SshTarget, object_name, script_command

NETWORK = "registry"
DEPLOY_SCRIPT = Path(__file__).with_name("registry_stack.sh")
# The stack file's secret -> the short key its docker name is made from (`<stack>_<key>_<digest>` stays
# within swarm's 64 characters for the longest app name).
SECRET_KEYS = {CONFIG_SECRET: "config", HTPASSWD_SECRET: "htpasswd", BUCKET_CREDENTIALS_SECRET: "bucket"}
_MAX_NAME = 64


def stack_name(app_name: str) -> str:
    return f"{app_name}-registry"


def secret_names(stack: str, files: Mapping[str, str], key_material: str) -> dict[str, str]:
    """The stack file's secret (registry_config, registry_htpasswd, bucket_credentials) -> its docker
    secret's name, keyed by a digest of its content: a new value is a new secret."""
    if set(files) != set(SECRET_KEYS):
        raise ValueError(f"registry secrets {sorted(files)}; the registry needs {sorted(SECRET_KEYS)}")
    names = {
        secret: object_name(stack, SECRET_KEYS[secret], content, key_material=key_material)
        for secret, content in files.items()
    }
    for name in names.values():
        if len(name) > _MAX_NAME:
            raise ValueError(f"docker secret name {name} is longer than {_MAX_NAME} characters")
    return names


def render_registry_stack(*, stack: str, image: str, secrets: Mapping[str, str], port: int = PORT) -> str:
    """The compose-format stack file of the registry: the service on every node, published on the node's
    port, its network, and its secrets as external docker secrets (created by the deploy script)."""
    if set(secrets) != set(SECRET_KEYS):
        raise ValueError(f"registry secrets {sorted(secrets)}; the registry needs {sorted(SECRET_KEYS)}")
    document = {
        "version": "3.8",
        "services": {
            SERVICE: registry_service(
                image, networks=[NETWORK], publish_port=port, uses_bucket=True, per_node=True
            )
        },
        "networks": {NETWORK: {"driver": "overlay"}},
        "secrets": {key: {"external": True, "name": secrets[key]} for key in sorted(secrets)},
    }
    header = f"# Swarm stack {stack}, rendered by flightdeck (components/registry_stack.py); do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=1000)


@dataclass(frozen=True)
class RegistryStackArgs:
    app_name: str
    image: str  # SwarmSettings.registry_image
    # The secret files' contents (PrivateRegistry.config / .htpasswd; registry.bucket_credentials_file).
    config: pulumi.Input[str]
    htpasswd: pulumi.Input[str]
    bucket_credentials: pulumi.Input[str]
    # The registry login the deploy user gets on the manager (PrivateRegistry.username / .password); the
    # password also keys the secrets' name digests.
    username: pulumi.Input[str]
    password: pulumi.Input[str]
    ssh: SshTarget
    port: int = PORT
    timeout: int = 180


class RegistryStack(pulumi.ComponentResource):
    """The registry's swarm stack. Outputs `stack_file` and `address` (127.0.0.1:<port>, known once the
    registry answers on the manager)."""

    stack_file: pulumi.Output[str]
    address: pulumi.Output[str]

    def __init__(
        self, name: str, args: RegistryStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:registry_stack:RegistryStack", name, None, opts)
        stack = stack_name(args.app_name)
        files = {
            CONFIG_SECRET: pulumi.Output.secret(args.config),
            HTPASSWD_SECRET: pulumi.Output.secret(args.htpasswd),
            BUCKET_CREDENTIALS_SECRET: pulumi.Output.secret(args.bucket_credentials),
        }
        # The names are keyed digests of the values: they tell nothing about them, so the file is plain and
        # its diff shows in `pulumi preview`.
        names = pulumi.Output.unsecret(
            pulumi.Output.all(args.password, *files.values()).apply(
                lambda v: secret_names(stack, dict(zip(files, v[1:], strict=True)), str(v[0]))
            )
        )
        self.stack_file = names.apply(
            lambda n: render_registry_stack(stack=stack, image=args.image, secrets=n, port=args.port)
        )
        environment: dict[str, pulumi.Input[str]] = {
            "FLIGHTDECK_STACK": stack,
            "FLIGHTDECK_SECRETS": names.apply(_secret_lines),
            "FLIGHTDECK_REGISTRY_PORT": str(args.port),
            "FLIGHTDECK_REGISTRY_USER": args.username,
            "FLIGHTDECK_REGISTRY_PASSWORD": pulumi.Output.secret(args.password),
            "FLIGHTDECK_TIMEOUT": str(args.timeout),
        }
        environment.update(
            {f"FLIGHTDECK_SECRET_{SECRET_KEYS[secret]}": value for secret, value in files.items()}
        )
        deploy = script_command(
            f"{name}-deploy",
            DEPLOY_SCRIPT.read_text(),
            stdin=self.stack_file,
            environment=environment,
            ssh=args.ssh,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.address = deploy.id.apply(functools.partial(_address, port=args.port))
        self.register_outputs({"stack_file": self.stack_file, "address": self.address})


def _secret_lines(names: Mapping[str, str]) -> str:
    """The deploy script's list of secrets: lines `<KEY> <docker name>`."""
    return "".join(f"{SECRET_KEYS[secret]} {names[secret]}\n" for secret in sorted(names))


def _address(_: str, port: int) -> str:
    return f"127.0.0.1:{port}"
