"""SwarmVolume: a named volume on the swarm's manager that outlives the stack: the database's data.

The stack's database service mounts `<stack>_<volume>`; creating it here first makes it a resource of its own,
which `protectData` protects (`pulumi destroy` then refuses, naming it) and which is always retained on
delete: removing the stack never removes the data (the output says how to remove it on purpose). read()
reports a volume that is gone, so `pulumi refresh` shows that the data went missing.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import docker.errors
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from providers.engine import engines, open_engine, unknown
from providers.ssh import SshTrust

IDENTITY = ("engine", "name")


def _trust(props: dict[str, Any]) -> SshTrust | None:
    return SshTrust.from_props(dict(props["ssh"])) if props.get("ssh") else None


class SwarmVolumeProvider(ResourceProvider):
    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> CreateResult:
        url = str(props["engine"])
        with engines([url], _trust(props)) as session, open_engine(url, session=session) as engine:
            try:
                volume = engine.client.volumes.get(props["name"])  # an existing stack's data: adopted
            except docker.errors.NotFound:
                volume = engine.client.volumes.create(
                    name=props["name"], labels={"com.docker.stack.namespace": props["stack"]}
                )
        return CreateResult(str(volume.name), {**props, "created_at": volume.attrs.get("CreatedAt", "")})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        url = str(props["engine"])
        with engines([url], _trust(props)) as session, open_engine(url, session=session) as engine:
            try:
                engine.client.volumes.get(id_)
            except docker.errors.NotFound:
                return ReadResult("", {})
        return ReadResult(id_, props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in IDENTITY if olds.get(key) != news.get(key) and not unknown(news.get(key))]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=False)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # Reached only when retain_on_delete was lifted by hand: still, data is removed by a person.
        print(
            f"kept the volume {id_} on {props['engine']}; `docker volume rm {id_}` there removes it",
            file=sys.stderr,
        )


@dataclass(frozen=True)
class SwarmVolumeArgs:
    engine: pulumi.Input[str]
    stack: str
    volume: str  # the stack file's volume name; docker's is <stack>_<volume>
    ssh: pulumi.Input[dict[str, Any]] | None = None


class SwarmVolume(Resource, module="flightdeck", name="SwarmVolume"):
    def __init__(self, name: str, args: SwarmVolumeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "engine": args.engine,
            "stack": args.stack,
            "name": f"{args.stack}_{args.volume}",
            "ssh": args.ssh,
            "created_at": None,
        }
        super().__init__(SwarmVolumeProvider(), name, props, opts)
