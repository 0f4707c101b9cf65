"""One-off swarm jobs (`replicated-job` services): run a command once on a swarm, wait, keep its output.

The release phase, the registry's garbage collection, `make rollback`'s migration check and `make restore` all
run this way: a job shaped like a service of the stack (its image, environment, secrets and networks), so it
sees exactly what that service sees, and the job is removed when it ends.

A removed job leaves its containers behind (moby/moby#42789, #44312), so a job runs on the node of the engine
that starts it, which removes the job's containers itself before the job.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import docker.errors
import docker.types

DONE = frozenset({"complete", "failed", "rejected", "shutdown", "orphaned"})
POLL = 1.0


class JobTimeout(RuntimeError):
    """The job did not end in time (it was removed)."""


@dataclass(frozen=True)
class JobResult:
    succeeded: bool
    output: str
    errors: str  # swarm's task errors, when the job failed to run at all


@dataclass(frozen=True)
class JobSpec:
    image: str
    args: tuple[str, ...]
    environment: Sequence[str] = ()  # NAME=value
    networks: Sequence[str] = ()
    secrets: Sequence[tuple[str, str, str]] = ()  # (secret id, secret name, file name under /run/secrets)


def like_service(client: Any, service: str, args: Sequence[str], image: str | None = None) -> JobSpec:
    """A job shaped like the swarm service `service`, running args (in image, else the service's)."""
    template = client.services.get(service).attrs["Spec"]["TaskTemplate"]
    container = template["ContainerSpec"]
    return JobSpec(
        image=image or str(container["Image"]),
        args=tuple(args),
        environment=tuple(container.get("Env") or ()),
        networks=tuple(str(n["Target"]) for n in template.get("Networks") or ()),
        secrets=tuple(
            (str(s["SecretID"]), str(s["SecretName"]), str(s["File"]["Name"]))
            for s in container.get("Secrets") or ()
        ),
    )


def run_job(
    client: Any, name: str, spec: JobSpec, *, timeout: float, labels: Mapping[str, str] | None = None
) -> JobResult:
    """Run the job to its end (its image's entrypoint runs the args) and return its output."""
    for old in client.services.list(filters={"name": name}):
        if old.name == name:
            old.remove()
    own_node = str(client.info()["Swarm"]["NodeID"])
    job = client.services.create(
        spec.image,
        args=list(spec.args),  # ContainerSpec.Command would replace the image's entrypoint
        name=name,
        env=list(spec.environment),
        networks=list(spec.networks),
        secrets=[
            docker.types.SecretReference(sid, sname, filename=file) for sid, sname, file in spec.secrets
        ],
        mode=docker.types.ServiceMode("replicated-job", concurrency=1),
        restart_policy=docker.types.RestartPolicy(condition="none"),
        constraints=[f"node.id=={own_node}"],
        labels=dict(labels or {}),
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            tasks = job.tasks()
            states = {t["Status"]["State"] for t in tasks}
            if states & DONE:
                break
            if time.monotonic() > deadline:
                raise JobTimeout(
                    f"the job {name} did not end within {timeout:.0f}s (tasks: {sorted(states)})"
                )
            time.sleep(POLL)
        output = "".join(chunk.decode(errors="replace") for chunk in job.logs(stdout=True, stderr=True))
        errors = "; ".join(
            dict.fromkeys(str(t["Status"].get("Err", "")) for t in tasks if t["Status"].get("Err"))
        )
        return JobResult("complete" in states, output, errors)
    finally:
        _remove_containers(client, job.tasks())
        job.remove()


def _remove_containers(client: Any, tasks: Sequence[Mapping[str, Any]]) -> None:
    for task in tasks:
        container = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
        if container:
            with contextlib.suppress(docker.errors.NotFound):  # already gone
                client.api.remove_container(container, force=True)
