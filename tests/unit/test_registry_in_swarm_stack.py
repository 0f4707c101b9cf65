"""The registry and backup services inside the app's swarm stack file (a StackExtension), checked by
the docker CLI's own compose loader (`docker stack config` validates against the compose schema; it needs
no engine)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import backups, registry, swarm
from components.settings import parse
from tests.support.stacks import stack_config

STORAGE = registry.S3Storage(bucket="airline-data", endpoint="us-east-1.linodeobjects.com")
EXTRA_SECRETS = {
    registry.CONFIG_SECRET: "airline_registry_config_0a1b",
    registry.HTPASSWD_SECRET: "airline_registry_htpasswd_2c3d",
    registry.BUCKET_CREDENTIALS_SECRET: "airline_bucket_credentials_4e5f",
}


def stack_file() -> str:
    settings = parse(*stack_config("iaas"))
    assert settings.swarm is not None
    extension = swarm.StackExtension(
        services={
            "registry": registry.registry_service(settings.swarm.registry_image, networks=[swarm.NETWORK]),
            "backup": backups.backup_service(
                "registry.example.com/airline-backup@sha256:" + "c" * 64,
                schedule=settings.swarm.backup_schedule,
                storage=STORAGE,
                networks=[swarm.NETWORK],
                retention_days=settings.swarm.backup_retention_days,
            ),
        },
        secrets=EXTRA_SECRETS,
    )
    spec = swarm.StackSpec(
        stack="airline",
        image="registry.example.com/airline@sha256:" + "d" * 64,
        app=settings.app,
        swarm=settings.swarm,
        web_secrets={"SECRET_KEY": "airline_SECRET_KEY_1", "DATABASE_URL": "airline_DATABASE_URL_1"},
        caddyfile_config="airline_caddyfile_1",
        postgres_password_secret="airline_postgres_password_1",
        extension=extension,
    )
    return swarm.render_stack(spec)


def test_services_reference_only_secrets_the_stack_declares() -> None:
    document: dict[str, Any] = yaml.safe_load(stack_file())
    declared = set(document["secrets"])
    for name in ("registry", "backup"):
        service = document["services"][name]
        assert {s["source"] for s in service["secrets"]} <= declared, name
        assert service["networks"] == [swarm.NETWORK]
    # the backup job's database is the stack's own service, with its user and database
    env = document["services"]["backup"]["environment"]
    assert env["PGHOST"] in document["services"]
    assert (env["PGUSER"], env["PGDATABASE"]) == (swarm.DB_USER, swarm.DB_NAME)


@pytest.mark.skipif(shutil.which("docker") is None, reason="the docker CLI is not installed")
def test_docker_accepts_the_stack_file(tmp_path: Path) -> None:
    path = tmp_path / "stack.yml"
    path.write_text(stack_file())
    loaded = subprocess.run(
        ["docker", "stack", "config", "--compose-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    services = yaml.safe_load(loaded.stdout)["services"]
    assert services["registry"]["command"] == ["serve", "/run/secrets/registry_config"]
    retention = parse(*stack_config("iaas")).swarm.backup_retention_days  # type: ignore[union-attr]
    assert services["backup"]["environment"]["BACKUP_RETENTION_DAYS"] == str(retention)
