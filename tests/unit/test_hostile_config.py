"""Hostile and malformed stack configuration, generated: every input is either refused before any resource
exists (a SettingsError whose every line names the key, never echoes a secret, and tells the fix) or
accepted and then carried byte for byte, escaped for the format it lands in.

One section per class of problem the config probe found:
- compose interpolation and YAML typing: values reach the web tasks (through the stack file, as the docker
  CLI reads it) and the release job (through the API) unchanged;
- line structure: a line break never adds a line to a file, and every pattern is a full match;
- secretness: secrets stay in secretConfigVars, names flightdeck sets are refused;
- silently accepted input: typos, empty targets, bad references and schedules are named;
- SSH allow list: nothing that amounts to the world, unless asked for explicitly;
- arbitrary raw config: only SettingsError or settings, never a traceback, never a secret in a message.

Each test tallies what it generated (refused with the key named / accepted and verified where it lands);
the tallies are printed at the end of the module.
"""

from __future__ import annotations

import configparser
import contextlib
import inspect
import ipaddress
import json
import re
import string
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from contract import RESERVED_VARS, SECRET_NAME
from render import stack_file
from render.caddyfile import render_caddyfile
from render.registry_config import bucket_credentials_file, htpasswd_line, plan_registry_stack
from render.ssh_config import PinnedHost, known_hosts_line, render_ssh_config
from render.stack_file import StackExtension, StackSpec, plan_stack, render_compose, secret_keys
from settings import (
    DEPLOY_ENVIRONMENT,
    HEROKU_API_KEY,
    KEYS,
    NAMESPACE,
    SECRET_KEYS,
    TARGETS,
    HerokuSettings,
    SettingsError,
    parse,
)
from targets.processes import app_processes
from tests.support.docker_cli import BAIT, docker_reads
from tests.support.stacks import STACKS, stack_config

IMAGE = "127.0.0.1:5000/flightdeck-local/web@sha256:" + "ab" * 32
BACKUP_IMAGE = "127.0.0.1:5000/flightdeck-local/backup@sha256:" + "cd" * 32
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqQ4mFdIDy1v0cGbRZsJ5Cq9o3ZpkcVf2pTtZ3yS9x2 deploy@flightdeck"
BCRYPT = "$2a$04$CduUoGf2uCIOIjUXZgcK0ee8nXnM3HzIeia8D5.Bb.hdXNaYR8vjS"

FAST = settings(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

TALLY: Counter[tuple[str, str]] = Counter()
REFUSED, ACCEPTED = "refused, key named", "accepted, verified where it lands"


@pytest.fixture(scope="module", autouse=True)
def _print_tally(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not TALLY:
        return
    lines = ["", "hostile config cases (generated, per class):"]
    for kind in sorted({k for k, _ in TALLY}):
        refused, accepted = TALLY[kind, REFUSED], TALLY[kind, ACCEPTED]
        lines.append(f"  {kind:<36} {refused + accepted:5} = {refused:5} {REFUSED} + {accepted:5} {ACCEPTED}")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        for line in lines:
            reporter.write_line(line)


def tally(kind: str, outcome: str) -> None:
    TALLY[kind, outcome] += 1


# --- shared generators ------------------------------------------------------------------------------------

# Pieces a hostile value is made of: compose interpolation, YAML syntax and YAML 1.1/1.2 typing, line breaks,
# quotes, shell, terminal escapes, unicode that YAML or a line reader treats specially.
HOSTILE_PIECES = [
    "$", "$$", "$$$", "${HOME}", "$HOME", "${X:-y}", "${Y:?err}", "$(id)", "$1", "${}", "$ {A}", "${A",
    "\n", "\r\n", "\r", "\t", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", " ", "  ",
    '"', "'", "\\", "\\n", "`", ": ", " #", "# ", "#", "- ", "-", "? ", "{}", "[]", "{", "]", ",", "&a", "*a",
    "!!str", "!!binary", "%YAML 1.1", "---", "...", "|", ">-", "<<", "@", "%",
    "null", "Null", "~", "", "yes", "no", "y", "n", "Y", "N", "on", "off", "true", "False", "1e5", "1.5e5",
    "0o17", "0x1F", "0b101", "017", "1_000", "+1", "-.5", ".inf", ".NaN", "2001-12-14", "2001-12-14 21:59:43",
    "12:30:45", "1:20", "=", "==", "é", "€", "漢字", "💥", "\ufeff", "\u200b", "\x1b[31m", "\x7f", "\x01",
]  # fmt: skip
TEXT = st.characters(exclude_categories=["Cs"], exclude_characters="\0")
hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(TEXT, max_size=6)), max_size=8
).map("".join)
# Names of plain variables that settings take: not reserved, not secret-looking.
var_name = st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: n not in RESERVED_VARS and SECRET_NAME.fullmatch(n) is None and n not in DEPLOY_ENVIRONMENT
)


def marked(text: str) -> str:
    """A value wrapped in brackets no message, key or advice contains: found in a message, it was echoed."""
    return f"\u27e6{text}\u27e7"


def leaked(value: str, message: str) -> bool:
    """Whether a message shows the value, as it is or as its repr (how messages quote what was given)."""
    return value in message or repr(value)[1:-1] in message


def problems_of(raw: Mapping[str, str], secret_keys: set[str]) -> list[str] | None:
    """The problems of a config, or None when it parses."""
    try:
        parse(raw, secret_keys)
    except SettingsError as err:
        return err.problems
    return None


