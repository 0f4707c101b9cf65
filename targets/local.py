"""The `local` target: this machine's Docker engine in swarm mode, with a registry on its loopback.

`pulumi up` makes the engine a swarm manager if it is not one, starts the registry, builds the image and
pushes it there (or promotes a recorded one), draws the stack's secrets, and deploys the swarm stack
(PostgreSQL, the app's processes, the Caddy proxy) with migrations before traffic moves.
"""

from __future__ import annotations

import pulumi

from components.image import release_image
from components.local_registry import LocalRegistry, LocalRegistryArgs
from components.swarm_hosts import HostSpec, SwarmHosts, SwarmHostsArgs
from components.swarm_stack import SwarmStack, SwarmStackArgs
from providers.generated_secret import GeneratedSecret, GeneratedSecretArgs
from render.stack_file import bundled_database_url
from reports.costs import monthly_cost
from settings import LocalSettings
from targets.outputs import TargetOutputs, moved
from targets.processes import app_processes


class LocalTarget(pulumi.ComponentResource):
    outputs: TargetOutputs

    def __init__(
        self, name: str, settings: LocalSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:targets:Local", name, None, opts)
        app, swarm = settings.app, settings.swarm
        child = pulumi.ResourceOptions(parent=self)
        hosts = SwarmHosts(
            f"{name}-swarm",
            SwarmHostsArgs(
                hosts=[
                    HostSpec(name="local", address="127.0.0.1", role="manager", label="this machine's engine")
                ],
                local_engine=settings.docker_host,
            ),
            opts=child,
        )
        registry = LocalRegistry(
            f"{name}-registry",
            LocalRegistryArgs(
                engine=settings.docker_host,
                image=swarm.registry_image,
                prefix=app.name,
                port=swarm.registry_port,
            ),
            opts=moved(self, "registry"),
        )
        # The push needs the registry answering: the image waits for it.
        image = release_image(
            f"{name}-image",
            digest=settings.image.digest,
            python_image=settings.image.python_image,
            repository=f"127.0.0.1:{swarm.registry_port}/{app.name}/web",
            insecure=True,
            network_host=True,
            opts=moved(self, "image", depends_on=[registry]),
        )
        secret_key = GeneratedSecret(
            f"{name}-secret-key", GeneratedSecretArgs(length=64, alphabet="urlsafe"), opts=child
        )
        password = GeneratedSecret(f"{name}-database-password", GeneratedSecretArgs(length=32), opts=child)
        stack = SwarmStack(
            f"{name}-stack",
            SwarmStackArgs(
                app=app,
                swarm=swarm,
                processes=app_processes(settings),
                image=image.ref,
                values={
                    "SECRET_KEY": secret_key.value,
                    "DATABASE_URL": password.value.apply(bundled_database_url),
                    "postgres_password": password.value,
                    **{k: v.get_secret_value() for k, v in app.secret_config_vars.items()},
                },
                bundled_database=True,
                engine=hosts.manager_engine,
                nodes=hosts.node_engines,
                health_host="127.0.0.1",
                protect_data=settings.protect_data,
                registry=registry.collector,
            ),
            opts=moved(self, "swarm"),
        )
        self.outputs = TargetOutputs(
            url=stack.url,
            image_ref=stack.image,
            image_digest=image.digest,
            monthly_cost=monthly_cost(settings).as_output(),
            extras={"release": stack.release},
        )
        self.register_outputs(self.outputs.exports())
