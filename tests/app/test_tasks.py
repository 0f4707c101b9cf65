"""Background tasks on the real queue (procrastinate in the test database): the booking confirmation, its
retries, the scheduled housekeeping, and jobs that outlive the worker that took them.

Workers run either in this process (`work`: until the queue is empty, as procrastinate's testing guide
does it) or as the image runs them (`app/start worker|scheduler`, in their own processes). Tests that need
time to pass (a retry's backoff, a dead worker's heartbeat going stale) move the timestamps back instead.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from airline.tasks import FINISHED_JOBS_KEPT_HOURS, clean_up, retry_stalled_jobs
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone
from flights.models import Airport, Flight, Passenger
from flights.tasks import send_booking_confirmation
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob
from procrastinate.exceptions import AlreadyEnqueued

from tests.app.conftest import HTTPS
from tests.app.processes import app_process, production_env
from tests.support.docker import free_port

pytestmark = [pytest.mark.postgres]

CONFIRMATION = "flights.tasks.send_booking_confirmation"
QUEUE_TABLES = (
    "procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers, procrastinate_workers"
)


@pytest.fixture
def queue(transactional_db: None) -> Iterator[None]:
    """Committed data (a worker sees only that), and an empty queue afterwards: the queue's tables are not
    Django models of the app, so the flush after each test leaves them alone."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {QUEUE_TABLES} CASCADE")


def work(queue_name: str) -> None:
    """Run a worker on queue_name in this process until no job there is due."""
    # Tasks run in threads that outlive the test: their connections must close after each task, not stay
    # for CONN_MAX_AGE (the test database could not be dropped). Every connection shares this dict.
    database = settings.DATABASES["default"]
    saved, database["CONN_MAX_AGE"] = database["CONN_MAX_AGE"], 0
    try:
        with app.replace_connector(app.connector.get_worker_connector()):
            app.run_worker(
                queues=[queue_name], wait=False, install_signal_handlers=False, listen_notify=False
            )
    finally:
        database["CONN_MAX_AGE"] = saved


def sql(query: str, *params: object) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def flight(queue: None) -> Flight:
    jfk = Airport.objects.create(code="JFK", city="New York")
    lhr = Airport.objects.create(code="LHR", city="London")
    return Flight.objects.create(origin=jfk, destination=lhr, duration=415)


@pytest.fixture
def hermione(queue: None) -> Passenger:
    return Passenger.objects.create(first="Hermione", last="Granger", email="hermione@airline.test")


def book(flight: Flight, passenger: Passenger) -> ProcrastinateJob:
    """Book through the site, as a browser does; return the one job the booking queued."""
    browser = Client(headers=HTTPS)
    assert browser.post(f"/{flight.id}/book/", {"passenger": passenger.id}).status_code == 302
    (job,) = ProcrastinateJob.objects.filter(task_name=CONFIRMATION)
    return job


def test_the_worker_sends_the_confirmation_of_a_booking(flight: Flight, hermione: Passenger) -> None:
    job = book(flight, hermione)
    assert not mail.outbox
    work("default")
    (message,) = mail.outbox
    assert message.to == ["hermione@airline.test"]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.subject == f"You are booked on flight {flight.id}: JFK to LHR"
    assert f"you are booked on flight {flight.id} from New York (JFK) to London (LHR)" in message.body
    assert "Dear Hermione Granger," in message.body
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("succeeded", 1)


def test_a_passenger_without_an_address_is_booked_with_no_mail(flight: Flight, queue: None) -> None:
    ron = Passenger.objects.create(first="Ron", last="Weasley")
    job = book(flight, ron)
    work("default")
    assert not mail.outbox
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_a_failing_mail_server_is_retried_with_backoff_then_the_job_is_failed(
    flight: Flight, hermione: Passenger
) -> None:
    job = book(flight, hermione)
    waits = []
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=free_port(),
    ):
        for attempt in range(1, 6):
            work("default")
            job.refresh_from_db()
            assert job.attempts == attempt
            if job.status == "failed":
                break
            assert job.status == "todo"
            waits.append(round((job.scheduled_at - timezone.now()).total_seconds()))
            # The backoff passes.
            sql("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = %s", job.id)
    assert (job.status, job.attempts) == ("failed", 5)
    assert waits == [5, 25, 125, 625]
    assert not mail.outbox

    # Visible to the operators, with the error, in the admin's list of jobs.
    admin = Client(headers=HTTPS)
    admin.force_login(User.objects.create_superuser("admin", "admin@airline.test", "unused-password"))
    listed = admin.get("/admin/procrastinate/procrastinatejob/", {"status": "failed"}).content.decode()
    assert CONFIRMATION in listed


def test_a_booking_that_is_gone_fails_at_once(flight: Flight, hermione: Passenger) -> None:
    job = book(flight, hermione)
    hermione.delete()
    work("default")
    job.refresh_from_db()
    assert (job.status, job.attempts) == ("failed", 1)  # Passenger.DoesNotExist: no retry would help


