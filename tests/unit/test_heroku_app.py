"""HerokuApp under Pulumi mocks, for the dev and prod stack files: real SDK resources, recorded inputs and the
resource options the component chose (seen through a transformation inherited by its children)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest

from components.heroku_app import (
    HerokuApp,
    HerokuAppArgs,
    formation_size,
    host_config_vars,
    plain_config_vars,
    registry_repository,
)
from components.image import AppImage, AppImageArgs
from settings import HerokuSettings, parse
from tests.support.pulumi_mocks import COMPUTED, MOCK_SECRET, RecordingMocks, use_mocks
from tests.support.secrets import is_secret, unwrap
from tests.support.stacks import TEST_SECRETS, stack_config

RELEASE = "pulumi-python:dynamic/heroku:ContainerRelease"
DIGEST = "sha256:" + "12" * 32


@dataclass
class Deployed:
    mocks: RecordingMocks
    component: HerokuApp
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    def inputs(self, name: str) -> dict[str, Any]:
        return self.mocks.named(name).inputs


def deploy(stack: str, *, with_image: bool = False, **overrides: Any) -> Deployed:
    """Run a program of one HerokuApp (and optionally the AppImage feeding it) for the stack."""
    mocks = use_mocks(stack)
    settings = parse(*stack_config(stack, **overrides))
    assert isinstance(settings, HerokuSettings)
    options: dict[str, pulumi.ResourceOptions] = {}
    result: dict[str, Deployed] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[args.name] = args.opts

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        def image(repository: str, opts: pulumi.ResourceOptions) -> pulumi.Input[str]:
            if not with_image:
                return f"{repository}@{DIGEST}"
            options[f"{stack}-image"] = opts
            built = AppImage(
                f"{stack}-image", AppImageArgs(repository=repository, git_sha="f" * 40), opts=opts
            )
            return built.ref

        component = HerokuApp(
            stack,
            HerokuAppArgs(
                app=settings.app, heroku=settings.heroku, image=image, protect_data=settings.protect_data
            ),
            opts=pulumi.ResourceOptions(transformations=[record]),
        )
        deployed = result["d"] = Deployed(mocks, component, options)
        names = ["url", "app_name", "app_id", "database_plan", "release_id", "release_version", "image_id"]
        return pulumi.Output.all(*(getattr(component, n) for n in names)).apply(
            lambda values: deployed.outputs.update(zip(names, values, strict=True))
        )

    program()
    return result["d"]


def plain(value: Any) -> Any:
    return unwrap(value)[0]


def walk_plain(value: Any) -> list[str]:
    """Every string in a recorded input that is not under a secret."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in walk_plain(v)]
    if isinstance(value, list):
        return [s for v in value for s in walk_plain(v)]
    return [value] if isinstance(value, str) else []


def test_dev_declares_a_container_app_with_postgres_release_and_formation() -> None:
    d = deploy("dev")

    app = d.inputs("dev-app")
    assert app["name"] == "flightdeck-dev"
    assert app["stack"] == "container"
    assert app["region"] == "us"
    assert "organization" not in app
    assert app["acm"] is False
    assert d.inputs("dev-postgres")["plan"] == "heroku-postgresql:essential-0"
    assert d.inputs("dev-postgres")["appId"] == "dev-app-id"
    assert d.mocks.of_type("heroku:domain/domain:Domain") == []
    assert [r.name for r in d.mocks.of_type("heroku:addon/addon:Addon")] == ["dev-postgres"]
    web = d.inputs("dev-web")
    assert (web["type"], web["quantity"], web["size"]) == ("web", 1, "basic")
    # One formation per Procfile type but the release phase, each its own count.
    formations = {
        r.inputs["type"]: r.inputs["quantity"]
        for r in d.mocks.of_type("heroku:formation/formation:Formation")
    }
    assert formations == {"web": 1, "worker": 1, "scheduler": 1}
    assert d.outputs["url"] == COMPUTED["heroku:app/app:App"]["webUrl"]
    assert d.outputs["database_plan"] == "heroku-postgresql:essential-0"
    assert d.outputs["release_id"] == "mock-release-id"
    assert d.outputs["image_id"] == "sha256:" + "cd" * 32


