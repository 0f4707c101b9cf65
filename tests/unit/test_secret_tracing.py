"""Every secret of a stack, traced through the whole program under mocks (what `pulumi up --stack <stack>`
declares, for every stack file): it may reach a resource only as a secret input, and a stack output only as a
secret output. Plain inputs and outputs are searched for it as it is, in any encoding that keeps its letters
(JSON, YAML, URL quoting, `$$` escaping), and inside anything base64 (cloud-init user data, pickled dynamic
providers).

Traced: the stack's secretConfigVars values, heroku:apiKey, the bucket's keys, and what providers generate
(the mocks give every GeneratedSecret MOCK_SECRET, and compute the other providers' secret outputs).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import string
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settings import HEROKU_API_KEY, NAMESPACE, load, parse
from targets import deploy
from tests.support.pulumi_mocks import (
    COMPUTED,
    GENERATED_SECRET,
    HOST_KEY,
    MOCK_SECRET,
    RecordingMocks,
    install_mocks,
)
from tests.support.secrets import is_secret, reveal
from tests.support.stacks import STACKS, stack_config

OBJECT_STORAGE_KEY = "linode:index/objectStorageKey:ObjectStorageKey"
MANAGED_DATABASE = "linode:index/databasePostgresqlV2:DatabasePostgresqlV2"


MOCKS = RecordingMocks(computed=COMPUTED)
# What the mocks hand out as providers' secret outputs.
GENERATED = {
    # The private key's base64 body, line by line as PEM wraps it (any one line found is a leak).
    **{
        f"generated host key (line {i})": line
        for i, line in enumerate(HOST_KEY["private_key"].splitlines()[1:-1])
    },
    "GeneratedSecret value": MOCK_SECRET,
    "GeneratedSecret bcrypt hash": str(COMPUTED[GENERATED_SECRET]["bcrypt_hash"]),
    "Object Storage secret key": str(COMPUTED[OBJECT_STORAGE_KEY]["secret_key"]),
    "managed database password": str(COMPUTED[MANAGED_DATABASE]["root_password"]),
}
_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]{16,}")


def plain_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every string (keys included) outside a secret wrapper."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield f"{path}.{key}[key]", str(key)
            yield from plain_strings(child, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from plain_strings(child, f"{path}[{index}]")


def readings(text: str) -> Iterator[str]:
    """The text, and what base64 inside it decodes to."""
    yield text
    for chunk in _BASE64.findall(text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(chunk + "=" * (-len(chunk) % 4)).decode("latin-1")
            except (binascii.Error, ValueError):
                continue


def leaks(value: Any, traced: dict[str, str], where: str) -> list[str]:
    found = []
    for path, text in plain_strings(value):
        for reading in readings(text):
            found += [f"{name} in plain {where}{path}" for name, core in traced.items() if core in reading]
    return found


def run_program(
    stack: str, raw: dict[str, str], secret_keys: set[str]
) -> tuple[RecordingMocks, dict[str, Any]]:
    """Declare the stack's resources under the recording mocks; return them and the stack outputs as
    (value, is_secret)."""
    pulumi.runtime.set_all_config(raw, sorted(secret_keys))
    mocks = MOCKS
    mocks.resources.clear()
    install_mocks(mocks, stack, preview=False)
    recorded: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        exports = deploy(load()).exports()
        names = sorted(exports)
        outputs = [pulumi.Output.from_input(exports[name]) for name in names]

        async def collect() -> dict[str, Any]:
            return {n: (await o.future(), await o.is_secret()) for n, o in zip(names, outputs, strict=True)}

        collected: Any = asyncio.ensure_future(collect())
        return pulumi.Output.from_input(collected).apply(recorded.update)

    program()
    return mocks, recorded


core = st.text(string.ascii_letters + string.digits, min_size=20, max_size=24).map("TRACE".__add__)
# What may follow a secret's core: anything a secret holds (quotes, `$`, line breaks, unicode) for the app's
# variables; printable ASCII for keys that are one line.
any_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=12)
one_line = st.text(string.printable.strip().replace(" ", ""), max_size=12)


def stack_with_secrets(
    stack: str, cores: dict[str, str], tails: dict[str, str]
) -> tuple[dict[str, str], set[str]]:
    raw, secret_keys = stack_config(stack)
    values = {
        "STRIPE_KEY": cores["STRIPE_KEY"] + tails["STRIPE_KEY"],
        "SENTRY_DSN": f"https://{cores['SENTRY_DSN']}@sentry.example.com/1",
    }
    raw[f"{NAMESPACE}:secretConfigVars"] = json.dumps(values)
    secret_keys.add(f"{NAMESPACE}:secretConfigVars")
    if HEROKU_API_KEY in raw:
        raw[HEROKU_API_KEY] = cores["heroku:apiKey"] + tails["one line"]
    for key in ("bucketAccessKey", "bucketSecretKey"):
        if f"{NAMESPACE}:{key}" in secret_keys:
            raw[f"{NAMESPACE}:{key}"] = cores[key] + tails["one line"]
    return raw, secret_keys


def check_stack(stack: str, cores: dict[str, str], tails: dict[str, str]) -> int:
    raw, secret_keys = stack_with_secrets(stack, cores, tails)
    target = parse(raw, secret_keys).target
    mocks, outputs = run_program(stack, raw, secret_keys)
    traced = {**GENERATED, **{f"the {name} secret": value for name, value in cores.items()}}
    found = []
    for resource in mocks.resources:
        found += leaks(resource.inputs, traced, f"input of {resource.type} {resource.name}: ")
    for name, (value, secret) in outputs.items():
        if not secret:
            found += leaks(value, traced, f"stack output {name}")
    assert not found, "\n".join(found)
    # And the trace is not vacuous: what the target uses is there, as secret inputs.
    revealed = [reveal(resource.inputs) for resource in mocks.resources]
    seen = {name for name, _ in (leak.split(" in plain ", 1) for leak in leaks(revealed, traced, ""))}
    expected = {"the STRIPE_KEY secret", "the SENTRY_DSN secret", "GeneratedSecret value"}
    expected |= {"heroku": {"the heroku:apiKey secret"}, "servers": {"the bucketAccessKey secret"}}.get(
        target, set()
    )
    expected |= {"generated host key (line 1)"} if target == "iaas" else set()
    assert expected <= seen, expected - seen
    return len(mocks.resources)


CORES = {
    name: f"TRACE{name.replace(':', '').replace('_', '')}0123456789abcdef"
    for name in ("STRIPE_KEY", "SENTRY_DSN", "heroku:apiKey", "bucketAccessKey", "bucketSecretKey")
}


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_reaches_a_plain_input_or_output(stack: str) -> None:
    declared = check_stack(stack, CORES, {"STRIPE_KEY": "$x \"'\n", "one line": "/+="})
    assert declared > 3


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(STACKS),
    st.fixed_dictionaries({name: core for name in CORES}),
    st.fixed_dictionaries({"STRIPE_KEY": any_text, "one line": one_line}),
)
def test_generated_secrets_never_reach_a_plain_input_or_output(
    stack: str, cores: dict[str, str], tails: dict[str, str]
) -> None:
    check_stack(stack, cores, tails)


def test_the_tracer_finds_a_planted_leak() -> None:
    """The search itself: a secret put into a plain input, as it is or base64-encoded, is found."""
    traced = {"planted": CORES["STRIPE_KEY"]}
    wrapped = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "value": CORES["STRIPE_KEY"],
    }
    assert leaks({"a": [{"b": f"x{CORES['STRIPE_KEY']}y"}]}, traced, "")
    assert leaks(
        {"user_data": base64.b64encode(f"#cloud-config\n{CORES['STRIPE_KEY']}".encode()).decode()}, traced, ""
    )
    assert leaks({CORES["STRIPE_KEY"]: 1}, traced, "")
    assert not leaks({"secret": wrapped}, traced, "")
