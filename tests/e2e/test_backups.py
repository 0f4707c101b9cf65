"""Backups of PostgreSQL to S3 and restores, end to end through the backup image (backup/Dockerfile on the
postgres stand-in) against the host's PostgreSQL and moto's S3 server, the container configured by the very
service render/stack_file.py's backup_service renders for the swarm stack: its command, its environment (the
database's address aside: the stack's is `db`, here it is the host's server) and its secrets as files.

Every check compares per-table checksums of the rows (and the sequences' positions) before and after.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import sql

from backup.backup import rule_id
from render.registry_config import bucket_credentials_file
from render.stack_file import BACKUPS, BUCKET_CREDENTIALS, POSTGRES_PASSWORD, backup_service
from tests.app.processes import manage
from tests.app.processes import production_env as app_env
from tests.e2e.app_image import build_cli, database_url, fresh_database
from tests.support.docker import ROOT, SCRIPTS, docker, free_port
from tests.support.s3 import ACCESS_KEY, REGION, S3, SECRET_KEY, moto_s3

pytestmark = pytest.mark.docker

PREFIX = "fd-backup-e2e"
BACKUP_DIR = ROOT / "backup"
APP = "airline-e2e"
SECRETS_DIR = "/run/secrets"

EXTRA_SCHEMA = """
CREATE TABLE ledger (
    id bigserial PRIMARY KEY,
    booked_at timestamptz NOT NULL,
    amount numeric(12, 2) NOT NULL,
    memo text,
    payload jsonb,
    blob bytea
);
INSERT INTO ledger (booked_at, amount, memo, payload, blob)
SELECT timestamptz '2026-01-01 00:00+00' + g * interval '37 minutes',
       round((g * 7.31)::numeric % 10000, 2),
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'entrée ' || g || ' ✈ ' || md5(g::text) END,
       jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 3)),
       decode(md5(g::text), 'hex')
FROM generate_series(1, 20000) AS g;
CREATE TABLE "Mixed Case" (k text PRIMARY KEY, v integer[]);
INSERT INTO "Mixed Case" SELECT 'key ' || g, ARRAY[g, g * g] FROM generate_series(1, 500) AS g;
CREATE VIEW big_entries AS SELECT id, amount FROM ledger WHERE amount > 5000;
"""


def checksums(url: str) -> dict[str, tuple[int, str]]:
    """Rows and an MD5 of all rows of every table in public, plus every sequence's position."""
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
        ]
        sums: dict[str, tuple[int, str]] = {}
        for table in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {} AS t"
            ).format(sql.Identifier(table))
            count, digest = conn.execute(query).fetchone()  # type: ignore[misc]
            sums[table] = (count, digest)
        for name, last in conn.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"):
            sums[f"sequence {name}"] = (int(last or 0), "")
    return sums


def rendered_service(image: str, s3: S3, app: str = APP) -> dict[str, Any]:
    """The swarm service render/stack_file.py renders for the app's backups to the bucket."""
    return backup_service(
        image, app=app, schedule="17 3 * * *", bucket=s3.bucket, endpoint=s3.endpoint, region=REGION
    )


