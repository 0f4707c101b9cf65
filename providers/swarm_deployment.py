"""SwarmDeployment: a swarm stack on a Docker engine, as a Pulumi resource (a dynamic provider).

create/update, in order:
1. the stack's docker secrets and configs, named by their content, created where missing;
2. a new database password, when one was drawn, set in the running database;
3. the release job (the image's `release` process: migrations) once per new image digest, before any task of
   that image takes traffic; a new stack first gets its database (app services at 0 replicas);
4. `docker stack deploy --prune --with-registry-auth` (the only step that needs the docker CLI);
5. a wait until every service runs its declared image on every ready node, and the health URL answers through
   the proxy; swarm rolling the update back, or a port already taken, fails the update at once with swarm's
   reason and the failing health check's own words; the previous version keeps serving;
6. a release record (providers/releases.py), then the objects no service uses are removed and every node
   drops the app images of releases older than the last `keep_releases`.

read reports the live services (image, replicas), so `pulumi refresh` shows one changed by hand and the next
`up` puts the declared state back. diff compares what matters (the file, the objects, the engine, the live
shape), so an `up` with nothing to do changes nothing. delete removes the stack and waits for it; named
volumes (the database's) stay, and the output says how to remove them.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import pulumi
import yaml
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from contract import split_ref
from providers import jobs, registry_gc, releases, swarm_state
from providers.engine import Engine, EngineUnavailable, engines, open_engine, unknown
from providers.ssh import SshSession, SshTrust
from render.stack_file import compose_yaml

STACK_LABEL = "com.docker.stack.namespace"
# Inputs whose change means a change of the deployment; the engine and the stack name identify it.
# `ssh` holds the pinned host keys: read() and delete() use the state's, so a re-pinned key must reach it.
COMPARED = (
    "stack_file",
    "objects",
    "configs",
    "release",
    "health",
    "nodes",
    "keep_releases",
    "app_services",
    "ssh",
)
IDENTITY = ("engine", "stack")
POLL = 1.0
# How long a node may stay down during a deploy before it ends: swarm needs a few heartbeats to reschedule
# its tasks, and an update with a task on a node that stays down never completes (it waits for the node).
NODE_GRACE = 60.0


class DeploymentFailed(RuntimeError):
    """The stack did not reach the declared state; the message says why and what still serves."""


def _log(stack: str, message: str) -> None:
    # The engine shows a dynamic provider's output lines as the stack's diagnostics.
    print(f"[{stack}] {message}", file=sys.stderr, flush=True)


@dataclass
class _Run:
    """One create/update or delete: its inputs, the clock, the engine."""

    props: Mapping[str, Any]
    engine: Engine
    session: SshSession | None
    started: float = field(default_factory=time.monotonic)

    @property
    def stack(self) -> str:
        return str(self.props["stack"])

    @property
    def client(self) -> Any:
        return self.engine.client

    def remaining(self) -> float:
        return float(self.props.get("timeout", 600)) - (time.monotonic() - self.started)

    def services(self) -> list[Any]:
        return list(self.client.services.list(filters={"label": f"{STACK_LABEL}={self.stack}"}))


def _trust(props: Mapping[str, Any]) -> SshTrust | None:
    return SshTrust.from_props(dict(props["ssh"])) if props.get("ssh") else None


class SwarmDeploymentProvider(ResourceProvider):
    serialize_as_secret_always = False

    # -- lifecycle --------------------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        adopting = _stack_exists(props)
        try:
            outs = self._apply(props, previous=None)
        except Exception:
            # A failed create must leave nothing behind (Pulumi records no resource): remove a stack this
            # create began, never one it was adopting.
            if not adopting:
                with contextlib.suppress(Exception):
                    self.delete(str(props["stack"]), props)
            raise
        return CreateResult(str(props["stack"]), outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if _changes(olds, news) == ["ssh"]:
            return UpdateResult({**olds, "ssh": news.get("ssh")})  # a re-pinned host key: nothing to deploy
        return UpdateResult(self._apply(news, previous=olds))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in IDENTITY if olds.get(key) != news.get(key) and not unknown(news.get(key))]
        if unknown(news.get("stack_file")):
            return DiffResult(
                changes=True, replaces=replaces, delete_before_replace=True
            )  # a preview of a new image
        changed = _changes(olds, news)
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=True)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        trust = _trust(props)
        with (
            engines([str(props["engine"])], trust) as session,
            open_engine(str(props["engine"]), session=session) as engine,
        ):
            services = engine.client.services.list(filters={"label": f"{STACK_LABEL}={id_}"})
            if not services:
                return ReadResult("", {})  # removed by hand: refresh drops it, the next up deploys it again
            live = swarm_state.live_services(s.attrs for s in services)
            history = releases.history(engine.client, id_)
        outs = {**props, "services": live}
        if history:
            outs["last_release"] = history[-1].to_props()
        return ReadResult(id_, outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with contextlib.ExitStack() as stack:
            session = stack.enter_context(engines([str(props["engine"])], _trust(props)))
            try:
                engine = stack.enter_context(open_engine(str(props["engine"]), session=session))
            except EngineUnavailable as err:
                raise DeploymentFailed(f"cannot remove the stack {id_}: {err}") from None
            run = _Run(props, engine, session)
            _log(id_, "removing the stack")
            engine.cli(["stack", "rm", id_])
            while run.services() or engine.client.networks.list(filters={"label": f"{STACK_LABEL}={id_}"}):
                if run.remaining() <= 0:
                    raise DeploymentFailed(
                        f"the services or networks of {id_} are still there after the timeout"
                    )
                time.sleep(POLL)
            _remove_objects(run, keep=set())
            releases.forget(engine.client, id_)
        for volume in props.get("kept_volumes") or []:
            _log(
                id_,
                f"kept the volume {id_}_{volume} (the database's data) on {props['engine']}; remove it for "
                "good "
                f"with `docker volume rm {id_}_{volume}` on that engine",
            )

    # -- create/update ----------------------------------------------------------------------------------
    def _apply(self, props: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
        urls = [str(props["engine"]), *[str(u) for u in props.get("nodes") or []]]
        with (
            engines(urls, _trust(props)) as session,
            open_engine(str(props["engine"]), session=session) as engine,
        ):
            run = _Run(props, engine, session)
            _ensure_manager(run)
            auth = props.get("registry_auth")
            if auth:
                # The SDK hands this login to the nodes of the services it creates (the release job).
                engine.client.login(
                    str(auth["username"]), str(auth["password"]), registry=str(auth["address"])
                )
            created = _create_objects(run)
            existing = bool(run.services())
            # A new password for a running database: drawn again (`up --replace`), or a stack adopted from
            # a state that did not record it (an older flightdeck's).
            if (
                props.get("database")
                and existing
                and (previous is None or _password_changed(previous, props))
            ):
                _rotate_database_password(run)
            image = _app_image(props)
            history = releases.history(engine.client, run.stack)
            released = history[-1].image if history else None
            if props.get("release") and existing and released != image:
                _release(run, image)
            if not existing and props.get("release"):
                _deploy(run, _scaled_to_zero(props))
                _wait_for_database(run)
                _release(run, image)
            before = {s.name: (s.attrs.get("UpdateStatus") or {}).get("StartedAt") for s in run.services()}
            ready_before = _ready_nodes(run)
            _log(run.stack, f"docker stack deploy ({image})")
            _deploy(run, str(props["stack_file"]))
            if previous and int(previous.get("ready_nodes") or 0) < _node_count(props):
                _spread(run)
            ready = _wait_until_converged(run, before, ready_before)
            _wait_until_healthy(run)
            if image and released != image:
                release = releases.record(engine.client, run.stack, image)
                _log(run.stack, f"release {release.number}: {image}")
                history.append(release)
            _remove_objects(run, keep={o["name"] for o in props.get("objects") or []})
            _prune_images(run, history, session)
            _prune_registry(run, history, session, image)
            live = swarm_state.live_services(s.attrs for s in run.services())
            if created:
                _log(run.stack, f"created {len(created)} docker secret(s)/config(s)")
            _log(run.stack, f"deployed in {time.monotonic() - run.started:.0f}s")
        outs = {key: value for key, value in props.items() if key not in ("secrets", "registry_auth")}
        outs.update(
            services=live,
            ready_nodes=ready,
            last_release=history[-1].to_props() if history else None,
            image=image,
        )
        return outs


def _stack_exists(props: Mapping[str, Any]) -> bool:
    url = str(props["engine"])
    with engines([url], _trust(props)) as session, open_engine(url, session=session) as engine:
        return bool(engine.client.services.list(filters={"label": f"{STACK_LABEL}={props['stack']}"}))


def _changes(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """What an update would change, besides the identity."""
    changed = [key for key in COMPARED if _plain(olds.get(key)) != _plain(news.get(key))]
    declared = swarm_state.declared_services(str(news["stack"]), str(news["stack_file"]))
    if swarm_state.drift(declared, olds.get("services") or {}):
        changed.append("services")  # changed by hand (seen by refresh)
    if int(olds.get("ready_nodes") or 0) < _node_count(news):
        changed.append("ready_nodes")  # a node was down at the last deploy: spread the tasks again
    return changed


def _plain(value: Any) -> Any:
    """Inputs as the state gives them back: numbers as floats, tuples as lists."""
    return json.loads(json.dumps(value, sort_keys=True), parse_int=float) if value is not None else None


def _node_count(props: Mapping[str, Any]) -> int:
    return len(props.get("nodes") or []) or 1


def _app_image(props: Mapping[str, Any]) -> str:
    """The image the app's services run ("" for a stack without app services, such as the registry's)."""
    names = list(props.get("app_services") or [])
    if not names:
        return ""
    image = str(yaml.safe_load(str(props["stack_file"]))["services"][names[0]]["image"])
    split_ref(image)  # the app is released by digest only
    return image


def _scaled_to_zero(props: Mapping[str, Any]) -> str:
    """The stack file with the app's services at 0 replicas: a first deploy brings up the database and the
    network the release job needs, and no unmigrated app task takes traffic."""
    document = yaml.safe_load(str(props["stack_file"]))
    for name in props.get("app_services") or []:
        document["services"][name]["deploy"]["replicas"] = 0
    return compose_yaml(document)  # the renderer's quoting: docker's YAML reads `y` or `1e5` otherwise


def _ensure_manager(run: _Run) -> None:
    swarm = run.client.info().get("Swarm", {})
    if not swarm.get("ControlAvailable"):
        raise DeploymentFailed(
            f"{run.props['engine']} is not a swarm manager (swarm state: {swarm.get('LocalNodeState')}); the "
            "stack's SwarmCluster resource makes it one: run `pulumi up` again, or `docker swarm init` there"
        )


def _create_objects(run: _Run) -> list[str]:
    """Create the secrets and configs that do not exist yet; values come from the inputs, never a file."""
    created = []
    labels = {STACK_LABEL: run.stack}
    secrets = run.props.get("secrets") or {}
    configs = run.props.get("configs") or {}
    for obj in run.props.get("objects") or []:
        kind, key, name = obj["kind"], obj["key"], obj["name"]
        collection = run.client.secrets if kind == "secret" else run.client.configs
        if any(o.name == name for o in collection.list(filters={"name": name})):
            continue  # the name is a digest of the content: an existing object holds this very value
        value = secrets[key] if kind == "secret" else configs[key]
        collection.create(name=name, data=str(value).encode(), labels=labels)
        created.append(name)
    return created


def _remove_objects(run: _Run, keep: set[str]) -> None:
    """Remove the stack's secrets and configs that no deploy uses any more (ones still in use refuse)."""
    for collection in (run.client.secrets, run.client.configs):
        for obj in collection.list(filters={"label": f"{STACK_LABEL}={run.stack}"}):
            if obj.name in keep:
                continue
            # One still mounted by a task that is stopping refuses; the next deploy removes it.
            with contextlib.suppress(docker.errors.APIError):
                obj.remove()


