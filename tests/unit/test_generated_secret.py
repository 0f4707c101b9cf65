"""The generated-secret provider (providers/generated_secret.py), driven directly (mocks never call a dynamic
provider): what create draws, that diff keeps a value for as long as its recipe, what check refuses."""

from __future__ import annotations

import json
import string
from typing import Any

import bcrypt
import pytest

from providers.generated_secret import ALPHABETS, GeneratedSecretProvider

PROVIDER = GeneratedSecretProvider()


def recipe(length: Any = 48, alphabet: Any = "alphanumeric", bcrypt_: Any = False) -> dict[str, Any]:
    return {"length": length, "alphabet": alphabet, "bcrypt": bcrypt_, "value": None, "bcrypt_hash": None}


def from_state(outs: dict[str, Any]) -> dict[str, Any]:
    """Outputs as the state gives them back (numbers as floats)."""
    loaded: dict[str, Any] = json.loads(json.dumps(outs), parse_int=float)
    return loaded


@pytest.mark.parametrize(
    ("length", "alphabet"), [(16, "alphanumeric"), (64, "urlsafe"), (256, "alphanumeric")]
)
def test_create_draws_the_length_from_the_alphabet(length: int, alphabet: str) -> None:
    result = PROVIDER.create(recipe(length, alphabet))
    value = result.outs["value"]
    assert len(value) == length
    assert set(value) <= set(ALPHABETS[alphabet])
    assert result.outs["bcrypt_hash"] == ""
    assert {k: result.outs[k] for k in ("length", "alphabet", "bcrypt")} == {
        "length": length, "alphabet": alphabet, "bcrypt": False
    }  # fmt: skip
    assert value not in result.id  # the id says nothing of the value


def test_the_alphabets_are_safe_unquoted_in_urls_shells_and_yaml() -> None:
    assert ALPHABETS["alphanumeric"] == string.ascii_letters + string.digits
    assert set(ALPHABETS["urlsafe"]) - set(ALPHABETS["alphanumeric"]) == {"-", "_"}


def test_every_draw_is_new_and_uses_the_whole_alphabet() -> None:
    values = [PROVIDER.create(recipe(64, "urlsafe")).outs["value"] for _ in range(40)]
    assert len(set(values)) == len(values)
    assert set("".join(values)) == set(ALPHABETS["urlsafe"])  # 2560 draws from 64 symbols miss none


def test_a_bcrypt_recipe_also_outputs_a_hash_that_verifies() -> None:
    outs = PROVIDER.create(recipe(32, bcrypt_=True)).outs
    hashed = outs["bcrypt_hash"]
    assert bcrypt.checkpw(outs["value"].encode(), hashed.encode())
    assert not bcrypt.checkpw(b"another value", hashed.encode())
    assert hashed.startswith("$2b$12$")  # cost 12, a prefix distribution's htpasswd accepts


def test_diff_is_stable_for_an_equal_recipe_even_from_the_state() -> None:
    outs = PROVIDER.create(recipe(64, "urlsafe", True)).outs
    result = PROVIDER.diff("id", from_state(outs), recipe(64, "urlsafe", True))
    assert result.changes is False
    assert result.replaces == []


@pytest.mark.parametrize("change", [{"length": 65}, {"alphabet": "alphanumeric"}, {"bcrypt": False}])
def test_a_changed_recipe_replaces_the_value(change: dict[str, Any]) -> None:
    outs = PROVIDER.create(recipe(64, "urlsafe", True)).outs
    news = {**recipe(64, "urlsafe", True), **change}
    result = PROVIDER.diff("id", from_state(outs), news)
    assert result.changes is True
    assert result.replaces == list(change)


def test_read_and_delete_touch_nothing_outside_the_state() -> None:
    outs = PROVIDER.create(recipe()).outs
    assert PROVIDER.read("id", outs).outs == outs
    assert PROVIDER.delete("id", outs) is None


@pytest.mark.parametrize("length", [15, 257, 0, -1, "48", None, 1.5e3])
def test_check_refuses_lengths_out_of_range(length: Any) -> None:
    failures = PROVIDER.check({}, recipe(length)).failures
    assert [f.property for f in failures] == ["length"]
    assert "16-256" in failures[0].reason


@pytest.mark.parametrize("alphabet", ["hex", "", None, "ALPHANUMERIC"])
def test_check_refuses_unknown_alphabets(alphabet: Any) -> None:
    failures = PROVIDER.check({}, recipe(alphabet=alphabet)).failures
    assert [f.property for f in failures] == ["alphabet"]


def test_check_passes_a_good_recipe_as_it_is() -> None:
    result = PROVIDER.check({}, recipe(16.0, "urlsafe"))  # a length that went through the state
    assert result.failures == []
    assert result.inputs == recipe(16.0, "urlsafe")
