"""The private registry, end to end: the registry image configured by components/registry.py, its blobs in an
S3 bucket (moto's server standing in for Linode Object Storage), htpasswd auth.

An image pushed to one registry container is pulled by its digest from a fresh container after the first
one was removed with its disk: everything the registry knows lives in the bucket.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from components import registry
from tests.e2e.app_image import build_cli
from tests.support.docker import SCRIPTS, docker, free_port, wait_http

pytestmark = pytest.mark.docker

PREFIX = "fd-registry-e2e"
USER = registry.USERNAME


def registry_image() -> str:
    """The stand-in for the official registry image (Debian's distribution 2.8), built once."""
    out = subprocess.run(
        [SCRIPTS / "standin-services", "registry"], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().rpartition("=")[2]


def bcrypt_hash(password: str) -> str:
    """A hash in the form pulumi-random's bcrypt_hash gives ($2a$, cost 10)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()


@dataclass
class S3:
    endpoint: str
    bucket: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="e2e-access",
            aws_secret_access_key="e2e-secret",
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@contextmanager
def moto_s3() -> Iterator[S3]:
    """moto's S3 API on a free loopback port with one fresh bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = S3(endpoint=f"http://127.0.0.1:{port}", bucket=f"{PREFIX}-{uuid.uuid4().hex[:8]}")
        s3.client().create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.stop()


@dataclass
class Registry:
    address: str
    password: str
    image: str
    s3: S3
    secrets_dir: Path
    port: int
    debug_port: int
    container: str | None = None

    def start(self) -> None:
        name = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
        service = registry.registry_service(self.image, networks=[])
        env = [arg for item in service["environment"].items() for arg in ("--env", "=".join(item))]
        self.container = docker(
            "run", "--detach", "--name", name, "--network", "host", *env,
            "--volume", f"{self.secrets_dir}:{registry.SECRETS_DIR}:ro",
            self.image, *service["command"],
        ).strip()  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{self.debug_port}/debug/health", timeout=60)
        except TimeoutError as err:
            logs = docker("logs", "--tail", "40", self.container, check=False)
            raise TimeoutError(f"{err}\n{logs}") from err

    def remove(self) -> list[str]:
        """Remove the container with its anonymous volumes; return the volumes it had."""
        assert self.container is not None
        mounts = docker("inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", self.container).split()
        docker("rm", "--force", "--volumes", self.container)
        self.container = None
        return mounts

    def api(self, path: str, password: str | None = None, method: str = "GET") -> requests.Response:
        auth = None if password is None else (USER, password)
        return requests.request(method, f"http://{self.address}{path}", auth=auth, timeout=30)


@contextmanager
def running_registry(s3: S3) -> Iterator[Registry]:
    """A registry configured by components/registry.py on free loopback ports; removed afterwards."""
    port, debug_port = free_port(), free_port()
    password = base64.b32encode(os.urandom(20)).decode().lower()
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as scratch:
        secrets_dir = Path(scratch)
        files = {
            registry.CONFIG_SECRET: registry.registry_config(
                http_secret=uuid.uuid4().hex,
                s3=registry.S3Storage(bucket=s3.bucket, endpoint=s3.endpoint),
                port=port,
                debug_port=debug_port,
            ),
            registry.HTPASSWD_SECRET: registry.htpasswd_line(USER, bcrypt_hash(password)),
            registry.BUCKET_CREDENTIALS_SECRET: registry.bucket_credentials_file("e2e-access", "e2e-secret"),
        }
        for name, content in files.items():
            (secrets_dir / name).write_text(content)
        secrets_dir.chmod(0o755)
        reg = Registry(f"127.0.0.1:{port}", password, registry_image(), s3, secrets_dir, port, debug_port)
        reg.start()
        try:
            yield reg
        finally:
            if reg.container is not None:
                reg.remove()


@contextmanager
def docker_login(address: str, password: str) -> Iterator[dict[str, str]]:
    """An environment whose docker CLI is logged in to address, in a throw-away DOCKER_CONFIG."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-config-") as config:
        env = {**os.environ, "DOCKER_CONFIG": config}
        login(address, password, env)
        yield env


def login(address: str, password: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "login", "--username", USER, "--password-stdin", address],
        input=password, capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def unique_image(base: str, tag: str) -> None:
    """base plus one layer no other image has: pulling it back must fetch that blob from the registry."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-ctx-") as context:
        Path(context, "marker").write_text(uuid.uuid4().hex)
        Path(context, "Dockerfile").write_text(
            "ARG BASE\nFROM ${BASE}\nCOPY marker /etc/flightdeck-e2e-marker\n"
        )
        subprocess.run(
            [build_cli(), "build", "--quiet", "--build-arg", f"BASE={base}", "--tag", tag, context],
            check=True, capture_output=True, timeout=300, env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )  # fmt: skip


@pytest.fixture
def s3() -> Iterator[S3]:
    with moto_s3() as bucket:
        yield bucket


def test_pushed_image_survives_the_registry_container(app_image: str, s3: S3) -> None:
    repository = f"airline-{uuid.uuid4().hex[:6]}"
    with running_registry(s3) as reg, docker_login(reg.address, reg.password) as env:
        ref = f"{reg.address}/{repository}:e2e"
        unique_image(app_image, ref)
        image_id = docker("image", "inspect", "--format", "{{.Id}}", ref).strip()
        pushed = subprocess.run(
            ["docker", "push", ref], capture_output=True, text=True, env=env, timeout=600, check=True
        ).stdout
        digest = next(w for w in pushed.split() if w.startswith("sha256:"))
        layers = [b for b in s3.keys(f"{registry.ROOT_DIRECTORY.strip('/')}/") if b.endswith("/data")]
        assert len(layers) >= 3, f"the blobs are not in the bucket: {s3.keys()}"

        volumes = reg.remove()
        for volume in volumes:
            assert docker("volume", "ls", "--quiet", "--filter", f"name=^{volume}$").strip() == ""
        docker("image", "rm", ref)
        assert subprocess.run(["docker", "image", "inspect", image_id], capture_output=True).returncode != 0

        reg.start()  # a fresh container, same bucket
        assert reg.api(f"/v2/{repository}/tags/list", reg.password).json()["tags"] == ["e2e"]
        pulled_ref = f"{reg.address}/{repository}@{digest}"
        subprocess.run(["docker", "pull", pulled_ref], capture_output=True, env=env, timeout=600, check=True)
        try:
            assert docker("image", "inspect", "--format", "{{.Id}}", pulled_ref).strip() == image_id
        finally:
            docker("image", "rm", "--force", image_id, check=False)


def test_wrong_or_missing_credentials_are_refused(s3: S3) -> None:
    with running_registry(s3) as reg:
        assert reg.api("/v2/", reg.password).status_code == 200
        assert reg.api("/v2/").status_code == 401
        assert reg.api("/v2/", reg.password + "x").status_code == 401
        assert reg.api("/v2/_catalog", "not-the-password").status_code == 401
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-config-") as config:
            env = {**os.environ, "DOCKER_CONFIG": config}
            refused = login(reg.address, "not-the-password", env)
            assert refused.returncode != 0
            assert "unauthorized" in refused.stderr.lower()
            assert login(reg.address, reg.password, env).returncode == 0


def test_health_check_fails_when_the_bucket_is_gone(s3: S3) -> None:
    """The service's health check command, run in the registry's network namespace (the host's: the
    stand-in image has no wget, the official one has), passes, then fails once the storage is gone."""
    with running_registry(s3) as reg:
        test = registry.registry_service(reg.image, networks=[], debug_port=reg.debug_port)["healthcheck"][
            "test"
        ]
        assert test[0] == "CMD"

        def healthy() -> bool:
            return subprocess.run(test[1:], capture_output=True, timeout=30, check=False).returncode == 0

        assert healthy()
        s3.client().delete_bucket(Bucket=s3.bucket)
        wait_http(f"http://127.0.0.1:{reg.debug_port}/debug/health", status=503, timeout=60)
        assert not healthy()
