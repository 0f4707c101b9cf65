"""The swarm stack of the `local` and `iaas` targets: render its file (pure), deploy it (pulumi-command).

`render_stack` turns settings, the image reference (by digest) and the names of the docker secrets and configs
into the compose-format file that `docker stack deploy` reads. `SwarmStack` feeds that file on stdin to the
deploy script (components/swarm_deploy.sh), run by the local shell or over SSH on the swarm manager: the file
is an input of the command, so `pulumi preview` shows its diff.

Secrets never appear in the file: it names external docker secrets, which the deploy script creates from
environment variables that Pulumi holds as secrets. Docker secrets and configs are immutable, so their names
end in a digest of their content: a new value makes a new object, and the script removes the unused ones.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_command as command
import yaml

from components.proxy import LOCAL_HOSTS, UPSTREAM_PORT, render_caddyfile
from components.settings import AppSettings, SwarmSettings

NETWORK = "app"
DB_USER = "app"
DB_NAME = "app"
DB_VOLUME = "db-data"
RELEASE_COMMAND = ("python", "manage.py", "migrate", "--noinput")
DEPLOY_SCRIPT = Path(__file__).with_name("swarm_deploy.sh")
# Seconds a stopping web task keeps serving before gunicorn gets SIGTERM, so the proxy has re-read
# `tasks.web` (every second) and sends it nothing new; then gunicorn finishes its in-flight requests.
DRAIN_SECONDS = 5
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

# The web task's entrypoint: every docker secret mounted under an environment variable's name becomes that
# variable (the app reads its settings from the environment only), and SIGTERM is delayed by the drain time.
# `$$` is compose's escape for a literal `$`.
WEB_ENTRYPOINT = """\
set -eu
for file in /run/secrets/*; do
  name=$${file##*/}
  case $$name in [!A-Z_]* | *[!A-Z0-9_]*) continue ;; esac
  if [ -f "$$file" ]; then export "$$name=$$(cat "$$file")"; fi
