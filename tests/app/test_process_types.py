"""app/start (one image, every process type, declared once in app/Procfile) and app/entrypoint (secrets and
the drain before SIGTERM), run as the image runs them, with stand-ins for the commands they start."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.app.processes import APP_DIR

START = APP_DIR / "start"
ENTRYPOINT = APP_DIR / "entrypoint"
# What each stand-in prints: its name, arguments, working directory and process id.
STAND_IN = '#!/bin/sh\necho "$(basename "$0") $* | $(pwd) | $$"\n'
WEB = (
    "gunicorn airline.wsgi:application --bind 0.0.0.0:8000 --workers 2 --threads 4 --worker-tmp-dir /dev/shm "
    "--no-control-socket --log-level info --access-logfile -"
)
WORKER = "python manage.py procrastinate worker --name worker --queues default"
SCHEDULER = "python manage.py procrastinate worker --name scheduler --queues scheduled"
RELEASE = "python manage.py release"


@pytest.fixture
def stand_ins(tmp_path: Path) -> dict[str, str]:
    """An environment whose gunicorn and python only say how they were started."""
    for name in ("gunicorn", "python"):
        program = tmp_path / name
        program.write_text(STAND_IN)
        program.chmod(0o755)
    return {"PATH": f"{tmp_path}:/usr/bin:/bin"}


def start(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [START, *args], env=env, cwd="/", capture_output=True, text=True, timeout=30, check=False
    )


def started(env: dict[str, str], *args: str) -> str:
    """The command start ran; it ran in the app's directory, in start's own process (exec'd)."""
    result = start(env, *args)
    assert result.returncode == 0, result.stderr
    command, directory, _pid = result.stdout.strip().split(" | ")
    assert Path(directory) == APP_DIR
    return command


def test_the_procfile_declares_the_four_process_types() -> None:
    lines = (APP_DIR / "Procfile").read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["web", "worker", "scheduler", "release"]


def test_without_a_type_start_runs_web(stand_ins: dict[str, str]) -> None:
    assert started(stand_ins) == WEB
    tuned = started({**stand_ins, "PORT": "5000", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "1"})
    assert "--bind 0.0.0.0:5000 --workers 3 --threads 1 " in tuned


@pytest.mark.parametrize(
    ("dyno", "command"),
    [
        ("web.1", WEB),
        ("worker.2", WORKER),
        ("scheduler.1", SCHEDULER),
        ("release.4711", RELEASE),
        ("release-8f2a1c", RELEASE),  # Fir names release dynos so
    ],
)
def test_on_heroku_the_type_comes_from_the_dyno_name(
    stand_ins: dict[str, str], dyno: str, command: str
) -> None:
    assert started({**stand_ins, "DYNO": dyno}) == command


def test_an_argument_beats_process_type_which_beats_the_dyno_name(stand_ins: dict[str, str]) -> None:
    assert started({**stand_ins, "PROCESS_TYPE": "worker", "DYNO": "web.1"}) == WORKER
    assert started({**stand_ins, "PROCESS_TYPE": "worker"}, "scheduler") == SCHEDULER


def test_an_unknown_type_is_refused_with_the_list_of_types(stand_ins: dict[str, str]) -> None:
    for args, env in ((("bogus",), {}), ((), {"PROCESS_TYPE": "bogus"}), ((), {"DYNO": "bogus.1"})):
        result = start({**stand_ins, **env}, *args)
        assert result.returncode == 64
        assert result.stdout == ""
        assert result.stderr == (
            "start: unknown process type 'bogus'; app/Procfile declares: web, worker, scheduler, release\n"
        )


def test_start_replaces_itself_with_the_command(stand_ins: dict[str, str]) -> None:
    process = subprocess.Popen([START, "worker"], env=stand_ins, stdout=subprocess.PIPE, text=True)
    output, _ = process.communicate(timeout=30)
    assert output.strip().split(" | ")[2] == str(process.pid)  # no shell stays in between


def entrypoint(env: dict[str, str], *command: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ENTRYPOINT, *command],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_without_a_drain_the_entrypoint_becomes_the_command() -> None:
    process = entrypoint({}, "sh", "-c", "echo $$")
    output, _ = process.communicate(timeout=30)
    assert (process.returncode, output.strip()) == (0, str(process.pid))


# Records when it gets SIGTERM, then exits with 3.
TERMINATED = "trap 'date +%s.%N > \"$0\"; exit 3' TERM; echo ready; while :; do sleep 0.05; done"


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_with_a_drain_the_command_gets_sigterm_that_much_later(
    tmp_path: Path, signal_number: signal.Signals
) -> None:
    record = tmp_path / "terminated"
    process = entrypoint({"DRAIN_SECONDS": "2"}, "sh", "-c", TERMINATED, str(record))
    assert process.stdout and process.stdout.readline() == "ready\n"
    sent = time.time()
    process.send_signal(signal_number)
    time.sleep(1)
    assert not record.exists(), "the command was signalled before the drain ended"
    assert process.wait(timeout=30) == 3  # the command's own status
    assert 2 <= float(record.read_text()) - sent < 4


def test_with_a_drain_a_command_that_ends_by_itself_gives_its_status() -> None:
    process = entrypoint({"DRAIN_SECONDS": "5"}, "sh", "-c", "exit 7")
    started_at = time.monotonic()
    assert process.wait(timeout=30) == 7
    assert time.monotonic() - started_at < 4  # no drain without a signal


@pytest.mark.parametrize("drain", ["soon", "1.5", "-1"])
def test_a_drain_that_is_not_whole_seconds_is_refused(drain: str) -> None:
    process = entrypoint({"DRAIN_SECONDS": drain}, "true")
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 64
    assert f"entrypoint: DRAIN_SECONDS={drain} is not a whole number of seconds" in errors


def test_without_secrets_mounted_the_environment_is_passed_on() -> None:
    if Path("/run/secrets").exists():
        pytest.skip("this machine has a /run/secrets of its own (the image's tests cover the secrets)")
    process = entrypoint({"SECRET_KEY": "given"}, "sh", "-c", 'echo "$SECRET_KEY"')
    output, _ = process.communicate(timeout=30)
    assert output == "given\n"