def config(stack: str, **overrides: Any) -> tuple[dict[str, str], set[str]]:
    return stack_config(stack, **overrides)


def names_key(problem: str, key: str) -> bool:
    return problem.startswith(key) and problem[len(key) : len(key) + 1] in (":", ".", "[")


# --- compose interpolation and YAML typing ---------------------------------------------------------------

# docker/cli's cli/compose/template: `$$` is a literal `$`; `$name`, `${...}` and a lone `$` are not.
_TEMPLATE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?P<braced>[^}]*)\}|(?P<invalid>))", re.IGNORECASE
)


def interpolate(text: str) -> str:
    """What compose makes of a string: the escapes resolved, or an AssertionError naming what it would
    expand from the deploying environment."""

    def one(match: re.Match[str]) -> str:
        assert match["escaped"], f"compose would interpolate {match[0]!r} in {text!r}"
        return "$"

    return _TEMPLATE.sub(one, text)


def interpolated(value: Any) -> Any:
    if isinstance(value, str):
        return interpolate(value)
    if isinstance(value, dict):
        return {k: interpolated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolated(v) for v in value]
    return value


# Go's YAML libraries (gopkg.in/yaml.v2 in docker 20.10's CLI, v3 later) resolve plain scalars differently
# from PyYAML: stated here independently, after their resolve.go.
_GO_V2_BOOL = {
    "y",
    "Y",
    "yes",
    "Yes",
    "YES",
    "on",
    "On",
    "ON",
    "n",
    "N",
    "no",
    "No",
    "NO",
    "off",
    "Off",
    "OFF",
}
_GO_BOOL = {"true", "True", "TRUE", "false", "False", "FALSE"}
_GO_NULL = {"", "~", "null", "Null", "NULL"}
_GO_FLOAT_WORDS = {f"{sign}.{w}" for sign in ("", "+", "-") for w in ("inf", "Inf", "INF")} | {
    ".nan",
    ".NaN",
    ".NAN",
}
_GO_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}.*)?")


def go_kind(plain: str, *, v2: bool) -> str:
    if plain in _GO_BOOL or (v2 and plain in _GO_V2_BOOL):
        return "bool"
    if plain in _GO_NULL:
        return "null"
    if plain in _GO_FLOAT_WORDS:
        return "float"
    if plain == "<<":
        return "merge"
    if plain[0] == ".":
        return "float" if _GO_FLOAT.fullmatch(plain) else "str"
    if plain[0] not in "+-0123456789":
        return "str"
    if _GO_TIMESTAMP.fullmatch(plain):
        return "timestamp"
    digits = plain.replace("_", "")
    if _GO_INT.fullmatch(digits):
        return "int"
    if _GO_FLOAT.fullmatch(digits):
        return "float"
    return "str"


Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when there is one: the same reading
_RESOLVER = yaml.resolver.Resolver()


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a safe loader)


def pyyaml_kind(plain: str) -> str:
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, plain, (True, False))  # type: ignore[no-untyped-call]
    return tag.rsplit(":", 1)[-1]


def check_plain_scalars(text: str) -> None:
    """Every unquoted scalar of the file means the same type to PyYAML and to both Go readers."""
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.ScalarEvent) and event.style is None:
            mine = pyyaml_kind(event.value)
            assert mine == go_kind(event.value, v2=True) == go_kind(event.value, v2=False), (
                f"{event.value!r} is {mine} to PyYAML but {go_kind(event.value, v2=True)} to yaml.v2"
            )


def swarm_plan(settings_: Any) -> stack_file.StackPlan:
    """The app stack a swarm target renders from these settings (with the backup job on servers)."""
    extension = StackExtension()
    if settings_.target == "servers":
        bucket = settings_.servers.bucket
        given = {
            "app": settings_.app.name,
            "schedule": settings_.swarm.backup_schedule,
            "bucket": bucket.name,
            "endpoint": bucket.endpoint,
            "region": bucket.region,
        }
        accepted = inspect.signature(stack_file.backup_service).parameters
        service = stack_file.backup_service(BACKUP_IMAGE, **{k: v for k, v in given.items() if k in accepted})
        extension = StackExtension(services={"backup": service}, secrets=(stack_file.BUCKET_CREDENTIALS,))
    keys = secret_keys(settings_.app, bundled_database=True, extension=extension)
    values = {key: f"value-of-{key}" for key in keys}
    values.update({k: v.get_secret_value() for k, v in settings_.app.secret_config_vars.items()})
    return plan_stack(
        StackSpec(
            stack=settings_.app.name,
            image=IMAGE,
            app=settings_.app,
            swarm=settings_.swarm,
            processes=app_processes(settings_),
            values=values,
            bundled_database=True,
            extension=extension,
        )
    )


def read_back(plan: stack_file.StackPlan) -> dict[str, Any]:
    """The stack file as compose reads it: YAML, then interpolation (which must only resolve escapes)."""
    check_plain_scalars(plan.stack_file)
    assert plan.stack_file.count("\n#") == 0 and plan.stack_file.startswith("# Swarm stack ")
    loaded: dict[str, Any] = interpolated(load(plan.stack_file))
    return loaded


def check_release_matches_web(plan: stack_file.StackPlan, document: Mapping[str, Any]) -> None:
    web = dict(document["services"]["web"]["environment"])
    assert web.pop("PROCESS_TYPE") == "web" and web.pop("DRAIN_SECONDS")
    release = dict(plan.release.environment)
    assert release.pop("PROCESS_TYPE") == "release"
    assert release == web  # the same bytes, by the API, as the web tasks get through the file


