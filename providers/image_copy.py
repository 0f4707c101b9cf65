"""ImageCopy: an image, byte for byte, in another repository (a dynamic provider over skopeo).

Promotion (prod releases the image dev built) and the swarm servers (which pull from their own registry) both
need an already-built image somewhere else under the same digest. `skopeo copy --preserve-digests` copies it,
and the copy's digest is checked against the source's. Credentials go into a private auth file for the
length of the copy, never onto a command line. With `tunnel`, the destination registry listens on a server's
loopback and is reached through an SSH forward opened for the copy (the server's pinned host key checked).

Plain HTTP is used only for a registry whose address is a loopback address or `localhost`, decided from the
parsed address, never from a prefix. read() checks the copy is still there, so a registry that lost it makes
the next up copy it again. delete leaves the image where it is (registries garbage-collect; the output says
so).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from contract import repository_host, split_ref
from providers.engine import docker_config, ssh_host, unknown
from providers.ssh import SshSession, SshTrust

IDENTITY = ("source", "repository", "tunnel")
# Kept in the state for read() (refresh): the host keys the tunnel pins, and the logins the registries need.
ACCESS = ("ssh", "source_auth", "destination_auth")
SECRET_OUTPUTS = ("source_auth", "destination_auth")  # encrypted in the state
TIMEOUT = 900


class CopyFailed(RuntimeError):
    """The image could not be copied, or the copy is not the same image."""


def registry_host(address: str) -> str:
    """The host part of `host[:port]` (or `[v6]:port`)."""
    if address.startswith("["):
        return address[1 : address.index("]")]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def plain_http(address: str) -> bool:
    """Only a registry on this machine's loopback is spoken to without TLS."""
    host = registry_host(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: 127.attacker.example is not a loopback address


def promotion_tag(repository: str, digest: str) -> str:
    """The tag the copy is pushed under: registries take manifests by tag; the digest names the content."""
    return f"{repository}:promoted-{digest.removeprefix('sha256:')[:12]}"


def _skopeo(*args: str, authfile: Path) -> str:
    result = subprocess.run(
        ["skopeo", *args, "--authfile", str(authfile)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise CopyFailed(f"skopeo {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _repository_at(repository: str, address: str) -> str:
    """repository with its registry address replaced (the forward's local end)."""
    return f"{address}/{repository.removeprefix(repository_host(repository) + '/')}"


def _tls_verify(repository: str) -> str:
    return str(not plain_http(repository_host(repository))).lower()


class ImageCopyProvider(ResourceProvider):
    serialize_as_secret_always = False

    @contextlib.contextmanager
    def _destination(self, props: Mapping[str, Any]) -> Iterator[str]:
        """The destination repository as this process reaches it (through the SSH forward, if any)."""
        tunnel = props.get("tunnel")
        if not tunnel:
            yield str(props["repository"])
            return
        with SshSession(SshTrust.from_props(dict(props["ssh"]))) as session:
            host = ssh_host(str(tunnel["engine"]), str(tunnel.get("label", "")))
            with session.forward(host, str(tunnel["remote"])) as port:
                yield _repository_at(str(props["repository"]), f"127.0.0.1:{port}")

    @contextlib.contextmanager
    def _authfile(self, props: Mapping[str, Any], destination: str) -> Iterator[Path]:
        auths: dict[str, tuple[str, str]] = {}
        for key, repository in (("source_auth", str(props["source"])), ("destination_auth", destination)):
            auth = props.get(key)
            if auth:
                auths[repository_host(repository.split("@")[0])] = (
                    str(auth["username"]),
                    str(auth["password"]),
                )
        with tempfile.TemporaryDirectory(prefix="fd-skopeo-") as directory:
            path = Path(directory) / "auth.json"
            path.write_text(docker_config(auths))
            path.chmod(0o600)
            yield path

    def create(self, props: dict[str, Any]) -> CreateResult:
        source = split_ref(str(props["source"]))
        with self._destination(props) as destination, self._authfile(props, destination) as authfile:
            target = promotion_tag(destination, source.digest)
            _skopeo(
                "copy",
                "--quiet",
                "--preserve-digests",
                f"--src-tls-verify={_tls_verify(source.repository)}",
                f"--dest-tls-verify={_tls_verify(destination)}",
                f"docker://{source}",
                f"docker://{target}",
                authfile=authfile,
            )
            copied = self._digest(f"{destination}@{source.digest}", authfile)
        if copied != source.digest:
            raise CopyFailed(
                f"{props['repository']} holds {copied} after the copy, not {source.digest}: the registry "
                "rewrote "
                "the manifest, so the copy is not the image that was tested"
            )
        ref = f"{props['repository']}@{source.digest}"
        return CreateResult(
            ref, {**{k: props.get(k) for k in (*IDENTITY, *ACCESS)}, "ref": ref, "digest": source.digest}
        )

    def _digest(self, ref: str, authfile: Path) -> str:
        """The digest of the manifest the registry serves for ref (the bytes as served, hashed here)."""
        repository = split_ref(ref).repository
        raw = _skopeo(
            "inspect",
            "--raw",
            f"--tls-verify={_tls_verify(repository)}",
            f"docker://{ref}",
            authfile=authfile,
        )
        return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        digest = str(props["digest"])
        try:
            with self._destination(props) as destination, self._authfile(props, destination) as authfile:
                self._digest(f"{destination}@{digest}", authfile)
        except CopyFailed as err:
            if "manifest unknown" in str(err) or "not found" in str(err).lower():
                return ReadResult("", {})  # the copy is gone: the next up copies it again
            raise
        return ReadResult(id_, props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in IDENTITY if olds.get(key) != news.get(key) or unknown(news.get(key))]
        access = [key for key in ACCESS if olds.get(key) != news.get(key) or unknown(news.get(key))]
        return DiffResult(changes=bool(replaces or access), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only the access changed (a re-pinned host key, a new registry password): the copy stands."""
        return UpdateResult({**olds, **{key: news.get(key) for key in ACCESS}})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        print(f"left {id_} in its registry (registries garbage-collect unreferenced images)", file=sys.stderr)


@dataclass(frozen=True)
class Tunnel:
    """The destination registry on a server's loopback: reach it through an SSH forward to `remote`."""

    engine: pulumi.Input[str]  # ssh://user@host[:port] of the server
    remote: str  # host:port as the server sees it, e.g. 127.0.0.1:5000
    label: str = ""


@dataclass(frozen=True)
class ImageCopyArgs:
    source: pulumi.Input[str]  # repository@sha256:…
    repository: pulumi.Input[str]  # where the copy goes (the ref keeps this repository's name)
    source_auth: pulumi.Input[dict[str, str]] | None = None
    destination_auth: pulumi.Input[dict[str, str]] | None = None
    tunnel: Tunnel | None = None
    ssh: pulumi.Input[dict[str, Any]] | None = None


class ImageCopy(Resource, module="flightdeck", name="ImageCopy"):
    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(self, name: str, args: ImageCopyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        tunnel = (
            {"engine": args.tunnel.engine, "remote": args.tunnel.remote, "label": args.tunnel.label}
            if args.tunnel
            else None
        )
        props = {
            "source": args.source,
            "repository": args.repository,
            "source_auth": pulumi.Output.secret(args.source_auth) if args.source_auth else None,
            "destination_auth": pulumi.Output.secret(args.destination_auth)
            if args.destination_auth
            else None,
            "tunnel": tunnel,
            "ssh": args.ssh,
            "ref": None,
            "digest": None,
        }
        secret = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(ImageCopyProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret))
