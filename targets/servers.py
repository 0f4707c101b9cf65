"""The `servers` target: hosts you already have (Linode, Hetzner, on-premises), reachable over SSH as a
non-root deploy user whose host keys the config pins; Kamal's model, on a swarm.

Everything runs through the servers layer (components/servers_layer.py), which the iaas target runs on its
VMs too. The bucket (any S3 API) holds the registry's images and the database backups.
"""

from __future__ import annotations

import pulumi

from components.servers_layer import ServersLayer, ServersLayerArgs
from components.swarm_hosts import HostSpec
from render.registry_config import S3Storage, bucket_credentials_file
from reports.costs import monthly_cost
from settings import ServersSettings
from targets.outputs import TargetOutputs
from targets.processes import app_processes


def host_specs(settings: ServersSettings) -> list[HostSpec]:
    """The configured hosts, each named in errors by its config key."""
    return [
        HostSpec(
            name=host.name,
            address=host.address,
            role=host.role,
            label=f"{host.name} (flightdeck:servers[{index}])",
            user=host.user,
            port=host.port,
            host_key=host.host_key,
        )
        for index, host in enumerate(settings.servers.hosts)
    ]


class ServersTarget(pulumi.ComponentResource):
    outputs: TargetOutputs

    def __init__(
        self, name: str, settings: ServersSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:targets:Servers", name, None, opts)
        bucket = settings.servers.bucket
        credentials = pulumi.Output.secret(
            bucket_credentials_file(
                bucket.access_key.get_secret_value(), bucket.secret_key.get_secret_value()
            )
        )
        layer = ServersLayer(
            f"{name}-layer",
            ServersLayerArgs(
                app=settings.app,
                swarm=settings.swarm,
                image=settings.image,
                processes=app_processes(settings),
                hosts=host_specs(settings),
                identity_file=settings.servers.identity_file,
                bucket=S3Storage(bucket=bucket.name, endpoint=bucket.endpoint, region=bucket.region),
                bucket_credentials=credentials,
                docker_host=settings.docker_host,
                protect_data=settings.protect_data,
                backups_expire_by_job=True,
                public_hosts=[host.address for host in settings.servers.hosts],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.outputs = TargetOutputs(
            url=layer.url,
            image_ref=layer.image_ref,
            image_digest=layer.image_digest,
            monthly_cost=monthly_cost(settings).as_output(),
            extras={"release": layer.release, "manager_address": layer.manager_address},
        )
        self.register_outputs(self.outputs.exports())
