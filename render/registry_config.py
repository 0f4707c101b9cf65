"""The private image registry of the swarm targets: CNCF distribution (the official `registry:2` image)
storing its blobs in the stack's Object Storage bucket, behind Caddy's automatic TLS at `registry.<domain>`.

Nothing secret is written into the stack file. The registry reads three swarm secrets:
- `registry_config`: its config.yml (holds the http secret, which signs upload state between requests),
- `registry_htpasswd`: one bcrypt htpasswd line (distribution 2.x accepts only bcrypt entries),
- `bucket_credentials`: an AWS shared-credentials file with the bucket's key; the S3 driver falls back to
  the AWS credential chain when the config names no key, so the key stays out of config.yml as well.
The renderers are pure; `PrivateRegistry` makes the credentials (Pulumi secrets) and renders the secret files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random

PORT = 5000
# The debug listener serves /debug/health (503 once the storage driver fails its checks); loopback only.
DEBUG_PORT = 5001
ROOT_DIRECTORY = "/registry"  # the bucket's prefix for registry data; backups live under backups/
SECRETS_DIR = "/run/secrets"
# Names of swarm secrets (not secrets themselves).
CONFIG_SECRET = "registry_config"  # noqa: S105
HTPASSWD_SECRET = "registry_htpasswd"  # noqa: S105
BUCKET_CREDENTIALS_SECRET = "bucket_credentials"  # noqa: S105
SERVICE = "registry"
USERNAME = "flightdeck"
_BCRYPT = re.compile(r"^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$")
_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class S3Storage:
    """An S3-compatible bucket: Linode Object Storage (`<cluster>.linodeobjects.com`) or any S3 API."""

    bucket: str
    endpoint: str  # host[:port] or a URL; a bare host means https
    region: str = "us-east-1"  # Linode ignores it; the driver needs some region when an endpoint is given

    @property
    def endpoint_url(self) -> str:
        return self.endpoint if "://" in self.endpoint else f"https://{self.endpoint}"


def registry_config(
    *,
    http_secret: str,
    s3: S3Storage | None,
    port: int = PORT,
    debug_port: int = DEBUG_PORT,
) -> str:
    """config.yml of the registry. With s3 the data lives in the bucket (and survives the container);
    without, on the filesystem (the local target's volume).

    No `http.host`: the registry builds its upload URLs from each request (Host, and X-Forwarded-Proto/-Host
    from Caddy), so the same registry answers at 127.0.0.1:5000 on the nodes and at registry.<domain>.

    JSON is written: it is valid YAML, and every string is quoted so no value can change a type."""
    storage: dict[str, Any]
    if s3 is None:
        storage = {"filesystem": {"rootdirectory": "/var/lib/registry"}}
    else:
        storage = {
            "s3": {
                "bucket": s3.bucket,
                "region": s3.region,
                "regionendpoint": s3.endpoint_url,
                "secure": s3.endpoint_url.startswith("https://"),
                "v4auth": True,
                "rootdirectory": ROOT_DIRECTORY,
                # Keys deliberately absent: the AWS credential chain reads AWS_SHARED_CREDENTIALS_FILE.
            },
            # The manifest cache lives in the container: a fresh container re-reads everything from S3.
            "cache": {"blobdescriptor": "inmemory"},
        }
    storage["delete"] = {"enabled": True}  # lets the garbage collector reclaim untagged blobs
    http: dict[str, Any] = {
        "addr": f":{port}",
        "secret": http_secret,
        "debug": {"addr": f"127.0.0.1:{debug_port}"},
        "headers": {"X-Content-Type-Options": ["nosniff"]},
    }
    config = {
        "version": "0.1",
        "log": {"level": "info", "fields": {"service": SERVICE}},
        "storage": storage,
        "auth": {"htpasswd": {"realm": "flightdeck-registry", "path": f"{SECRETS_DIR}/{HTPASSWD_SECRET}"}},
        "http": http,
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return json.dumps(config, indent=2) + "\n"


def htpasswd_line(username: str, bcrypt_hash: str) -> str:
    """One htpasswd entry. The registry refuses anything but bcrypt, so other hashes are refused here."""
    if not _USERNAME.match(username):
        raise ValueError(f"{username!r} is not a registry user name (1-64 of A-Z, a-z, 0-9, . _ -)")
    if not _BCRYPT.match(bcrypt_hash):
        raise ValueError("the registry accepts only bcrypt hashes ($2a$, $2b$ or $2y$)")
    return f"{username}:{bcrypt_hash}\n"


def bucket_credentials_file(access_key: str, secret_key: str) -> str:
    """An AWS shared-credentials file: read by the registry's S3 driver and by the backup job's boto3."""
    for value in (access_key, secret_key):
        if not value or any(c in value for c in "\r\n"):
            raise ValueError("bucket keys must be non-empty single-line strings")
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def registry_service(
    image: str,
    *,
    networks: list[str],
    publish_port: int | None = None,
    uses_bucket: bool = True,
    per_node: bool = False,
    debug_port: int = DEBUG_PORT,
) -> dict[str, Any]:
    """The registry's service in the swarm stack file. The proxy reaches it as `registry:5000` on networks;
    publish_port also publishes it on the node itself (mode host), for engines that push to 127.0.0.1.
    per_node runs one replica on every node (all reading the same bucket, sharing the http secret), so
    that with publish_port every node pulls from its own 127.0.0.1:<port>; the firewall keeps the port
    closed from outside.

    `serve <config>` is the command both the official image (its entrypoint prefixes `registry`) and the
    Debian-based stand-in understand. The health check uses wget, which the official (Alpine) image has;
    debug_port must match the config's."""
    secrets: list[dict[str, Any]] = [
        {"source": CONFIG_SECRET, "target": CONFIG_SECRET, "mode": 0o400},
        {"source": HTPASSWD_SECRET, "target": HTPASSWD_SECRET, "mode": 0o400},
    ]
    environment: dict[str, str] = {}
    volumes: list[str] = []
    if uses_bucket:
        secrets.append(
            {"source": BUCKET_CREDENTIALS_SECRET, "target": BUCKET_CREDENTIALS_SECRET, "mode": 0o400}
        )
        environment["AWS_SHARED_CREDENTIALS_FILE"] = f"{SECRETS_DIR}/{BUCKET_CREDENTIALS_SECRET}"
    else:
        volumes.append("registry-data:/var/lib/registry")
    service: dict[str, Any] = {
        "image": image,
        "command": ["serve", f"{SECRETS_DIR}/{CONFIG_SECRET}"],
        "secrets": secrets,
        "networks": list(networks),
        "healthcheck": {
            "test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{debug_port}/debug/health"],
            "interval": "15s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "20s",
        },
        "deploy": {
            "restart_policy": {"condition": "any", "delay": "5s"},
            # A host port cannot be held by two tasks on one node: the old task stops first.
            "update_config": {"order": "stop-first", "failure_action": "rollback"},
        },
    }
    if per_node:
        if not uses_bucket:
            raise ValueError("registry replicas on several nodes must share a bucket, not a volume each")
        service["deploy"]["mode"] = "global"
    else:
        service["deploy"]["replicas"] = 1
    if environment:
        service["environment"] = environment
    if volumes:
        service["volumes"] = volumes
    if publish_port is not None:
        service["ports"] = [{"target": PORT, "published": publish_port, "protocol": "tcp", "mode": "host"}]
    return service