def test_prod_adds_redis_domain_acm_and_scales_standard_dynos() -> None:
    d = deploy("prod")

    assert d.inputs("prod-redis")["plan"] == "heroku-redis:premium-0"
    assert d.inputs("prod-postgres")["plan"] == "heroku-postgresql:standard-0"
    assert d.inputs("prod-domain")["hostname"] == "flights.example.com"
    assert d.inputs("prod-app")["acm"] is True
    web = d.inputs("prod-web")
    assert (web["quantity"], web["size"]) == (2, "standard-2X")
    assert d.component.domain_target is not None


def test_prod_database_is_protected_and_retained_dev_database_is_not() -> None:
    prod = deploy("prod").options["prod-postgres"]
    assert (prod.protect, prod.retain_on_delete) == (True, True)
    dev = deploy("dev").options["dev-postgres"]
    assert not dev.protect and not dev.retain_on_delete


def test_plain_config_vars_are_production_settings_and_hold_no_secret() -> None:
    d = deploy("prod")

    app = d.inputs("prod-app")
    assert not is_secret(app["configVars"])
    assert app["configVars"] == {
        "LOG_LEVEL": "INFO",
        "DEBUG": "false",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECURE_SSL_REDIRECT": "true",
    }


def test_secret_key_and_secret_config_vars_are_secrets() -> None:
    mocks = use_mocks("prod")
    raw, keys = stack_config("prod", secretConfigVars={"SENTRY_DSN": "https://key@sentry.example/1"})
    settings = parse(raw, keys | {"flightdeck:secretConfigVars"})
    assert isinstance(settings, HerokuSettings)
    heroku_settings = settings.heroku

    @pulumi.runtime.test
    def program() -> None:
        HerokuApp("prod", HerokuAppArgs(settings.app, heroku_settings, lambda repo, _: f"{repo}@{DIGEST}"))

    program()
    sensitive = mocks.named("prod-app").inputs["sensitiveConfigVars"]
    assert is_secret(sensitive)
    assert plain(sensitive) == {"SECRET_KEY": MOCK_SECRET, "SENTRY_DSN": "https://key@sentry.example/1"}
    key = mocks.named("prod-secret-key")
    assert key.type == "pulumi-python:dynamic/flightdeck:GeneratedSecret"
    assert (key.inputs["length"], key.inputs["alphabet"]) == (64, "urlsafe")
    release = mocks.named("prod-release").inputs
    assert is_secret(release["api_key"])
    assert plain(release["api_key"]) == TEST_SECRETS["heroku"]["heroku:apiKey"]
    everything_plain = [s for r in mocks.resources for s in walk_plain(r.inputs)]
    for secret in ("https://key@sentry.example/1", TEST_SECRETS["heroku"]["heroku:apiKey"], MOCK_SECRET):
        assert not [s for s in everything_plain if secret in s]


def test_allowed_hosts_come_from_the_apps_heroku_hostname_and_domain() -> None:
    d = deploy("prod")
    hosts = d.inputs("prod-hosts")
    assert hosts["appId"] == "prod-app-id"
    assert hosts["vars"] == {
        "ALLOWED_HOSTS": "flightdeck-mock-0a1b2c3d4e5f.herokuapp.com,flights.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://flightdeck-mock-0a1b2c3d4e5f.herokuapp.com,https://flights.example.com",
    }


