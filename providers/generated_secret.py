"""Generated secrets (SECRET_KEY, database and registry passwords, host keys' seeds): what pulumi-random's
RandomPassword did, as a dynamic provider the CLI built here can run.

A value is drawn once, at create, from the operating system's CSPRNG (`secrets`), and lives in the state as
a secret. It never changes on its own: diff reports a change only when the recipe (length, alphabet, bcrypt)
changes, which replaces it; `pulumi up --replace <urn>` draws a new one on purpose. With `bcrypt`, the
bcrypt hash of the value (what the registry's htpasswd wants) is drawn once too, so a re-run neither
re-salts nor redeploys anything.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any, Literal

import bcrypt
import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
)

Alphabet = Literal["alphanumeric", "urlsafe"]
ALPHABETS: dict[str, str] = {
    "alphanumeric": string.ascii_letters + string.digits,
    # Safe unquoted in URLs, shell words, YAML and environment files.
    "urlsafe": string.ascii_letters + string.digits + "-_",
}
RECIPE = ("length", "alphabet", "bcrypt")
BCRYPT_ROUNDS = 12


def draw(length: int, alphabet: str) -> str:
    pool = ALPHABETS[alphabet]
    return "".join(secrets.choice(pool) for _ in range(length))


class GeneratedSecretProvider(ResourceProvider):
    serialize_as_secret_always = False  # the provider holds no secret; its outputs are marked secret

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        length = news.get("length")
        if not isinstance(length, int | float) or not 16 <= int(length) <= 256:
            failures.append(
                CheckFailure("length", f"a generated secret has 16-256 characters (given {length!r})")
            )
        if news.get("alphabet") not in ALPHABETS:
            failures.append(CheckFailure("alphabet", f"one of {', '.join(ALPHABETS)}"))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        value = draw(int(props["length"]), str(props["alphabet"]))
        outs: dict[str, Any] = {key: props[key] for key in RECIPE}
        outs["value"] = value
        outs["bcrypt_hash"] = (
            bcrypt.hashpw(value.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode() if props["bcrypt"] else ""
        )
        return CreateResult(secrets.token_hex(8), outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in RECIPE if _same(olds.get(key)) != _same(news.get(key))]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)  # nothing outside the state to compare with

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # the value only ever existed in the state


def _same(value: Any) -> Any:
    """Numbers come back from the state as floats."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


@dataclass(frozen=True)
class GeneratedSecretArgs:
    length: int = 48
    alphabet: Alphabet = "alphanumeric"
    bcrypt: bool = False  # also output bcrypt_hash


class GeneratedSecret(Resource, module="flightdeck", name="GeneratedSecret"):
    """A random value, stable in the state, secret; new only when replaced."""

    value: pulumi.Output[str]
    bcrypt_hash: pulumi.Output[str]

    def __init__(
        self, name: str, args: GeneratedSecretArgs | None = None, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = args or GeneratedSecretArgs()
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["value", "bcrypt_hash"])
        super().__init__(
            GeneratedSecretProvider(),
            name,
            {
                "length": args.length,
                "alphabet": args.alphabet,
                "bcrypt": args.bcrypt,
                "value": None,
                "bcrypt_hash": None,
            },
            pulumi.ResourceOptions.merge(secret_outputs, opts),
        )
