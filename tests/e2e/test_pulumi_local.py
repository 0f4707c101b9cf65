"""`make up` for real: the Pulumi CLI built here deploys the `local` stack to the Docker engine, in a copy
of the project with its own file backend, app name and ports, so neither the tree's state nor its files are
touched.

One stack for the module, taken through, in file order: first preview and up; a no-change up; a code change
rolled out under load; drift made by hand, seen by refresh and undone by up; an image whose health check
fails; a port already taken; a state left by an older flightdeck, adopted; the state's secrets; down.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import app_variants
from tests.support.docker import docker, free_port, wait_http
from tests.support.http_load import Load, get
from tools.project_copy import LocalStack, PulumiLocalError, copy_project

pytestmark = pytest.mark.docker

IMAGE_TYPE = "docker-build:index:Image"
DEPLOYMENT_TYPE = "pulumi-python:dynamic/flightdeck:SwarmDeployment"
UNCHANGED = {"same", "read", "refresh"}
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the state marks a secret value
HOSTILE = {
    "FD_PRICE": "costs $5, or ${HOME} and $$ more",
    "FD_NOTE": "line one\nline two: # not a comment",
    "FD_QUOTES": 'it\'s "quoted" {not: yaml}',
}


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


def containers(name: str, service: str) -> list[str]:
    return docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}_{service}").split()


def web_pages(name: str) -> list[str]:
    """The front page as each running web task serves it, asked inside its own container."""
    containers = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}_web").split()
    fetch = (
        "import urllib.request as u; r = u.Request('http://127.0.0.1:8000/', headers={'Host': 'localhost'}); "
        "print(u.urlopen(r, timeout=10).read().decode())"
    )
    return [docker("exec", c, "python", "-c", fetch) for c in containers]


def book(url: str) -> str:
    """Book a passenger on the first flight of the front page, as a browser does (CSRF token, cookie); return
    the passenger's e-mail address, which the confirmation goes to."""
    flight = re.search(r'href="/(\d+)/"', get(f"{url}/")[1])
    assert flight, "no flight on the front page"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/{flight[1]}/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    passenger = re.search(r'<option value="(\d+)">([^<]+)</option>', page)
    assert token and passenger, page[:2000]
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": token[1], "passenger": passenger[1]}).encode()
    booking = f"{url}/{flight[1]}/book/"
    request = urllib.request.Request(booking, data=form, headers={"Referer": f"{url}/"})  # noqa: S310 (loopback)
    with opener.open(request, timeout=10) as response:
        assert response.status == 200 and "is booked on flight" in response.read().decode()
    return passenger[2].strip()


def mail_files(name: str) -> str:
    """What the running worker's file backend holds ("" while no worker runs)."""
    running = containers(name, "worker")
    if not running:
        return ""
    return docker("exec", running[0], "sh", "-c", "cat /tmp/mail/* 2>/dev/null || true", check=False)


def wait_until_mailed(name: str, passenger: str, timeout: float) -> None:
    """The worker's file backend has a confirmation for the passenger (by name), within timeout."""
    deadline = time.monotonic() + timeout
    while passenger.split()[0] not in mail_files(name):
        assert time.monotonic() < deadline, f"no confirmation mail for {passenger} within {timeout:.0f} s"
        time.sleep(2)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str, python_base: str
) -> Iterator[LocalStack]:
    root = tmp_path_factory.mktemp("flightdeck-pulumi")
    copy_project(root)
    deployed = LocalStack(root, docker_engine)
    # Ports and a swarm stack name of its own, so a developer's `make up` keeps running beside the test.
    config_vars = yaml.safe_load((root / "Pulumi.local.yaml").read_text())["config"]["flightdeck:configVars"]
    deployed.configure(
        {
            "flightdeck:appName": f"fd-e2e-{uuid.uuid4().hex[:6]}",
            "flightdeck:httpPort": free_port(),
            "flightdeck:httpsPort": free_port(),
            "flightdeck:registryPort": free_port(),
            # Values that compose would interpolate or YAML would change, and a short schedule.
            "flightdeck:configVars": {**config_vars, **HOSTILE, "CLEANUP_CRON": "* * * * * */5"},
        }
    )
    deployed.commit("the test's ports and name")
    yield deployed
    deployed.run("destroy", check=False)  # leave no service behind when a step failed half-way
    docker("stack", "rm", deployed.app_name, check=False)
    deployed.remove_kept_volumes()


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


def test_every_process_type_runs_and_the_values_arrive_byte_for_byte(stack: LocalStack) -> None:
    services = docker("service", "ls", "--filter", f"label=com.docker.stack.namespace={stack.app_name}",
                      "--format", "{{.Name}} {{.Replicas}}").split("\n")  # fmt: skip
    replicas = dict(line.split() for line in services if line)
    name = stack.app_name
    assert replicas[f"{name}_web"] == "2/2" and replicas[f"{name}_worker"] == "1/1"
    assert replicas[f"{name}_scheduler"] == "1/1"
    show = f"import json, os; print(json.dumps({{k: os.environ[k] for k in {sorted(HOSTILE)!r}}}))"
    for service in ("web", "worker"):
        [container, *_] = containers(name, service)
        assert json.loads(docker("exec", container, "python", "-c", show)) == HOSTILE


def test_a_booking_through_the_proxy_is_mailed_by_the_worker(stack: LocalStack) -> None:
    url = stack.outputs()["url"]
    address = book(url)
    wait_until_mailed(stack.app_name, address, timeout=90)