@settings(FAST, max_examples=200)
@given(
    st.sampled_from(["local", "servers"]),
    st.dictionaries(var_name, hostile_text, min_size=1, max_size=6),
)
@example("local", {"A": "${HOME}", "B": "$$", "C": "y", "D": "1e5", "E": "0o17", "F": "null", "G": " x "})
@example("servers", {"LINES": "a\nb\r\nc", "QUOTES": "'\"\\", "YAML": "- a: b # c", "EMPTY": ""})
def test_config_values_reach_web_and_release_byte_for_byte(stack: str, values: dict[str, str]) -> None:
    raw, secrets = config(stack, configVars=values)
    try:
        settings_ = parse(raw, secrets)
    except SettingsError as err:
        # A value that carries a password in a URL, or is too large for a process environment, is refused.
        assert all(names_key(p, "flightdeck:configVars") for p in err.problems), err.problems
        tally("compose interpolation", REFUSED)
        return
    assert not isinstance(settings_, HerokuSettings)
    plan = swarm_plan(settings_)
    document = read_back(plan)
    for service in ("web", *(p.name for p in app_processes(settings_) if p.name != "web")):
        environment = document["services"][service]["environment"]
        assert {k: environment[k] for k in values} == values
    check_release_matches_web(plan, document)
    tally("compose interpolation", ACCEPTED)


image_reference = st.builds(
    lambda host, path, tag, digest: f"{host}{path}{tag}{digest}",
    st.sampled_from(
        ["", "registry.example.com/", "127.0.0.1:5000/", "localhost/", "[::1]:5000/", "ghcr.io/a-b/"]
    ),
    st.from_regex(
        r"[a-z0-9]{1,8}(?:(?:[._]|__|-+)[a-z0-9]{1,4}){0,2}(?:/[a-z0-9]{1,6}){0,2}", fullmatch=True
    ),
    st.one_of(st.just(""), st.from_regex(r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"@sha256:[0-9a-f]{64}", fullmatch=True)),
)


def cron_field(low: int, high: int) -> st.SearchStrategy[str]:
    """One cron field over [low, high]: *, a step, a value, a range or a list."""
    return st.one_of(
        st.just("*"),
        st.builds("*/{}".format, st.integers(1, high)),
        st.builds(str, st.integers(low, high)),
        st.integers(low, high - 1).flatmap(lambda a: st.builds(f"{a}-{{}}".format, st.integers(a + 1, high))),
        st.lists(st.integers(low, high), min_size=2, max_size=3, unique=True).map(
            lambda v: ",".join(map(str, v))
        ),
    )


# Five fields one space apart, every value in its field's range, every day one each month has.
cron = st.tuples(
    cron_field(0, 59), cron_field(0, 23), cron_field(1, 28), cron_field(1, 12), cron_field(0, 6)
).map(" ".join)


@settings(FAST, max_examples=80)
@given(
    st.fixed_dictionaries(
        {"postgresImage": image_reference, "proxyImage": image_reference, "redisImage": image_reference}
    ),
    cron,
    st.from_regex(r"[1-9][0-9]?(?:\.[0-9]{1,3})?|0\.[0-9]{0,2}[1-9]", fullmatch=True),
    st.from_regex(r"[1-9][0-9]{0,3}[KMG]", fullmatch=True),
)
def test_images_schedules_and_sizes_are_written_as_given(
    images: dict[str, str], schedule: str, cpus: str, memory: str
) -> None:
    raw, secrets = config(
        "servers", **images, backupSchedule=schedule, webCpus=cpus, webMemory=memory, accessories=["redis"]
    )
    settings_ = parse(raw, secrets)
    services = read_back(swarm_plan(settings_))["services"]
    assert services["db"]["image"] == images["postgresImage"]
    assert services["proxy"]["image"] == images["proxyImage"]
    assert services["redis"]["image"] == images["redisImage"]
    assert services["backup"]["environment"]["BACKUP_SCHEDULE"] == schedule
    assert services["web"]["deploy"]["resources"]["limits"] == {"cpus": cpus, "memory": memory}
    registry = plan_registry_stack(
        stack=f"{settings_.app.name}-registry",
        image=images["postgresImage"],
        values={"registry_config": "c", "registry_htpasswd": "h", "bucket_credentials": "b"},
        key_material="k",
    )
    check_plain_scalars(registry.stack_file)
    assert interpolated(load(registry.stack_file))["services"]["registry"]["image"] == images["postgresImage"]
    tally("compose interpolation (images, cron, sizes)", ACCEPTED)


# Docker prints what it read with go-yaml v3, as YAML 1.2, where \x85, \u2028 and \u2029 are not line
# breaks (PyYAML, 1.1, would break lines there reading the print-out), and v3 prints a string that starts with
# a line break as a block that loses it (go-yaml/yaml#963). Docker reads both right; the pure tests above
# check them in the file. Here they are left out, so that the print-out reads back exactly.
_YAML11_BREAKS = str.maketrans("", "", "\x85\u2028\u2029")


def printable_by_docker(text: str) -> str:
    return text.translate(_YAML11_BREAKS).lstrip("\r\n")


