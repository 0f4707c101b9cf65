"""The app image: built once per commit, pushed, and known downstream only by its digest.

Every target releases `ref` (`<repository>@sha256:<manifest digest>`), never a mutable tag. Tags
`<git sha>` and `latest` are for people and for the inline cache. Promotion (prod releasing what dev built)
builds nothing and is not this component: see components/promotion.py.

Heroku's registry takes only Docker v2 schema 2 manifests: the registry export here never uses OCI media
types. pulumi-docker-build has no provenance/SBOM argument and passes no attestations, but buildx adds a
provenance attestation by default whenever the builder supports attestations (a docker-container builder;
not the docker driver of Docker 20.10). The environment that runs `pulumi up` for Heroku therefore sets
BUILDX_NO_DEFAULT_ATTESTATIONS=1 (see docs/heroku.md); the release refuses anything but a schema-2 manifest.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_docker_build as docker_build

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = docker_build.Platform.LINUX_AMD64  # Heroku and the Linode VMs run amd64
CacheKind = Literal["registry", "inline"]
_SHA = re.compile(r"^[0-9a-f]{40}$")


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
    if _SHA.match(head):
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
                if name == ref and _SHA.match(sha):
                    return sha
    raise ValueError(f"{repo}: HEAD points at {ref}, which has no commit yet; commit before building")


@dataclass
class RegistryLogin:
    address: pulumi.Input[str]  # e.g. registry.heroku.com
    username: pulumi.Input[str]  # "_" for Heroku
    password: pulumi.Input[str]  # made secret by the component


@dataclass
class AppImageArgs:
    repository: pulumi.Input[str]  # e.g. registry.heroku.com/<app>/web, 127.0.0.1:5000/<app>
    context: str = str(ROOT / "app")
    dockerfile: str = str(ROOT / "app" / "Dockerfile")
    # Build ARG PYTHON_IMAGE of app/Dockerfile; None for a Dockerfile without it (backup/).
    python_image: pulumi.Input[str] | None = "python:3.13-slim"
    build_args: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # further build ARGs
    git_sha: str = field(default_factory=git_head_sha)
    registry: RegistryLogin | None = None
    push: bool = True  # False: load into the local engine only (ref is then the sha tag)
    # "registry": <repository>:buildcache, mode max (needs a docker-container builder and a registry that
    # stores cache manifests, not Heroku's). "inline": cache metadata in the image, read back from :latest.
    cache: CacheKind = "inline"
    insecure: bool = False  # plain-HTTP registry (the local one at 127.0.0.1:5000)
    network_host: bool = False  # RUN steps on the host network (machines whose bridge has no way out)
    # A buildx builder by name, from the buildx store of the machine that runs `pulumi up` (e.g. one made by
    # remote_builder_script). None: the provider's own docker-container builder on its Docker host.
    builder: str | None = None


def remote_builder_script(name: str, plain_http_registry: str) -> str:
    """(Re)create the buildx builder `name` on the Docker host in $FLIGHTDECK_BUILD_HOST (e.g.
    ssh://deploy@<vm>): BuildKit in a container on that host's network, so its pushes to
    `plain_http_registry` (an address on that host's loopback) reach the host's registry over plain HTTP."""
    return f"""set -eu
config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf '[registry."%s"]\n  http = true\n' {shlex.quote(plain_http_registry)} >"$config"
docker buildx rm {shlex.quote(name)} >/dev/null 2>&1 || true
docker buildx create --name {shlex.quote(name)} --driver docker-container --driver-opt network=host \
    --buildkitd-config "$config" "${{FLIGHTDECK_BUILD_HOST:?}}" >/dev/null
docker buildx inspect --bootstrap {shlex.quote(name)} >&2
"""


def remove_builder_script(name: str) -> str:
    return f"docker buildx rm {shlex.quote(name)} >/dev/null 2>&1 || true\n"


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
        child = pulumi.ResourceOptions(parent=self)
        self.image = self._build(name, args, child)
        self.digest = self.image.digest
        if args.push:
            self.ref = pulumi.Output.concat(args.repository, "@", self.image.digest)
        else:
            self.ref = pulumi.Output.concat(args.repository, ":", args.git_sha)
        self.register_outputs({"ref": self.ref, "digest": self.digest})

    def _build(self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions) -> docker_build.Image:
        repo = pulumi.Output.from_input(args.repository)
        if args.cache == "registry":
            cache_ref = repo.apply(lambda r: f"{r}:buildcache")
            cache_from = [
                docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=cache_ref))
            ]
            cache_to = [
                docker_build.CacheToArgs(
                    registry=docker_build.CacheToRegistryArgs(ref=cache_ref, mode=docker_build.CacheMode.MAX)
                )
            ]
        else:
            latest = repo.apply(lambda r: f"{r}:latest")
            cache_from = [docker_build.CacheFromArgs(registry=docker_build.CacheFromRegistryArgs(ref=latest))]
            cache_to = [docker_build.CacheToArgs(inline=docker_build.CacheToInlineArgs())]
        if args.push:
            # Schema 2 only: Heroku's registry refuses OCI manifests and image indexes.
            export = docker_build.ExportArgs(
                registry=docker_build.ExportRegistryArgs(
                    oci_media_types=False, push=True, insecure=args.insecure or None
                )
            )
        else:
            export = docker_build.ExportArgs(docker=docker_build.ExportDockerArgs())
        registries = None
        if args.registry:
            registries = [
                docker_build.RegistryArgs(
                    address=args.registry.address,
                    username=args.registry.username,
                    password=pulumi.Output.secret(args.registry.password),
                )
            ]
        return docker_build.Image(
            f"{name}-build",
            context=docker_build.BuildContextArgs(location=args.context),
            dockerfile=docker_build.DockerfileArgs(location=args.dockerfile),
            build_args=build_args(args),
            platforms=[PLATFORM],
            tags=[repo.apply(lambda r: f"{r}:{args.git_sha}"), repo.apply(lambda r: f"{r}:latest")],
            push=False,  # the explicit export above pushes, with its media types pinned
            exports=[export],
            registries=registries,
            cache_from=cache_from,
            cache_to=cache_to,
            network=docker_build.NetworkMode.HOST if args.network_host else docker_build.NetworkMode.DEFAULT,
            builder=docker_build.BuilderConfigArgs(name=args.builder) if args.builder else None,
            opts=opts,
        )
