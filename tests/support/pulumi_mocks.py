"""Pulumi mocks that record every resource a program declares.

Mocks are process-wide in the Pulumi SDK: a test module calls `use_mocks()` once (module-level fixture) and
reads `MOCKS.resources` after its `@pulumi.runtime.test` function has resolved its outputs. Each record also
carries its URN, its parent's and the URNs it depends on (the mock monitor sees them; the mocks' own hook does
not), so a test can walk the component tree and the order of a deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pulumi.runtime.mocks import MockMonitor


@dataclass
class Declared:
    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    urn: str = ""  # filled in by RecordingMonitor once the registration is answered
    parent: str = ""  # the parent's URN ("" for a resource at the stack's root)
    dependencies: frozenset[str] = (
        frozenset()
    )  # URNs it waits for: depends_on, and those its inputs come from


GENERATED_SECRET = "pulumi-python:dynamic/flightdeck:GeneratedSecret"
GENERATED_SSH_KEY = "pulumi-python:dynamic/flightdeck:GeneratedSshKey"
SWARM_DEPLOYMENT = "pulumi-python:dynamic/flightdeck:SwarmDeployment"
IMAGE_COPY = "pulumi-python:dynamic/flightdeck:ImageCopy"
MOCK_SECRET = "mock-generated-secret-0123456789"


def _fixed_host_key() -> dict[str, str]:
    """A fixed ed25519 key in the GeneratedSshKey provider's output form (the iaas VMs' host keys)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return {"private_key": private, "public_key": public.decode()}


HOST_KEY = _fixed_host_key()

# Outputs a provider computes that the programs read; mocks echo inputs and add these.
COMPUTED: dict[str, dict[str, Any]] = {
    GENERATED_SSH_KEY: HOST_KEY,
    GENERATED_SECRET: {
        "value": MOCK_SECRET,
        # bcrypt (cost 4) of that value, as the provider computes it (the registry's htpasswd line)
        "bcrypt_hash": "$2a$04$CduUoGf2uCIOIjUXZgcK0ee8nXnM3HzIeia8D5.Bb.hdXNaYR8vjS",
    },
    "docker-build:index:Image": {
        "digest": "sha256:" + "ab" * 32,
        "ref": "registry.example/flightdeck/web@sha256:" + "ab" * 32,
    },
    "linode:index/instance:Instance": {
        "ipv4s": ["192.168.130.10", "203.0.113.10"],
        "private_ip_address": "192.168.130.10",
    },
    "linode:index/nodeBalancer:NodeBalancer": {"ipv4": "203.0.113.200", "hostname": "nb.example.net"},
    "linode:index/objectStorageBucket:ObjectStorageBucket": {"s3_endpoint": "us-east-1.linodeobjects.com"},
    "linode:index/objectStorageKey:ObjectStorageKey": {
        "access_key": "MOCKACCESSKEY0000000",
        "secret_key": "mock-secret-key-0000000000000000000000",
    },
    "linode:index/databasePostgresqlV2:DatabasePostgresqlV2": {
        "host_primary": "a1-mock.g2a.akamaidb.net",
        "port": 24035,
        "root_username": "akmadmin",
        "root_password": "mock-db-password-0000",
        "ca_cert": "bW9jay1jYQ==",
    },
    "heroku:app/app:App": {
        "webUrl": "https://flightdeck-mock-0a1b2c3d4e5f.herokuapp.com/",
        "herokuHostname": "flightdeck-mock-0a1b2c3d4e5f.herokuapp.com",
        "uuid": "00000000-0000-4000-8000-000000000001",
    },
    "heroku:domain/domain:Domain": {"cname": "mock-target-0a1b.herokudns.com"},
    "pulumi-python:dynamic/heroku:ContainerRelease": {
        "image_id": "sha256:" + "cd" * 32,
        "release_id": "mock-release-id",
        "version": 2,
        "status": "succeeded",
    },
}
# Providers whose ids are numbers that programs pass on as ints (e.g. Linode's firewall `linodes`).
NUMERIC_IDS = ("linode:",)


