"""The worker process type, measured on this machine's PostgreSQL, as the image runs it (`app/start`):

- queue throughput: a bounded batch of booking confirmations (the real task, rendered and written by the
  file mail backend) worked off by 1 and 2 worker processes, and by 1 process taking 4 jobs at once;
  tasks/s from the first job's start to the last one's end (procrastinate's own event times), so the
  workers' start-up is not counted;
- latency from a booking POST (through the site, as a browser behind the TLS proxy sends it) to its
  confirmation sent: p50/p99 over a bounded count of bookings, one at a time, with one idle worker.

Everything runs on 127.0.0.1 in a fresh database that is dropped afterwards; every wait is bounded.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import requests

from tests.app.processes import APP_DIR, HOST, AppProcess, manage, production_env
from tests.e2e.app_image import fresh_database
from tests.support.docker import SCRIPTS, free_port

JOBS = 500
BOOKINGS = 50
# (worker processes, jobs each takes at once: PROCRASTINATE_WORKER_CONCURRENCY)
WORKER_SETTINGS = [(1, 1), (2, 1), (1, 4)]
TIMEOUT = 120
CONFIRMATION = "flights.tasks.send_booking_confirmation"
PROXIED = {"Host": HOST, "X-Forwarded-Proto": "https", "Origin": f"https://{HOST}"}


def rows(database: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def app_copy(destination: Path) -> Path:
    """The app as the image has it, static files collected (the site's pages need their manifest)."""
    app = Path(shutil.copytree(APP_DIR, destination / "app", ignore=shutil.ignore_patterns("staticfiles")))
    collected = manage("collectstatic", "--noinput", env=production_env(), cwd=app)
    if collected.returncode != 0:
        raise RuntimeError(f"collectstatic failed:\n{collected.stderr}")
    return app


@contextmanager
def processes(app: Path, kind: str, count: int, env: Mapping[str, str], logs: Path) -> Iterator[None]:
    """count processes of a type from the copy's own app/start, stopped (SIGTERM) when the block ends."""
    started = [
        AppProcess(kind, dict(env), logs / f"{kind}-{i}-{time.monotonic_ns()}.log", start=app / "start")
        for i in range(count)
    ]
    try:
        yield
    finally:
        for process in started:
            process.stop()


def wait_until(what: str, done: Any, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def sample_data(database: str, passengers: int) -> tuple[int, list[int]]:
    """One flight and that many passengers with addresses; (flight id, passenger ids)."""
    with psycopg.connect(database, autocommit=True) as conn:
        ids = [
            conn.execute(
                "INSERT INTO flights_airport (code, city) VALUES (%s, %s) RETURNING id", (code, city)
            ).fetchone()[0]  # type: ignore[index]
            for code, city in (("JFK", "New York"), ("LHR", "London"))
        ]
        (flight,) = conn.execute(
            "INSERT INTO flights_flight (origin_id, destination_id, duration) "
            "VALUES (%s, %s, 415) RETURNING id",
            ids,
        ).fetchone()  # type: ignore[misc]
        people = [
            conn.execute(
                "INSERT INTO flights_passenger (first, last, email) VALUES ('Bench', %s, %s) RETURNING id",
                (str(i), f"bench{i}@example.com"),
            ).fetchone()[0]  # type: ignore[index]
            for i in range(passengers)
        ]
    return flight, people


def queue_confirmations(app: Path, env: Mapping[str, str], flight: int, passengers: list[int]) -> None:
    """JOBS confirmation jobs in one batch, as bookings would queue them."""
    code = (
        "from flights.tasks import send_booking_confirmation as task; "
        f"task.batch_defer(*({{'passenger_id': p, 'flight_id': {flight}}} for p in {passengers!r}))"
    )
    deferred = manage("shell", "--no-imports", "-c", code, env=dict(env), cwd=app)
    if deferred.returncode != 0:
        raise RuntimeError(f"deferring the jobs failed:\n{deferred.stderr}")


def measure_throughput(app: Path, database: str, env: Mapping[str, str], logs: Path) -> list[dict[str, Any]]:
    flight, passengers = sample_data(database, 50)
    results = []
    for count, concurrency in WORKER_SETTINGS:
        rows(database, "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")
        queue_confirmations(app, env, flight, [passengers[i % len(passengers)] for i in range(JOBS)])
        worker_env = {**env, "PROCRASTINATE_WORKER_CONCURRENCY": str(concurrency)}
        with processes(app, "worker", count, worker_env, logs):
            wait_until(
                f"{JOBS} jobs done by {count} x {concurrency}",
                lambda: (
                    rows(database, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")[0][0]
                    == JOBS
                ),
            )
        ((first, last, failed),) = rows(
            database,
            "SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded'), "
            "count(*) FILTER (WHERE type = 'failed') FROM procrastinate_events",
        )
        seconds = (last - first).total_seconds()
        results.append(
            {
                "worker_processes": count,
                "jobs_at_once_each": concurrency,
                "jobs": JOBS,
                "failed": failed,
                "seconds": round(seconds, 2),
                "tasks_per_s": round(JOBS / seconds, 1),
            }
        )
    return results


def measure_latency(app: Path, database: str, env: Mapping[str, str], logs: Path) -> dict[str, Any]:
    rows(database, "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")
    rows(database, "TRUNCATE flights_airport, flights_flight, flights_passenger CASCADE")
    flight, passengers = sample_data(database, BOOKINGS)
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    latencies = []
    with ExitStack() as stack:
        stack.enter_context(processes(app, "web", 1, {**env, "PORT": str(port)}, logs))
        stack.enter_context(processes(app, "worker", 1, env, logs))
        wait_until("the web process", lambda: _answers(f"{site}/healthz"))
        page = requests.get(f"{site}/{flight}/", headers=PROXIED, timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text
        # The CSRF cookie is Secure: a client over plain HTTP sends it back by hand, as the proxy would.
        headers = {**PROXIED, "Cookie": f"csrftoken={page.cookies['csrftoken']}"}
        for passenger in passengers:
            posted = time.time()
            booked = requests.post(
                f"{site}/{flight}/book/",
                data={"passenger": passenger, "csrfmiddlewaretoken": token.group(1)},
                headers=headers,
                allow_redirects=False,
                timeout=10,
            )
            assert booked.status_code == 302, booked.text[:2000]

            def sent(passenger: int = passenger) -> list[tuple[Any, ...]]:
                return rows(
                    database,
                    "SELECT e.at FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
                    "WHERE e.type = 'succeeded' AND (j.args->>'passenger_id')::int = %s",
                    passenger,
                )

            wait_until(f"the confirmation of passenger {passenger}", sent, timeout=30)
            latencies.append((sent()[0][0].timestamp() - posted) * 1000)
    latencies.sort()
    return {
        "bookings": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, round(0.99 * len(latencies)))], 1),
        "max_ms": round(latencies[-1], 1),
    }


def _answers(url: str) -> bool:
    try:
        return requests.get(url, headers={"Host": HOST}, timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or still loading the app
        return False


def run() -> dict[str, Any]:
    server = subprocess.run(
        [SCRIPTS / "local-postgres"], capture_output=True, text=True, check=True
    ).stdout.strip()
    started = time.monotonic()
    with fresh_database(server) as database, tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        app = app_copy(scratch_dir)
        mail = scratch_dir / "mail"
        env = production_env(DATABASE_URL=database, EMAIL_FILE_PATH=str(mail), LOG_LEVEL="WARNING")
        migrated = manage("migrate", "--noinput", env=env, cwd=app)
        if migrated.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrated.stderr}")
        throughput = measure_throughput(app, database, env, scratch_dir)
        latency = measure_latency(app, database, env, scratch_dir)
        # The file backend appends the messages of one second and connection to one file.
        mails_sent = sum(path.read_text().count("\nMessage-ID: ") for path in mail.iterdir())
    return {
        "task": f"{CONFIRMATION} to the file mail backend",
        "throughput": throughput,
        "booking_to_mail_latency": latency,
        "mails_sent": mails_sent,
        "bench_s": round(time.monotonic() - started, 1),
    }