def caddy_site(public_host: str, upstream: str = f"{SERVICE}:{PORT}") -> str:
    """The Caddyfile site block for registry.<domain>: automatic TLS, everything proxied to the registry.

    No body size limit (layers are large), no compression (blobs are already compressed and digested);
    Caddy sends X-Forwarded-Proto/-Host, which the registry uses for its upload URLs."""
    return f"{public_host} {{\n\treverse_proxy {upstream} {{\n\t\tflush_interval -1\n\t}}\n}}\n"


def registry_host(domain: str | None, local_port: int = PORT) -> str:
    """The address clients log in to: registry.<domain> (TLS at the proxy), else the local engine's own
    127.0.0.1:<port>, which Docker trusts over plain HTTP."""
    return f"registry.{domain}" if domain else f"127.0.0.1:{local_port}"


@dataclass(frozen=True)
class PrivateRegistryArgs:
    domain: str | None  # the app's domain: the registry answers at registry.<domain>; None: 127.0.0.1
    # The bucket holding the registry's data; None stores it on the node's volume (local target).
    bucket: pulumi.Input[str] | None = None
    endpoint: pulumi.Input[str] | None = None  # <region>-1.linodeobjects.com
    region: pulumi.Input[str] = "us-east-1"
    username: str = USERNAME
    local_port: int = PORT


class PrivateRegistry(pulumi.ComponentResource):
    """Credentials and secret files of the private registry.

    Outputs: address, username, password (secret), htpasswd (secret), config (secret: holds the http
    secret) and secret_files: swarm secret name -> content (secret) for the stack's `secrets:`."""

    address: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    htpasswd: pulumi.Output[str]
    config: pulumi.Output[str]
    secret_files: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: PrivateRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:registry:PrivateRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if (args.bucket is None) != (args.endpoint is None):
            raise ValueError("PrivateRegistry: give both bucket and endpoint, or neither")
        # The provider keeps the bcrypt hash in the state: it changes only with the password, so a
        # re-run neither re-salts the htpasswd file nor redeploys the registry.
        password = random.RandomPassword(f"{name}-password", length=32, special=False, opts=child)
        http_secret = random.RandomPassword(f"{name}-http-secret", length=48, special=False, opts=child)
        host = registry_host(args.domain, args.local_port)

        self.address = pulumi.Output.from_input(host)
        self.username = pulumi.Output.from_input(args.username)
        self.password = pulumi.Output.secret(password.result)
        self.htpasswd = pulumi.Output.secret(
            password.bcrypt_hash.apply(lambda h: htpasswd_line(args.username, h))
        )
        if args.bucket is not None and args.endpoint is not None:
            storage: pulumi.Output[S3Storage | None] = pulumi.Output.all(
                args.bucket, args.endpoint, args.region
            ).apply(lambda v: S3Storage(bucket=v[0], endpoint=v[1], region=v[2]))
        else:
            storage = pulumi.Output.from_input(None)
        self.config = pulumi.Output.secret(
            pulumi.Output.all(http_secret.result, storage).apply(
                lambda v: registry_config(http_secret=v[0], s3=v[1])
            )
        )
        self.secret_files = pulumi.Output.secret(
            pulumi.Output.all(self.config, self.htpasswd).apply(
                lambda v: {CONFIG_SECRET: v[0], HTPASSWD_SECRET: v[1]}
            )
        )
        self.register_outputs(
            {
                "address": self.address,
                "username": self.username,
                "password": self.password,
                "htpasswd": self.htpasswd,
                "config": self.config,
                "secret_files": self.secret_files,
            }
        )
