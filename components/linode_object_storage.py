"""LinodeObjectStorage: the stack's bucket (the registry's blobs, the database backups) and a key for it
alone.

Versioning is on, so an overwritten or deleted object (a backup, a registry blob garbage-collected) stays
recoverable for the retention; lifecycle rules then expire it. The bucket's name and endpoint are known before
it exists (they are derived from the app's name and the region), so what is rendered from them stays plain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_linode as linode

from render.linode_labels import label

BACKUP_PREFIX = "backups/"


def bucket_label(app_name: str) -> str:
    return label(app_name, "data", 63)


def endpoint_url(region: str) -> str:
    """The S3 API of the region's Object Storage cluster."""
    return f"https://{region}-1.linodeobjects.com"


def lifecycle_rules(retention_days: int) -> list[dict[str, Any]]:
    """Backups expire after the retention; replaced or deleted versions of anything go that long after, and
    unfinished multipart uploads after a day."""
    return [
        {
            "id": "expire-backups",
            "enabled": True,
            "prefix": BACKUP_PREFIX,
            "expiration": {"days": retention_days},
        },
        {
            "id": "tidy-versions",
            "enabled": True,
            "abort_incomplete_multipart_upload_days": 1,
            "noncurrent_version_expiration": {"days": retention_days},
        },
    ]


@dataclass(frozen=True)
class LinodeObjectStorageArgs:
    app_name: str
    region: str
    retention_days: int
    # Refuse to delete the bucket, and keep it when the stack is destroyed (flightdeck:protectData).
    protect_data: bool = False


class LinodeObjectStorage(pulumi.ComponentResource):
    """Outputs: bucket_name, region, endpoint_url (plain strings), access_key, secret_key (secrets)."""

    bucket_name: str
    region: str
    endpoint_url: str
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]

    def __init__(
        self, name: str, args: LinodeObjectStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:linode:LinodeObjectStorage", name, None, opts)
        self.bucket_name = bucket_label(args.app_name)
        self.region = args.region
        self.endpoint_url = endpoint_url(args.region)
        bucket = linode.ObjectStorageBucket(
            f"{name}-bucket",
            label=self.bucket_name,
            region=args.region,
            versioning=True,
            lifecycle_rules=lifecycle_rules(args.retention_days),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
            ),
        )
        # A limited-access key: read and write on this bucket, nothing else in the account.
        key = linode.ObjectStorageKey(
            f"{name}-key",
            label=label(args.app_name, "bucket", 50),
            bucket_accesses=[
                linode.ObjectStorageKeyBucketAccessArgs(
                    bucket_name=bucket.label, region=bucket.region, permissions="read_write"
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.access_key = pulumi.Output.secret(key.access_key)
        self.secret_key = pulumi.Output.secret(key.secret_key)
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "region": self.region,
                "endpoint_url": self.endpoint_url,
                "access_key": self.access_key,
                "secret_key": self.secret_key,
            }
        )
