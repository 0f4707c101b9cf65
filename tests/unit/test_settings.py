"""Settings: every stack file parses; every bad value is refused with a message a person can act on.

The generated hostile inputs (every class the config probe found) are in test_hostile_config.py; this file
holds the examples that document each rule, and the property tests over the allowed sets and ranges."""

from __future__ import annotations

import ipaddress
import json
import string
from typing import Any, get_args

import pulumi
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contract import ROOT
from settings import (
    HEROKU_API_KEY,
    KEYS,
    SECRET_KEYS,
    HerokuDynoSize,
    HerokuPostgresPlan,
    HerokuRegion,
    HerokuSettings,
    IaasSettings,
    LinodeRegion,
    LinodeType,
    LocalSettings,
    ServersSettings,
    SettingsError,
    Target,
    parse,
)
from tests.support.stacks import STACKS, stack_config

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqQ4mFdIDy1v0cGbRZsJ5Cq9o3ZpkcVf2pTtZ3yS9x2 deploy@flightdeck"


def problems(stack: str, secret_keys: set[str] | None = None, /, **overrides: Any) -> list[str]:
    raw, secrets = stack_config(stack, **overrides)
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets if secret_keys is None else secret_keys)
    return caught.value.problems


def with_secret_vars(stack: str, values: dict[str, str], **overrides: Any) -> tuple[dict[str, str], set[str]]:
    raw, secrets = stack_config(stack, **overrides)
    raw["flightdeck:secretConfigVars"] = json.dumps(values)
    return raw, {*secrets, "flightdeck:secretConfigVars"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_parses(stack: str) -> None:
    settings_ = parse(*stack_config(stack))
    assert settings_.target in get_args(Target)
    assert settings_.app.name.startswith("flightdeck-")


def test_each_target_reads_only_its_own_sections() -> None:
    local, dev, servers, iaas = (parse(*stack_config(s)) for s in ("local", "dev", "servers", "iaas"))
    assert isinstance(local, LocalSettings) and not hasattr(local, "heroku") and not hasattr(local, "linode")
    assert isinstance(dev, HerokuSettings) and not hasattr(dev, "swarm")
    assert isinstance(servers, ServersSettings) and servers.servers.bucket.name == "flightdeck-servers-data"
    assert isinstance(iaas, IaasSettings) and iaas.linode.instance_count == 3


def test_prod_differs_from_dev_only_in_values() -> None:
    dev, prod = parse(*stack_config("dev")), parse(*stack_config("prod"))
    assert isinstance(dev, HerokuSettings) and isinstance(prod, HerokuSettings)
    assert (dev.heroku.dyno_size, prod.heroku.dyno_size) == ("basic", "standard-2x")
    assert (dev.protect_data, prod.protect_data) == (False, True)
    assert prod.app.accessories == ("redis",)


def test_structured_values_arrive_as_json() -> None:
    settings_ = parse(*stack_config("local", configVars={"FEATURE_FLAG": "on"}, webInstances=3))
    assert settings_.app.config_vars == {"FEATURE_FLAG": "on"}
    assert settings_.app.web_instances == 3


def test_the_key_tables_agree_with_pulumi_yaml() -> None:
    schema = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(schema) == set(KEYS), set(schema) ^ set(KEYS)
    # Without a default, so required by Pulumi: the app's name (every stack names its own).
    assert {key for key, declared in schema.items() if "default" not in declared} == {"appName"}
    assert set(SECRET_KEYS) <= set(KEYS)


# --- secrets ---------------------------------------------------------------------------------------------


def test_api_key_must_be_secret() -> None:
    [message] = problems("dev", set())
    assert message.startswith("heroku:apiKey: must be a secret")
    assert "pulumi config set --secret heroku:apiKey" in message
    assert "test-heroku-api-key" not in message


def test_missing_api_key_names_both_ways_to_give_it() -> None:
    raw, _ = stack_config("dev")
    raw.pop(HEROKU_API_KEY)
    with pytest.raises(SettingsError) as caught:
        parse(raw, set())
    assert caught.value.problems == [
        "heroku:apiKey: required for this target; set it with "
        "`pulumi config set --secret heroku:apiKey <value>` (or export HEROKU_API_KEY where `pulumi up` runs)"
    ]


@pytest.mark.parametrize("key", ["", "short", "two words here", "line\nbreak-0000"])
def test_an_api_key_that_cannot_be_one_is_refused_without_echo(key: str) -> None:
    raw, secrets = stack_config("dev")
    raw[HEROKU_API_KEY] = key
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    [message] = caught.value.problems
    assert message.startswith("heroku:apiKey: must be a Heroku API key")
    assert "--secret heroku:apiKey" in message
    assert not key or key not in message


def test_secret_config_vars_must_be_encrypted_and_are_never_echoed() -> None:
    [message] = problems("dev", secretConfigVars={"STRIPE_KEY": "sk_live_do_not_print"})
    assert "flightdeck:secretConfigVars: holds secrets but is stored in plain text" in message
    assert "--secret --path 'secretConfigVars.<NAME>'" in message
    assert "sk_live_do_not_print" not in message


def test_encrypted_secret_config_vars_are_kept_as_secret_strings() -> None:
    settings_ = parse(*with_secret_vars("dev", {"STRIPE_KEY": "sk_live_x"}))
    assert settings_.app.secret_config_vars["STRIPE_KEY"].get_secret_value() == "sk_live_x"
    assert "sk_live_x" not in repr(settings_)


def test_config_vars_set_with_secret_are_refused_with_the_fix() -> None:
    [message] = problems("local", {"flightdeck:configVars"}, configVars={"NOTE": "sk_live_hidden"})
    assert message.startswith("flightdeck:configVars: holds a secret value, but this key is plain")
    assert "pulumi config set --secret --path 'secretConfigVars.<NAME>' <value>" in message
    assert "sk_live_hidden" not in message


def test_a_name_in_both_maps_is_refused() -> None:
    raw, secrets = with_secret_vars(
        "local", {"SENTRY_DSN": "https://k@sentry/1"}, configVars={"SENTRY_DSN": "x"}
    )
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    # A DSN-named plain variable is refused for its name too; the clash is reported once names are valid.
    assert any("SENTRY_DSN" in p for p in caught.value.problems)
    raw, secrets = with_secret_vars("local", {"LOG_FORMAT": "json"}, configVars={"LOG_FORMAT": "text"})
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    assert caught.value.problems == [
        "flightdeck:configVars: LOG_FORMAT is set in both configVars and secretConfigVars; keep it in one "
        "(secretConfigVars if it is a secret)"
    ]


@pytest.mark.parametrize("name", ["ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL", "PORT"])
def test_names_flightdeck_sets_itself_are_refused_in_either_map(name: str) -> None:
    [plain] = problems("local", configVars={name: "x"})
    assert plain == f"flightdeck:configVars: {name} is set by flightdeck itself; remove it"
    raw, secrets = with_secret_vars("local", {name: "x"})
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    assert caught.value.problems == [
        f"flightdeck:secretConfigVars: {name} is set by flightdeck itself; remove it"
    ]


def test_a_url_with_a_password_in_plain_config_vars_is_refused() -> None:
    [message] = problems("local", configVars={"BROKER_URL": "amqp://app:hunter2@mq:5672/"})
    assert message.startswith("flightdeck:configVars: BROKER_URL holds a URL with a password")
    assert "hunter2" not in message


def test_a_secret_target_is_refused_without_echo() -> None:
    found = problems("local", {"flightdeck:target"}, target="hunter2-kubernetes")
    assert all("hunter2" not in p for p in found)
    assert any(p.startswith("flightdeck:target: names the target, which is not a secret") for p in found)


# --- names, typos, targets -------------------------------------------------------------------------------


def test_typo_in_a_key_suggests_the_right_one() -> None:
    raw, secrets = stack_config("dev")
    raw["flightdeck:herokuDynosize"] = "eco"
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    assert caught.value.problems == [
        "flightdeck:herokuDynosize: not a setting flightdeck knows; did you mean flightdeck:herokuDynoSize?"
    ]


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("flightdek:webInstances", "flightdeck:webInstances"),
        ("flightdeck.appName", None),  # not a namespace at all: ignored like any foreign key
        ("Flightdeck:webInstances", "flightdeck:webInstances"),
        ("FLIGHTDECK:webInstances", "flightdeck:webInstances"),
        ("HEROKU:apiKey", "heroku:apiKey"),
        ("heroku:apikey", "heroku:apiKey"),
        ("heroku:apiKye", "heroku:apiKey"),
        ("herok:apiKey", "heroku:apiKey"),
    ],
)
def test_a_key_in_a_misspelled_namespace_names_the_intended_key(key: str, meant: str | None) -> None:
    raw, secrets = stack_config("local")
    raw[key] = "2"
    if meant is None:
        parse(raw, secrets)
        return
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    [message] = caught.value.problems
    assert message.startswith(f"{key}: ") and message.endswith(f"did you mean {meant}?")


