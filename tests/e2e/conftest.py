"""Session fixtures of the end-to-end tests: the app image, built once for every test that runs it unchanged,
and the test hosts (`test_hosts`: scripts/test-hosts up 3 at the start, down at the end)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.app_image import build
from tests.support.docker import docker
from tests.support.test_hosts import session_test_hosts  # noqa: F401 (the `test_hosts` fixture)


@pytest.fixture(scope="session")
def app_image(docker_engine: str, python_base: str) -> Iterator[str]:
    tag = f"flightdeck-app:e2e-{uuid.uuid4().hex[:10]}"
    build(tag, base=python_base)
    yield tag
    docker("image", "rm", "--force", tag, check=False)
