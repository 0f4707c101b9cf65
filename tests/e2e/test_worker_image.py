"""The image's worker and scheduler process types, end to end on a real Docker engine and PostgreSQL.

One image for every process type: the same containers as the web tests, started with `/app/start worker`
or `/app/start scheduler` (or PROCESS_TYPE). Mail goes to the file backend, in a directory of the test's
own mounted into the container. Every wait is bounded.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.app_image import (
    Containers,
    book_a_passenger,
    fresh_database,
    logs,
    new_secret_key,
    prepared_database,
    production_env,
)
from tests.support.docker import docker, free_port

pytestmark = pytest.mark.docker

CONFIRMATION = "flights.tasks.send_booking_confirmation"


@pytest.fixture
def containers(app_image: str) -> Iterator[Containers]:
    started = Containers(app_image)
    yield started
    started.close()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    """Where the containers' file backend writes (as uid 10001, hence open to all)."""
    directory = tmp_path / "mail"
    directory.mkdir()
    directory.chmod(0o777)
    return directory


@pytest.fixture
def env(database: str) -> dict[str, str]:
    """Production settings with mail to /mail, the mounted mail_dir, and the sample data loaded."""
    return {**production_env(database, free_port(), new_secret_key()), "EMAIL_FILE_PATH": "/mail"}


def rows(database: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute(query, params).fetchall()


def wait_for(what: str, done: Callable[[], object], timeout: float, container: str | None = None) -> float:
    """Poll done() until it is true; return the seconds it took, or fail naming what after timeout."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what}: not within {timeout} s" + (f"\n{logs(container)}" if container else ""))
        time.sleep(0.25)
    return time.monotonic() - started


def mails(mail_dir: Path) -> list[str]:
    return [path.read_text() for path in sorted(mail_dir.iterdir())]


def first_flight(database: str) -> int:
    ((flight_id,),) = rows(database, "SELECT min(id) FROM flights_flight")
    return int(str(flight_id))


def booked(containers: Containers, env: dict[str, str]) -> tuple[int, str]:
    """Serve the site, book a passenger onto the first flight; (job id of the confirmation, passenger's
    address)."""
    prepared_database(containers, env)
    containers.serve(env)
    passenger = book_a_passenger(
        f"http://127.0.0.1:{env['PORT']}", env["PORT"], first_flight(env["DATABASE_URL"])
    )
    ((email,),) = rows(env["DATABASE_URL"], "SELECT email FROM flights_passenger WHERE id = %s", passenger)
    ((job,),) = rows(
        env["DATABASE_URL"], "SELECT id FROM procrastinate_jobs WHERE task_name = %s", CONFIRMATION
    )
    return int(str(job)), str(email)


def job_status(env: dict[str, str], job: int) -> str:
    ((status,),) = rows(env["DATABASE_URL"], "SELECT status FROM procrastinate_jobs WHERE id = %s", job)
    return str(status)


def wait_succeeded(env: dict[str, str], job: int, worker: str) -> None:
    """The task sends the mail, then the worker records the job's end: wait for that write, bounded."""
    wait_for(f"job {job} recorded as succeeded", lambda: job_status(env, job) == "succeeded", 10, worker)


def test_a_worker_container_sends_a_bookings_confirmation(
    containers: Containers, env: dict[str, str], mail_dir: Path
) -> None:
    job, email = booked(containers, env)
    worker = containers.run(env={**env, "PROCESS_TYPE": "worker"}, volumes=[f"{mail_dir}:/mail"])
    wait_for("the confirmation mail", lambda: mails(mail_dir), timeout=30, container=worker)
    (message,) = mails(mail_dir)
    assert f"To: {email}" in message
    assert "Subject: You are booked on flight" in message
    wait_succeeded(env, job, worker)

    # The image's health check, run for the worker's PROCESS_TYPE: a live worker and its database.
    def health() -> str:
        return docker("inspect", "--format", "{{.State.Health.Status}}", worker).strip()

    wait_for("a healthy worker", lambda: health() != "starting", timeout=40)
    assert health() == "healthy", docker("inspect", "--format", "{{json .State.Health}}", worker)


def test_the_worker_health_check_fails_without_a_worker(containers: Containers, env: dict[str, str]) -> None:
    prepared_database(containers, env)
    web = containers.serve(env)
    probe = subprocess.run(
        ["docker", "exec", web, "python", "/app/healthcheck.py", "worker"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert probe.returncode == 1
    assert probe.stderr == "healthcheck: no procrastinate worker process runs here (worker)\n"


def test_a_worker_stopped_mid_task_loses_nothing(
    containers: Containers, env: dict[str, str], mail_dir: Path
) -> None:
    job, email = booked(containers, env)
    mount = [f"{mail_dir}:/mail"]
    with psycopg.connect(env["DATABASE_URL"]) as blocker:
        # The task's first query waits for this lock: the job is in flight when its worker is stopped.
        blocker.execute("LOCK TABLE flights_passenger IN ACCESS EXCLUSIVE MODE")
        first = containers.run("/app/start", "worker", env={**env, "LOG_LEVEL": "INFO"}, volumes=mount)
        wait_for("the first worker taking the job", lambda: job_status(env, job) == "doing", 60, first)
        # SIGTERM; the worker waits for its job, which does not end: SIGKILL after the grace period.
        docker("stop", "--time", "3", first)
        assert docker("inspect", "--format", "{{.State.ExitCode}}", first).strip() == "137"
        assert "Waiting for job to finish" in logs(first)
        blocker.rollback()
    assert job_status(env, job) == "doing"  # stalled, not lost
    assert not mails(mail_dir)

    # A new worker, and the scheduler: every 5 s it queues again the jobs of workers whose heartbeat is
    # 30 s old (procrastinate's default), so within about 40 s the job runs again.
    second = containers.run("/app/start", "worker", env=env, volumes=mount)
    scheduler = containers.run("/app/start", "scheduler", env={**env, "STALLED_JOBS_CRON": "* * * * * */5"})
    wait_for("the confirmation after the restart", lambda: mails(mail_dir), timeout=90, container=second)
    (message,) = mails(mail_dir)
    assert f"To: {email}" in message
    wait_succeeded(env, job, second)
    assert "retrying stalled job" in logs(scheduler)


def test_the_scheduler_runs_the_clean_up_on_a_short_schedule(
    containers: Containers, env: dict[str, str]
) -> None:
    containers.once("/app/start", "release", env=env)
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES "
            "('expired', '', now() - interval '1 minute'), ('live', '', now() + interval '1 day')"
        )
    scheduler = containers.run("/app/start", "scheduler", env={**env, "CLEANUP_CRON": "* * * * * */2"})

    def cleaned() -> bool:
        return rows(env["DATABASE_URL"], "SELECT session_key FROM django_session") == [("live",)]

    wait_for("expired sessions removed by the scheduler", cleaned, timeout=45, container=scheduler)
    runs = rows(
        env["DATABASE_URL"],
        "SELECT queue_name, status::text FROM procrastinate_jobs WHERE task_name = 'airline.tasks.clean_up'",
    )
    assert ("scheduled", "succeeded") in runs
    # SIGTERM: the scheduler finishes what it runs and stops cleanly.
    docker("stop", "--time", "20", scheduler)
    assert docker("inspect", "--format", "{{.State.ExitCode}}", scheduler).strip() == "0"


def test_start_with_an_unknown_type_lists_the_types(containers: Containers) -> None:
    result = containers.once("/app/start", "cron", env={}, check=False)
    assert result.returncode == 64
    assert "start: unknown process type 'cron'; app/Procfile declares: web, worker, scheduler, release" in (
        result.stderr
    )