def test_every_problem_is_reported_at_once() -> None:
    found = problems("prod", herokuDynoSize="huge", herokuPostgresPlan="hobby-dev", webInstances=0)
    assert [p.split(":")[1] for p in found] == ["webInstances", "herokuDynoSize", "herokuPostgresPlan"]


def test_eco_dynos_cannot_scale_out() -> None:
    [message] = problems("dev", herokuDynoSize="eco", webInstances=2)
    assert "eco dynos run one per process type; got 2" in message
    assert "herokuDynoSize: standard-1x" in message


def test_a_basic_worker_cannot_scale_out_either() -> None:
    [message] = problems("dev", processes={"worker": {"instances": 3}})
    assert message.startswith("flightdeck:processes.worker.instances: basic dynos run one per process type")
    assert "got 3" in message and "herokuSize: standard-1x" in message


def test_one_app_runs_one_tier_of_dynos() -> None:
    [message] = problems("prod", processes={"worker": {"instances": 1, "herokuSize": "basic"}})
    assert message.startswith("flightdeck:processes.worker.herokuSize: basic is a basic dyno")
    assert "web runs standard-2x (professional)" in message
    # Sizes of one tier mix freely, and a process type scaled to zero has no dyno at all.
    parse(*stack_config("prod", processes={"worker": {"instances": 2, "herokuSize": "performance-m"}}))
    parse(*stack_config("prod", processes={"worker": {"instances": 0, "herokuSize": "eco"}}))


