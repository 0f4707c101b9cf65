"""The servers target on three test hosts (scripts/test-hosts), timed: the first deploy, a no-change `up`,
and a code change rolled over three nodes until every replica serves it, under a bounded load through the
manager's proxy (failed requests counted). In a copy of the project with its own state."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.bench_pulumi import timed
from contract import ROOT
from tests.support import app_variants
from tests.support.http_load import Load, get
from tests.support.test_hosts import Hosts, down, up
from tools.project_copy import LocalStack, PulumiLocalError, copy_project


def _deploy(stack: LocalStack, hosts: Hosts) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "up_first_s": timed(lambda: stack.run("up")),
        "up_no_changes_s": timed(lambda: stack.run("up")),
    }
    marker = f"bench change {uuid.uuid4().hex[:8]}"
    app_variants.apply(stack.root / "app", app_variants.marked_page(marker, stack.root / "app"))
    stack.commit("a template change")
    manager = f"http://{hosts.manager.address}"
    started = time.perf_counter()
    with Load([f"{manager}/", f"{manager}/healthz"], threads=4, max_seconds=900) as load:
        stack.run("up")
        deadline = time.monotonic() + 180
        proxies = [f"http://{host.address}/" for host in hosts.hosts]
        while not all(marker in get(p)[1] for p in proxies for _ in range(3)) and time.monotonic() < deadline:
            time.sleep(0.2)
    result = load.result()
    figures.update(
        code_change_to_all_replicas_s=round(time.perf_counter() - started, 2),
        requests=result.sent,
        failed_requests=result.failed,
    )
    return figures


def run() -> dict[str, Any]:
    docker_host = subprocess.run(
        [ROOT / "scripts" / "docker-engine", "start"], check=True, capture_output=True, text=True
    ).stdout.strip()
    hosts_started = time.perf_counter()
    hosts = up(3)
    hosts_s = round(time.perf_counter() - hosts_started, 2)
    try:
        with tempfile.TemporaryDirectory(prefix="flightdeck-bench-servers-") as tmp:
            root = Path(tmp)
            copy_project(root)
            shutil.copyfile(hosts.stack_file, root / "Pulumi.servers-test.yaml")
            stack = LocalStack(root, docker_host, stack="servers-test")
            stack.configure({"flightdeck:appName": f"fd-bench-{uuid.uuid4().hex[:6]}"})
            stack.commit("the test hosts' stack")
            for key in ("flightdeck:bucketAccessKey", "flightdeck:bucketSecretKey"):
                stack.run("cli", "config", "set", "--secret", key, "moto-takes-any-key")
            try:
                return {"test_hosts_up_s": hosts_s, "hosts": len(hosts.hosts), **_deploy(stack, hosts)}
            except PulumiLocalError as error:
                return {"failed": error.reason}
            finally:
                stack.run("destroy", check=False)
                stack.remove_kept_volumes()  # the build registry's, on this machine's engine
    finally:
        down()  # as the e2e's test_hosts fixture leaves them
