"""The swarm stack of the `local`, `servers` and `iaas` targets, rendered from plain values (pure).

`plan_stack` turns settings, the image reference (by digest) and the secrets' values into what the
SwarmDeployment resource applies: the compose-format stack file `docker stack deploy` reads, the docker
secrets and configs it names, and the release job (migrations) that runs before traffic moves.

Secrets never appear in the file: it names external docker secrets, mounted as files under /run/secrets/
named after the environment variable they become (the image's entrypoint exports them). Docker secrets and
configs are immutable, so their names end in a digest of their content (keyed for secrets, so a name says
nothing about a short value): a new value is a new object, and the deployment removes the unused ones.

Every string in the file is escaped for compose interpolation (`$` -> `$$`): `docker stack deploy` would
otherwise expand `$VAR` from the deploying process's environment. And every string that is not a plain
lower-case word is double-quoted: the docker CLI reads the file with Go's YAML libraries, which take an
unquoted `y`, `1e5` or `0o17` for a boolean or a number (and then hand the service `true`, `100000` or `15`).
No environment value is empty: compose gives an empty one the deploying process's value of that name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import yaml

from contract import APP_PORT, ENV_NAME, START
from render.caddyfile import LOCAL_HOSTS, render_caddyfile
from settings import DEPLOY_ENVIRONMENT, AppSettings, SwarmSettings

NETWORK = "app"
DB_SERVICE = "db"
DB_USER = "app"
DB_NAME = "app"
DB_VOLUME = "db-data"
POSTGRES_PASSWORD = "postgres_password"  # noqa: S105 (the key of a secret, not one)
# Seconds a stopping web task keeps serving before gunicorn gets SIGTERM, so the proxy has re-read
# `tasks.web` (every second) and sends it nothing new; then gunicorn finishes its in-flight requests.
DRAIN_SECONDS = 5
MAX_OBJECT_NAME = 64  # swarm's limit on secret and config names
# A swarm stack's name (it prefixes every service, network, secret and config, and heads the file).
STACK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Strings written unquoted: lower-case words that every YAML reader takes for strings (anything else, and
# the words YAML 1.1 reads as booleans or null, is double-quoted).
_PLAIN = re.compile(r"[a-z][a-z0-9_-]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


@dataclass(frozen=True)
class Process:
    """An app process type (a Procfile entry) run as a service of the stack."""

    name: str
    replicas: int
    cpus: str
    memory: str

    @property
    def serves_http(self) -> bool:
        return self.name == "web"


@dataclass(frozen=True)
class StackExtension:
    """Services a target adds to the stack (e.g. the database backup job), merged in as given.
    `secrets` are the keys of further secret values those services mount (by their key as file name)."""

    services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    volumes: Sequence[str] = ()
    secrets: Sequence[str] = ()


@dataclass(frozen=True)
class DockerObject:
    kind: Literal["secret", "config"]
    key: str  # the value's key (an environment variable name, or a file's)
    name: str  # the docker object's name: <stack>_<key>_<digest>


@dataclass(frozen=True)
class ReleaseJob:
    """The release phase as a one-off swarm job: the image's `release` process type, with the web's exact
    environment and secrets, on the stack's network."""

    command: tuple[str, ...]
    environment: Mapping[str, str]
    secrets: Mapping[str, str]  # file name under /run/secrets -> value key
    network: str


@dataclass(frozen=True)
class DatabaseRotation:
    """How a new database password reaches the running database (it only reads its password at init)."""

    service: str
    user: str
    name: str
    password_key: str


@dataclass(frozen=True)
class StackPlan:
    stack_file: str
    objects: tuple[DockerObject, ...]
    configs: Mapping[str, str]  # key -> content of each docker config (plain text)
    release: ReleaseJob
    database: DatabaseRotation | None
    app_services: tuple[str, ...]  # services that run the app image (scaled to 0 before a first migration)


def check_stack_name(stack: str) -> str:
    if STACK_NAME.fullmatch(stack) is None:
        raise ValueError(f"{stack!r} is not a swarm stack name (1-63 of a-z, 0-9, _ and -)")
    return stack


