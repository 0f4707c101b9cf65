"""Pulumi mocks for the Linode components: what Linode and flightdeck's generators would answer.

Each VM (`…-vm-<n>`) gets its own addresses (203.0.113.n public, 192.168.140.n private); the managed
database a real PEM CA (base64, as Linode's `ca_cert`); each host key comes from its provider's own
`create`, which the Pulumi mocks would otherwise skip. Everything else is as the shared mocks answer it.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from providers.generated_ssh_key import GeneratedSshKeyProvider
from settings import LinodeOptions
from tests.support.pulumi_mocks import Declared, RecordingMocks, install_mocks, use_mocks

INSTANCE = "linode:index/instance:Instance"
FIREWALL = "linode:index/firewall:Firewall"
VPC = "linode:index/vpc:Vpc"
SUBNET = "linode:index/vpcSubnet:VpcSubnet"
SSH_KEY = "linode:index/sshKey:SshKey"
BALANCER = "linode:index/nodeBalancer:NodeBalancer"
BALANCER_CONFIG = "linode:index/nodeBalancerConfig:NodeBalancerConfig"
BALANCER_NODE = "linode:index/nodeBalancerNode:NodeBalancerNode"
BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
BUCKET_KEY = "linode:index/objectStorageKey:ObjectStorageKey"
DATABASE = "linode:index/databasePostgresqlV2:DatabasePostgresqlV2"
HOST_KEY = "pulumi-python:dynamic/flightdeck:GeneratedSshKey"
SECRET = "pulumi-python:dynamic/flightdeck:GeneratedSecret"
DATABASE_HOST = "a1-mock.g2a.akamaidb.net"
DATABASE_PORT = 24035
DATABASE_USER = "akmadmin"
DATABASE_PASSWORD = "mock/db:password@0000"  # URL-special characters, to show they are escaped
_VM = re.compile(r"-vm-(?P<n>[0-9]+)$")


def public(n: int) -> str:
    return f"203.0.113.{n}"


def private(n: int) -> str:
    return f"192.168.140.{n}"


def _ca_pem() -> str:
    """A self-signed CA certificate, as a managed database's would be."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mock database CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


CA_PEM = _ca_pem()


@dataclass
class LinodeMocks(RecordingMocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        if args.typ == INSTANCE and (match := _VM.search(args.name)):
            n = int(match["n"])
            outputs.update(ipv4s=[private(n), public(n)], private_ip_address=private(n))
        elif args.typ == DATABASE:
            outputs.update(
                host_primary=DATABASE_HOST,
                port=DATABASE_PORT,
                root_username=DATABASE_USER,
                root_password=DATABASE_PASSWORD,
                ca_cert=base64.b64encode(CA_PEM.encode()).decode(),
            )
        elif args.typ == HOST_KEY:
            created = GeneratedSshKeyProvider().create(dict(args.inputs))
            resource_id, outputs = created.id, {**outputs, **(created.outs or {})}
        return resource_id, outputs


MOCKS = LinodeMocks()
T = TypeVar("T")


def use_linode_mocks(stack: str = "iaas", *, preview: bool = False) -> LinodeMocks:
    """Install these mocks (clearing earlier records) and return them."""
    MOCKS.resources.clear()
    install_mocks(MOCKS, stack, preview=preview)
    return MOCKS


@dataclass
class Run(Generic[T]):
    """A component declared under the mocks: what it declared, with which options, and its outputs' values."""

    component: T
    resources: list[Declared]
    options: dict[str, pulumi.ResourceOptions]  # by resource name
    values: dict[str, Any] = field(default_factory=dict)
    secret: dict[str, bool] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Declared:
        (found,) = self.of_type(typ)
        return found

    def named(self, name: str) -> Declared:
        (found,) = [r for r in self.resources if r.name == name]
        return found


def run(
    build: Callable[[pulumi.ResourceOptions], T],
    outputs: Callable[[T], Mapping[str, pulumi.Input[Any]]] = lambda _: {},
    *,
    stack: str = "iaas",
) -> Run[T]:
    """Declare what build makes (handed options that record every resource's options) under these mocks and
    resolve the outputs named; then hand the shared mocks back (mocks are process-wide)."""
    mocks = use_linode_mocks(stack)
    options: dict[str, pulumi.ResourceOptions] = {}
    captured: dict[str, Any] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[args.name] = args.opts

    async def resolve(component: T) -> None:
        named = {k: pulumi.Output.from_input(v) for k, v in outputs(component).items()}
        captured["values"] = {k: await o.future() for k, o in named.items()}
        captured["secret"] = {k: await o.is_secret() for k, o in named.items()}

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[None]:
        captured["component"] = component = build(pulumi.ResourceOptions(transformations=[record]))
        return pulumi.Output.from_input(resolve(component))

    try:
        program()
        return Run(
            captured["component"], list(mocks.resources), options, captured["values"], captured["secret"]
        )
    finally:
        use_mocks()


# The deploy user's key of Pulumi.iaas.yaml.
SSH_PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqQ4mFdIDy1v0cGbRZsJ5Cq9o3ZpkcVf2pTtZ3yS9x2 deploy@flightdeck"
)


def linode_options(**overrides: Any) -> LinodeOptions:
    """The Linode settings of Pulumi.iaas.yaml, with overrides (LinodeOptions field names)."""
    given: dict[str, Any] = {
        "region": "eu-central",
        "instance_type": "g6-standard-1",
        "instance_count": 3,
        "backups": True,
        "ssh_public_key": SSH_PUBLIC_KEY,
        "ssh_allow_list": ["203.0.113.0/24"],
    }
    return LinodeOptions(**{**given, **overrides})
