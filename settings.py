"""All stack configuration, parsed once into typed, validated settings: one model per target.

Every key lives in the `flightdeck:` namespace and is declared (type, description) in Pulumi.yaml. `parse` is
pure: it takes the raw config strings and the set of keys Pulumi holds as secrets, so it is tested without a
Pulumi engine. `load` reads the running stack's config and calls it. A bad value stops the program before any
resource is declared, with one line per problem naming the key, what was given (never a secret) and the fix.

The result is a discriminated union on `target`: a target's model carries exactly the sections it reads, so
nothing downstream asks whether a section is there.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import json
import os
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import pulumi
from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contract import (
    CLI_ENVIRONMENT,
    DEFAULT_PYTHON_IMAGE,
    DIGEST_REFERENCE,
    ENV_NAME,
    PROCFILE,
    REGISTRY_PORT,
    RESERVED_VARS,
    SECRET_NAME,
    is_image_reference,
    parse_procfile,
)

NAMESPACE = "flightdeck"
# The Heroku provider's own key; HEROKU_API_KEY in the environment also works.
HEROKU_API_KEY = "heroku:apiKey"
# Namespaces of the providers the program uses: their own keys are theirs to check, but a near-miss of one of
# these (or of ours) is a typo that would otherwise be ignored.
PROVIDER_NAMESPACES = ("heroku", "linode", "docker-build", "pulumi")
# The providers' own keys, where the program knows them all (pulumiverse_heroku/config/vars.py).
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "heroku": ("apiKey", "customizations", "delays", "email", "headers", "timeouts", "url")
}

Target = Literal["local", "heroku", "servers", "iaas"]
TARGETS: tuple[str, ...] = ("local", "heroku", "servers", "iaas")
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


def dyno_tier(size: str) -> str:
    """Heroku's tier of a dyno size: an app's dynos are all of one tier (eco, basic or professional)."""
    return size if size in SINGLE_DYNO_SIZES else "professional"


_APP_NAME = re.compile(r"[a-z][a-z0-9-]{1,28}[a-z0-9]")
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# `\Z`, never `$`: `$` also matches before a trailing newline.
_DOMAIN = re.compile(rf"(?=.{{1,253}}\Z)(?:{_DNS_LABEL}\.)+[a-z]{{2,63}}")
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_TEAM = re.compile(
    r"[a-z][a-z0-9-]{0,62}[a-z0-9]|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
_MEMORY = re.compile(r"[1-9][0-9]{0,5}[KMG]")
_CPUS = re.compile(r"(?:0|[1-9][0-9]?)(?:\.[0-9]{1,3})?")
_SERVER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
_UNIX_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z0-9-]{2,32}")
_S3_ENDPOINT = re.compile(r"https?://(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(?P<port>[0-9]{1,5}))?/?")
_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
_SSH_KEY = re.compile(
    rf"(?P<type>{'|'.join(re.escape(t) for t in _SSH_KEY_TYPES)}) "
    r"(?P<blob>[A-Za-z0-9+/]+={0,2})(?: (?P<comment>[ -~]*))?"
)
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_LOCAL_ENGINE = re.compile(r"unix:///[^\s]+")
# A private key file as the ssh configuration names it: an absolute path without spaces, quotes, `%` (ssh
# expands %-tokens in IdentityFile), `=` or `#`.
_KEY_FILE = re.compile(r"/[A-Za-z0-9_.+@/-]*")
# Five cron fields, one space apart: what backup/backup.py's croniter reads, and nothing it would split
# differently (tabs, newlines, runs of spaces).
_CRON = re.compile(r"[0-9A-Za-z*/,?#-]+(?: [0-9A-Za-z*/,?#-]+){4}")
# A Heroku API key (or OAuth token): one line of printable ASCII; it becomes an HTTP header.
_HEROKU_API_KEY = re.compile(r"[!-~]{8,512}")
# Bucket keys: what render/registry_config.bucket_credentials_file writes into an AWS credentials file.
_BUCKET_KEY = re.compile(r"[!-~]{1,512}")
# A URL that carries a password (scheme://user:password@host): a secret, whatever the variable's name.
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@")
# The longest environment string (NAME=value) execve passes on (Linux MAX_ARG_STRLEN is 128 KiB).
MAX_ENV_STRING = 128 * 1024 - 1
# Heroku refuses an app whose config vars (names and values) exceed 32 KB; flightdeck's own take ~1 KB.
MAX_HEROKU_CONFIG = 31 * 1024
# IPv6 prefixes that carry the whole IPv4 space (IPv4-mapped, IPv4-compatible, NAT64 well-known): a network
# inside one of these opens SSH to IPv4 addresses, and counts as such.
_IPV4_IN_IPV6 = tuple(ipaddress.IPv6Network(prefix) for prefix in ("::ffff:0:0/96", "::/96", "64:ff9b::/96"))
# What the docker CLI that deploys a swarm stack has in its environment (providers/engine.py CLI_ENVIRONMENT,
# and DOCKER_HOST): an empty stack file value of one of these names would be replaced by the CLI's own.
DEPLOY_ENVIRONMENT = frozenset({*CLI_ENVIRONMENT, "DOCKER_HOST"})
# Given values are echoed in errors up to this length.
MAX_ECHO = 80
# An RSA key of 16384 bits is about 2.8 KB in this form; anything far longer is not a key.
MAX_SSH_KEY = 4096
# SSH open to more addresses than this counts as open to the world.
MAX_SSH_ADDRESSES_V4 = 2**24  # a /8
MAX_SSH_ADDRESSES_V6 = 2**96  # a /32


def _full(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def _env_names(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not _full(ENV_NAME, name):
            raise ValueError(f"{name!r} is not an environment variable name (use A-Z, 0-9 and _)")
        if name in RESERVED_VARS:
            raise ValueError(f"{name} is set by flightdeck itself; remove it")
    return value


def _env_values(value: dict[str, Any]) -> dict[str, Any]:
    for name, text in value.items():
        plain = text.get_secret_value() if isinstance(text, SecretStr) else text
        if "\0" in plain:
            raise ValueError(f"{name}: an environment variable cannot hold a NUL character")
        size = len(f"{name}={plain}".encode(errors="surrogatepass"))
        if size > MAX_ENV_STRING:
            raise ValueError(
                f"{name}: NAME=value is {size} bytes; a process environment holds at most {MAX_ENV_STRING} "
                "per variable (mount large values as files instead)"
            )
    return value


def _image(value: str) -> str:
    if not is_image_reference(value):
        raise ValueError(
            "must be an image reference such as postgres:16, registry.example.com/team/app:1.2 or "
            "<repository>@sha256:<digest>"
        )
    return value


ImageReference = Annotated[str, AfterValidator(_image)]


def _cron(value: str) -> str:
    expected = "must be a cron expression of five fields one space apart, such as '17 3 * * *'"
    if not _full(_CRON, value):
        raise ValueError(expected)
    try:  # croniter raises many kinds of errors on bad input
        valid = bool(croniter.is_valid(value))
    except Exception:
        valid = False
    if not valid:
        raise ValueError(expected)
    # A valid expression may still never come (the 31st of February): it must within five years.
    start = datetime(2025, 1, 1, tzinfo=UTC)
    try:
        fires = croniter(value, start).get_next(datetime) < start + timedelta(days=5 * 366)
    except Exception:
        fires = False
    if not fires:
        raise ValueError(
            "never comes (no such date); use a day every month or year has, such as '17 3 * * *'"
        )
    return value


def _ssh_public_key(value: str) -> str:
    if len(value) > MAX_SSH_KEY:
        raise ValueError(
            f"is {len(value)} characters long; an OpenSSH public key line is at most {MAX_SSH_KEY}"
        )
    match = _SSH_KEY.fullmatch(value)
    if match is None:
        raise ValueError("must be an OpenSSH public key line such as 'ssh-ed25519 AAAA... me@host'")
    try:
        blob = base64.b64decode(match["blob"], validate=True)
    except binascii.Error as err:
        raise ValueError(f"the key's base64 does not decode ({err})") from err
    # The blob starts with its own type name (a length-prefixed string): a key pasted under the wrong type
    # or cut short fails here rather than at login.
    inner_length = int.from_bytes(blob[:4], "big")
    if blob[4 : 4 + inner_length].decode("ascii", "replace") != match["type"]:
        raise ValueError(f"the key's data is not a {match['type']} key (truncated or mislabelled)")
    return value


def _identity_file(value: str | None) -> str | None:
    if value is not None and not _full(_KEY_FILE, value):
        raise ValueError(
            "must be an absolute path to the deploy user's private key, e.g. /home/me/.ssh/id_ed25519 "
            "(letters, digits and . _ + @ - /; no spaces or %)"
        )
    return value


IdentityFile = Annotated[str | None, AfterValidator(_identity_file)]


def _cidrs(value: list[str]) -> list[str]:
    for item in value:
        try:
            if "%" in item:
                raise ValueError("a scope (%zone) names an interface, not a network")
            ipaddress.ip_network(item, strict=True)
        except ValueError as err:
            raise ValueError(
                f"{_echo(item)} is not a network in CIDR form such as 203.0.113.7/32 ({_echo(str(err))})"
            ) from err
    return value


def _ipv4_equivalent(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> ipaddress.IPv4Network | None:
    """The IPv4 network an IPv6 network inside an IPv4-carrying prefix stands for (None if none)."""
    if isinstance(network, ipaddress.IPv4Network):
        return network
    for prefix in _IPV4_IN_IPV6:
        if network.subnet_of(prefix):
            offset = int(network.network_address) - int(prefix.network_address)
            return ipaddress.IPv4Network((offset, network.prefixlen - 96))
        if prefix.subnet_of(network):
            return ipaddress.IPv4Network("0.0.0.0/0")
    return None


def _echo(value: Any) -> str:
    """A value as an error shows it: repr (so a newline cannot start a line of its own), cut short."""
    text = repr(value)
    return (
        text
        if len(text) <= MAX_ECHO
        else f"{text[: MAX_ECHO - 5]}...{text[-1]} ({len(str(value))} characters)"
    )


def _show(name: str) -> str:
    """A key or a name from the config as a message shows it: as it is when it is plain, else repr."""
    return name if re.fullmatch(r"[A-Za-z0-9_.:\-\[\]]{1,100}", name) else _echo(name)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Process types the platform runs on its own terms: web is sized by webInstances/webCpus/webMemory, release
# is the release phase (one run per release, not a service).
FIXED_TYPES = frozenset({"web", "release"})
SINGLETON_TYPES = frozenset({"scheduler"})  # runs exactly one instance (or none): it enqueues scheduled jobs


class ProcessSettings(_Model):
    """Count and size of one process type of app/Procfile beyond web (a worker, the scheduler)."""

    instances: int = Field(default=1, ge=0, le=20)
    cpus: str = "0.5"  # swarm targets: CPU limit of each task
    memory: str = "256M"  # swarm targets: memory limit of each task
    heroku_size: HerokuDynoSize | None = Field(default=None, alias="herokuSize")  # default: herokuDynoSize

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, value: str) -> str:
        if not _full(_CPUS, value) or float(value) <= 0:
            raise ValueError("must be a number of CPUs such as 0.5 or 2")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _full(_MEMORY, value):
            raise ValueError("must be a size such as 256M or 1G")
        return value


class AppSettings(_Model):
    """What every target shares: the app's name, its public domain, its environment and process types."""

    name: str
    domain: str | None = None
    config_vars: Annotated[dict[str, str], AfterValidator(_env_names), AfterValidator(_env_values)] = Field(
        default_factory=dict
    )
    secret_config_vars: Annotated[
        dict[str, SecretStr], AfterValidator(_env_names), AfterValidator(_env_values)
    ] = Field(default_factory=dict)
    web_instances: int = Field(default=1, ge=1, le=50)
    accessories: tuple[Accessory, ...] = ()
    # Every process type of app/Procfile but web and release, with its count and size (defaults filled in).
    processes: dict[str, ProcessSettings] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _full(_APP_NAME, value):
            raise ValueError("must be 3-30 characters of a-z, 0-9 and -, starting with a letter")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not _full(_DOMAIN, value):
            raise ValueError("must be a lower-case DNS name such as app.example.com")
        return value

    @field_validator("config_vars")
    @classmethod
    def _no_plain_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if _full(SECRET_NAME, name):
                raise ValueError(
                    f"{name} looks like a secret but is plain text; move it to secretConfigVars with "
                    f"`pulumi config set --secret --path 'secretConfigVars.{name}' <value>`"
                )
            if _URL_WITH_PASSWORD.search(text):
                raise ValueError(
                    f"{name} holds a URL with a password, in plain text; move it to secretConfigVars with "
                    f"`pulumi config set --secret --path 'secretConfigVars.{name}' <value>`"
                )
        return value

    @field_validator("processes")
    @classmethod
    def _singletons(cls, value: dict[str, ProcessSettings]) -> dict[str, ProcessSettings]:
        for name in sorted(SINGLETON_TYPES & set(value)):
            if value[name].instances > 1:
                raise ValueError(
                    f"{name}.instances: the {name} runs one instance (more would enqueue every scheduled job "
                    f"twice); use 1, or 0 to pause scheduled jobs (given {value[name].instances})"
                )
        return value

    @model_validator(mode="after")
    def _each_name_once(self) -> AppSettings:
        both = sorted(set(self.config_vars) & set(self.secret_config_vars))
        if both:
            raise ValueError(
                f"{', '.join(both)} is set in both configVars and secretConfigVars; keep it in one "
                "(secretConfigVars if it is a secret)"
            )
        return self


