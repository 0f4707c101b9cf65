"""The private registry of the servers targets (pure renderers): CNCF distribution, storing its blobs in the
stack's S3 bucket, one task on every node, each node pulling from its own 127.0.0.1:5000.

Nothing secret is written into the stack file. The registry reads three swarm secrets:
- `registry_config`: its config.yml (holds the http secret, which signs upload state between requests);
- `registry_htpasswd`: one bcrypt htpasswd line (distribution 2.x accepts only bcrypt entries);
- `bucket_credentials`: an AWS shared-credentials file with the bucket's key; the S3 driver falls back to
  the AWS credential chain when the config names no key, so the key stays out of config.yml as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract import REGISTRY_PORT
from render.stack_file import DockerObject, check_stack_name, object_name, render_compose

# The debug listener serves /debug/health (503 once the storage driver fails its checks); loopback only.
DEBUG_PORT = 5001
ROOT_DIRECTORY = "/registry"  # the bucket's prefix for registry data; backups live under backups/
SECRETS_DIR = "/run/secrets"
# Names of swarm secrets (not secrets themselves).
CONFIG_SECRET = "registry_config"  # noqa: S105
HTPASSWD_SECRET = "registry_htpasswd"  # noqa: S105
BUCKET_CREDENTIALS_SECRET = "bucket_credentials"  # noqa: S105
SERVICE = "registry"
NETWORK = "registry"
USERNAME = "flightdeck"
_SHORT = {CONFIG_SECRET: "config", HTPASSWD_SECRET: "htpasswd", BUCKET_CREDENTIALS_SECRET: "bucket"}
_BCRYPT = re.compile(r"\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}")
_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KEY = re.compile(r"[!-~]+")  # printable ASCII, no spaces: what S3 keys are made of


@dataclass(frozen=True)
class S3Storage:
    """An S3-compatible bucket: Linode Object Storage, moto, or any S3 API."""

    bucket: str
    endpoint: str  # a URL, e.g. https://us-east-1.linodeobjects.com
    region: str = "us-east-1"  # Linode ignores it; the driver needs some region when an endpoint is given


def registry_config(*, http_secret: str, s3: S3Storage, port: int = REGISTRY_PORT) -> str:
    """config.yml of the registry, its data in the bucket (so it survives every container and node).

    No `http.host`: the registry builds its upload URLs from each request, so the same registry answers at
    127.0.0.1:5000 on every node and through an SSH forward. JSON is written: it is valid YAML, and every
    string is quoted so no value can change a type."""
    config = {
        "version": "0.1",
        "log": {"level": "info", "fields": {"service": SERVICE}},
        "storage": {
            "s3": {
                "bucket": s3.bucket,
                "region": s3.region,
                "regionendpoint": s3.endpoint,
                "secure": s3.endpoint.startswith("https://"),
                "v4auth": True,
                "rootdirectory": ROOT_DIRECTORY,
                # Keys deliberately absent: the AWS credential chain reads AWS_SHARED_CREDENTIALS_FILE.
            },
            # The manifest cache lives in the container: a fresh container re-reads everything from S3.
            "cache": {"blobdescriptor": "inmemory"},
            "delete": {"enabled": True},  # lets old releases' manifests go, and the collector reclaim blobs
        },
        "auth": {"htpasswd": {"realm": "flightdeck-registry", "path": f"{SECRETS_DIR}/{HTPASSWD_SECRET}"}},
        "http": {
            "addr": f":{port}",
            "secret": http_secret,
            "debug": {"addr": f"127.0.0.1:{DEBUG_PORT}"},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return json.dumps(config, indent=2) + "\n"


def htpasswd_line(username: str, bcrypt_hash: str) -> str:
    """One htpasswd entry. The registry refuses anything but bcrypt, so other hashes are refused here."""
    if _USERNAME.fullmatch(username) is None:
        raise ValueError(f"{username!r} is not a registry user name (1-64 of A-Z, a-z, 0-9, . _ -)")
    if _BCRYPT.fullmatch(bcrypt_hash) is None:
        raise ValueError("the registry accepts only bcrypt hashes ($2a$, $2b$ or $2y$)")
    return f"{username}:{bcrypt_hash}\n"


def bucket_credentials_file(access_key: str, secret_key: str) -> str:
    """An AWS shared-credentials file: read by the registry's S3 driver and by the backup job's boto3."""
    for value in (access_key, secret_key):
        if _KEY.fullmatch(value) is None:
            raise ValueError("bucket keys must be non-empty single-line strings of printable characters")
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def registry_service(image: str, *, port: int = REGISTRY_PORT) -> dict[str, Any]:
    """The registry's service: one task on every node (all reading the same bucket, sharing the http
    secret), published on each node's port, so every node pulls from its own 127.0.0.1:<port>; the
    firewall keeps the port closed from outside.

    `serve <config>` is the command both the official image (its entrypoint prefixes `registry`) and the
    Debian-based stand-in understand. The health check uses wget, which the official (Alpine) image has."""
    return {
        "image": image,
        "command": ["serve", f"{SECRETS_DIR}/{CONFIG_SECRET}"],
        "secrets": [
            {"source": key, "target": key, "mode": 0o400}
            for key in (CONFIG_SECRET, HTPASSWD_SECRET, BUCKET_CREDENTIALS_SECRET)
        ],
        "environment": {"AWS_SHARED_CREDENTIALS_FILE": f"{SECRETS_DIR}/{BUCKET_CREDENTIALS_SECRET}"},
        "networks": [NETWORK],
        "ports": [{"target": port, "published": port, "protocol": "tcp", "mode": "host"}],
        "healthcheck": {
            "test": ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{DEBUG_PORT}/debug/health"],
            "interval": "15s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "20s",
        },
        "deploy": {
            "mode": "global",
            "restart_policy": {"condition": "any", "delay": "5s"},
            # A host port cannot be held by two tasks on one node: the old task stops first.
            "update_config": {"order": "stop-first", "failure_action": "rollback"},
        },
    }


@dataclass(frozen=True)
class RegistryPlan:
    stack_file: str
    objects: tuple[DockerObject, ...]


def plan_registry_stack(
    *, stack: str, image: str, values: Mapping[str, str], key_material: str, port: int = REGISTRY_PORT
) -> RegistryPlan:
    """The registry's stack file and its secrets; values holds the three secret files by their names."""
    if set(values) != set(_SHORT):
        raise ValueError(f"registry secrets {sorted(values)}; the registry needs {sorted(_SHORT)}")
    keys = tuple(_SHORT)
    # Short keys keep `<stack>_<key>_<digest>` within swarm's 64 characters for the longest app name.
    names = {key: object_name(stack, _SHORT[key], values[key], key_material=key_material) for key in keys}
    document = {
        "version": "3.8",
        "services": {SERVICE: registry_service(image, port=port)},
        "networks": {NETWORK: {"driver": "overlay"}},
        "secrets": {key: {"external": True, "name": names[key]} for key in keys},
    }
    header = f"Swarm stack {check_stack_name(stack)}, rendered by flightdeck (render/registry_config.py); "
    header += "do not edit."
    stack_file = render_compose(document, header=header)
    return RegistryPlan(stack_file, tuple(DockerObject("secret", key, names[key]) for key in keys))