def test_the_registry_port_is_not_the_proxys() -> None:
    [message] = problems("local", registryPort=8080)  # Pulumi.local.yaml's httpPort
    assert message.startswith("flightdeck:registryPort: 8080 is also the proxy's httpPort or httpsPort")
    assert "give the registry its own port" in message


def test_unknown_target_lists_the_targets() -> None:
    [message] = problems("local", target="kubernetes")
    assert message == (
        "flightdeck:target: must be one of local, heroku, servers, iaas (given 'kubernetes'); "
        "set it with `pulumi config set target <target>`"
    )


def test_an_empty_target_is_not_local() -> None:
    [message] = problems("local", target="")
    assert message.startswith("flightdeck:target: must be one of local, heroku, servers, iaas (given '')")


def test_a_key_another_target_reads_is_still_checked() -> None:
    # Pulumi applies Pulumi.yaml's defaults to every stack: a heroku stack carries the swarm keys, and a bad
    # value there is refused even though this target does not read it.
    [message] = problems("dev", postgresImage="postgres:16\n", backupSchedule="17 3 * * *")
    assert message.startswith("flightdeck:postgresImage: must be an image reference")
    [message] = problems("local", herokuOrganization="Bad Team")
    assert message.startswith("flightdeck:herokuOrganization: must be a Heroku team name")


def test_error_is_a_clean_pulumi_run_error() -> None:
    with pytest.raises(pulumi.RunError, match="Fix the values with `pulumi config set`"):
        parse(*stack_config("local", webInstances=-1))


def test_an_over_long_ssh_key_names_the_key_and_stays_short() -> None:
    [message] = problems("iaas", sshPublicKey="ssh-ed25519 " + "A" * 200_000)
    assert message.startswith("flightdeck:sshPublicKey: is 200012 characters long")
    assert len(message) < 400


def test_a_schedule_that_never_comes_is_refused() -> None:
    [message] = problems("servers", backupSchedule="0 0 31 2 *")
    assert message.startswith("flightdeck:backupSchedule: never comes")


@pytest.mark.parametrize("name", ["HOME", "PATH", "DOCKER_HOST"])
def test_an_empty_value_the_deploying_cli_would_fill_in_is_refused_on_swarm_targets(name: str) -> None:
    [message] = problems("local", configVars={name: ""})
    assert message.startswith(f"flightdeck:configVars.{name}: an empty value on a swarm target")
    assert parse(*stack_config("dev", configVars={name: ""})).app.config_vars == {name: ""}


def test_an_empty_value_of_any_other_name_is_kept() -> None:
    assert parse(*stack_config("local", configVars={"FEATURE": ""})).app.config_vars == {"FEATURE": ""}


@pytest.mark.parametrize("address", ["2001:db8::21", "fe80::1%eth0", "::ffff:203.0.113.9"])
def test_an_ipv6_server_address_is_refused_until_engine_addresses_bracket_it(address: str) -> None:
    raw, secrets = stack_config("servers")
    hosts = json.loads(raw["flightdeck:servers"])
    hosts[0]["address"] = address
    raw["flightdeck:servers"] = json.dumps(hosts)
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    [message] = caught.value.problems
    assert message.startswith("flightdeck:servers[0].address: ")


# --- property tests: generated invalid configs, each message checked ------------------------------------


def _outside(allowed: tuple[str, ...]) -> st.SearchStrategy[str]:
    alphabet = string.ascii_lowercase + string.digits + "-."
    return st.text(alphabet, min_size=1, max_size=20).filter(lambda v: v not in allowed and v[0] not in "[{")


ENUM_KEYS: list[tuple[str, str, tuple[str, ...]]] = [
    ("dev", "herokuDynoSize", get_args(HerokuDynoSize)),
    ("dev", "herokuPostgresPlan", get_args(HerokuPostgresPlan)),
    ("dev", "herokuRegion", get_args(HerokuRegion)),
    ("iaas", "linodeRegion", get_args(LinodeRegion)),
    ("iaas", "linodeInstanceType", get_args(LinodeType)),
]


