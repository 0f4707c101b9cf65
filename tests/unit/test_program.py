"""The whole program, once per stack file, under mocks: what `pulumi up --stack <stack>` would declare."""

from __future__ import annotations

from collections import Counter

import pytest

from components.settings import SettingsError
from tests.support.program import run_program
from tests.support.secrets import is_secret, reveal

DIGEST = "sha256:" + "12" * 32
DEV_REF = f"registry.heroku.com/flightdeck-dev/web@{DIGEST}"


def kinds(mocks: object) -> Counter[str]:
    return Counter(r.type for r in mocks.resources)  # type: ignore[attr-defined]


def test_local_builds_pushes_to_its_registry_and_deploys_the_swarm_stack() -> None:
    mocks, outputs = run_program("local")
    assert kinds(mocks) == Counter(
        {
            "flightdeck:local_registry:LocalRegistry": 1,
            "flightdeck:image:AppImage": 1,
            "flightdeck:swarm:SwarmStack": 1,
            "docker-build:index:Image": 1,
            "command:local:Command": 2,  # the registry container and the stack deploy
            "random:index/randomPassword:RandomPassword": 2,  # SECRET_KEY and the database password
        }
    )
    build = mocks.named("image-build").inputs
    assert build["tags"][1] == "127.0.0.1:5000/flightdeck-local/web:latest"
    deploy = mocks.named("swarm-deploy").inputs
    assert "127.0.0.1:5000/flightdeck-local/web@sha256:" in deploy["stdin"]
    assert outputs["url"] == "http://localhost:8080"
    assert outputs["image_ref"].startswith("127.0.0.1:5000/flightdeck-local/web@sha256:")
    assert outputs["monthly_cost"]["total"] == "0.00"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_heroku_stacks_release_by_digest(stack: str) -> None:
    mocks, outputs = run_program(stack)
    release = mocks.named("heroku-release").inputs
    assert outputs["image_ref"].startswith(f"registry.heroku.com/flightdeck-{stack}/web@sha256:")
    assert set(outputs) >= {
        "url",
        "image_ref",
        "image_id",
        "release_version",
        "database_plan",
        "monthly_cost",
    }
    assert "image_ref" in release
    assert kinds(mocks)["docker-build:index:Image"] == 1


def test_prod_promotes_devs_digest_and_never_builds() -> None:
    mocks, outputs = run_program("prod", imageDigest=DEV_REF)
    assert kinds(mocks)["docker-build:index:Image"] == 0
    [copy] = mocks.of_type("command:local:Command")
    assert copy.name == "image-copy"
    assert outputs["image_ref"] == f"registry.heroku.com/flightdeck-prod/web@{DIGEST}"


def test_local_rollback_to_a_recorded_digest_reuses_it_without_building() -> None:
    ref = f"127.0.0.1:5000/flightdeck-local/web@{DIGEST}"
    mocks, outputs = run_program("local", imageDigest=ref)
    assert kinds(mocks)["docker-build:index:Image"] == 0
    assert outputs["image_ref"] == ref


@pytest.mark.parametrize("stack", ["local", "dev", "prod"])
def test_a_bad_value_stops_the_program_before_any_resource(stack: str) -> None:
    with pytest.raises(SettingsError, match="flightdeck:webInstances"):
        run_program(stack, webInstances=0)
    from tests.support.pulumi_mocks import MOCKS

    assert MOCKS.resources == []


def test_secrets_reach_the_deploy_only_as_secrets() -> None:
    mocks, outputs = run_program("local")
    deploy = mocks.named("swarm-deploy").inputs
    password = "mock-random-password"  # what the mocks give every RandomPassword
    assert is_secret(deploy["environment"])
    assert any(password in value for value in reveal(deploy["environment"]).values())
    assert password not in deploy["stdin"]  # the stack file names secrets, never holds them
    assert password not in repr(outputs)
