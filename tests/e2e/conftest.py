"""The app image, built once per test session for every end-to-end test that runs it unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.app_image import build
from tests.support.docker import docker


@pytest.fixture(scope="session")
def app_image(docker_engine: str, python_base: str) -> Iterator[str]:
    tag = f"flightdeck-app:e2e-{uuid.uuid4().hex[:10]}"
    build(tag, base=python_base)
    yield tag
    docker("image", "rm", "--force", tag, check=False)