def _password_changed(previous: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    key = props["database"]["password_key"]
    old = {o["name"] for o in previous.get("objects") or [] if o["key"] == key}
    new = {o["name"] for o in props.get("objects") or [] if o["key"] == key}
    return bool(old) and old != new


def _rotate_database_password(run: _Run) -> None:
    """Set the new password in the running database (PostgreSQL reads POSTGRES_PASSWORD only at init), over
    its local socket, with the statement on stdin (never a command line)."""
    database = run.props["database"]
    service = f"{run.stack}_{database['service']}"
    containers = run.client.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"})
    if not containers:
        _log(run.stack, f"{service} runs no container here; its new password applies when it is created")
        return
    password = str(run.props["secrets"][database["password_key"]]).replace("'", "''")
    user = str(database["user"]).replace('"', '""')
    statement = f"ALTER ROLE \"{user}\" WITH PASSWORD '{password}';\n"
    run.engine.cli(
        [
            "exec",
            "-i",
            containers[0].id,
            "psql",
            "-v",
            "ON_ERROR_STOP=1",
            "-qU",
            database["user"],
            "-d",
            database["name"],
        ],
        input=statement,
    )
    _log(run.stack, f"set the new database password in {service}")


def _deploy(run: _Run, stack_file: str) -> None:
    auth = run.props.get("registry_auth")
    registries = {str(auth["address"]): (str(auth["username"]), str(auth["password"]))} if auth else {}
    run.engine.cli(
        ["stack", "deploy", "--prune", "--with-registry-auth", "--compose-file", "-", run.stack],
        input=stack_file,
        auth=registries,
    )


def _wait_for_database(run: _Run) -> None:
    database = run.props.get("database")
    if not database:
        return
    name = f"{run.stack}_{database['service']}"
    while True:
        service = run.client.services.get(name)
        progress = swarm_state.service_progress(service.attrs, service.tasks(), _ready_nodes(run), None)
        if progress.converged:
            return
        if run.remaining() <= 0:
            raise DeploymentFailed(f"{name} did not start: {_task_errors(service)}")
        time.sleep(POLL)


def _release(run: _Run, image: str) -> None:
    """Run the release job (the image's `release` process type) to completion, or fail with its output."""
    spec = run.props["release"]
    names = {o["key"]: o["name"] for o in run.props["objects"] if o["kind"] == "secret"}
    secrets = []
    for target, key in (spec.get("secrets") or {}).items():
        secret = run.client.secrets.get(names[key])
        secrets.append((secret.id, names[key], target))
    job = jobs.JobSpec(
        image=image,
        args=tuple(spec["command"]),
        environment=tuple(f"{k}={v}" for k, v in (spec.get("environment") or {}).items()),
        networks=(spec["network"],),
        secrets=tuple(secrets),
    )
    command = " ".join(spec["command"])
    _log(run.stack, f"release: {command} in {image}")
    digest = split_ref(image).digest.removeprefix("sha256:")[:12]
    try:
        result = jobs.run_job(
            run.client, f"{run.stack}_release_{digest}", job, timeout=max(run.remaining(), 1.0),
            labels={"flightdeck.release-job": run.stack},
        )  # fmt: skip
    except jobs.JobTimeout as err:
        raise DeploymentFailed(f"the release command `{command}` did not finish: {err}") from None
    if not result.succeeded:
        raise DeploymentFailed(
            f"the release command `{command}` failed in "
            f"{image}{f' ({result.errors})' if result.errors else ''}; "
            "nothing was deployed and the previous version keeps serving. Its "
            f"output:\n{result.output.strip()[-4000:]}"
        )
    _log(run.stack, "release: done")


def _task_errors(service: Any) -> str:
    errors = [t["Status"].get("Err", "") for t in service.tasks() if t["Status"].get("Err")]
    return "; ".join(dict.fromkeys(errors)) or "no task error reported"


def _spread(run: _Run) -> None:
    """A node that was down at the last deploy is back: roll the replicated app services (start-first, as
    any update) so their tasks spread over every node again."""
    for service in run.services():
        name = service.name.removeprefix(f"{run.stack}_")
        if name in (run.props.get("app_services") or []):
            _log(run.stack, f"spreading {service.name} over the nodes again")
            service.force_update()


def _ready_nodes(run: _Run) -> set[str]:
    return swarm_state.ready_nodes(n.attrs for n in run.client.nodes.list())


def _wait_until_converged(run: _Run, before: Mapping[str, str | None], at_start: set[str]) -> int:
    """Wait until every service of the stack runs its image on every ready node; return how many nodes are
    ready. Fails at once when swarm gives up (rollback) or a port is taken. A node that was ready at the
    start (at_start) and stays down NODE_GRACE ends the wait: rolled forward when the nodes still up run
    every task of the new version (swarm's update waits for the lost node forever), failed otherwise."""
    down_since: dict[str, float] = {}
    while True:
        nodes = [n.attrs for n in run.client.nodes.list()]
        ready = swarm_state.ready_nodes(nodes)
        now = time.monotonic()
        down_since = {node: down_since.get(node, now) for node in at_start - ready}
        pending, short = [], []
        for service in run.services():
            service.reload()
            tasks = service.tasks()
            progress = swarm_state.service_progress(service.attrs, tasks, ready, before.get(service.name))
            if progress.failure:
                _wait_for_rollback(run, service)
                raise DeploymentFailed(_failure_message(run, service, progress))
            if not progress.converged:
                pending.append(f"{progress.service} {progress.running}/{progress.desired}")
                settled = swarm_state.service_progress(
                    service.attrs, tasks, ready, before.get(service.name), update_done=True
                )
                if not settled.converged:
                    short.append(f"{settled.service} {settled.running}/{settled.desired}")
        if not pending:
            return len(ready)
        lost = sorted(
            swarm_state.node_names(nodes)[n] for n, t in down_since.items() if now - t >= NODE_GRACE
        )
        if lost and not short:
            _log(
                run.stack,
                f"rolled forward on the nodes still up; {', '.join(lost)} went down during the deploy: the "
                "next `pulumi up` once it is back spreads the tasks over it again",
            )
            return len(ready)
        if lost:
            raise DeploymentFailed(
                f"{', '.join(lost)} went down during the deploy and stayed down {NODE_GRACE:.0f}s, and the "
                f"nodes still up do not run the new version in full: {', '.join(short)} (running/desired). "
                "Bring the node back, or take it out of the stack's servers, and run `pulumi up` again"
            )
        if run.remaining() <= 0:
            raise DeploymentFailed(f"the stack did not converge in time: {', '.join(pending)}")
        time.sleep(POLL)


def _wait_for_rollback(run: _Run, service: Any) -> None:
    """Swarm is rolling a failed update back: wait until the previous version runs again (bounded), so that
    the failure reported says what is true."""
    while (service.attrs.get("UpdateStatus") or {}).get(
        "State"
    ) == "rollback_started" and run.remaining() > 0:
        time.sleep(POLL)
        service.reload()
    ready = _ready_nodes(run)
    rolled_back = (service.attrs.get("UpdateStatus") or {}).get("StartedAt")  # counts tasks only, from here
    while not swarm_state.service_progress(service.attrs, service.tasks(), ready, rolled_back).converged:
        if run.remaining() <= 0:
            return
        time.sleep(POLL)
        service.reload()


def _failure_message(run: _Run, service: Any, progress: swarm_state.Progress) -> str:
    spec = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]
    now = spec["Image"]
    errors = _task_errors(service)
    message = f"{progress.service}: {progress.failure}"
    if swarm_state.port_taken(errors) or "port" in (progress.failure or ""):
        keys = ", ".join(f"{port} ({key})" for port, key in (run.props.get("ports") or {}).items())
        return (
            f"{message}. A port the stack publishes is held by another process ({errors}): free it, or "
            "choose "
            f"another with `pulumi config set`: {keys}. {progress.service} runs as before."
        )
    check = " ".join(spec.get("Healthcheck", {}).get("Test", [])[1:])
    if not check:
        return f"{message}. Its new tasks failed: {errors}. {progress.service} runs {now} again."
    output = _failing_check_output(run, service)
    return (
        f"{message}. The new tasks failed their health check `{check}`"
        + (f": {output}" if output else f" ({errors})")
        + f". {progress.service} runs {now} again; the previous version keeps serving."
    )


