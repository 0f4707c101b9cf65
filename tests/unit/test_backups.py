"""The backup job: its service in the swarm stack (render/stack_file.py backup_service), the bucket's
lifecycle rule it agrees with, and the pure parts of backup/backup.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pulumi_linode as linode
import pytest

from backup import backup as job
from components.linode_object_storage import BACKUP_PREFIX, lifecycle_rules
from render.registry_config import ROOT_DIRECTORY
from render.stack_file import BACKUPS, backup_service
from settings import parse
from tests.support.stacks import stack_config

IMAGE = "127.0.0.1:5000/airline/backup@sha256:" + "a" * 64


def service(**kwargs: Any) -> dict[str, Any]:
    given: dict[str, Any] = {
        "app": "airline",
        "schedule": "17 3 * * *",
        "bucket": "airline-data",
        "endpoint": "https://us-east-1.linodeobjects.com",
        "region": "us-east-1",
        **kwargs,
    }
    return backup_service(IMAGE, **given)


def test_service_runs_the_schedule_against_the_stacks_database() -> None:
    rendered = service()
    assert rendered["command"] == ["schedule"]
    env = rendered["environment"]
    assert env["PGHOST"] == "db" and env["PGDATABASE"] == "app" and env["PGUSER"] == "app"
    assert env["BACKUP_SCHEDULE"] == "17 3 * * *"
    assert env["BACKUP_BUCKET"] == "airline-data"
    assert env["BACKUP_S3_ENDPOINT"] == "https://us-east-1.linodeobjects.com"
    assert env["BACKUP_PREFIX"] == f"{BACKUPS}/airline/"
    assert rendered["networks"] == ["app"]
    assert rendered["deploy"]["replicas"] == 1


def test_stacks_sharing_a_bucket_keep_their_backups_apart() -> None:
    one, two = (service(app=app)["environment"]["BACKUP_PREFIX"] for app in ("airline", "airline-b"))
    assert not one.startswith(two) and not two.startswith(one)


def test_service_takes_password_and_keys_from_docker_secrets_only() -> None:
    rendered = service()
    sources = {s["source"] for s in rendered["secrets"]}
    assert sources == {"s_postgres_password", "s_bucket_credentials"}
    assert {s["target"] for s in rendered["secrets"]} == {"postgres_password", "bucket_credentials"}
    env = rendered["environment"]
    assert env["PGPASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/bucket_credentials"
    assert not {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)


def test_service_environment_is_what_backup_py_reads(tmp_path: Path) -> None:
    env = service()["environment"]
    password = tmp_path / "password"
    password.write_text("pw\n")
    config = job.Config.from_env({**env, "PGPASSWORD_FILE": str(password)})
    assert config.bucket == "airline-data" and config.database == "app"
    assert config.endpoint == "https://us-east-1.linodeobjects.com"
    assert config.prefix == f"{BACKUPS}/airline/" and config.pg_env["PGPASSWORD"] == "pw"
    assert config.folder == f"{BACKUPS}/airline/app/"
    assert job.next_run(config.schedule, datetime(2026, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, 3, 17, tzinfo=UTC
    )


def test_backups_and_the_registry_never_share_a_folder_of_the_bucket() -> None:
    assert f"{BACKUPS}/" == BACKUP_PREFIX
    assert not ROOT_DIRECTORY.lstrip("/").startswith(BACKUPS) and not BACKUPS.startswith(
        ROOT_DIRECTORY.lstrip("/")
    )


def test_the_servers_backups_expire_after_the_retention() -> None:
    from tests.support.program import run_program
    from tests.support.stack_runs import stack_document

    mocks, _ = run_program("servers", backupRetentionDays=30)
    backup = stack_document(mocks.named("servers-layer-stack-deployment"))["services"]["backup"]
    assert backup["environment"].get("BACKUP_RETENTION_DAYS") == "30"


def test_the_linode_rule_matches_the_one_backup_py_writes_on_other_s3_apis() -> None:
    expire, _ = lifecycle_rules(14)
    s3_rule = job.lifecycle_rule(BACKUP_PREFIX, 14)
    # The IDs differ on purpose: Pulumi owns the Linode bucket's rules, backup.py one rule per stack prefix.
    assert s3_rule["ID"] == job.rule_id(BACKUP_PREFIX) != expire["id"]
    assert s3_rule["Filter"] == {"Prefix": expire["prefix"]}
    assert s3_rule["Expiration"] == {"Days": expire["expiration"]["days"]}
    assert s3_rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    for rule in lifecycle_rules(14):
        linode.ObjectStorageBucketLifecycleRuleArgs(**rule)  # the SDK's own args type refuses unknown fields
    with pytest.raises(job.BackupError):
        job.lifecycle_rule(BACKUP_PREFIX, 0)


def test_merged_rules_keep_the_buckets_other_rules() -> None:
    other = {"ID": "tidy", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 99}}
    old = job.lifecycle_rule("backups/", 3)
    new = job.lifecycle_rule("backups/", 14)
    assert job.merged_rules([other, old], new) == [other, new]


def test_backup_keys_are_utc_and_sort_by_time() -> None:
    paris = timezone(timedelta(hours=1))
    key = job.backup_key("backups/", "app", datetime(2026, 3, 1, 4, 17, 5, tzinfo=paris))
    assert key == "backups/app/20260301T031705Z.dump"
    keys = [job.backup_key("backups/", "app", datetime(2026, 1, d, tzinfo=UTC)) for d in (9, 10, 1)]
    keys += ["backups/app/notes.txt", "backups/other/20991231T000000Z.dump", "backups/app/manual-copy.dump"]
    assert job.latest_key(keys, "backups/app/") == "backups/app/20260110T000000Z.dump"
    assert job.latest_key([], "backups/app/") is None


def test_next_run_is_strictly_after_and_in_utc() -> None:
    at = datetime(2026, 5, 1, 3, 17, tzinfo=UTC)
    assert job.next_run("17 3 * * *", at) == at + timedelta(days=1)
    assert job.next_run("*/15 * * * *", datetime(2026, 5, 1, 3, 16, 59, tzinfo=UTC)) == at.replace(minute=30)
    with pytest.raises(job.BackupError, match="BACKUP_SCHEDULE"):
        job.next_run("every night", at)


def test_config_names_what_is_missing_or_wrong(tmp_path: Path) -> None:
    with pytest.raises(job.BackupError, match="BACKUP_BUCKET and PGDATABASE"):
        job.Config.from_env({})
    with pytest.raises(job.BackupError, match="PGDATABASE"):
        job.Config.from_env({"BACKUP_BUCKET": "b", "PGDATABASE": "../etc"})
    with pytest.raises(job.BackupError, match="cannot read"):
        job.Config.from_env(
            {"BACKUP_BUCKET": "b", "PGDATABASE": "app", "PGPASSWORD_FILE": str(tmp_path / "x")}
        )
    config = job.Config.from_env({"BACKUP_BUCKET": "b", "PGDATABASE": "app", "BACKUP_PREFIX": "dumps"})
    assert config.prefix == "dumps/" and config.folder == "dumps/app/" and config.endpoint is None
    assert config.url("dumps/app/x.dump") == "s3://b/dumps/app/x.dump"


def test_main_logs_a_configuration_error_and_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    assert job.main(["backup"], env={}) == 1
    assert "set BACKUP_BUCKET and PGDATABASE" in caplog.text and caplog.records[-1].levelname == "ERROR"


def test_a_bad_schedule_stops_the_job_at_start(caplog: pytest.LogCaptureFixture) -> None:
    env = {"BACKUP_BUCKET": "b", "PGDATABASE": "app", "BACKUP_SCHEDULE": "61 * * * *"}
    assert job.main(["schedule"], env=env) == 1
    assert "is not a cron expression" in caplog.text


def test_the_default_schedule_setting_is_valid_cron() -> None:
    settings = parse(*stack_config("iaas"))
    assert settings.swarm is not None
    now = datetime.now(UTC)
    assert now < job.next_run(settings.swarm.backup_schedule, now) <= now + timedelta(days=1)