def object_name(stack: str, key: str, content: str, *, key_material: str | None = None) -> str:
    """`<stack>_<key>_<digest of content>`; keyed (HMAC) when key_material is given. A key too long for
    swarm's 64 characters is cut short and ends in a digest of itself (`aws_secret_acces3f9a0c`), so two keys
    never share a name."""
    check_stack_name(stack)
    if re.fullmatch(r"[A-Za-z0-9_.-]+", key) is None:
        raise ValueError(f"{key!r} cannot be part of a docker object name")
    data = content.encode()
    if key_material is None:
        digest = hashlib.sha256(data).hexdigest()
    else:
        digest = hmac.new(key_material.encode(), data, hashlib.sha256).hexdigest()
    part = key.lower()
    room = MAX_OBJECT_NAME - len(stack) - len("__") - 12
    if len(part) > room and room >= 8:
        part = part[: room - 6] + hashlib.sha256(key.encode()).hexdigest()[:6]
    name = f"{stack}_{part}_{digest[:12]}"
    if len(name) > MAX_OBJECT_NAME:
        raise ValueError(f"docker object name {name} is longer than {MAX_OBJECT_NAME} characters")
    return name


class _ComposeDumper(yaml.SafeDumper):
    """Quotes every string that a YAML 1.1 or 1.2 reader could take for something else; never aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    plain = _PLAIN.fullmatch(value) is not None and value not in _YAML_WORDS
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=None if plain else '"')


_ComposeDumper.add_representer(str, _represent_str)


def compose_yaml(document: Mapping[str, Any]) -> str:
    """A compose document as YAML, its strings as they are (escape them first: `render_compose`). For a
    document read back from a rendered file and changed (its strings are escaped already)."""
    return yaml.dump(
        dict(document), Dumper=_ComposeDumper, sort_keys=False, width=2**31 - 1, allow_unicode=False
    )


def check_environment(document: Mapping[str, Any]) -> None:
    """Refuse an environment value that `docker stack deploy` would take from its own environment: an empty
    one of a name the deploying CLI has (settings.DEPLOY_ENVIRONMENT), or a missing one (None)."""
    for name, service in (document.get("services") or {}).items():
        for var, value in (service.get("environment") or {}).items():
            if value is None or (value == "" and var in DEPLOY_ENVIRONMENT):
                raise ValueError(
                    f"service {name}: environment variable {var} is empty; docker stack deploy would give it "
                    "the deploying environment's value"
                )


def render_compose(document: Mapping[str, Any], *, header: str) -> str:
    """The stack file: a comment line, then the document with every string escaped and quoted as needed."""
    if re.fullmatch(r"[ -~]*", header) is None:  # YAML also breaks lines at \x85, \u2028 and \u2029
        raise ValueError(f"{header!r}: a stack file's header is one comment line of printable ASCII")
    check_environment(document)
    return f"# {header}\n" + compose_yaml(escape_interpolation(document))


def escape_interpolation(value: Any) -> Any:
    """Every string of a compose document with `$` doubled, so the file means exactly what it says."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_interpolation(v) for v in value]
    return value


def allowed_hosts(app: AppSettings, public_hosts: Sequence[str]) -> list[str]:
    """The domain first (the image's own health probe sends the first entry), then the public addresses, then
    the loopback names the proxy answers health probes on."""
    hosts = [app.domain] if app.domain else []
    for host in (*public_hosts, *LOCAL_HOSTS):
        if host not in hosts:
            hosts.append(host)
    return hosts


def app_environment(app: AppSettings, swarm: SwarmSettings, public_hosts: Sequence[str]) -> dict[str, str]:
    """The non-secret environment of every app process (and of the release job): the stack's configVars,
    then what flightdeck sets (settings refuse configVars that would collide with those)."""
    https = app.domain is not None
    hosts = allowed_hosts(app, public_hosts)
    if https:
        origins = [f"https://{app.domain}"]
    else:
        port = "" if swarm.http_port == 80 else f":{swarm.http_port}"
        origins = [f"http://{host}{port}" for host in hosts]
    env = {
        **app.config_vars,
        "DEBUG": "false",
        "PORT": str(APP_PORT),
        "ALLOWED_HOSTS": ",".join(hosts),
        "CSRF_TRUSTED_ORIGINS": ",".join(origins),
        # Caddy sets X-Forwarded-Proto and terminates TLS when there is a domain; without one the site is
        # plain HTTP, where secure-only cookies, HTTPS redirects and HSTS would break it.
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECURE_SSL_REDIRECT": "true" if https else "false",
        "SECURE_COOKIES": "true" if https else "false",
    }
    if not https:
        env["SECURE_HSTS_SECONDS"] = "0"
    if "redis" in app.accessories:
        env["REDIS_URL"] = "redis://redis:6379/0"
    return env


