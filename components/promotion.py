"""Promotion: release an image that was already built, byte for byte, from another repository.

Prod never rebuilds: it copies dev's image by digest into its own repository (Heroku keeps one registry
repository per app) with `skopeo copy --preserve-digests`, checks the copy has the same digest, and outputs
`<repository>@<digest>`. Where the image already lives in the target repository nothing is copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_command as command

_REF = re.compile(r"^(?P<repository>[^@]+)@(?P<digest>sha256:[0-9a-f]{64})$")

# Runs under bash on the deploying machine. Credentials arrive in the environment (secret in Pulumi),
# go into a private auth file for the length of the copy, and are never on a command line.
COPY_SCRIPT = r"""set -euo pipefail
tls_verify() {  # plain HTTP only for registries on the loopback interface
    case "$1" in localhost[:/]* | 127.*) echo false ;; *) echo true ;; esac
}
auth=$(mktemp)
trap 'rm -f "$auth"' EXIT
if [ -n "${REGISTRY_USER:-}" ]; then
    token=$(printf '%s:%s' "$REGISTRY_USER" "$REGISTRY_PASSWORD" | base64 -w0)
    printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY_HOST" "$token" >"$auth"
else
    echo '{"auths":{}}' >"$auth"
fi
skopeo copy --quiet --preserve-digests --authfile "$auth" \
    --src-tls-verify="$(tls_verify "$SOURCE")" --dest-tls-verify="$(tls_verify "$DESTINATION")" \
    "docker://$SOURCE" "docker://$DESTINATION"
copied=sha256:$(skopeo inspect --raw --authfile "$auth" --tls-verify="$(tls_verify "$DESTINATION")" \
    "docker://$DESTINATION" | sha256sum | cut -d' ' -f1)
if [ "$copied" != "$DIGEST" ]; then
    echo "promotion: $DESTINATION has digest $copied, not $DIGEST: the registry rewrote the manifest" >&2
    exit 1
fi
"""


def split_ref(ref: str) -> tuple[str, str]:
    """`<repository>@sha256:<hex>` -> (repository, digest), or a ValueError that says what is expected."""
    match = _REF.match(ref)
    if not match:
        raise ValueError(f"{ref!r} is not an image reference by digest (<repository>@sha256:<64 hex digits>)")
    return match["repository"], match["digest"]


def promotion_tag(repository: str, digest: str) -> str:
    """The tag the copy is pushed under: registries take manifests by tag; the digest names the content."""
    return f"{repository}:promoted-{digest.removeprefix('sha256:')[:12]}"


@dataclass
class PromotedImageArgs:
    source: str
    """The image to release, by digest (flightdeck:imageDigest)."""
    repository: str
    """The repository the target pulls from, e.g. registry.heroku.com/<app>/web."""
    registry_username: pulumi.Input[str] | None = None
    registry_password: pulumi.Input[str] | None = None


class PromotedImage(pulumi.ComponentResource):
    """An already-built image made available in the target's repository under the same digest."""

    ref: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(
        self, name: str, args: PromotedImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:promotion:PromotedImage", name, None, opts)
        source_repository, digest = split_ref(args.source)
        target = args.repository
        if target == source_repository:
            self.ref = pulumi.Output.from_input(f"{target}@{digest}")
        else:
            environment: dict[str, pulumi.Input[str]] = {
                "SOURCE": args.source,
                "DESTINATION": promotion_tag(target, digest),
                "DIGEST": digest,
                "REGISTRY_HOST": target.split("/", 1)[0],
            }
            if args.registry_username is not None and args.registry_password is not None:
                environment["REGISTRY_USER"] = args.registry_username
                environment["REGISTRY_PASSWORD"] = pulumi.Output.secret(args.registry_password)
            copy = command.local.Command(
                f"{name}-copy",
                create=COPY_SCRIPT,
                interpreter=["/bin/bash", "-c"],
                environment=environment,
                triggers=[args.source, target],
                opts=pulumi.ResourceOptions(parent=self),
            )
            # The ref is known up front, but only valid once the copy has run: derive it from the copy.
            self.ref = copy.stdout.apply(lambda _: f"{target}@{digest}")
        self.digest = pulumi.Output.from_input(digest)
        self.register_outputs({"ref": self.ref, "digest": self.digest})
