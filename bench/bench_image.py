"""The production image, measured: its size against a naive single-stage build, the time of a rebuild after
a code-only change against a cold build, and the throughput of the flight list under gunicorn settings and
under `runserver`.

All on the local engine with the stand-in bases (no registry is reachable), against the local PostgreSQL
with the sample data. Load is bounded: wrk with a few connections for a fixed time on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from tests.e2e.app_image import (
    APP,
    Containers,
    build,
    fresh_database,
    new_secret_key,
    prepared_database,
    production_env,
)
from tests.support.docker import PYTHON_BASE, ROOT, SCRIPTS, docker, engine_host, free_port

NAIVE_BASE = "flightdeck/naive-base:trixie"
NAIVE_BASE_PACKAGES = "build-essential,python3-dev,python3-pip"
NAIVE_DOCKERFILE = ROOT / "bench" / "naive.Dockerfile"

# (worker processes, threads per worker); one thread means gunicorn's sync worker, more its gthread worker.
GUNICORN_SETTINGS = [(1, 1), (2, 1), (4, 1), (1, 4), (2, 4), (4, 2)]
CODE_CHANGES = 3
LOAD_SECONDS = 5
LOAD_ROUNDS = 4
LOAD_CONNECTIONS = 16
LOAD_THREADS = 2
WARMUP_REQUESTS = 30

# wrk prints its summary as text; this script makes it print JSON instead (latencies in microseconds).
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d,'
    .. ' "timeouts": %d, "non_2xx_3xx": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def megabytes(size: int) -> float:
    return round(size / 1e6, 1)


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).strip())


def ensure_bases() -> None:
    for name, packages in ((PYTHON_BASE, ""), (NAIVE_BASE, NAIVE_BASE_PACKAGES)):
        subprocess.run([SCRIPTS / "standin-image", name, "trixie", packages], check=True, capture_output=True)


def app_copy(destination: Path) -> Path:
    """A copy of app/ to change freely (the tree itself is never modified)."""
    ignored = shutil.ignore_patterns("staticfiles", "__pycache__", "*.pyc", ".venv")
    return Path(shutil.copytree(APP, destination / "app", ignore=ignored))


def measure_builds(tag: str) -> dict[str, Any]:
    """A cold build (no build cache, no image), then rebuilds each after a one-line change to the code."""
    docker("image", "rm", "--force", tag, check=False)
    docker("builder", "prune", "--all", "--force")
    with tempfile.TemporaryDirectory(prefix="flightdeck-bench-") as scratch:
        context = app_copy(Path(scratch))
        cold = build(tag, base=PYTHON_BASE, context=context)
        views = context / "flights" / "views.py"
        rebuilds = []
        for change in range(CODE_CHANGES):
            with views.open("a") as source:
                source.write(f"\n# bench_image code-only change {change}: {uuid.uuid4().hex}\n")
            rebuilds.append(build(tag, base=PYTHON_BASE, context=context))
    rebuild = statistics.median(rebuilds)
    return {
        "cold_s": round(cold, 2),
        "rebuild_after_code_change_s": round(rebuild, 2),
        "rebuilds_s": [round(r, 2) for r in rebuilds],
        "ratio": round(rebuild / cold, 3),
        "goal_ratio_at_most": 0.10,
        "meets_goal": rebuild / cold <= 0.10,
        "cold_means": "build cache pruned (docker builder prune -af) and image removed; base image kept",
    }


def measure_sizes(tag: str, naive_tag: str) -> dict[str, Any]:
    naive_build = build(naive_tag, base=NAIVE_BASE, dockerfile=NAIVE_DOCKERFILE)
    production, naive = image_size(tag), image_size(naive_tag)
    base, naive_base = image_size(PYTHON_BASE), image_size(NAIVE_BASE)
    return {
        "production_bytes": production,
        "production_mb": megabytes(production),
        "naive_bytes": naive,
        "naive_mb": megabytes(naive),
        "ratio": round(production / naive, 3),
        "goal_ratio_at_most": 0.40,
        "meets_goal": production / naive <= 0.40,
        "base_mb": megabytes(base),
        "naive_base_mb": megabytes(naive_base),
        "production_above_base_mb": megabytes(production - base),
        "naive_above_base_mb": megabytes(naive - naive_base),
        "naive_build_s": round(naive_build, 2),
        "bases": f"{PYTHON_BASE} (stand-in for python:3.13-slim), {NAIVE_BASE} (stand-in for python:3.13)",
    }


def load(url: str, script: Path) -> dict[str, Any]:
    """Bounded load on one URL: LOAD_CONNECTIONS connections for LOAD_SECONDS seconds."""
    result = subprocess.run(
        ["wrk", f"-t{LOAD_THREADS}", f"-c{LOAD_CONNECTIONS}", f"-d{LOAD_SECONDS}s", "--timeout", "5s",
         "-H", "X-Forwarded-Proto: https", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=LOAD_SECONDS + 60,
    )  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    error_kinds = ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx_3xx")
    errors = sum(report[kind] for kind in error_kinds)
    return {
        "requests": report["requests"],
        "requests_per_s": round(report["requests"] / (report["duration_us"] / 1e6), 1),
        "p50_ms": round(report["p50_us"] / 1000, 2),
        "p90_ms": round(report["p90_us"] / 1000, 2),
        "p99_ms": round(report["p99_us"] / 1000, 2),
        "max_ms": round(report["max_us"] / 1000, 2),
        "errors": errors,
    }


def cpu_seconds(container: str) -> float:
    """CPU time the container's processes have used (cgroup v2 cpu.stat, else cgroup v1 cpuacct)."""
    read = "cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage"
    text = docker("exec", container, "sh", "-c", read).strip()
    if text.isdigit():
        return int(text) / 1e9
    usage = dict(line.split() for line in text.splitlines())
    return int(usage["usage_usec"]) / 1e6