done
"$$@" &
child=$$!
draining=0
trap 'draining=1; sleep "$${DRAIN_SECONDS:-5}"; kill -TERM "$$child"' TERM INT
status=0
wait "$$child" || status=$$?
if [ "$$draining" = 1 ]; then status=0; wait "$$child" || status=$$?; fi
exit "$$status"
"""


@dataclass(frozen=True)
class StackExtension:
    """Services a caller adds to the stack (e.g. the database backup job), merged in as given.

    `secrets` maps a key the services reference to the docker secret's name (the caller creates it via
    SwarmStackArgs.extra_secrets); `volumes` are extra named volumes.
    """

    services: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    volumes: Sequence[str] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StackSpec:
    """Everything the stack file depends on, as plain values."""

    stack: str
    image: str  # repository@sha256:...
    app: AppSettings
    swarm: SwarmSettings
    # Variable name (SECRET_KEY, DATABASE_URL, the app's secret config vars) -> docker secret name.
    web_secrets: Mapping[str, str]
    caddyfile_config: str
    postgres_password_secret: str | None  # None: a managed database outside the stack
    public_hosts: Sequence[str] = ()  # further host names/addresses the app answers to (VM or balancer IPs)
    extension: StackExtension = field(default_factory=StackExtension)


def object_name(stack: str, key: str, content: str, *, key_material: str | None = None) -> str:
    """The name of a docker secret or config: `<stack>_<key>_<digest of content>`.

    Secrets' digests are keyed (HMAC with key_material, the stack's secret key) so that a name in plain
    state or in the stack file tells nothing about a short or guessable value.
    """
    data = content.encode()
    if key_material is None:
        digest = hashlib.sha256(data).hexdigest()
    else:
        digest = hmac.new(key_material.encode(), data, hashlib.sha256).hexdigest()
    return f"{stack}_{key.lower()}_{digest[:12]}"


def allowed_hosts(app: AppSettings, public_hosts: Sequence[str]) -> list[str]:
    """The domain first (the image's own health probe sends the first entry), then the public addresses, then
    the loopback names the proxy answers health probes on."""
    hosts = [app.domain] if app.domain else []
    for host in (*public_hosts, *LOCAL_HOSTS):
        if host not in hosts:
            hosts.append(host)
    return hosts


def web_environment(spec: StackSpec) -> dict[str, str]:
    """The web service's non-secret environment (also given to the one-off release container)."""
    https = spec.app.domain is not None
    hosts = allowed_hosts(spec.app, spec.public_hosts)
    if https:
        origins = [f"https://{spec.app.domain}"]
    else:
        port = "" if spec.swarm.http_port == 80 else f":{spec.swarm.http_port}"
        origins = [f"http://{host}{port}" for host in hosts]
    env = {
        **spec.app.config_vars,
        "DEBUG": "false",
        "PORT": str(UPSTREAM_PORT),
        "ALLOWED_HOSTS": ",".join(hosts),
        "CSRF_TRUSTED_ORIGINS": ",".join(origins),
        # Caddy sets X-Forwarded-Proto and terminates TLS when there is a domain; without one the site is
        # plain HTTP, where secure-only cookies, HTTPS redirects and HSTS would break it.
        "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
        "SECURE_SSL_REDIRECT": "true" if https else "false",
        "SECURE_COOKIES": "true" if https else "false",
        "DRAIN_SECONDS": str(DRAIN_SECONDS),
    }
    if not https:
        env["SECURE_HSTS_SECONDS"] = "0"
    if "redis" in spec.app.accessories:
        env["REDIS_URL"] = "redis://redis:6379/0"
    return env


def render_stack(spec: StackSpec) -> str:
    """The compose-format stack file (YAML) for `docker stack deploy`.

    Services are reached by DNS round robin (`endpoint_mode: dnsrr`): a service name resolves to its tasks'
    addresses, with no virtual IP, so nothing depends on the kernel's IPVS load balancing (which swarm's
    VIPs and routing mesh need, and which some hosts, this project's CI among them, do not provide).
    """
    swarm = spec.swarm
    secrets: dict[str, Any] = {
        _secret_key(name): {"external": True, "name": docker_name}
        for name, docker_name in spec.web_secrets.items()
    }
    web: dict[str, Any] = {
        "image": spec.image,
        "entrypoint": ["/bin/sh", "-c", WEB_ENTRYPOINT, "web"],
        "command": ["/app/start-web"],
        "environment": web_environment(spec),
        "secrets": [{"source": _secret_key(name), "target": name} for name in sorted(spec.web_secrets)],
        "networks": [NETWORK],
        "healthcheck": {
            # The image's own probe (Python, no curl): GET /healthz with an allowed Host.
            "test": ["CMD", "python", "/app/healthcheck.py"],
            "interval": "5s",
            "timeout": "4s",
            "retries": 3,
            "start_period": "15s",
        },
        "stop_grace_period": f"{DRAIN_SECONDS + 30}s",
        "deploy": {
            "replicas": spec.app.web_instances,
            "endpoint_mode": "dnsrr",
            "labels": {"flightdeck.image": spec.image},
            # A new task runs and passes its health check before an old one stops; a task that fails
            # within the monitor window rolls the whole service back to the previous image.
            "update_config": {
                "parallelism": 1,
                "order": "start-first",
                "failure_action": "rollback",
                "monitor": "10s",
                "max_failure_ratio": 0,
                "delay": "2s",
            },
            "rollback_config": {
                "parallelism": 1,
                "order": "start-first",
                "failure_action": "pause",
                "monitor": "10s",
            },
            "restart_policy": {"condition": "any", "delay": "5s", "window": "30s"},
            "resources": {"limits": {"cpus": str(swarm.web_cpus), "memory": swarm.web_memory}},
        },
    }
    services: dict[str, Any] = {"web": web}
    volumes: dict[str, Any] = {"caddy-data": {}, "caddy-config": {}}

    if spec.postgres_password_secret is not None:
        secrets["postgres_password"] = {"external": True, "name": spec.postgres_password_secret}
        services["db"] = {
            "image": swarm.postgres_image,
            "environment": {
                "POSTGRES_USER": DB_USER,
                "POSTGRES_DB": DB_NAME,
                "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password",
                "PGDATA": "/var/lib/postgresql/data/pgdata",
            },
            "secrets": ["postgres_password"],
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
        volumes[DB_VOLUME] = {}

    if "redis" in spec.app.accessories:
        services["redis"] = {
            "image": swarm.redis_image,
            "networks": [NETWORK],
            "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "5s", "retries": 5},
            "deploy": {
                "replicas": 1,
                "endpoint_mode": "dnsrr",
                "restart_policy": {"condition": "any", "delay": "5s"},
            },
        }

    services["proxy"] = {
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

    for name, service in spec.extension.services.items():
        if name in services:
            raise ValueError(f"extension service {name!r} clashes with a service of the stack")
        services[name] = dict(service)
    for volume in spec.extension.volumes:
        volumes.setdefault(volume, {})
    for key, docker_name in spec.extension.secrets.items():
        secrets[key] = {"external": True, "name": docker_name}

    document = {
        "version": "3.8",
        "services": services,
        "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
        "volumes": volumes,
        "secrets": secrets,
        "configs": {"caddyfile": {"external": True, "name": spec.caddyfile_config}},
    }
    header = f"# Swarm stack {spec.stack}, rendered by flightdeck (components/swarm.py); do not edit.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=1000)


def _secret_key(env_name: str) -> str:
    if not _ENV_NAME.match(env_name):
        raise ValueError(f"{env_name!r} is not an environment variable name")
    return f"env_{env_name.lower()}"


def bundled_database_url(password: str) -> str:
    """DATABASE_URL of the stack's own PostgreSQL service, reached by its service name."""
    return f"postgres://{DB_USER}:{quote(password, safe='')}@db:5432/{DB_NAME}"


def stack_url(app: AppSettings, swarm: SwarmSettings, host: str = "localhost") -> str:
    if app.domain:
        port = "" if swarm.https_port == 443 else f":{swarm.https_port}"
        return f"https://{app.domain}{port}"
    port = "" if swarm.http_port == 80 else f":{swarm.http_port}"
    return f"http://{host}{port}"


def manifest(objects: Sequence[tuple[str, str, str]]) -> str:
    """The deploy script's list of docker objects to create: lines `<secret|config> <KEY> <docker name>`;
    each value is in the environment variable FLIGHTDECK_<SECRET|CONFIG>_<KEY>."""
    for kind, key, name in objects:
        if kind not in ("secret", "config") or not re.match(r"^[A-Za-z0-9_]+$", key) or " " in name:
            raise ValueError(f"bad object {kind} {key} {name}")
    return "".join(f"{kind} {key} {name}\n" for kind, key, name in objects)


DEPLOY_ENV_KEYS = (
    "FLIGHTDECK_STACK",
    "FLIGHTDECK_IMAGE",
    "FLIGHTDECK_OBJECTS",
    "FLIGHTDECK_RELEASE_COMMAND",
    "FLIGHTDECK_RELEASE_ENV",
    "FLIGHTDECK_HEALTH_URL",
    "FLIGHTDECK_TIMEOUT",
)


def deploy_environment(
    *,
    stack: str,
    image: str,
    objects: str,
    release_env: Mapping[str, str],
    health_url: str,
    timeout: int,
    release_command: Sequence[str] = RELEASE_COMMAND,
) -> dict[str, str]:
    """The deploy script's non-secret inputs (the secrets' values are added as FLIGHTDECK_SECRET_<KEY>)."""
    env = {
        "FLIGHTDECK_STACK": stack,
        "FLIGHTDECK_IMAGE": image,
        "FLIGHTDECK_OBJECTS": objects,
        "FLIGHTDECK_RELEASE_COMMAND": " ".join(release_command),
        "FLIGHTDECK_RELEASE_ENV": "".join(f"{k}={v}\n" for k, v in release_env.items()),
        "FLIGHTDECK_HEALTH_URL": health_url,
        "FLIGHTDECK_TIMEOUT": str(timeout),
    }
    return env


def secret_keys(app: AppSettings, *, bundled_database: bool, extension: StackExtension) -> list[str]:
    """The keys of the stack's secret values: the web's are environment variable names."""
    keys = ["SECRET_KEY", "DATABASE_URL"]
    if bundled_database:
        keys.append("postgres_password")
    keys += [var for var in app.secret_config_vars if var not in keys]
    keys += [key for key in extension.secrets if key not in keys]
    return keys


@dataclass(frozen=True)
class Rendered:
    stack_file: str
    environment: dict[str, str]  # the deploy script's non-secret environment
    secrets: dict[str, str]  # FLIGHTDECK_SECRET_<KEY> -> value


def render_deploy(
    *,
    stack: str,
    image: str,
    app: AppSettings,
    swarm: SwarmSettings,
    values: Mapping[str, str],
    public_hosts: Sequence[str] = (),
    extension: StackExtension = StackExtension(),
    timeout: int = 300,
) -> Rendered:
    """Everything the deploy script gets, from plain values: the stack file (stdin), its environment and
    the secrets' values. `values` holds SECRET_KEY, DATABASE_URL, postgres_password for the bundled
    database, the app's secret config vars and the extension's secrets (see secret_keys)."""
    bundled = "postgres_password" in values
    expected = secret_keys(app, bundled_database=bundled, extension=extension)
    if sorted(values) != sorted(expected):
        raise ValueError(f"secret values for {sorted(values)}; the stack needs {sorted(expected)}")
    caddyfile = render_caddyfile(domain=app.domain)
    caddy_name = object_name(stack, "caddyfile", caddyfile)
    names = {
        key: object_name(stack, key, value, key_material=values["SECRET_KEY"])
        for key, value in values.items()
    }
    spec = StackSpec(
        stack=stack,
        image=image,
        app=app,
        swarm=swarm,
        web_secrets={
            key: names[key] for key in expected if _ENV_NAME.match(key) and key not in extension.secrets
        },
        caddyfile_config=caddy_name,
        postgres_password_secret=names.get("postgres_password"),
        public_hosts=public_hosts,
        extension=StackExtension(
            services=extension.services,
            volumes=extension.volumes,
            secrets={key: names[key] for key in extension.secrets},
        ),
    )
    objects = manifest([("config", "CADDYFILE", caddy_name), *(("secret", k, names[k]) for k in expected)])
    environment = deploy_environment(
        stack=stack,
        image=image,
        objects=objects,
        release_env=web_environment(spec),
        health_url=f"http://127.0.0.1:{swarm.http_port}/healthz",
        timeout=timeout,
    )
    environment["FLIGHTDECK_CONFIG_CADDYFILE"] = caddyfile
    return Rendered(
        stack_file=render_stack(spec),
        environment=environment,
        secrets={f"FLIGHTDECK_SECRET_{key}": values[key] for key in expected},
    )


def _get(mapping: Mapping[str, str], key: str) -> str:
    return mapping[key]


def deploy_script() -> str:
    return DEPLOY_SCRIPT.read_text()


@dataclass(frozen=True)
class SshTarget:
    """The swarm manager to deploy on over SSH. Its sshd must accept the deploy's environment
    (`AcceptEnv FLIGHTDECK_*`). Without a private key the SSH agent (SSH_AUTH_SOCK) of whoever runs
    `pulumi up` authenticates."""

    host: pulumi.Input[str]
    private_key: pulumi.Input[str] | None = None
    user: str = "root"


def script_command(
    name: str,
    script: str,
    *,
    stdin: pulumi.Input[str],
    environment: Mapping[str, pulumi.Input[str]],
    ssh: SshTarget | None,
    opts: pulumi.ResourceOptions,
) -> pulumi.CustomResource:
    """A deploy script as a pulumi-command resource: on this machine, or over SSH on the manager. The
    same text runs on create and update; on delete with FLIGHTDECK_ACTION=delete."""
    common: dict[str, Any] = {
        "create": script,
        "update": script,
        "delete": "FLIGHTDECK_ACTION=delete\n" + script,
        "stdin": stdin,
        "environment": environment,
        "add_previous_output_in_env": False,
        "opts": opts,
    }
    resource: pulumi.CustomResource
    if ssh is None:
        resource = command.local.Command(name, interpreter=["/bin/sh", "-c"], **common)
    else:
        connection = command.remote.ConnectionArgs(
            host=ssh.host,
            user=ssh.user,
            # None: the SSH agent of whoever runs `pulumi up`.
            private_key=None if ssh.private_key is None else pulumi.Output.secret(ssh.private_key),
        )
        resource = command.remote.Command(name, connection=connection, **common)
    return resource


@dataclass(frozen=True)
class SwarmStackArgs:
    app: AppSettings
    swarm: SwarmSettings
    image: pulumi.Input[str]  # repository@sha256:...
    secret_key: pulumi.Input[str]
    # The bundled PostgreSQL's password; or the URL of a managed database instead.
    database_password: pulumi.Input[str] | None = None
    database_url: pulumi.Input[str] | None = None
    ssh: SshTarget | None = None  # None: the local Docker engine
    public_hosts: pulumi.Input[Sequence[str]] = ()
    extension: StackExtension = field(default_factory=StackExtension)
    # The values of extension.secrets' keys.
    extra_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    stack: str | None = None  # the swarm stack's name; default: the app's name
    timeout: int = 300


class SwarmStack(pulumi.ComponentResource):
    """The app's swarm stack, deployed with `docker stack deploy` on the local engine or over SSH."""

    stack_file: pulumi.Output[str]
    url: pulumi.Output[str]
    image: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:swarm:SwarmStack", name, None, opts)
        if (args.database_password is None) == (args.database_url is None):
            raise ValueError("give exactly one of database_password (bundled) and database_url (managed)")
        if set(args.extension.secrets) != set(args.extra_secrets):
            raise ValueError("extension.secrets and extra_secrets must name the same keys")
        stack = args.stack or args.app.name

        inputs: dict[str, pulumi.Input[str]] = {"SECRET_KEY": args.secret_key}
        if args.database_url is not None:
            inputs["DATABASE_URL"] = args.database_url
        else:
            password = pulumi.Output.from_input(args.database_password).apply(str)
            inputs["DATABASE_URL"] = password.apply(bundled_database_url)
            inputs["postgres_password"] = password
        for var, secret in args.app.secret_config_vars.items():
            inputs[var] = secret.get_secret_value()
        inputs.update(args.extra_secrets)
        values = {key: pulumi.Output.secret(value) for key, value in inputs.items()}

        rendered = pulumi.Output.all(args.image, args.public_hosts, *values.values()).apply(
            lambda v: render_deploy(
                stack=stack,
                image=str(v[0]),
                app=args.app,
                swarm=args.swarm,
                values=dict(zip(values, (str(x) for x in v[2:]), strict=True)),
                public_hosts=[str(h) for h in v[1]],
                extension=args.extension,
                timeout=args.timeout,
            )
        )
        # The file and the script's plain environment name the secrets only by a keyed digest of their
        # values: they are not secret, which keeps their diff readable in `pulumi preview`.
        self.stack_file = pulumi.Output.unsecret(rendered.apply(lambda r: r.stack_file))
        plain = pulumi.Output.unsecret(rendered.apply(lambda r: r.environment))
        environment: dict[str, pulumi.Input[str]] = {
            key: plain.apply(functools.partial(_get, key=key))
            for key in (*DEPLOY_ENV_KEYS, "FLIGHTDECK_CONFIG_CADDYFILE")
        }
        environment.update({f"FLIGHTDECK_SECRET_{key}": value for key, value in values.items()})

        deploy = script_command(
            f"{name}-deploy",
            deploy_script(),
            stdin=self.stack_file,
            environment=environment,
            ssh=args.ssh,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The script exits 0 only when every web task runs this image and /healthz answers through the
        # proxy: once the command has run, this is the image that serves.
        self.image = pulumi.Output.all(deploy.id, args.image).apply(lambda v: str(v[1]))
        host: pulumi.Input[str] = args.ssh.host if args.ssh else "localhost"
        self.url = pulumi.Output.from_input(host).apply(lambda h: stack_url(args.app, args.swarm, str(h)))
        self.register_outputs({"stack_file": self.stack_file, "url": self.url, "image": self.image})