class ImageSettings(_Model):
    """How the app image is built, or which already-built image is released."""

    python_image: ImageReference = DEFAULT_PYTHON_IMAGE
    # Promotion: release exactly this image (repository@sha256:...) and build nothing.
    digest: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and DIGEST_REFERENCE.fullmatch(value) is None:
            raise ValueError(
                "must be an image reference by digest (<repository>@sha256:<64 hex digits>); flightdeck "
                "releases an exact image, never a tag"
            )
        return value


class HerokuOptions(_Model):
    region: HerokuRegion = "us"
    dyno_size: HerokuDynoSize = "basic"
    postgres_plan: HerokuPostgresPlan = "essential-0"
    redis_plan: HerokuRedisPlan = "mini"
    organization: str | None = None
    api_key: SecretStr

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: SecretStr) -> SecretStr:
        if not _full(_HEROKU_API_KEY, value.get_secret_value()):
            raise ValueError(
                "must be a Heroku API key (one line, 8-512 printable characters, no spaces): "
                f"`heroku authorizations:create`, then `pulumi config set --secret {HEROKU_API_KEY} <key>`"
            )
        return value

    @field_validator("organization")
    @classmethod
    def _team(cls, value: str | None) -> str | None:
        if value is not None and not _full(_TEAM, value):
            raise ValueError("must be a Heroku team name (a-z, 0-9 and -, starting with a letter) or its id")
        return value


