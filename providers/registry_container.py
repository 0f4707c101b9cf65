"""A registry container on an engine's loopback: where the local target's swarm pulls its images from, and
where the swarm targets build before an image is copied to their servers.

It runs as a plain container, not a swarm service: it must exist before the stack, and host networking binds
it to 127.0.0.1 only, which Docker trusts over plain HTTP. Its storage is a named volume, kept when the
registry is removed (the output says so). read() reports a container that is gone or runs another image,
so `pulumi refresh` shows it and the next `up` puts it back.
"""

from __future__ import annotations

import contextlib
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import docker.errors
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from providers.engine import open_engine, unknown

LABEL = "flightdeck.registry"
IDENTITY = ("engine", "container", "image", "port", "volume")
READY_TIMEOUT = 60.0


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class RegistryContainerProvider(ResourceProvider):
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        port = int(props["port"])
        with open_engine(str(props["engine"])) as engine:
            client = engine.client
            try:
                client.images.get(props["image"])
            except docker.errors.ImageNotFound:
                try:
                    client.images.pull(props["image"])
                except docker.errors.APIError as err:
                    raise RuntimeError(
                        f"the registry image {props['image']} is not on {props['engine']} and cannot be "
                        "pulled "
                        f"({err.explanation}); set flightdeck:registryImage to an image the engine has"
                    ) from None
            _remove(client, str(props["container"]))
            if _answers(port):
                raise RuntimeError(
                    f"something else already answers on 127.0.0.1:{port}; stop it, or give this stack's "
                    "registry another port: `pulumi config set registryPort <port>`"
                )
            container = client.containers.run(
                props["image"],
                name=props["container"],
                detach=True,
                network_mode="host",
                restart_policy={"Name": "unless-stopped"},
                # Deletes let the deploys drop old releases (providers/registry_gc.py).
                environment={
                    "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
                    "REGISTRY_STORAGE_DELETE_ENABLED": "true",
                },
                volumes={props["volume"]: {"bind": "/var/lib/registry", "mode": "rw"}},
                labels={LABEL: str(props["container"])},
            )
            deadline = time.monotonic() + READY_TIMEOUT
            while not _answers(port):
                container.reload()
                if container.status not in ("created", "running") or time.monotonic() > deadline:
                    logs = container.logs(tail=20).decode(errors="replace")
                    raise RuntimeError(
                        f"the registry {props['container']} does not answer on 127.0.0.1:{port}:\n{logs}"
                    )
                time.sleep(0.25)
            return CreateResult(str(container.id), {**_identity(props), "running": True})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with open_engine(str(props["engine"])) as engine:
            try:
                container = engine.client.containers.get(id_)
            except docker.errors.NotFound:
                return ReadResult("", {})  # gone: refresh drops it, the next up creates it again
            image = container.attrs["Config"]["Image"]
            return ReadResult(id_, {**props, "image": image, "running": container.status == "running"})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [
            key for key in IDENTITY if str(olds.get(key)) != str(news.get(key)) or unknown(news.get(key))
        ]
        if not olds.get("running", True):
            replaces.append("running")
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with open_engine(str(props["engine"])) as engine:
            _remove(engine.client, id_)
        print(
            f"kept the registry's images in the volume {props['volume']} on {props['engine']}; remove them "
            "with "
            f"`docker volume rm {props['volume']}`",
            file=sys.stderr,
        )


def _remove(client: Any, name: str) -> None:
    """Remove the container of that name or id, if there is one."""
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)


def _identity(props: dict[str, Any]) -> dict[str, Any]:
    return {key: props[key] for key in IDENTITY}


@dataclass(frozen=True)
class RegistryContainerArgs:
    engine: str  # unix://… of this machine's engine
    image: str
    container: str
    volume: str
    port: int


class RegistryContainer(Resource, module="flightdeck", name="RegistryContainer"):
    running: pulumi.Output[bool]

    def __init__(
        self, name: str, args: RegistryContainerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            RegistryContainerProvider(),
            name,
            {
                "engine": args.engine,
                "image": args.image,
                "container": args.container,
                "volume": args.volume,
                "port": args.port,
                "running": None,
            },
            opts,
        )
