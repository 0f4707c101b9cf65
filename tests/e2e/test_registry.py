"""The private registry, end to end: the registry image configured by render/registry_config.py (its config,
htpasswd line and bucket credentials as secret files, the service's command, environment and health check),
its blobs in an S3 bucket (moto's server standing in for Linode Object Storage); tests/support/registry.py.

An image pushed to one registry container is pulled by its digest from a fresh container after the first
one was removed with its disk: everything the registry knows lives in the bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from contract import REGISTRY_PORT
from render.registry_config import DEBUG_PORT, ROOT_DIRECTORY
from tests.support.docker import docker
from tests.support.registry import docker_login, login, registry_bucket, running_registry, unique_image
from tests.support.s3 import S3

pytestmark = pytest.mark.docker

PREFIX = "fd-registry-e2e"


def accepts(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        return s.connect_ex((address, port)) == 0


@pytest.fixture
def s3(docker_engine: str) -> Iterator[S3]:
    with registry_bucket(PREFIX) as bucket:
        yield bucket


def test_pushed_image_survives_the_registry_container(python_base: str, s3: S3) -> None:
    repository = f"airline-{uuid.uuid4().hex[:6]}"
    with running_registry(s3, PREFIX) as reg, docker_login(reg.address, reg.password) as env:
        ref = f"{reg.address}/{repository}:e2e"
        unique_image(python_base, ref)
        image_id = docker("image", "inspect", "--format", "{{.Id}}", ref).strip()
        try:
            pushed = subprocess.run(
                ["docker", "push", ref], capture_output=True, text=True, env=env, timeout=600, check=True
            ).stdout
            digest = next(w for w in pushed.split() if w.startswith("sha256:"))
            blobs = [k for k in s3.keys(f"{ROOT_DIRECTORY.strip('/')}/") if k.endswith("/data")]
            assert len(blobs) >= 3, f"the blobs are not in the bucket: {s3.keys()}"  # config + 2 layers

            volumes = reg.remove()
            for volume in volumes:
                assert docker("volume", "ls", "--quiet", "--filter", f"name=^{volume}$").strip() == ""
            docker("image", "rm", ref)
            assert (
                subprocess.run(["docker", "image", "inspect", image_id], capture_output=True).returncode != 0
            )

            reg.start()  # a fresh container, same bucket
            assert reg.api(f"/v2/{repository}/tags/list", reg.password).json()["tags"] == ["e2e"]
            pulled_ref = f"{reg.address}/{repository}@{digest}"
            subprocess.run(
                ["docker", "pull", pulled_ref], capture_output=True, env=env, timeout=600, check=True
            )
            assert docker("image", "inspect", "--format", "{{.Id}}", pulled_ref).strip() == image_id
        finally:
            docker("image", "rm", "--force", image_id, check=False)


def test_wrong_or_missing_credentials_are_refused(s3: S3) -> None:
    with running_registry(s3, PREFIX) as reg:
        assert reg.api("/v2/", reg.password).status_code == 200
        assert reg.api("/v2/").status_code == 401
        assert reg.api("/v2/", reg.password + "x").status_code == 401
        assert reg.api("/v2/_catalog", "not-the-password").status_code == 401
        assert reg.api("/v2/_catalog").status_code == 401
        with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-config-") as config:
            env = {**os.environ, "DOCKER_CONFIG": config}
            refused = login(reg.address, "not-the-password", env)
            assert refused.returncode != 0
            assert "unauthorized" in refused.stderr.lower()
            assert login(reg.address, reg.password, env).returncode == 0


def test_health_check_fails_when_the_bucket_is_gone(s3: S3) -> None:
    """The service's own health check command, run in the registry's container, passes, then fails once the
    storage is gone; the debug listener it asks is on the container's loopback only."""
    with running_registry(s3, PREFIX) as reg:
        checked = reg.health_check()
        assert checked.returncode == 0, f"{checked.stderr}\n{reg.logs()}"
        inside = reg.container_address()
        assert accepts(inside, REGISTRY_PORT) and not accepts(inside, DEBUG_PORT)

        s3.client().delete_bucket(Bucket=s3.bucket)
        debug = f"http://127.0.0.1:{DEBUG_PORT}/debug/health"
        # The storage driver's check fails `threshold` times, `interval` apart, before the endpoint says 503.
        probe = "for i in $(seq 1 60); do wget -q -O /dev/null {url} || exit 0; sleep 1; done; exit 1"
        waited = subprocess.run(
            ["docker", "exec", str(reg.container), "sh", "-c", probe.format(url=debug)],
            capture_output=True, text=True, timeout=90, check=False,
        )  # fmt: skip
        assert waited.returncode == 0, f"still healthy 60 s after the bucket went:\n{reg.logs()}"
        assert not reg.healthy()