def bundled_database_url(password: str) -> str:
    """DATABASE_URL of the stack's own PostgreSQL service, reached by its service name."""
    return f"postgres://{DB_USER}:{quote(password, safe='')}@{DB_SERVICE}:5432/{DB_NAME}"


def stack_url(app: AppSettings, swarm: SwarmSettings, host: str = "localhost") -> str:
    if app.domain:
        port = "" if swarm.https_port == 443 else f":{swarm.https_port}"
        return f"https://{app.domain}{port}"
    port = "" if swarm.http_port == 80 else f":{swarm.http_port}"
    return f"http://{host}{port}"


def secret_ref(key: str) -> str:
    return f"s_{key.lower()}"


def _process_service(
    process: Process, image: str, environment: Mapping[str, str], secrets: Sequence[str]
) -> dict[str, Any]:
    env = {**environment, "PROCESS_TYPE": process.name}
    if process.serves_http:
        env["DRAIN_SECONDS"] = str(DRAIN_SECONDS)
        # The image's own probe (Python, no curl): GET /healthz with an allowed Host.
        check = ["CMD", "python", "/app/healthcheck.py"]
        grace = DRAIN_SECONDS + 30
    else:
        check = ["CMD", "python", "/app/healthcheck.py", process.name]
        grace = 60  # a task in flight may finish; an unfinished one goes back to the queue
    service: dict[str, Any] = {
        "image": image,
        "command": [START, process.name],
        "environment": env,
        "secrets": [{"source": secret_ref(key), "target": key} for key in secrets],
        "networks": [NETWORK],
        "healthcheck": {
            "test": check,
            "interval": "5s",
            "timeout": "4s",
            "retries": 3,
            "start_period": "15s",
        },
        "stop_grace_period": f"{grace}s",
        "deploy": {
            "replicas": process.replicas,
            "endpoint_mode": "dnsrr",
            # A new task runs and passes its health check before an old one stops; a task that fails
            # within the monitor window rolls the whole service back to the previous image.
            "update_config": {
                "parallelism": 1,
                "order": "start-first" if process.serves_http else "stop-first",
                "failure_action": "rollback",
                "monitor": "10s",
                "max_failure_ratio": 0,
                "delay": "2s",
            },
            "rollback_config": {
                "parallelism": 1,
                "order": "start-first" if process.serves_http else "stop-first",
                "failure_action": "pause",
                "monitor": "10s",
            },
            "restart_policy": {"condition": "any", "delay": "5s", "window": "30s"},
            "resources": {"limits": {"cpus": process.cpus, "memory": process.memory}},
        },
    }
    return service


def _database_service(swarm: SwarmSettings) -> dict[str, Any]:
    return {
        "image": swarm.postgres_image,
        "environment": {
            "POSTGRES_USER": DB_USER,
            "POSTGRES_DB": DB_NAME,
            "POSTGRES_PASSWORD_FILE": f"/run/secrets/{POSTGRES_PASSWORD}",
            "PGDATA": "/var/lib/postgresql/data/pgdata",
        },
        "secrets": [{"source": secret_ref(POSTGRES_PASSWORD), "target": POSTGRES_PASSWORD}],
        "volumes": [f"{DB_VOLUME}:/var/lib/postgresql/data"],
        "networks": [NETWORK],
        "healthcheck": {
            "test": ["CMD", "pg_isready", "--username", DB_USER, "--dbname", DB_NAME],
            "interval": "5s",
            "timeout": "4s",
            "retries": 5,
            "start_period": "30s",
        },
        "stop_grace_period": "60s",
        "deploy": {
            # The volume lives on one node: keep the database on the manager, never two at once.
            "replicas": 1,
            "endpoint_mode": "dnsrr",
            "placement": {"constraints": ["node.role == manager"]},
            "update_config": {"order": "stop-first", "failure_action": "pause"},
            "restart_policy": {"condition": "any", "delay": "5s"},
        },
    }


