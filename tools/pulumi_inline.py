"""Run the project's Pulumi program in this process through the Automation API, with the CLI of
scripts/install-pulumi.

The Pulumi CLI starts a language host (`pulumi-language-python`) to run a Python program. Where that host
is not installed (the Go module proxy does not serve it, so scripts/install-pulumi cannot build it here), an
inline program does the same job: the Python SDK serves the language host protocol itself and hands the CLI
its address (`--client`). The program is the project's own `__main__.py`; Pulumi.yaml and
Pulumi.<stack>.yaml in the project directory are used as they are, so state, config and outputs are those
`pulumi up` would give. scripts/pulumi-local sets the backend, passphrase and PATH, prepares the stack's
workspace (tools/stack_workspace.py: the stack file as the CLI may rewrite it, outside the tracked tree) and
calls this module.

A state written by flightdeck before its own providers holds pulumi-random and pulumi-command resources,
whose plugins a CLI built here cannot load. Before any operation such a state is named with the fix:
`forget-legacy` drops those records from the state (nothing running is touched), and the next `up` adopts
the running stack: same stack name, data volume kept, a new database password set in the database.
"""

from __future__ import annotations

import argparse
import json
import re
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto


def program_of(project: Path) -> Callable[[], None]:
    """The inline program: the project's __main__.py, importing its own modules (components/)."""

    def run() -> None:
        if str(project) not in sys.path:
            sys.path.insert(0, str(project))
        runpy.run_path(str(project / "__main__.py"), run_name="__main__")

    return run


LEGACY_PACKAGES = ("random", "command")
# The last line of a provider's traceback: `package.module.SomeError: what went wrong`.
RAISED = re.compile(
    r"(?:[a-z_]+\.)+[A-Z][A-Za-z]*(?:Error|Failed|Mismatch|Unavailable|Timeout|Exception): .+"
)


def legacy_resources(deployment: dict[str, Any]) -> list[str]:
    """URNs of the state's resources of pulumi-random and pulumi-command, their provider resources last (a
    provider cannot leave the state before what it manages)."""
    urns: list[str] = []
    for resource in deployment.get("resources") or []:
        kind = str(resource.get("type", ""))
        package = (
            kind.removeprefix("pulumi:providers:")
            if kind.startswith("pulumi:providers:")
            else kind.split(":")[0]
        )
        if package in LEGACY_PACKAGES:
            urns.append(str(resource["urn"]))
    return sorted(urns, key=lambda urn: "::pulumi:providers:" in urn)


def legacy_vms(deployment: dict[str, Any]) -> list[str]:
    """The Linode VMs of an older flightdeck's state: this version replaces them (they boot inside their
    firewall, with no root key and a generated host key it pins, which a running VM cannot be given)."""
    return [
        str(r["urn"])
        for r in deployment.get("resources") or []
        if r.get("type") == "linode:index/instance:Instance"
    ]


def legacy_message(operation: str, stack: str, deployment: dict[str, Any]) -> str:
    """What an older flightdeck's state means for this operation, and the fix; nothing has been changed."""
    legacy = legacy_resources(deployment)
    message = (
        f"pulumi {operation}: the stack {stack} was deployed by an older flightdeck: its state holds "
        f"{len(legacy)} pulumi-random/pulumi-command resource(s), whose plugins this CLI cannot load "
        f"(e.g. {legacy[0]}). Nothing has been changed. Run `STACK={stack} scripts/pulumi-local "
        "forget-legacy` to drop those records, then "
        f"`make up STACK={stack}`: it adopts the running stack and sets a new database password."
    )
    vms = legacy_vms(deployment)
    if not vms:
        return message + " The running stack, its volumes and data stay."
    return message + (
        f" Its {len(vms)} Linode VM(s) are replaced, not adopted (this version boots them inside their "
        "firewall, with no root key and a generated host key it pins, which a running VM cannot be given), "
        "and the stack's own database is on the manager VM's disk. Before the up, take a backup with the "
        "running version (its backup job writes to the bucket's backups/ folder, which the up keeps, as it "
        "keeps the NodeBalancer and its address); after it, restore that backup: "
        f"`make restore STACK={stack} FROM=backups/<its file name>`."
    )


