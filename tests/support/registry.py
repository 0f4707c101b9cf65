"""The private registry as the servers targets run it, in one container on this engine: the registry stand-in
(Debian's distribution 2.8) with render/registry_config.py's config.yml, htpasswd line and bucket credentials
as files under /run/secrets (named and moded as the service's swarm secrets are), the service's command and
environment, and its blobs in moto's S3.

Like a swarm task, the container has a network namespace of its own: its debug listener (DEBUG_PORT, on its
own loopback) collides with nothing, and its registry port is published on 127.0.0.1:<free port> of this
machine. The bucket is served on the Docker bridge's gateway address, which the container reaches.
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
import requests

from render.registry_config import (
    BUCKET_CREDENTIALS_SECRET,
    CONFIG_SECRET,
    HTPASSWD_SECRET,
    SECRETS_DIR,
    USERNAME,
    S3Storage,
    bucket_credentials_file,
    htpasswd_line,
    registry_config,
    registry_service,
)
from tests.e2e.app_image import build_cli
from tests.support.docker import SCRIPTS, docker, free_port, wait_http
from tests.support.s3 import ACCESS_KEY, REGION, S3, SECRET_KEY, bridge_gateway, moto_s3


def registry_image() -> str:
    """The stand-in for the official registry image (Debian's distribution 2.8), built once."""
    out = subprocess.run(
        [SCRIPTS / "standin-services", "registry"], check=True, capture_output=True, text=True, timeout=1800
    ).stdout
    return out.strip().rpartition("=")[2]


def bcrypt_hash(password: str) -> str:
    """A hash as the program's generated secrets give it ($2a$, cost 10)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()


def new_password() -> str:
    return base64.b32encode(os.urandom(20)).decode().lower()


def unique_image(base: str, tag: str) -> None:
    """base plus one layer no other image has: pulling it back must fetch that blob from the registry."""
    with tempfile.TemporaryDirectory(prefix="fd-registry-image-") as context:
        Path(context, "marker").write_text(uuid.uuid4().hex)
        Path(context, "Dockerfile").write_text(
            "ARG BASE\nFROM ${BASE}\nCOPY marker /etc/flightdeck-e2e-marker\n"
        )
        subprocess.run(
            [build_cli(), "build", "--quiet", "--build-arg", f"BASE={base}", "--tag", tag, context],
            check=True, capture_output=True, timeout=300, env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )  # fmt: skip


@contextmanager
def registry_bucket(prefix: str) -> Iterator[S3]:
    """A fresh bucket the registry's container reaches (moto on the bridge's gateway address)."""
    with moto_s3(prefix, address=bridge_gateway()) as s3:
        yield s3


@dataclass
class Registry:
    """One registry (started, removed and started again on the same bucket and port)."""

    image: str
    s3: S3
    password: str
    secrets_dir: Path
    port: int
    prefix: str
    container: str | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def service(self) -> dict[str, Any]:
        return registry_service(self.image)

    def start(self) -> None:
        service = self.service()
        [port] = service["ports"]
        env = [arg for item in service["environment"].items() for arg in ("--env", "=".join(item))]
        self.container = docker(
            "run", "--detach", "--name", f"{self.prefix}-{uuid.uuid4().hex[:8]}", *env,
            "--publish", f"127.0.0.1:{self.port}:{port['target']}",
            "--volume", f"{self.secrets_dir}:{SECRETS_DIR}:ro",
            self.image, *service["command"],
        ).strip()  # fmt: skip
        try:
            wait_http(f"http://{self.address}/v2/", status=401, timeout=60)  # serving, and asking for auth
        except TimeoutError as err:
            raise TimeoutError(f"{err}\n{self.logs()}") from err

    def logs(self) -> str:
        if self.container is None:
            return ""
        return subprocess.run(
            ["docker", "logs", "--tail", "40", self.container], capture_output=True, text=True, check=False
        ).stderr

    def health_check(self) -> subprocess.CompletedProcess[str]:
        """The service's health check command, run in the container as the engine runs a CMD check."""
        assert self.container is not None
        test = self.service()["healthcheck"]["test"]
        assert test[0] == "CMD", test
        return subprocess.run(
            ["docker", "exec", self.container, *test[1:]],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def healthy(self) -> bool:
        return self.health_check().returncode == 0

    def container_address(self) -> str:
        assert self.container is not None
        return docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", self.container).strip()

    def remove(self) -> list[str]:
        """Remove the container with its anonymous volumes; return the volumes it had."""
        assert self.container is not None
        mounts = docker("inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", self.container).split()
        docker("rm", "--force", "--volumes", self.container)
        self.container = None
        return mounts

    def api(
        self,
        path: str,
        password: str | None = None,
        method: str = "GET",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        auth = None if password is None else (USERNAME, password)
        return requests.request(
            method, f"http://{self.address}{path}", auth=auth, headers=headers, timeout=30
        )


def write_secrets(directory: Path, service: dict[str, Any], values: dict[str, str]) -> None:
    """The service's secrets as swarm mounts them: one file per secret, named and moded as it says."""
    for secret in service["secrets"]:
        path = directory / secret["target"]
        path.write_text(values[secret["source"]])
        path.chmod(secret.get("mode", 0o444))
    assert {s["source"] for s in service["secrets"]} == set(values), "the service mounts other secrets"


@contextmanager
def running_registry(s3: S3, prefix: str) -> Iterator[Registry]:
    """A registry configured by render/registry_config.py on a free loopback port; removed afterwards."""
    password = new_password()
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as scratch:
        secrets_dir = Path(scratch) / "secrets"
        secrets_dir.mkdir(mode=0o755)
        image = registry_image()
        values = {
            CONFIG_SECRET: registry_config(
                http_secret=uuid.uuid4().hex,
                s3=S3Storage(bucket=s3.bucket, endpoint=s3.endpoint, region=REGION),
            ),
            HTPASSWD_SECRET: htpasswd_line(USERNAME, bcrypt_hash(password)),
            BUCKET_CREDENTIALS_SECRET: bucket_credentials_file(ACCESS_KEY, SECRET_KEY),
        }
        write_secrets(secrets_dir, registry_service(image), values)
        reg = Registry(image, s3, password, secrets_dir, free_port(), prefix)
        reg.start()
        try:
            yield reg
        finally:
            if reg.container is not None:
                reg.remove()


def login(address: str, password: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "login", "--username", USERNAME, "--password-stdin", address],
        input=password, capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@contextmanager
def docker_login(address: str, password: str) -> Iterator[dict[str, str]]:
    """An environment whose docker CLI is logged in to address, in a throw-away DOCKER_CONFIG that keeps the
    CLI plugins of the caller's (the CLI looks for buildx in $DOCKER_CONFIG/cli-plugins first)."""
    with tempfile.TemporaryDirectory(prefix="fd-registry-config-") as config:
        plugins = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins"
        if plugins.is_dir():
            (Path(config) / "cli-plugins").symlink_to(plugins)
        env = {**os.environ, "DOCKER_CONFIG": config}
        logged_in = login(address, password, env)
        if logged_in.returncode != 0:
            raise RuntimeError(f"docker login {address} failed:\n{logged_in.stderr}")
        yield env
