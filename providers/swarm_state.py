"""What a swarm stack looks like from the engine's answers, as pure functions over them (unit-tested with
recorded answers, no engine): whether a service has converged or failed, the live shape `refresh` compares
with the declared one, and which old images a node may drop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

# Update states in which swarm gave up on an update (and rolled back, or stopped half-way).
FAILED_UPDATES = frozenset({"rollback_started", "rollback_paused", "rollback_completed", "paused"})
_PORT_TAKEN = re.compile(r"port .*(already|in use)|address already in use|port is already allocated", re.I)


@dataclass(frozen=True)
class Progress:
    service: str
    converged: bool
    running: int
    desired: int
    failure: str | None = None  # why swarm will not get there (rolled back, a port taken, …)


def _image(spec: Mapping[str, Any]) -> str:
    return str(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""))


def _task_image(task: Mapping[str, Any]) -> str:
    return str(task.get("Spec", {}).get("ContainerSpec", {}).get("Image", ""))


def ready_nodes(nodes: Iterable[Mapping[str, Any]]) -> set[str]:
    """IDs of the nodes that take tasks: up and not drained."""
    return {
        str(n["ID"])
        for n in nodes
        if n.get("Status", {}).get("State") == "ready"
        and n.get("Spec", {}).get("Availability", "active") == "active"
    }


def node_names(nodes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Node ID -> its hostname (the name the user knows it by)."""
    return {str(n["ID"]): str(n.get("Description", {}).get("Hostname") or n["ID"]) for n in nodes}


def service_progress(
    service: Mapping[str, Any],
    tasks: Sequence[Mapping[str, Any]],
    ready: set[str],
    update_before: str | None,
    *,
    update_done: bool = False,
) -> Progress:
    """Has this service every task it wants running its current image on a ready node? update_before is the
    StartedAt of the update status seen before this deploy: an older update is not this deploy's. With
    update_done, an update swarm still reports in progress counts as done (it waits for a lost node)."""
    spec = service["Spec"]
    name = str(spec["Name"])
    image = _image(spec)
    mode = spec.get("Mode", {})
    if "Replicated" in mode:
        desired = int(mode["Replicated"].get("Replicas", 1))
    elif "Global" in mode:
        desired = len(ready)
    else:  # jobs run to completion; the deploy waits for them elsewhere
        return Progress(name, True, 0, 0)
    wanted = [t for t in tasks if t.get("DesiredState") == "running" and t.get("NodeID") in ready]
    running = [t for t in wanted if t.get("Status", {}).get("State") == "running" and _task_image(t) == image]
    status = service.get("UpdateStatus") or {}
    ours = bool(status) and status.get("StartedAt") != update_before
    if ours and status.get("State") in FAILED_UPDATES:
        return Progress(
            name,
            False,
            len(running),
            desired,
            f"swarm stopped the update ({status.get('State')}): {status.get('Message', '')}",
        )
    for task in tasks:
        error = str(task.get("Status", {}).get("Err", ""))
        if port_taken(error) and task.get("DesiredState") == "running":
            return Progress(name, False, len(running), desired, f"a port it publishes is taken: {error}")
    updating = ours and status.get("State") not in ("completed", None) and not update_done
    return Progress(name, not updating and len(running) >= desired, len(running), desired)


def port_taken(error: str) -> bool:
    """Whether a task error says a port the task publishes is held by something else."""
    return _PORT_TAKEN.search(error) is not None


def declared_services(stack: str, stack_file: str) -> dict[str, dict[str, Any]]:
    """The services a stack file declares, as `live_services` reports them: image and replicas (or
    "global")."""
    document = yaml.safe_load(stack_file)
    shape: dict[str, dict[str, Any]] = {}
    for name, service in (document.get("services") or {}).items():
        deploy = service.get("deploy") or {}
        replicas: int | str = "global" if deploy.get("mode") == "global" else int(deploy.get("replicas", 1))
        shape[f"{stack}_{name}"] = {"image": str(service.get("image", "")), "replicas": replicas}
    return shape


def live_services(services: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Image and replicas of the running services (the image without the digest docker adds to tags)."""
    shape: dict[str, dict[str, Any]] = {}
    for service in services:
        spec = service["Spec"]
        mode = spec.get("Mode", {})
        if "ReplicatedJob" in mode or "GlobalJob" in mode:
            continue
        replicas: int | str = (
            "global" if "Global" in mode else int(mode.get("Replicated", {}).get("Replicas", 1))
        )
        shape[str(spec["Name"])] = {"image": _declared_image(_image(spec)), "replicas": replicas}
    return shape


def _declared_image(image: str) -> str:
    """`docker stack deploy` pins a tag to its digest (`name:tag@sha256:…`); the file said `name:tag`."""
    name, _, digest = image.partition("@")
    return name if digest and ":" in name.rsplit("/", 1)[-1] else image


def drift(declared: Mapping[str, Mapping[str, Any]], live: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between the declared services and the live ones, one line each."""
    problems = []
    for name in sorted(set(declared) | set(live)):
        want, have = declared.get(name), live.get(name)
        if have is None:
            problems.append(f"{name} is missing")
        elif want is None:
            problems.append(f"{name} runs but is not declared")
        else:
            for key in ("image", "replicas"):
                if _normal(key, want[key]) != _normal(key, have[key]):
                    problems.append(f"{name}: {key} is {have[key]}, declared {want[key]}")
    return problems


def _normal(key: str, value: Any) -> Any:
    if key == "image":
        return familiar_image(str(value))
    return int(value) if isinstance(value, float) else value


def familiar_image(image: str) -> str:
    """An image reference as the engine reports it: Docker Hub's host and `library/` dropped, and `:latest`
    for a name without a tag or digest (`docker.io/library/caddy` and `caddy` are `caddy:latest`)."""
    name, at, digest = image.partition("@")
    for hub in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(hub):
            name = name.removeprefix(hub).removeprefix("library/")
            break
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}{at}{digest}"


def images_to_prune(
    images: Iterable[Mapping[str, Any]], repository: str, keep_digests: set[str], in_use: set[str]
) -> list[str]:
    """IDs of the images of `repository` on a node that belong to no kept release and no container: every
    digest the image is known by must be outside keep_digests, and its ID outside in_use."""
    doomed = []
    for image in images:
        digests = [d for d in image.get("RepoDigests") or [] if d.split("@")[0] == repository]
        tags = [t for t in image.get("RepoTags") or [] if t.rsplit(":", 1)[0] == repository]
        if not digests and not tags:
            continue
        if {d.split("@", 1)[1] for d in digests} & keep_digests or image["Id"] in in_use:
            continue
        doomed.append(str(image["Id"]))
    return doomed
