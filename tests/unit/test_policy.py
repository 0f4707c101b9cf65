"""The policy pack's rules, called offline with the argument objects pulumi-policy builds for them, and the
whole pack over what HerokuApp and the Linode components really declare (Pulumi mocks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
)
from pydantic import SecretStr

from components.heroku_app import HerokuApp, HerokuAppArgs
from components.linode_object_storage import LinodeObjectStorage, LinodeObjectStorageArgs
from components.linode_postgres import LinodePostgres, LinodePostgresArgs
from components.linode_vms import LinodeVms, LinodeVmsArgs
from contract import SECRET_NAME
from policy.rules import (
    ADDON,
    APP,
    BUCKET,
    CONFIG_ASSOCIATION,
    DATABASE,
    FIREWALL,
    INSTANCE,
    POLICIES,
    RELEASE,
    bucket_versioned,
    covers_port,
    entropy,
    firewall_locked_down,
    images_pinned,
    no_plain_secrets,
    prod_data_protected,
    prod_postgres_plan,
    release_by_digest,
    secret_reason,
    stack_of,
    world_open,
)
from settings import AppSettings, HerokuOptions, HerokuPostgresPlan
from tests.support.linode_mocks import linode_options, run
from tests.support.secrets import reveal

DIGEST = "sha256:" + "ab" * 32
WEB = {"label": "allow-https", "action": "ACCEPT", "protocol": "TCP", "ports": "443", "ipv4s": ["0.0.0.0/0"]}


def args(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    stack: str = "prod",
    protect: bool = False,
    config: Mapping[str, Any] | None = None,
    name: str = "prod-postgres",
) -> ResourceValidationArgs:
    urn = f"urn:pulumi:{stack}::flightdeck::flightdeck:heroku:HerokuApp${resource_type}::{name}"
    opts = PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    return ResourceValidationArgs(resource_type, props, urn, name, opts, None, config)


def violations(rule: Any, validation_args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    rule(validation_args, lambda message, urn=None: found.append(message))
    return found


def test_the_pack_names_secrets_as_the_settings_do() -> None:
    from policy import rules

    assert rules.SECRET_NAME.pattern == SECRET_NAME.pattern
    assert rules.secret_reason("PULUMI_CONFIG_PASSPHRASE", "x") == "its name says it is a secret"
    assert rules.secret_reason("KEYBOARD_LAYOUT", "us") is None


def test_stack_is_read_from_the_urn() -> None:
    assert stack_of("urn:pulumi:prod-eu::flightdeck::heroku:addon/addon:Addon::db") == "prod-eu"


# -- production data ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [(ADDON, {"plan": "heroku-postgresql:standard-0"}), (BUCKET, {"versioning": True}), (DATABASE, {})],
)
def test_production_data_must_be_protected(resource_type: str, props: dict[str, Any]) -> None:
    assert violations(prod_data_protected, args(resource_type, props, protect=True)) == []
    (found,) = violations(prod_data_protected, args(resource_type, props, stack="prod-eu"))
    assert "must be protected" in found and "flightdeck:protectData true" in found
    assert violations(prod_data_protected, args(resource_type, props, stack="dev")) == []
    assert violations(prod_data_protected, args(resource_type, props, stack="iaas")) == []


def test_other_addons_are_not_data() -> None:
    assert violations(prod_data_protected, args(ADDON, {"plan": "heroku-redis:premium-0"})) == []


def test_essential_postgres_in_prod_has_no_rollback() -> None:
    (found,) = violations(prod_postgres_plan, args(ADDON, {"plan": "heroku-postgresql:essential-0"}))
    assert "essential-0 has no rollback" in found and "flightdeck:herokuPostgresPlan" in found
    assert violations(prod_postgres_plan, args(ADDON, {"plan": "heroku-postgresql:standard-0"})) == []
    assert (
        violations(prod_postgres_plan, args(ADDON, {"plan": "heroku-postgresql:essential-0"}, stack="dev"))
        == []
    )


# -- the Linode firewall and bucket ----------------------------------------------------------------------


def firewall(*rules: dict[str, Any], inbound_policy: str = "DROP") -> dict[str, Any]:
    return {"inboundPolicy": inbound_policy, "outboundPolicy": "ACCEPT", "inbounds": [WEB, *rules]}


def ssh(ports: str | None = "22", protocol: str = "TCP", **networks: list[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"label": "allow-ssh", "action": "ACCEPT", "protocol": protocol, **networks}
    if ports is not None:
        rule["ports"] = ports
    return rule


def test_a_firewall_that_accepts_inbound_by_default_is_refused() -> None:
    assert violations(firewall_locked_down, args(FIREWALL, firewall())) == []
    (found,) = violations(firewall_locked_down, args(FIREWALL, firewall(inbound_policy="ACCEPT")))
    assert "inboundPolicy must be DROP" in found


@pytest.mark.parametrize(
    "rule",
    [
        ssh(ipv4s=["0.0.0.0/0"]),
        ssh(ipv6s=["::/0"]),
        ssh(ports="20-30", ipv4s=["198.51.100.7/32", "0.0.0.0/0"]),
        ssh(ports="80,22", ipv4s=["10.0.0.0/7"]),  # more than a /8
        ssh(ports=None, protocol="ALL", ipv6s=["2000::/3"]),  # every port
        ssh(ipv4s=["0.0.0.0/1", "128.0.0.0/1"]),  # the world, in halves
    ],
)
def test_ssh_open_to_the_world_is_refused(rule: dict[str, Any]) -> None:
    (found,) = violations(firewall_locked_down, args(FIREWALL, firewall(rule)))
    assert "opens SSH (port 22) to the world" in found
    assert "flightdeck:sshAllowList" in found and "allowSshFromAnywhere" in found


def test_the_policy_config_accepts_world_open_ssh_on_purpose() -> None:
    opened = firewall(ssh(ipv4s=["0.0.0.0/0"]))
    assert (
        violations(firewall_locked_down, args(FIREWALL, opened, config={"allowSshFromAnywhere": True})) == []
    )
    assert (
        len(violations(firewall_locked_down, args(FIREWALL, opened, config={"allowSshFromAnywhere": False})))
        == 1
    )
    # The opt-in is for SSH only: a default of ACCEPT is refused still.
    accepting = firewall(inbound_policy="ACCEPT")
    assert violations(firewall_locked_down, args(FIREWALL, accepting, config={"allowSshFromAnywhere": True}))


@pytest.mark.parametrize(
    "rule",
    [
        ssh(ipv4s=["203.0.113.0/24"], ipv6s=["2001:db8::/48"]),
        ssh(ipv4s=["10.0.0.0/8"]),  # a /8 is the limit, as in settings
        ssh(ports="80", ipv4s=["0.0.0.0/0"]),
        ssh(ports="2000-3000", ipv4s=["0.0.0.0/0"]),
        ssh(protocol="UDP", ipv4s=["0.0.0.0/0"]),
        {**ssh(ipv4s=["0.0.0.0/0"]), "action": "DROP"},
    ],
)
def test_ssh_from_a_few_networks_or_other_ports_pass(rule: dict[str, Any]) -> None:
    assert violations(firewall_locked_down, args(FIREWALL, firewall(rule))) == []


def test_port_ranges_and_world_sizes() -> None:
    assert covers_port("22", 22) and covers_port("1-65535", 22) and covers_port("80, 22", 22)
    assert covers_port(None, 22) and covers_port("", 22)
    assert not covers_port("2222", 22) and not covers_port("23-80", 22)
    assert world_open(["0.0.0.0/0"]) and world_open(["::/0"])
    assert not world_open(["10.0.0.0/8", "10.0.0.0/8"])  # overlaps are counted once


def test_the_bucket_must_be_versioned() -> None:
    assert violations(bucket_versioned, args(BUCKET, {"versioning": True})) == []
    for props in ({"versioning": False}, {}):
        (found,) = violations(bucket_versioned, args(BUCKET, props))
        assert "versioning must be on" in found


# -- config vars and images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STRIPE_API_KEY", "x"),
        ("DJANGO_SECRET", "x"),
        ("SENTRY_DSN", "https://abc@o1.ingest.sentry.io/1"),
        ("UPSTREAM", "sk_live_51HxYzAbCdEf"),
        ("BOT", "xoxb-1234-5678-abcdef"),
        ("HEROKU", "HRKU-0123abcd-4567-89ef"),
        ("BROKER_URL", "amqp://user:hunter2@broker.example:5672/vhost"),
        ("WEBHOOK", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpL"),
    ],
)
def test_secret_looking_plain_config_vars_are_violations(name: str, value: str) -> None:
    found = violations(no_plain_secrets, args(APP, {"configVars": {"LOG_LEVEL": "INFO", name: value}}))
    assert len(found) == 1
    assert f"plain config var {name} looks like a secret" in found[0]
    assert f"secretConfigVars.{name}" in found[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LOG_LEVEL", "DEBUG"),
        ("DEBUG", "false"),
        ("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO,https"),
        ("ALLOWED_HOSTS", "flightdeck-prod-0a1b2c3d4e5f.herokuapp.com,flights.example.com"),
        ("CSRF_TRUSTED_ORIGINS", "https://flights.example.com"),
        ("GIT_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("CACHE_URL", "redis://cache.internal:6379/0"),
    ],
)
def test_ordinary_config_vars_pass(name: str, value: str) -> None:
    assert secret_reason(name, value) is None


def test_config_association_vars_are_checked_too() -> None:
    found = violations(no_plain_secrets, args(CONFIG_ASSOCIATION, {"vars": {"AUTH_TOKEN": "t"}}))
    assert len(found) == 1


def test_sensitive_config_vars_are_not_plain() -> None:
    props = {"configVars": {"LOG_LEVEL": "INFO"}, "sensitiveConfigVars": {"SECRET_KEY": "s3cr3t"}}
    assert violations(no_plain_secrets, args(APP, props)) == []


def test_random_keys_have_high_entropy_and_words_do_not() -> None:
    assert entropy("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpL") > 4.2
    assert entropy("performance-standard-configuration") < 4.2


def test_release_must_name_its_image_by_digest() -> None:
    ok = args(RELEASE, {"image_ref": f"registry.heroku.com/flightdeck-prod/web@{DIGEST}"})
    tagged = args(RELEASE, {"image_ref": "registry.heroku.com/flightdeck-prod/web:latest"})
    assert violations(release_by_digest, ok) == []
    assert "not pinned by digest" in violations(release_by_digest, tagged)[0]


def test_other_image_references_are_pinned_advisory() -> None:
    service = "pulumi-python:dynamic/flightdeck:RegistryContainer"
    assert violations(images_pinned, args(service, {"image": "postgres:16"})) == [
        "prod-postgres: image 'postgres:16' is a mutable tag; pin it as <image>@sha256:<digest>"
    ]
    assert violations(images_pinned, args(service, {"image": f"postgres@{DIGEST}"})) == []
    assert violations(images_pinned, args(INSTANCE, {"image": "linode/debian12"})) == []  # an OS image


def test_the_pack_enforces_all_but_the_image_pins() -> None:
    levels = {policy.name: policy.enforcement_level for policy in POLICIES}
    assert levels == {
        "prod-data-protected": EnforcementLevel.MANDATORY,
        "prod-postgres-plan": EnforcementLevel.MANDATORY,
        "linode-firewall-locked-down": EnforcementLevel.MANDATORY,
        "linode-bucket-versioned": EnforcementLevel.MANDATORY,
        "no-secrets-in-plain-config-vars": EnforcementLevel.MANDATORY,
        "release-image-by-digest": EnforcementLevel.MANDATORY,
        "images-pinned-by-digest": EnforcementLevel.ADVISORY,
    }


# -- the pack over what the components really declare (Pulumi mocks) ---------------------------------------


def pack_violations(stack: str, build: Callable[[pulumi.ResourceOptions], object]) -> list[str]:
    """Declare build's resources for the stack under mocks; run every policy of the pack on each (advisory
    ones left out: they do not block)."""
    deployed = run(build, stack=stack)
    found: list[str] = []
    for resource in deployed.resources:
        protect = bool(deployed.options[resource.name].protect)
        validation = args(
            resource.type, reveal(resource.inputs), stack=stack, protect=protect, name=resource.name
        )
        for policy in POLICIES:
            if policy.enforcement_level is EnforcementLevel.MANDATORY:
                found.extend(f"{policy.name}: {v}" for v in violations(policy.validate, validation))
    return found


def heroku(
    name: str, plan: HerokuPostgresPlan, *, protect_data: bool
) -> Callable[[pulumi.ResourceOptions], object]:
    app = AppSettings(name=name, config_vars={"LOG_LEVEL": "INFO"})
    options = HerokuOptions(postgres_plan=plan, api_key=SecretStr("test-heroku-api-key-0000"))
    image = HerokuAppArgs(app, options, lambda repo, _: f"{repo}@{DIGEST}", protect_data=protect_data)
    return lambda opts: HerokuApp(name, image, opts=opts)


def linode(
    *, protect_data: bool, managed_database: bool = True
) -> Callable[[pulumi.ResourceOptions], object]:
    app = "flightdeck-iaas"

    def build(opts: pulumi.ResourceOptions) -> object:
        vms = LinodeVms("vms", LinodeVmsArgs(app, linode_options()), opts=opts)
        storage = LinodeObjectStorage(
            "storage", LinodeObjectStorageArgs(app, "eu-central", 30, protect_data=protect_data), opts=opts
        )
        if managed_database:
            args = LinodePostgresArgs(
                app, "eu-central", "g6-nanode-1", 1, vms.public_ips, protect_data=protect_data
            )
            LinodePostgres("postgres", args, opts=opts)
        return storage

    return build


def test_prod_and_dev_on_heroku_pass_the_pack() -> None:
    assert pack_violations("prod", heroku("flightdeck-prod", "standard-0", protect_data=True)) == []
    assert pack_violations("dev", heroku("flightdeck-dev", "essential-0", protect_data=False)) == []


def test_prod_on_an_essential_unprotected_heroku_database_fails_the_pack() -> None:
    found = pack_violations("prod", heroku("flightdeck-prod", "essential-1", protect_data=False))
    assert sorted(v.split(":")[0] for v in found) == ["prod-data-protected", "prod-postgres-plan"]


def test_the_linode_resources_pass_the_pack() -> None:
    assert pack_violations("iaas", linode(protect_data=False)) == []
    assert pack_violations("prod-iaas", linode(protect_data=True)) == []


def test_unprotected_linode_data_fails_the_pack_on_a_prod_stack() -> None:
    found = pack_violations("prod-iaas", linode(protect_data=False))
    assert sorted(v.split(":")[0] for v in found) == ["prod-data-protected", "prod-data-protected"]
    assert any(v.startswith("prod-data-protected: storage-bucket:") for v in found)
    assert any(v.startswith("prod-data-protected: postgres-db:") for v in found)
