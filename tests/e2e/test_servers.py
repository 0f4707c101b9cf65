"""The servers target for real: `pulumi up` over SSH on three test hosts (scripts/test-hosts: network
namespaces, each with its own sshd and dockerd), in a copy of the project with its own state.

One stack for the module, in file order: the first deploy and a no-change up; a rolling update under load
through the manager's proxy; a worker lost in the middle of an update, and back; a changed host key; backup,
restore into the running stack and into a new stack, checked by per-table checksums; down.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support import app_variants
from tests.support.http_load import Load, get
from tests.support.test_hosts import Host, Hosts, node_states, start_engine, stop_engine, wait_until
from tools.project_copy import LocalStack, PulumiLocalError, copy_project

pytestmark = pytest.mark.docker

TABLES = ("flights_airport", "flights_flight", "flights_passenger", "flights_passenger_flights")
CHECKSUM = "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"


class ServersStack(LocalStack):
    """scripts/pulumi-local of a project copy on its servers-test stack."""

    def __init__(self, root: Any, docker_host: str, hosts: Hosts) -> None:
        super().__init__(root, docker_host, stack="servers-test")
        self.hosts = hosts

    def tasks(self, service: str) -> list[str]:
        """The nodes the running tasks of a service of the stack are on."""
        listed = self.hosts.manager.docker(
            "service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}",
            f"{self.app_name}_{service}",
        )  # fmt: skip
        return [line.split()[0] for line in listed.splitlines() if " Running" in f" {line}"]

    def db(self, query: str) -> str:
        manager = self.hosts.manager
        [container] = manager.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={self.app_name}_db"
        ).split()
        return manager.docker("exec", container, "psql", "-U", "app", "-d", "app", "-tAc", query).strip()

    def checksums(self) -> dict[str, str]:
        return {table: self.db(CHECKSUM.format(table=table)) for table in TABLES}


def make_stack(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str, hosts: Hosts, name: str
) -> ServersStack:
    root = tmp_path_factory.mktemp(name)
    copy_project(root)
    shutil.copyfile(hosts.stack_file, root / "Pulumi.servers-test.yaml")
    stack = ServersStack(root, docker_engine, hosts)
    stack.configure({"flightdeck:appName": name, "flightdeck:configVars": {"LOAD_SAMPLE_DATA": "true"}})
    stack.commit("the test hosts' stack")
    for key in ("flightdeck:bucketAccessKey", "flightdeck:bucketSecretKey"):
        stack.run("cli", "config", "set", "--secret", key, "moto-takes-any-key")
    return stack


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str, test_hosts: Hosts
) -> Iterator[ServersStack]:
    deployed = make_stack(tmp_path_factory, docker_engine, test_hosts, f"fd-servers-{uuid.uuid4().hex[:6]}")
    yield deployed
    deployed.run("destroy", check=False)
    deployed.remove_kept_volumes()  # the build registry's, on this machine's engine


def proxies(hosts: Hosts) -> list[str]:
    return [f"http://{host.address}" for host in hosts.hosts]


def test_the_first_up_makes_a_three_node_swarm_and_serves_through_every_host(stack: ServersStack) -> None:
    stack.run("up")
    assert (
        set(node_states(stack.hosts.manager).values()) == {"ready"}
        and len(node_states(stack.hosts.manager)) == 3
    )
    assert len(set(stack.tasks("web"))) > 1, stack.tasks("web")
    for proxy in proxies(stack.hosts):
        status, page = get(f"{proxy}/")
        assert status == 200 and "JFK" in page, (proxy, status)
    outputs = stack.outputs()
    assert outputs["image_ref"].startswith(f"127.0.0.1:5000/{stack.app_name}/web@sha256:")


def test_a_second_up_changes_nothing(stack: ServersStack) -> None:
    assert set(stack.last_summary(stack.run("up").stdout)) == {"same"}
    stack.run("preview", "--expect-no-changes")


def test_a_rolling_update_through_the_managers_proxy_loses_no_request(stack: ServersStack) -> None:
    marker = f"servers change {uuid.uuid4().hex[:8]}"
    app_variants.apply(stack.root / "app", app_variants.marked_page(marker, stack.root / "app"))
    stack.commit("a template change")
    manager = f"http://{stack.hosts.manager.address}"
    with Load([f"{manager}/", f"{manager}/healthz"], threads=4, max_seconds=900) as load:
        stack.run("up")
    result = load.result()
    assert result.sent > 100 and result.failed == 0, result
    for proxy in proxies(stack.hosts):
        assert all(marker in get(f"{proxy}/")[1] for _ in range(6)), proxy


def test_a_worker_lost_during_an_update_ends_clearly_and_returns_on_the_next_up(stack: ServersStack) -> None:
    lost: Host = stack.hosts.workers[-1]
    app_variants.apply(
        stack.root / "app", app_variants.marked_page("while a worker was lost", stack.root / "app")
    )
    stack.commit("another change")
    manager = f"http://{stack.hosts.manager.address}"
    outcome: dict[str, Any] = {}

    def deploy() -> None:
        try:
            stack.run("up")
            outcome["result"] = "rolled forward"
        except PulumiLocalError as err:
            outcome["result"] = f"failed: {err.reason}"

    try:
        with Load([f"{manager}/healthz"], threads=2, max_seconds=900) as load:
            update = threading.Thread(target=deploy)
            update.start()
            wait_until("the rollout started", lambda: stack.hosts.manager.docker(
                "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                f"{stack.app_name}_web").strip() == "updating", timeout=300, interval=0.5)  # fmt: skip
            stop_engine(lost)
            update.join(timeout=900)
        result = load.result()
        deployed = outcome.get("result")
        print(f"lost worker: the deploy {deployed}; {result.failed} of {result.sent} requests failed")
        assert "result" in outcome
        # Either swarm finished on the nodes still up, or the deploy ended naming the lost node (not the
        # timeout).
        assert outcome["result"] == "rolled forward" or lost.name in outcome["result"], outcome
        assert get(f"{manager}/healthz")[0] == 200
        assert result.failed <= result.sent // 20, result  # counted and reported; the proxy keeps answering
    finally:
        start_engine(lost)  # whatever happened, the later tests need every host
    wait_until(
        f"{lost.name} ready", lambda: node_states(stack.hosts.manager).get(lost.name) == "ready", timeout=120
    )
    stack.run("up")
    assert lost.name in stack.tasks("web") + stack.tasks("proxy")
    assert get(f"http://{lost.address}/healthz")[0] == 200


def test_a_changed_host_key_stops_the_deploy_before_anything_changes(stack: ServersStack) -> None:
    settings = yaml.safe_load(stack.stack_file.read_text())
    original = settings["config"]["flightdeck:servers"][1]["hostKey"]
    other = stack.hosts.hosts[2].host_key  # a valid key, but not host2's
    settings["config"]["flightdeck:servers"][1]["hostKey"] = other
    stack.stack_file.write_text(yaml.safe_dump(settings))
    stack.commit("a wrong host key")
    before = stack.hosts.manager.docker(
        "service", "inspect", "--format", "{{.Version.Index}}", f"{stack.app_name}_web"
    )
    for operation in ("preview", "up"):
        with pytest.raises(PulumiLocalError) as failed:
            stack.run(operation)
        message = str(failed.value)
        assert "flightdeck:servers[1]" in message and "not the pinned one" in message, message[-2000:]
    after = stack.hosts.manager.docker(
        "service", "inspect", "--format", "{{.Version.Index}}", f"{stack.app_name}_web"
    )
    assert after == before
    settings["config"]["flightdeck:servers"][1]["hostKey"] = original
    stack.stack_file.write_text(yaml.safe_dump(settings))
    stack.commit("the host key back")


def test_backup_and_restore_through_the_bucket_give_identical_rows(
    stack: ServersStack, tmp_path_factory: pytest.TempPathFactory, docker_engine: str
) -> None:
    expected = stack.checksums()
    assert stack.make("backup").returncode == 0
    key = stack.make("backups").stdout.split()[-1]
    stack.db("DELETE FROM flights_passenger_flights; DELETE FROM flights_passenger")
    assert stack.checksums() != expected
    assert stack.make("restore", f"FROM={key}").returncode == 0
    assert stack.checksums() == expected
    # Into a new stack: the old one goes (its volume stays), a new one restores the old one's backup.
    stack.run("destroy")
    fresh = make_stack(tmp_path_factory, docker_engine, stack.hosts, f"fd-restored-{uuid.uuid4().hex[:6]}")
    fresh.configure({"flightdeck:configVars": {}})
    fresh.commit("no sample data: the restore brings the rows")
    try:
        fresh.run("up")
        assert fresh.make("restore", f"FROM={key}").returncode == 0
        assert fresh.checksums() == expected
    finally:
        fresh.run("destroy", check=False)
        fresh.remove_kept_volumes()
