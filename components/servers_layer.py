"""The servers layer: hosts that exist and answer SSH made into a swarm running the app, for the `servers`
target (hosts you have) and the `iaas` target (Linode VMs it creates). One code path for both.

`pulumi up`, in dependency order:
1. the swarm: `swarm init` on the manager, the workers joined (providers/swarm_cluster.py), over SSH as the
   deploy user with the pinned host keys; a host removed from the config is drained and removed;
2. the private registry on every node, on the bucket (components/private_registry.py);
3. the image, built on this machine into its own registry (or promoted), then copied by digest through an SSH
   forward to the servers' registry; the backup image the same way;
4. the app's stack (web spread over the nodes, the database on the manager), with the backup job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.backups import BackupJob, BackupJobArgs
from components.image import AppImage, AppImageArgs, PromotedImage, PromotedImageArgs, RegistryLogin
from components.local_registry import LocalRegistry, LocalRegistryArgs
from components.private_registry import PrivateRegistry, PrivateRegistryArgs
from components.swarm_hosts import HostSpec, SwarmHosts, SwarmHostsArgs
from components.swarm_stack import SwarmStack, SwarmStackArgs
from contract import REGISTRY_PORT
from providers.generated_secret import GeneratedSecret, GeneratedSecretArgs
from providers.image_copy import Tunnel
from render.registry_config import S3Storage
from render.stack_file import BUCKET_CREDENTIALS, Process, StackExtension, bundled_database_url
from settings import AppSettings, ImageSettings, SwarmSettings


@dataclass(frozen=True)
class ServersLayerArgs:
    app: AppSettings
    swarm: SwarmSettings
    image: ImageSettings
    processes: tuple[Process, ...]
    hosts: Sequence[HostSpec]
    identity_file: str | None
    bucket: S3Storage
    bucket_credentials: pulumi.Input[str]  # render.registry_config.bucket_credentials_file, secret
    docker_host: str  # this machine's engine, where the images are built
    public_hosts: pulumi.Input[Sequence[str]] = ()
    url_host: pulumi.Input[str] | None = None  # default: the manager's address
    # A managed database instead of the stack's own: its URL, and files the app mounts (its CA).
    database_url: pulumi.Input[str] | None = None
    app_files: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    protect_data: bool = False  # the database's volume refuses `pulumi destroy`
    # The bucket has no lifecycle rules of its own (any S3 API): the backup job writes its expiry rule.
    backups_expire_by_job: bool = False


class ServersLayer(pulumi.ComponentResource):
    """Outputs: url, image_ref, image_digest, release, manager_address."""

    url: pulumi.Output[str]
    image_ref: pulumi.Output[str]
    image_digest: pulumi.Output[str]
    release: pulumi.Output[dict[str, Any]]
    manager_address: pulumi.Output[str]

    def __init__(self, name: str, args: ServersLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:servers:ServersLayer", name, None, opts)
        app, swarm = args.app, args.swarm
        child = pulumi.ResourceOptions(parent=self)
        hosts = SwarmHosts(
            f"{name}-swarm", SwarmHostsArgs(hosts=args.hosts, identity_file=args.identity_file), opts=child
        )
        registry = PrivateRegistry(
            f"{name}-registry",
            PrivateRegistryArgs(
                app_name=app.name,
                image=swarm.registry_image,
                bucket=args.bucket,
                bucket_credentials=pulumi.Output.secret(args.bucket_credentials),
                engine=hosts.manager_engine,
                ssh=hosts.ssh,
            ),
            opts=child,
        )
        login = RegistryLogin(
            address=registry.address, username=registry.username, password=registry.password
        )
        tunnel = Tunnel(
            engine=hosts.manager_engine, remote=f"127.0.0.1:{REGISTRY_PORT}", label="the swarm manager"
        )
        build = f"127.0.0.1:{swarm.registry_port}/{app.name}"
        served = f"127.0.0.1:{REGISTRY_PORT}/{app.name}"
        build_registry = LocalRegistry(
            f"{name}-build-registry",
            LocalRegistryArgs(
                engine=args.docker_host,
                image=swarm.registry_image,
                prefix=f"{app.name}-build",
                port=swarm.registry_port,
            ),
            opts=child,
        )
        built: pulumi.Input[str] = args.image.digest or ""
        if not args.image.digest:
            built = AppImage(
                f"{name}-build",
                AppImageArgs(
                    repository=f"{build}/web",
                    python_image=args.image.python_image,
                    insecure=True,
                    network_host=True,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[build_registry]),
            ).ref
        image = PromotedImage(
            f"{name}-image",
            PromotedImageArgs(
                source=built,
                repository=f"{served}/web",
                destination_login=login,
                tunnel=tunnel,
                ssh=hosts.ssh,
            ),
            # The copy goes through the tunnel to the servers' registry: it must be listening by then.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[registry]),
        )

        secret_key = GeneratedSecret(
            f"{name}-secret-key", GeneratedSecretArgs(length=64, alphabet="urlsafe"), opts=child
        )
        values: dict[str, pulumi.Input[str]] = {"SECRET_KEY": secret_key.value}
        extension: pulumi.Input[StackExtension] = StackExtension()
        if args.database_url is None:
            password = GeneratedSecret(
                f"{name}-database-password", GeneratedSecretArgs(length=32), opts=child
            )
            values["DATABASE_URL"] = password.value.apply(bundled_database_url)
            values["postgres_password"] = password.value
            values[BUCKET_CREDENTIALS] = pulumi.Output.secret(args.bucket_credentials)
            backups = BackupJob(
                f"{name}-backups",
                BackupJobArgs(
                    app_name=app.name,
                    postgres_image=swarm.postgres_image,
                    schedule=swarm.backup_schedule,
                    bucket=args.bucket,
                    build_repository=f"{build}/backup",
                    repository=f"{served}/backup",
                    login=login,
                    tunnel=tunnel,
                    ssh=hosts.ssh,
                    retention_days=swarm.backup_retention_days if args.backups_expire_by_job else None,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[build_registry, registry]),
            )
            extension = backups.extension
        else:
            values["DATABASE_URL"] = args.database_url
        values.update({k: v.get_secret_value() for k, v in app.secret_config_vars.items()})
        values.update(args.app_files)
        registry_auth = pulumi.Output.all(registry.address, registry.username, registry.password).apply(
            lambda v: {"address": str(v[0]), "username": str(v[1]), "password": str(v[2])}
        )
        stack = SwarmStack(
            f"{name}-stack",
            SwarmStackArgs(
                app=app,
                swarm=swarm,
                processes=args.processes,
                image=image.ref,
                values=values,
                bundled_database=args.database_url is None,
                engine=hosts.manager_engine,
                health_host=hosts.manager_address,
                url_host=args.url_host if args.url_host is not None else hosts.manager_address,
                nodes=hosts.node_engines,
                ssh=hosts.ssh,
                public_hosts=args.public_hosts,
                extension=extension,
                app_files=tuple(args.app_files),
                registry_auth=registry_auth,
                protect_data=args.protect_data,
                registry=registry.collector,
            ),
            opts=child,
        )
        self.url = stack.url
        self.image_ref = stack.image
        self.image_digest = image.digest
        self.release = stack.release
        self.manager_address = hosts.manager_address
        self.register_outputs(
            {
                "url": self.url,
                "image_ref": self.image_ref,
                "image_digest": self.image_digest,
                "release": self.release,
                "manager_address": self.manager_address,
            }
        )
