"""Settings: every stack file parses; every bad value is refused with a message a person can act on."""

from __future__ import annotations

import ipaddress
import string
from typing import Any, get_args

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from components.settings import (
    HerokuDynoSize,
    HerokuPostgresPlan,
    HerokuRegion,
    LinodeRegion,
    LinodeType,
    SettingsError,
    Target,
    parse,
)
from tests.support.stacks import STACKS, stack_config


def problems(stack: str, secret_keys: set[str] | None = None, **overrides: Any) -> list[str]:
    raw, secrets = stack_config(stack, **overrides)
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets if secret_keys is None else secret_keys)
    return caught.value.problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_parses(stack: str) -> None:
    settings_ = parse(*stack_config(stack))
    assert settings_.target in Target
    assert settings_.app.name.startswith("flightdeck-")


def test_each_target_reads_only_its_own_sections() -> None:
    local, dev, iaas = (parse(*stack_config(s)) for s in ("local", "dev", "iaas"))
    assert local.swarm and not local.heroku and not local.linode
    assert dev.heroku and not dev.swarm and not dev.linode
    assert iaas.swarm and iaas.linode and not iaas.heroku


def test_prod_differs_from_dev_only_in_values() -> None:
    dev, prod = parse(*stack_config("dev")), parse(*stack_config("prod"))
    assert dev.heroku and prod.heroku
    assert (dev.heroku.dyno_size, prod.heroku.dyno_size) == ("basic", "standard-2x")
    assert (dev.heroku.protect_database, prod.heroku.protect_database) == (False, True)
    assert prod.app.accessories == ("redis",)


def test_structured_values_arrive_as_json() -> None:
    settings_ = parse(*stack_config("local", configVars={"FEATURE_FLAG": "on"}, webInstances=3))
    assert settings_.app.config_vars == {"FEATURE_FLAG": "on"}
    assert settings_.app.web_instances == 3


def test_api_key_must_be_secret() -> None:
    [message] = problems("dev", secret_keys=set())
    assert message.startswith("heroku:apiKey: must be a secret")
    assert "pulumi config set --secret heroku:apiKey" in message
    assert "test-heroku-api-key" not in message


def test_missing_api_key_names_both_ways_to_give_it() -> None:
    raw, _ = stack_config("dev")
    raw.pop("heroku:apiKey")
    with pytest.raises(SettingsError) as caught:
        parse(raw, set())
    assert caught.value.problems == [
        "heroku:apiKey: required for this target; set it with `pulumi config set heroku:apiKey <value>`"
    ]


def test_secret_config_vars_must_be_encrypted_and_are_never_echoed() -> None:
    [message] = problems("dev", secretConfigVars={"STRIPE_KEY": "sk_live_do_not_print"})
    assert "flightdeck:secretConfigVars: holds secrets but is stored in plain text" in message
    assert "sk_live_do_not_print" not in message


def test_encrypted_secret_config_vars_are_kept_as_secret_strings() -> None:
    raw, secrets = stack_config("dev", secretConfigVars={"STRIPE_KEY": "sk_live_x"})
    settings_ = parse(raw, {*secrets, "flightdeck:secretConfigVars"})
    assert settings_.app.secret_config_vars["STRIPE_KEY"].get_secret_value() == "sk_live_x"
    assert "sk_live_x" not in repr(settings_)


def test_typo_in_a_key_suggests_the_right_one() -> None:
    raw, secrets = stack_config("dev")
    raw["flightdeck:herokuDynosize"] = "eco"
    with pytest.raises(SettingsError) as caught:
        parse(raw, secrets)
    assert caught.value.problems == [
        "flightdeck:herokuDynosize: not a setting flightdeck knows; did you mean flightdeck:herokuDynoSize?"
    ]


def test_every_problem_is_reported_at_once() -> None:
    found = problems("prod", herokuDynoSize="huge", herokuPostgresPlan="hobby-dev", webInstances=0)
    assert [p.split(":")[1] for p in found] == ["webInstances", "herokuDynoSize", "herokuPostgresPlan"]


def test_eco_dynos_cannot_scale_out() -> None:
    [message] = problems("dev", herokuDynoSize="eco", webInstances=2)
    assert "eco dynos run one per process type; got 2" in message
    assert "herokuDynoSize: standard-1x" in message


def test_unknown_target_lists_the_targets() -> None:
    [message] = problems("local", target="kubernetes")
    assert message == "flightdeck:target: must be one of local, heroku, iaas (given 'kubernetes')"


def test_error_is_a_clean_pulumi_run_error() -> None:
    import pulumi

    with pytest.raises(pulumi.RunError, match="Fix the values with `pulumi config set`"):
        parse(*stack_config("local", webInstances=-1))


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


@settings(max_examples=80, deadline=None)
@given(enum_case())
def test_a_value_outside_the_allowed_set_names_key_value_and_choices(
    case: tuple[str, str, str, tuple[str, ...]],
) -> None:
    stack, key, value, allowed = case
    [message] = problems(stack, **{key: value})
    assert message.startswith(f"flightdeck:{key}: Input should be ")
    assert f"(given {value!r})" in message
    assert all(repr(choice) in message for choice in allowed)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(STACKS),
    st.one_of(st.integers(max_value=0), st.integers(min_value=51)),
)
def test_a_count_out_of_range_names_the_bound(stack: str, count: int) -> None:
    [message] = problems(stack, webInstances=count)
    bound = "greater than or equal to 1" if count < 1 else "less than or equal to 50"
    assert message == f"flightdeck:webInstances: Input should be {bound} (given {str(count)!r})"


SECRET_WORDS = ["SECRET", "PASSWORD", "TOKEN", "API_KEY", "PRIVATE", "CREDENTIAL", "DSN"]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["local", "dev", "prod", "iaas"]),
    st.sampled_from(SECRET_WORDS),
    st.text(string.ascii_uppercase, max_size=6),
    st.text(min_size=1, max_size=30).map(lambda text: f"§{text}"),  # § marks it: no advice contains it
)
def test_a_secret_in_plain_config_vars_points_to_secret_config_vars(
    stack: str, word: str, prefix: str, value: str
) -> None:
    name = f"{prefix}_{word}" if prefix else word
    [message] = problems(stack, configVars={name: value})
    assert message.startswith(f"flightdeck:configVars: {name} looks like a secret but is plain text")
    assert f"--path 'secretConfigVars.{name}'" in message
    assert value not in message


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["appName", "sshPublicKey", "sshAllowList"]))
def test_a_missing_required_key_says_how_to_set_it(key: str) -> None:
    stack = "local" if key == "appName" else "iaas"
    [message] = problems(stack, **{key: None})
    assert (
        message
        == f"flightdeck:{key}: required for this target; set it with `pulumi config set {key} <value>`"
    )


@settings(max_examples=60, deadline=None)
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


@settings(max_examples=60, deadline=None)
@given(st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=40))
def test_an_app_name_outside_heroku_rules_is_refused(name: str) -> None:
    assume(not _heroku_app_name(name))
    [message] = problems("local", appName=name)
    assert message == (
        "flightdeck:appName: must be 3-30 characters of a-z, 0-9 and -, starting with a letter "
        f"(given {name!r})"
    )


@settings(max_examples=60, deadline=None)
@given(st.from_regex(r"[a-z][a-z0-9-]{1,28}[a-z0-9]", fullmatch=True))
def test_every_name_heroku_accepts_is_accepted(name: str) -> None:
    assert parse(*stack_config("local", appName=name)).app.name == name
