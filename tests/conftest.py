"""Session fixtures for the services the tests use for real: a Docker engine and PostgreSQL.

With REQUIRE_DOCKER=1 (set by .ci/run) a missing engine or database is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker import PYTHON_BASE, SCRIPTS, docker, engine_host
from tests.support.required import unavailable


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[str]:
    """The DOCKER_HOST of a running engine: the one given, or the project's own, started if needed."""
    host = engine_host()
    os.environ["DOCKER_HOST"] = host
    try:
        docker("version", "--format", "{{.Server.Version}}", timeout=20)
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired):
        started = subprocess.run(
            [SCRIPTS / "docker-engine", "start"], capture_output=True, text=True, check=False
        )
        if started.returncode != 0:
            unavailable("the Docker engine", started.stderr.strip() or "scripts/docker-engine failed")
        os.environ["DOCKER_HOST"] = host = started.stdout.strip()
    yield host


@pytest.fixture(scope="session")
def python_base(docker_engine: str) -> str:
    """The stand-in python base image, built once with debootstrap and kept by the engine."""
    subprocess.run([SCRIPTS / "standin-image", PYTHON_BASE], check=True, capture_output=True)
    return PYTHON_BASE


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL role that may create databases (TEST_DATABASE_URL or scripts/local-postgres)."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    started = subprocess.run([SCRIPTS / "local-postgres"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        unavailable("PostgreSQL", started.stderr.strip())
    return started.stdout.strip()


@pytest.fixture(scope="session")
def pulumi_bin() -> Path:
    """The bin directory of scripts/install-pulumi's CLI and plugins (built once per machine, then cached)."""
    installed = subprocess.run([SCRIPTS / "install-pulumi"], capture_output=True, text=True, check=False)
    bin_dir = Path(installed.stdout.splitlines()[-1]) if installed.stdout.strip() else None
    if installed.returncode != 0 or bin_dir is None or not (bin_dir / "pulumi").exists():
        unavailable(
            "the Pulumi CLI", installed.stderr.strip()[-600:] or "scripts/install-pulumi printed nothing"
        )
    return bin_dir
