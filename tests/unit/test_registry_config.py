"""The servers targets' private registry (render/registry_config.py), pure: its config.yml, its htpasswd line,
the bucket's credentials file and its own swarm stack (checked against the compose spec and read back by the
docker CLI)."""

from __future__ import annotations

import configparser
import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from components.private_registry import stack_name
from render import registry_config as rc
from render.stack_file import MAX_OBJECT_NAME
from tests.support.compose import compose_spec_problems
from tests.support.docker_cli import docker_reads

PASSWORD = "registry-password-0123456789abcd"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4, prefix=b"2b")).decode()
LINODE = rc.S3Storage(
    bucket="airline-data", endpoint="https://eu-central-1.linodeobjects.com", region="eu-central-1"
)
FILES = {
    rc.CONFIG_SECRET: rc.registry_config(http_secret="http-secret-0123", s3=LINODE),
    rc.HTPASSWD_SECRET: rc.htpasswd_line(rc.USERNAME, HASH),
    rc.BUCKET_CREDENTIALS_SECRET: rc.bucket_credentials_file("AKIA0123", "s3cr3t/key+0"),
}
KEY = PASSWORD  # the registry's password keys the digests of its secrets' names
LONGEST_APP = "a" * 30  # settings allow 3-30 characters


def config(**kwargs: Any) -> dict[str, Any]:
    text = rc.registry_config(http_secret="http-secret-0123", **{"s3": LINODE, **kwargs})
    loaded: dict[str, Any] = json.loads(text)
    assert yaml.safe_load(text) == loaded  # JSON is YAML: the registry reads it as config.yml
    return loaded


def plan(stack: str = "airline-registry", files: dict[str, str] = FILES, key: str = KEY) -> rc.RegistryPlan:
    return rc.plan_registry_stack(stack=stack, image="registry:2", values=files, key_material=key)


def document(p: rc.RegistryPlan) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(p.stack_file)
    return loaded


# -- config.yml ----------------------------------------------------------------------------------------------


def test_config_stores_in_the_bucket_without_keys() -> None:
    rendered = config()
    assert rendered["storage"]["s3"] == {
        "bucket": "airline-data",
        "region": "eu-central-1",
        "regionendpoint": "https://eu-central-1.linodeobjects.com",
        "secure": True,
        "v4auth": True,
        "rootdirectory": "/registry",  # backups live under backups/: the two never mix
    }
    text = json.dumps(rendered).lower()
    assert "accesskey" not in text and "secretkey" not in text and "akia0123" not in text
    assert rendered["version"] == "0.1"  # a string: the registry refuses a number here
    assert rendered["storage"]["delete"] == {"enabled": True}
    assert rendered["auth"]["htpasswd"]["path"] == "/run/secrets/registry_htpasswd"


def test_config_speaks_plain_http_only_to_an_http_endpoint() -> None:
    s3 = config(s3=rc.S3Storage(bucket="b", endpoint="http://127.0.0.1:9000"))["storage"]["s3"]
    assert s3["regionendpoint"] == "http://127.0.0.1:9000" and s3["secure"] is False
    assert s3["region"] == "us-east-1"  # some region, which the S3 driver needs with an endpoint


def test_config_listens_on_every_address_with_its_health_listener_on_loopback() -> None:
    http = config(port=5050)["http"]
    assert http["addr"] == ":5050"
    assert http["debug"]["addr"] == f"127.0.0.1:{rc.DEBUG_PORT}"
    assert http["secret"] == "http-secret-0123"
    assert (
        "host" not in http
    )  # upload URLs follow each request: 127.0.0.1:5000 on a node and through a forward
    assert config()["health"]["storagedriver"]["enabled"] is True


def test_every_value_is_quoted_so_none_changes_type_or_structure() -> None:
    hostile = 'yes"\n  delete: {enabled: false}\n# '
    rendered = rc.registry_config(
        http_secret=hostile, s3=rc.S3Storage(bucket="b", endpoint="https://s3.example")
    )
    loaded = yaml.safe_load(rendered)
    assert loaded["http"]["secret"] == hostile
    assert loaded["storage"]["delete"] == {"enabled": True}


# -- htpasswd and the bucket's credentials -------------------------------------------------------------------


def test_htpasswd_line_takes_bcrypt_only() -> None:
    line = rc.htpasswd_line("flightdeck", HASH)
    user, _, stored = line.rstrip("\n").partition(":")
    assert user == "flightdeck" and bcrypt.checkpw(PASSWORD.encode(), stored.encode())
    assert line.endswith("\n") and line.count("\n") == 1
    for prefix in (b"2a", b"2b"):
        rc.htpasswd_line("flightdeck", bcrypt.hashpw(b"x", bcrypt.gensalt(rounds=4, prefix=prefix)).decode())
    others = (
        "$apr1$abcdefgh$0123456789abcdefghijkl",  # Apache MD5
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "$6$salt$" + "a" * 86,  # SHA-512 crypt
        "plain-password",
        HASH + "\nintruder:" + HASH,  # a second entry smuggled in
        HASH[:-1],
    )
    for other in others:
        with pytest.raises(ValueError, match="bcrypt"):
            rc.htpasswd_line("flightdeck", other)
    for name in ("flight:deck", "", "a b", "x" * 65, "user\n"):
        with pytest.raises(ValueError, match="user name"):
            rc.htpasswd_line(name, HASH)


