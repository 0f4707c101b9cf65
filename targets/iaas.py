"""The `iaas` target: Linode VMs in their firewall and VPC, a NodeBalancer when there is more than one, an
Object Storage bucket, an optional managed PostgreSQL, and then exactly the servers layer (the `servers`
target's code path) on the VMs' addresses, each VM's generated host key pinned.

Builds run on the machine that runs `pulumi up` (it needs a Docker engine), and the images reach the VMs'
registry through an SSH forward to the manager: nothing but SSH, HTTP and HTTPS is open on the VMs.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from components.linode_balancer import LinodeBalancer, LinodeBalancerArgs
from components.linode_object_storage import LinodeObjectStorage, LinodeObjectStorageArgs
from components.linode_postgres import CA_FILE, LinodePostgres, LinodePostgresArgs
from components.linode_vms import LinodeVms, LinodeVmsArgs
from components.servers_layer import ServersLayer, ServersLayerArgs
from components.swarm_hosts import HostSpec
from render.registry_config import S3Storage, bucket_credentials_file
from reports.costs import monthly_cost
from settings import IaasSettings
from targets.outputs import TargetOutputs
from targets.processes import app_processes

# The older layout kept every Linode resource under one LinodeHosts component named "linode": these aliases
# keep what must survive an update of such a stack (the bucket and its key, the managed database, the
# NodeBalancer and its public address, the firewall). Its VMs are replaced by design: they now boot inside
# their firewall and VPC, and root has no key (back their database up first: docs/iaas.md).
_KEPT: dict[str, Callable[[str], str]] = {
    "linode:index/objectStorageBucket:ObjectStorageBucket": lambda name: "linode-bucket",
    "linode:index/objectStorageKey:ObjectStorageKey": lambda name: "linode-bucket-key",
    "linode:index/databasePostgresqlV2:DatabasePostgresqlV2": lambda name: "linode-db",
    "linode:index/firewall:Firewall": lambda name: "linode-firewall",
    # iaas-balancer-lb, -lb-80, -lb-443-vm-2 ... were linode-lb, linode-lb-80, linode-lb-443-vm-2 ...
    "linode:index/nodeBalancer:NodeBalancer": lambda name: "linode-" + name.split("-balancer-", 1)[1],
    "linode:index/nodeBalancerConfig:NodeBalancerConfig": lambda name: (
        "linode-" + name.split("-balancer-", 1)[1]
    ),
    "linode:index/nodeBalancerNode:NodeBalancerNode": lambda name: "linode-" + name.split("-balancer-", 1)[1],
}


def _old_layout(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    old_name = _KEPT.get(args.type_)
    if old_name is None:
        return None
    hosts = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::flightdeck:linode:LinodeHosts::linode"
    alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old_name(args.name), parent=hosts)])
    return pulumi.ResourceTransformResult(args.props, pulumi.ResourceOptions.merge(args.opts, alias))


def _credentials(keys: list[object]) -> str:
    return bucket_credentials_file(str(keys[0]), str(keys[1]))


class IaasTarget(pulumi.ComponentResource):
    outputs: TargetOutputs

    def __init__(self, name: str, settings: IaasSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:targets:Iaas", name, None, opts)
        linode = settings.linode
        child = pulumi.ResourceOptions(parent=self, transforms=[_old_layout])
        vms = LinodeVms(f"{name}-vms", LinodeVmsArgs(app_name=settings.app.name, linode=linode), opts=child)
        balancer = LinodeBalancer(
            f"{name}-balancer",
            LinodeBalancerArgs(app_name=settings.app.name, region=linode.region, vms=vms.vms),
            opts=child,
        )
        storage = LinodeObjectStorage(
            f"{name}-storage",
            LinodeObjectStorageArgs(
                app_name=settings.app.name,
                region=linode.region,
                retention_days=settings.swarm.backup_retention_days,
                protect_data=settings.protect_data,
            ),
            opts=child,
        )
        database_url: pulumi.Output[str] | None = None
        app_files: dict[str, pulumi.Input[str]] = {}
        if linode.managed_database:
            database = LinodePostgres(
                f"{name}-database",
                LinodePostgresArgs(
                    app_name=settings.app.name,
                    region=linode.region,
                    type=linode.database_type,
                    cluster_size=linode.database_cluster_size,
                    allowed_ips=vms.public_ips,
                    protect_data=settings.protect_data,
                ),
                opts=child,
            )
            database_url = database.database_url
            app_files[CA_FILE] = database.ca_certificate
        hosts = [
            HostSpec(
                name=vm.name,
                address=vm.public_ipv4,
                swarm_address=vm.vpc_ipv4,
                role=vm.role,
                label=f"the Linode VM {vm.name}",
                user=vms.deploy_user,
                host_key=vm.host_key,
            )
            for vm in vms.vms
        ]
        layer = ServersLayer(
            f"{name}-layer",
            ServersLayerArgs(
                app=settings.app,
                swarm=settings.swarm,
                image=settings.image,
                processes=app_processes(settings),
                hosts=hosts,
                identity_file=linode.identity_file,
                bucket=S3Storage(
                    bucket=storage.bucket_name, endpoint=storage.endpoint_url, region=linode.region
                ),
                bucket_credentials=pulumi.Output.secret(
                    pulumi.Output.all(storage.access_key, storage.secret_key).apply(_credentials)
                ),
                docker_host=settings.docker_host,
                protect_data=settings.protect_data,
                public_hosts=pulumi.Output.all(vms.public_ips, balancer.public_address).apply(
                    lambda v: list(dict.fromkeys([*v[0], v[1]]))
                ),
                url_host=balancer.public_address,
                database_url=database_url,
                app_files=app_files,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.outputs = TargetOutputs(
            url=layer.url,
            image_ref=layer.image_ref,
            image_digest=layer.image_digest,
            monthly_cost=monthly_cost(settings).as_output(),
            extras={
                "release": layer.release,
                "manager_address": layer.manager_address,
                "public_address": balancer.public_address,
                "bucket": storage.bucket_name,
            },
        )
        self.register_outputs(self.outputs.exports())
