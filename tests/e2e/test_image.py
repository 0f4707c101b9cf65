"""The production image, end to end on a real Docker engine and PostgreSQL.

The image is built once per module on the stand-in base; every test gets a fresh database and the
containers it starts are removed after it. Pages are requested the way the TLS-terminating proxy in
front of the app forwards them (X-Forwarded-Proto: https); /healthz is probed over plain HTTP.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.e2e.app_image import (
    Containers,
    fresh_database,
    new_secret_key,
    prepared_database,
    production_env,
)
from tests.support.docker import docker, free_port, wait_http

pytestmark = pytest.mark.docker

PROXIED = {"X-Forwarded-Proto": "https"}
ONE_YEAR = 365 * 24 * 3600


@pytest.fixture(scope="module")
def image(app_image: str) -> str:
    return app_image


@pytest.fixture
def containers(image: str) -> Iterator[Containers]:
    started = Containers(image)
    yield started
    started.close()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def secret_key() -> str:
    return new_secret_key()


@pytest.fixture
def app_env(database: str, secret_key: str) -> dict[str, str]:
    return production_env(database, free_port(), secret_key)


@pytest.fixture
def site(containers: Containers, app_env: dict[str, str]) -> str:
    """The base URL of the image's web process on a migrated database with the sample data."""
    prepared_database(containers, app_env)
    containers.serve(app_env)
    return f"http://127.0.0.1:{app_env['PORT']}"


