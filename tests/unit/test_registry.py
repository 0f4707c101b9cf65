"""The registry's renderers (pure) and PrivateRegistry under Pulumi mocks."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import bcrypt
import pulumi
import pytest
import yaml

from components import registry
from tests.support.pulumi_mocks import COMPUTED, RecordingMocks, use_mocks

PASSWORD = COMPUTED["random:index/randomPassword:RandomPassword"]["result"]
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a")).decode()
PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
LINODE = registry.S3Storage(bucket="airline-data", endpoint="us-east-1.linodeobjects.com")


def config(**kwargs: Any) -> dict[str, Any]:
    rendered = registry.registry_config(http_secret="s3cr3t-http", **{"s3": LINODE, **kwargs})
    loaded: dict[str, Any] = yaml.safe_load(rendered)
    return loaded


def test_config_stores_in_the_bucket_without_keys() -> None:
    rendered = config()
    s3 = rendered["storage"]["s3"]
    assert s3 == {
        "bucket": "airline-data",
        "region": "us-east-1",
        "regionendpoint": "https://us-east-1.linodeobjects.com",
        "secure": True,
        "v4auth": True,
        "rootdirectory": "/registry",
    }
    assert "accesskey" not in json.dumps(rendered) and "secretkey" not in json.dumps(rendered)
    assert rendered["version"] == "0.1"  # a string: the registry refuses a number here
    assert rendered["http"]["secret"] == "s3cr3t-http"
    assert rendered["auth"]["htpasswd"]["path"] == "/run/secrets/registry_htpasswd"


def test_config_speaks_plain_http_to_an_http_endpoint() -> None:
    s3 = config(s3=registry.S3Storage(bucket="b", endpoint="http://127.0.0.1:9000"))["storage"]["s3"]
    assert s3["regionendpoint"] == "http://127.0.0.1:9000" and s3["secure"] is False


def test_config_without_bucket_uses_the_volume() -> None:
    storage = config(s3=None)["storage"]
    assert storage["filesystem"] == {"rootdirectory": "/var/lib/registry"}
    assert "s3" not in storage


def test_config_health_listener_stays_on_loopback_and_urls_follow_the_request() -> None:
    http = config(port=5050, debug_port=5051)["http"]
    assert http["addr"] == ":5050"
    assert http["debug"]["addr"] == "127.0.0.1:5051"
    assert "host" not in http  # one registry, reached as 127.0.0.1:5000 and as registry.<domain>


def test_htpasswd_line_takes_bcrypt_only() -> None:
    line = registry.htpasswd_line("flightdeck", HASH)
    user, _, stored = line.rstrip("\n").partition(":")
    assert user == "flightdeck" and bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    for other in ("$apr1$abcdefgh$0123456789abcdefghijkl", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "plain"):
        with pytest.raises(ValueError, match="bcrypt"):
            registry.htpasswd_line("flightdeck", other)
    with pytest.raises(ValueError, match="user name"):
        registry.htpasswd_line("flight:deck", HASH)


def test_bucket_credentials_file_is_read_as_aws_credentials() -> None:
    parser = configparser.ConfigParser()
    parser.read_string(registry.bucket_credentials_file("AKIA123", "abc/def+ghi"))
    assert dict(parser["default"]) == {"aws_access_key_id": "AKIA123", "aws_secret_access_key": "abc/def+ghi"}
    with pytest.raises(ValueError):
        registry.bucket_credentials_file("AKIA123", "abc\n[evil]")
    with pytest.raises(ValueError):
        registry.bucket_credentials_file("", "x")


def test_service_reads_everything_secret_from_docker_secrets() -> None:
    service = registry.registry_service("registry:2", networks=["app"])
    assert service["image"] == "registry:2"
    assert service["command"] == ["serve", "/run/secrets/registry_config"]
    assert {s["source"] for s in service["secrets"]} == {
        "registry_config",
        "registry_htpasswd",
        "bucket_credentials",
    }
    assert service["environment"] == {"AWS_SHARED_CREDENTIALS_FILE": "/run/secrets/bucket_credentials"}
    assert service["networks"] == ["app"]
    assert "ports" not in service and "volumes" not in service
    assert str(registry.DEBUG_PORT) in " ".join(service["healthcheck"]["test"])
    assert service["deploy"]["replicas"] == 1


def test_local_service_publishes_on_the_node_and_keeps_data_on_a_volume() -> None:
    service = registry.registry_service("registry:2", networks=["app"], publish_port=5000, uses_bucket=False)
    assert service["ports"] == [{"target": 5000, "published": 5000, "protocol": "tcp", "mode": "host"}]
    assert service["volumes"] == ["registry-data:/var/lib/registry"]
    assert "bucket_credentials" not in {s["source"] for s in service["secrets"]}
    assert "environment" not in service


def test_per_node_registry_runs_everywhere_on_the_bucket() -> None:
    service = registry.registry_service("registry:2", networks=["app"], publish_port=5000, per_node=True)
    assert service["deploy"]["mode"] == "global" and "replicas" not in service["deploy"]
    with pytest.raises(ValueError, match="share a bucket"):
        registry.registry_service("registry:2", networks=["app"], uses_bucket=False, per_node=True)


def test_registry_host() -> None:
    assert registry.registry_host("airline.example.com") == "registry.airline.example.com"
    assert registry.registry_host(None) == "127.0.0.1:5000"


def test_caddy_site_proxies_to_the_registry() -> None:
    site = registry.caddy_site("registry.example.com")
    assert site.startswith("registry.example.com {")
    assert "reverse_proxy registry:5000" in site


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed (apt-get install caddy)")
def test_caddy_accepts_the_site_block() -> None:
    adapted = subprocess.run(
        ["caddy", "adapt", "--adapter", "caddyfile", "--config", "/dev/stdin"],
        input=registry.caddy_site("registry.example.com"),
        capture_output=True,
        text=True,
        check=True,
    )
    server = json.loads(adapted.stdout)["apps"]["http"]["servers"]["srv0"]
    route = server["routes"][0]
    assert route["match"] == [{"host": ["registry.example.com"]}]
    assert "registry:5000" in json.dumps(route)


# Mocks: RandomPassword also computes the bcrypt hash of its result.
MOCKS = RecordingMocks(computed={**COMPUTED, PASSWORD_TYPE: {"result": PASSWORD, "bcryptHash": HASH}})


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    MOCKS.resources.clear()
    pulumi.runtime.set_mocks(MOCKS, project="flightdeck", stack="iaas")
    yield MOCKS
    use_mocks()  # mocks are process-wide: hand the shared ones back


OUTPUTS = ("address", "username", "password", "htpasswd", "config", "secret_files")


def declare(args: registry.PrivateRegistryArgs) -> tuple[dict[str, Any], dict[str, bool]]:
    captured: dict[str, Any] = {}

    async def resolve(reg: registry.PrivateRegistry) -> None:
        outputs = {name: getattr(reg, name) for name in OUTPUTS}
        captured["values"] = {name: await out.future() for name, out in outputs.items()}
        captured["secret"] = {name: await out.is_secret() for name, out in outputs.items()}

    @pulumi.runtime.test
    def run() -> Any:
        return pulumi.Output.from_input(resolve(registry.PrivateRegistry("registry", args)))

    run()
    return captured["values"], captured["secret"]


def test_private_registry_on_the_bucket(mocks: RecordingMocks) -> None:
    values, secret = declare(
        registry.PrivateRegistryArgs(
            domain="airline.example.com", bucket="airline-data", endpoint="us-east-1.linodeobjects.com"
        )
    )
    assert values["address"] == "registry.airline.example.com"
    assert values["username"] == "flightdeck" and values["password"] == PASSWORD
    assert values["htpasswd"] == f"flightdeck:{HASH}\n"
    rendered = yaml.safe_load(values["config"])
    assert rendered["storage"]["s3"]["bucket"] == "airline-data"
    assert values["secret_files"] == {
        "registry_config": values["config"],
        "registry_htpasswd": values["htpasswd"],
    }
    assert secret == {name: name in ("password", "htpasswd", "config", "secret_files") for name in OUTPUTS}

    passwords = mocks.of_type(PASSWORD_TYPE)
    assert sorted(p.name for p in passwords) == ["registry-http-secret", "registry-password"]
    assert all(p.inputs["special"] is False and p.inputs["length"] >= 32 for p in passwords)


def test_private_registry_without_bucket_is_local(mocks: RecordingMocks) -> None:
    values, _ = declare(registry.PrivateRegistryArgs(domain=None))
    assert values["address"] == "127.0.0.1:5000"
    rendered = yaml.safe_load(values["config"])
    assert "filesystem" in rendered["storage"]


def test_private_registry_needs_bucket_and_endpoint_together(mocks: RecordingMocks) -> None:
    with pytest.raises(ValueError, match="both bucket and endpoint"):
        registry.PrivateRegistry("registry", registry.PrivateRegistryArgs(domain=None, bucket="b"))