def test_the_schedule_is_registered_on_the_scheduler_queue() -> None:
    app.perform_import_paths()  # what every worker does when it starts
    schedule = {p.task.name: (p.cron, p.task.queue) for p in app.periodic_registry.periodic_tasks.values()}
    assert schedule == {
        "airline.tasks.clean_up": ("0 3 * * *", "scheduled"),
        "airline.tasks.retry_stalled_jobs": ("* * * * *", "scheduled"),
    }


def finished_job(status: str, hours_ago: float) -> int:
    """A job of the confirmation task that finished (status) that many hours ago; its id."""
    job_id = send_booking_confirmation.configure(queue="archive").defer(passenger_id=0, flight_id=0)
    sql(
        "UPDATE procrastinate_jobs SET status = %s WHERE id = %s", status, job_id
    )  # the trigger adds an event
    sql(
        "UPDATE procrastinate_events SET at = now() - make_interval(secs => %s) WHERE job_id = %s",
        hours_ago * 3600,
        job_id,
    )
    return job_id


def test_the_clean_up_removes_expired_sessions_and_old_succeeded_jobs(queue: None) -> None:
    now = timezone.now()
    Session.objects.create(session_key="expired", session_data="", expire_date=now - timedelta(minutes=1))
    Session.objects.create(session_key="live", session_data="", expire_date=now + timedelta(days=1))
    old = finished_job("succeeded", FINISHED_JOBS_KEPT_HOURS + 1)
    recent = finished_job("succeeded", FINISHED_JOBS_KEPT_HOURS - 1)
    failed = finished_job("failed", FINISHED_JOBS_KEPT_HOURS + 1)

    clean_up.defer(timestamp=int(time.time()))
    work("scheduled")

    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]
    remaining = set(ProcrastinateJob.objects.values_list("id", flat=True))
    assert old not in remaining
    assert {recent, failed} <= remaining
    assert ProcrastinateJob.objects.get(task_name="airline.tasks.clean_up").status == "succeeded"


def test_a_job_whose_worker_was_killed_mid_task_runs_again(
    flight: Flight, hermione: Passenger, test_database_url: str, tmp_path: Path
) -> None:
    job = book(flight, hermione)
    # The task blocks on its first query while this lock is held: the worker is killed mid-task.
    with psycopg.connect(test_database_url) as blocker:
        blocker.execute("LOCK TABLE flights_passenger IN ACCESS EXCLUSIVE MODE")
        env = production_env(DATABASE_URL=test_database_url)
        with app_process("worker", env, tmp_path / "worker.log") as worker:
            deadline = time.monotonic() + 60
            while ProcrastinateJob.objects.get(pk=job.id).status != "doing":
                assert worker.process.poll() is None, worker.output()
                assert time.monotonic() < deadline, f"the worker took no job:\n{worker.output()}"
                time.sleep(0.2)
            worker.signal(signal.SIGKILL)
            worker.process.wait(timeout=30)
        blocker.rollback()
    job.refresh_from_db()
    assert job.status == "doing"  # taken, unfinished, by a worker that is gone: stalled, not lost

    # The dead worker's heartbeat (every 10 s while alive) goes stale: 30 s pass.
    sql("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '31 seconds'")
    # Its tick is due; the killed worker's own periodic deferrer may have queued it already.
    with contextlib.suppress(AlreadyEnqueued):
        retry_stalled_jobs.defer(timestamp=int(time.time()))
    work("scheduled")
    job.refresh_from_db()
    assert job.status == "todo"

    work("default")
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert [message.to for message in mail.outbox] == [["hermione@airline.test"]]


def test_two_schedulers_run_each_scheduled_tick_once(
    queue: None, test_database_url: str, tmp_path: Path
) -> None:
    env = production_env(DATABASE_URL=test_database_url, CLEANUP_CRON="* * * * * *")  # every second
    with (
        app_process("scheduler", env, tmp_path / "one.log") as one,
        app_process("scheduler", env, tmp_path / "two.log") as two,
    ):
        deadline = time.monotonic() + 60
        while (
            ProcrastinateJob.objects.filter(task_name="airline.tasks.clean_up", status="succeeded").count()
            < 4
        ):
            assert time.monotonic() < deadline, one.output() + two.output()
            time.sleep(0.2)
        # SIGTERM: both finish what they run and stop cleanly.
        assert (one.stop(), two.stop()) == (0, 0), one.output() + two.output()

    runs = sql(
        "SELECT args->>'timestamp', count(*), min(status::text), max(attempts) FROM procrastinate_jobs "
        "WHERE task_name = 'airline.tasks.clean_up' GROUP BY 1"
    )
    assert len(runs) >= 4
    assert all(count == 1 for _, count, _, _ in runs), runs
    assert all(attempts <= 1 for *_, attempts in runs), runs
    deferred_by = [
        log for log in (one.output(), two.output()) if "Periodic job airline.tasks.clean_up" in log
    ]
    assert len(deferred_by) == 2, "both schedulers deferred the clean-up"
