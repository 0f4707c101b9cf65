"""Rollback through Pulumi: `make rollback STACK=<stack> TO=<release number|image by digest> [FORCE=1]`.

A rollback is a deployment of an older release: the stack's `flightdeck:imageDigest` is pinned (on this
machine, in the stack's workspace) to the release's image, and `pulumi up` releases it — so the next `up`
keeps it instead of silently undoing it (`make unpin STACK=<stack>` builds from the code again). Without TO
the stack's releases are listed, newest first, the serving one starred.

Before anything changes, the migrations the database has applied are compared with the ones the target
image knows: when the target predates applied migrations, they are named and the rollback stops unless
FORCE is given (the database is not migrated backwards; the older code must cope with the newer schema).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from contract import ROOT, split_ref
from providers import releases
from tools.stack_access import AccessError, app_deployment, manager, run_job

_APPLIED = re.compile(r"\s*\[(?P<mark>[X ])\]\s+(?P<name>\S+)")


def migrations(output: str) -> tuple[set[str], set[str]]:
    """(known, applied) migrations of `manage.py showmigrations --plan` output."""
    known, applied = set(), set()
    for line in output.splitlines():
        match = _APPLIED.fullmatch(line.rstrip())
        if match:
            known.add(match["name"])
            if match["mark"] == "X":
                applied.add(match["name"])
    return known, applied


def predated(current: str, target: str) -> list[str]:
    """Migrations the database has applied (as the serving image reports) that the target image lacks."""
    _, applied = migrations(current)
    known, _ = migrations(target)
    return sorted(applied - known)


def resolve(history: list[releases.Release], to: str) -> str:
    """The image of release number `to`, or `to` itself when it is an image by digest of the history."""
    if to.isdigit():
        found = [r for r in history if r.number == int(to)]
        if not found:
            numbers = ", ".join(str(r.number) for r in history) or "none"
            raise AccessError(f"there is no release {to} (recorded: {numbers}); `make releases` lists them")
        return found[0].image
    split_ref(to)
    if to not in {r.image for r in history}:
        raise AccessError(f"{to} is not one of the stack's recorded releases; `make releases` lists them")
    return to


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--to", help="a release number or an image by digest; without it, list the releases")
    parser.add_argument("--force", action="store_true", help="roll back past applied migrations")
    args = parser.parse_args(argv)
    try:
        deployment = app_deployment(args.stack)
        stack = str(deployment["stack"])
        with manager(deployment) as engine:
            history = releases.history(engine.client, stack)
            serving = str(deployment.get("image", ""))
            if not args.to:
                for release in reversed(history):
                    mark = "*" if release.image == serving else " "
                    print(f"{mark} {release.number:4d}  {release.deployed_at}  {release.image}")
                return 0
            target = resolve(history, args.to)
            if target == serving:
                print(f"rollback: {stack} already serves {target}")
                return 0
            plan = ["python", "manage.py", "showmigrations", "--plan"]
            now = run_job(engine, f"{stack}_web", plan)
            then = run_job(engine, f"{stack}_web", plan, image=target)
            if not (now.succeeded and then.succeeded):
                raise AccessError(
                    f"could not list the migrations:\n{now.output[-1500:]}\n{then.output[-1500:]}"
                )
        missing = predated(now.output, then.output)
        if missing and not args.force:
            print(
                f"rollback: {target} predates {len(missing)} migration(s) the database has applied: "
                f"{', '.join(missing)}. Nothing was changed. The older code would run against the newer "
                "schema; "
                "if it copes (the migrations only added nullable columns or tables, say), repeat with "
                "FORCE=1",
                file=sys.stderr,
            )
            return 1
        pulumi = str(ROOT / "scripts" / "pulumi-local")
        env = {**os.environ, "STACK": args.stack}
        subprocess.run(
            [pulumi, "cli", "config", "set", "flightdeck:imageDigest", target], env=env, check=True
        )
        print(f"rollback: {stack}: releasing {target} through pulumi up (pinned; `make unpin` builds again)")
        return subprocess.run([pulumi, "up"], env=env, check=False).returncode
    except AccessError as err:
        print(f"rollback: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
