"""`make up` on the local stack, timed: scripts/install-pulumi once its binaries are cached; the first `up`
(CLI cached); a no-change `up`; `preview`; a code change from `up` until every replica serves it, under a
bounded load through the proxy (failed requests counted); `down`. In a copy of the project with its own
state, app name and ports."""

from __future__ import annotations

import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract import ROOT
from tests.support import app_variants
from tests.support.docker import free_port
from tests.support.http_load import Load, get
from tools.project_copy import LocalStack, PulumiLocalError, copy_project

SCRIPTS = ROOT / "scripts"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return round(time.perf_counter() - started, 2)


def _install() -> dict[str, Any]:
    def install() -> str:
        return subprocess.run([SCRIPTS / "install-pulumi"], check=True, capture_output=True, text=True).stdout

    install()  # builds on a cold cache; the figure is the cached run
    return {"install_cached_s": timed(install)}


def _code_change(stack: LocalStack) -> dict[str, Any]:
    marker = f"bench change {uuid.uuid4().hex[:8]}"
    app_variants.apply(stack.root / "app", app_variants.marked_page(marker, stack.root / "app"))
    stack.commit("a template change")
    url = stack.outputs()["url"]
    started = time.perf_counter()
    with Load([f"{url}/", f"{url}/healthz"], threads=4, max_seconds=600) as load:
        stack.run("up")
        deadline = time.monotonic() + 120
        while not all(marker in get(f"{url}/")[1] for _ in range(8)) and time.monotonic() < deadline:
            time.sleep(0.2)
    result = load.result()
    return {
        "code_change_to_all_replicas_s": round(time.perf_counter() - started, 2),
        "requests": result.sent,
        "failed_requests": result.failed,
    }


def _up_times() -> dict[str, Any]:
    docker_host = subprocess.run(
        [SCRIPTS / "docker-engine", "start"], check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="flightdeck-bench-pulumi-") as tmp:
        copy_project(Path(tmp))
        stack = LocalStack(Path(tmp), docker_host)
        stack.configure(
            {
                "flightdeck:appName": f"fd-bench-{uuid.uuid4().hex[:6]}",
                "flightdeck:httpPort": free_port(),
                "flightdeck:httpsPort": free_port(),
                "flightdeck:registryPort": free_port(),
            }
        )
        stack.commit("the benchmark's ports")
        try:
            figures: dict[str, Any] = {
                "up_first_s": timed(lambda: stack.run("up")),
                "up_no_changes_s": timed(lambda: stack.run("up")),
                "preview_no_changes_s": timed(lambda: stack.run("preview", "--expect-no-changes")),
            }
            figures.update(_code_change(stack))
            figures["down_s"] = timed(lambda: stack.run("destroy"))
            return figures
        except PulumiLocalError as error:
            return {"failed": error.reason}
        finally:
            stack.run("destroy", check=False)
            stack.remove_kept_volumes()


def run() -> dict[str, Any]:
    return {**_install(), "local_stack": _up_times()}
