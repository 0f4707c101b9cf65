"""One-off swarm jobs (providers/jobs.py) against an in-memory client: where a job runs, what it returns, and
that it leaves nothing behind (swarm keeps a removed job's containers, moby/moby#42789)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker.errors
import pytest

from providers import jobs

NODE = "n-manager"
SPEC = jobs.JobSpec(
    image="127.0.0.1:5000/app/web@sha256:" + "ab" * 32, args=("release",), environment=("A=1",)
)


@dataclass
class FakeJob:
    client: FakeClient
    name: str
    states: list[str]
    polls: int = 0

    def tasks(self) -> list[dict[str, Any]]:
        state = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        status: dict[str, Any] = {"State": state}
        if state != "pending":
            status["ContainerStatus"] = {"ContainerID": f"c-{self.name}"}
        if state == "failed":
            status["Err"] = "task: non-zero exit (1)"
        return [{"NodeID": NODE, "Status": status}]

    def logs(self, stdout: bool, stderr: bool) -> list[bytes]:
        return [b"migrated\n"]

    def remove(self) -> None:
        self.client.events.append(f"service rm {self.name}")


@dataclass
class FakeApi:
    client: FakeClient

    def remove_container(self, container: str, force: bool) -> None:
        assert force
        if container == "c-gone":
            raise docker.errors.NotFound("no such container")
        self.client.events.append(f"container rm {container}")


@dataclass
class FakeServices:
    client: FakeClient

    def list(self, filters: dict[str, str]) -> list[FakeJob]:
        return []

    def create(self, image: str, **kwargs: Any) -> FakeJob:
        self.client.created.append({"image": image, **kwargs})
        return FakeJob(self.client, str(kwargs["name"]), self.client.states)


@dataclass
class FakeClient:
    states: list[str]
    created: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.services = FakeServices(self)
        self.api = FakeApi(self)

    def info(self) -> dict[str, Any]:
        return {"Swarm": {"NodeID": NODE}}


@pytest.fixture(autouse=True)
def no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "POLL", 0.001)


def test_a_job_runs_on_this_engines_node_and_leaves_neither_container_nor_service() -> None:
    client = FakeClient(["pending", "running", "complete"])
    result = jobs.run_job(client, "s_release_ab", SPEC, timeout=10)
    assert result == jobs.JobResult(True, "migrated\n", "")
    [created] = client.created
    assert created["constraints"] == [f"node.id=={NODE}"]  # where its containers can be removed from
    assert created["args"] == ["release"] and created["env"] == ["A=1"]
    assert client.events == ["container rm c-s_release_ab", "service rm s_release_ab"]


def test_a_failed_job_reports_swarms_error_and_is_cleaned_up_too() -> None:
    client = FakeClient(["failed"])
    result = jobs.run_job(client, "s_gc", SPEC, timeout=10)
    assert not result.succeeded and result.errors == "task: non-zero exit (1)"
    assert client.events == ["container rm c-s_gc", "service rm s_gc"]


def test_a_job_past_its_timeout_is_removed_and_says_so() -> None:
    client = FakeClient(["running"])
    with pytest.raises(
        jobs.JobTimeout, match=r"the job s_slow did not end within 0s \(tasks: \['running'\]\)"
    ):
        jobs.run_job(client, "s_slow", SPEC, timeout=0)
    assert client.events == ["container rm c-s_slow", "service rm s_slow"]


def test_a_container_already_gone_is_no_error() -> None:
    client = FakeClient(["complete"])
    jobs._remove_containers(
        client, [{"Status": {"ContainerStatus": {"ContainerID": "c-gone"}}}, {"Status": {}}]
    )
    assert client.events == []
