"""What a swarm stack looks like from the engine's answers (providers/swarm_state.py), with answers shaped as
Docker's API gives them (`docker service inspect`, `GET /tasks`, `docker node inspect`, `GET /images/json`):
convergence, failures, the live shape against the declared one, and the images a node may drop."""

from __future__ import annotations

from typing import Any

import pytest

from providers import swarm_state
from providers.swarm_state import (
    declared_services,
    drift,
    images_to_prune,
    live_services,
    ready_nodes,
    service_progress,
)
from render.stack_file import StackSpec, bundled_database_url, plan_stack
from settings import parse
from targets.processes import app_processes
from tests.support.stacks import stack_config

REPOSITORY = "127.0.0.1:5000/flightdeck-local/web"
OLD = f"{REPOSITORY}@sha256:" + "01" * 32
NEW = f"{REPOSITORY}@sha256:" + "02" * 32
EARLIER = "2026-11-30T10:00:00.000000000Z"
NOW = "2026-12-01T09:00:00.000000000Z"


def node(
    node_id: str, state: str = "ready", availability: str = "active", role: str = "worker"
) -> dict[str, Any]:
    return {
        "ID": node_id,
        "Version": {"Index": 31},
        "CreatedAt": "2026-11-01T08:00:00.000000000Z",
        "Spec": {"Labels": {}, "Role": role, "Availability": availability},
        "Description": {"Hostname": node_id, "Platform": {"Architecture": "x86_64", "OS": "linux"}},
        "Status": {"State": state, "Addr": "192.0.2.10"},
    }


def replicated(replicas: int) -> dict[str, Any]:
    return {"Replicated": {"Replicas": replicas}}


GLOBAL: dict[str, Any] = {"Global": {}}


def service(
    name: str,
    image: str,
    mode: dict[str, Any],
    update: dict[str, Any] | None = None,
    stack: str = "flightdeck-local",
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "ID": f"id-{name}",
        "Version": {"Index": 120},
        "CreatedAt": "2026-11-01T08:00:00.000000000Z",
        "UpdatedAt": NOW,
        "Spec": {
            "Name": f"{stack}_{name}",
            "Labels": {"com.docker.stack.image": image, "com.docker.stack.namespace": stack},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": image,
                    "Labels": {"com.docker.stack.namespace": stack},
                    "Args": ["/app/start", name],
                },
                "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0},
                "ForceUpdate": 0,
                "Runtime": "container",
            },
            "Mode": mode,
            "EndpointSpec": {"Mode": "dnsrr"},
        },
        "Endpoint": {"Spec": {}},
    }
    if update is not None:
        answer["UpdateStatus"] = update
    return answer


def task(
    node_id: str,
    image: str,
    state: str = "running",
    desired: str = "running",
    err: str | None = None,
    slot: int = 1,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "Timestamp": NOW,
        "State": state,
        "Message": {"running": "started", "pending": "pending task scheduling"}.get(state, state),
        "ContainerStatus": {"ContainerID": f"c-{node_id}-{slot}", "PID": 4242, "ExitCode": 0},
        "PortStatus": {},
    }
    if err is not None:
        status["Err"] = err
    return {
        "ID": f"t-{node_id}-{slot}-{state}",
        "Version": {"Index": 130},
        "ServiceID": "id-web",
        "Slot": slot,
        "NodeID": node_id,
        "Spec": {"ContainerSpec": {"Image": image}, "ForceUpdate": 0},
        "Status": status,
        "DesiredState": desired,
    }


READY = {"n1", "n2"}


def update(state: str, started: str = NOW, message: str = "") -> dict[str, Any]:
    status = {"State": state, "StartedAt": started, "Message": message}
    if state.endswith("completed"):
        status["CompletedAt"] = NOW
    return status


# -- nodes --------------------------------------------------------------------------------------------------


def test_ready_nodes_are_up_and_active() -> None:
    nodes = [
        node("n1", role="manager"),
        node("n2"),
        node("n3", state="down"),
        node("n4", availability="drain"),
        node("n5", availability="pause"),
        node("n6", state="unknown"),
    ]
    assert ready_nodes(nodes) == {"n1", "n2"}


# -- convergence --------------------------------------------------------------------------------------------


