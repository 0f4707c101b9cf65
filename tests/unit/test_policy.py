"""The policy pack's rules, called offline with the argument objects pulumi-policy builds for them, and the
whole pack over the resources HerokuApp declares for dev and prod (Pulumi mocks)."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
)

from components.heroku import HerokuApp, HerokuAppArgs
from components.settings import parse
from policy.rules import (
    ADDON,
    APP,
    CONFIG_ASSOCIATION,
    POLICIES,
    RELEASE,
    entropy,
    images_pinned,
    no_plain_secrets,
    prod_postgres,
    release_by_digest,
    secret_reason,
    stack_of,
)
from tests.support.pulumi_mocks import use_mocks
from tests.support.secrets import reveal
from tests.support.stacks import stack_config

DIGEST = "sha256:" + "ab" * 32


def args(
    resource_type: str, props: dict[str, Any], *, stack: str = "prod", protect: bool = False
) -> ResourceValidationArgs:
    name = "prod-postgres"
    urn = f"urn:pulumi:{stack}::flightdeck::flightdeck:heroku:HerokuApp${resource_type}::{name}"
    opts = PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
    )
    return ResourceValidationArgs(resource_type, props, urn, name, opts, None)


def violations(rule: Any, validation_args: ResourceValidationArgs) -> list[str]:
    found: list[str] = []
    rule(validation_args, lambda message, urn=None: found.append(message))
    return found


def test_stack_is_read_from_the_urn() -> None:
    assert stack_of("urn:pulumi:prod-eu::flightdeck::heroku:addon/addon:Addon::db") == "prod-eu"


def test_protected_standard_postgres_in_prod_passes() -> None:
    assert (
        violations(prod_postgres, args(ADDON, {"plan": "heroku-postgresql:standard-0"}, protect=True)) == []
    )


def test_unprotected_essential_postgres_in_prod_is_two_violations() -> None:
    found = violations(prod_postgres, args(ADDON, {"plan": "heroku-postgresql:essential-0"}))
    assert len(found) == 2
    assert "must be protected" in found[0] and "flightdeck:protectDatabase" in found[0]
    assert "essential-0 has no rollback" in found[1]


def test_dev_postgres_and_other_addons_are_out_of_scope() -> None:
    assert (
        violations(prod_postgres, args(ADDON, {"plan": "heroku-postgresql:essential-0"}, stack="dev")) == []
    )
    assert violations(prod_postgres, args(ADDON, {"plan": "heroku-redis:mini"})) == []


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
    service = "command:local:Command"
    assert violations(images_pinned, args(service, {"image": "postgres:16"})) == [
        "prod-postgres: image 'postgres:16' is a mutable tag; pin it as <image>@sha256:<digest>"
    ]
    assert violations(images_pinned, args(service, {"image": f"postgres@{DIGEST}"})) == []


def test_the_pack_enforces_the_three_rules_and_advises_the_fourth() -> None:
    levels = {policy.name: policy.enforcement_level for policy in POLICIES}
    assert levels == {
        "prod-postgres-protected": EnforcementLevel.MANDATORY,
        "no-secrets-in-plain-config-vars": EnforcementLevel.MANDATORY,
        "release-image-by-digest": EnforcementLevel.MANDATORY,
        "images-pinned-by-digest": EnforcementLevel.ADVISORY,
    }


# -- the pack over what HerokuApp really declares (Pulumi mocks) ------------------------------------------


def pack_violations(stack: str, **overrides: Any) -> list[str]:
    """Declare HerokuApp for the stack under mocks; run every policy of the pack on each resource."""
    mocks = use_mocks(stack)
    settings = parse(*stack_config(stack, **overrides))
    assert settings.heroku is not None
    heroku_settings = settings.heroku
    protected: dict[str, bool] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        protected[args.name] = bool(args.opts.protect)

    @pulumi.runtime.test
    def program() -> None:
        HerokuApp(
            stack,
            HerokuAppArgs(settings.app, heroku_settings, lambda repo, _: f"{repo}@{DIGEST}"),
            opts=pulumi.ResourceOptions(transformations=[record]),
        )

    program()
    found: list[str] = []
    for resource in mocks.resources:
        validation = args(
            resource.type, reveal(resource.inputs), stack=stack, protect=protected[resource.name]
        )
        validation.name = resource.name
        for policy in POLICIES:
            found.extend(f"{policy.name}: {v}" for v in violations(policy.validate, validation))
    return found


def test_the_prod_and_dev_stacks_pass_the_pack() -> None:
    assert pack_violations("prod") == []
    assert pack_violations("dev") == []


def test_prod_on_an_essential_unprotected_database_fails_the_pack() -> None:
    found = pack_violations("prod", herokuPostgresPlan="essential-1", protectDatabase=False)
    assert [v.split(":")[0] for v in found] == ["prod-postgres-protected", "prod-postgres-protected"]
