"""Build the app image and run it against PostgreSQL: for the image's end-to-end tests and its benchmark."""

from __future__ import annotations

import functools
import os
import re
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg import sql

from tests.support.docker import ROOT, SCRIPTS, docker, wait_http

APP = ROOT / "app"


@functools.cache
def build_cli() -> str:
    """A docker client that builds with BuildKit, which `RUN --mount` needs (scripts/docker-engine cli)."""
    return subprocess.run(
        [SCRIPTS / "docker-engine", "cli"], capture_output=True, text=True, check=True
    ).stdout.strip()


def build(
    tag: str,
    *,
    base: str,
    context: Path = APP,
    dockerfile: Path | None = None,
    timeout: float = 900,
) -> float:
    """Build context into tag on the stand-in base (host network: the build reaches PyPI); return seconds."""
    command = [build_cli(), "build", "--network", "host", "--progress", "plain"]
    command += ["--build-arg", f"PYTHON_IMAGE={base}", "--tag", tag]
    if dockerfile is not None:
        command += ["--file", str(dockerfile)]
    started = time.monotonic()
    result = subprocess.run(
        [*command, str(context)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"building {tag} failed:\n{result.stderr[-6000:]}")
    return elapsed


def database_url(server_url: str, name: str) -> str:
    """server_url with its database replaced by name, host kept on loopback."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of server_url (its role needs CREATEDB); dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def production_env(database: str, port: int, secret_key: str) -> dict[str, str]:
    """The environment a production deployment gives the app, for a client on 127.0.0.1:port.

    TLS ends at the proxy in front (Heroku's router, Caddy): the app trusts its X-Forwarded-Proto
    header and redirects plain HTTP, exactly as deployed; test clients send the header the proxy would.
    """
    return {
        "DATABASE_URL": database,
        "SECRET_KEY": secret_key,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": f"https://127.0.0.1:{port},https://localhost:{port}",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECURE_SSL_REDIRECT": "1",
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
    }


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)


def env_args(env: Mapping[str, str]) -> list[str]:
    """`-e NAME` flags: docker takes the values from its own environment, so none is on a command line."""
    return [arg for name in env for arg in ("-e", name)]


class Containers:
    """The containers one test or benchmark starts (host network), all removed by close()."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.started: list[str] = []

    def run(
        self, *command: str, env: Mapping[str, str], user: str | None = None, volumes: Sequence[str] = ()
    ) -> str:
        """Start a container in the background (volumes: `-v` specs); return its id."""
        options = ["--detach", "--network", "host", *env_args(env)]
        options += [arg for volume in volumes for arg in ("--volume", volume)]
        if user is not None:
            options += ["--user", user]
        container = docker(
            "run", *options, self.image, *command, env={**os.environ, **env}, timeout=60
        ).strip()
        self.started.append(container)
        return container

    def once(
        self,
        *command: str,
        env: Mapping[str, str],
        user: str | None = None,
        check: bool = True,
        volumes: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion in a new container (removed afterwards)."""
        options = ["--rm", "--network", "host", *env_args(env)]
        options += [arg for volume in volumes for arg in ("--volume", volume)]
        if user is not None:
            options += ["--user", user]
        result = subprocess.run(
            ["docker", "run", *options, self.image, *command],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
            check=False,
        )
        if check and result.returncode != 0:
            what = " ".join(command) or "the image's CMD"
            raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def serve(
        self,
        env: Mapping[str, str],
        *command: str,
        user: str | None = None,
        timeout: float = 90,
        volumes: Sequence[str] = (),
    ) -> str:
        """Start the web process (the image's CMD unless command is given) and wait until /healthz is 200."""
        container = self.run(*command, env=env, user=user, volumes=volumes)
        try:
            wait_http(f"http://127.0.0.1:{env['PORT']}/healthz", timeout=timeout)
        except TimeoutError as err:
            raise TimeoutError(f"{err}\ncontainer logs:\n{logs(container)}") from err
        return container

    def close(self) -> None:
        for container in self.started:
            docker("rm", "--force", "--volumes", container, check=False, timeout=60)
        self.started.clear()


def prepared_database(containers: Containers, env: Mapping[str, str]) -> None:
    """Migrate (the release command) and load the sample data into env's DATABASE_URL."""
    containers.once("python", "manage.py", "migrate", "--noinput", env=env)
    containers.once("python", "manage.py", "load_sample_data", env=env)


def logs(container: str) -> str:
    """The last lines a container wrote, stdout and stderr together."""
    result = subprocess.run(
        ["docker", "logs", "--tail", "60", container],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout


def book_a_passenger(site: str, port: str, flight_id: int) -> int:
    """Book the first passenger the flight's form offers, as a browser behind the TLS proxy does (CSRF
    cookie and token from the flight page); return the passenger's id."""
    proxied = {"X-Forwarded-Proto": "https"}
    page = requests.get(f"{site}/{flight_id}/", headers=proxied, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    passenger = re.search(r'<option value="(\d+)">', page.text)
    assert token and passenger, page.text
    booked = requests.post(
        f"{site}/{flight_id}/book/",
        data={"passenger": passenger.group(1), "csrfmiddlewaretoken": token.group(1)},
        headers={
            **proxied,
            "Origin": f"https://127.0.0.1:{port}",
            "Cookie": f"csrftoken={page.cookies['csrftoken']}",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert booked.status_code == 302, booked.text[:2000]
    return int(passenger.group(1))