@settings(FAST, max_examples=4)
@given(st.dictionaries(var_name, hostile_text.map(printable_by_docker), min_size=60, max_size=90))
def test_the_docker_cli_reads_what_was_given(
    tmp_path_factory: pytest.TempPathFactory, values: dict[str, str]
) -> None:
    """The real compose loader (`docker stack config`, with HOME, USER, PATH and C in its environment)."""
    # An empty value takes the deploying environment's value of its name (compose's rule): settings refuse
    # that for the names the deploying CLI has (DEPLOY_ENVIRONMENT); this bait environment has a few more.
    values = {name: value or "x" if name in BAIT else value for name, value in values.items()}
    raw, secrets = config("local", configVars=values)
    try:
        settings_ = parse(raw, secrets)
    except SettingsError:
        assume(False)
        return
    plan = swarm_plan(settings_)
    environment = docker_reads(plan.stack_file, tmp_path_factory.mktemp("stack"))["services"]["web"][
        "environment"
    ]
    assert {k: environment[k] for k in values} == values
    TALLY["compose interpolation (docker CLI)", ACCEPTED] += len(values)


# --- line structure and full matches ---------------------------------------------------------------------

LINE_BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x00"]
SPACES = [" ", "\t", "  "]

SERVER = {"name": "web1", "address": "203.0.113.21", "user": "deploy", "role": "manager", "hostKey": ED25519}
# key -> (stack, a valid value); every one of them must refuse a line break anywhere in it.
LINE_KEYS: dict[str, tuple[str, str]] = {
    "appName": ("local", "flightdeck-x"),
    "domain": ("local", "app.example.com"),
    "imageDigest": ("prod", "registry.heroku.com/flightdeck-dev/web@sha256:" + "12" * 32),
    "backupSchedule": ("servers", "17 3 * * *"),
    "sshPublicKey": ("iaas", ED25519),
    "herokuOrganization": ("dev", "my-team"),
    "pythonImage": ("local", "python:3.13-slim"),
    "postgresImage": ("local", "postgres:16"),
    "proxyImage": ("servers", "caddy:2"),
    "redisImage": ("local", "redis:7"),
    "registryImage": ("local", "registry:2"),
    "webCpus": ("local", "0.5"),
    "webMemory": ("local", "512M"),
    "bucketEndpoint": ("servers", "https://eu-central-1.linodeobjects.com"),
    "bucketName": ("servers", "flightdeck-data"),
    "bucketRegion": ("servers", "eu-central-1"),
    "bucketAccessKey": ("servers", "AKIAEXAMPLE0000"),
    "bucketSecretKey": ("servers", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    "sshIdentityFile": ("servers", "/home/me/.ssh/id_ed25519"),
    "sshAllowList[0]": ("iaas", "203.0.113.0/24"),
    "servers[0].name": ("servers", "web1"),
    "servers[0].address": ("servers", "203.0.113.21"),
    "servers[0].user": ("servers", "deploy"),
    "servers[0].hostKey": ("servers", ED25519),
    "configVars name": ("local", "FEATURE_FLAG"),
    "heroku:apiKey": ("dev", "0123abcd-test-heroku-api-key"),
}


def with_value(key: str, value: str) -> tuple[dict[str, str], set[str], str]:
    """The stack config with `value` at `key`, its secret keys, and the key errors must name."""
    stack, _ = LINE_KEYS[key]
    raw, secrets = config(stack)
    if key == "heroku:apiKey":
        raw[HEROKU_API_KEY] = value
        return raw, secrets, HEROKU_API_KEY
    if key == "configVars name":
        raw[f"{NAMESPACE}:configVars"] = json.dumps({value: "on"})
        return raw, secrets, f"{NAMESPACE}:configVars"
    if key == "sshAllowList[0]":
        raw[f"{NAMESPACE}:sshAllowList"] = json.dumps([value])
        return raw, secrets, f"{NAMESPACE}:sshAllowList"
    if key.startswith("servers[0]."):
        hosts = json.loads(raw[f"{NAMESPACE}:servers"])
        hosts[0][key.removeprefix("servers[0].")] = value
        raw[f"{NAMESPACE}:servers"] = json.dumps(hosts)
        return raw, secrets, f"{NAMESPACE}:servers[0]"
    raw[f"{NAMESPACE}:{key}"] = value
    if key in SECRET_KEYS:
        secrets.add(f"{NAMESPACE}:{key}")
    return raw, secrets, f"{NAMESPACE}:{key}"


@pytest.mark.parametrize("key", sorted(LINE_KEYS))
def test_every_valid_example_value_is_accepted(key: str) -> None:
    raw, secrets, _ = with_value(key, LINE_KEYS[key][1])
    parse(raw, secrets)


@settings(FAST, max_examples=400)
@given(
    st.sampled_from(sorted(LINE_KEYS)),
    st.sampled_from(LINE_BREAKS),
    st.sampled_from(["start", "end", "middle"]),
    st.sampled_from(["", "Host evil", "other", ' "x"', "ssh-ed25519 AAAA", "[x]"]),
)
def test_a_line_break_anywhere_is_refused_naming_the_key(key: str, brk: str, where: str, tail: str) -> None:
    valid = LINE_KEYS[key][1]
    cut = {"start": 0, "end": len(valid), "middle": len(valid) // 2}[where]
    value = valid[:cut] + brk + tail + valid[cut:]
    raw, secrets, named = with_value(key, value)
    found = problems_of(raw, secrets)
    assert found, f"{key}={value!r} was accepted"
    assert any(names_key(p, named) for p in found), found
    assert all("\n" not in p and "\r" not in p for p in found)  # no message adds a line either
    tally("line structure", REFUSED)


# Keys whose values have no free text: spaces around or inside are refused too (full matches).
NO_SPACE_KEYS = sorted(
    k for k in LINE_KEYS if k not in ("sshPublicKey", "servers[0].hostKey", "backupSchedule")
)


@settings(FAST, max_examples=200)
@given(st.sampled_from(NO_SPACE_KEYS), st.sampled_from(SPACES), st.sampled_from(["start", "end"]))
def test_spaces_around_a_value_are_refused(key: str, space: str, where: str) -> None:
    valid = LINE_KEYS[key][1]
    value = space + valid if where == "start" else valid + space
    raw, secrets, named = with_value(key, value)
    found = problems_of(raw, secrets)
    assert found and any(names_key(p, named) for p in found), (key, value, found)
    tally("line structure", REFUSED)


# Renderers refuse on their own what would break a line-based file (defence where the value leaves).
line_hostile = st.lists(
    st.one_of(st.sampled_from([*LINE_BREAKS, *SPACES, "#", "@", "*", "!", ",", "%h", "=", '"', "[", "]"]),
              st.sampled_from(["|1|", "@revoked", "~/"]),
              st.text(string.ascii_letters + string.digits + ".:-/", max_size=8)),
    min_size=1, max_size=5,
).map("".join)  # fmt: skip


@settings(FAST, max_examples=300)
@given(line_hostile, line_hostile, st.integers(1, 65535))
def test_known_hosts_lines_are_one_line(address: str, comment: str, port: int) -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqQ4mFdIDy1v0cGbRZsJ5Cq9o3ZpkcVf2pTtZ3yS9x2 " + comment
    try:
        line = known_hosts_line(PinnedHost(address=address, port=port, host_key=key))
    except ValueError:
        tally("line structure (renderers)", REFUSED)
        return
    assert line.count("\n") == 1 and line.endswith("\n") and "\r" not in line
    host, kind, _blob = line.split(" ")
    assert host in (address, f"[{address}]:{port}") and kind == "ssh-ed25519"
    assert not host.startswith(("@", "|", "!")) and not set(address) & set("*?,[]! ")
    tally("line structure (renderers)", ACCEPTED)


@settings(FAST, max_examples=200)
@given(line_hostile, line_hostile)
def test_ssh_config_and_htpasswd_and_credentials_keep_their_lines(value: str, other: str) -> None:
    expected = render_ssh_config(known_hosts="/t/kh", control_dir="/t/cm", identity_file="/t/id").count("\n")
    for kwargs in ({"known_hosts": value}, {"control_dir": value}, {"identity_file": "/" + value}):
        arguments = {"known_hosts": "/t/kh", "control_dir": "/t/cm", "identity_file": "/t/id", **kwargs}
        try:
            text = render_ssh_config(**arguments)
        except ValueError:
            tally("line structure (renderers)", REFUSED)
            continue
        assert text.count("\n") == expected and "\r" not in text and "%" not in text.replace("/%C", "")
        tally("line structure (renderers)", ACCEPTED)
    try:
        line = htpasswd_line(value, BCRYPT)
        assert line.count("\n") == 1 and line == f"{value}:{BCRYPT}\n"
        tally("line structure (renderers)", ACCEPTED)
    except ValueError:
        tally("line structure (renderers)", REFUSED)
    try:
        text = bucket_credentials_file(value, other)
    except ValueError:
        tally("line structure (renderers)", REFUSED)
        return
    assert text.count("\n") == 3
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    assert dict(parser["default"]) == {"aws_access_key_id": value, "aws_secret_access_key": other}
    tally("line structure (renderers)", ACCEPTED)


@settings(FAST, max_examples=200)
@given(line_hostile)
def test_a_caddyfile_and_a_stack_file_header_keep_their_lines(value: str) -> None:
    expected = render_caddyfile(domain="app.example.com").splitlines()
    try:
        lines = render_caddyfile(domain=value).splitlines()
    except ValueError:
        tally("line structure (renderers)", REFUSED)
    else:
        assert len(lines) == len(expected) and lines[lines.index("\timport web") - 1] == f"{value} {{"
        assert not set(value) & set(" \t{}#\"'\n\r")
        tally("line structure (renderers)", ACCEPTED)
    try:
        text = render_compose({"version": "3.8", "services": {}}, header=f"Swarm stack {value}")
    except ValueError:
        tally("line structure (renderers)", REFUSED)
        return
    assert text.splitlines()[0] == f"# Swarm stack {value}" and load(text) == {
        "version": "3.8",
        "services": {},
    }
    tally("line structure (renderers)", ACCEPTED)


# --- secretness -------------------------------------------------------------------------------------------

secret_value = st.text(TEXT, min_size=1, max_size=20).map(marked)


@settings(FAST, max_examples=150)
@given(st.sampled_from(STACKS), st.dictionaries(var_name, secret_value, min_size=1, max_size=4))
def test_config_vars_set_with_secret_are_refused_with_the_fix(stack: str, values: dict[str, str]) -> None:
    raw, secrets = config(stack, configVars=values)
    found = problems_of(raw, {*secrets, f"{NAMESPACE}:configVars"})
    assert found is not None
    [message] = [p for p in found if p.startswith(f"{NAMESPACE}:configVars")]
    assert "secretConfigVars" in message and "--secret" in message
    assert not [p for v in values.values() for p in found if leaked(v, p)]
    tally("secretness", REFUSED)


@settings(FAST, max_examples=150)
@given(
    st.sampled_from(STACKS),
    st.one_of(var_name, st.sampled_from(sorted(RESERVED_VARS))),
    secret_value,
    secret_value,
    st.sampled_from(["both", "plain reserved", "secret reserved"]),
)
def test_a_name_in_both_maps_or_one_flightdeck_sets_is_refused(
    stack: str, name: str, plain: str, secret: str, case: str
) -> None:
    if case != "both":
        name = sorted(RESERVED_VARS)[sum(map(ord, name)) % len(RESERVED_VARS)]
    plain_vars = {name: plain} if case != "secret reserved" else {}
    secret_vars = {name: secret} if case != "plain reserved" else {}
    raw, secrets = config(stack, configVars=plain_vars)
    raw[f"{NAMESPACE}:secretConfigVars"] = json.dumps(secret_vars)
    found = problems_of(raw, {*secrets, f"{NAMESPACE}:secretConfigVars"})
    assert found, (name, case)
    assert any(
        name in p
        and names_key(p, f"{NAMESPACE}:{'secretConfigVars' if case == 'secret reserved' else 'configVars'}")
        for p in found
    ), found
    assert not [p for p in found if leaked(secret, p)]
    tally("secretness", REFUSED)


# --- silently accepted input ------------------------------------------------------------------------------


def near_misses(word: str) -> st.SearchStrategy[str]:
    """Words one edit from `word` (a letter dropped, doubled, swapped, replaced, or its case changed)."""
    letters = string.ascii_letters + string.digits + "-_"

    @st.composite
    def edit(draw: st.DrawFn) -> str:
        i = draw(st.integers(0, len(word) - 1))
        kind = draw(st.sampled_from(["drop", "double", "swap", "replace", "case", "insert"]))
        if kind == "drop":
            out = word[:i] + word[i + 1 :]
        elif kind == "double":
            out = word[:i] + word[i] + word[i:]
        elif kind == "swap" and i < len(word) - 1:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif kind == "replace":
            out = word[:i] + draw(st.sampled_from(letters)) + word[i + 1 :]
        elif kind == "insert":
            out = word[:i] + draw(st.sampled_from(letters)) + word[i:]
        else:
            out = word[:i] + word[i].swapcase() + word[i + 1 :]
        return out

    return edit().filter(lambda w: w != word)


@settings(FAST, max_examples=250)
@given(
    st.sampled_from(STACKS),
    near_misses(NAMESPACE),
    st.sampled_from(sorted(KEYS)),
    st.text("0123456789", max_size=3),
)
def test_a_misspelled_namespace_names_the_intended_key(
    stack: str, namespace: str, key: str, value: str
) -> None:
    raw, secrets = config(stack)
    raw[f"{namespace}:{key}"] = value
    found = problems_of(raw, secrets)
    assert found, f"{namespace}:{key} was ignored"
    assert any(
        p.startswith(f"{namespace}:{key}: ") and p.endswith(f"did you mean {NAMESPACE}:{key}?") for p in found
    ), found
    tally("silently accepted input", REFUSED)


@settings(FAST, max_examples=120)
@given(st.sampled_from(["dev", "prod", "local"]), near_misses("apiKey"))
def test_a_misspelled_heroku_key_names_heroku_api_key(stack: str, key: str) -> None:
    assume(key not in ("apiKey", "customizations", "delays", "email", "headers", "timeouts", "url"))
    raw, secrets = config(stack)
    raw[f"heroku:{key}"] = "0123abcd-test-heroku-api-key"
    found = problems_of(raw, {*secrets, f"heroku:{key}"})
    assert found and any(p.startswith(f"heroku:{key}: not a heroku setting") for p in found), found
    tally("silently accepted input", REFUSED)


@settings(FAST, max_examples=150)
@given(
    st.sampled_from(STACKS),
    st.one_of(
        st.sampled_from(
            ["", " ", "Local", "LOCAL", " local", "local ", "local\n", "heroku\x00", "iaas,local", "null"]
        ),
        st.text(TEXT, max_size=12),
    ),
)
def test_a_target_that_is_not_one_is_refused(stack: str, target: str) -> None:
    assume(target not in TARGETS)
    raw, secrets = config(stack)
    raw[f"{NAMESPACE}:target"] = target
    found = problems_of(raw, secrets)
    assert found and found[0].startswith(f"{NAMESPACE}:target: must be one of local, heroku, servers, iaas")
    tally("silently accepted input", REFUSED)


# Characters that no image reference holds anywhere.
NEVER_IN_REFERENCES = [*" \n\t$`\"'{}!*?<>|;&()\\#%^~=+,", "\u2028", "\x00", "é"]
IMAGE_KEYS = ["pythonImage", "postgresImage", "proxyImage", "redisImage", "registryImage"]


@settings(FAST, max_examples=200)
@given(
    st.sampled_from(STACKS),
    st.sampled_from(IMAGE_KEYS),
    image_reference,
    st.sampled_from(NEVER_IN_REFERENCES),
    st.floats(0, 1),
)
def test_a_bad_image_reference_is_refused_naming_the_key(
    stack: str, key: str, reference: str, bad: str, where: float
) -> None:
    cut = int(len(reference) * where)
    raw, secrets = config(stack, **{key: reference[:cut] + bad + reference[cut:]})
    found = problems_of(raw, secrets)
    assert found and any(names_key(p, f"{NAMESPACE}:{key}") for p in found), found
    tally("silently accepted input", REFUSED)


def heroku_team(name: str) -> bool:
    """Heroku's rule for team names, stated independently: lower-case letters, digits and dashes, starting
    with a letter and not ending with a dash, at most 64; or the team's UUID."""
    uuid = re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", name) is not None
    plain = 2 <= len(name) <= 64 and name[0] in string.ascii_lowercase and name[-1] != "-"
    return uuid or (plain and set(name) <= set(string.ascii_lowercase + string.digits + "-"))


@settings(FAST, max_examples=150)
@given(
    st.one_of(
        st.text(string.ascii_letters + string.digits + "-_ .\n", min_size=1, max_size=70),
        st.from_regex(r"[a-z][a-z0-9-]{0,70}[a-z0-9-]", fullmatch=True),
        st.uuids().map(str),
        hostile_text,
    )
)
def test_a_heroku_organization_is_checked_at_parse_time(name: str) -> None:
    assume(name and name[0] not in "[{")
    raw, secrets = config("dev", herokuOrganization=name)
    found = problems_of(raw, secrets)
    if heroku_team(name):
        assert found is None
        tally("silently accepted input", ACCEPTED)
    else:
        assert found and all(names_key(p, f"{NAMESPACE}:herokuOrganization") for p in found), found
        tally("silently accepted input", REFUSED)


@settings(FAST, max_examples=150)
@given(
    st.one_of(cron.map(str.split), st.lists(cron_field(0, 6), min_size=1, max_size=7)),
    st.lists(st.sampled_from([" ", "  ", "\t", "\n", " \n"]), min_size=6, max_size=6),
    st.sampled_from(["", " ", "\n", "\t"]),
)
def test_a_schedule_is_five_fields_one_space_apart(fields: list[str], gaps: list[str], end: str) -> None:
    schedule = "".join(f + g for f, g in zip(fields, gaps, strict=False)).rstrip(" \t\n") + end
    raw, secrets = config("servers", backupSchedule=schedule)
    found = problems_of(raw, secrets)
    well_formed = len(fields) == 5 and set(gaps[:4]) == {" "} and end == ""
    if not well_formed:
        assert found and all(names_key(p, f"{NAMESPACE}:backupSchedule") for p in found), (schedule, found)
        tally("silently accepted input", REFUSED)
    elif found is None:
        tally("silently accepted input", ACCEPTED)
    else:
        assert all(names_key(p, f"{NAMESPACE}:backupSchedule") for p in found)  # e.g. never comes
        tally("silently accepted input", REFUSED)


@settings(FAST, max_examples=60)
@given(st.integers(4097, 300_000), st.sampled_from(["A", "AAAA", "+/", "x y"]))
def test_an_over_long_ssh_key_is_an_error_naming_the_key(length: int, fill: str) -> None:
    value = ("ssh-ed25519 " + fill * length)[:length]
    raw, secrets = config("iaas", sshPublicKey=value)
    found = problems_of(raw, secrets)
    assert found and all(names_key(p, f"{NAMESPACE}:sshPublicKey") for p in found)
    assert all(len(p) < 500 for p in found)  # the value is echoed cut short
    tally("silently accepted input", REFUSED)


# --- SSH allow list -----------------------------------------------------------------------------------------


def covered(networks: list[str]) -> tuple[int, int]:
    """IPv4 and IPv6 addresses the networks open, counted independently (interval union); IPv6 networks that
    carry IPv4 addresses (::ffff:0:0/96, ::/96, 64:ff9b::/96) count for IPv4 too."""
    spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    carriers = [ipaddress.ip_network(p) for p in ("::ffff:0:0/96", "::/96", "64:ff9b::/96")]
    for text in networks:
        net = ipaddress.ip_network(text)
        start, end = int(net.network_address), int(net.broadcast_address)
        spans[net.version].append((start, end))
        if net.version == 6:
            for carrier in carriers:
                lo, hi = int(carrier.network_address), int(carrier.broadcast_address)
                a, b = max(start, lo), min(end, hi)
                if a <= b:
                    spans[4].append((a - lo, b - lo))
    total = []
    for version in (4, 6):
        count, last = 0, -1
        for a, b in sorted(spans[version]):
            a = max(a, last + 1)
            if a <= b:
                count += b - a + 1
                last = b
        total.append(count)
    return total[0], total[1]


@st.composite
def allow_list(draw: st.DrawFn) -> list[str]:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["v4", "v4", "v6", "mapped"]))
        if kind == "v4":
            prefix = draw(st.integers(0, 32))
            address = draw(st.integers(0, 2**32 - 1)) >> (32 - prefix) << (32 - prefix) if prefix else 0
            parts.append(str(ipaddress.IPv4Network((address, prefix))))
        elif kind == "v6":
            prefix = draw(st.integers(0, 128))
            address = draw(st.integers(0, 2**128 - 1)) >> (128 - prefix) << (128 - prefix) if prefix else 0
            parts.append(str(ipaddress.IPv6Network((address, prefix))))
        else:
            prefix = draw(st.integers(0, 32))
            address = draw(st.integers(0, 2**32 - 1)) >> (32 - prefix) << (32 - prefix) if prefix else 0
            base = draw(st.sampled_from([0xFFFF << 32, 0, 0x64FF9B << 96]))
            parts.append(str(ipaddress.IPv6Network((base + address, 96 + prefix))))
    return parts


