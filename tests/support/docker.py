"""Helpers shared by the tests that drive a real Docker engine."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"

# The stand-in for the official python:3.13-slim (no registry is reachable here).
PYTHON_BASE = "flightdeck/python-standin:3.13"


def engine_host() -> str:
    """DOCKER_HOST if set, else the socket of the project's own engine (scripts/docker-engine)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    return subprocess.run(
        [SCRIPTS / "docker-engine", "host"], check=True, capture_output=True, text=True
    ).stdout.strip()


def docker(*args: str, check: bool = True, timeout: float = 600, **kwargs: object) -> str:
    """Run the docker CLI and return its stdout; on failure the error carries stderr."""
    result = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[call-overload]
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return str(result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, status: int = 200, timeout: float = 60) -> int:
    """Poll url until it answers with status; return the status, or raise after timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
                last = response.status
        except urllib.error.HTTPError as err:
            last = err.code
        except (urllib.error.URLError, OSError) as err:
            last = err
        if last == status:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s (last: {last!r})")
