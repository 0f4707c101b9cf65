"""Disk hygiene of the stack's registry: after each deploy, the manifests of releases older than the last
`keep_releases` are deleted through the registry's API, then distribution's garbage collector reclaims the
blobs nothing references any more.

The collector runs right after a deploy's own pushes, not on a clock: distribution's `garbage-collect` is not
safe while an upload is in progress, and only a deploy uploads. It runs as a one-off job shaped like the
registry (its config, its credentials for the bucket) for the servers' registry, and as a one-off container on
the registry's volume for this machine's.
"""

from __future__ import annotations

import base64
import contextlib
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from providers import jobs
from providers.engine import Engine, ssh_host
from providers.releases import Release
from providers.ssh import SshSession

GC_ARGS = ("garbage-collect", "--delete-untagged")
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def doomed(history: Sequence[Release], keep: int, serving: set[str]) -> list[str]:
    """Digests of the releases beyond the last `keep`, except any image a service still runs."""
    kept = {r.digest for r in history[-keep:]} | serving
    return sorted({r.digest for r in history[:-keep]} - kept) if keep < len(history) else []


def _log(stack: str, message: str) -> None:
    print(f"[{stack}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _address(registry: Mapping[str, Any], engine: Engine, session: SshSession | None) -> Iterator[str]:
    """Where this process reaches the registry: itself on this machine, or a forward to the manager."""
    if session is None or not engine.url.startswith("ssh://"):
        yield str(registry["address"])
        return
    with session.forward(ssh_host(engine.url), str(registry["address"])) as port:
        yield f"127.0.0.1:{port}"


def delete_manifests(
    address: str, repository: str, digests: Sequence[str], auth: Mapping[str, str] | None
) -> int:
    """DELETE each manifest by digest (a missing one counts as deleted); the number deleted."""
    headers = {"Accept": MANIFEST}
    if auth:
        token = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    deleted = 0
    for digest in digests:
        url = f"http://{address}/v2/{repository}/manifests/{digest}"
        request = urllib.request.Request(url, method="DELETE", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                deleted += 1
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise RuntimeError(
                    f"the registry refused to delete {repository}@{digest}: HTTP {err.code}"
                ) from None
    return deleted


def collect(engine: Engine, registry: Mapping[str, Any], timeout: float) -> str:
    """Run the garbage collector on the registry's storage; its output."""
    if registry["kind"] == "service":
        spec = jobs.like_service(engine.client, str(registry["name"]), (*GC_ARGS, str(registry["config"])))
        result = jobs.run_job(engine.client, f"{registry['name']}_gc", spec, timeout=timeout)
        if not result.succeeded:
            raise RuntimeError(
                f"the registry's garbage collection failed: {result.errors}\n{result.output[-2000:]}"
            )
        return result.output
    container = engine.client.containers.get(str(registry["name"]))
    mounts = {
        m["Name"]: {"bind": m["Destination"], "mode": "rw"}
        for m in container.attrs["Mounts"]
        if m.get("Name")
    }
    output = engine.client.containers.run(
        container.attrs["Config"]["Image"], [*GC_ARGS, str(registry["config"])], volumes=mounts, remove=True
    )
    return output.decode(errors="replace") if isinstance(output, bytes) else str(output)


def prune_registry(
    engine: Engine,
    session: SshSession | None,
    *,
    stack: str,
    registry: Mapping[str, Any],
    repository: str,
    digests: Sequence[str],
    auth: Mapping[str, str] | None,
    timeout: float,
) -> None:
    """Delete the given releases' manifests from the registry, then collect its garbage."""
    if not digests:
        return
    with _address(registry, engine, session) as address:
        deleted = delete_manifests(address, repository, digests, auth)
    collect(engine, registry, timeout)
    _log(stack, f"registry: dropped {deleted} old release(s) of {repository} and collected their layers")
