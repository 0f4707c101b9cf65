#!/usr/bin/env python3
"""PostgreSQL backups to an S3 bucket (Linode Object Storage or any S3 API), and restores from them.

    backup.py backup                  dump the database once and upload it
    backup.py schedule                back up at every time of BACKUP_SCHEDULE (cron, UTC), forever (first
                                      putting the expiry rule in place when BACKUP_RETENTION_DAYS is set)
    backup.py list                    the backups of the database, oldest first
    backup.py restore <key|latest>    verify a backup, then restore it into the database
    backup.py apply-lifecycle         expire backups after BACKUP_RETENTION_DAYS (bucket lifecycle rule)

A backup is `pg_dump --format=custom` into a local file, checked with `pg_restore --list`, then uploaded to
`<prefix><database>/<UTC timestamp>.dump` with its SHA-256 in the object's metadata. Nothing is uploaded
unless the dump succeeded, an existing key is never overwritten, and this program deletes no object: old
backups go only through the bucket's lifecycle rule. A restore downloads and verifies the object (SHA-256,
`pg_restore --list`) before it connects to the database, and restores in one transaction: a failure leaves
the database as it was.

Configuration (environment): the libpq variables PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD or
PGPASSWORD_FILE (a docker secret); BACKUP_BUCKET; BACKUP_S3_ENDPOINT (URL, or a host for https);
BACKUP_S3_REGION (default us-east-1); the bucket key through the AWS chain (AWS_SHARED_CREDENTIALS_FILE or
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); BACKUP_PREFIX (default backups/); BACKUP_SCHEDULE (default
"17 3 * * *"); BACKUP_RETENTION_DAYS (for apply-lifecycle).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

LOG = logging.getLogger("backup")
DEFAULT_PREFIX = "backups/"
DEFAULT_SCHEDULE = "17 3 * * *"
LIFECYCLE_RULE_ID = "expire-backups"
SHA256_METADATA = "sha256"  # x-amz-meta-sha256
TIMESTAMP = "%Y%m%dT%H%M%SZ"
_DATABASE = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_KEY_NAME = re.compile(r"^\d{8}T\d{6}Z\.dump$")


class BackupError(Exception):
    """A failure with a message for the operator; the program exits 1 after logging it."""


@dataclass(frozen=True)
class Config:
    bucket: str
    endpoint: str | None
    region: str
    prefix: str
    database: str
    schedule: str
    retention_days: int | None
    pg_env: Mapping[str, str]  # the environment of pg_dump/pg_restore (PGPASSWORD read from its file)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        missing = [name for name in ("BACKUP_BUCKET", "PGDATABASE") if not env.get(name)]
        if missing:
            raise BackupError(f"set {' and '.join(missing)} (see `backup.py --help`)")
        database = env["PGDATABASE"]
        if not _DATABASE.match(database):
            raise BackupError(f"PGDATABASE={database!r}: use letters, digits, _ . - (it names the S3 keys)")
        prefix = env.get("BACKUP_PREFIX", DEFAULT_PREFIX)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        pg_env = dict(env)
        if password_file := env.get("PGPASSWORD_FILE"):
            try:
                pg_env["PGPASSWORD"] = Path(password_file).read_text().strip("\r\n")
            except OSError as err:
                raise BackupError(f"PGPASSWORD_FILE: cannot read {password_file}: {err.strerror}") from err
        retention = env.get("BACKUP_RETENTION_DAYS")
        endpoint = env.get("BACKUP_S3_ENDPOINT") or None
        if endpoint and "://" not in endpoint:
            endpoint = f"https://{endpoint}"
        return cls(
            bucket=env["BACKUP_BUCKET"],
            endpoint=endpoint,
            region=env.get("BACKUP_S3_REGION", "us-east-1"),
            prefix=prefix,
            database=database,
            schedule=env.get("BACKUP_SCHEDULE", DEFAULT_SCHEDULE),
            retention_days=int(retention) if retention else None,
            pg_env=pg_env,
        )

    @property
    def folder(self) -> str:
        return f"{self.prefix}{self.database}/"

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def backup_key(prefix: str, database: str, when: datetime) -> str:
    """`<prefix><database>/<UTC timestamp>.dump`: keys sort by time, so the latest is the greatest."""
    return f"{prefix}{database}/{when.astimezone(UTC).strftime(TIMESTAMP)}.dump"


def latest_key(keys: Sequence[str], folder: str) -> str | None:
    """The newest backup among keys (others under the folder, such as uploads by hand, are ignored)."""
    dumps = [k for k in keys if k.startswith(folder) and _KEY_NAME.match(k[len(folder) :])]
    return max(dumps, default=None)


def next_run(schedule: str, after: datetime) -> datetime:
    """The first time of the cron schedule (UTC) strictly after `after`."""
    from croniter import croniter

    if not croniter.is_valid(schedule):
        raise BackupError(f"BACKUP_SCHEDULE={schedule!r} is not a cron expression such as '17 3 * * *'")
    following: datetime = croniter(schedule, after.astimezone(UTC)).get_next(datetime)
    return following


def rule_id(prefix: str) -> str:
    """The lifecycle rule's ID for a prefix: stacks that share a bucket each keep a rule of their own."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", prefix.strip("/")) or "all"
    return f"{LIFECYCLE_RULE_ID}-{name}"[:255]