def open_stack(project: Path, work_dir: Path, stack: str, pulumi_root: Path) -> auto.Stack:
    """Select the stack (creating it with a passphrase secrets provider when missing) in the workspace."""
    name = yaml.safe_load((project / "Pulumi.yaml").read_text())["name"]
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        pulumi_command=auto.PulumiCommand(root=str(pulumi_root)),
        secrets_provider="passphrase",
    )
    return auto.create_or_select_stack(
        stack_name=stack, project_name=name, program=program_of(project), opts=options
    )


def _name(op: object) -> str:
    """An operation's name ("update", "same", ...): summaries hold OpType members or plain text."""
    return str(getattr(op, "value", op))


def step_of(event: auto.EngineEvent) -> dict[str, Any] | None:
    """The planned step of a resource event: operation, URN and type (None for other events)."""
    pre = event.resource_pre_event
    if pre is None:
        return None
    metadata = pre.metadata
    return {"op": _name(metadata.op), "urn": metadata.urn, "type": metadata.type}


def preview(stack: auto.Stack, expect_no_changes: bool, as_json: bool) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []

    def collect(event: auto.EngineEvent) -> None:
        if (step := step_of(event)) is not None:
            steps.append(step)

    result = stack.preview(
        on_output=None if as_json else print,
        on_event=collect,
        expect_no_changes=expect_no_changes,
        color="never",
    )
    return {"changeSummary": {_name(op): n for op, n in result.change_summary.items()}, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=["up", "preview", "destroy", "refresh", "forget-legacy"])
    parser.add_argument("--stack", default="local")
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--work-dir", type=Path, required=True, help="the stack's workspace")
    parser.add_argument("--pulumi-root", type=Path, required=True, help="directory holding bin/pulumi")
    parser.add_argument("--expect-no-changes", action="store_true", help="fail when a change is planned")
    parser.add_argument("--json", action="store_true", help="preview: print the summary and steps as JSON")
    args = parser.parse_args(argv)

    stack = open_stack(args.project.resolve(), args.work_dir.resolve(), args.stack, args.pulumi_root)
    deployment = dict(stack.export_stack().deployment or {})
    legacy = legacy_resources(deployment)
    if args.operation == "forget-legacy":
        for urn in legacy:
            stack.workspace.pulumi_command.run(
                ["state", "delete", "--force", "--yes", "--stack", args.stack, urn], str(args.work_dir), {}
            )
            print(f"forgot {urn}")
        print(
            f"{len(legacy)} record(s) of pulumi-random and pulumi-command removed; `make up` adopts what runs"
        )
        return 0
    if legacy:
        print(legacy_message(args.operation, args.stack, deployment), file=sys.stderr)
        return 1
    try:
        if args.operation == "preview":
            planned = preview(stack, args.expect_no_changes, args.json)
            print(json.dumps(planned, indent=2) if args.json else planned["changeSummary"])
        else:
            result: auto.UpResult | auto.RefreshResult | auto.DestroyResult
            if args.operation == "up":
                result = stack.up(on_output=print, expect_no_changes=args.expect_no_changes, color="never")
            elif args.operation == "refresh":
                result = stack.refresh(
                    on_output=print, expect_no_changes=args.expect_no_changes, color="never"
                )
            else:
                result = stack.destroy(on_output=print, color="never")
            # The last line: what changed, for scripts (tests, benchmarks) to read.
            print(json.dumps({"resourceChanges": result.summary.resource_changes}))
    except auto.CommandError as error:
        # The CLI's output has been printed already; its error lines, and the message of an exception a
        # provider raised (the last line of its traceback), say why it stopped.
        lines = [line.strip() for line in str(error).splitlines()]
        reasons = [line for line in lines if line.startswith("error:") and "Traceback" not in line]
        raised = [line for line in lines if RAISED.match(line)]
        print(
            f"pulumi {args.operation} failed",
            *dict.fromkeys([*raised, *reasons[-5:]]),
            sep="\n  ",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