def rows(database: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute(query).fetchall()


def test_release_command_migrates_and_a_second_run_changes_nothing(
    containers: Containers, app_env: dict[str, str], database: str
) -> None:
    containers.once("python", "manage.py", "migrate", "--noinput", env=app_env)
    tables = {
        name for (name,) in rows(database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"django_migrations", "flights_airport", "flights_flight", "flights_passenger"} <= tables
    applied = rows(database, "SELECT app, name FROM django_migrations ORDER BY id")
    assert ("flights", "0001_initial") in applied

    # Heroku runs the release phase under an arbitrary uid: the second run uses one.
    again = containers.once("python", "manage.py", "migrate", "--noinput", env=app_env, user="12345")
    assert "No migrations to apply." in again.stdout
    assert rows(database, "SELECT app, name FROM django_migrations ORDER BY id") == applied


def test_a_heroku_release_dyno_runs_the_migrations_with_the_image_command(
    containers: Containers, app_env: dict[str, str], database: str
) -> None:
    # A container app's release dyno runs the image's CMD (no command of its own) under an arbitrary uid.
    released = containers.once(env={**app_env, "DYNO": "release.4711"}, user="12345")
    assert "Applying flights.0001_initial... OK" in released.stdout
    assert ("flights", "0001_initial") in rows(database, "SELECT app, name FROM django_migrations")

    # A web dyno runs the same CMD and serves.
    containers.serve({**app_env, "DYNO": "web.1"}, user="12345")


def test_flight_list_shows_the_sample_data(
    site: str, containers: Containers, app_env: dict[str, str]
) -> None:
    flights = rows(
        app_env["DATABASE_URL"],
        "SELECT f.id, o.city, o.code, d.city, d.code FROM flights_flight f "
        "JOIN flights_airport o ON o.id = f.origin_id JOIN flights_airport d ON d.id = f.destination_id",
    )
    assert flights, "load_sample_data loaded no flight"
    page = requests.get(f"{site}/", headers=PROXIED, timeout=10)
    assert page.status_code == 200
    text = html.unescape(page.text)
    for flight_id, origin_city, origin, destination_city, destination in flights:
        assert (
            f"Flight {flight_id}</a>: {origin_city} ({origin}) to {destination_city} ({destination})" in text
        )

    # The sample data command is idempotent: a second run adds no row.
    containers.once("python", "manage.py", "load_sample_data", env=app_env)
    assert len(rows(app_env["DATABASE_URL"], "SELECT id FROM flights_flight")) == len(flights)


def passengers_on(page: str) -> list[str]:
    listed = re.search(r'<ul class="passengers">(.*?)</ul>', page, re.S)
    assert listed, "the flight page lists no passengers section"
    return [html.unescape(name).strip() for name in re.findall(r"<li>(.*?)</li>", listed.group(1), re.S)]


def test_booking_needs_the_csrf_token_and_then_shows_the_passenger(
    site: str, app_env: dict[str, str]
) -> None:
    ((flight_id,),) = rows(app_env["DATABASE_URL"], "SELECT min(id) FROM flights_flight")
    flight_url = f"{site}/{flight_id}/"
    page = requests.get(flight_url, headers=PROXIED, timeout=10)
    assert page.status_code == 200
    # CSRF_COOKIE_SECURE: the cookie is marked Secure, so it is read from the answer and sent back by hand.
    csrf_cookie = page.cookies.get("csrftoken")
    assert csrf_cookie, f"no csrftoken cookie in {page.headers.get('Set-Cookie')!r}"
    assert "secure" in page.headers["Set-Cookie"].lower()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "the booking form carries no CSRF token"
    choices = re.findall(r'<option value="(\d+)">([^<]+)</option>', page.text)
    assert choices, "the booking form offers no passenger"
    passenger_id, name = choices[0][0], html.unescape(choices[0][1]).strip()
    assert name not in passengers_on(page.text)

    origin = f"https://127.0.0.1:{app_env['PORT']}"
    book = f"{site}/{flight_id}/book/"
    posted = {"passenger": passenger_id}
    forged = requests.post(book, data=posted, headers={**PROXIED, "Origin": origin}, timeout=10)
    assert forged.status_code == 403
    assert name not in passengers_on(requests.get(flight_url, headers=PROXIED, timeout=10).text)

    booked = requests.post(
        book,
        data={**posted, "csrfmiddlewaretoken": token.group(1)},
        headers={**PROXIED, "Origin": origin, "Cookie": f"csrftoken={csrf_cookie}"},
        allow_redirects=False,
        timeout=10,
    )
    assert booked.status_code == 302, booked.text[:2000]
    assert booked.headers["Location"] == f"/{flight_id}/"
    assert name in passengers_on(requests.get(flight_url, headers=PROXIED, timeout=10).text)


def test_static_files_have_hashed_names_and_a_far_future_cache_header(site: str) -> None:
    page = requests.get(f"{site}/", headers=PROXIED, timeout=10)
    linked = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert linked, "the flight list links no static file"
    for path in linked:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", path), f"{path} has no content hash in its name"
        answer = requests.get(f"{site}{path}", headers={**PROXIED, "Accept-Encoding": "gzip"}, timeout=10)
        assert answer.status_code == 200
        max_age = re.search(r"max-age=(\d+)", answer.headers.get("Cache-Control", ""))
        assert max_age and int(max_age.group(1)) >= ONE_YEAR, answer.headers.get("Cache-Control")


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own on a free loopback port, which the test may stop and start."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
        if not found:
            pytest.fail(
                "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)"
            )
        self.bin = found[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="flightdeck-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.password = uuid.uuid4().hex
        shutil.chown(self.dir, "postgres", "postgres")
        password_file = self.dir / "password"
        password_file.write_text(self.password)
        shutil.chown(password_file, "postgres", "postgres")
        self.as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={password_file}",
        )  # fmt: skip
        self.url = f"postgres://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def as_postgres(self, program: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / program), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self.as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w", "start"
        )

    def stop(self) -> None:
        self.as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    if shutil.which("runuser") is None:
        pytest.fail("runuser is needed to run a throwaway PostgreSQL cluster as the postgres user")
    cluster = ThrowawayPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def test_healthz_turns_503_while_the_database_is_away(
    containers: Containers, throwaway_postgres: ThrowawayPostgres, secret_key: str
) -> None:
    env = production_env(throwaway_postgres.url, free_port(), secret_key)
    containers.serve(env)
    healthz = f"http://127.0.0.1:{env['PORT']}/healthz"
    assert json.loads(requests.get(healthz, timeout=10).text)["status"] == "ok"

    throwaway_postgres.stop()
    wait_http(healthz, status=503, timeout=30)
    throwaway_postgres.start()
    wait_http(healthz, status=200, timeout=30)


def test_runs_as_non_root_and_under_an_arbitrary_uid(
    image: str, containers: Containers, app_env: dict[str, str]
) -> None:
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    assert user and user.split(":")[0] not in {"0", "root"}, f"image user {user!r}"
    assert containers.once("id", "-u", env={}).stdout.strip() not in {"", "0"}

    # Heroku runs dynos under an arbitrary uid with no passwd entry: migrate, serve, answer, use static files.
    prepared_database(containers, app_env)
    container = containers.serve(app_env, user="12345")
    assert docker("exec", container, "id", "-u").strip() == "12345"
    site = f"http://127.0.0.1:{app_env['PORT']}"
    page = requests.get(f"{site}/", headers=PROXIED, timeout=10)
    assert page.status_code == 200
    stylesheet = re.search(r'href="(/static/[^"]+\.css)"', page.text)
    assert stylesheet
    assert requests.get(f"{site}{stylesheet.group(1)}", headers=PROXIED, timeout=10).status_code == 200


def test_docker_healthcheck_passes_behind_a_public_host_name(
    containers: Containers, app_env: dict[str, str]
) -> None:
    """Django checks the Host header of /healthz too: the image's probe must send an allowed host."""
    env = {**app_env, "ALLOWED_HOSTS": "airline.example.com", "CSRF_TRUSTED_ORIGINS": ""}
    prepared_database(containers, env)
    container = containers.run(env=env, user="12345")
    healthz = f"http://127.0.0.1:{env['PORT']}/healthz"
    wait_http(healthz, status=400, timeout=60)  # serving, and refusing the loopback host name
    for _ in range(60):
        status = docker("inspect", "--format", "{{.State.Health.Status}}", container).strip()
        if status != "starting":
            break
        time.sleep(1)
    assert status == "healthy", docker("inspect", "--format", "{{json .State.Health}}", container)
    assert requests.get(healthz, headers={"Host": "airline.example.com"}, timeout=10).status_code == 200


def layer_files(saved: Path) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file in every layer of a `docker save` archive, and its JSON files."""
    with tarfile.open(saved) as archive:
        for member in archive:
            if not member.isfile():
                continue
            data = archive.extractfile(member).read()
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for entry in layer:
                        if entry.isfile():
                            yield f"{member.name}:{entry.name}", layer.extractfile(entry).read()
            else:
                yield member.name, data


def test_the_secret_key_is_in_no_layer_history_or_config(
    image: str, site: str, secret_key: str, tmp_path: Path
) -> None:
    # The site fixture ran migrate, load_sample_data and the web process with this key.
    saved = tmp_path / "image.tar"
    docker("save", "--output", str(saved), image)
    needle = secret_key.encode()
    scanned, found_wsgi = 0, False
    for name, content in layer_files(saved):
        assert needle not in content, f"the run-time SECRET_KEY is in {name}"
        found_wsgi = found_wsgi or name.endswith("app/airline/wsgi.py")
        scanned += 1
    assert found_wsgi and scanned > 1000, f"the scan saw {scanned} files, not the image's layers"

    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    config = docker("image", "inspect", image)
    for where, text in (("docker history", history), ("docker image inspect", config)):
        assert secret_key not in text, f"the run-time SECRET_KEY is in {where}"
    # The build's collectstatic key is generated inside its RUN: no key value is written in any step.
    assert not re.search(r"SECRET_KEY=(?!\"\$\()", history), history
    assert not any(e.startswith("SECRET_KEY=") for e in json.loads(config)[0]["Config"]["Env"])


def test_deploy_checks_pass_with_production_settings(containers: Containers, app_env: dict[str, str]) -> None:
    checked = containers.once(
        "python", "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=app_env, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_secret_files_become_the_processes_environment(
    containers: Containers, app_env: dict[str, str], tmp_path: Path
) -> None:
    """Swarm mounts each secret as /run/secrets/<NAME>; the entrypoint exports those named like variables."""
    mounted = tmp_path / "secrets"
    mounted.mkdir()
    (mounted / "SECRET_KEY").write_text(app_env["SECRET_KEY"] + "\n")  # a trailing newline is dropped
    (mounted / "DATABASE_URL").write_text(app_env["DATABASE_URL"])
    (mounted / "lower_case").write_text("not a variable name")
    (mounted / "NOT-A-NAME").write_text("not a variable name")
    (mounted / "DIRECTORY").mkdir()
    for path in mounted.iterdir():
        path.chmod(0o755 if path.is_dir() else 0o644)
    volumes = [f"{mounted}:/run/secrets:ro"]
    env = {k: v for k, v in app_env.items() if k not in {"SECRET_KEY", "DATABASE_URL"}}

    shown = containers.once("env", env=env, volumes=volumes).stdout.splitlines()
    assert f"SECRET_KEY={app_env['SECRET_KEY']}" in shown
    assert f"DATABASE_URL={app_env['DATABASE_URL']}" in shown
    assert not [line for line in shown if line.startswith(("lower_case=", "NOT-A-NAME=", "DIRECTORY="))]

    # The release and the web process take their settings from those files alone.
    containers.once("/app/start", "release", env=env, volumes=volumes)
    site = f"http://127.0.0.1:{env['PORT']}"
    containers.serve(env, volumes=volumes)
    assert requests.get(f"{site}/", headers=PROXIED, timeout=10).status_code == 200


def stop(container: str) -> float:
    """`docker stop` (SIGTERM, SIGKILL after 30 s); the seconds it took."""
    started = time.monotonic()
    docker("stop", "--time", "30", container)
    return time.monotonic() - started


def test_with_drain_seconds_the_web_process_serves_on_after_sigterm_then_stops_cleanly(
    containers: Containers, app_env: dict[str, str]
) -> None:
    prepared_database(containers, app_env)
    healthz = f"http://127.0.0.1:{app_env['PORT']}/healthz"
    draining = containers.serve({**app_env, "DRAIN_SECONDS": "3"})
    stopping = subprocess.Popen(["docker", "stop", "--time", "30", draining])
    started = time.monotonic()
    time.sleep(1.5)
    assert requests.get(healthz, timeout=5).status_code == 200, "it stopped serving within the drain"
    assert stopping.wait(timeout=60) == 0
    assert time.monotonic() - started >= 3
    assert docker("inspect", "--format", "{{.State.ExitCode}}", draining).strip() == "0"

    # Without a drain, gunicorn gets SIGTERM at once and stops as fast.
    direct = containers.serve(app_env)
    assert stop(direct) < 3
    assert docker("inspect", "--format", "{{.State.ExitCode}}", direct).strip() == "0"


def test_a_container_named_for_a_process_type_runs_it(
    containers: Containers, app_env: dict[str, str]
) -> None:
    released = containers.once(env={**app_env, "PROCESS_TYPE": "release"})
    assert "Applying flights.0001_initial... OK" in released.stdout
