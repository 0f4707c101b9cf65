"""The workspace scripts/pulumi-local runs a stack in, so that `make up`, `make preview` and `make down` never
write a tracked file.

`.pulumi-state/workspaces/<stack>/` holds a copy of Pulumi.yaml and a Pulumi.<stack>.yaml merged from:
1. the tracked stack file (the source of every value it sets, and of its secrets provider if it has one);
2. what earlier runs kept in the workspace: the passphrase provider's `encryptionsalt` that creating the stack
   wrote, and values set on this machine only (`pulumi-local cli config set …`, `make rollback`);
3. stand-ins for service images this machine cannot pull (no registry reachable), for the `local` stack
   only, each named in the log.
The program itself runs from the project (tools/pulumi_inline.py), so state, outputs and code are the same
as `pulumi up` in the project gives.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from contract import ROOT

# Keys of a stack file that belong to its secrets provider, not to its config.
PROVIDER_KEYS = ("secretsprovider", "encryptedkey", "encryptionsalt")
# Config keys naming images the local stack runs, and the stand-in built when the image cannot be pulled.
STANDINS = {
    "flightdeck:pythonImage": (
        "flightdeck/python-standin:3.13",
        ["scripts/standin-image", "flightdeck/python-standin:3.13"],
    ),
    "flightdeck:postgresImage": (
        "flightdeck/postgres-standin:trixie",
        ["scripts/standin-services", "postgres"],
    ),
    "flightdeck:proxyImage": ("flightdeck/caddy-standin:trixie", ["scripts/standin-services", "caddy"]),
    "flightdeck:registryImage": (
        "flightdeck/registry-standin:trixie",
        ["scripts/standin-services", "registry"],
    ),
    "flightdeck:redisImage": ("flightdeck/redis-standin:trixie", ["scripts/standin-services", "redis"]),
}


def _text(value: Any) -> str:
    """A config value as the CLI may rewrite it (it writes scalars back as strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def local_values(current: Mapping[str, Any], generated: Mapping[str, Any]) -> dict[str, Any]:
    """Config set on this machine since the workspace was last written: keys the CLI added or changed."""
    return {k: v for k, v in current.items() if k not in generated or _text(generated[k]) != _text(v)}


def merge_stack_file(
    tracked: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    generated: Mapping[str, Any],
    overrides: Mapping[str, str],
) -> dict[str, Any]:
    """The workspace's stack file. Config: the tracked file's, then the stand-ins, then values set on this
    machine (they win: someone set them on purpose). Secrets provider: the tracked file's, else the one an
    earlier run created in the workspace."""
    current = current or {}
    merged: dict[str, Any] = {}
    source = tracked if any(key in tracked for key in PROVIDER_KEYS) else current
    for key in PROVIDER_KEYS:
        if key in source:
            merged[key] = source[key]
    local = local_values(current.get("config") or {}, generated)
    merged["config"] = {**(tracked.get("config") or {}), **overrides, **local}
    return merged


def log(message: str) -> None:
    print(f"pulumi-local: {message}", file=sys.stderr)


def _has_image(image: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode
        == 0
    )


def standin_overrides(config: Mapping[str, Any], defaults: Mapping[str, Any], root: Path) -> dict[str, str]:
    """For each image the local stack runs that this machine's engine neither has nor can pull, a stand-in
    (built once from Debian's packages by scripts/standin-*)."""
    overrides = {}
    for key, (standin, build) in STANDINS.items():
        image = str(config.get(key, defaults.get(key.split(":", 1)[1], {}).get("default", "")))
        if not image or image == standin or _has_image(image):
            continue
        if not _has_image(standin):
            pulled = subprocess.run(
                ["docker", "pull", "--quiet", image], capture_output=True, text=True, check=False
            )
            if pulled.returncode == 0:
                continue
            log(
                f"{image} cannot be pulled ({pulled.stderr.strip().splitlines()[-1:]}); building the "
                f"stand-in {standin}"
            )
            subprocess.run([str(root / build[0]), *build[1:]], check=True, stdout=subprocess.DEVNULL)
        log(f"{key.split(':', 1)[1]}: using the stand-in {standin} for {image} (no registry reachable here)")
        overrides[key] = standin
    return overrides


def prepare(root: Path, state: Path, stack: str, *, standins: bool) -> Path:
    """Write the workspace of stack and return its directory."""
    work = state / "workspaces" / stack
    work.mkdir(parents=True, exist_ok=True)
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    shutil.copyfile(root / "Pulumi.yaml", work / "Pulumi.yaml")
    tracked_file = root / f"Pulumi.{stack}.yaml"
    if not tracked_file.is_file():
        raise SystemExit(
            f"pulumi-local: there is no stack file {tracked_file.name}; see the README for the stacks"
        )
    tracked = yaml.safe_load(tracked_file.read_text()) or {}
    stack_file, record = work / f"Pulumi.{stack}.yaml", work / "generated.yaml"
    current = yaml.safe_load(stack_file.read_text()) if stack_file.is_file() else None
    generated = yaml.safe_load(record.read_text()) if record.is_file() else {}
    overrides = (
        standin_overrides(tracked.get("config") or {}, project.get("config") or {}, root) if standins else {}
    )
    merged = merge_stack_file(tracked, current, generated or {}, overrides)
    for key, value in local_values((current or {}).get("config") or {}, generated or {}).items():
        log(f"{key}={value!r} is set on this machine only (`pulumi-local cli config rm {key}` removes it)")
    stack_file.write_text(yaml.safe_dump(merged, sort_keys=False))
    # What this run wrote apart from the machine's own values, to tell those apart next time.
    record.write_text(yaml.safe_dump({**(tracked.get("config") or {}), **overrides}, sort_keys=False))
    return work


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--state", type=Path, required=True, help="the state directory (.pulumi-state)")
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument(
        "--standins", action="store_true", help="use stand-ins for images that cannot be pulled"
    )
    args = parser.parse_args(argv)
    print(prepare(args.root, args.state, args.stack, standins=args.standins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
