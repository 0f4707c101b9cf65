"""What tools/pulumi_inline.py says of a state an older flightdeck wrote (the old layout's fixtures in
tests/fixtures/old_layout/), before it changes anything."""

from __future__ import annotations

import json
from typing import Any

from contract import ROOT
from tools.pulumi_inline import legacy_message, legacy_resources, legacy_vms

OLD_LAYOUT = ROOT / "tests" / "fixtures" / "old_layout"


def deployment(stack: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((OLD_LAYOUT / f"{stack}.json").read_text())["deployment"]["deployment"]
    return state


def test_the_records_to_forget_end_with_their_providers() -> None:
    urns = legacy_resources(deployment("iaas"))
    kinds = [urn.split("::")[2].rsplit("$", 1)[-1] for urn in urns]  # the type, without its parents
    assert {k.split(":")[0] for k in kinds} == {"random", "command", "pulumi"}
    providers = [i for i, k in enumerate(kinds) if k.startswith("pulumi:providers:")]
    assert providers == list(range(len(kinds) - len(providers), len(kinds)))  # a provider leaves last


def test_a_heroku_stack_is_adopted_as_it_runs() -> None:
    message = legacy_message("up", "dev", deployment("dev"))
    assert "Nothing has been changed" in message and "STACK=dev scripts/pulumi-local forget-legacy" in message
    assert message.endswith("The running stack, its volumes and data stay.")
    assert legacy_vms(deployment("dev")) == []


def test_an_iaas_stack_is_told_its_vms_are_replaced_and_how_to_keep_its_data() -> None:
    vms = legacy_vms(deployment("iaas"))
    assert len(vms) == 3
    message = legacy_message("preview", "iaas", deployment("iaas"))
    assert "Its 3 Linode VM(s) are replaced, not adopted" in message
    assert "take a backup with the running version" in message
    assert "`make restore STACK=iaas FROM=backups/<its file name>`" in message
    assert "data stay" not in message
