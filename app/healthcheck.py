"""The image's health probe; exit 0 only when this container's process is doing its job.

`python healthcheck.py [TYPE]`, TYPE defaulting to $PROCESS_TYPE, else web:
- web: GET /healthz on the container's own $PORT must answer 200. Django validates the Host header of
  /healthz like any other request, so the probe sends a host that ALLOWED_HOSTS accepts: its first concrete
  entry ("*" or no entry at all: localhost).
- worker, scheduler (no HTTP): a procrastinate worker process must be running in this container, and the
  database it works from must answer. The probe runs beside it (`docker exec`), not under the entrypoint,
  so it reads the worker's DATABASE_URL from the worker's own environment, where swarm's secrets are too.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

WORKER_TYPES = ("worker", "scheduler")


def probe_host(allowed_hosts: str) -> str:
    for entry in allowed_hosts.split(","):
        # ".example.com" allows example.com and its subdomains.
        host = entry.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


def check_web() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz"
    request = urllib.request.Request(url, headers={"Host": probe_host(os.environ.get("ALLOWED_HOSTS", ""))})
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 (a fixed loopback URL)
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"healthcheck: {url}: {error}", file=sys.stderr)
        return 1


def worker_process() -> Path | None:
    """/proc/<pid> of a live `manage.py procrastinate worker` process, if one runs."""
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            argv = (process / "cmdline").read_bytes().split(b"\0")
            state = (process / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found = any(argv[i : i + 2] == [b"procrastinate", b"worker"] for i in range(len(argv) - 1))
        if found and state != "Z":
            return process
    return None


def database_url(process: Path) -> str | None:
    for entry in (process / "environ").read_bytes().split(b"\0"):
        name, _, value = entry.partition(b"=")
        if name == b"DATABASE_URL":
            return value.decode()
    return None


def check_worker(process_type: str) -> int:
    process = worker_process()
    if process is None:
        print(f"healthcheck: no procrastinate worker process runs here ({process_type})", file=sys.stderr)
        return 1
    url = database_url(process)
    if not url:
        print(f"healthcheck: the worker (pid {process.name}) has no DATABASE_URL", file=sys.stderr)
        return 1
    import psycopg  # only here: the web probe stays light

    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        # Not the error itself: it may name hosts and users, and health logs are widely readable.
        print(f"healthcheck: the worker's database does not answer ({type(error).__name__})", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    process_type = argv[1] if len(argv) > 1 else os.environ.get("PROCESS_TYPE") or "web"
    if process_type == "web":
        return check_web()
    if process_type in WORKER_TYPES:
        return check_worker(process_type)
    print(
        f"healthcheck: no check for process type {process_type!r}; use web, {', '.join(WORKER_TYPES)}",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