def test_a_worker_killed_right_after_a_booking_loses_nothing(stack: LocalStack) -> None:
    url = stack.outputs()["url"]
    [worker] = containers(stack.app_name, "worker")
    book(url)
    docker("kill", worker)  # SIGKILL: no graceful shutdown; swarm starts a new task
    # Whether the job was queued, in flight (then stalled, and retried) or done when the worker died, it
    # ends sent. (The file backend's files lived in the killed container: the job's state is the proof.)
    last_job = (
        "SELECT status FROM procrastinate_jobs WHERE task_name LIKE '%send_booking_confirmation' "
        "ORDER BY id DESC LIMIT 1"
    )
    deadline = time.monotonic() + 240
    while stack.psql(last_job) != "succeeded":
        assert time.monotonic() < deadline, f"the confirmation's job is {stack.psql(last_job)} after 240 s"
        time.sleep(2)


def test_the_scheduler_runs_its_job_on_schedule(stack: LocalStack) -> None:
    query = (
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE '%clean_up' AND status = 'succeeded'"
    )
    deadline = time.monotonic() + 90
    while int(stack.psql(query)) < 2:  # two ticks of the 5-second schedule
        assert time.monotonic() < deadline, "the scheduler ran no clean-up within 90 s"
        time.sleep(2)


def test_a_second_up_changes_nothing(stack: LocalStack) -> None:
    result = stack.run("up")
    summary = stack.last_summary(result.stdout)
    assert set(summary) == {"same"}, summary
    stack.run("preview", "--expect-no-changes")
    assert stack.git_status() == ""


def test_a_code_change_updates_the_image_and_the_deployment_only_and_loses_no_request(
    stack: LocalStack,
) -> None:
    marker = f"e2e change {uuid.uuid4().hex[:8]}"
    app = stack.root / "app"
    app_variants.apply(app, {**app_variants.marked_page(marker, app), **app_variants.with_new_column(app)})
    stack.commit("a template change and a migration")
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
    column = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'timezone_note'"
    assert stack.psql(column) == "1"  # migrated by the release job, before any new task took traffic


def test_refresh_sees_an_image_changed_by_hand_and_up_puts_the_declared_one_back(stack: LocalStack) -> None:
    declared = stack.outputs()["image_ref"]
    earlier = stack.release_images()[0]
    assert earlier != declared
    docker("service", "update", "--detach", "--image", earlier, f"{stack.app_name}_web")
    refreshed = stack.run("refresh")
    assert "1 updated" in refreshed.stdout, refreshed.stdout[-2000:]
    assert [step["type"] for step in changed(stack.preview())] == [DEPLOYMENT_TYPE]
    stack.run("up")
    live = docker(
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        f"{stack.app_name}_web",
    )
    assert live.strip() == declared


def test_an_image_that_fails_its_health_check_is_rolled_back_and_the_old_one_keeps_serving(
    stack: LocalStack,
) -> None:
    serving = stack.outputs()["image_ref"]
    app = stack.root / "app"
    original = (app / "airline" / "health.py").read_text()
    app_variants.apply(app, app_variants.broken_health(app))
    stack.commit("a broken health check")
    url = stack.outputs()["url"]
    with Load([f"{url}/"], threads=2, max_seconds=600) as load, pytest.raises(PulumiLocalError) as failed:
        stack.run("up")
    message = str(failed.value)
    assert "python /app/healthcheck.py" in message  # the failing check, quoted
    assert "previous version keeps serving" in message
    assert load.result().failed == 0, load.result()
    live = docker(
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
        f"{stack.app_name}_web",
    )
    assert live.strip() == serving
    (app / "airline" / "health.py").write_text(original)
    stack.commit("the health check repaired")
    stack.run("up")


def test_rollback_through_pulumi_names_the_migrations_it_predates_and_stays_rolled_back(
    stack: LocalStack,
) -> None:
    images = stack.release_images()
    serving = stack.outputs()["image_ref"]
    refused = stack.make("rollback", "TO=1")
    assert refused.returncode != 0
    assert "flights.0003_airport_timezone_note" in refused.stderr and "FORCE=1" in refused.stderr
    assert stack.outputs()["image_ref"] == serving  # nothing changed
    forced = stack.make("rollback", "TO=1", "FORCE=1")
    assert forced.returncode == 0, forced.stderr[-3000:]
    assert stack.outputs()["image_ref"] == images[0]
    assert get(f"{stack.outputs()['url']}/healthz")[0] == 200
    assert set(stack.last_summary(stack.run("up").stdout)) == {"same"}  # the next up keeps the rollback
    assert stack.git_status() == ""
    assert stack.make("unpin").returncode == 0
    stack.run("up")  # built from the code again
    assert stack.outputs()["image_ref"] != images[0]
    assert "e2e change" in get(f"{stack.outputs()['url']}/")[1]


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
    said = result.stdout + result.stderr
    assert f"docker volume rm {name}_db-data" in said and f"docker volume rm {name}-registry-data" in said
    label = f"label=com.docker.stack.namespace={name}"
    for kind in ("service", "secret", "config", "network"):
        assert docker(kind, "ls", "-q", "--filter", label).split() == [], kind
    assert docker("config", "ls", "-q", "--filter", f"label=flightdeck.release={name}").split() == []
    # No container either: the stack's tasks, its release jobs' (swarm keeps those), the local registry.
    left = [
        c
        for c in docker("ps", "-a", "--format", "{{.Names}}").split()
        if c.startswith((f"{name}_", f"{name}-"))
    ]
    assert left == []
    assert name + "_db-data" in docker("volume", "ls", "--format", "{{.Name}}").split()
    assert stack.git_status() == ""
    assert sorted(stack.remove_kept_volumes()) == sorted(
        [f"{name}_db-data", f"{name}_caddy-data", f"{name}_caddy-config", f"{name}-registry-data"]
    )


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
