"""The swarm stack's harder deploys, measured through `pulumi up` on the local stack (bench_pulumi times the
first up, a no-change up and a plain code change): an image whose health check fails (the deployment rolls
back, the up fails, the old version keeps serving; requests failed meanwhile, goal 0), a change with a
migration that adds a column (requests failed, goal 0), and `make rollback` to the first release (forced: it
predates the migration). In a copy of the project with its own state, app name and ports; load: 4 threads of
GETs through the proxy, capped in count and time.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract import ROOT
from tests.support import app_variants
from tests.support.docker import docker, free_port
from tests.support.http_load import Load, LoadResult
from tools.project_copy import LocalStack, PulumiLocalError, copy_project

THREADS = 4
COLUMN = (  # the column app_variants.with_new_column() adds
    "SELECT count(*) FROM information_schema.columns "
    "WHERE table_name = 'flights_airport' AND column_name = 'timezone_note'"
)


def _under_load(stack: LocalStack, action: Callable[[], object]) -> tuple[bool, float, LoadResult]:
    """Run action with a bounded load on the proxy; whether it succeeded, its seconds, the load's figures."""
    url = stack.outputs()["url"]
    with Load([f"{url}/", f"{url}/healthz"], threads=THREADS, max_seconds=600) as load:
        time.sleep(1)
        started = time.perf_counter()
        try:
            action()
            succeeded = True
        except PulumiLocalError:
            succeeded = False
        seconds = time.perf_counter() - started
        time.sleep(2)  # the last replaced tasks drain while requests continue
    return succeeded, round(seconds, 1), load.result()


def _load_figures(result: LoadResult) -> dict[str, Any]:
    return {"requests": result.sent, "failed": result.failed, "statuses": result.statuses}


def _web_image(stack: LocalStack) -> str:
    spec = "{{.Spec.TaskTemplate.ContainerSpec.Image}}"
    return docker("service", "inspect", "--format", spec, f"{stack.app_name}_web").strip()


def _scenarios(stack: LocalStack) -> dict[str, Any]:
    started = time.perf_counter()
    stack.run("up")
    figures: dict[str, Any] = {"first_up_s": round(time.perf_counter() - started, 1)}
    first = stack.outputs()["image_ref"]
    app = stack.root / "app"

    health = app / "airline" / "health.py"
    original = health.read_text()
    app_variants.apply(app, app_variants.broken_health(app))
    stack.commit("a broken health check")
    succeeded, seconds, load = _under_load(stack, lambda: stack.run("up"))
    figures["unhealthy_image"] = {
        **_load_figures(load),
        "up_failed_after_s": seconds,  # build, deployment, swarm's own rollback, the up's failure
        "up_reported_failure": not succeeded,
        "old_version_kept_serving": _web_image(stack) == first,
    }
    health.write_text(original)
    app_variants.apply(app, app_variants.with_new_column(app))
    stack.commit("the health check repaired, and a migration")
    succeeded, seconds, load = _under_load(stack, lambda: stack.run("up"))
    figures["migration_update"] = {
        **_load_figures(load),
        "up_s": seconds,
        "succeeded": succeeded and stack.psql(COLUMN) == "1",
    }

    started = time.perf_counter()
    rolled = stack.make("rollback", "TO=1", "FORCE=1")
    figures["rollback"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "succeeded": rolled.returncode == 0 and stack.outputs()["image_ref"] == first == _web_image(stack),
    }
    return figures


def run() -> dict[str, Any]:
    docker_host = subprocess.run(
        [ROOT / "scripts" / "docker-engine", "start"], check=True, capture_output=True, text=True
    ).stdout.strip()
    os.environ["DOCKER_HOST"] = docker_host
    with tempfile.TemporaryDirectory(prefix="flightdeck-bench-swarm-") as tmp:
        copy_project(Path(tmp))
        stack = LocalStack(Path(tmp), docker_host)
        stack.configure(
            {
                "flightdeck:appName": f"fd-bench-sw-{uuid.uuid4().hex[:6]}",
                "flightdeck:httpPort": free_port(),
                "flightdeck:httpsPort": free_port(),
                "flightdeck:registryPort": free_port(),
            }
        )
        stack.commit("the benchmark's ports")
        try:
            figures = _scenarios(stack)
        except PulumiLocalError as error:
            return {"failed": error.reason}
        finally:
            stack.run("destroy", check=False)
            stack.remove_kept_volumes()
    return {
        **figures,
        "load_threads": THREADS,
        "replicas": 2,
        "goals": {"failed_requests": 0},
    }