def _failing_check_output(run: _Run, service: Any) -> str:
    """The last output of a failed health check of one of the service's tasks (containers on this engine)."""
    for task in service.tasks():
        container = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
        if not container:
            continue
        try:
            health = run.client.api.inspect_container(container)["State"].get("Health") or {}
        except docker.errors.NotFound:
            continue
        failed = [entry for entry in health.get("Log", []) if entry.get("ExitCode")]
        if failed:
            return str(failed[-1].get("Output", "")).strip()
    return ""


def _wait_until_healthy(run: _Run) -> None:
    health = run.props.get("health")
    if not health:
        return
    request = urllib.request.Request(str(health["url"]), headers={"Host": str(health["host"])})  # noqa: S310
    last = ""
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (the stack's own proxy)
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as err:
            last = f"HTTP {err.code}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        if run.remaining() <= 0:
            raise DeploymentFailed(
                f"{health['url']} did not answer 200 through the proxy in time (last: {last})"
            )
        time.sleep(POLL)


def _prune_images(run: _Run, history: list[releases.Release], session: SshSession | None) -> None:
    """On every node, drop the app images of releases older than the last keep_releases; never one a
    container uses."""
    repository = str(run.props.get("repository") or "")
    if not repository:
        return
    keep = {r.digest for r in history[-int(run.props.get("keep_releases", 5)) :]}
    for service in run.services():
        image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        if "@" in image:
            keep.add(image.rsplit("@", 1)[1])
    for url in run.props.get("nodes") or [run.props["engine"]]:
        try:
            with open_engine(str(url), session=session) as node:
                in_use = {c.attrs["Image"] for c in node.client.containers.list(all=True)}
                images = [i.attrs for i in node.client.images.list(name=repository)]
                for image_id in swarm_state.images_to_prune(images, repository, keep, in_use):
                    try:
                        node.client.images.remove(image_id, force=True)
                    except docker.errors.APIError as err:
                        _log(run.stack, f"kept {image_id[:19]} on {url}: {err.explanation}")
        except EngineUnavailable as err:
            _log(run.stack, f"skipped pruning old images on {url}: {err}")


def _prune_registry(
    run: _Run, history: list[releases.Release], session: SshSession | None, image: str
) -> None:
    """Drop the releases beyond keep_releases from the registry too; a failure here is logged, not fatal: the
    deploy itself has succeeded."""
    registry = run.props.get("registry")
    if not registry or not image:
        return
    serving = {
        s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].rsplit("@", 1)[-1] for s in run.services()
    }
    old = registry_gc.doomed(history, int(run.props.get("keep_releases", 5)), serving)
    try:
        registry_gc.prune_registry(
            run.engine,
            session,
            stack=run.stack,
            registry=registry,
            repository=split_ref(image).path,
            digests=old,
            auth=run.props.get("registry_auth"),
            timeout=max(run.remaining(), 60.0),
        )
    except (RuntimeError, OSError, docker.errors.DockerException, jobs.JobTimeout) as err:
        _log(run.stack, f"registry: old releases kept this time ({err})")


