"""The servers targets' private registry: a swarm stack of its own, `<app>-registry`, deployed on the swarm
before any image is pushed (the app's stack pulls from it, so it cannot be part of that stack).

One registry task runs on every node (all on the stack's bucket), published on the node's port 5000: each
node pulls from its own 127.0.0.1:5000, which Docker trusts over plain HTTP, and the firewall keeps 5000
closed from outside. Images reach it through an SSH forward to the manager (providers/image_copy.py). The
registry's password and its bcrypt hash are drawn once and kept in the state (providers/generated_secret.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from contract import REGISTRY_PORT
from providers.generated_secret import GeneratedSecret, GeneratedSecretArgs
from providers.swarm_deployment import SwarmDeployment, SwarmDeploymentArgs
from render.registry_config import (
    BUCKET_CREDENTIALS_SECRET,
    CONFIG_SECRET,
    HTPASSWD_SECRET,
    SECRETS_DIR,
    SERVICE,
    USERNAME,
    S3Storage,
    htpasswd_line,
    plan_registry_stack,
    registry_config,
)


@dataclass(frozen=True)
class PrivateRegistryArgs:
    app_name: str
    image: str  # SwarmSettings.registry_image
    bucket: S3Storage
    bucket_credentials: pulumi.Input[str]  # render.registry_config.bucket_credentials_file
    engine: pulumi.Input[str]  # the manager's engine
    ssh: pulumi.Input[dict[str, Any]] | None


def stack_name(app_name: str) -> str:
    return f"{app_name}-registry"


class PrivateRegistry(pulumi.ComponentResource):
    """Outputs: address (127.0.0.1:5000, known once every node runs the registry), username, password."""

    address: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    collector: dict[str, str]  # how the deploys garbage-collect it (providers/registry_gc.py)

    def __init__(
        self, name: str, args: PrivateRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:registry:PrivateRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        password = GeneratedSecret(
            f"{name}-password", GeneratedSecretArgs(length=32, bcrypt=True), opts=child
        )
        http_secret = GeneratedSecret(f"{name}-http-secret", GeneratedSecretArgs(length=48), opts=child)
        stack = stack_name(args.app_name)

        def files(v: list[Any]) -> dict[str, str]:
            return {
                CONFIG_SECRET: registry_config(http_secret=str(v[0]), s3=args.bucket),
                HTPASSWD_SECRET: htpasswd_line(USERNAME, str(v[1])),
                BUCKET_CREDENTIALS_SECRET: str(v[2]),
            }

        values: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(http_secret.value, password.bcrypt_hash, args.bucket_credentials).apply(files)
        )
        plan = pulumi.Output.all(values, password.value).apply(
            lambda v: plan_registry_stack(stack=stack, image=args.image, values=v[0], key_material=str(v[1]))
        )
        deployment = SwarmDeployment(
            f"{name}-deployment",
            SwarmDeploymentArgs(
                engine=args.engine,
                stack=stack,
                # The file names the secrets only by a keyed digest of their values: it is not secret.
                stack_file=pulumi.Output.unsecret(plan.apply(lambda p: p.stack_file)),
                objects=pulumi.Output.unsecret(
                    plan.apply(lambda p: [{"kind": o.kind, "key": o.key, "name": o.name} for o in p.objects])
                ),
                configs={},
                secrets=values,
                ssh=args.ssh,
            ),
            opts=child,
        )
        self.address = deployment.id.apply(lambda _: f"127.0.0.1:{REGISTRY_PORT}")
        self.collector = {
            "kind": "service",
            "name": f"{stack}_{SERVICE}",
            "address": f"127.0.0.1:{REGISTRY_PORT}",
            "config": f"{SECRETS_DIR}/{CONFIG_SECRET}",
        }
        self.username = pulumi.Output.from_input(USERNAME)
        self.password = pulumi.Output.secret(password.value)
        self.register_outputs({"address": self.address, "username": self.username, "password": self.password})
