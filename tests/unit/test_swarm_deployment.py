"""SwarmDeployment's provider (providers/swarm_deployment.py) without an engine: diff over inputs as the state
gives them back, the helpers of create/update, and the steps that talk to the engine run against in-memory
stand-ins for the SDK's client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import pytest
import yaml
from pulumi.runtime.rpc import UNKNOWN

from providers import swarm_deployment as sd
from providers.releases import Release
from providers.swarm_state import declared_services
from render.stack_file import StackSpec, bundled_database_url, plan_stack
from settings import parse
from targets.processes import app_processes
from tests.support.fake_docker import FakeClient
from tests.support.stacks import stack_config

STACK = "flightdeck-local"
ENGINE = "unix:///var/run/docker.sock"
REPOSITORY = "127.0.0.1:5000/flightdeck-local/web"
IMAGE = f"{REPOSITORY}@sha256:" + "ab" * 32
PASSWORD = "pa'ss\"word;--"


def plan(image: str = IMAGE, password: str = PASSWORD, **overrides: Any) -> Any:
    settings = parse(*stack_config("local", **overrides))
    values = {
        "SECRET_KEY": "k" * 64,
        "DATABASE_URL": bundled_database_url(password),
        "postgres_password": password,
    }
    spec = StackSpec(
        stack=STACK,
        image=image,
        app=settings.app,
        swarm=settings.swarm,
        processes=app_processes(settings),
        values=values,
        bundled_database=True,
    )
    return plan_stack(spec), values


def props(image: str = IMAGE, password: str = PASSWORD, **overrides: Any) -> dict[str, Any]:
    """The inputs SwarmStack gives the resource for the local stack."""
    p, values = plan(image, password, **overrides)
    return {
        "engine": ENGINE,
        "stack": STACK,
        "stack_file": p.stack_file,
        "objects": [{"kind": o.kind, "key": o.key, "name": o.name} for o in p.objects],
        "configs": dict(p.configs),
        "secrets": values,
        "release": {
            "command": list(p.release.command),
            "environment": dict(p.release.environment),
            "secrets": dict(p.release.secrets),
            "network": p.release.network,
        },
        "database": {"service": "db", "user": "app", "name": "app", "password_key": "postgres_password"},
        "app_services": list(p.app_services),
        "health": {"url": "http://127.0.0.1:8080/healthz", "host": "localhost"},
        "ssh": None,
        "registry_auth": None,
        "nodes": [ENGINE],
        "repository": REPOSITORY,
        "keep_releases": 5,
        "ports": {"8080": "flightdeck:httpPort", "8443": "flightdeck:httpsPort"},
        "kept_volumes": ["db-data"],
        "timeout": 600,
        "services": None,
        "last_release": None,
        "ready_nodes": None,
        "image": None,
    }


def state_after_apply(inputs: dict[str, Any], ready_nodes: int = 1) -> dict[str, Any]:
    """What _apply records (inputs without the secrets, plus what it saw), as the state gives it back: every
    number a float."""
    outs = {k: v for k, v in inputs.items() if k not in ("secrets", "registry_auth")}
    outs.update(
        services=declared_services(STACK, inputs["stack_file"]),
        ready_nodes=ready_nodes,
        last_release={
            "number": 3,
            "image": IMAGE,
            "digest": IMAGE.split("@")[1],
            "deployed_at": "2026-12-01",
        },
        image=IMAGE,
    )
    loaded: dict[str, Any] = json.loads(json.dumps(outs), parse_int=float)
    return loaded


PROVIDER = sd.SwarmDeploymentProvider()


# -- diff ----------------------------------------------------------------------------------------------------


def test_nothing_changes_for_identical_inputs_after_the_state_round_trip() -> None:
    result = PROVIDER.diff(STACK, state_after_apply(props()), props())
    assert result.changes is False and result.replaces == []


def test_a_new_stack_file_is_an_update_in_place() -> None:
    other = f"{REPOSITORY}@sha256:" + "cd" * 32
    result = PROVIDER.diff(STACK, state_after_apply(props()), props(image=other))
    assert result.changes is True and result.replaces == []
    result = PROVIDER.diff(STACK, state_after_apply(props()), props(webInstances=3))
    assert result.changes is True and result.replaces == []


def test_a_new_secret_value_is_a_change_through_the_object_names() -> None:
    result = PROVIDER.diff(STACK, state_after_apply(props()), props(password="another-password"))
    assert result.changes is True


def test_another_engine_or_stack_name_replaces_the_deployment() -> None:
    olds = state_after_apply(props())
    result = PROVIDER.diff(STACK, olds, {**props(), "engine": "ssh://deploy@203.0.113.21:22"})
    assert result.changes is True and result.replaces == ["engine"]
    assert result.delete_before_replace is True  # two stacks of one name cannot run on one swarm


def test_a_service_changed_by_hand_is_put_back() -> None:
    olds = state_after_apply(props())
    olds["services"][f"{STACK}_web"]["replicas"] = 5.0  # `docker service scale`, seen by refresh
    assert PROVIDER.diff(STACK, olds, props()).changes is True
    olds = state_after_apply(props())
    del olds["services"][f"{STACK}_proxy"]  # `docker service rm`
    assert PROVIDER.diff(STACK, olds, props()).changes is True


def test_a_node_that_was_down_at_the_last_deploy_is_a_change() -> None:
    servers = {**props(), "nodes": [f"ssh://deploy@203.0.113.{n}:22" for n in (21, 22, 23)]}
    assert PROVIDER.diff(STACK, state_after_apply(servers, ready_nodes=3), servers).changes is False
    assert PROVIDER.diff(STACK, state_after_apply(servers, ready_nodes=2), servers).changes is True


def test_a_preview_with_the_image_not_built_yet_is_a_change_not_an_error() -> None:
    olds = state_after_apply(props())
    result = PROVIDER.diff(STACK, olds, {**props(), "stack_file": UNKNOWN, "objects": UNKNOWN})
    assert result.changes is True and result.replaces == []
    result = PROVIDER.diff(STACK, olds, {**props(), "engine": UNKNOWN, "stack_file": UNKNOWN})
    assert result.changes is True


def test_a_re_pinned_host_key_reaches_the_state() -> None:
    trust = {"hosts": [{"address": "203.0.113.21", "port": 22, "host_key": "ssh-ed25519 AAAAold"}]}
    servers = {**props(), "engine": "ssh://deploy@203.0.113.21:22", "ssh": trust}
    rotated = {**servers, "ssh": {"hosts": [{**trust["hosts"][0], "host_key": "ssh-ed25519 AAAAnew"}]}}
    assert PROVIDER.diff(STACK, state_after_apply(servers), servers).changes is False
    assert PROVIDER.diff(STACK, state_after_apply(servers), rotated).changes is True


# -- pure helpers --------------------------------------------------------------------------------------------


def test_a_first_deploy_scales_the_app_to_zero_and_keeps_the_rest() -> None:
    inputs = props()
    original = yaml.safe_load(inputs["stack_file"])
    scaled = yaml.safe_load(sd._scaled_to_zero(inputs))
    for name in ("web", "worker", "scheduler"):
        assert scaled["services"][name]["deploy"]["replicas"] == 0
        original["services"][name]["deploy"]["replicas"] = 0
    assert scaled == original  # the database, the proxy, secrets, escaping: untouched
    dollars = props(configVars={"PRICE": "$5"})
    assert '"PRICE": "$$5"' in sd._scaled_to_zero(dollars)  # escaped and quoted as the renderer does


def test_the_app_image_is_the_first_app_service_image_by_digest() -> None:
    assert sd._app_image(props()) == IMAGE
    assert sd._app_image({**props(), "app_services": []}) == ""  # the registry's stack has no app
    tagged = props()
    tagged["stack_file"] = tagged["stack_file"].replace(IMAGE, f"{REPOSITORY}:latest")
    with pytest.raises(ValueError, match="not an image reference by digest"):
        sd._app_image(tagged)


def test_the_node_count_of_a_deployment() -> None:
    assert sd._node_count({"nodes": []}) == 1
    assert sd._node_count({"nodes": ["a", "b", "c"]}) == 3


def test_a_password_change_is_seen_through_the_object_names() -> None:
    before = props()
    assert not sd._password_changed(before, props())
    assert sd._password_changed(before, props(password="new-password"))
    assert not sd._password_changed(
        {**before, "objects": []}, props()
    )  # nothing recorded: nothing to compare


# -- steps against stand-ins ---------------------------------------------------------------------------------


@dataclass
class FakeContainer:
    id: str
    attrs: dict[str, Any]


@dataclass
class FakeImages:
    listed: list[dict[str, Any]]
    removed: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    def list(self, name: str | None = None) -> list[FakeContainer]:
        def named(image: dict[str, Any]) -> bool:
            refs = (image.get("RepoDigests") or []) + (image.get("RepoTags") or [])
            return name is None or any(r.startswith(name) for r in refs)

        return [FakeContainer(i["Id"], i) for i in self.listed if named(i)]

    def remove(self, image: str, force: bool = False) -> None:
        if image in self.refuse:
            raise docker.errors.APIError(
                "conflict", explanation=f"image {image} is being used by a running container"
            )
        assert force
        self.removed.append(image)


@dataclass
class FakeContainers:
    running: list[FakeContainer] = field(default_factory=list)
    filters_seen: list[Any] = field(default_factory=list)

    def list(self, all: bool = False, filters: Any = None) -> list[FakeContainer]:
        self.filters_seen.append(filters)
        return list(self.running)


@dataclass
class FakeService:
    name: str
    attrs: dict[str, Any]


@dataclass
class FakeServices:
    items: list[FakeService] = field(default_factory=list)

    def list(self, filters: Any = None) -> list[FakeService]:
        return list(self.items)


@dataclass
class FakeEngineClient(FakeClient):
    containers: FakeContainers = field(default_factory=FakeContainers)
    services: FakeServices = field(default_factory=FakeServices)
    images: FakeImages = field(default_factory=lambda: FakeImages([]))


@dataclass
class FakeEngine:
    client: FakeEngineClient = field(default_factory=FakeEngineClient)
    url: str = ENGINE
    calls: list[tuple[list[str], str | None]] = field(default_factory=list)

    def cli(self, args: list[str], *, input: str | None = None, **_: Any) -> str:
        self.calls.append((list(args), input))
        return ""


def run_of(inputs: dict[str, Any], engine: FakeEngine) -> sd._Run:
    return sd._Run(inputs, engine, None)  # type: ignore[arg-type]


def test_objects_are_created_once_from_the_inputs_and_labelled_with_the_stack() -> None:
    engine = FakeEngine()
    inputs = props()
    created = sd._create_objects(run_of(inputs, engine))
    assert sorted(created) == sorted(o["name"] for o in inputs["objects"])
    for o in inputs["objects"]:
        collection = engine.client.secrets if o["kind"] == "secret" else engine.client.configs
        made = collection.get(o["name"])
        value = inputs["secrets"][o["key"]] if o["kind"] == "secret" else inputs["configs"][o["key"]]
        assert made.data == value.encode()
        assert made.attrs["Spec"]["Labels"] == {sd.STACK_LABEL: STACK}
    # The name is a digest of the content: an existing object is that very value and is not made again.
    assert sd._create_objects(run_of(inputs, engine)) == []


def test_objects_no_deploy_uses_are_removed_and_those_in_use_wait() -> None:
    engine = FakeEngine()
    old, new = props(), props(password="new-password")
    sd._create_objects(run_of(old, engine))
    sd._create_objects(run_of(new, engine))
    stale = {o["name"] for o in old["objects"]} - {o["name"] for o in new["objects"]}
    assert stale  # the database password and the URL that holds it
    busy = engine.client.secrets.get(sorted(stale)[0])
    busy.in_use = True  # a stopping task still mounts it
    record = engine.client.configs.create(
        f"{STACK}_release_000001", b"{}", labels={"flightdeck.release": STACK}
    )
    sd._remove_objects(run_of(new, engine), keep={o["name"] for o in new["objects"]})
    left = {o.name for o in engine.client.secrets.items} | {o.name for o in engine.client.configs.items}
    assert left == {o["name"] for o in new["objects"]} | {busy.name, record.name}


def test_a_new_database_password_is_set_over_stdin_never_on_a_command_line() -> None:
    engine = FakeEngine()
    engine.client.containers.running = [FakeContainer("c0ffee", {"Image": "sha256:0d"})]
    sd._rotate_database_password(run_of(props(), engine))
    [(args, stdin)] = engine.calls
    assert args == ["exec", "-i", "c0ffee", "psql", "-v", "ON_ERROR_STOP=1", "-qU", "app", "-d", "app"]
    assert all(PASSWORD not in arg for arg in args)
    # Quoted for SQL: the quote in the password is doubled, nothing ends the statement early.
    assert stdin == "ALTER ROLE \"app\" WITH PASSWORD 'pa''ss\"word;--';\n"
    assert engine.client.containers.filters_seen == [
        {"label": "com.docker.swarm.service.name=flightdeck-local_db"}
    ]


def test_no_database_container_here_means_nothing_to_set() -> None:
    engine = FakeEngine()
    sd._rotate_database_password(run_of(props(), engine))
    assert engine.calls == []


def node_image(n: int) -> dict[str, Any]:
    return {
        "Id": f"sha256:{n:064x}",
        "RepoTags": [],
        "RepoDigests": [f"{REPOSITORY}@sha256:" + f"{n:02x}" * 32],
    }


def release(n: int) -> Release:
    return Release(n, f"{REPOSITORY}@sha256:" + f"{n:02x}" * 32, "2026-12-01")


def test_every_node_drops_the_images_of_old_releases_only(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = {f"ssh://deploy@203.0.113.{n}:22": FakeEngine() for n in (21, 22)}
    for engine in nodes.values():
        engine.client.images.listed = [node_image(n) for n in range(1, 9)]
    first = nodes["ssh://deploy@203.0.113.21:22"]
    first.client.containers.running = [
        FakeContainer("c1", {"Image": node_image(1)["Id"]})
    ]  # release 1 still runs
    first.client.images.refuse = {node_image(2)["Id"]}
    manager = FakeEngine()
    # The stack's web runs release 3 (a rollback): what a service runs is kept, whatever the history says.
    spec = {"TaskTemplate": {"ContainerSpec": {"Image": release(3).image}}}
    manager.client.services.items = [FakeService(f"{STACK}_web", {"Spec": spec})]

    @contextlib.contextmanager
    def open_engine(url: str, **_: Any) -> Iterator[FakeEngine]:
        if url not in nodes:
            raise sd.EngineUnavailable(f"no Docker engine answers at {url}")
        yield nodes[url]

    monkeypatch.setattr(sd, "open_engine", open_engine)
    inputs = {**props(), "nodes": [*nodes, "ssh://deploy@203.0.113.23:22"], "keep_releases": 3}
    sd._prune_images(run_of(inputs, manager), [release(n) for n in range(1, 9)], None)
    # Kept: releases 6-8 (keepReleases 3), release 3 (a service runs it); release 1 (a container) on the first
    # node; release 2 there because the engine refused. The third node is down: skipped, not an error.
    assert first.client.images.removed == [node_image(n)["Id"] for n in (4, 5)]
    assert nodes["ssh://deploy@203.0.113.22:22"].client.images.removed == [
        node_image(n)["Id"] for n in (1, 2, 4, 5)
    ]


def test_nothing_is_pruned_without_the_apps_repository() -> None:
    engine = FakeEngine()
    engine.client.images.listed = [node_image(1)]
    sd._prune_images(run_of({**props(), "repository": ""}, engine), [release(5)], None)
    assert engine.client.images.removed == []


# -- a node lost during the deploy ---------------------------------------------------------------------------

WEB = f"{STACK}_web"


def node(node_id: str, state: str) -> Any:
    return FakeContainer(
        node_id,
        {
            "ID": node_id,
            "Description": {"Hostname": f"host-{node_id}"},
            "Status": {"State": state},
            "Spec": {"Availability": "active"},
        },
    )


@dataclass
class ScriptedNodes:
    """client.nodes: the states of the nodes at each poll; the last answer repeats."""

    polls: list[dict[str, str]]
    seen: int = 0

    def list(self) -> list[Any]:
        states = self.polls[min(self.seen, len(self.polls) - 1)]
        self.seen += 1
        return [node(node_id, state) for node_id, state in states.items()]


@dataclass
class UpdatingService:
    """The web service mid-update: its tasks of the new image on n1 and n2; swarm's update state at each
    reload (the last one repeats)."""

    states: list[str]
    replicas: int = 2
    name: str = WEB
    reloads: int = 0

    @property
    def state(self) -> str:
        return self.states[min(self.reloads, len(self.states)) - 1]

    @property
    def attrs(self) -> dict[str, Any]:
        return {
            "Spec": {
                "Name": WEB,
                "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}},
                "Mode": {"Replicated": {"Replicas": self.replicas}},
            },
            "UpdateStatus": {"State": self.state, "StartedAt": "2026-12-02T00:00:01Z"},
        }

    def reload(self) -> None:
        self.reloads += 1

    def tasks(self) -> list[dict[str, Any]]:
        return [
            {
                "NodeID": node_id,
                "DesiredState": "running",
                "Status": {"State": "running"},
                "Spec": {"ContainerSpec": {"Image": IMAGE}},
            }
            for node_id in ("n1", "n2")
        ]


def waiting_engine(states: list[str], polls: list[dict[str, str]], replicas: int = 2) -> FakeEngine:
    engine = FakeEngine()
    engine.client.services = FakeServices([UpdatingService(states, replicas)])  # type: ignore[list-item]
    engine.client.nodes = ScriptedNodes(polls)  # type: ignore[attr-defined]
    return engine


def test_a_node_lost_for_good_rolls_forward_on_the_nodes_still_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sd, "POLL", 0.001)
    monkeypatch.setattr(sd, "NODE_GRACE", 0.05)
    up = {"n1": "ready", "n2": "ready", "n3": "ready"}
    # Swarm's update waits for n3 forever; n1 and n2 run both tasks of the new version.
    engine = waiting_engine(["updating"], [up, {**up, "n3": "down"}])
    run = run_of({**props(), "timeout": 30}, engine)
    assert sd._wait_until_converged(run, {WEB: None}, {"n1", "n2", "n3"}) == 2  # the next up spreads again
    assert run.remaining() > 25  # the grace, not the deploy's timeout


def test_a_node_lost_for_good_with_tasks_missing_ends_the_deploy_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sd, "POLL", 0.001)
    monkeypatch.setattr(sd, "NODE_GRACE", 0.05)
    up = {"n1": "ready", "n2": "ready", "n3": "ready"}
    engine = waiting_engine(["updating"], [up, {**up, "n3": "down"}], replicas=3)  # the third is not placed
    run = run_of({**props(), "timeout": 30}, engine)
    with pytest.raises(sd.DeploymentFailed) as failed:
        sd._wait_until_converged(run, {WEB: None}, {"n1", "n2", "n3"})
    message = str(failed.value)
    assert message.startswith("host-n3 went down during the deploy") and f"{WEB} 2/3" in message
    assert "`pulumi up` again" in message
    assert run.remaining() > 25


def test_a_node_back_within_the_grace_changes_nothing_and_a_finished_update_converges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sd, "POLL", 0.001)
    monkeypatch.setattr(sd, "NODE_GRACE", 30.0)
    up = {"n1": "ready", "n2": "ready", "n3": "ready"}
    down = {**up, "n3": "down"}
    engine = waiting_engine(["updating", "updating", "completed"], [down, down, up])
    run = run_of({**props(), "timeout": 30}, engine)
    assert sd._wait_until_converged(run, {WEB: None}, {"n1", "n2", "n3"}) == 3
    assert engine.client.nodes.seen == 3  # type: ignore[attr-defined]
    # Converged on the nodes still up: the deploy ends with the ready count, and the next up spreads again.
    engine = waiting_engine(["completed"], [down])
    assert sd._wait_until_converged(run_of(props(), engine), {WEB: None}, {"n1", "n2", "n3"}) == 2