def test_release_takes_the_image_digest_and_comes_before_the_formation() -> None:
    d = deploy("dev", with_image=True)

    release = d.inputs("dev-release")
    assert (
        release["image_ref"]
        == "registry.heroku.com/flightdeck-dev/web@" + COMPUTED["docker-build:index:Image"]["digest"]
    )
    assert release["app"] == "flightdeck-dev"
    assert release["release_timeout"] == 3900
    # Every process type in one release: none ever runs another image than the others.
    assert release["process_types"] == ["web", "scheduler", "worker", "release"]
    # Migrations need the database (and the hosts) before the release; dynos need a release to scale.
    assert {r._name for r in d.options["dev-release"].depends_on} == {"dev-postgres", "dev-hosts"}  # type: ignore[union-attr]
    for kind in ("web", "worker", "scheduler"):
        assert d.options[f"dev-{kind}"].depends_on == [d.component.release]


def test_the_image_is_pushed_only_once_the_app_has_its_registry_repository() -> None:
    d = deploy("dev", with_image=True)
    assert d.options["dev-image"].depends_on == [d.component.app]
    assert d.inputs("dev-image-build")["tags"][1] == "registry.heroku.com/flightdeck-dev/web:latest"


def test_prod_release_also_waits_for_redis() -> None:
    d = deploy("prod")
    assert {r._name for r in d.options["prod-release"].depends_on} == {
        "prod-postgres",
        "prod-redis",
        "prod-hosts",
    }  # type: ignore[union-attr]


def test_organization_is_passed_when_set() -> None:
    d = deploy("dev", herokuOrganization="airline-team")
    assert d.inputs("dev-app")["organization"] == {"name": "airline-team"}


def test_every_child_is_parented_to_the_component() -> None:
    d = deploy("prod")
    children = {name: opts for name, opts in d.options.items() if name != "prod"}
    parts = {
        "secret-key",
        "app",
        "hosts",
        "postgres",
        "redis",
        "release",
        "web",
        "worker",
        "scheduler",
        "domain",
    }
    assert set(children) == {f"prod-{part}" for part in parts}
    assert all(opts.parent is d.component for opts in children.values())


@pytest.mark.parametrize(
    ("size", "api"),
    [("eco", "eco"), ("basic", "basic"), ("standard-1x", "standard-1X"), ("performance-l", "performance-L")],
)
def test_formation_size_uses_the_platform_api_spelling(size: str, api: str) -> None:
    assert formation_size(size) == api


def test_a_process_type_may_have_its_own_dyno_size() -> None:
    d = deploy(
        "prod",
        processes={"worker": {"instances": 3, "herokuSize": "performance-m"}, "scheduler": {"instances": 0}},
    )
    assert (d.inputs("prod-worker")["quantity"], d.inputs("prod-worker")["size"]) == (3, "performance-M")
    assert (d.inputs("prod-scheduler")["quantity"], d.inputs("prod-scheduler")["size"]) == (0, "standard-2X")


def test_pure_config_helpers() -> None:
    settings = parse(*stack_config("dev"))
    assert plain_config_vars(settings.app)["LOG_LEVEL"] == "DEBUG"
    assert registry_repository("flightdeck-dev") == "registry.heroku.com/flightdeck-dev/web"
    assert host_config_vars("a-1.herokuapp.com", None) == {
        "ALLOWED_HOSTS": "a-1.herokuapp.com",
        "CSRF_TRUSTED_ORIGINS": "https://a-1.herokuapp.com",
    }


@pytest.mark.parametrize(("stack", "kept"), [("prod", True), ("dev", False)])
def test_the_target_protects_the_database_as_protectData_says(stack: str, kept: bool) -> None:
    from targets.heroku import HerokuTarget

    use_mocks(stack)
    settings = parse(*stack_config(stack))
    options: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[args.name] = args.opts

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> None:
        HerokuTarget("heroku", settings, opts=pulumi.ResourceOptions(transformations=[record]))

    program()
    database = options["heroku-app-postgres"]
    assert (bool(database.protect), bool(database.retain_on_delete)) == (kept, kept)
    assert not options["heroku-app-app"].protect  # the app itself can go; its data stays
