"""The iaas target under Pulumi mocks: the whole program for Pulumi.iaas.yaml (3 VMs), with one VM, with a
managed database, and with a promotion ref; what each resource is given."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pulumi
import pytest
import yaml

from components import registry_stack as rs
from components.iaas import check_iaas_promotion, managed_database_url
from components.image import git_head_sha, remote_builder_script, remove_builder_script
from tests.support.program import run_program
from tests.support.pulumi_mocks import COMPUTED, RecordingMocks
from tests.support.secrets import unwrap

APP = "flightdeck-iaas"  # Pulumi.iaas.yaml
MANAGER_IP = COMPUTED["linode:index/instance:Instance"]["ipv4s"][1]
BALANCER_IP = COMPUTED["linode:index/nodeBalancer:NodeBalancer"]["ipv4"]
DIGEST = COMPUTED["docker-build:index:Image"]["digest"]
PASSWORD = COMPUTED["random:index/randomPassword:RandomPassword"]["result"]
BUCKET_KEYS = COMPUTED["linode:index/objectStorageKey:ObjectStorageKey"]
DATABASE = COMPUTED["linode:index/databasePostgresqlV2:DatabasePostgresqlV2"]
IMAGE = "docker-build:index:Image"
REMOTE = "command:remote:Command"


def secret_values() -> list[str]:
    return [PASSWORD, BUCKET_KEYS["access_key"], BUCKET_KEYS["secret_key"], DATABASE["root_password"]]


def stack_file(mocks: RecordingMocks, name: str) -> dict[str, Any]:
    stdin, is_secret = unwrap(mocks.named(name).inputs["stdin"])
    assert not is_secret  # plain: its diff shows in `pulumi preview`
    assert all(value not in stdin for value in secret_values())
    loaded: dict[str, Any] = yaml.safe_load(stdin)
    return loaded


def environment(mocks: RecordingMocks, name: str) -> dict[str, str]:
    env, is_secret = unwrap(mocks.named(name).inputs["environment"])
    assert is_secret
    return dict(env)


@pytest.fixture(scope="module")
def three_vms() -> tuple[RecordingMocks, dict[str, Any]]:
    mocks, outputs = run_program("iaas")
    return RecordingMocks(resources=list(mocks.resources)), outputs


def test_resource_graph_of_the_iaas_stack(three_vms: tuple[RecordingMocks, dict[str, Any]]) -> None:
    mocks, _ = three_vms
    assert Counter(r.type for r in mocks.resources) == {
        "flightdeck:linode:LinodeHosts": 1,
        "linode:index/sshKey:SshKey": 1,
        "linode:index/instance:Instance": 3,
        "linode:index/firewall:Firewall": 1,
        "linode:index/nodeBalancer:NodeBalancer": 1,
        "linode:index/nodeBalancerConfig:NodeBalancerConfig": 2,
        "linode:index/nodeBalancerNode:NodeBalancerNode": 6,
        "linode:index/objectStorageBucket:ObjectStorageBucket": 1,
        "linode:index/objectStorageKey:ObjectStorageKey": 1,
        "flightdeck:registry:PrivateRegistry": 1,
        "flightdeck:registry_stack:RegistryStack": 1,
        "pulumi:providers:docker-build": 1,
        "flightdeck:image:AppImage": 2,
        IMAGE: 2,
        "flightdeck:swarm:SwarmStack": 1,
        # secret key, database password, the registry's password and http secret
        "random:index/randomPassword:RandomPassword": 4,
        # manager ready, 2 joins, the registry stack, the app stack
        REMOTE: 5,
        # the buildx builder on the manager, in the buildx store of the machine running `pulumi up`
        "command:local:Command": 1,
    }
    assert sorted(r.name for r in mocks.of_type(REMOTE)) == [
        "linode-swarm-join-2",
        "linode-swarm-join-3",
        "linode-swarm-manager",
        "registry-stack-deploy",
        "swarm-deploy",
    ]


def test_stacks_deploy_over_ssh_as_deploy_with_the_agent(
    three_vms: tuple[RecordingMocks, dict[str, Any]],
) -> None:
    mocks, _ = three_vms
    for name in ("registry-stack-deploy", "swarm-deploy"):
        connection, _ = unwrap(mocks.named(name).inputs["connection"])
        assert connection["host"] == MANAGER_IP
        assert connection["user"] == "deploy"
        assert "privateKey" not in connection


def test_registry_stack_runs_on_every_node_from_the_stacks_bucket(
    three_vms: tuple[RecordingMocks, dict[str, Any]],
) -> None:
    mocks, outputs = three_vms
    document = stack_file(mocks, "registry-stack-deploy")
    service = document["services"]["registry"]
    assert service["image"] == "registry:2"
    assert service["deploy"]["mode"] == "global"
    assert service["ports"][0]["published"] == 5000
    env = environment(mocks, "registry-stack-deploy")
    assert env["FLIGHTDECK_STACK"] == f"{APP}-registry"
    assert env["FLIGHTDECK_REGISTRY_PASSWORD"] == PASSWORD
    config = yaml.safe_load(env["FLIGHTDECK_SECRET_config"])
    bucket_label = mocks.named("linode-bucket").inputs["label"]
    assert config["storage"]["s3"]["bucket"] == bucket_label == outputs["bucket"]
    assert config["storage"]["s3"]["regionendpoint"] == "https://eu-central-1.linodeobjects.com"
    assert env["FLIGHTDECK_SECRET_bucket"] == (
        f"[default]\naws_access_key_id = {BUCKET_KEYS['access_key']}\n"
        f"aws_secret_access_key = {BUCKET_KEYS['secret_key']}\n"
    )
    assert env["FLIGHTDECK_SECRET_htpasswd"].startswith("flightdeck:$2a$")
    assert outputs["registry"] == "127.0.0.1:5000"


def test_images_are_built_on_the_manager_and_pushed_to_its_loopback_registry(
    three_vms: tuple[RecordingMocks, dict[str, Any]],
) -> None:
    mocks, outputs = three_vms
    provider = mocks.named("manager-docker")
    assert provider.inputs["host"] == f"ssh://deploy@{MANAGER_IP}"
    # BuildKit on the manager's own network, so that its pushes reach the registry on the VM's loopback.
    builder = mocks.named("manager-builder")
    assert builder.inputs["create"] == remote_builder_script(f"{APP}-manager", "127.0.0.1:5000")
    assert builder.inputs["delete"] == remove_builder_script(f"{APP}-manager")
    assert unwrap(builder.inputs["environment"])[0] == {"FLIGHTDECK_BUILD_HOST": f"ssh://deploy@{MANAGER_IP}"}
    builds = {r.name: r for r in mocks.of_type(IMAGE)}
    assert set(builds) == {"image-build", "backup-image-build"}
    sha = git_head_sha()
    for name, build in builds.items():
        assert build.provider is not None and "::manager-docker::" in build.provider
        repository = f"127.0.0.1:5000/{APP}/{'web' if name == 'image-build' else 'backup'}"
        assert build.inputs["tags"] == [f"{repository}:{sha}", f"{repository}:latest"]
        assert build.inputs["exports"][0]["registry"]["insecure"] is True
        assert build.inputs["builder"] == {"name": f"{APP}-manager"}
        [login] = unwrap(build.inputs["registries"])[0]
        assert login == {"address": "127.0.0.1:5000", "username": "flightdeck", "password": PASSWORD}
    assert builds["image-build"].inputs["buildArgs"] == {"PYTHON_IMAGE": "python:3.13-slim"}
    assert builds["backup-image-build"].inputs["buildArgs"] == {"POSTGRES_IMAGE": "postgres:16"}
    assert builds["backup-image-build"].inputs["dockerfile"]["location"].endswith("/backup/Dockerfile")
    assert outputs["image_ref"] == f"127.0.0.1:5000/{APP}/web@{DIGEST}"
    assert outputs["image_digest"] == DIGEST


def test_app_stack_runs_the_image_with_backups_and_no_secret_in_its_file(
    three_vms: tuple[RecordingMocks, dict[str, Any]],
) -> None:
    mocks, outputs = three_vms
    document = stack_file(mocks, "swarm-deploy")
    services = document["services"]
    assert services["web"]["image"] == outputs["image_ref"]
    assert services["web"]["deploy"]["replicas"] == 3
    assert "db" in services
    backup = services["backup"]
    assert backup["image"] == f"127.0.0.1:5000/{APP}/backup:{git_head_sha()}"
    assert backup["networks"] == ["app"]
    assert backup["environment"]["BACKUP_BUCKET"] == outputs["bucket"]
    assert backup["environment"]["BACKUP_S3_ENDPOINT"] == "https://eu-central-1.linodeobjects.com"
    assert backup["environment"]["BACKUP_SCHEDULE"] == "17 3 * * *"
    assert backup["environment"]["PGHOST"] == "db"
    secrets = document["secrets"]
    assert {"postgres_password", "bucket_credentials"} <= set(secrets)
    assert secrets["bucket_credentials"]["external"] is True
    # Every VM address and the balancer's are hosts the app answers to.
    allowed = services["web"]["environment"]["ALLOWED_HOSTS"].split(",")
    assert allowed[0] == "flights-iaas.example.com"
    assert {MANAGER_IP, BALANCER_IP} <= set(allowed)

    env = environment(mocks, "swarm-deploy")
    assert env["FLIGHTDECK_SECRET_bucket_credentials"].startswith("[default]\n")
    assert env["FLIGHTDECK_SECRET_DATABASE_URL"] == f"postgres://app:{PASSWORD}@db:5432/app"
    assert f"secret bucket_credentials {secrets['bucket_credentials']['name']}" in env["FLIGHTDECK_OBJECTS"]


def test_outputs(three_vms: tuple[RecordingMocks, dict[str, Any]]) -> None:
    _, outputs = three_vms
    assert outputs["url"] == "https://flights-iaas.example.com"
    assert outputs["manager_ip"] == MANAGER_IP
    assert outputs["public_address"] == BALANCER_IP
    assert outputs["bucket"] == f"{APP}-data"
    assert set(outputs) == {
        "url", "image_ref", "image_digest", "registry", "manager_ip", "public_address", "bucket",
        "monthly_cost",
    }  # fmt: skip


def test_one_vm_has_no_balancer_and_no_joins() -> None:
    mocks, outputs = run_program("iaas", linodeInstanceCount=1, domain=None)
    types = Counter(r.type for r in mocks.resources)
    assert types["linode:index/instance:Instance"] == 1
    assert "linode:index/nodeBalancer:NodeBalancer" not in types
    assert sorted(r.name for r in mocks.of_type(REMOTE)) == [
        "linode-swarm-manager",
        "registry-stack-deploy",
        "swarm-deploy",
    ]
    assert outputs["public_address"] == outputs["manager_ip"] == MANAGER_IP
    assert outputs["url"] == f"http://{MANAGER_IP}"
    allowed = stack_file(mocks, "swarm-deploy")["services"]["web"]["environment"]["ALLOWED_HOSTS"]
    assert allowed.split(",")[0] == MANAGER_IP


def test_managed_database_passes_its_url_as_a_secret_and_has_no_db_service() -> None:
    mocks, _ = run_program("iaas", linodeManagedDatabase=True)
    assert len(mocks.of_type("linode:index/databasePostgresqlV2:DatabasePostgresqlV2")) == 1
    document = stack_file(mocks, "swarm-deploy")
    # Linode backs up its managed databases: no db service, no backup job, no backup image.
    assert set(document["services"]) == {"web", "proxy"}
    assert "postgres_password" not in document["secrets"]
    assert "bucket_credentials" not in document["secrets"]
    assert [r.name for r in mocks.of_type(IMAGE)] == ["image-build"]
    assert Counter(r.type for r in mocks.resources)["random:index/randomPassword:RandomPassword"] == 3
    env = environment(mocks, "swarm-deploy")
    assert env["FLIGHTDECK_SECRET_DATABASE_URL"] == (
        f"postgres://{DATABASE['root_username']}:{DATABASE['root_password']}@{DATABASE['host_primary']}:"
        f"{DATABASE['port']}/defaultdb?sslmode=require"
    )


def test_managed_database_url_quotes_the_credentials() -> None:
    url = managed_database_url(["a@b", "p/w:d%", "db.example", 24035])
    assert url == "postgres://a%40b:p%2Fw%3Ad%25@db.example:24035/defaultdb?sslmode=require"


ROLLBACK = f"127.0.0.1:5000/{APP}/web@sha256:" + "12" * 32


def test_promotion_of_an_image_already_in_the_stacks_registry_builds_no_app_image() -> None:
    mocks, outputs = run_program("iaas", imageDigest=ROLLBACK)
    assert [r.name for r in mocks.of_type(IMAGE)] == ["backup-image-build"]
    assert [r.name for r in mocks.of_type("command:local:Command")] == ["manager-builder"]  # no copy
    assert outputs["image_ref"] == ROLLBACK
    assert stack_file(mocks, "swarm-deploy")["services"]["web"]["image"] == ROLLBACK


def test_promotion_from_another_registry_is_refused_naming_the_setting() -> None:
    foreign = "registry.heroku.com/flightdeck-dev/web@sha256:" + "12" * 32
    with pytest.raises(pulumi.RunError, match=r"flightdeck:imageDigest: registry\.heroku\.com/.* is not in "):
        check_iaas_promotion(foreign, f"127.0.0.1:5000/{APP}/web")
    with pytest.raises(pulumi.RunError, match="flightdeck:imageDigest"):
        run_program("iaas", imageDigest=foreign)
    # Another app's repository on the same address is another registry path: refused too.
    with pytest.raises(pulumi.RunError, match="unset flightdeck:imageDigest"):
        check_iaas_promotion("127.0.0.1:5000/other/web@sha256:" + "12" * 32, f"127.0.0.1:5000/{APP}/web")
    check_iaas_promotion(None, f"127.0.0.1:5000/{APP}/web")
    check_iaas_promotion(ROLLBACK, f"127.0.0.1:5000/{APP}/web")


def test_registry_stack_name_fits_the_secret_names(three_vms: tuple[RecordingMocks, dict[str, Any]]) -> None:
    mocks, _ = three_vms
    names = [s["name"] for s in stack_file(mocks, "registry-stack-deploy")["secrets"].values()]
    assert all(n.startswith(f"{rs.stack_name(APP)}_") and len(n) <= 64 for n in names)