def test_bucket_credentials_file_is_read_as_aws_credentials() -> None:
    parser = configparser.RawConfigParser()
    parser.read_string(rc.bucket_credentials_file("AKIA123", "abc/def+ghi=%x"))
    assert parser.sections() == ["default"]
    assert dict(parser["default"]) == {
        "aws_access_key_id": "AKIA123",
        "aws_secret_access_key": "abc/def+ghi=%x",
    }


@pytest.mark.parametrize(
    ("access", "secret"),
    [("AKIA123", "abc\n[evil]"), ("AKIA\n123", "x"), ("AKIA123", "abc\r\nx = y"), ("", "x"), ("x", ""),
     ("AKIA 123", "x"), ("AKIA123", "ab\tc")],
)  # fmt: skip
def test_bucket_credentials_refuse_newlines_and_blanks(access: str, secret: str) -> None:
    with pytest.raises(ValueError, match="single-line"):
        rc.bucket_credentials_file(access, secret)


# -- the registry's stack ------------------------------------------------------------------------------------


def test_the_stack_file_is_valid_against_the_compose_spec(tmp_path: Path) -> None:
    assert compose_spec_problems(plan().stack_file, tmp_path) == ""


def test_one_registry_per_node_on_its_host_port_reading_the_bucket(tmp_path: Path) -> None:
    doc = document(plan())
    [name] = doc["services"]
    service = doc["services"][name]
    assert name == rc.SERVICE == "registry"
    assert service["image"] == "registry:2"
    assert service["command"] == ["serve", "/run/secrets/registry_config"]
    assert service["deploy"]["mode"] == "global" and "replicas" not in service["deploy"]
    assert service["deploy"]["update_config"]["order"] == "stop-first"  # one task per host port
    assert service["ports"] == [{"target": 5000, "published": 5000, "protocol": "tcp", "mode": "host"}]
    assert service["environment"] == {"AWS_SHARED_CREDENTIALS_FILE": "/run/secrets/bucket_credentials"}
    assert "volumes" not in service and "volumes" not in doc  # everything is in the bucket
    assert service["networks"] == [rc.NETWORK] and doc["networks"] == {rc.NETWORK: {"driver": "overlay"}}
    assert str(rc.DEBUG_PORT) in " ".join(service["healthcheck"]["test"])
    # The docker CLI reads the same service.
    read = docker_reads(plan().stack_file, tmp_path)["services"]["registry"]
    assert read["ports"][0]["mode"] == "host" and read["deploy"]["mode"] == "global"


def test_the_registry_reads_its_three_files_as_private_docker_secrets() -> None:
    service = document(plan())["services"]["registry"]
    keys = (rc.CONFIG_SECRET, rc.HTPASSWD_SECRET, rc.BUCKET_CREDENTIALS_SECRET)
    assert service["secrets"] == [{"source": key, "target": key, "mode": 0o400} for key in keys]


def test_secrets_are_external_and_named_by_a_keyed_digest_of_their_content() -> None:
    p = plan()
    names = {o.key: o.name for o in p.objects}
    assert [o.kind for o in p.objects] == ["secret"] * 3
    assert document(p)["secrets"] == {key: {"external": True, "name": names[key]} for key in FILES}
    assert names[rc.CONFIG_SECRET].startswith("airline-registry_config_")
    assert names[rc.HTPASSWD_SECRET].startswith("airline-registry_htpasswd_")
    assert names[rc.BUCKET_CREDENTIALS_SECRET].startswith("airline-registry_bucket_")
    for content in ("http-secret-0123", HASH, "s3cr3t/key+0", "AKIA0123"):
        assert content not in p.stack_file
    # A new value is a new secret; the others keep their names.
    changed = {o.key: o.name for o in plan(files={**FILES, rc.HTPASSWD_SECRET: "flightdeck:other\n"}).objects}
    assert changed[rc.HTPASSWD_SECRET] != names[rc.HTPASSWD_SECRET]
    assert {k: v for k, v in changed.items() if k != rc.HTPASSWD_SECRET} == {
        k: v for k, v in names.items() if k != rc.HTPASSWD_SECRET
    }
    # Keyed: the same content under another key gives other names.
    assert {o.name for o in plan(key="another-key").objects}.isdisjoint(names.values())


def test_short_secret_names_fit_swarm_for_the_longest_app_name() -> None:
    p = plan(stack=stack_name(LONGEST_APP))
    assert max(len(o.name) for o in p.objects) <= MAX_OBJECT_NAME


def test_every_registry_secret_is_required() -> None:
    partial = {rc.CONFIG_SECRET: "x", rc.HTPASSWD_SECRET: "y"}
    with pytest.raises(ValueError, match="bucket_credentials"):
        plan(files=partial)
    with pytest.raises(ValueError, match="the registry needs"):
        plan(files={**FILES, "extra": "z"})
