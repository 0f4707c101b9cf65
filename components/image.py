"""The app image: built once per commit and pushed, or an already-built one promoted; known downstream only
by its digest.

Every target releases `ref` (`<repository>@sha256:<manifest digest>`), never a mutable tag. Tags `<git sha>`
and `latest` are for people and for the inline cache. Promotion (prod releasing what dev built, or a
rollback to a recorded release) builds nothing: `PromotedImage` copies the image by digest.

Heroku's registry takes only Docker v2 schema 2 manifests: the registry export never uses OCI media types,
and the build runs in `exec` mode on the engine's own BuildKit (buildx's `docker` driver, builder `default`),
which adds no provenance attestation. That mode needs only the engine; no BuildKit image is pulled.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker_build as docker_build

from contract import APP_DIR, DEFAULT_PYTHON_IMAGE, ROOT, split_ref
from providers.image_copy import ImageCopy, ImageCopyArgs, Tunnel

PLATFORM = docker_build.Platform.LINUX_AMD64  # Heroku and the Linode VMs run amd64
_SHA = re.compile(r"[0-9a-f]{40}")


def git_head_sha(repo: Path = ROOT) -> str:
    """The commit HEAD points at, read from the repository's files (no git binary needed). A dirty tree still
    gives HEAD's sha: the tag is a label for people; the digest is what identifies the image."""
    git = repo / ".git"
    if not git.exists():
        raise ValueError(
            f"{repo} is not a git checkout: the image is tagged with the commit it was built from"
        )
    if git.is_file():  # a worktree or submodule: ".git" names the real directory
        git = (repo / git.read_text().removeprefix("gitdir:").strip()).resolve()
    head = (git / "HEAD").read_text().strip()
    if _SHA.fullmatch(head):
        return head  # detached HEAD
    ref = head.removeprefix("ref:").strip()
    common = git / "commondir"
    roots = [git] + ([(git / common.read_text().strip()).resolve()] if common.is_file() else [])
    for root in roots:
        loose = root / ref
        if loose.is_file():
            return loose.read_text().strip()
        packed = root / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and _SHA.fullmatch(sha):
                    return sha
    raise ValueError(f"{repo}: HEAD points at {ref}, which has no commit yet; commit before building")


@dataclass(frozen=True)
class RegistryLogin:
    address: pulumi.Input[str]  # e.g. registry.heroku.com
    username: pulumi.Input[str]  # "_" for Heroku
    password: pulumi.Input[str]  # made secret by the components


@dataclass(frozen=True)
class AppImageArgs:
    repository: pulumi.Input[str]  # e.g. registry.heroku.com/<app>/web, 127.0.0.1:5000/<app>/web
    context: Path = APP_DIR
    dockerfile: str = "Dockerfile"  # inside context
    # Build ARG PYTHON_IMAGE of app/Dockerfile; None for a Dockerfile without it (backup/).
    python_image: str | None = DEFAULT_PYTHON_IMAGE
    build_args: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # further build ARGs
    git_sha: str = field(default_factory=git_head_sha)
    registry: RegistryLogin | None = None
    insecure: bool = False  # plain-HTTP registry (one on 127.0.0.1)
    network_host: bool = False  # RUN steps and the push on the host network (a registry on its loopback)


def _not_known_yet() -> pulumi.Output[str]:
    """An output the engine shows as not known yet (what the image's digest is until it is built)."""
    loop = asyncio.get_event_loop()
    value: asyncio.Future[str] = loop.create_future()
    known: asyncio.Future[bool] = loop.create_future()
    value.set_result("")
    known.set_result(False)
    return pulumi.Output(set(), value, known)


def build_args(args: AppImageArgs) -> dict[str, pulumi.Input[str]]:
    """The build's ARGs: PYTHON_IMAGE (unless None) and the extra ones, which win."""
    python = {} if args.python_image is None else {"PYTHON_IMAGE": args.python_image}
    return {**python, **args.build_args}