class SwarmSettings(_Model):
    """The swarm stack shared by the local, servers and iaas targets."""

    postgres_image: ImageReference = "postgres:16"
    proxy_image: ImageReference = "caddy:2"
    redis_image: ImageReference = "redis:7"
    registry_image: ImageReference = "registry:2"
    http_port: int = Field(default=80, ge=1, le=65535)
    https_port: int = Field(default=443, ge=1, le=65535)
    # This machine's registry on 127.0.0.1 (local: the stack's; servers, iaas: where images are built before
    # they are copied to the servers).
    registry_port: int = Field(default=REGISTRY_PORT, ge=1, le=65535)
    web_cpus: str = "0.5"
    web_memory: str = "512M"
    backup_schedule: Annotated[str, AfterValidator(_cron)] = "17 3 * * *"
    backup_retention_days: int = Field(default=14, ge=1, le=3650)
    # Images of this many recent releases stay on every node (rollback without a pull); older ones are pruned.
    keep_releases: int = Field(default=5, ge=1, le=50)

    @field_validator("web_cpus")
    @classmethod
    def _cpus(cls, value: str) -> str:
        if not _full(_CPUS, value) or float(value) <= 0:
            raise ValueError("must be a number of CPUs such as 0.5 or 2")
        return value

    @field_validator("registry_port")
    @classmethod
    def _registry_port(cls, value: int, info: ValidationInfo) -> int:
        if value in (info.data.get("http_port"), info.data.get("https_port")):
            raise ValueError(
                f"{value} is also the proxy's httpPort or httpsPort; give the registry its own port"
            )
        return value

    @field_validator("web_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _full(_MEMORY, value):
            raise ValueError("must be a size such as 512M or 1G")
        return value

    @model_validator(mode="after")
    def _ports(self) -> SwarmSettings:
        if self.http_port == self.https_port:
            raise ValueError(f"httpPort and httpsPort are both {self.http_port}; give each its own port")
        return self


Role = Literal["manager", "worker"]


class Server(_Model):
    """A host of the servers target, reached over SSH as a non-root user whose key is pinned."""

    name: str
    address: str
    user: str = "deploy"
    port: int = Field(default=22, ge=1, le=65535)
    role: Role = "worker"
    host_key: Annotated[str, AfterValidator(_ssh_public_key)] = Field(alias="hostKey")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _full(_SERVER_NAME, value):
            raise ValueError("must be 1-32 characters of a-z, 0-9 and -")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if "%" not in value:  # a scoped IPv6 address (fe80::1%eth0) names an interface of this machine
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                pass
            else:
                if address.version == 6:
                    # The engine addresses (ssh://user@host:port) and health URLs built from it do not bracket
                    # an IPv6 literal yet (components/swarm_hosts.py, components/swarm_stack.py).
                    raise ValueError("IPv6 addresses are not supported yet; give the host's DNS name")
                return str(address)
        if not _full(_HOST_NAME, value):
            raise ValueError("must be an IP address (without a %zone) or a lower-case DNS name")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if value == "root":
            raise ValueError("deploys never log in as root; use the deploy user (in the docker group)")
        if not _full(_UNIX_USER, value):
            raise ValueError("must be a user name such as deploy")
        return value


class Bucket(_Model):
    """An S3-compatible bucket: the registry's blobs and the database backups."""

    endpoint: str
    name: str
    region: str = "us-east-1"
    access_key: SecretStr
    secret_key: SecretStr

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        match = _S3_ENDPOINT.fullmatch(value)
        if match is None or not 1 <= int(match["port"] or 443) <= 65535:
            raise ValueError("must be an S3 endpoint URL such as https://us-east-1.linodeobjects.com")
        return value.rstrip("/")

    @field_validator("access_key", "secret_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not _full(_BUCKET_KEY, value.get_secret_value()):
            raise ValueError(
                "must be one line of printable characters without spaces (1-512), as S3 keys are"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _full(_BUCKET, value):
            raise ValueError("must be a bucket name of 3-63 characters of a-z, 0-9, . and -")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _full(_REGION, value):
            raise ValueError("must be a region name such as us-east-1")
        return value


class ServersOptions(_Model):
    hosts: tuple[Server, ...] = Field(min_length=1, max_length=20)
    # A private key file of the deploy user; None: the SSH agent (SSH_AUTH_SOCK) of whoever runs `pulumi up`.
    identity_file: IdentityFile = None
    bucket: Bucket

    @model_validator(mode="after")
    def _hosts(self) -> ServersOptions:
        names = [host.name for host in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"host names must be unique (given {names})")
        addresses = [host.address for host in self.hosts]
        if len(set(addresses)) != len(addresses):
            raise ValueError(f"addresses must be unique (given {addresses})")
        managers = [host.name for host in self.hosts if host.role == "manager"]
        if len(managers) != 1:
            raise ValueError(
                f"exactly one host has role manager (given {managers or 'none'}); the others are workers"
            )
        return self


class LinodeOptions(_Model):
    region: LinodeRegion = "us-east"
    instance_type: LinodeType = "g6-nanode-1"
    instance_count: int = Field(default=1, ge=1, le=10)
    image: LinodeImage = "linode/debian12"
    backups: bool = False
    ssh_public_key: Annotated[str, AfterValidator(_ssh_public_key)]
    ssh_allow_list: Annotated[list[str], AfterValidator(_cidrs)] = Field(min_length=1)
    allow_ssh_from_anywhere: bool = False
    identity_file: IdentityFile = None
    managed_database: bool = False
    database_type: LinodeType = "g6-nanode-1"
    database_cluster_size: int = 1

    @field_validator("database_cluster_size")
    @classmethod
    def _cluster_size(cls, value: int) -> int:
        if value not in (1, 3):
            raise ValueError("Linode runs managed PostgreSQL with 1 or 3 nodes")
        return value

    @model_validator(mode="after")
    def _ssh_not_world_open(self) -> LinodeOptions:
        if self.allow_ssh_from_anywhere:
            return self
        networks = [ipaddress.ip_network(cidr) for cidr in self.ssh_allow_list]
        # IPv6 networks that carry IPv4 addresses count as the IPv4 networks they stand for, too.
        by_version: dict[int, list[Any]] = {
            4: [v4 for n in networks if (v4 := _ipv4_equivalent(n)) is not None],
            6: [n for n in networks if n.version == 6],
        }
        for version, limit in ((4, MAX_SSH_ADDRESSES_V4), (6, MAX_SSH_ADDRESSES_V6)):
            covered = sum(n.num_addresses for n in ipaddress.collapse_addresses(by_version[version]))
            if covered > limit:
                raise ValueError(
                    f"opens SSH to {covered:.3g} IPv{version} addresses, which is the world; "
                    "list your own networks (e.g. 203.0.113.7/32), or accept the risk explicitly with "
                    "`pulumi config set flightdeck:allowSshFromAnywhere true`"
                )
        return self


class _Common(_Model):
    app: AppSettings
    image: ImageSettings
    # Keep the data (databases, buckets, volumes) when the stack is destroyed, and refuse to delete it.
    protect_data: bool = False


class _SwarmTarget(_Common):
    swarm: SwarmSettings
    # This machine's engine: where the local target deploys and the servers targets build. DOCKER_HOST of
    # whoever runs `pulumi up` (the docker CLI's own rule), else the default socket.
    docker_host: str = DEFAULT_DOCKER_HOST

    @field_validator("docker_host")
    @classmethod
    def _docker_host(cls, value: str) -> str:
        if not _full(_LOCAL_ENGINE, value):
            raise ValueError(
                "must name this machine's engine as unix:///path/to.sock (unset it for the default socket; "
                "`make up` points it at the project's engine)"
            )
        return value

    @model_validator(mode="after")
    def _stack_file_values(self) -> _SwarmTarget:
        for name, value in self.app.config_vars.items():
            # `docker stack deploy` gives a variable whose value is empty the deploying process's value of
            # that name, when it has one: the web tasks would not get what the release job gets.
            if value == "" and name in DEPLOY_ENVIRONMENT:
                raise ValueError(
                    f"configVars.{name}: an empty value on a swarm target takes the deploying machine's "
                    f"{name} (docker stack deploy fills empty values from its own environment); give it a "
                    "value, or remove it"
                )
        for name, secret in self.app.secret_config_vars.items():
            if secret.get_secret_value() == "":
                raise ValueError(f"secretConfigVars.{name}: a docker secret cannot be empty; give it a value")
        return self


class LocalSettings(_SwarmTarget):
    target: Literal["local"] = "local"


class HerokuSettings(_Common):
    target: Literal["heroku"] = "heroku"
    heroku: HerokuOptions

    @model_validator(mode="after")
    def _dyno_count(self) -> HerokuSettings:
        web = self.heroku.dyno_size
        if web in SINGLE_DYNO_SIZES and self.app.web_instances > 1:
            raise ValueError(
                f"webInstances: {web} dynos run one per process type; "
                f"got {self.app.web_instances}. Use webInstances: 1 or herokuDynoSize: standard-1x or larger"
            )
        for name, process in sorted(self.app.processes.items()):
            size = process.heroku_size or web
            if size in SINGLE_DYNO_SIZES and process.instances > 1:
                raise ValueError(
                    f"processes.{name}.instances: {size} dynos run one per process type; got "
                    f"{process.instances}. Use instances: 1, or herokuSize: standard-1x or larger"
                )
            if process.instances and dyno_tier(size) != dyno_tier(web):
                raise ValueError(
                    f"processes.{name}.herokuSize: {size} is a {dyno_tier(size)} dyno and web runs {web} "
                    f"({dyno_tier(web)}); Heroku runs one tier of dynos per app. Size {name} in web's tier, "
                    "or change herokuDynoSize"
                )
        plain = [(name, value) for name, value in self.app.config_vars.items()]
        secret = [(name, value.get_secret_value()) for name, value in self.app.secret_config_vars.items()]
        held = sum(
            len(name.encode()) + len(value.encode(errors="surrogatepass")) for name, value in plain + secret
        )
        if held > MAX_HEROKU_CONFIG:
            raise ValueError(
                f"configVars: configVars and secretConfigVars hold {held} bytes; Heroku takes at most "
                f"{MAX_HEROKU_CONFIG} for an app's own (32 KB in all); move large values out of the "
                "environment"
            )
        return self


class ServersSettings(_SwarmTarget):
    target: Literal["servers"] = "servers"
    servers: ServersOptions


class IaasSettings(_SwarmTarget):
    target: Literal["iaas"] = "iaas"
    linode: LinodeOptions


Settings = Annotated[
    LocalSettings | HerokuSettings | ServersSettings | IaasSettings, Field(discriminator="target")
]
SwarmTargetSettings = LocalSettings | ServersSettings | IaasSettings
_SETTINGS: TypeAdapter[LocalSettings | HerokuSettings | ServersSettings | IaasSettings] = TypeAdapter(
    Settings
)

# Config key -> (section, field). The section decides which targets read it.
KEYS: dict[str, tuple[str, str]] = {
    "target": ("", "target"),
    "protectData": ("", "protect_data"),
    "appName": ("app", "name"),
    "domain": ("app", "domain"),
    "configVars": ("app", "config_vars"),
    "secretConfigVars": ("app", "secret_config_vars"),
    "webInstances": ("app", "web_instances"),
    "accessories": ("app", "accessories"),
    "processes": ("app", "processes"),
    "pythonImage": ("image", "python_image"),
    "imageDigest": ("image", "digest"),
    "herokuRegion": ("heroku", "region"),
    "herokuDynoSize": ("heroku", "dyno_size"),
    "herokuPostgresPlan": ("heroku", "postgres_plan"),
    "herokuRedisPlan": ("heroku", "redis_plan"),
    "herokuOrganization": ("heroku", "organization"),
    "postgresImage": ("swarm", "postgres_image"),
    "proxyImage": ("swarm", "proxy_image"),
    "redisImage": ("swarm", "redis_image"),
    "registryImage": ("swarm", "registry_image"),
    "httpPort": ("swarm", "http_port"),
    "httpsPort": ("swarm", "https_port"),
    "registryPort": ("swarm", "registry_port"),
    "webCpus": ("swarm", "web_cpus"),
    "webMemory": ("swarm", "web_memory"),
    "backupSchedule": ("swarm", "backup_schedule"),
    "backupRetentionDays": ("swarm", "backup_retention_days"),
    "keepReleases": ("swarm", "keep_releases"),
    "servers": ("servers", "hosts"),
    "sshIdentityFile": ("ssh", "identity_file"),
    "bucketEndpoint": ("bucket", "endpoint"),
    "bucketName": ("bucket", "name"),
    "bucketRegion": ("bucket", "region"),
    "bucketAccessKey": ("bucket", "access_key"),
    "bucketSecretKey": ("bucket", "secret_key"),
    "linodeRegion": ("linode", "region"),
    "linodeInstanceType": ("linode", "instance_type"),
    "linodeInstanceCount": ("linode", "instance_count"),
    "linodeImage": ("linode", "image"),
    "linodeBackups": ("linode", "backups"),
    "sshPublicKey": ("linode", "ssh_public_key"),
    "sshAllowList": ("linode", "ssh_allow_list"),
    "allowSshFromAnywhere": ("linode", "allow_ssh_from_anywhere"),
    "linodeManagedDatabase": ("linode", "managed_database"),
    "linodeDatabaseType": ("linode", "database_type"),
    "linodeDatabaseClusterSize": ("linode", "database_cluster_size"),
}
# Keys whose values are secrets: they must be set with --secret, and are never echoed.
SECRET_KEYS = frozenset({"secretConfigVars", "bucketAccessKey", "bucketSecretKey"})
# Each target reads only its own sections (Pulumi applies Pulumi.yaml's defaults to every stack, so a stack
# carries the other targets' keys too).
SECTIONS_OF: dict[str, frozenset[str]] = {
    "local": frozenset({"", "app", "image", "swarm"}),
    "heroku": frozenset({"", "app", "image", "heroku"}),
    "servers": frozenset({"", "app", "image", "swarm", "servers", "ssh", "bucket"}),
    "iaas": frozenset({"", "app", "image", "swarm", "linode", "ssh"}),
}
_KEY_OF = {(section, field): key for key, (section, field) in KEYS.items()}
_KEY_OF[("heroku", "api_key")] = HEROKU_API_KEY
_KEY_OF[("servers", "bucket")] = "bucketEndpoint"
_KEY_OF[("linode", "identity_file")] = "sshIdentityFile"
# Where a section's model sits in the target's settings.
_MODEL_PATH = {
    "app": ("app",),
    "image": ("image",),
    "heroku": ("heroku",),
    "swarm": ("swarm",),
    "servers": ("servers",),
    "bucket": ("servers", "bucket"),
    "linode": ("linode",),
}


class SettingsError(pulumi.RunError):
    """Raised before any resource exists; Pulumi prints it without a stack trace."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the stack's configuration is not valid:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nFix the values with `pulumi config set` (see `Pulumi.yaml` for every key)."
        )


# Keys whose values are objects or arrays; every other key's value is a string, even one that starts with
# `[` (an IPv6 registry such as [::1]:5000/app) or `{`.
STRUCTURED_KEYS = frozenset(
    {"configVars", "secretConfigVars", "processes", "accessories", "servers", "sshAllowList"}
)


def _decode(key: str, raw: str) -> Any:
    """Pulumi hands structured values (objects, arrays) over as JSON text, scalars as plain strings."""
    if key in STRUCTURED_KEYS and raw[:1] in "[{":
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"{NAMESPACE}:{key}: not valid JSON ({err.msg} at character {err.pos})") from err
        except RecursionError:
            raise ValueError(f"{NAMESPACE}:{key}: nested too deeply to be a setting") from None
        try:
            text = _all_text(decoded)
        except RecursionError:
            raise ValueError(f"{NAMESPACE}:{key}: nested too deeply to be a setting") from None
        if not text:  # JSON's \ud800 escapes decode to strings no file or process can hold
            raise ValueError(f"{NAMESPACE}:{key}: holds a string that is not valid UTF-8 text")
        return decoded
    return raw


def _all_text(value: Any) -> bool:
    if isinstance(value, str):
        return _is_text(value)
    if isinstance(value, dict):
        return all(_all_text(k) and _all_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_text(v) for v in value)
    return True


def _full_key(key: str) -> str:
    return key if ":" in key or key.isupper() else f"{NAMESPACE}:{key}"


# The key a model-level error (one that spans fields) is reported under.
_SECTION_KEY = {"app": "configVars", "swarm": "httpsPort", "servers": "servers", "linode": "sshAllowList"}


def _locate(loc: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    """The config key and the path inside its value of a validation error's location in the target's
    settings (its first element is the union's tag); None when the error is about the settings as a whole."""
    parts = loc[1:]
    if not parts:
        return None, ()
    head = str(parts[0])
    if head == "docker_host":
        return "DOCKER_HOST", parts[1:]
    if head in ("target", "protect_data"):
        return _KEY_OF[("", head)], parts[1:]
    if len(parts) == 1:
        return _SECTION_KEY.get(head, head), ()
    field = str(parts[1])
    if head == "servers" and field == "bucket":
        if len(parts) == 2:
            return "bucketEndpoint", ()
        return _KEY_OF.get(("bucket", str(parts[2])), "bucketEndpoint"), parts[3:]
    if field == "identity_file":
        return "sshIdentityFile", parts[2:]
    return _KEY_OF.get((head, field), field), parts[2:]


def _describe(error: Any) -> str:
    key, rest = _locate(tuple(error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    if key is None:
        return f"{NAMESPACE}:{message}"
    where = _full_key(key) + "".join(
        f"[{part}]" if isinstance(part, int) else f".{_show(str(part))}" for part in rest
    )
    secret = key in SECRET_KEYS or key == HEROKU_API_KEY
    if error["type"] == "missing":
        flag = "--secret " if secret else ""
        if rest:
            return f"{where}: required; add it to {_full_key(key)}"
        hint = f"set it with `pulumi config set {flag}{key} <value>`"
        if key == HEROKU_API_KEY:
            hint += " (or export HEROKU_API_KEY where `pulumi up` runs)"
        return f"{where}: required for this target; {hint}"
    given = error.get("input")
    # Never echo a secret's value (or a whole map or list that may hold one) back into a log.
    hidden = secret or isinstance(given, dict | list)
    return f"{where}: {message}" + ("" if hidden else f" (given {_echo(given)})")


def _namespace_typo(namespace: str, key: str) -> str | None:
    """A key whose namespace is a near-miss of ours or a provider's, or a provider key in the wrong case."""
    if namespace == NAMESPACE:
        return None
    given = _show(f"{namespace}:{key}")
    if namespace in PROVIDER_NAMESPACES:
        known = PROVIDER_KEYS.get(namespace)
        if not known or key in known:
            return None  # a provider whose keys the program does not list checks its own
        same = [name for name in known if name.lower() == key.lower()]
        close = same or difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {namespace}:{close[0]}?" if close else f"its settings are {', '.join(known)}"
        return f"{given}: not a {namespace} setting; {hint}"
    close = difflib.get_close_matches(namespace.lower(), [NAMESPACE, *PROVIDER_NAMESPACES], n=1, cutoff=0.75)
    if not close:
        return None
    suggestion = close[0]
    if suggestion == NAMESPACE:
        keys = difflib.get_close_matches(key, KEYS, n=1)
        suggestion_key = keys[0] if keys else _show(key)
        return f"{given}: the namespace is not {NAMESPACE}; did you mean {NAMESPACE}:{suggestion_key}?"
    known = PROVIDER_KEYS.get(suggestion, ())
    keys = [name for name in known if name.lower() == key.lower()] or difflib.get_close_matches(
        key, known, n=1
    )
    suggestion_key = keys[0] if keys else _show(key)
    return f"{given}: the namespace is not {suggestion}; did you mean {suggestion}:{suggestion_key}?"


def _nest(sections: dict[str, dict[str, Any]], target: str) -> dict[str, Any]:
    """The target's settings document from the flat sections it reads."""
    wanted = SECTIONS_OF[target]
    document: dict[str, Any] = {"target": target, **sections[""]}
    for section in ("app", "image", "heroku", "swarm", "linode"):
        if section in wanted:
            document[section] = sections[section]
    if target == "servers":
        document["servers"] = {
            "hosts": sections["servers"].get("hosts", ()),
            "bucket": sections["bucket"],
            **sections["ssh"],
        }
    if target == "iaas":
        document["linode"] = {**document["linode"], **sections["ssh"]}
    return document


def _processes(given: Any, types: Collection[str]) -> tuple[dict[str, Any], list[str]]:
    """processes with an entry for every Procfile type but web and release, and the problems of the given
    map: types the Procfile does not declare, or that are set elsewhere."""
    problems: list[str] = []
    scalable = sorted(set(types) - FIXED_TYPES)
    if given is not None and not isinstance(given, dict):
        problems.append(
            f"{NAMESPACE}:processes: must be a map of process type to "
            "{instances, cpus, memory, herokuSize}, "
            f'such as {{"worker": {{"instances": 2}}}}'
            + (f" (given {_echo(given)})" if isinstance(given, str) else "")
        )
    given = given if isinstance(given, dict) else {}
    for name in given:
        if name == "web":
            problems.append(
                f"{NAMESPACE}:processes.web: web is sized by webInstances, webCpus, webMemory and "
                "herokuDynoSize"
            )
        elif name == "release":
            problems.append(
                f"{NAMESPACE}:processes.release: the release phase runs once per release; it has no count"
            )
        elif name not in scalable:
            close = difflib.get_close_matches(name, scalable, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(
                f"{NAMESPACE}:processes.{_show(name)}: not a process type of app/Procfile "
                f"({', '.join(scalable) or 'none'}){hint}"
            )
    return {name: given.get(name, {}) for name in scalable}, problems


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The sections a target does not read, validated field by field all the same: a bad value is refused
# whichever target the stack has (requirements of the other targets, such as their required keys, are not).
_UNREAD_MODELS: dict[str, TypeAdapter[Any]] = {
    "heroku": TypeAdapter(HerokuOptions),
    "swarm": TypeAdapter(SwarmSettings),
    "linode": TypeAdapter(LinodeOptions),
    "bucket": TypeAdapter(Bucket),
    "servers": TypeAdapter(dict[str, tuple[Server, ...]]),
    "ssh": TypeAdapter(dict[str, IdentityFile]),
}
_UNREAD_PATH = {"bucket": ("servers", "bucket"), "ssh": ("servers",)}


def _unread_problems(sections: Mapping[str, Mapping[str, Any]], target: str) -> list[str]:
    problems: list[str] = []
    for section, adapter in _UNREAD_MODELS.items():
        given = {
            k: v for k, v in sections[section].items() if k != "api_key"
        }  # heroku:apiKey is the provider's
        if section in SECTIONS_OF[target] or not given:
            continue
        try:
            adapter.validate_python(given)
        except ValidationError as err:
            for error in err.errors():
                if error["type"] == "missing" or not error["loc"]:
                    continue  # what the other target requires, or a check across its fields
                loc = (target, *_UNREAD_PATH.get(section, (section,)), *error["loc"])
                problems.append(_describe({**error, "loc": loc}))
    return problems


def parse(
    raw: Mapping[str, str],
    secret_keys: Collection[str],
    environ: Mapping[str, str] | None = None,
    process_types: Collection[str] | None = None,
) -> LocalSettings | HerokuSettings | ServersSettings | IaasSettings:
    """Validate raw config (`flightdeck:<key>` -> string) into the target's settings, or raise SettingsError
    listing every problem. secret_keys are the full keys Pulumi holds encrypted; environ supplies
    DOCKER_HOST (the swarm targets' engine on this machine); process_types are app/Procfile's (read from it
    when not given)."""
    problems: list[str] = []
    sections: dict[str, dict[str, Any]] = {
        s: {} for s in ("", "app", "image", "heroku", "swarm", "servers", "ssh", "bucket", "linode")
    }
    target_given: str | None = None
    target_secret = False
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if (namespace == NAMESPACE or full_key == HEROKU_API_KEY) and not (
            isinstance(value, str) and _is_text(value)
        ):
            # Pulumi hands every value over as UTF-8 text; anything else cannot reach a file or a process.
            problems.append(f"{_show(full_key)}: not valid UTF-8 text")
            continue
        if full_key == HEROKU_API_KEY:
            if full_key not in secret_keys:
                problems.append(
                    f"{full_key}: must be a secret; run `pulumi config set --secret {full_key} <key>`"
                )
            sections["heroku"]["api_key"] = value
            continue
        if namespace != NAMESPACE:
            if typo := _namespace_typo(namespace, key):
                problems.append(typo)
            continue
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"; did you mean {NAMESPACE}:{close[0]}?" if close else "; see Pulumi.yaml for the keys"
            problems.append(f"{_show(full_key)}: not a setting flightdeck knows{hint}")
            continue
        if key == "target":
            target_given = value
            if full_key in secret_keys:
                target_secret = True
                problems.append(
                    f"{full_key}: names the target, which is not a secret; set it without --secret"
                )
            continue
        if value in ("", "{}", "[]"):
            continue  # Pulumi.yaml's "unset" defaults: every declared key needs one, see there
        if key in SECRET_KEYS and full_key not in secret_keys:
            path = " --path '" + key + ".<NAME>'" if key == "secretConfigVars" else ""
            problems.append(
                f"{full_key}: holds secrets but is stored in plain text; remove it and set "
                f"{'each value' if path else 'it'} with `pulumi config set --secret{path} "
                f"{'' if path else key + ' '}<value>`"
            )
            continue
        if key not in SECRET_KEYS and full_key in secret_keys:
            problems.append(
                f"{full_key}: holds a secret value, but this key is plain (in state and in the app's plain "
                + (
                    "environment); move the value to secretConfigVars with `pulumi config set --secret "
                    "--path 'secretConfigVars.<NAME>' <value>` and remove it here"
                    if key == "configVars"
                    else "text); set it without --secret"
                )
            )
            continue
        try:
            section, field = KEYS[key]
            sections[section][field] = _decode(key, value)
        except ValueError as err:
            problems.append(str(err))

    # Only a target that is not set at all is local: an empty or unknown one is a mistake.
    target = "local" if target_given is None else target_given
    if target not in TARGETS:
        given = "" if target_secret else f" (given {_echo(target)})"
        problems.insert(
            0,
            f"{NAMESPACE}:target: must be one of {', '.join(TARGETS)}{given}; set it with "
            "`pulumi config set target <target>`",
        )
        raise SettingsError(problems)
    types = process_types if process_types is not None else parse_procfile(PROCFILE.read_text())
    sections["app"]["processes"], process_problems = _processes(sections["app"].get("processes"), types)
    problems.extend(process_problems)
    if target != "heroku" and (environ or {}).get("DOCKER_HOST"):
        sections[""]["docker_host"] = (environ or {})["DOCKER_HOST"]
    try:
        settings = _SETTINGS.validate_python(_nest(sections, target))
    except ValidationError as err:
        problems.extend(_describe(e) for e in err.errors())
    problems.extend(_unread_problems(sections, target))
    if problems:
        raise SettingsError(problems)
    return settings


def load() -> LocalSettings | HerokuSettings | ServersSettings | IaasSettings:
    """Parse the running stack's config. HEROKU_API_KEY in the environment stands in for heroku:apiKey."""
    from pulumi.runtime import config as runtime_config  # the engine's view of every key of the stack

    raw = {k: str(v) for k, v in runtime_config.CONFIG.get().items()}
    secret_keys = {k for k in raw if runtime_config.is_config_secret(k)}
    if HEROKU_API_KEY not in raw and os.environ.get("HEROKU_API_KEY"):
        raw[HEROKU_API_KEY] = os.environ["HEROKU_API_KEY"]
        secret_keys.add(HEROKU_API_KEY)
    return parse(raw, secret_keys, os.environ)
