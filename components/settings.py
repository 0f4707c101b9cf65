"""All stack configuration, parsed once into typed, validated settings.

Every key lives in the `flightdeck:` namespace and is declared (type, description) in Pulumi.yaml. `parse` is
pure: it takes the raw config strings and the set of keys Pulumi holds as secrets, so it is tested without a
Pulumi engine. `load` reads the running stack's config and calls it. A bad value stops the program before any
resource is declared, with one line per problem naming the key, what was given and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

NAMESPACE = "flightdeck"
HEROKU_API_KEY = (
    "heroku:apiKey"  # the Heroku provider's own key; HEROKU_API_KEY in the environment also works
)


class Target(StrEnum):
    LOCAL = "local"
    HEROKU = "heroku"
    IAAS = "iaas"


HerokuRegion = Literal["us", "eu"]
HerokuDynoSize = Literal["eco", "basic", "standard-1x", "standard-2x", "performance-m", "performance-l"]
HerokuPostgresPlan = Literal[
    "essential-0", "essential-1", "essential-2", "standard-0", "standard-2", "premium-0", "premium-2"
]
HerokuRedisPlan = Literal["mini", "premium-0", "premium-1", "premium-2"]
LinodeRegion = Literal[
    "us-east", "us-central", "us-west", "us-southeast", "us-iad", "us-ord", "ca-central",
    "eu-west", "eu-central", "fr-par", "nl-ams", "se-sto", "ap-south", "ap-northeast", "ap-west",
    "ap-southeast",
]  # fmt: skip
LinodeType = Literal[
    "g6-nanode-1", "g6-standard-1", "g6-standard-2", "g6-standard-4", "g6-standard-6",
    "g6-dedicated-2", "g6-dedicated-4",
]  # fmt: skip
LinodeImage = Literal["linode/debian12", "linode/ubuntu24.04"]
Accessory = Literal["redis"]

# Dyno types that Heroku runs one at a time per process type.
SINGLE_DYNO_SIZES = frozenset({"eco", "basic"})

_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE|CREDENTIAL|_KEY$|DSN")
_DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._:/-]*@sha256:[0-9a-f]{64}$")
_MEMORY = re.compile(r"^[1-9][0-9]*[KMG]$")
_CRON = re.compile(r"^(\S+\s+){4}\S+$")
# Config vars the program sets itself; a stack file may not override them.
RESERVED_VARS = frozenset({"DATABASE_URL", "SECRET_KEY", "PORT", "REDIS_URL", "ALLOWED_HOSTS"})


def _env_names(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name (use A-Z, 0-9 and _)")
        if name in RESERVED_VARS:
            raise ValueError(f"{name} is set by flightdeck itself; remove it")
    return value


def _cidrs(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=True)
        except ValueError as err:
            raise ValueError(
                f"{item!r} is not a network in CIDR form such as 203.0.113.7/32 ({err})"
            ) from err
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AppSettings(_Model):
    """What every target shares: the app's name, its public domain and its environment."""

    name: str
    domain: str | None = None
    config_vars: Annotated[dict[str, str], AfterValidator(_env_names)] = Field(default_factory=dict)
    secret_config_vars: Annotated[dict[str, SecretStr], AfterValidator(_env_names)] = Field(
        default_factory=dict
    )
    web_instances: int = Field(default=1, ge=1, le=50)
    accessories: tuple[Accessory, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _APP_NAME.match(value):
            raise ValueError("must be 3-30 characters of a-z, 0-9 and -, starting with a letter")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError("must be a lower-case DNS name such as app.example.com")
        return value

    @field_validator("config_vars")
    @classmethod
    def _no_plain_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if _SECRET_NAME.search(name):
                raise ValueError(
                    f"{name} looks like a secret but is plain text; move it to secretConfigVars with "
                    f"`pulumi config set --secret --path 'secretConfigVars.{name}' <value>`"
                )
        return value


class ImageSettings(_Model):
    """How the app image is built, or which already-built image is released."""

    python_image: str = "python:3.13-slim"
    # Promotion: release exactly this image (repository@sha256:...) and build nothing.
    digest: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST_REF.match(value):
            raise ValueError("must be an image reference by digest: <repository>@sha256:<64 hex digits>")
        return value


class HerokuSettings(_Model):
    region: HerokuRegion = "us"
    dyno_size: HerokuDynoSize = "basic"
    postgres_plan: HerokuPostgresPlan = "essential-0"
    redis_plan: HerokuRedisPlan = "mini"
    organization: str | None = None
    protect_database: bool = False
    api_key: SecretStr


class SwarmSettings(_Model):
    """The swarm stack shared by the local and iaas targets."""

    postgres_image: str = "postgres:16"
    proxy_image: str = "caddy:2"
    redis_image: str = "redis:7"
    registry_image: str = "registry:2"
    http_port: int = Field(default=80, ge=1, le=65535)
    https_port: int = Field(default=443, ge=1, le=65535)
    web_cpus: float = Field(default=0.5, gt=0, le=16)
    web_memory: str = "512M"
    backup_schedule: str = "17 3 * * *"
    backup_retention_days: int = Field(default=14, ge=1, le=3650)

    @field_validator("web_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _MEMORY.match(value):
            raise ValueError("must be a size such as 512M or 1G")
        return value

    @field_validator("backup_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not _CRON.match(value):
            raise ValueError("must be a cron expression of five fields such as '17 3 * * *'")
        return value


class LinodeSettings(_Model):
    region: LinodeRegion = "us-east"
    instance_type: LinodeType = "g6-nanode-1"
    instance_count: int = Field(default=1, ge=1, le=10)
    image: LinodeImage = "linode/debian12"
    backups: bool = False
    ssh_public_key: str
    ssh_allow_list: Annotated[list[str], AfterValidator(_cidrs)] = Field(min_length=1)
    managed_database: bool = False
    database_type: LinodeType = "g6-nanode-1"
    database_cluster_size: int = 1

    @field_validator("database_cluster_size")
    @classmethod
    def _cluster_size(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("Linode runs managed PostgreSQL with 1 or 3 nodes")
        return value

    @field_validator("ssh_public_key")
    @classmethod
    def _ssh_key(cls, value: str) -> str:
        if not re.match(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+( .*)?$", value):
            raise ValueError("must be an OpenSSH public key line such as 'ssh-ed25519 AAAA... me@host'")
        return value


class Settings(_Model):
    target: Target
    app: AppSettings
    image: ImageSettings
    heroku: HerokuSettings | None = None
    swarm: SwarmSettings | None = None
    linode: LinodeSettings | None = None

    @model_validator(mode="after")
    def _target_parts(self) -> Settings:
        if self.heroku and self.heroku.dyno_size in SINGLE_DYNO_SIZES and self.app.web_instances > 1:
            raise ValueError(
                f"webInstances: {self.heroku.dyno_size} dynos run one per process type; "
                f"got {self.app.web_instances}. Use webInstances: 1 or herokuDynoSize: standard-1x or larger"
            )
        return self


# Config key -> (section, field). The section decides which targets read it.
KEYS: dict[str, tuple[str, str]] = {
    "target": ("", "target"),
    "appName": ("app", "name"),
    "domain": ("app", "domain"),
    "configVars": ("app", "config_vars"),
    "secretConfigVars": ("app", "secret_config_vars"),
    "webInstances": ("app", "web_instances"),
    "accessories": ("app", "accessories"),
    "pythonImage": ("image", "python_image"),
    "imageDigest": ("image", "digest"),
    "herokuRegion": ("heroku", "region"),
    "herokuDynoSize": ("heroku", "dyno_size"),
    "herokuPostgresPlan": ("heroku", "postgres_plan"),
    "herokuRedisPlan": ("heroku", "redis_plan"),
    "herokuOrganization": ("heroku", "organization"),
    "protectDatabase": ("heroku", "protect_database"),
    "postgresImage": ("swarm", "postgres_image"),
    "proxyImage": ("swarm", "proxy_image"),
    "redisImage": ("swarm", "redis_image"),
    "registryImage": ("swarm", "registry_image"),
    "httpPort": ("swarm", "http_port"),
    "httpsPort": ("swarm", "https_port"),
    "webCpus": ("swarm", "web_cpus"),
    "webMemory": ("swarm", "web_memory"),
    "backupSchedule": ("swarm", "backup_schedule"),
    "backupRetentionDays": ("swarm", "backup_retention_days"),
    "linodeRegion": ("linode", "region"),
    "linodeInstanceType": ("linode", "instance_type"),
    "linodeInstanceCount": ("linode", "instance_count"),
    "linodeImage": ("linode", "image"),
    "linodeBackups": ("linode", "backups"),
    "sshPublicKey": ("linode", "ssh_public_key"),
    "sshAllowList": ("linode", "ssh_allow_list"),
    "linodeManagedDatabase": ("linode", "managed_database"),
    "linodeDatabaseType": ("linode", "database_type"),
    "linodeDatabaseClusterSize": ("linode", "database_cluster_size"),
}
SECRET_KEYS = frozenset({"secretConfigVars"})
# Pulumi applies Pulumi.yaml's defaults to every stack, so a stack carries the keys of other targets too:
# each target reads only its own sections.
SECTIONS_OF: dict[Target, frozenset[str]] = {
    Target.LOCAL: frozenset({"", "app", "image", "swarm"}),
    Target.HEROKU: frozenset({"", "app", "image", "heroku"}),
    Target.IAAS: frozenset({"", "app", "image", "swarm", "linode"}),
}
_KEY_OF = {(section, field): key for key, (section, field) in KEYS.items()}
_KEY_OF[("heroku", "api_key")] = HEROKU_API_KEY


class SettingsError(pulumi.RunError):
    """Raised before any resource exists; Pulumi prints it without a stack trace."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the stack's configuration is not valid:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nFix the values with `pulumi config set` (see `Pulumi.yaml` for every key)."
        )


def _decode(key: str, raw: str) -> Any:
    """Pulumi hands structured values (objects, arrays) over as JSON text, scalars as plain strings."""
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{NAMESPACE}:{key}: not valid JSON ({err.msg})") from err
    return raw


def _describe(error: Any, section: str) -> str:
    field, *rest = error["loc"] or ("",)
    key = _KEY_OF.get((section, str(field)), str(field))
    where = (key if ":" in key else f"{NAMESPACE}:{key}") + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest
    )
    if error["type"] == "missing":
        return f"{where}: required for this target; set it with `pulumi config set {key} <value>`"
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    # Never echo a secret's value (or a whole map that may hold one) back into a log.
    hidden = key in SECRET_KEYS or key == HEROKU_API_KEY or isinstance(given, dict)
    return f"{where}: {message}" + ("" if hidden else f" (given {given!r})")


def parse(raw: Mapping[str, str], secret_keys: Collection[str]) -> Settings:
    """Validate raw config (`flightdeck:<key>` -> string) into Settings, or raise SettingsError listing
    every problem. secret_keys are the full keys Pulumi holds encrypted."""
    problems: list[str] = []
    sections: dict[str, dict[str, Any]] = {
        "": {},
        "app": {},
        "image": {},
        "heroku": {},
        "swarm": {},
        "linode": {},
    }
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if full_key == HEROKU_API_KEY:
            if full_key not in secret_keys:
                problems.append(
                    f"{full_key}: must be a secret; run `pulumi config set --secret {full_key} <key>`"
                )
            sections["heroku"]["api_key"] = value
            continue
        if namespace != NAMESPACE:
            continue
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"; did you mean {NAMESPACE}:{close[0]}?" if close else "; see Pulumi.yaml for the keys"
            problems.append(f"{full_key}: not a setting flightdeck knows{hint}")
            continue
        if value in ("", "{}", "[]"):
            continue  # Pulumi.yaml's "unset" defaults: every declared key needs one, see there
        if key in SECRET_KEYS and full_key not in secret_keys:
            problems.append(
                f"{full_key}: holds secrets but is stored in plain text; remove it and set each value with "
                f"`pulumi config set --secret --path '{key}.<NAME>' <value>`"
            )
            continue
        try:
            section, field = KEYS[key]
            sections[section][field] = _decode(key, value)
        except ValueError as err:
            problems.append(str(err))

    target_raw = sections[""].get("target", Target.LOCAL.value)
    try:
        target = Target(target_raw)
    except ValueError:
        allowed = ", ".join(t.value for t in Target)
        raise SettingsError(
            [f"{NAMESPACE}:target: must be one of {allowed} (given {target_raw!r})", *problems]
        ) from None

    wanted = SECTIONS_OF[target]
    built: dict[str, Any] = {"target": target}
    models: dict[str, type[_Model]] = {
        "app": AppSettings, "image": ImageSettings, "heroku": HerokuSettings,
        "swarm": SwarmSettings, "linode": LinodeSettings,
    }  # fmt: skip
    for section, model in models.items():
        if section not in wanted:
            continue
        try:
            built[section] = model.model_validate(sections[section])
        except ValidationError as err:
            problems.extend(_describe(e, section) for e in err.errors())
    if problems:
        raise SettingsError(problems)
    try:
        return Settings.model_validate(built)
    except ValidationError as err:
        raise SettingsError(
            [f"{NAMESPACE}:{e['msg'].removeprefix('Value error, ')}" for e in err.errors()]
        ) from None


def load() -> Settings:
    """Parse the running stack's config. HEROKU_API_KEY in the environment stands in for heroku:apiKey."""
    from pulumi.runtime import config as runtime_config  # the engine's view of every key of the stack

    raw = {k: str(v) for k, v in runtime_config.CONFIG.get().items()}
    secret_keys = {k for k in raw if runtime_config.is_config_secret(k)}
    if HEROKU_API_KEY not in raw and os.environ.get("HEROKU_API_KEY"):
        raw[HEROKU_API_KEY] = os.environ["HEROKU_API_KEY"]
        secret_keys.add(HEROKU_API_KEY)
    return parse(raw, secret_keys)