@st.composite
def world_in_pieces(draw: st.DrawFn) -> list[str]:
    """The whole IPv4 (or IPv6) space cut into blocks, possibly with a few left out, in any order."""
    version = draw(st.sampled_from([4, 6, "mapped"]))
    bits = 32 if version in (4, "mapped") else 128
    prefix = draw(st.integers(1, 6))
    keep = draw(st.lists(st.integers(0, 2**prefix - 1), min_size=1, unique=True))
    nets = []
    for block in keep:
        address = block << (bits - prefix)
        if version == 4:
            nets.append(str(ipaddress.IPv4Network((address, prefix))))
        elif version == 6:
            nets.append(str(ipaddress.IPv6Network((address, prefix))))
        else:
            nets.append(str(ipaddress.IPv6Network(((0xFFFF << 32) + address, 96 + prefix))))
    return draw(st.permutations(nets))


@settings(FAST, max_examples=300)
@given(st.one_of(allow_list(), world_in_pieces()), st.booleans())
@example(["0.0.0.0/0"], False)
@example(["::/0"], False)
@example(["0.0.0.0/1", "128.0.0.0/1"], False)
@example(["::ffff:0:0/96"], False)
def test_ssh_is_never_open_to_the_world_unless_asked(networks: list[str], anywhere: bool) -> None:
    v4, v6 = covered(networks)
    world = v4 > 2**24 or v6 > 2**96
    raw, secrets = config("iaas", sshAllowList=networks, allowSshFromAnywhere=anywhere)
    found = problems_of(raw, secrets)
    if world and not anywhere:
        assert found and all(names_key(p, f"{NAMESPACE}:sshAllowList") for p in found), (networks, found)
        assert any("allowSshFromAnywhere true" in p for p in found)
        tally("ssh allow list", REFUSED)
    else:
        assert found is None, (networks, found)
        tally("ssh allow list", ACCEPTED)