@dataclass
class Target:
    """The backup image pointed at one database and one bucket, run like the swarm service runs it."""

    image: str
    url: str
    s3: S3
    secrets_dir: Path
    app: str = APP

    def service(self) -> dict[str, Any]:
        return rendered_service(self.image, self.s3, self.app)

    @property
    def prefix(self) -> str:
        """The bucket's folder of the app's backups."""
        return f"{BACKUPS}/{self.app}/"

    def env(self, **overrides: str) -> dict[str, str]:
        """The service's environment, with the test database's address for the stack's `db` service."""
        parts = urlsplit(self.url)
        database = {
            "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or 5432),
            "PGDATABASE": parts.path.lstrip("/"),
            "PGUSER": unquote(parts.username or ""),
        }
        rendered: dict[str, str] = self.service()["environment"]
        assert set(database) <= set(rendered)
        return rendered | database | overrides

    def run(self, *command: str, detach: bool = False, **overrides: str) -> subprocess.CompletedProcess[str]:
        """The image with command (none: the service's own, `schedule`); --rm unless detached."""
        env = self.env(**overrides)
        flags = [arg for name in env for arg in ("--env", name)]
        mode = ["--detach"] if detach else ["--rm"]
        memory = self.service()["deploy"]["resources"]["limits"]["memory"]  # the service's limit holds
        return subprocess.run(
            ["docker", "run", *mode, "--name", f"{PREFIX}-{uuid.uuid4().hex[:8]}", "--network", "host",
             "--memory", memory, *flags, "--volume", f"{self.secrets_dir}:{SECRETS_DIR}:ro",
             self.image, *command],
            capture_output=True, text=True, timeout=300, check=False, env={**os.environ, **env},
        )  # fmt: skip

    def ok(self, *command: str) -> str:
        result = self.run(*command)
        assert result.returncode == 0, f"{command} failed:\n{result.stderr}"
        return result.stdout.strip()


# The stack builds the backup image on its own postgres image, so pg_dump/pg_restore have the server's
# major version (pg_restore 17 writes settings a 15 server refuses). Here the base is a stand-in for the
# official image of the tests' server version: Debian's postgresql packages of that major version (the
# package also makes the postgres user the image runs as).
SUITES = {15: "bookworm", 17: "trixie"}


@pytest.fixture(scope="module")
def backup_image(docker_engine: str, postgres_url: str) -> Iterator[str]:
    with psycopg.connect(postgres_url) as conn:
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
    if major not in SUITES:
        pytest.fail(f"no Debian suite ships PostgreSQL {major}: add one to SUITES")
    base = f"flightdeck/postgres-packages-standin:{SUITES[major]}"
    subprocess.run(
        [SCRIPTS / "standin-image", base, SUITES[major], "postgresql"],
        check=True,
        capture_output=True,
    )
    tag = f"{PREFIX}:{uuid.uuid4().hex[:10]}"
    subprocess.run(
        [build_cli(), "build", "--quiet", "--network", "host", "--tag", tag,
         "--build-arg", f"POSTGRES_IMAGE={base}", str(BACKUP_DIR)],
        check=True, capture_output=True, timeout=600, env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )  # fmt: skip
    yield tag
    docker("image", "rm", "--force", tag, check=False)


def load_data(url: str) -> None:
    """The app's schema with its sample data, and tables of awkward types and names."""
    env = app_env(DATABASE_URL=url, DEBUG="0")
    for command in (("migrate", "--noinput"), ("load_sample_data",)):
        done = manage(*command, env=env)
        assert done.returncode == 0, done.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(EXTRA_SCHEMA)


