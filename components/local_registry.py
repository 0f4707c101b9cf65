"""A registry on the local engine's loopback, for the `local` target: swarm pulls images by digest from a
registry, and Docker talks plain HTTP to registries on 127.0.0.0/8.

The registry runs as a plain container (not a swarm service: it must exist before the stack, and host
networking binds it to 127.0.0.1 only). Its storage is a named volume, kept when the registry is removed.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pulumi
import pulumi_command as command


@dataclass(frozen=True)
class LocalRegistryArgs:
    image: str  # SwarmSettings.registry_image
    port: int = 5000
    prefix: str = "flightdeck"  # names the container and its volume: <prefix>-registry


def start_script(container: str, image: str, port: int) -> str:
    """Start the registry unless it runs already as asked (same image and address), then wait until it
    answers. Idempotent: Pulumi runs it again when an argument changes."""
    c, i, v = shlex.quote(container), shlex.quote(image), shlex.quote(f"{container}-data")
    address = f"127.0.0.1:{port}"
    wanted = shlex.quote(f"true {image} {address}")
    return f"""set -eu
state=$(docker inspect {c} 2>/dev/null \\
  --format '{{{{.State.Running}}}} {{{{index .Config.Labels "flightdeck.registry"}}}}' || true)
if [ "$state" != {wanted} ]; then
  docker rm --force {c} >/dev/null 2>&1 || true
  docker run --detach --restart unless-stopped --name {c} --network host \\
    --label {shlex.quote(f"flightdeck.registry={image} {address}")} \\
    --env REGISTRY_HTTP_ADDR={address} --volume {v}:/var/lib/registry {i} >/dev/null
fi
for _ in $(seq 60); do
  [ "$(curl --silent --output /dev/null --write-out '%{{http_code}}' http://{address}/v2/)" = 200 ] && exit 0
  sleep 0.5
done
echo "the registry {c} does not answer on {address}" >&2
docker logs --tail 20 {c} >&2
exit 1
"""


def stop_script(container: str) -> str:
    return f"docker rm --force {shlex.quote(container)} >/dev/null 2>&1 || true\n"


class LocalRegistry(pulumi.ComponentResource):
    """A registry container on 127.0.0.1:<port>; `address` is what image names start with."""

    address: pulumi.Output[str]

    def __init__(
        self, name: str, args: LocalRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("flightdeck:local_registry:LocalRegistry", name, None, opts)
        container = f"{args.prefix}-registry"
        run = command.local.Command(
            f"{name}-container",
            create=start_script(container, args.image, args.port),
            delete=stop_script(container),
            interpreter=["/bin/sh", "-c"],
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.address = run.id.apply(lambda _: f"127.0.0.1:{args.port}")
        self.register_outputs({"address": self.address})
