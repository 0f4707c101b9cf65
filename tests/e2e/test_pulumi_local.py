"""`make up` for real: the Pulumi CLI built here deploys the `local` stack to the Docker engine, in a copy of the
project with its own file backend, app name and ports, so neither the tree's state nor its files are touched.

One stack for the module, taken through, in file order: first preview and up; a no-change up; a code change
rolled out under load; drift made by hand, seen by refresh and undone by up; an image whose health check
fails; a port already taken; a state left by an older flightdeck, adopted; the state's secrets; down.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import app_variants
from tests.support.docker import docker, free_port, wait_http
from tests.support.http_load import Load, get
from tools.project_copy import LocalStack, PulumiLocalError, copy_project

pytestmark = pytest.mark.docker

IMAGE_TYPE = "docker-build:index:Image"
DEPLOYMENT_TYPE = "pulumi-python:dynamic/flightdeck:SwarmDeployment"
UNCHANGED = {"same", "read", "refresh"}
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the state marks a secret value


def secret_plaintexts(hidden: Any, shown: Any) -> list[str]:
    """The plaintext of every secret in a stack export, from the same export with --show-secrets."""
    if isinstance(hidden, dict):
        if hidden.get(SECRET_SIG) and "ciphertext" in hidden:
            value = json.loads(shown["plaintext"])
            return [value] if isinstance(value, str) else [json.dumps(value)]
        return [text for key in hidden for text in secret_plaintexts(hidden[key], shown[key])]
    if isinstance(hidden, list):
        return [text for pair in zip(hidden, shown, strict=True) for text in secret_plaintexts(*pair)]
    return []


def changed(planned: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for step in planned["steps"] if step["op"] not in UNCHANGED]


def web_pages(name: str) -> list[str]:
    """The front page as each running web task serves it, asked inside its own container."""
    containers = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}_web").split()
    fetch = (
        "import urllib.request as u; r = u.Request('http://127.0.0.1:8000/', headers={'Host': 'localhost'}); "
        "print(u.urlopen(r, timeout=10).read().decode())"
    )
    return [docker("exec", c, "python", "-c", fetch) for c in containers]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, docker_engine: str, python_base: str) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("flightdeck-pulumi")
    copy_project(root)
    deployed = LocalStack(root, docker_engine)
    # Ports and a swarm stack name of its own, so a developer's `make up` keeps running beside the test.
    deployed.configure(
        {
            "flightdeck:appName": f"fd-e2e-{uuid.uuid4().hex[:6]}",
            "flightdeck:httpPort": free_port(),
            "flightdeck:httpsPort": free_port(),
        }
    )
    deployed.commit("the test's ports and name")
    yield deployed
    deployed.run("destroy", check=False)  # leave no service behind when a step failed half-way
    docker("stack", "rm", deployed.app_name, check=False)


def test_first_up_deploys_the_app_with_its_sample_flights(stack: LocalStack) -> None:
    planned = stack.preview()
    assert planned["steps"] and {step["op"] for step in planned["steps"]} == {"create"}, planned["steps"]
    stack.run("up")
    outputs = stack.outputs()
    assert {"url", "image_ref", "image_digest", "monthly_cost"} <= set(outputs)
    assert outputs["image_ref"].endswith("@" + outputs["image_digest"])
    assert outputs["monthly_cost"]["total"] == "0.00"
    wait_http(f"{outputs['url']}/healthz", timeout=120)
    status, page = get(f"{outputs['url']}/")
    assert status == 200 and "JFK" in page, page[:500]  # the sample flights, from the stack's database
    assert stack.git_status() == "", "make up wrote into the work tree"


def test_a_second_up_changes_nothing(stack: LocalStack) -> None:
    result = stack.run("up")
    summary = stack.last_summary(result.stdout)
    assert set(summary) == {"same"}, summary
    stack.run("preview", "--expect-no-changes")
    assert stack.git_status() == ""


def test_a_code_change_updates_the_image_and_the_deployment_only_and_loses_no_request(stack: LocalStack) -> None:
    marker = f"e2e change {uuid.uuid4().hex[:8]}"
    app_variants.apply(stack.root / "app", app_variants.marked_page(marker, stack.root / "app"))
    stack.commit("a template change")
    steps = changed(stack.preview())
    assert {step["type"] for step in steps} == {IMAGE_TYPE, DEPLOYMENT_TYPE}, steps
    url = stack.outputs()["url"]
    with Load([f"{url}/", f"{url}/healthz"], threads=4, max_seconds=600) as load:
        stack.run("up")
    result = load.result()
    assert result.sent > 100, result
    assert result.failed == 0, result
    pages = web_pages(stack.app_name)
    assert len(pages) == 2 and all(marker in page for page in pages)


def test_refresh_sees_an_image_changed_by_hand_and_up_puts_the_declared_one_back(stack: LocalStack) -> None:
    declared = stack.outputs()["image_ref"]
    earlier = stack.release_images()[0]
    assert earlier != declared
    docker("service", "update", "--detach", "--image", earlier, f"{stack.app_name}_web")
    refreshed = stack.run("refresh")
    assert "1 updated" in refreshed.stdout, refreshed.stdout[-2000:]
    assert [step["type"] for step in changed(stack.preview())] == [DEPLOYMENT_TYPE]
    stack.run("up")
    live = docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f"{stack.app_name}_web")
    assert live.strip() == declared


def test_an_image_that_fails_its_health_check_is_rolled_back_and_the_old_one_keeps_serving(stack: LocalStack) -> None:
    serving = stack.outputs()["image_ref"]
    app = stack.root / "app"
    original = (app / "airline" / "health.py").read_text()
    app_variants.apply(app, app_variants.broken_health(app))
    stack.commit("a broken health check")
    url = stack.outputs()["url"]
    with Load([f"{url}/"], threads=2, max_seconds=600) as load:
        with pytest.raises(PulumiLocalError) as failed:
            stack.run("up")
    message = str(failed.value)
    assert "python /app/healthcheck.py" in message  # the failing check, quoted
    assert "previous version keeps serving" in message
    assert load.result().failed == 0, load.result()
    live = docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", f"{stack.app_name}_web")
    assert live.strip() == serving
    (app / "airline" / "health.py").write_text(original)
    stack.commit("the health check repaired")
    stack.run("up")


def test_a_port_already_taken_is_named_by_its_key_and_nothing_is_lost(stack: LocalStack) -> None:
    url = stack.outputs()["url"]
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))  # noqa: S104 (the port the proxy would publish on every address)
        holder.listen()
        taken = holder.getsockname()[1]
        stack.configure({"flightdeck:httpPort": taken})
        stack.commit("a taken port")
        with pytest.raises(PulumiLocalError) as failed:
            stack.run("up")
    assert "flightdeck:httpPort" in str(failed.value)
    assert get(f"{url}/healthz")[0] == 200  # still serving on the old port
    stack.configure({"flightdeck:httpPort": int(url.rsplit(":", 1)[1])})
    stack.commit("the port back")
    stack.run("up")


def test_a_state_left_by_an_older_flightdeck_is_named_with_its_fix_and_adopted(stack: LocalStack) -> None:
    url = stack.outputs()["url"]
    before = stack.psql("SELECT count(*) FROM flights_flight")
    stack.forget_own_records_and_add_legacy_ones()
    with pytest.raises(PulumiLocalError) as failed:
        stack.run("up")
    assert "forget-legacy" in str(failed.value)
    assert get(f"{url}/healthz")[0] == 200  # nothing was touched
    stack.run("forget-legacy")
    stack.run("up")  # adopts the running stack: a new database password, set in the database
    assert get(f"{url}/healthz")[0] == 200
    assert stack.psql("SELECT count(*) FROM flights_flight") == before


def test_the_state_holds_no_plaintext_secret(stack: LocalStack) -> None:
    hidden, shown = stack.export(), stack.export(show_secrets=True)
    plaintexts = [text for text in secret_plaintexts(hidden, shown) if len(text) >= 16]
    assert plaintexts, "the stack holds no generated secret"
    exported = json.dumps(hidden)
    assert not [text[:4] for text in plaintexts if text in exported]


def test_down_leaves_nothing_of_the_stack_but_its_database_volume(stack: LocalStack) -> None:
    result = stack.run("destroy")
    name = stack.app_name
    assert f"docker volume rm {name}_db-data" in result.stdout + result.stderr
    label = f"label=com.docker.stack.namespace={name}"
    for kind in ("service", "secret", "config", "network"):
        assert docker(kind, "ls", "-q", "--filter", label).split() == [], kind
    assert docker("config", "ls", "-q", "--filter", f"label=flightdeck.release={name}").split() == []
    assert name + "_db-data" in docker("volume", "ls", "--format", "{{.Name}}").split()
    assert stack.git_status() == ""
    docker("volume", "rm", f"{name}_db-data", f"{name}_caddy-data", f"{name}_caddy-config", check=False)


def test_no_engine_at_the_address_is_named(stack: LocalStack, tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/no-engine.sock"
    result = subprocess.run(
        [stack.root / "scripts" / "pulumi-local", "preview"],
        cwd=stack.root,
        env={**stack.env, "DOCKER_HOST": missing},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert missing in result.stderr
