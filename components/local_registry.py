"""A registry on this machine's loopback: the local target's swarm pulls from it, and the servers targets
build into it before their image is copied to the servers' own registry.

The registry is a plain container on host networking (providers/registry_container.py): it must exist before
any stack, and it binds 127.0.0.1 only, which Docker trusts over plain HTTP. Its storage is a named volume,
kept when the registry is removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from contract import REGISTRY_PORT
from providers.registry_container import RegistryContainer, RegistryContainerArgs


@dataclass(frozen=True)
class LocalRegistryArgs:
    engine: str  # unix://… of this machine's engine
    image: str  # SwarmSettings.registry_image
    prefix: str  # names the container and its volume: <prefix>-registry, <prefix>-registry-data
    port: int = REGISTRY_PORT


class LocalRegistry(pulumi.ComponentResource):
    """A registry container on 127.0.0.1:<port>; `address` is what image names start with, known once the
    registry answers."""

    address: pulumi.Output[str]
    collector: dict[str, str]  # how the deploy garbage-collects it (providers/registry_gc.py)

    def __init__(
        self, name: str, args: LocalRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:local_registry:LocalRegistry", name, None, opts)
        container = f"{args.prefix}-registry"
        registry = RegistryContainer(
            f"{name}-container",
            RegistryContainerArgs(
                engine=args.engine,
                image=args.image,
                container=container,
                volume=f"{container}-data",
                port=args.port,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.address = registry.id.apply(lambda _: f"127.0.0.1:{args.port}")
        self.collector = {
            "kind": "container",
            "name": container,
            "address": f"127.0.0.1:{args.port}",
            "config": "/etc/docker/registry/config.yml",
        }
        self.register_outputs({"address": self.address})
