"""Build cache through the private registry: how long the app image takes to build on an engine with no
build cache, cold against reusing the inline cache of the image last pushed to the registry.

The registry is the real one (render/registry_config.py's config, htpasswd line and service on the
registry stand-in, blobs in moto's S3, in a container of its own published on 127.0.0.1; see
tests/support/registry.py). The engine is Docker 20.10 with BuildKit's `docker` driver, which cannot export
a registry cache (`type=registry`, mode=max, needs a docker-container builder): the cache travels inline in
the pushed images (BUILDKIT_INLINE_CACHE=1). Inline cache describes only the layers of the image it is in,
so the multi-stage Dockerfile's builder stage is measured two ways: final image only, and final image plus
the builder stage pushed as its own tag (`--target builder`).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
import uuid
from dataclasses import dataclass
from typing import Any

from tests.e2e.app_image import APP, build_cli
from tests.support.docker import PYTHON_BASE, SCRIPTS, docker, engine_host
from tests.support.registry import docker_login, registry_bucket, running_registry

PREFIX = "fd-registry-bench"
GOAL_RATIO = 0.25
ROUNDS = 2
# Other builds on a shared engine can refill the cache between the prune and a cold build, or run the same
# steps at the same time: such a build is not cold and is retried.
COLD_ATTEMPTS = 3


@dataclass
class Build:
    seconds: float
    cached: int  # steps taken from the cache (FROM lines aside)
    ran: int  # steps executed
    # Steps of the stages built (FROM aside). BuildKit shows a step shared with a concurrent build of
    # another client in that build's progress only: fewer steps shown means this build was not alone.
    steps: int


def build(env: dict[str, str], *args: str) -> Build:
    """One build of the app with inline cache metadata in the image."""
    command = [build_cli(), "build", "--network", "host", "--progress", "plain", "--build-arg",
               f"PYTHON_IMAGE={PYTHON_BASE}", "--build-arg", "BUILDKIT_INLINE_CACHE=1"]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        [*command, *args, str(APP)], capture_output=True, text=True, timeout=1200,
        env={**env, "DOCKER_BUILDKIT": "1"}, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"build failed:\n{result.stderr[-4000:]}")
    # BuildKit's plain progress: "#7 [builder 2/4] RUN ..." then "#7 CACHED" or "#7 DONE 1.2s".
    labels = re.findall(r"^#(\d+) \[(\S+) \d+/(\d+)\] (\S+)", result.stderr, re.M)
    steps = {n for n, _, _, instruction in labels if instruction != "FROM"}
    cached = {n for n in steps if re.search(rf"^#{n} CACHED$", result.stderr, re.M)}
    expected = sum(int(total) - 1 for total in {stage: total for _, stage, total, _ in labels}.values())
    return Build(elapsed, len(cached), len(steps - cached), expected)


def forget(*refs: str) -> None:
    """A clean engine: no build cache (cache mounts included) and none of these images."""
    for ref in refs:
        docker("image", "rm", "--force", ref, check=False)
    docker("builder", "prune", "--all", "--force")


def push(env: dict[str, str], ref: str) -> float:
    started = time.monotonic()
    subprocess.run(["docker", "push", ref], env=env, capture_output=True, check=True, timeout=1200)
    return time.monotonic() - started


def summary(builds: list[Build], cold: float) -> dict[str, Any]:
    seconds = statistics.median(b.seconds for b in builds)
    return {
        "seconds": round(seconds, 2),
        "rounds_s": [round(b.seconds, 2) for b in builds],
        "steps_cached": [b.cached for b in builds],
        "steps_run": [b.ran for b in builds],
        "ratio_to_cold": round(seconds / cold, 3),
        "meets_goal": seconds / cold <= GOAL_RATIO,
    }


def cold_build(env: dict[str, str], final: str, stage: str) -> Build:
    for _ in range(COLD_ATTEMPTS):
        forget(final, stage)
        cold = build(env, "--tag", final)
        if cold.cached == 0 and cold.ran == cold.steps:
            return cold
    raise RuntimeError(f"no cold build in {COLD_ATTEMPTS} attempts: other builds keep filling the cache")


def run() -> dict[str, Any]:
    if "DOCKER_HOST" not in os.environ:  # `make bench` starts the engine and exports it
        subprocess.run([SCRIPTS / "docker-engine", "start"], capture_output=True, check=True)
    os.environ["DOCKER_HOST"] = engine_host()
    subprocess.run([SCRIPTS / "standin-image", PYTHON_BASE], check=True, capture_output=True)
    colds: list[Build] = []
    inline: list[Build] = []
    both: list[Build] = []
    pushes: list[float] = []
    with (
        registry_bucket(PREFIX) as s3,
        running_registry(s3, PREFIX) as reg,
        docker_login(reg.address, reg.password) as env,
    ):
        repository = f"{reg.address}/airline-bench-{uuid.uuid4().hex[:6]}"
        final, stage = f"{repository}:latest", f"{repository}:builder"
        try:
            for _ in range(ROUNDS):
                colds.append(cold_build(env, final, stage))
                pushes.append(push(env, final))
                build(env, "--target", "builder", "--tag", stage)  # from the local cache: quick
                push(env, stage)

                forget(final, stage)
                inline.append(build(env, "--cache-from", final, "--tag", final))
                forget(final, stage)
                both.append(build(env, "--cache-from", final, "--cache-from", stage, "--tag", final))
        finally:
            forget(final, stage)
    cold = statistics.median(b.seconds for b in colds)
    return {
        "cold_s": round(cold, 2),
        "cold_rounds_s": [round(b.seconds, 2) for b in colds],
        "cold_steps_run": [b.ran for b in colds],
        "push_s": round(statistics.median(pushes), 2),
        "inline_cache_final_image": summary(inline, cold),
        "inline_cache_final_and_builder_stage": summary(both, cold),
        "goal_ratio_at_most": GOAL_RATIO,
        "rounds": ROUNDS,
        "clean_engine_means": "docker builder prune -af and the images removed before each build; base kept",
        "registry": "registry stand-in (distribution 2.8) on moto S3, htpasswd auth, published on 127.0.0.1",
        "note": "engines with a docker-container builder should use cache_to type=registry,mode=max instead",
    }