@dataclass(frozen=True)
class SwarmDeploymentArgs:
    engine: pulumi.Input[str]
    stack: str
    stack_file: pulumi.Input[str]
    objects: pulumi.Input[list[dict[str, str]]]
    configs: pulumi.Input[dict[str, str]]
    secrets: pulumi.Input[dict[str, str]]
    release: pulumi.Input[dict[str, Any]] | None = None
    database: dict[str, str] | None = None
    app_services: tuple[str, ...] = ()
    health: pulumi.Input[dict[str, str]] | None = None
    ssh: pulumi.Input[dict[str, Any]] | None = None
    registry_auth: pulumi.Input[dict[str, str]] | None = None
    nodes: pulumi.Input[list[str]] = field(default_factory=list)
    repository: pulumi.Input[str] = ""  # the app image's repository (its old images are pruned)
    # The registry the stack pulls from, for its garbage collection: {kind: service|container, name, address,
    # config} (providers/registry_gc.py).
    registry: Mapping[str, str] | None = None
    keep_releases: int = 5
    ports: Mapping[str, str] = field(default_factory=dict)
    kept_volumes: tuple[str, ...] = ()
    timeout: int = 600


class SwarmDeployment(Resource, module="flightdeck", name="SwarmDeployment"):
    services: pulumi.Output[dict[str, Any]]
    last_release: pulumi.Output[dict[str, Any]]
    image: pulumi.Output[str]

    def __init__(
        self, name: str, args: SwarmDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "engine": args.engine,
            "stack": args.stack,
            "stack_file": args.stack_file,
            "objects": args.objects,
            "configs": args.configs,
            "secrets": pulumi.Output.secret(args.secrets),
            "release": args.release,
            "database": args.database,
            "app_services": list(args.app_services),
            "health": args.health,
            "ssh": args.ssh,
            "registry_auth": pulumi.Output.secret(args.registry_auth)
            if args.registry_auth is not None
            else None,
            "nodes": args.nodes,
            "repository": args.repository,
            "registry": dict(args.registry) if args.registry else None,
            "keep_releases": args.keep_releases,
            "ports": dict(args.ports),
            "kept_volumes": list(args.kept_volumes),
            "timeout": args.timeout,
            "services": None,
            "last_release": None,
            "ready_nodes": None,
            "image": None,
        }
        super().__init__(SwarmDeploymentProvider(), name, props, opts)