def derived(kind: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs the flightdeck providers compute from their inputs: the image a deployment serves, the ref of
    a copied image."""
    if kind == SWARM_DEPLOYMENT and inputs.get("app_services"):
        document = yaml.safe_load(inputs["stack_file"])
        image = document["services"][inputs["app_services"][0]]["image"]
        return {"image": image, "last_release": {"number": 1, "image": image}}
    if kind == IMAGE_COPY:
        digest = str(inputs["source"]).rsplit("@", 1)[1]
        return {"ref": f"{inputs['repository']}@{digest}", "digest": digest}
    return {}


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    resources: list[Declared] = field(default_factory=list)
    computed: Mapping[str, dict[str, Any]] = field(default_factory=lambda: COMPUTED)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs), args.provider))
        outputs = {**args.inputs, **self.computed.get(args.typ, {}), **derived(args.typ, args.inputs)}
        numeric = args.typ.startswith(NUMERIC_IDS)
        return (str(len(self.resources)) if numeric else f"{args.name}-id"), outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def registered(self, typ: str, name: str, urn: str, parent: str, dependencies: frozenset[str]) -> None:
        for declared in self.resources:
            if declared.type == typ and declared.name == name and not declared.urn:
                declared.urn, declared.parent, declared.dependencies = urn, parent, dependencies
                return

    def by_urn(self, urn: str) -> Declared:
        [declared] = [r for r in self.resources if r.urn == urn]
        return declared

    def children(self, parent: Declared) -> list[Declared]:
        return [r for r in self.resources if r.parent == parent.urn]

    def waits_for(self, resource: Declared, other: Declared) -> bool:
        """Whether resource is created only once other (and everything under it) is: it, or an ancestor of it
        (a child's registration waits for its parent's, which waits for the parent's dependencies), depends on
        other or on a resource under it, directly or through a chain of dependencies."""
        under = {r.urn for r in self.descendants(other)} | {other.urn}
        seen: set[str] = set()
        todo = [resource.urn]
        while todo:
            urn = todo.pop()
            if urn in seen or urn not in self._urns():
                continue
            seen.add(urn)
            declared = self.by_urn(urn)
            if declared.dependencies & under:
                return True
            todo.extend(declared.dependencies)
            todo.append(declared.parent)
        return False

    def _urns(self) -> set[str]:
        return {r.urn for r in self.resources}

    def descendants(self, parent: Declared) -> list[Declared]:
        found = self.children(parent)
        return found + [d for child in found for d in self.descendants(child)]

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.type == typ]

    def named(self, name: str) -> Declared:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} resources named {name!r}: {[r.name for r in self.resources]}")
        return matches[0]


_register_resource = MockMonitor.RegisterResource


def _register_and_tell(self: MockMonitor, request: Any) -> Any:
    """The SDK's mock monitor's RegisterResource, also telling recording mocks each registration's URN, parent
    and dependencies (whoever installs the mocks: use_mocks, or another helper's set_mocks)."""
    response = _register_resource(self, request)
    tell = getattr(self.mocks, "registered", None)
    if tell is not None and request.type != "pulumi:pulumi:Stack":
        dependencies = {
            *request.dependencies,
            *(u for d in request.propertyDependencies.values() for u in d.urns),
        }
        tell(request.type, request.name, response.urn, request.parent, frozenset(dependencies))
    return response


MockMonitor.RegisterResource = _register_and_tell  # type: ignore[method-assign]


MOCKS = RecordingMocks()


def install_mocks(mocks: pulumi.runtime.Mocks, stack: str, *, preview: bool) -> None:
    """pulumi.runtime.set_mocks, on a current event loop: it builds the root Stack with asyncio.Future(), and
    an asyncio.run() earlier in this thread (the app's tests run a procrastinate worker in-process) leaves the
    main thread with none."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(mocks, project="flightdeck", stack=stack, preview=preview)


def use_mocks(stack: str = "test", *, preview: bool = False) -> RecordingMocks:
    """Install the recording mocks (clearing earlier records) and return them."""
    MOCKS.resources.clear()
    install_mocks(MOCKS, stack, preview=preview)
    return MOCKS
