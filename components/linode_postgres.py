"""LinodePostgres: Linode's managed PostgreSQL 16, reached over TLS that verifies the server.

The app's DATABASE_URL asks for `sslmode=verify-full` (the certificate chains to the database's own CA and
names the host) with `sslrootcert` at the file the swarm mounts that CA at. dj-database-url hands the URL's
query options to psycopg as they are. The CA certificate comes from the database resource (`ca_cert`,
base64 of the PEM); it is output as PEM text for the swarm to mount. Only the VMs' public addresses may
connect (the allow-list); Linode backs the database up itself.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pulumi
import pulumi_linode as linode

from render.linode_labels import label

ENGINE = "postgresql/16"
DATABASE = "defaultdb"  # the database Linode creates
# The docker secret holding the CA, and where the app's containers find it (swarm mounts secrets there).
CA_FILE = "database_ca.crt"
CA_PATH = f"/run/secrets/{CA_FILE}"

_HOST = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_PEM = re.compile(r"(?:-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\s*)+")


def database_url(user: str, password: str, host: str, port: int) -> str:
    """postgres://user:password@host:port/defaultdb?sslmode=verify-full&sslrootcert=<CA_PATH>, every part
    escaped for its place in the URL."""
    if _HOST.fullmatch(host) is None:
        raise ValueError(f"the managed database's host {host!r} is not a DNS name")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"the managed database's port {port!r} is not a TCP port")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    query = urlencode({"sslmode": "verify-full", "sslrootcert": CA_PATH}, safe="/")
    return f"postgres://{credentials}@{host}:{int(port)}/{DATABASE}?{query}"


def ca_pem(ca_cert: str) -> str:
    """The PEM text of the database's CA from the resource's base64 `ca_cert`."""
    try:
        text = base64.b64decode(ca_cert, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError) as err:
        raise ValueError(
            f"the managed database's ca_cert is not base64 of a PEM certificate ({err})"
        ) from err
    if _PEM.fullmatch(text) is None:
        raise ValueError("the managed database's ca_cert does not hold a PEM certificate")
    return text


def _url(parts: list[Any]) -> str:
    user, password, host, port = parts
    return database_url(str(user), str(password), str(host), int(port))


@dataclass(frozen=True)
class LinodePostgresArgs:
    app_name: str
    region: str
    type: str
    cluster_size: int
    allowed_ips: pulumi.Input[Sequence[str]]  # the VMs' public IPv4 addresses
    # Refuse to delete the database, and keep it when the stack is destroyed (flightdeck:protectData).
    protect_data: bool = False


class LinodePostgres(pulumi.ComponentResource):
    """Outputs: database_url and ca_certificate (PEM), both secret; host, port."""

    database_url: pulumi.Output[str]
    ca_certificate: pulumi.Output[str]
    host: pulumi.Output[str]
    port: pulumi.Output[int]

    def __init__(
        self, name: str, args: LinodePostgresArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:linode:LinodePostgres", name, None, opts)
        database = linode.DatabasePostgresqlV2(
            f"{name}-db",
            label=label(args.app_name, "db"),
            engine_id=ENGINE,
            region=args.region,
            type=args.type,
            cluster_size=args.cluster_size,
            allow_lists=pulumi.Output.from_input(args.allowed_ips).apply(
                lambda ips: [f"{ip}/32" for ip in ips]
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
            ),
        )
        self.host = database.host_primary
        self.port = database.port
        self.database_url = pulumi.Output.secret(
            pulumi.Output.all(
                database.root_username, database.root_password, database.host_primary, database.port
            ).apply(_url)
        )
        self.ca_certificate = pulumi.Output.secret(database.ca_cert.apply(ca_pem))
        self.register_outputs(
            {
                "database_url": self.database_url,
                "ca_certificate": self.ca_certificate,
                "host": self.host,
                "port": self.port,
            }
        )
