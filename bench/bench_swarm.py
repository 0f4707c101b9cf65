"""The swarm stack's deploys, measured on the local engine: requests failed during a rolling update under a
bounded load (goal 0), requests sent, seconds to converge (goal under 60), the failed deploy of an image
whose health check fails (swarm rolls it back; requests failed meanwhile, goal 0) and the seconds of a
one-command rollback with scripts/rollback.

Everything runs through tests/e2e/swarm_support.py, the machinery of the end-to-end tests: the stand-in
images, a registry on 127.0.0.1, the deploy script the SwarmStack component runs. Load: 4 threads of GETs
on 127.0.0.1, capped in count and time.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Any

from tests.e2e import swarm_support as sw
from tests.support.docker import PYTHON_BASE, SCRIPTS, engine_host

THREADS = 4


def _load_figures(update: sw.Update) -> dict[str, Any]:
    return {
        "requests": update.load.sent,
        "failed": update.load.failed,
        "statuses": update.load.statuses,
        "deploy_seconds": round(update.seconds, 1),  # release command, rollout, health through the proxy
        "converge_seconds": update.converge_seconds,  # from `docker stack deploy` to every task on the image
    }


def run() -> dict[str, Any]:
    os.environ["DOCKER_HOST"] = engine_host()
    subprocess.run([SCRIPTS / "standin-image", PYTHON_BASE], check=True, capture_output=True)
    sw.ensure_swarm()
    sw.standin_images()
    prefix = f"fdbench{uuid.uuid4().hex[:6]}"
    with sw.local_registry(prefix) as registry:
        images = sw.build_images(registry, prefix, PYTHON_BASE)
        started = time.monotonic()
        with sw.running_stack(prefix, images.v1) as stack:
            first_deploy = time.monotonic() - started
            rolling = sw.update_under_load(stack, images.v2, threads=THREADS)
            broken = sw.update_under_load(stack, images.broken, threads=THREADS)
            serving_after_failure = stack.web_image() == images.v2
            migration = sw.update_under_load(stack, images.migration, threads=THREADS)
            started = time.monotonic()
            rolled_back = sw.rollback(stack.name, images.v2)
            rollback_seconds = time.monotonic() - started
            rollback_ok = rolled_back.returncode == 0 and stack.web_image() == images.v2
    return {
        "replicas": stack.replicas,
        "load_threads": THREADS,
        "first_deploy_seconds": round(first_deploy, 1),
        "rolling_update": {**_load_figures(rolling), "succeeded": rolling.returncode == 0},
        "unhealthy_image": {
            "requests": broken.load.sent,
            "failed": broken.load.failed,
            "statuses": broken.load.statuses,
            # From the deploy's start until it failed, swarm having rolled the service back by itself.
            "automatic_rollback_seconds": round(broken.seconds, 1),
            "deploy_reported_failure": broken.returncode != 0,
            "old_version_kept_serving": serving_after_failure,
        },
        "migration_update": {**_load_figures(migration), "succeeded": migration.returncode == 0},
        "rollback_script": {"seconds": round(rollback_seconds, 1), "succeeded": rollback_ok},
        "goals": {"failed_requests": 0, "converge_seconds_below": 60},
    }