def memory_mb(container: str) -> float:
    """Memory the container's processes use now (cgroup v2 memory.current, else cgroup v1)."""
    read = "cat /sys/fs/cgroup/memory.current 2>/dev/null || cat /sys/fs/cgroup/memory/memory.usage_in_bytes"
    return megabytes(int(docker("exec", container, "sh", "-c", read).strip()))


def warm_up(url: str) -> None:
    for _ in range(WARMUP_REQUESTS):
        page = requests.get(url, headers={"X-Forwarded-Proto": "https"}, timeout=10)
        if page.status_code != 200 or "Flight " not in page.text:
            raise RuntimeError(f"{url} answered {page.status_code} without flights")


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the rounds, and the spread of requests/s."""
    keys = ("requests_per_s", "p50_ms", "p99_ms", "cpu_ms_per_request")
    figures = {key: statistics.median(r[key] for r in rounds) for key in keys}
    rates = [r["requests_per_s"] for r in rounds]
    return {
        **figures,
        "requests_per_s_min_max": [min(rates), max(rates)],
        "requests": sum(r["requests"] for r in rounds),
        "errors": sum(r["errors"] for r in rounds),
    }


def measure_throughput(tag: str, database_server: str) -> dict[str, Any]:
    """Every server runs at once on its own port; the load visits them in turn, round after round, so
    that whatever else the machine does at the time weighs on all of them alike."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (scripts/setup installs it)")
    containers = Containers(tag)
    secret_key = new_secret_key()
    load_before = os.getloadavg()[0]
    with fresh_database(database_server) as database, tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "report.lua"
        script.write_text(WRK_REPORT)
        try:
            prepared_database(containers, production_env(database, free_port(), secret_key))
            servers: dict[str, tuple[str, str]] = {}  # name: (container, URL)
            for workers, threads in GUNICORN_SETTINGS:
                env = production_env(database, free_port(), secret_key)
                env |= {"WEB_CONCURRENCY": str(workers), "GUNICORN_THREADS": str(threads)}
                container = containers.serve(env)
                servers[f"gunicorn {workers}x{threads}"] = (container, f"http://127.0.0.1:{env['PORT']}/")
            env = production_env(database, free_port(), secret_key) | {"DEBUG": "1"}
            container = containers.serve(env, "python", "manage.py", "runserver", f"0.0.0.0:{env['PORT']}")
            servers["runserver (DEBUG on)"] = (container, f"http://127.0.0.1:{env['PORT']}/")
            for _, url in servers.values():
                warm_up(url)
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
            for _ in range(LOAD_ROUNDS):
                for name, (container, url) in servers.items():
                    cpu_before = cpu_seconds(container)
                    figures = load(url, script)
                    cpu_used = cpu_seconds(container) - cpu_before
                    figures["cpu_ms_per_request"] = round(1000 * cpu_used / max(figures["requests"], 1), 2)
                    rounds[name].append(figures)
            memory = {name: memory_mb(container) for name, (container, _) in servers.items()}
        finally:
            containers.close()
    results = {name: {**summary(figures), "memory_mb": memory[name]} for name, figures in rounds.items()}
    gunicorn = {name: figures for name, figures in results.items() if name.startswith("gunicorn")}
    fastest = max(
        gunicorn, key=lambda name: (gunicorn[name]["errors"] == 0, gunicorn[name]["requests_per_s"])
    )
    runserver = results["runserver (DEBUG on)"]
    return {
        "url": "/ (flight list, sample data, PostgreSQL on 127.0.0.1)",
        "load": f"wrk, {LOAD_THREADS} threads, {LOAD_CONNECTIONS} connections, {LOAD_SECONDS} s per round, "
        f"{LOAD_ROUNDS} rounds; figures are medians over the rounds; cpu_ms_per_request is the server's "
        "own CPU time (its container's cgroup) per request, which other load on the machine hardly changes",
        "gunicorn_setting": "WORKERSxTHREADS (1 thread: sync worker; more: gthread)",
        "cpus": os.cpu_count(),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "servers": results,
        "fastest_gunicorn": fastest,
        "fastest_gunicorn_vs_runserver": round(
            gunicorn[fastest]["requests_per_s"] / runserver["requests_per_s"], 2
        ),
    }


def run() -> dict[str, Any]:
    if "DOCKER_HOST" not in os.environ:  # `make bench` starts the engine and exports it
        subprocess.run([SCRIPTS / "docker-engine", "start"], capture_output=True, check=True)
    os.environ["DOCKER_HOST"] = engine_host()
    database_server = subprocess.run(
        [SCRIPTS / "local-postgres"], capture_output=True, text=True, check=True
    ).stdout.strip()
    ensure_bases()
    suffix = uuid.uuid4().hex[:8]
    tag, naive_tag = f"flightdeck-app:bench-{suffix}", f"flightdeck-naive:bench-{suffix}"
    started = time.monotonic()
    try:
        builds = measure_builds(tag)
        sizes = measure_sizes(tag, naive_tag)
        throughput = measure_throughput(tag, database_server)
    finally:
        docker("image", "rm", "--force", tag, naive_tag, check=False)
    return {
        "engine": docker("version", "--format", "{{.Server.Version}}").strip(),
        "size": sizes,
        "build": builds,
        "throughput": throughput,
        "bench_s": round(time.monotonic() - started, 1),
    }