def _redis_service(swarm: SwarmSettings) -> dict[str, Any]:
    return {
        "image": swarm.redis_image,
        "networks": [NETWORK],
        "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "5s", "retries": 5},
        "deploy": {
            "replicas": 1,
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "any", "delay": "5s"},
        },
    }


def _proxy_service(swarm: SwarmSettings) -> dict[str, Any]:
    return {
        "image": swarm.proxy_image,
        "configs": [{"source": "caddyfile", "target": "/etc/caddy/Caddyfile"}],
        # Host-mode ports: each node's proxy listens on the node itself (no routing mesh).
        "ports": [
            {"target": 80, "published": swarm.http_port, "protocol": "tcp", "mode": "host"},
            {"target": 443, "published": swarm.https_port, "protocol": "tcp", "mode": "host"},
        ],
        "volumes": ["caddy-data:/data", "caddy-config:/config"],
        "networks": [NETWORK],
        "deploy": {
            # One proxy per node (a load balancer in front spreads over the nodes); a host port cannot be
            # held by two tasks, so a proxy update stops the old task first.
            "mode": "global",
            "update_config": {"order": "stop-first", "failure_action": "rollback"},
            "restart_policy": {"condition": "any", "delay": "2s"},
        },
    }


@dataclass(frozen=True)
class StackSpec:
    """Everything the app's stack depends on, as plain values."""

    stack: str
    image: str  # repository@sha256:...
    app: AppSettings
    swarm: SwarmSettings
    processes: tuple[Process, ...]
    values: Mapping[str, str]  # secret values by key: SECRET_KEY, DATABASE_URL, the app's, the extension's
    bundled_database: bool  # the stack runs its own PostgreSQL (values hold postgres_password)
    public_hosts: Sequence[str] = ()  # further host names/addresses the app answers to
    extension: StackExtension = field(default_factory=StackExtension)
    app_files: Sequence[str] = ()  # keys of values mounted into the app's services as files of that name


def secret_keys(
    app: AppSettings, *, bundled_database: bool, extension: StackExtension, app_files: Sequence[str] = ()
) -> list[str]:
    """The keys of a stack's secret values, in the order the stack names them."""
    keys = ["SECRET_KEY", "DATABASE_URL"]
    if bundled_database:
        keys.append(POSTGRES_PASSWORD)
    keys += [var for var in app.secret_config_vars if var not in keys]
    keys += [key for key in (*extension.secrets, *app_files) if key not in keys]
    return keys


def _app_mounts(expected: Sequence[str], spec: StackSpec) -> list[str]:
    """What the app's services mount: every secret named like an environment variable (the entrypoint
    exports it), and the files asked for."""
    return [
        k
        for k in expected
        if (ENV_NAME.fullmatch(k) and k not in spec.extension.secrets) or k in spec.app_files
    ]


