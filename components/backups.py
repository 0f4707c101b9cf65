"""The database backup job of the swarm stack (image built from backup/), and the bucket rule that ends
backups' lives.

`backup_service` renders the compose service: backup/backup.py on its schedule, against the stack's own
PostgreSQL service, uploading to the bucket. The database password and the bucket key arrive as docker
secrets (the stack's `postgres_password` and registry.BUCKET_CREDENTIALS_SECRET); nothing secret is in the
stack file. `lifecycle_rule` is the Linode bucket's rule that expires backups after the retention.
"""

from __future__ import annotations

from typing import Any

from components.registry import BUCKET_CREDENTIALS_SECRET, SECRETS_DIR, S3Storage

PREFIX = "backups/"  # the bucket's folder for backups; the registry keeps its data under registry/
POSTGRES_PASSWORD_SECRET = "postgres_password"  # noqa: S105 (a secret's name)
LIFECYCLE_RULE_ID = "expire-backups"  # the same id backup.py's apply-lifecycle writes on other S3 APIs


def backup_service(
    image: str,
    *,
    schedule: str,
    storage: S3Storage,
    networks: list[str],
    database_host: str = "db",
    database_name: str = "app",
    database_user: str = "app",
    password_secret: str = POSTGRES_PASSWORD_SECRET,
    retention_days: int | None = None,
) -> dict[str, Any]:
    """The backup job's service. One replica on any node: it reaches the database by its service name.

    image is backup/Dockerfile built on the stack's postgres image (same or newer pg_dump). retention_days
    lets `apply-lifecycle` run in the service on S3 APIs whose rules no Pulumi resource manages."""
    service: dict[str, Any] = {
        "image": image,
        "command": ["schedule"],
        "environment": {
            "PGHOST": database_host,
            "PGPORT": "5432",
            "PGDATABASE": database_name,
            "PGUSER": database_user,
            "PGPASSWORD_FILE": f"{SECRETS_DIR}/{password_secret}",
            "BACKUP_SCHEDULE": schedule,
            "BACKUP_PREFIX": PREFIX,
            "BACKUP_BUCKET": storage.bucket,
            "BACKUP_S3_ENDPOINT": storage.endpoint_url,
            "BACKUP_S3_REGION": storage.region,
            "AWS_SHARED_CREDENTIALS_FILE": f"{SECRETS_DIR}/{BUCKET_CREDENTIALS_SECRET}",
        },
        "secrets": [
            {"source": password_secret, "target": password_secret, "mode": 0o400},
            {"source": BUCKET_CREDENTIALS_SECRET, "target": BUCKET_CREDENTIALS_SECRET, "mode": 0o400},
        ],
        "networks": list(networks),
        # A dump in progress is abandoned on stop (nothing half-written is uploaded); let a short one end.
        "stop_grace_period": "30s",
        "deploy": {
            "replicas": 1,
            "restart_policy": {"condition": "any", "delay": "10s"},
            "update_config": {"order": "stop-first"},
            "resources": {"limits": {"memory": "256M"}},
        },
    }
    if retention_days is not None:
        service["environment"]["BACKUP_RETENTION_DAYS"] = str(retention_days)
    return service


def lifecycle_rule(retention_days: int) -> dict[str, Any]:
    """The Linode bucket's lifecycle rule (pulumi_linode ObjectStorageBucket lifecycle_rules item):
    backups expire retention_days after upload; abandoned multipart uploads after a day."""
    if retention_days < 1:
        raise ValueError(f"backup retention must be at least 1 day (given {retention_days})")
    return {
        "id": LIFECYCLE_RULE_ID,
        "enabled": True,
        "prefix": PREFIX,
        "expiration": {"days": retention_days},
        "abort_incomplete_multipart_upload_days": 1,
    }