def test_a_replicated_service_converges_when_each_replica_runs_the_new_image() -> None:
    web = service("web", NEW, replicated(2), update("completed", message="update completed"))
    tasks = [
        task("n1", NEW, slot=1),
        task("n2", NEW, slot=2),
        task("n1", OLD, state="shutdown", desired="shutdown"),
    ]
    progress = service_progress(web, tasks, READY, EARLIER)
    assert progress == swarm_state.Progress("flightdeck-local_web", True, 2, 2)


def test_a_start_first_update_half_way_is_not_converged() -> None:
    web = service("web", NEW, replicated(2), update("updating", message="update in progress"))
    tasks = [task("n1", NEW, slot=1), task("n2", OLD, slot=2), task("n2", NEW, state="starting", slot=2)]
    progress = service_progress(web, tasks, READY, EARLIER)
    assert (progress.converged, progress.running, progress.desired, progress.failure) == (False, 1, 2, None)


def test_an_update_still_in_progress_is_not_converged_even_with_every_task_running() -> None:
    web = service("web", NEW, replicated(1), update("updating"))
    progress = service_progress(web, [task("n1", NEW)], READY, EARLIER)
    assert not progress.converged and progress.failure is None


def test_tasks_on_down_nodes_are_ignored() -> None:
    web = service("web", NEW, replicated(2))
    # n3 is down: swarm still lists its task as running (it cannot hear from it), and will replace it.
    stale = [task("n1", NEW), task("n3", NEW, slot=2)]
    assert service_progress(web, stale, READY, None).running == 1
    assert not service_progress(web, stale, READY, None).converged
    moved = [*stale, task("n2", NEW, slot=2)]
    assert service_progress(web, moved, READY, None).converged


