"""The database backups of the servers targets: the backup image (backup/, built on the stack's PostgreSQL
image so pg_dump matches the server), copied to the servers' registry by digest, and its service, which the
app's stack runs on the backup schedule, uploading to the stack's bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.image import AppImage, AppImageArgs, PromotedImage, PromotedImageArgs, RegistryLogin
from contract import ROOT
from providers.image_copy import Tunnel
from render.registry_config import S3Storage
from render.stack_file import BUCKET_CREDENTIALS, StackExtension, backup_service


@dataclass(frozen=True)
class BackupJobArgs:
    app_name: str
    postgres_image: str  # the stack's database image
    schedule: str
    bucket: S3Storage
    build_repository: str  # where this machine builds it (its own registry)
    repository: str  # where the servers pull it from
    login: RegistryLogin  # the servers' registry
    tunnel: Tunnel
    ssh: pulumi.Input[dict[str, Any]] | None
    retention_days: int | None = None  # set when the bucket has no expiry rule of its own


class BackupJob(pulumi.ComponentResource):
    """Outputs `image` (by digest) and `extension`, the service the app's stack adds."""

    image: pulumi.Output[str]
    extension: pulumi.Output[StackExtension]

    def __init__(self, name: str, args: BackupJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:backups:BackupJob", name, None, opts)
        built = AppImage(
            f"{name}-image",
            AppImageArgs(
                repository=args.build_repository,
                context=ROOT / "backup",
                python_image=None,
                build_args={"POSTGRES_IMAGE": args.postgres_image},
                insecure=True,
                network_host=True,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        copied = PromotedImage(
            f"{name}-copy",
            PromotedImageArgs(
                source=built.ref,
                repository=args.repository,
                destination_login=args.login,
                tunnel=args.tunnel,
                ssh=args.ssh,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.image = copied.ref
        storage = args.bucket
        self.extension = copied.ref.apply(
            lambda image: StackExtension(
                services={
                    "backup": backup_service(
                        image,
                        app=args.app_name,
                        schedule=args.schedule,
                        bucket=storage.bucket,
                        endpoint=storage.endpoint,
                        region=storage.region,
                        retention_days=args.retention_days,
                    )
                },
                secrets=(BUCKET_CREDENTIALS,),
            )
        )  # fmt: skip
        self.register_outputs({"image": self.image})