def lifecycle_rule(prefix: str, retention_days: int) -> dict[str, Any]:
    """The S3 lifecycle rule that expires backups (and abandoned multipart uploads of them)."""
    if retention_days < 1:
        raise BackupError("BACKUP_RETENTION_DAYS must be at least 1")
    return {
        "ID": rule_id(prefix),
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "Expiration": {"Days": retention_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def merged_rules(existing: Sequence[Mapping[str, Any]], rule: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The bucket's rules with ours put in place (S3 replaces the whole set on every write)."""
    return [dict(r) for r in existing if r.get("ID") != rule["ID"]] + [dict(rule)]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run(command: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), env=dict(env), capture_output=True, text=True, check=False)


def verify_archive(path: Path, env: Mapping[str, str], what: str) -> int:
    """Raise unless path is a readable pg_dump archive; return the entries in its table of contents."""
    listed = run(["pg_restore", "--list", str(path)], env)
    if listed.returncode != 0:
        raise BackupError(f"{what} is not a valid pg_dump archive: {listed.stderr.strip()}")
    return sum(1 for line in listed.stdout.splitlines() if line and not line.startswith(";"))


class Bucket:
    """The few S3 calls backups need, with failures turned into messages for the operator."""

    def __init__(self, config: Config) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.config = config
        self.s3 = boto3.client(
            "s3",
            endpoint_url=config.endpoint,
            region_name=config.region,
            config=BotoConfig(
                connect_timeout=10,
                read_timeout=120,
                retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.s3, method)(Bucket=self.config.bucket, **kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "?")
            raise BackupError(f"{what}: the bucket answered {code}: {err}") from err
        except BotoCoreError as err:
            raise BackupError(f"{what}: {err}") from err

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise BackupError(f"checking {self.config.url(key)}: {err}") from err
        except BotoCoreError as err:
            raise BackupError(f"checking {self.config.url(key)}: {err}") from err
        return True

    def keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(f"listing {self.config.url(prefix)}", "list_objects_v2", Prefix=prefix, **token)
            keys += [item["Key"] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def upload(self, path: Path, key: str, sha256: str) -> None:
        from boto3.exceptions import Boto3Error
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.upload_file(
                str(path),
                self.config.bucket,
                key,
                ExtraArgs={"Metadata": {SHA256_METADATA: sha256}, "ContentType": "application/octet-stream"},
                Config=TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20),
            )
        except (Boto3Error, BotoCoreError, ClientError) as err:  # boto3 wraps transfer failures
            raise BackupError(f"uploading to {self.config.url(key)}: {err}") from err
        head = self._call(f"checking {self.config.url(key)}", "head_object", Key=key)
        if head["ContentLength"] != path.stat().st_size:
            raise BackupError(
                f"{self.config.url(key)} holds {head['ContentLength']} bytes, the dump {path.stat().st_size}"
            )

    def download(self, key: str, path: Path) -> dict[str, str]:
        """Fetch key into path; return its metadata. A missing key is reported as such."""
        if not self.exists(key):
            raise BackupError(f"there is no backup at {self.config.url(key)} (see `backup.py list`)")
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.download_file(self.config.bucket, key, str(path))
        except (Boto3Error, BotoCoreError, ClientError) as err:
            raise BackupError(f"downloading {self.config.url(key)}: {err}") from err
        head = self._call(f"checking {self.config.url(key)}", "head_object", Key=key)
        metadata: dict[str, str] = head.get("Metadata", {})
        return metadata


def take_backup(config: Config, bucket: Bucket, now: datetime | None = None) -> str:
    """Dump, verify, upload; return the new key. Raises BackupError before uploading anything on failure."""
    key = backup_key(config.prefix, config.database, now or datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="backup-") as scratch:
        dump = Path(scratch) / "database.dump"
        started = time.monotonic()
        dumped = run(
            ["pg_dump", "--format=custom", "--compress=9", "--no-password", f"--file={dump}"], config.pg_env
        )
        if dumped.returncode != 0:
            raise BackupError(f"pg_dump of {config.database} failed: {dumped.stderr.strip()}")
        entries = verify_archive(dump, config.pg_env, "the new dump")
        if bucket.exists(key):
            raise BackupError(f"{config.url(key)} exists already; refusing to overwrite a backup")
        sha256 = sha256_of(dump)
        bucket.upload(dump, key, sha256)
        LOG.info(
            "backed up %s to %s (%d bytes, %d archive entries, sha256 %s, %.1f s)",
            config.database, config.url(key), dump.stat().st_size, entries, sha256,
            time.monotonic() - started,
        )  # fmt: skip
    return key


def restore(config: Config, bucket: Bucket, which: str) -> str:
    """Restore a backup (a key, a file name in the database's folder, or `latest`); return its key."""
    if which == "latest":
        key = latest_key(bucket.keys(config.folder), config.folder)
        if key is None:
            raise BackupError(f"there are no backups under {config.url(config.folder)}")
    else:
        key = which if "/" in which else f"{config.folder}{which}"
    with tempfile.TemporaryDirectory(prefix="restore-") as scratch:
        dump = Path(scratch) / "database.dump"
        metadata = bucket.download(key, dump)
        expected = metadata.get(SHA256_METADATA)
        if expected is not None and sha256_of(dump) != expected:
            raise BackupError(
                f"{config.url(key)} is corrupt: its SHA-256 differs from the one recorded at upload"
            )
        entries = verify_archive(dump, config.pg_env, config.url(key))
        LOG.info(
            "verified %s (%d archive entries); restoring into %s", config.url(key), entries, config.database
        )
        restored = run(
            ["pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
             "--no-owner", "--no-password", f"--dbname={config.database}", str(dump)],
            config.pg_env,
        )  # fmt: skip
        if restored.returncode != 0:
            raise BackupError(
                f"restoring {config.url(key)} into {config.database} failed; the transaction was rolled back "
                f"and the database is unchanged: {restored.stderr.strip()}"
            )
    LOG.info("restored %s into %s", config.url(key), config.database)
    return key


def apply_lifecycle(config: Config, bucket: Bucket) -> dict[str, Any]:
    if config.retention_days is None:
        raise BackupError("set BACKUP_RETENTION_DAYS for apply-lifecycle")
    from botocore.exceptions import ClientError

    rule = lifecycle_rule(config.prefix, config.retention_days)
    try:
        existing = bucket.s3.get_bucket_lifecycle_configuration(Bucket=config.bucket).get("Rules", [])
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            raise BackupError(f"reading the lifecycle rules of {config.bucket}: {err}") from err
        existing = []
    rules = merged_rules(existing, rule)
    bucket._call(
        "writing the lifecycle rules",
        "put_bucket_lifecycle_configuration",
        LifecycleConfiguration={"Rules": rules},
    )
    LOG.info("backups under %s expire after %d days", config.url(config.prefix), config.retention_days)
    return rule


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def schedule(config: Config, bucket: Bucket) -> None:
    """Back up at every scheduled time. A failed backup is logged as an error and retried at the next time;
    SIGTERM (docker stop) ends the loop, abandoning a dump in progress (nothing is uploaded then). With
    BACKUP_RETENTION_DAYS (a bucket no other tool keeps rules on), the expiry rule is put in place first."""
    signal.signal(signal.SIGTERM, _stop)
    if config.retention_days is not None:
        apply_lifecycle(config, bucket)
    LOG.info("backing up %s on schedule %r (UTC)", config.database, config.schedule)
    try:
        while True:
            due = next_run(config.schedule, datetime.now(UTC))
            LOG.info("next backup at %s", due.isoformat())
            while (wait := (due - datetime.now(UTC)).total_seconds()) > 0:
                time.sleep(min(wait, 60))
            try:
                take_backup(config, bucket)
            except BackupError as err:
                LOG.error("backup failed: %s", err)
    except _Stop as stop:
        LOG.info("stopping on %s", stop)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backup", help="back up once")
    commands.add_parser("schedule", help="back up on BACKUP_SCHEDULE forever")
    commands.add_parser("list", help="list the backups of PGDATABASE")
    restore_parser = commands.add_parser("restore", help="restore a backup into PGDATABASE")
    restore_parser.add_argument(
        "backup", help="an S3 key, a file name such as 20260101T031700Z.dump, or latest"
    )
    commands.add_parser("apply-lifecycle", help="expire backups after BACKUP_RETENTION_DAYS")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s backup: %(message)s"
    )
    try:
        config = Config.from_env(env)
        if args.command == "schedule":
            next_run(config.schedule, datetime.now(UTC))  # refuse a bad schedule at start, not at night
        bucket = Bucket(config)
        if args.command == "backup":
            print(take_backup(config, bucket))
        elif args.command == "schedule":
            schedule(config, bucket)
        elif args.command == "list":
            for key in sorted(
                k for k in bucket.keys(config.folder) if _KEY_NAME.match(k[len(config.folder) :])
            ):
                print(key)
        elif args.command == "restore":
            print(restore(config, bucket, args.backup))
        else:
            print(apply_lifecycle(config, bucket))
    except BackupError as err:
        LOG.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
