"""Run the whole Pulumi program (__main__'s deploy(load())) for a stack file under the recording mocks."""

from __future__ import annotations

from typing import Any

import pulumi

from settings import load
from targets import deploy
from tests.support.linode_mocks import use_linode_mocks
from tests.support.pulumi_mocks import RecordingMocks
from tests.support.stacks import stack_config


def run_program(stack: str, **overrides: Any) -> tuple[RecordingMocks, dict[str, Any]]:
    """Declare the stack's resources as `pulumi up --stack <stack>` would; return the mocks (what was
    declared) and the stack outputs, resolved."""
    raw, secret_keys = stack_config(stack, **overrides)
    pulumi.runtime.set_all_config(raw, sorted(secret_keys))
    mocks = use_linode_mocks(stack)  # the shared mocks, and what Linode's and the host keys' answer
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[misc]
    def program() -> pulumi.Output[None]:
        outputs = deploy(load()).exports()
        return pulumi.Output.from_input(outputs).apply(resolved.update)

    program()
    return mocks, resolved