class AppImage(pulumi.ComponentResource):
    """Outputs `ref` (<repository>@<digest>) and `digest` of the image every target releases."""

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:image:AppImage", name, None, opts)
        repo = pulumi.Output.from_input(args.repository)
        registries = None
        if args.registry:
            registries = [
                docker_build.RegistryArgs(
                    address=args.registry.address,
                    username=args.registry.username,
                    password=pulumi.Output.secret(args.registry.password),
                )
            ]
        image = docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=str(args.context)),
            dockerfile=docker_build.DockerfileArgs(location=str(args.context / args.dockerfile)),
            build_args=build_args(args),
            platforms=[PLATFORM],
            tags=[repo.apply(lambda r: f"{r}:{args.git_sha}"), repo.apply(lambda r: f"{r}:latest")],
            push=False,  # the explicit export pushes, with its media types pinned
            # Schema 2 only: Heroku's registry refuses OCI manifests and image indexes.
            exports=[
                docker_build.ExportArgs(
                    registry=docker_build.ExportRegistryArgs(
                        oci_media_types=False, push=True, insecure=args.insecure or None
                    )
                )
            ],
            registries=registries,
            # Inline cache metadata in the image, read back from :latest (the docker driver cannot export a
            # registry cache).
            cache_from=[
                docker_build.CacheFromArgs(
                    registry=docker_build.CacheFromRegistryArgs(ref=repo.apply(lambda r: f"{r}:latest"))
                )
            ],
            cache_to=[docker_build.CacheToArgs(inline=docker_build.CacheToInlineArgs())],
            network=docker_build.NetworkMode.HOST if args.network_host else docker_build.NetworkMode.DEFAULT,
            exec_=True,
            builder=docker_build.BuilderConfigArgs(name="default"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # A preview that skips the build reports an empty digest: the new image is not known yet.
        self.digest = image.digest.apply(lambda d: d or _not_known_yet())
        self.ref = pulumi.Output.all(repo, self.digest).apply(lambda v: f"{v[0]}@{v[1]}")
        self.register_outputs({"ref": self.ref, "digest": self.digest})


@dataclass(frozen=True)
class PromotedImageArgs:
    source: pulumi.Input[str]  # the image to release, by digest (flightdeck:imageDigest, or a build's ref)
    repository: pulumi.Input[str]  # the repository the target pulls from
    source_login: RegistryLogin | None = None
    destination_login: RegistryLogin | None = None
    tunnel: Tunnel | None = None  # the destination registry is on a server's loopback
    ssh: pulumi.Input[dict[str, Any]] | None = None


def _auth(login: RegistryLogin | None) -> pulumi.Output[dict[str, str]] | None:
    if login is None:
        return None
    return pulumi.Output.all(login.username, login.password).apply(
        lambda v: {"username": str(v[0]), "password": str(v[1])}
    )


class PromotedImage(pulumi.ComponentResource):
    """An already-built image made available in the target's repository under the same digest. Where the
    image already lives in the target repository nothing is copied."""

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(
        self, name: str, args: PromotedImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:promotion:PromotedImage", name, None, opts)
        self.digest = pulumi.Output.from_input(args.source).apply(lambda ref: split_ref(ref).digest)
        # An image already in the target repository (a recorded release) is released as it is.
        same = (
            isinstance(args.source, str)
            and isinstance(args.repository, str)
            and split_ref(args.source).repository == args.repository
        )
        if same:
            self.ref = pulumi.Output.from_input(args.source)
        else:
            copy = ImageCopy(
                f"{name}-copy",
                ImageCopyArgs(
                    source=args.source,
                    repository=args.repository,
                    source_auth=_auth(args.source_login),
                    destination_auth=_auth(args.destination_login),
                    tunnel=args.tunnel,
                    ssh=args.ssh,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ref = copy.ref
        self.register_outputs({"ref": self.ref, "digest": self.digest})


def release_image(
    name: str,
    *,
    digest: str | None,
    python_image: str,
    repository: str,
    registry: RegistryLogin | None = None,
    insecure: bool = False,
    network_host: bool = False,
    opts: pulumi.ResourceOptions | None = None,
) -> AppImage | PromotedImage:
    """The image a stack releases: built from app/ and pushed to repository, or, when flightdeck:imageDigest
    names one, that already-built image copied there under the same digest (no build)."""
    if digest:
        return PromotedImage(
            name,
            PromotedImageArgs(
                source=digest, repository=repository, source_login=registry, destination_login=registry
            ),
            opts=opts,
        )
    return AppImage(
        name,
        AppImageArgs(
            repository=repository,
            python_image=python_image,
            registry=registry,
            insecure=insecure,
            network_host=network_host,
        ),
        opts=opts,
    )
