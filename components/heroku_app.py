"""The app on Heroku: a container-stack app, its config vars, Postgres (and Redis), the release, the dynos.

Order of a deployment: the app and its add-ons exist, then the image is released (its release phase
migrates the database the add-on provides), then the web formation is scaled: Heroku only has a formation
for a container app after its first release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumiverse_heroku as heroku

from providers.generated_secret import GeneratedSecret, GeneratedSecretArgs
from providers.heroku_release import (
    DEFAULT_RELEASE_TIMEOUT,
    HerokuContainerRelease,
    HerokuContainerReleaseArgs,
)
from settings import AppSettings, HerokuOptions

# The Platform API's spelling of the dyno sizes settings.py accepts in lower case.
FORMATION_SIZES = {
    "eco": "eco",
    "basic": "basic",
    "standard-1x": "standard-1X",
    "standard-2x": "standard-2X",
    "performance-m": "performance-M",
    "performance-l": "performance-L",
}


def formation_size(dyno_size: str) -> str:
    return FORMATION_SIZES[dyno_size]


def plain_config_vars(app: AppSettings) -> dict[str, str]:
    """The app's plain environment on Heroku: the stack's configVars plus production defaults, which win.
    Heroku's router ends TLS and says so in X-Forwarded-Proto."""
    return {
        **app.config_vars,
        "DEBUG": "false",
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECURE_SSL_REDIRECT": "true",
    }


def host_config_vars(heroku_hostname: str, domain: str | None) -> dict[str, str]:
    """ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS for the app's Heroku hostname (new apps get a random suffix,
    so it is read from the app, not derived from its name) and its custom domain."""
    hosts = [heroku_hostname, *([domain] if domain else [])]
    return {
        "ALLOWED_HOSTS": ",".join(hosts),
        "CSRF_TRUSTED_ORIGINS": ",".join(f"https://{host}" for host in hosts),
    }


REGISTRY = "registry.heroku.com"
ImageSource = Callable[[str, pulumi.ResourceOptions], pulumi.Input[str]]
"""Makes the image the app releases and returns its ref by digest. It is handed the app's repository on
Heroku's registry and options that order it after the app: the repository exists only once the app does."""


def registry_repository(app_name: str) -> str:
    return f"{REGISTRY}/{app_name}/web"


@dataclass(frozen=True)
class HerokuAppArgs:
    app: AppSettings
    heroku: HerokuOptions
    image: ImageSource
    protect_data: bool = False  # keep Postgres when the stack is destroyed, and refuse to delete it
    release_timeout: float = DEFAULT_RELEASE_TIMEOUT


class HerokuApp(pulumi.ComponentResource):
    """Outputs: url, app_name, app_id, database_plan, release_id, release_version, image_id, domain_target."""

    def __init__(self, name: str, args: HerokuAppArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:heroku:HerokuApp", name, None, opts)
        settings, plan = args.app, args.heroku
        child = pulumi.ResourceOptions(parent=self)

        self.secret_key = GeneratedSecret(
            f"{name}-secret-key", GeneratedSecretArgs(length=64, alphabet="urlsafe"), opts=child
        )
        sensitive: dict[str, pulumi.Input[str]] = {
            key: value.get_secret_value() for key, value in settings.secret_config_vars.items()
        }
        sensitive["SECRET_KEY"] = self.secret_key.value
        self.app = heroku.app.App(
            f"{name}-app",
            name=settings.name,
            region=plan.region,
            stack="container",
            organization=heroku.app.AppOrganizationArgs(name=plan.organization)
            if plan.organization
            else None,
            acm=bool(settings.domain),  # Automated Certificate Management for the custom domain
            config_vars=plain_config_vars(settings),
            sensitive_config_vars=pulumi.Output.secret(sensitive),
            opts=child,
        )
        self.hosts = heroku.app.ConfigAssociation(
            f"{name}-hosts",
            app_id=self.app.id,
            vars=self.app.heroku_hostname.apply(lambda hostname: host_config_vars(hostname, settings.domain)),
            opts=child,
        )

        # The data outlives a `pulumi destroy` of prod: protect refuses the delete, retain keeps the add-on
        # if protection is lifted on purpose.
        keep = args.protect_data
        self.database = heroku.addon.Addon(
            f"{name}-postgres",
            app_id=self.app.id,
            plan=f"heroku-postgresql:{plan.postgres_plan}",
            opts=pulumi.ResourceOptions(parent=self, protect=keep, retain_on_delete=keep),
        )
        self.redis: heroku.addon.Addon | None = None
        if "redis" in settings.accessories:
            self.redis = heroku.addon.Addon(
                f"{name}-redis", app_id=self.app.id, plan=f"heroku-redis:{plan.redis_plan}", opts=child
            )

        self.image_ref = pulumi.Output.from_input(
            args.image(registry_repository(settings.name), pulumi.ResourceOptions(depends_on=[self.app]))
        )
        # The release phase migrates the database, so the add-ons and config vars come first.
        ready = [r for r in (self.database, self.redis, self.hosts) if r is not None]
        self.release = HerokuContainerRelease(
            f"{name}-release",
            HerokuContainerReleaseArgs(
                app=self.app.name,
                image_ref=self.image_ref,
                api_key=pulumi.Output.secret(plan.api_key.get_secret_value()),
                process_types=("web", *sorted(settings.processes), "release"),
                release_timeout=args.release_timeout,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )
        # A formation per process type, scaled once the release made it exist. Heroku Scheduler has no API:
        # scheduled jobs run in the scheduler process type, one dyno.
        after_release = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        self.formations = {
            "web": heroku.formation.Formation(
                f"{name}-web",
                app_id=self.app.id,
                type="web",
                quantity=settings.web_instances,
                size=formation_size(plan.dyno_size),
                opts=after_release,
            )
        }
        for kind, process in sorted(settings.processes.items()):
            self.formations[kind] = heroku.formation.Formation(
                f"{name}-{kind}",
                app_id=self.app.id,
                type=kind,
                quantity=process.instances,
                size=formation_size(process.heroku_size or plan.dyno_size),
                opts=after_release,
            )
        self.domain: heroku.domain.Domain | None = None
        if settings.domain:
            self.domain = heroku.domain.Domain(
                f"{name}-domain", app_id=self.app.id, hostname=settings.domain, opts=child
            )

        self.url: pulumi.Output[str] = self.app.web_url  # always served, whatever the domain's DNS says
        self.app_name: pulumi.Output[str] = self.app.name
        self.app_id: pulumi.Output[str] = self.app.id
        self.database_plan: pulumi.Output[str] = self.database.plan
        self.release_id: pulumi.Output[str] = self.release.release_id
        self.release_version: pulumi.Output[int] = self.release.version
        self.image_id: pulumi.Output[str] = self.release.image_id
        # Point the custom domain's DNS (CNAME/ALIAS) here.
        self.domain_target: pulumi.Output[str] | None = self.domain.cname if self.domain else None
        self.register_outputs(
            {
                "url": self.url,
                "app_name": self.app_name,
                "app_id": self.app_id,
                "database_plan": self.database_plan,
                "release_id": self.release_id,
                "release_version": self.release_version,
                "image_id": self.image_id,
                "domain_target": self.domain_target,
            }
        )