def plan_stack(spec: StackSpec) -> StackPlan:
    """The stack file, its docker objects and its release job."""
    expected = secret_keys(
        spec.app, bundled_database=spec.bundled_database, extension=spec.extension, app_files=spec.app_files
    )
    if sorted(spec.values) != sorted(expected):
        raise ValueError(f"secret values for {sorted(spec.values)}; the stack needs {sorted(expected)}")
    key_material = spec.values["SECRET_KEY"]
    names = {
        key: object_name(spec.stack, key, value, key_material=key_material)
        for key, value in spec.values.items()
    }
    caddyfile = render_caddyfile(domain=spec.app.domain)
    caddy_name = object_name(spec.stack, "caddyfile", caddyfile)
    app_secrets = _app_mounts(expected, spec)
    environment = app_environment(spec.app, spec.swarm, spec.public_hosts)

    services: dict[str, Any] = {
        p.name: _process_service(p, spec.image, environment, app_secrets) for p in spec.processes
    }
    volumes: dict[str, Any] = {"caddy-data": {}, "caddy-config": {}}
    if spec.bundled_database:
        services[DB_SERVICE] = _database_service(spec.swarm)
        volumes[DB_VOLUME] = {}
    if "redis" in spec.app.accessories:
        services["redis"] = _redis_service(spec.swarm)
    services["proxy"] = _proxy_service(spec.swarm)
    for name, service in spec.extension.services.items():
        if name in services:
            raise ValueError(f"extension service {name!r} clashes with a service of the stack")
        services[name] = dict(service)
    for volume in spec.extension.volumes:
        volumes.setdefault(volume, {})

    document = {
        "version": "3.8",
        "services": services,
        "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
        "volumes": volumes,
        "secrets": {secret_ref(key): {"external": True, "name": names[key]} for key in expected},
        "configs": {"caddyfile": {"external": True, "name": caddy_name}},
    }
    header = f"Swarm stack {check_stack_name(spec.stack)}, rendered by flightdeck (render/stack_file.py); "
    header += "do not edit."
    stack_file = render_compose(document, header=header)
    objects = (
        DockerObject("config", "caddyfile", caddy_name),
        *(DockerObject("secret", key, names[key]) for key in expected),
    )
    release = ReleaseJob(
        command=(START, "release"),
        environment={**environment, "PROCESS_TYPE": "release"},
        secrets={key: key for key in app_secrets},
        network=f"{spec.stack}_{NETWORK}",
    )
    database = (
        DatabaseRotation(DB_SERVICE, DB_USER, DB_NAME, POSTGRES_PASSWORD) if spec.bundled_database else None
    )
    return StackPlan(
        stack_file=stack_file,
        objects=objects,
        configs={"caddyfile": caddyfile},
        release=release,
        database=database,
        app_services=tuple(p.name for p in spec.processes),
    )


BACKUPS = (
    "backups"  # the bucket's folder for backups (one per app); the registry keeps its data under registry/
)
BUCKET_CREDENTIALS = "bucket_credentials"  # the key of the bucket's credentials file among the secrets


def backup_service(
    image: str,
    *,
    app: str,
    schedule: str,
    bucket: str,
    endpoint: str,
    region: str,
    retention_days: int | None = None,
) -> dict[str, Any]:
    """The backup job (backup/backup.py) against the stack's own PostgreSQL, uploading to the bucket. The
    database password and the bucket key arrive as docker secrets; nothing secret is in the file. With
    retention_days (a bucket without lifecycle rules of its own), the job writes its expiry rule at start."""
    expiry = {} if retention_days is None else {"BACKUP_RETENTION_DAYS": str(retention_days)}
    return {
        "image": image,
        "command": ["schedule"],
        "environment": {
            "PGHOST": DB_SERVICE,
            "PGPORT": "5432",
            "PGDATABASE": DB_NAME,
            "PGUSER": DB_USER,
            "PGPASSWORD_FILE": f"/run/secrets/{POSTGRES_PASSWORD}",
            "BACKUP_SCHEDULE": schedule,
            "BACKUP_PREFIX": f"{BACKUPS}/{app}/",  # stacks sharing a bucket keep their backups apart
            "BACKUP_BUCKET": bucket,
            "BACKUP_S3_ENDPOINT": endpoint,
            "BACKUP_S3_REGION": region,
            "AWS_SHARED_CREDENTIALS_FILE": f"/run/secrets/{BUCKET_CREDENTIALS}",
            **expiry,
        },
        "secrets": [
            {"source": secret_ref(POSTGRES_PASSWORD), "target": POSTGRES_PASSWORD},
            {"source": secret_ref(BUCKET_CREDENTIALS), "target": BUCKET_CREDENTIALS},
        ],
        "networks": [NETWORK],
        # A dump in progress is abandoned on stop (nothing half-written is uploaded); let a short one end.
        "stop_grace_period": "30s",
        "deploy": {
            "replicas": 1,
            "restart_policy": {"condition": "any", "delay": "10s"},
            "update_config": {"order": "stop-first"},
            "resources": {"limits": {"memory": "256M"}},
        },
    }
