"""The whole program, once per stack file, under mocks: what `pulumi up --stack <stack>` would declare, what
each resource is given, in which order, and what the stack outputs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml
from pulumi.runtime.settings import get_monitor

from components.linode_postgres import CA_FILE
from settings import SettingsError
from tests.support.compose import compose_spec_problems
from tests.support.linode_mocks import CA_PEM, DATABASE_PASSWORD
from tests.support.pulumi_mocks import COMPUTED, MOCK_SECRET, RecordingMocks
from tests.support.secrets import is_secret, reveal, unwrap
from tests.support.stack_runs import leaks, run_stack, stack_document, tree_problems
from tests.support.stacks import STACKS, TEST_SECRETS

GENERATED = "pulumi-python:dynamic/flightdeck:GeneratedSecret"
CLUSTER = "pulumi-python:dynamic/flightdeck:SwarmCluster"
DEPLOYMENT = "pulumi-python:dynamic/flightdeck:SwarmDeployment"
REGISTRY = "pulumi-python:dynamic/flightdeck:RegistryContainer"
COPY = "pulumi-python:dynamic/flightdeck:ImageCopy"
RELEASE = "pulumi-python:dynamic/heroku:ContainerRelease"
IMAGE = "docker-build:index:Image"
BUILT = COMPUTED[IMAGE]["digest"]
DIGEST = "sha256:" + "12" * 32
DEV_REF = f"registry.heroku.com/flightdeck-dev/web@{DIGEST}"
SENTRY = "https://sentry-key-0000@sentry.example/1"
TARGET_OF = {"local": "local", "dev": "heroku", "prod": "heroku", "servers": "servers", "iaas": "iaas"}
# Every secret value the mocks and the stack files' test secrets hand the program.
SECRETS = [
    MOCK_SECRET,
    COMPUTED[GENERATED]["bcrypt_hash"],
    *(value for values in TEST_SECRETS.values() for value in values.values()),
    COMPUTED["linode:index/objectStorageKey:ObjectStorageKey"]["secret_key"],
    DATABASE_PASSWORD,
    SENTRY,
    "PRIVATE KEY",  # any private key (the VMs' host keys)
]
# The servers' pinned host keys (Pulumi.servers.yaml).
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"
SERVERS = {
    "web1": ("203.0.113.21", "manager", ED25519 + "HMQX6dXz52fUk8uBNZV6t5EkScCAlgyW3aAEFu0ckaN"),
    "web2": ("203.0.113.22", "worker", ED25519 + "I46uMoeafY60uV/5lAwY8fhbeE50VoGJMvEkqMN9WxC"),
    "web3": ("203.0.113.23", "worker", ED25519 + "PEjx49+kzkXcxMh4mRIIB5aMiVbuCRxcqu1La+Upq8n"),
}


def kinds(mocks: RecordingMocks) -> Counter[str]:
    return Counter(r.type for r in mocks.resources)


def plain(value: Any) -> Any:
    inner, secret = unwrap(value)
    assert not secret, "expected a plain input"
    return inner


def secret(value: Any) -> Any:
    inner, was_secret = unwrap(value)
    assert was_secret, "expected a secret input"
    return reveal(inner)


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[RecordingMocks, dict[str, Any]]]:
    """Each committed stack run once (with a secret config var), its records copied out of the mocks; with
    no DOCKER_HOST (the e2e's docker_engine fixture sets one for the session), as a deployer without one."""
    done = {}
    with pytest.MonkeyPatch.context() as environment:
        environment.delenv("DOCKER_HOST", raising=False)
        for stack in STACKS:
            mocks, outputs = run_stack(stack, secrets={"secretConfigVars": {"SENTRY_DSN": SENTRY}})
            done[stack] = (RecordingMocks(resources=list(mocks.resources)), outputs)
    return done


# -- every stack ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_target_outputs_url_image_and_cost(stack: str, runs: dict[str, Any]) -> None:
    _, outputs = runs[stack]
    assert {"url", "image_ref", "image_digest", "monthly_cost"} <= set(outputs)
    assert outputs["url"].startswith(("http://", "https://"))
    repository, _, digest = outputs["image_ref"].partition("@")
    assert digest == outputs["image_digest"] == BUILT  # released by digest: the one the build made
    assert repository
    cost = outputs["monthly_cost"]
    assert cost["currency"] == "USD" and cost["period"] == "month" and cost["pricesAsOf"] == "2026-11"


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_is_in_a_plain_input(stack: str, runs: dict[str, Any]) -> None:
    mocks, outputs = runs[stack]
    assert leaks(mocks, SECRETS) == []
    assert not [s for s in SECRETS if s in repr(outputs)]


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_has_its_parent_and_is_named_after_it(stack: str, runs: dict[str, Any]) -> None:
    mocks, _ = runs[stack]
    assert tree_problems(mocks, TARGET_OF[stack]) == []
    [target] = [r for r in mocks.resources if r.type.startswith("flightdeck:targets:")]
    assert target.name == TARGET_OF[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_the_program_renders_is_valid(
    stack: str, runs: dict[str, Any], tmp_path: Any
) -> None:
    mocks, _ = runs[stack]
    for n, deployment in enumerate(mocks.of_type(DEPLOYMENT)):
        assert compose_spec_problems(plain(deployment.inputs["stack_file"]), tmp_path, f"{n}.yml") == ""


@pytest.mark.parametrize("stack", ["local", "dev"])
def test_a_bad_value_stops_the_program_before_any_resource(stack: str) -> None:
    with pytest.raises(SettingsError, match="flightdeck:webInstances"):
        run_stack(stack, webInstances=0)
    # The mocks run_program installed (its first step) recorded nothing.
    assert get_monitor().mocks.resources == []


# -- local ---------------------------------------------------------------------------------------------------


def test_local_declares_its_swarm_registry_image_secrets_and_stack(runs: dict[str, Any]) -> None:
    mocks, outputs = runs["local"]
    assert kinds(mocks) >= Counter(
        {
            "flightdeck:swarm:SwarmHosts": 1,
            CLUSTER: 1,
            "flightdeck:local_registry:LocalRegistry": 1,
            REGISTRY: 1,
            "flightdeck:image:AppImage": 1,
            IMAGE: 1,
            GENERATED: 2,  # SECRET_KEY and the database password
            "flightdeck:swarm:SwarmStack": 1,
            DEPLOYMENT: 1,
        }
    )
    assert kinds(mocks)[IMAGE] == 1 and kinds(mocks)[COPY] == 0
    assert outputs["url"] == "http://localhost:8080"
    assert outputs["image_ref"] == f"127.0.0.1:5000/flightdeck-local/web@{BUILT}"
    assert outputs["monthly_cost"]["total"] == "0.00"
    assert outputs["release"]["image"] == outputs["image_ref"]


def test_local_swarm_is_this_machines_engine_without_ssh(runs: dict[str, Any]) -> None:
    mocks, _ = runs["local"]
    [cluster] = mocks.of_type(CLUSTER)
    assert cluster.inputs["hosts"] == [
        {"name": "local", "engine": "unix:///var/run/docker.sock", "address": "127.0.0.1", "role": "manager",
         "label": "this machine's engine"}
    ]  # fmt: skip
    assert not cluster.inputs.get("ssh")


def test_local_registry_is_a_loopback_container_the_build_waits_for(runs: dict[str, Any]) -> None:
    mocks, _ = runs["local"]
    [registry] = mocks.of_type(REGISTRY)
    assert {k: registry.inputs[k] for k in ("engine", "image", "container", "volume", "port")} == {
        "engine": "unix:///var/run/docker.sock",
        "image": "registry:2",
        "container": "flightdeck-local-registry",
        "volume": "flightdeck-local-registry-data",
        "port": 5000,
    }
    [build] = mocks.of_type(IMAGE)
    assert mocks.waits_for(build, registry)


def test_local_image_is_a_schema2_exec_build_on_the_engines_own_buildkit(runs: dict[str, Any]) -> None:
    mocks, _ = runs["local"]
    [build] = mocks.of_type(IMAGE)
    image = build.inputs
    assert image["exec"] is True
    assert image["builder"] == {"name": "default"}  # the engine's BuildKit: no provenance, no pulled image
    [export] = image["exports"]
    assert export["registry"]["ociMediaTypes"] is False and export["registry"]["push"] is True
    assert export["registry"]["insecure"] is True  # the registry on 127.0.0.1
    assert image["push"] is False  # only the export pushes
    assert image["platforms"] == ["linux/amd64"]
    assert image["network"] == "host"  # the push reaches the registry on the host's loopback
    repository = "127.0.0.1:5000/flightdeck-local/web"
    assert image["tags"][1] == f"{repository}:latest" and image["tags"][0].startswith(f"{repository}:")
    assert image["cacheFrom"] == [{"registry": {"ref": f"{repository}:latest"}}]
    assert image["cacheTo"] == [{"inline": {}}]
    assert "registries" not in image  # no credentials for the local registry


def test_local_secrets_are_drawn_once_by_the_generated_secret_provider(runs: dict[str, Any]) -> None:
    mocks, _ = runs["local"]
    recipes = sorted(
        (r.inputs["length"], r.inputs["alphabet"], r.inputs["bcrypt"]) for r in mocks.of_type(GENERATED)
    )
    assert recipes == [(32, "alphanumeric", False), (64, "urlsafe", False)]


def test_local_stack_deploys_the_built_image_with_secrets_as_secrets(runs: dict[str, Any]) -> None:
    mocks, outputs = runs["local"]
    [deployment] = mocks.of_type(DEPLOYMENT)
    inputs = deployment.inputs
    assert plain(inputs["engine"]) == "unix:///var/run/docker.sock"
    assert inputs["stack"] == "flightdeck-local"
    document = stack_document(deployment)
    assert {document["services"][s]["image"] for s in ("web", "worker", "scheduler")} == {
        outputs["image_ref"]
    }
    assert document["services"]["web"]["deploy"]["replicas"] == 2
    values = secret(inputs["secrets"])
    assert values == {
        "SECRET_KEY": MOCK_SECRET,
        "postgres_password": MOCK_SECRET,
        "DATABASE_URL": f"postgres://app:{MOCK_SECRET}@db:5432/app",
        "SENTRY_DSN": SENTRY,
    }
    names = {o["name"] for o in plain(inputs["objects"])}
    assert {s["name"] for s in document["secrets"].values()} | {
        document["configs"]["caddyfile"]["name"]
    } == names
    assert plain(inputs["nodes"]) == ["unix:///var/run/docker.sock"]
    assert plain(inputs["health"]) == {"url": "http://127.0.0.1:8080/healthz", "host": "localhost"}
    assert plain(inputs["repository"]) == "127.0.0.1:5000/flightdeck-local/web"
    assert inputs["app_services"] == ["web", "scheduler", "worker"]
    assert inputs["keep_releases"] == 5
    assert inputs["kept_volumes"] == ["db-data"]
    release = plain(inputs["release"])
    assert release["command"] == ["/app/start", "release"] and "SENTRY_DSN" in release["secrets"]
    assert not inputs.get("registry_auth")


def test_local_stack_waits_for_the_swarm_and_the_image(runs: dict[str, Any]) -> None:
    mocks, _ = runs["local"]
    [deployment] = mocks.of_type(DEPLOYMENT)
    assert mocks.waits_for(deployment, mocks.of_type(CLUSTER)[0])
    assert mocks.waits_for(deployment, mocks.of_type(IMAGE)[0])
    assert all(mocks.waits_for(deployment, s) for s in mocks.of_type(GENERATED))


def test_local_follows_the_deployers_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/flightdeck/docker.sock")
    mocks, _ = run_stack("local")
    engine = "unix:///run/flightdeck/docker.sock"
    assert mocks.of_type(CLUSTER)[0].inputs["hosts"][0]["engine"] == engine
    assert mocks.of_type(REGISTRY)[0].inputs["engine"] == engine
    assert plain(mocks.of_type(DEPLOYMENT)[0].inputs["engine"]) == engine


def test_this_machines_registry_listens_on_registry_port(runs: dict[str, Any]) -> None:
    for stack in ("local", "servers"):
        assert [r.inputs["port"] for r in runs[stack][0].of_type(REGISTRY)] == [5000]
    for stack in ("local", "servers"):
        mocks, _ = run_stack(stack, registryPort=5123)
        assert [r.inputs["port"] for r in mocks.of_type(REGISTRY)] == [5123]
        assert all(tag.startswith("127.0.0.1:5123/") for tag in mocks.of_type(IMAGE)[0].inputs["tags"])


def test_local_rollback_to_a_recorded_digest_builds_and_copies_nothing() -> None:
    ref = f"127.0.0.1:5000/flightdeck-local/web@{DIGEST}"
    mocks, outputs = run_stack("local", imageDigest=ref)
    assert kinds(mocks)[IMAGE] == 0 and kinds(mocks)[COPY] == 0
    assert outputs["image_ref"] == ref and outputs["image_digest"] == DIGEST
    assert stack_document(mocks.of_type(DEPLOYMENT)[0])["services"]["web"]["image"] == ref


# -- heroku --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_heroku_declares_the_app_its_add_ons_release_and_formation(stack: str, runs: dict[str, Any]) -> None:
    mocks, outputs = runs[stack]
    app = mocks.named("heroku-app-app").inputs
    assert (app["name"], app["stack"], app["region"]) == (f"flightdeck-{stack}", "container", "us")
    assert plain(app["configVars"])["DEBUG"] == "false"
    sensitive = secret(app["sensitiveConfigVars"])
    assert sensitive == {"SECRET_KEY": MOCK_SECRET, "SENTRY_DSN": SENTRY}
    [key] = mocks.of_type(GENERATED)
    assert (key.inputs["length"], key.inputs["alphabet"]) == (64, "urlsafe")
    plans = sorted(r.inputs["plan"] for r in mocks.of_type("heroku:addon/addon:Addon"))
    assert plans == (
        ["heroku-postgresql:essential-0"]
        if stack == "dev"
        else ["heroku-postgresql:standard-0", "heroku-redis:premium-0"]
    )
    [release] = mocks.of_type(RELEASE)
    assert release.inputs["app"] == f"flightdeck-{stack}"
    assert release.inputs["image_ref"] == outputs["image_ref"]
    assert release.inputs["process_types"] == ["web", "scheduler", "worker", "release"]
    assert secret(release.inputs["api_key"]) == TEST_SECRETS["heroku"]["heroku:apiKey"]
    formations = {
        r.inputs["type"]: (r.inputs["quantity"], r.inputs["size"])
        for r in mocks.of_type("heroku:formation/formation:Formation")
    }
    if stack == "dev":
        assert formations == {"web": (1, "basic"), "worker": (1, "basic"), "scheduler": (1, "basic")}
    else:  # Pulumi.prod.yaml sizes its worker and scheduler itself
        assert formations == {
            "web": (2, "standard-2X"),
            "worker": (1, "standard-1X"),
            "scheduler": (1, "standard-1X"),
        }
    # Migrations need the database first; the dynos need the release.
    assert mocks.waits_for(release, mocks.named("heroku-app-postgres"))
    assert all(mocks.waits_for(f, release) for f in mocks.of_type("heroku:formation/formation:Formation"))
    assert outputs["url"] == COMPUTED["heroku:app/app:App"]["webUrl"]
    assert outputs["image_id"] == COMPUTED[RELEASE]["image_id"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_heroku_builds_schema2_images_for_its_registry(stack: str, runs: dict[str, Any]) -> None:
    mocks, outputs = runs[stack]
    [build] = mocks.of_type(IMAGE)
    image = build.inputs
    repository = f"registry.heroku.com/flightdeck-{stack}/web"
    assert outputs["image_ref"] == f"{repository}@{BUILT}"
    assert image["exec"] is True and image["builder"] == {"name": "default"}
    assert image["exports"][0]["registry"]["ociMediaTypes"] is False
    assert image["platforms"] == ["linux/amd64"]
    assert image["tags"][1] == f"{repository}:latest"
    [login] = secret(image["registries"])
    assert login == {
        "address": "registry.heroku.com",
        "username": "_",
        "password": TEST_SECRETS["heroku"]["heroku:apiKey"],
    }
    assert mocks.waits_for(build, mocks.named("heroku-app-app"))  # the repository exists once the app does


def test_dev_has_no_domain_and_prod_points_its_domain(runs: dict[str, Any]) -> None:
    dev, dev_outputs = runs["dev"]
    assert dev.of_type("heroku:domain/domain:Domain") == [] and "dns_target" not in dev_outputs
    assert dev.named("heroku-app-app").inputs["acm"] is False
    prod, prod_outputs = runs["prod"]
    [domain] = prod.of_type("heroku:domain/domain:Domain")
    assert domain.inputs["hostname"] == "flights.example.com"
    assert prod_outputs["dns_target"] == COMPUTED["heroku:domain/domain:Domain"]["cname"]
    assert prod.named("heroku-app-app").inputs["acm"] is True
    hosts = prod.named("heroku-app-hosts").inputs["vars"]
    assert hosts["ALLOWED_HOSTS"].split(",") == [
        COMPUTED["heroku:app/app:App"]["herokuHostname"],
        "flights.example.com",
    ]


def test_prod_promotes_devs_digest_and_never_builds() -> None:
    mocks, outputs = run_stack("prod", imageDigest=DEV_REF)
    assert kinds(mocks)[IMAGE] == 0
    [copy] = mocks.of_type(COPY)
    assert plain(copy.inputs["source"]) == DEV_REF
    assert plain(copy.inputs["repository"]) == "registry.heroku.com/flightdeck-prod/web"
    key = TEST_SECRETS["heroku"]["heroku:apiKey"]
    assert (
        secret(copy.inputs["source_auth"])
        == secret(copy.inputs["destination_auth"])
        == {"username": "_", "password": key}
    )
    assert not copy.inputs.get("tunnel")
    assert outputs["image_ref"] == f"registry.heroku.com/flightdeck-prod/web@{DIGEST}"
    assert outputs["image_digest"] == DIGEST
    [release] = mocks.of_type(RELEASE)
    assert release.inputs["image_ref"] == outputs["image_ref"]
    assert mocks.waits_for(release, copy)
    assert mocks.waits_for(copy, mocks.named("heroku-app-app"))


# -- servers -------------------------------------------------------------------------------------------------


def test_servers_declares_the_servers_layer(runs: dict[str, Any]) -> None:
    mocks, outputs = runs["servers"]
    assert kinds(mocks) >= Counter(
        {
            "flightdeck:servers:ServersLayer": 1,
            CLUSTER: 1,
            DEPLOYMENT: 2,  # the registry's stack and the app's
            REGISTRY: 1,  # the build registry on this machine
            IMAGE: 2,  # the app and the backup job
            COPY: 2,
            "flightdeck:backups:BackupJob": 1,
        }
    )
    assert outputs["url"] == "https://flights-servers.example.com"
    assert outputs["image_ref"] == f"127.0.0.1:5000/flightdeck-servers/web@{BUILT}"
    assert outputs["manager_address"] == "203.0.113.21"
    assert outputs["monthly_cost"]["items"] == []
    assert outputs["monthly_cost"]["notes"] == ["runs on 3 server(s) you already pay for: not priced here"]


def test_servers_swarm_is_made_over_ssh_with_the_pinned_keys(runs: dict[str, Any]) -> None:
    mocks, _ = runs["servers"]
    [cluster] = mocks.of_type(CLUSTER)
    hosts = {h["name"]: h for h in cluster.inputs["hosts"]}
    assert set(hosts) == set(SERVERS)
    for index, (name, (address, role, _)) in enumerate(SERVERS.items()):
        assert hosts[name]["engine"] == f"ssh://deploy@{address}:22"
        assert (hosts[name]["address"], hosts[name]["role"]) == (address, role)
        assert hosts[name]["label"] == f"{name} (flightdeck:servers[{index}])"
    trust = plain(cluster.inputs["ssh"])
    assert {(h["address"], h["port"], h["host_key"]) for h in trust["hosts"]} == {
        (address, 22, key) for address, _, key in SERVERS.values()
    }
    assert not trust.get("identity_file")  # the SSH agent of whoever runs `pulumi up`


def test_servers_private_registry_is_its_own_stack_on_the_manager(runs: dict[str, Any]) -> None:
    mocks, _ = runs["servers"]
    registry = mocks.named("servers-layer-registry-deployment")
    assert plain(registry.inputs["engine"]) == "ssh://deploy@203.0.113.21:22"
    assert registry.inputs["stack"] == "flightdeck-servers-registry"
    service = stack_document(registry)["services"]["registry"]
    assert service["deploy"]["mode"] == "global"
    assert service["ports"] == [{"target": 5000, "published": 5000, "protocol": "tcp", "mode": "host"}]
    files = secret(registry.inputs["secrets"])
    assert set(files) == {"registry_config", "registry_htpasswd", "bucket_credentials"}
    assert files["registry_htpasswd"] == f"flightdeck:{COMPUTED[GENERATED]['bcrypt_hash']}\n"
    assert "aws_secret_access_key = test-secret-0000" in files["bucket_credentials"]
    config = yaml.safe_load(files["registry_config"])
    assert config["storage"]["s3"]["bucket"] == "flightdeck-servers-data"
    assert config["storage"]["s3"]["regionendpoint"] == "https://eu-central-1.linodeobjects.com"
    password = next(r for r in mocks.of_type(GENERATED) if r.name == "servers-layer-registry-password")
    assert password.inputs["bcrypt"] is True


def test_servers_build_here_and_copy_through_a_tunnel_to_the_manager(runs: dict[str, Any]) -> None:
    mocks, _ = runs["servers"]
    [build_registry] = mocks.of_type(REGISTRY)
    assert (
        build_registry.inputs["port"] == 5000
        and build_registry.inputs["engine"] == "unix:///var/run/docker.sock"
    )
    web = mocks.named("servers-layer-build-build")
    assert web.inputs["tags"][1] == "127.0.0.1:5000/flightdeck-servers/web:latest"
    assert mocks.waits_for(web, build_registry)
    copy = mocks.named("servers-layer-image-copy")
    assert plain(copy.inputs["source"]) == f"127.0.0.1:5000/flightdeck-servers/web@{BUILT}"
    assert plain(copy.inputs["repository"]) == "127.0.0.1:5000/flightdeck-servers/web"
    assert plain(copy.inputs["tunnel"]) == {
        "engine": "ssh://deploy@203.0.113.21:22", "remote": "127.0.0.1:5000", "label": "the swarm manager"
    }  # fmt: skip
    assert secret(copy.inputs["destination_auth"]) == {"username": "flightdeck", "password": MOCK_SECRET}
    assert {h["address"] for h in plain(copy.inputs["ssh"])["hosts"]} == {a for a, _, _ in SERVERS.values()}
    assert mocks.waits_for(copy, web)


def test_servers_copy_images_only_once_the_registry_runs(runs: dict[str, Any]) -> None:
    mocks, _ = runs["servers"]
    registry = mocks.named("servers-layer-registry-deployment")
    for copy in mocks.of_type(COPY):
        assert mocks.waits_for(copy, registry), copy.name


def test_servers_back_up_to_the_bucket_from_a_job_of_the_app_stack(runs: dict[str, Any]) -> None:
    mocks, _ = runs["servers"]
    build = mocks.named("servers-layer-backups-image-build")
    assert build.inputs["context"]["location"].endswith("/backup")
    assert build.inputs["buildArgs"] == {"POSTGRES_IMAGE": "postgres:16"}  # pg_dump matches the server
    copy = mocks.named("servers-layer-backups-copy-copy")
    assert plain(copy.inputs["repository"]) == "127.0.0.1:5000/flightdeck-servers/backup"
    app = mocks.named("servers-layer-stack-deployment")
    backup = stack_document(app)["services"]["backup"]
    assert backup["image"] == f"127.0.0.1:5000/flightdeck-servers/backup@{BUILT}"
    env = backup["environment"]
    assert (env["BACKUP_BUCKET"], env["BACKUP_S3_ENDPOINT"], env["BACKUP_S3_REGION"]) == (
        "flightdeck-servers-data", "https://eu-central-1.linodeobjects.com", "eu-central-1"
    )  # fmt: skip
    assert env["BACKUP_SCHEDULE"] == "17 3 * * *"
    assert "bucket_credentials" in secret(app.inputs["secrets"])


def test_servers_app_stack_pulls_from_the_private_registry_on_every_node(runs: dict[str, Any]) -> None:
    mocks, outputs = runs["servers"]
    app = mocks.named("servers-layer-stack-deployment")
    assert plain(app.inputs["engine"]) == "ssh://deploy@203.0.113.21:22"
    assert plain(app.inputs["nodes"]) == [f"ssh://deploy@{a}:22" for a, _, _ in SERVERS.values()]
    assert secret(app.inputs["registry_auth"]) == {
        "address": "127.0.0.1:5000",
        "username": "flightdeck",
        "password": MOCK_SECRET,
    }
    document = stack_document(app)
    assert document["services"]["web"]["image"] == outputs["image_ref"]
    assert document["services"]["web"]["deploy"]["replicas"] == 3
    assert document["services"]["db"]["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    hosts = document["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")
    assert hosts[0] == "flights-servers.example.com" and {a for a, _, _ in SERVERS.values()} <= set(hosts)
    assert plain(app.inputs["health"])["url"] == "http://203.0.113.21:80/healthz"
    assert mocks.waits_for(app, mocks.named("servers-layer-registry-deployment"))
    assert mocks.waits_for(app, mocks.named("servers-layer-image-copy"))


# -- iaas ----------------------------------------------------------------------------------------------------


def test_iaas_runs_the_servers_layer_on_its_vms(runs: dict[str, Any]) -> None:
    mocks, outputs = runs["iaas"]
    assert kinds(mocks)["flightdeck:servers:ServersLayer"] == 1
    assert kinds(mocks)["linode:index/instance:Instance"] == 3
    [cluster] = mocks.of_type(CLUSTER)
    hosts = cluster.inputs["hosts"]
    assert [h["role"] for h in hosts].count("manager") == 1
    assert all(h["engine"].startswith("ssh://") and h["engine"].endswith(":22") for h in hosts)
    trust = plain(cluster.inputs["ssh"])
    keys = [h["host_key"] for h in trust["hosts"]]
    assert len(set(keys)) == 3 and all(k.startswith("ssh-ed25519 ") for k in keys)  # each VM's own, pinned
    assert outputs["url"] == "https://flights-iaas.example.com"
    assert outputs["monthly_cost"]["total"] == "58.50"
    assert outputs["image_ref"] == f"127.0.0.1:5000/flightdeck-iaas/web@{BUILT}"


def test_iaas_with_a_managed_database_passes_its_url_as_a_secret() -> None:
    mocks, _ = run_stack("iaas", linodeManagedDatabase=True)
    app = mocks.named("iaas-layer-stack-deployment")
    document = stack_document(app)
    assert "db" not in document["services"] and "backup" not in document["services"]
    values = secret(app.inputs["secrets"])
    url = values["DATABASE_URL"]
    assert url.startswith("postgres://") and DATABASE_PASSWORD not in url  # the password quoted in the URL
    # TLS checked against the database's own CA, which every app process gets as a file.
    assert "sslmode=verify-full" in url and f"sslrootcert=/run/secrets/{CA_FILE}" in url
    assert values[CA_FILE] == CA_PEM
    for kind in ("web", "worker", "scheduler"):
        assert {"source": f"s_{CA_FILE}", "target": CA_FILE} in document["services"][kind]["secrets"]
    assert leaks(mocks, SECRETS) == []


def test_secret_inputs_are_wrapped_as_secrets_whole() -> None:
    mocks, _ = run_stack("local")
    [deployment] = mocks.of_type(DEPLOYMENT)
    assert is_secret(deployment.inputs["secrets"])
    assert not is_secret(deployment.inputs["stack_file"]) and not is_secret(deployment.inputs["objects"])
