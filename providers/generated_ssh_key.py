"""Generated SSH host keys: each Linode VM's ed25519 host key, made here so the deploy can pin it before the
VM exists (StrictHostKeyChecking yes from the first connection; no trust on first use).

The key is drawn once, at create, with `cryptography` (the operating system's CSPRNG). The private half lives
in the state as a secret and goes to the VM in its user-data; the public half is plain, for known_hosts. It
never changes on its own: diff reports a change only when the recipe (the algorithm) changes, which
replaces it; `pulumi up --replace <urn>` draws a new one on purpose. The id is the key's SHA256 fingerprint,
as `ssh-keygen -l` prints it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
)

Algorithm = Literal["ed25519"]
ALGORITHMS = ("ed25519",)
RECIPE = ("algorithm",)


def fingerprint(public_key: str) -> str:
    """`SHA256:<base64, unpadded>` of an OpenSSH public key line."""
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def generate_ed25519() -> tuple[str, str]:
    """(private key in OpenSSH's PEM form, `ssh-ed25519 <base64>` public key line)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


class GeneratedSshKeyProvider(ResourceProvider):
    serialize_as_secret_always = False  # the provider holds no secret; private_key is marked secret

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if news.get("algorithm") not in ALGORITHMS:
            failures.append(CheckFailure("algorithm", f"one of {', '.join(ALGORITHMS)}"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        private, public = generate_ed25519()
        outs = {key: props[key] for key in RECIPE}
        outs.update(private_key=private, public_key=public)
        return CreateResult(fingerprint(public), outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in RECIPE if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)  # nothing outside the state to compare with

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # the key only ever existed in the state (and on the VM it was given to)


@dataclass(frozen=True)
class GeneratedSshKeyArgs:
    algorithm: Algorithm = "ed25519"


class GeneratedSshKey(Resource, module="flightdeck", name="GeneratedSshKey"):
    """An SSH key pair, stable in the state; the private key secret, the public key plain."""

    private_key: pulumi.Output[str]
    public_key: pulumi.Output[str]

    def __init__(
        self, name: str, args: GeneratedSshKeyArgs | None = None, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = args or GeneratedSshKeyArgs()
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["private_key"])
        super().__init__(
            GeneratedSshKeyProvider(),
            name,
            {"algorithm": args.algorithm, "private_key": None, "public_key": None},
            pulumi.ResourceOptions.merge(secret_outputs, opts),
        )