# --- arbitrary raw config ---------------------------------------------------------------------------------

json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(TEXT, max_size=10) | hostile_text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(TEXT, max_size=8) | var_name, children, max_size=4)
    ),
    max_leaves=12,
)  # fmt: skip
raw_value = st.one_of(
    st.text(st.characters(), max_size=30),  # lone surrogates included: Pulumi never sends them, but
    hostile_text,
    json_value.map(json.dumps),
    st.integers(1, 3000).map(lambda depth: "[" * depth + "]" * depth),
    st.sampled_from(["", "{}", "[]", "true", "0", "-1", "1e999", "NaN", "{", "[1,", '{"a":', *TARGETS]),
)
raw_key = st.one_of(
    st.sampled_from(sorted(KEYS)).map(f"{NAMESPACE}:".__add__),
    st.sampled_from(sorted(KEYS)).flatmap(lambda k: near_misses(k)).map(f"{NAMESPACE}:".__add__),
    near_misses(NAMESPACE).map(lambda ns: f"{ns}:webInstances"),
    st.sampled_from([HEROKU_API_KEY, "heroku:apikey", "heroku:email", "linode:token", "pulumi:tags"]),
    st.text(TEXT, max_size=12).map(f"{NAMESPACE}:".__add__),
    st.tuples(st.text(TEXT, max_size=8), st.text(TEXT, max_size=8)).map(":".join),
    st.text(st.characters(), max_size=10),
)


