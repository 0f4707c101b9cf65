"""The Pulumi CLI here: how long scripts/install-pulumi takes once its binaries are cached, and how long
`pulumi up` takes on the local stack (first deployment, then one with nothing to change), in a copy of the
project with its own state and swarm stack name."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tools.project_copy import ROOT, LocalStack, PulumiLocalError, copy_project

SCRIPTS = ROOT / "scripts"


def _timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return round(time.perf_counter() - started, 2)


def _install() -> dict[str, Any]:
    def install() -> str:
        return subprocess.run(
            [SCRIPTS / "install-pulumi"], check=True, capture_output=True, text=True
        ).stdout.strip()

    install()  # builds on a cold cache; the figure is the cached run
    bin_dir = Path(install().splitlines()[-1])
    return {
        "install_cached_s": _timed(install),
        "bin_dir": str(bin_dir),
        "binaries": sorted(path.name for path in bin_dir.iterdir()),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up_times() -> dict[str, Any]:
    if not (ROOT / "__main__.py").exists():
        return {"skipped": "the local stack's program (__main__.py) does not exist yet"}
    docker_host = subprocess.run(
        [SCRIPTS / "docker-engine", "start"], check=True, capture_output=True, text=True
    ).stdout.strip()
    engine = {**os.environ, "DOCKER_HOST": docker_host}
    python_base = "flightdeck/python-standin:3.13"
    subprocess.run([SCRIPTS / "standin-image", python_base], check=True, capture_output=True, env=engine)
    services = subprocess.run(
        [SCRIPTS / "standin-services", "postgres", "caddy"],
        check=True,
        capture_output=True,
        text=True,
        env=engine,
    ).stdout.split()
    images = dict(line.split("=", 1) for line in services)
    with tempfile.TemporaryDirectory(prefix="flightdeck-bench-pulumi-") as tmp:
        copy_project(Path(tmp))
        stack = LocalStack(Path(tmp), docker_host)
        stack.configure(
            {
                "flightdeck:appName": f"fd-bench-{uuid.uuid4().hex[:6]}",
                "flightdeck:httpPort": _free_port(),
                "flightdeck:httpsPort": _free_port(),
                "flightdeck:pythonImage": python_base,
                "flightdeck:postgresImage": images["postgres"],
                "flightdeck:proxyImage": images["caddy"],
            }
        )
        try:
            return {
                "up_first_s": _timed(lambda: stack.run("up")),
                "up_no_changes_s": _timed(lambda: stack.run("up")),
                "preview_no_changes_s": _timed(lambda: stack.run("preview", "--expect-no-changes")),
                "destroy_s": _timed(lambda: stack.run("destroy")),
            }
        except PulumiLocalError as error:
            return {"skipped": f"the local stack does not deploy here: {error.reason}"}
        finally:
            stack.run("destroy", check=False)


def run() -> dict[str, Any]:
    return {**_install(), "pulumi_up": _up_times()}