@contextmanager
def secrets_for(url: str, service: dict[str, Any]) -> Iterator[Path]:
    """The service's secrets as files named as it mounts them (readable: the image runs as postgres)."""
    values = {
        POSTGRES_PASSWORD: unquote(urlsplit(url).password or "") + "\n",
        BUCKET_CREDENTIALS: bucket_credentials_file(ACCESS_KEY, SECRET_KEY),
    }
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as scratch:
        folder = Path(scratch)
        for secret in service["secrets"]:
            (folder / secret["target"]).write_text(values[secret["target"]])
        assert sorted(p.name for p in folder.iterdir()) == sorted(values)
        for path in (folder, *folder.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = service["environment"]
        assert {env["PGPASSWORD_FILE"], env["AWS_SHARED_CREDENTIALS_FILE"]} == {
            f"{SECRETS_DIR}/{name}" for name in values
        }
        yield folder


@pytest.fixture
def target(backup_image: str, postgres_url: str) -> Iterator[Target]:
    with (
        fresh_database(postgres_url) as url,
        moto_s3(PREFIX) as s3,
        secrets_for(url, rendered_service(backup_image, s3)) as secrets_dir,
    ):
        load_data(url)
        yield Target(backup_image, url, s3, secrets_dir)


def recreate_empty(url: str) -> None:
    """Lose the database: drop it and create an empty one of the same name."""
    parts = urlsplit(url)
    name = sql.Identifier(parts.path.lstrip("/"))
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def test_backup_restores_identical_rows(target: Target) -> None:
    before = checksums(target.url)
    assert before["ledger"][0] == 20000 and len(before) >= 8

    key = target.ok("backup")
    folder = f"{target.prefix}{urlsplit(target.url).path.lstrip('/')}/"
    assert key.startswith(folder) and key.endswith(".dump")
    assert target.s3.keys() == [key]
    assert target.ok("list") == key

    # Changed data is put back as it was in the backup.
    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute("DELETE FROM ledger WHERE id % 3 = 0")
        conn.execute("UPDATE \"Mixed Case\" SET v = '{}'")
        conn.execute("SELECT nextval('ledger_id_seq')")
    assert checksums(target.url) != before
    assert target.ok("restore", "latest") == key
    assert checksums(target.url) == before

    # A lost database comes back whole into an empty one.
    recreate_empty(target.url)
    assert checksums(target.url) == {}
    assert target.ok("restore", key) == key
    assert checksums(target.url) == before


def test_failed_backups_upload_nothing_and_keep_older_ones(target: Target) -> None:
    older = target.ok("backup")
    etag = target.s3.client().head_object(Bucket=target.s3.bucket, Key=older)["ETag"]

    unreachable = target.run("backup", BACKUP_S3_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    no_bucket = target.run("backup", BACKUP_BUCKET=f"{target.s3.bucket}-missing")
    no_database = target.run("backup", PGDATABASE=f"{target.env()['PGDATABASE']}_missing")
    for failed, says in (
        (unreachable, "Could not connect to the endpoint URL"),
        (no_bucket, "NoSuchBucket"),
        (no_database, "pg_dump of"),
    ):
        assert failed.returncode == 1, failed.stderr
        assert "ERROR backup:" in failed.stderr and says in failed.stderr, failed.stderr

    assert target.s3.keys() == [older]
    assert target.s3.client().head_object(Bucket=target.s3.bucket, Key=older)["ETag"] == etag


def test_bad_backups_never_touch_the_database(target: Target) -> None:
    good = target.ok("backup")
    s3 = target.s3.client()
    dump = s3.get_object(Bucket=target.s3.bucket, Key=good)["Body"].read()
    folder = good.rpartition("/")[0]
    # garbage; a real dump cut short without a recorded checksum (its table of contents still reads);
    # a real dump with one byte changed after upload (its recorded SHA-256 no longer matches)
    s3.put_object(Bucket=target.s3.bucket, Key=f"{folder}/20000101T000000Z.dump", Body=os.urandom(4096))
    s3.put_object(
        Bucket=target.s3.bucket, Key=f"{folder}/20000102T000000Z.dump", Body=dump[: len(dump) * 2 // 3]
    )
    flipped = dump[:-100] + bytes([dump[-100] ^ 0xFF]) + dump[-99:]
    metadata = s3.head_object(Bucket=target.s3.bucket, Key=good)["Metadata"]
    s3.put_object(
        Bucket=target.s3.bucket, Key=f"{folder}/20000103T000000Z.dump", Body=flipped, Metadata=metadata
    )

    # The data moved on since the backup: a failed restore must leave it as it is now.
    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute("DELETE FROM ledger WHERE id > 19000")
    now = checksums(target.url)
    cases = (
        ("20000101T000000Z.dump", "is not a valid pg_dump archive"),
        ("20000102T000000Z.dump", "the transaction was rolled back and the database is unchanged"),
        ("20000103T000000Z.dump", "is corrupt: its SHA-256 differs"),
        (f"{folder}/20991231T000000Z.dump", "there is no backup at"),
    )
    for which, says in cases:
        failed = target.run("restore", which)
        assert failed.returncode == 1, f"restoring {which} did not fail:\n{failed.stderr}"
        assert says in failed.stderr, failed.stderr
        assert checksums(target.url) == now, f"restoring {which} changed the database"

    empty = target.run("restore", "latest", BACKUP_PREFIX="nothing-here/")
    assert empty.returncode == 1 and "there are no backups under" in empty.stderr
    assert checksums(target.url) == now


def test_the_service_backs_up_on_schedule_and_stops_on_sigterm(target: Target) -> None:
    """The service as deployed (its own command), every minute; operators run commands in it by exec."""
    started = target.run(*target.service()["command"], detach=True, BACKUP_SCHEDULE="* * * * *")
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        deadline = time.monotonic() + 120
        while not (keys := target.s3.keys(target.prefix)) and time.monotonic() < deadline:
            time.sleep(2)
        assert len(keys) == 1, docker("logs", container, check=False)
        listed = docker("exec", container, "python3", "/usr/local/bin/flightdeck-backup", "list")
        assert listed.split() == keys

        grace = target.service()["stop_grace_period"]
        assert grace.endswith("s")
        stopping = time.monotonic()
        docker("stop", "--time", grace.removesuffix("s"), container)
        assert time.monotonic() - stopping < 10  # SIGTERM ends the wait; no kill after the grace period
        assert docker("inspect", "--format", "{{.State.ExitCode}}", container).strip() == "0"
        logs = subprocess.run(
            ["docker", "logs", container], capture_output=True, text=True, check=True
        ).stderr
        assert "next backup at" in logs and "backed up" in logs and "stopping on SIGTERM" in logs
    finally:
        docker("rm", "--force", container, check=False)


def test_apply_lifecycle_sets_the_retention_and_keeps_other_rules(target: Target) -> None:
    s3 = target.s3.client()
    other = {"ID": "tidy-uploads", "Status": "Enabled", "Filter": {"Prefix": "registry/"},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}  # fmt: skip
    s3.put_bucket_lifecycle_configuration(Bucket=target.s3.bucket, LifecycleConfiguration={"Rules": [other]})
    for days in ("30", "7"):  # applying again replaces our rule, never duplicates it
        done = target.run("apply-lifecycle", BACKUP_RETENTION_DAYS=days)
        assert done.returncode == 0, done.stderr
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=target.s3.bucket)["Rules"]}
    assert set(rules) == {"tidy-uploads", rule_id(target.prefix)}
    ours = rules[rule_id(target.prefix)]
    assert ours["Expiration"] == {"Days": 7} and ours["Filter"] == {"Prefix": target.prefix}
    assert ours["Status"] == "Enabled"


def test_stacks_sharing_a_bucket_keep_their_backups_apart(target: Target) -> None:
    """Two apps' stacks name their databases alike (`app`); each lists and restores its own backups only."""
    other = replace(target, app=f"{APP}-other")
    assert other.env()["PGDATABASE"] == target.env()["PGDATABASE"]
    ours, theirs = target.ok("backup"), other.ok("backup")
    assert ours.startswith(target.prefix) and theirs.startswith(other.prefix) and ours != theirs
    assert sorted(target.s3.keys()) == sorted([ours, theirs])
    assert target.ok("list") == ours and other.ok("list") == theirs
    assert target.ok("restore", "latest") == ours


def test_stacks_sharing_a_bucket_each_keep_their_retention(target: Target) -> None:
    other = replace(target, app=f"{APP}-other")
    for stack, days in ((target, "30"), (other, "7")):
        done = stack.run("apply-lifecycle", BACKUP_RETENTION_DAYS=days)
        assert done.returncode == 0, done.stderr
    rules = target.s3.client().get_bucket_lifecycle_configuration(Bucket=target.s3.bucket)["Rules"]
    expiry = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules if "Expiration" in r}
    assert expiry == {target.prefix: 30, other.prefix: 7}
