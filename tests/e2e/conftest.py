"""Fixtures of the end-to-end tests: the app image, built once for every test that runs it unchanged, the
containers a test starts from it (removed after the test), a fresh database per test, and the test hosts
(`test_hosts`: scripts/test-hosts up 3 at the start, down at the end)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.app_image import Containers, build, fresh_database
from tests.support.docker import docker
from tests.support.test_hosts import session_test_hosts  # noqa: F401 (the `test_hosts` fixture)


@pytest.fixture(scope="session")
def app_image(docker_engine: str, python_base: str) -> Iterator[str]:
    tag = f"flightdeck-app:e2e-{uuid.uuid4().hex[:10]}"
    build(tag, base=python_base)
    yield tag
    docker("image", "rm", "--force", tag, check=False)


@pytest.fixture
def containers(app_image: str) -> Iterator[Containers]:
    started = Containers(app_image)
    yield started
    started.close()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url
