"""The swarm stack on the local engine in swarm mode, deployed by the deploy script SwarmStack runs.

One stack for the module, taken through: first deploy, a rolling update under load, an image that fails its
health check (rolled back by swarm), scripts/rollback, a migration that adds a column, a no-op redeploy and
removal. The tests build on each other in file order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.e2e import swarm_support as sw
from tests.support.docker import docker

pytestmark = pytest.mark.docker

PREFIX = f"fdsw{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def images(docker_engine: str, python_base: str) -> Iterator[sw.Images]:
    sw.ensure_swarm()
    sw.standin_images()
    with sw.local_registry(PREFIX) as registry:
        yield sw.build_images(registry, PREFIX, python_base)


@pytest.fixture(scope="module")
def stack(images: sw.Images) -> Iterator[sw.Stack]:
    with sw.running_stack(PREFIX, images.v1) as deployed:
        yield deployed


def test_first_deploy_serves_through_the_proxy(stack: sw.Stack, images: sw.Images) -> None:
    assert sw.get(f"{stack.url}/healthz") == (200, '{"status": "ok", "database": "ok"}')
    status, page = sw.get(f"{stack.url}/")
    assert status == 200
    assert "JFK" in page  # the sample data, read through the proxy from the stack's database
    assert stack.web_image() == images.v1
    running = docker("service", "ls", "--filter", f"label=com.docker.stack.namespace={stack.name}",
                     "--format", "{{.Name}} {{.Replicas}}").split("\n")  # fmt: skip
    assert sorted(line for line in running if line) == [
        f"{stack.name}_db 1/1",
        f"{stack.name}_proxy 1/1",
        f"{stack.name}_web 2/2",
    ]


def test_secrets_are_docker_secrets_not_values_in_the_file(stack: sw.Stack, images: sw.Images) -> None:
    rendered = stack.render(images.v1)
    for value in rendered.secrets.values():
        assert value not in rendered.stack_file
        assert value not in "".join(rendered.environment.values())
    spec = docker("service", "inspect", "--format", "{{json .Spec}}", f"{stack.name}_web")
    assert stack.secret_key not in spec
    assert stack.db_password not in spec
    assert '"SecretName":"' + stack.name + "_secret_key_" in spec


def test_rolling_update_fails_no_request(
    stack: sw.Stack, images: sw.Images, record_property: Callable[[str, object], None]
) -> None:
    update = sw.update_under_load(stack, images.v2)
    record_property("requests", update.load.sent)
    record_property("deploy_seconds", round(update.seconds, 1))
    assert update.returncode == 0, update.stderr[-4000:]
    assert update.load.sent > 100
    assert update.load.failed == 0, update.load.errors
    assert sw.get(f"{stack.url}/version") == (200, "v2")
    assert stack.web_image() == images.v2
    print(f"rolling update: {update.load.sent} requests, 0 failed, deploy {update.seconds:.1f}s")


def test_an_unhealthy_image_is_rolled_back_and_the_deploy_fails(stack: sw.Stack, images: sw.Images) -> None:
    update = sw.update_under_load(stack, images.broken)
    assert update.returncode != 0
    assert "FAILED" in update.stderr
    assert "rollback" in update.stderr
    assert update.load.failed == 0, update.load.errors  # v2 kept serving all along
    assert stack.web_image() == images.v2
    assert sw.get(f"{stack.url}/version") == (200, "v2")
    print(f"failed deploy: {update.load.sent} requests, 0 failed, reported after {update.seconds:.1f}s")


def test_rollback_script_lists_releases_and_restores_an_earlier_digest(
    stack: sw.Stack, images: sw.Images
) -> None:
    listed = sw.rollback(stack.name)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    # Newest first; the broken image never became a release.
    assert [line.split()[-1] for line in lines] == [images.v2, images.v1]
    assert lines[0].startswith("*")

    restored = sw.rollback(stack.name, "2")
    assert restored.returncode == 0, restored.stderr
    assert stack.web_image() == images.v1
    assert sw.get(f"{stack.url}/version")[0] == 404  # v1 has no /version page
    assert sw.get(f"{stack.url}/healthz")[0] == 200
    assert sw.rollback(stack.name).stdout.splitlines()[0] == f"*   1  {images.v1}"

    assert sw.rollback(stack.name, "9").returncode == 1  # no such release


def test_a_migration_adds_a_column_without_errors(stack: sw.Stack, images: sw.Images) -> None:
    column = sw.NEW_COLUMN_QUERY
    assert stack.psql(column) == ""
    update = sw.update_under_load(stack, images.migration)
    assert update.returncode == 0, update.stderr[-4000:]
    assert update.stderr.count("Applying flights.0002_airport_timezone_note... OK") == 1
    assert update.load.failed == 0, update.load.errors  # no 500 from old or new code
    assert stack.psql(column) == "YES"
    assert sw.get(f"{stack.url}/version") == (200, "v4")


def test_redeploying_the_same_image_runs_no_release(stack: sw.Stack, images: sw.Images) -> None:
    again = stack.deploy(images.migration)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "release:" not in again.stderr
    assert again.stdout == f"deployed {images.migration}\n"


def test_delete_removes_the_stack_and_keeps_the_database_volume(stack: sw.Stack, images: sw.Images) -> None:
    removed = stack.delete(images.migration)
    assert removed.returncode == 0, removed.stderr
    label = f"label=com.docker.stack.namespace={stack.name}"
    assert docker("service", "ls", "--quiet", "--filter", label) == ""
    assert docker("network", "ls", "--quiet", "--filter", label) == ""
    assert docker("secret", "ls", "--quiet", "--filter", label) == ""
    assert docker("config", "ls", "--quiet", "--filter", f"label=flightdeck.release={stack.name}") == ""
    assert f"{stack.name}_db-data" in docker("volume", "ls", "--format", "{{.Name}}").split()
