"""Run the app as its own process, the way the image does: manage.py commands and gunicorn, each with
exactly the environment a test gives it (nothing leaks in from the test session)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

APP_DIR = Path(__file__).resolve().parents[2] / "app"
# What the image ships of the app (the Dockerfile copies the app directory; these are its Python parts).
APP_PARTS = ("manage.py", "airline", "flights")
HOST = "airline.test"


def production_env(**overrides: str) -> dict[str, str]:
    """The variables a production deployment sets (behind a proxy that terminates TLS)."""
    env = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        # Not contacted by `check`; tests that serve requests pass a real one.
        "DATABASE_URL": "postgres://airline:unused@127.0.0.1:5432/airline",
    }
    env.update(overrides)
    return env


def process_env(env: dict[str, str]) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **env}


def manage(*args: str, env: dict[str, str], cwd: Path = APP_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=process_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_app(destination: Path) -> Path:
    """A copy of the app's code, so collectstatic can write its STATIC_ROOT without touching the tree."""
    for part in APP_PARTS:
        source = APP_DIR / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / part)
    return destination


@contextmanager
def gunicorn(app_dir: Path, port: int, env: dict[str, str]) -> Iterator[str]:
    """Serve app_dir with gunicorn on 127.0.0.1:port until the block ends; yields the base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "airline.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=app_dir,
        env=process_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/healthz", headers={"Host": HOST}, timeout=5)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError(f"gunicorn did not start:\n{process.communicate()[0]}") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout:
            process.stdout.close()


class AppProcess:
    """`app/start TYPE` as the image runs it, in a session of its own so a test can signal all of it."""

    def __init__(
        self, process_type: str, env: dict[str, str], log: Path, start: Path = APP_DIR / "start"
    ) -> None:
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [start, process_type],
                env=process_env(env),
                stdout=output,  # a file, not a pipe: a chatty process never blocks on a full pipe
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text()

    def signal(self, number: signal.Signals) -> None:
        os.killpg(self.process.pid, number)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait for the exit; return its status (SIGKILL after timeout)."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=30)
            raise RuntimeError(f"{self.process.args!r} ignored SIGTERM:\n{self.output()}") from None


@contextmanager
def app_process(process_type: str, env: dict[str, str], log: Path) -> Iterator[AppProcess]:
    """Run a process type until the block ends (killed then, if it still runs)."""
    started = AppProcess(process_type, env, log)
    try:
        yield started
    finally:
        if started.process.poll() is None:
            started.signal(signal.SIGKILL)
            started.process.wait(timeout=30)