def secret_leaves(value: str) -> list[str]:
    """The parts of a secret value that must never show: the whole, and (when JSON) each string in it."""
    leaves = [value]
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError):
        return leaves

    def walk(node: Any) -> None:
        if isinstance(node, str):
            leaves.append(node)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(decoded)
    return leaves


marked_text = st.text(TEXT, min_size=1, max_size=12).map(marked)
# A secret value: marked text, or JSON whose every string is marked (a secretConfigVars map, a list), so that
# one found in a message was echoed, not met by coincidence.
secret_raw = st.one_of(
    marked_text,
    st.dictionaries(st.one_of(var_name, st.text(TEXT, max_size=6)), marked_text, max_size=3).map(json.dumps),
    st.lists(marked_text, max_size=3).map(json.dumps),
)


@settings(FAST, max_examples=400)
@given(
    st.sampled_from(STACKS),
    st.dictionaries(raw_key, raw_value, max_size=8),
    st.dictionaries(raw_key, secret_raw, max_size=4),
)
@example("dev", {}, {f"{NAMESPACE}:target": marked("kube"), HEROKU_API_KEY: marked(" x")})
@example("servers", {}, {f"{NAMESPACE}:bucketSecretKey": marked("a\nb"), f"{NAMESPACE}:appName": marked("A")})
def test_any_raw_config_gives_settings_or_a_settings_error(
    stack: str, extra: dict[str, str], secret: dict[str, str]
) -> None:
    raw, secrets = config(stack)
    raw.update(extra)
    raw.update(secret)
    secrets.update(secret)
    try:
        parse(raw, secrets)
    except SettingsError as err:
        named = [k for k in raw if k]
        prefixes = (f"{NAMESPACE}:", "heroku:", "DOCKER_HOST", *named, *(repr(k)[:20] for k in named))
        leaves = [leaf for key in secret for leaf in secret_leaves(raw[key]) if "\u27e6" in leaf]
        for problem in err.problems:
            assert "\n" not in problem and "\r" not in problem, problem
            assert problem.startswith(prefixes), problem
            assert not [leaf for leaf in leaves if leaked(leaf, problem)], problem
        tally("arbitrary raw config", REFUSED)
    else:
        tally("arbitrary raw config", ACCEPTED)


def test_the_tally_saw_every_class() -> None:
    kinds = {kind for kind, _ in TALLY}
    if len(kinds) < 6:
        pytest.skip("run with the whole module to tally every class")
    assert {k for k in kinds if not k.endswith(")")} >= {
        "compose interpolation", "line structure", "secretness", "silently accepted input", "ssh allow list",
        "arbitrary raw config",
    }  # fmt: skip