def test_a_global_service_wants_one_task_on_every_ready_node() -> None:
    proxy = service("proxy", "caddy:2@sha256:" + "0c" * 32, GLOBAL)
    image = proxy["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    one = [task("n1", image)]
    progress = service_progress(proxy, one, READY, None)
    assert (progress.converged, progress.running, progress.desired) == (False, 1, 2)
    both = [*one, task("n2", image), task("n3", image)]  # n3 is down: not wanted, not counted
    progress = service_progress(proxy, both, READY, None)
    assert (progress.converged, progress.running, progress.desired) == (True, 2, 2)


def test_a_rolled_back_update_is_a_failure_with_swarms_message() -> None:
    message = "update rolled back due to failure or early termination of task t-n1-1-failed"
    for state in ("rollback_started", "rollback_completed", "rollback_paused"):
        web = service("web", OLD, replicated(2), update(state, message=message))
        tasks = [
            task("n1", OLD),
            task("n2", OLD, slot=2),
            task("n1", NEW, state="failed", desired="shutdown"),
        ]
        progress = service_progress(web, tasks, READY, EARLIER)
        assert not progress.converged
        assert progress.failure == f"swarm stopped the update ({state}): {message}"


def test_a_paused_update_is_a_failure() -> None:
    message = "update paused due to failure or early termination of task t-n2-2-failed"
    web = service("worker", NEW, replicated(1), update("paused", message=message))
    progress = service_progress(web, [task("n1", OLD)], READY, EARLIER)
    assert progress.failure is not None and message in progress.failure


def test_an_earlier_update_is_not_this_deploys() -> None:
    # The last deploy was rolled back; this one changed nothing of this service: its status is still that one.
    web = service(
        "web", OLD, replicated(2), update("rollback_completed", started=EARLIER, message="rollback completed")
    )
    progress = service_progress(web, [task("n1", OLD), task("n2", OLD, slot=2)], READY, EARLIER)
    assert progress.failure is None and progress.converged
    # The same status seen for the first time (no status before this deploy) is this deploy's.
    assert service_progress(web, [task("n1", OLD)], READY, None).failure is not None


def test_a_service_never_updated_converges_on_its_tasks() -> None:
    db = service("db", "postgres:16@sha256:" + "0d" * 32, replicated(1))
    image = db["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert service_progress(db, [task("n1", image)], READY, None).converged
    assert not service_progress(db, [task("n1", image, state="starting")], READY, None).converged
    assert service_progress(service("db", image, replicated(0)), [], READY, None).converged


@pytest.mark.parametrize(
    "err",
    [
        "no suitable node (host-mode port already in use on 2 nodes)",
        "starting container failed: driver failed programming external connectivity on endpoint "
        "flightdeck-local_proxy.x (0f1e): Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: "
        "address already in use",
        "Bind for 0.0.0.0:8443 failed: port is already allocated",
    ],
)
def test_a_port_taken_is_a_failure_at_once(err: str) -> None:
    proxy = service("proxy", "caddy:2", GLOBAL)
    tasks = [task("n1", "caddy:2"), task("n2", "caddy:2", state="pending", err=err)]
    progress = service_progress(proxy, tasks, READY, None)
    assert not progress.converged
    assert progress.failure == f"a port it publishes is taken: {err}"


def test_a_port_error_of_a_task_swarm_has_given_up_on_is_history() -> None:
    proxy = service("proxy", "caddy:2", GLOBAL)
    err = "no suitable node (host-mode port already in use on 1 node)"
    tasks = [
        task("n1", "caddy:2"),
        task("n2", "caddy:2"),
        task("n2", "caddy:2", "rejected", "shutdown", err, 2),
    ]
    assert service_progress(proxy, tasks, READY, None).converged


def test_other_task_errors_do_not_fail_the_deploy_at_once() -> None:
    web = service("web", NEW, replicated(1))
    tasks = [
        task("n1", NEW, state="failed", desired="shutdown", err="task: non-zero exit (1)"),
        task("n1", NEW, slot=2),
    ]
    progress = service_progress(web, tasks, READY, None)
    assert progress.failure is None and progress.converged


def test_jobs_are_left_to_whoever_waits_for_them() -> None:
    job = service("release_0123", NEW, {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}})
    assert service_progress(job, [], READY, None) == swarm_state.Progress(
        "flightdeck-local_release_0123", True, 0, 0
    )


# -- declared against live ----------------------------------------------------------------------------------


def stack_file() -> str:
    settings = parse(*stack_config("local"))
    values = {"SECRET_KEY": "k" * 64, "DATABASE_URL": bundled_database_url("pw"), "postgres_password": "pw"}
    spec = StackSpec(
        stack="flightdeck-local",
        image=NEW,
        app=settings.app,
        swarm=settings.swarm,
        processes=app_processes(settings),
        values=values,
        bundled_database=True,
    )
    return plan_stack(spec).stack_file


def live_answer() -> list[dict[str, Any]]:
    """The services `docker stack deploy` made of stack_file(): tags pinned to digests, jobs alongside."""
    return [
        service("web", NEW, replicated(2), update("completed")),
        service("worker", NEW, replicated(1)),
        service("scheduler", NEW, replicated(1)),
        service("db", "postgres:16@sha256:" + "0d" * 32, replicated(1)),
        service("proxy", "caddy:2@sha256:" + "0c" * 32, GLOBAL),
        service("release_020202020202", NEW, {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}),
    ]


def test_the_declared_shape_of_a_stack_file() -> None:
    assert declared_services("flightdeck-local", stack_file()) == {
        "flightdeck-local_web": {"image": NEW, "replicas": 2},
        "flightdeck-local_worker": {"image": NEW, "replicas": 1},
        "flightdeck-local_scheduler": {"image": NEW, "replicas": 1},
        "flightdeck-local_db": {"image": "postgres:16", "replicas": 1},
        "flightdeck-local_proxy": {"image": "caddy:2", "replicas": "global"},
    }


def test_the_live_shape_drops_the_pinned_digest_of_a_tag_and_skips_jobs() -> None:
    live = live_services(live_answer())
    assert live["flightdeck-local_db"] == {"image": "postgres:16", "replicas": 1}
    assert live["flightdeck-local_proxy"] == {"image": "caddy:2", "replicas": "global"}
    assert live["flightdeck-local_web"] == {"image": NEW, "replicas": 2}  # released by digest: kept whole
    assert "flightdeck-local_release_020202020202" not in live


def test_a_stack_as_deployed_has_no_drift() -> None:
    assert drift(declared_services("flightdeck-local", stack_file()), live_services(live_answer())) == []


def test_the_state_round_trip_of_numbers_is_no_drift() -> None:
    live = live_services(live_answer())
    from_state = {
        name: {
            **shape,
            "replicas": shape["replicas"] if shape["replicas"] == "global" else float(shape["replicas"]),
        }
        for name, shape in live.items()
    }
    assert drift(declared_services("flightdeck-local", stack_file()), from_state) == []


def test_drift_names_each_change_by_hand() -> None:
    answer = live_answer()
    answer[0]["Spec"]["Mode"] = replicated(5)  # docker service scale flightdeck-local_web=5
    answer[1]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = OLD  # docker service update --image …
    del answer[2]  # docker service rm flightdeck-local_scheduler
    answer.append(service("debug", "busybox:1@sha256:" + "0e" * 32, replicated(1)))
    assert drift(declared_services("flightdeck-local", stack_file()), live_services(answer)) == [
        "flightdeck-local_debug runs but is not declared",
        "flightdeck-local_scheduler is missing",
        "flightdeck-local_web: replicas is 5, declared 2",
        f"flightdeck-local_worker: image is {OLD}, declared {NEW}",
    ]


def test_a_name_the_engine_normalises_is_no_drift() -> None:
    declared = {
        "s_proxy": {"image": "caddy", "replicas": "global"},
        "s_db": {"image": "docker.io/library/postgres:16", "replicas": 1},
    }
    answer = [
        service("proxy", "caddy:latest@sha256:" + "0c" * 32, GLOBAL, stack="s"),
        service("db", "postgres:16@sha256:" + "0d" * 32, replicated(1), stack="s"),
    ]
    assert drift(declared, live_services(answer)) == []


# -- old images on a node -----------------------------------------------------------------------------------


def digest(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


def node_image(n: int, repository: str = REPOSITORY, *, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """An image as a node's engine lists it after pulling `repository@digest(n)` (by digest: no tag)."""
    return {
        "Id": "sha256:" + f"{n + 100:03x}" * 21 + "0",
        "ParentId": "",
        "RepoTags": list(tags),
        "RepoDigests": [f"{repository}@{digest(n)}"],
        "Created": 1796000000 + n,
        "Size": 211_000_000,
        "Labels": None,
        "Containers": -1,
    }


def test_a_node_filled_with_old_releases_keeps_exactly_the_last_ones_and_what_runs() -> None:
    images = [node_image(n) for n in range(1, 9)]  # releases 1..8
    images += [
        node_image(40, "127.0.0.1:5000/flightdeck-local/backup"),  # another repository
        node_image(41, "postgres"),
        {"Id": "sha256:" + "f" * 64, "RepoTags": None, "RepoDigests": None},  # a dangling layer of a build
    ]
    keep = {digest(n) for n in range(4, 9)}  # keepReleases 5: releases 4..8
    in_use = {images[1]["Id"]}  # release 2: a stopped container of it is still there
    doomed = images_to_prune(images, REPOSITORY, keep, in_use)
    assert doomed == [images[0]["Id"], images[2]["Id"]]  # releases 1 and 3, nothing else


def test_an_image_known_by_a_kept_digest_is_kept_whatever_else_it_is_known_by() -> None:
    image = node_image(2)
    image["RepoDigests"].append(f"{REPOSITORY}@{digest(9)}")
    assert images_to_prune([image], REPOSITORY, {digest(9)}, set()) == []
    assert images_to_prune([image], REPOSITORY, {digest(7)}, set()) == [image["Id"]]


def test_only_images_of_the_exact_repository_are_considered() -> None:
    near = [
        node_image(1, f"{REPOSITORY}-old"),
        node_image(2, "127.0.0.1:5000/flightdeck-local"),
        node_image(3, f"x/{REPOSITORY}"),
    ]
    assert images_to_prune(near, REPOSITORY, set(), set()) == []
    tagged = {"Id": "sha256:" + "a" * 64, "RepoTags": [f"{REPOSITORY}:0123abc"], "RepoDigests": []}
    assert images_to_prune([tagged], REPOSITORY, set(), set()) == [tagged["Id"]]
    assert images_to_prune([tagged], REPOSITORY, set(), {tagged["Id"]}) == []
