"""Promotion for real: skopeo copies an image between repositories of a real registry, digest unchanged."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from components.promotion import COPY_SCRIPT, promotion_tag
from tests.support.docker import SCRIPTS, docker, free_port, wait_http

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def registry(docker_engine: str) -> Iterator[str]:
    image = (
        subprocess.run([SCRIPTS / "standin-services", "registry"], check=True, capture_output=True, text=True)
        .stdout.strip()
        .split("=", 1)[1]
    )
    port = free_port()
    name = f"fd-promotion-{uuid.uuid4().hex[:8]}"
    docker(
        "run", "-d", "--name", name, "--network", "host", "-e", f"REGISTRY_HTTP_ADDR=127.0.0.1:{port}", image
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/")
        yield f"127.0.0.1:{port}"
    finally:
        docker("rm", "--force", "--volumes", name, check=False)


@pytest.fixture(scope="module")
def dev_ref(registry: str, python_base: str) -> str:
    """An image pushed to the dev repository, as `pulumi up --stack dev` leaves it."""
    tag = f"{registry}/flightdeck-dev/web:build"
    docker("tag", python_base, tag)
    docker("push", tag, timeout=300)
    digest = docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", tag).strip()
    docker("rmi", tag)
    return f"{registry}/flightdeck-dev/web@{digest.split('@', 1)[1]}"


def promote(source: str, destination: str, digest: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE": source, "DESTINATION": destination, "DIGEST": digest, "REGISTRY_HOST": ""}
    return subprocess.run(["bash", "-c", COPY_SCRIPT], env=env, capture_output=True, text=True, timeout=300)


def test_prod_gets_devs_image_under_the_same_digest(registry: str, dev_ref: str) -> None:
    digest = dev_ref.split("@", 1)[1]
    destination = promotion_tag(f"{registry}/flightdeck-prod/web", digest)
    result = promote(dev_ref, destination, digest)
    assert result.returncode == 0, result.stderr
    # The engine pulls prod's copy by dev's digest.
    prod_ref = f"{registry}/flightdeck-prod/web@{digest}"
    docker("pull", prod_ref, timeout=300)
    docker("rmi", prod_ref)


def test_a_copy_whose_digest_differs_fails_the_promotion(registry: str, dev_ref: str) -> None:
    wrong = "sha256:" + "0" * 64
    result = promote(dev_ref, f"{registry}/flightdeck-prod/web:wrong", wrong)
    assert result.returncode == 1
    assert f"not {wrong}" in result.stderr