@st.composite
def enum_case(draw: st.DrawFn) -> tuple[str, str, str, tuple[str, ...]]:
    stack, key, allowed = draw(st.sampled_from(ENUM_KEYS))
    return stack, key, draw(_outside(allowed)), allowed


@settings(max_examples=80, deadline=None, derandomize=True)
@given(enum_case())
def test_a_value_outside_the_allowed_set_names_key_value_and_choices(
    case: tuple[str, str, str, tuple[str, ...]],
) -> None:
    stack, key, value, allowed = case
    [message] = problems(stack, **{key: value})
    assert message.startswith(f"flightdeck:{key}: Input should be ")
    assert f"(given {value!r})" in message
    assert all(repr(choice) in message for choice in allowed)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.sampled_from(STACKS),
    st.one_of(st.integers(max_value=0), st.integers(min_value=51, max_value=10**30)),
)
def test_a_count_out_of_range_names_the_bound(stack: str, count: int) -> None:
    [message] = problems(stack, webInstances=count)
    bound = "greater than or equal to 1" if count < 1 else "less than or equal to 50"
    assert message == f"flightdeck:webInstances: Input should be {bound} (given {str(count)!r})"


SECRET_WORDS = ["SECRET", "PASSWORD", "PASSPHRASE", "TOKEN", "API_KEY", "PRIVATE", "CREDENTIAL", "DSN"]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.sampled_from(["local", "dev", "prod", "servers", "iaas"]),
    st.sampled_from(SECRET_WORDS),
    st.text(string.ascii_uppercase, max_size=6),
    # § marks it: no advice contains it
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), min_size=1, max_size=30).map(
        lambda text: f"§{text}"
    ),
)
def test_a_secret_in_plain_config_vars_points_to_secret_config_vars(
    stack: str, word: str, prefix: str, value: str
) -> None:
    name = f"{prefix}_{word}" if prefix else word
    [message] = problems(stack, configVars={name: value})
    assert message.startswith(f"flightdeck:configVars: {name} looks like a secret but is plain text")
    assert f"--path 'secretConfigVars.{name}'" in message
    assert value not in message


@pytest.mark.parametrize("key", ["appName", "sshPublicKey", "sshAllowList"])
def test_a_missing_required_key_says_how_to_set_it(key: str) -> None:
    stack = "local" if key == "appName" else "iaas"
    [message] = problems(stack, **{key: None})
    assert (
        message
        == f"flightdeck:{key}: required for this target; set it with `pulumi config set {key} <value>`"
    )


@pytest.mark.parametrize("key", ["bucketAccessKey", "bucketSecretKey"])
def test_a_missing_bucket_key_says_to_set_it_as_a_secret(key: str) -> None:
    raw, secrets = stack_config("servers")
    raw.pop(f"flightdeck:{key}")
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    assert caught.value.problems == [
        f"flightdeck:{key}: required for this target; set it with `pulumi config set --secret {key} <value>`"
    ]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.tuples(st.integers(1, 223), st.integers(0, 255), st.integers(0, 255), st.integers(1, 255)),
    st.integers(8, 31),
)
def test_a_network_with_host_bits_is_refused(octets: tuple[int, ...], prefix: int) -> None:
    address = ".".join(map(str, octets))
    network = f"{address}/{prefix}"
    assume(ipaddress.ip_network(network, strict=False).network_address != ipaddress.ip_address(address))
    [message] = problems("iaas", sshAllowList=[network])
    assert message.startswith(f"flightdeck:sshAllowList: {network!r} is not a network in CIDR form")


def _heroku_app_name(name: str) -> bool:
    """Heroku's rule, stated independently of the validator: 3-30 of a-z, 0-9, '-', starting with a letter,
    not ending with '-'."""
    allowed = set(string.ascii_lowercase + string.digits + "-")
    return 3 <= len(name) <= 30 and name[0].islower() and name[-1] != "-" and set(name) <= allowed


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=40))
def test_an_app_name_outside_heroku_rules_is_refused(name: str) -> None:
    assume(not _heroku_app_name(name))
    [message] = problems("local", appName=name)
    assert message == (
        "flightdeck:appName: must be 3-30 characters of a-z, 0-9 and -, starting with a letter "
        f"(given {name!r})"
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.from_regex(r"[a-z][a-z0-9-]{1,28}[a-z0-9]", fullmatch=True))
def test_every_name_heroku_accepts_is_accepted(name: str) -> None:
    assert parse(*stack_config("local", appName=name)).app.name == name


def test_the_ed25519_example_key_is_accepted() -> None:
    assert parse(*stack_config("iaas", sshPublicKey=ED25519)).linode.ssh_public_key == ED25519  # type: ignore[union-attr]
