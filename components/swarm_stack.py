"""The app's swarm stack on a swarm's manager: the stack file rendered from settings (render/stack_file.py),
applied by a SwarmDeployment resource (providers/swarm_deployment.py).

The file and the object names are plain inputs (they name the secrets only by a keyed digest of their
values), so `pulumi preview` shows their diff; the values go to the resource as secrets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from contract import HEALTH_PATH, split_ref
from providers.swarm_deployment import SwarmDeployment, SwarmDeploymentArgs
from providers.swarm_volume import SwarmVolume, SwarmVolumeArgs
from render.stack_file import DB_VOLUME, Process, StackExtension, StackPlan, StackSpec, plan_stack, stack_url
from settings import AppSettings, SwarmSettings


@dataclass(frozen=True)
class SwarmStackArgs:
    app: AppSettings
    swarm: SwarmSettings
    processes: tuple[Process, ...]
    image: pulumi.Input[str]  # repository@sha256:...
    values: Mapping[str, pulumi.Input[str]]  # secret values by key (render.stack_file.secret_keys)
    bundled_database: bool
    engine: pulumi.Input[str]  # the manager's engine address
    health_host: pulumi.Input[str]  # where this machine reaches the manager's proxy
    url_host: pulumi.Input[str] = "localhost"  # the host in the url output when there is no domain
    nodes: pulumi.Input[list[str]] = field(default_factory=list)  # every node's engine (pruned on each)
    ssh: pulumi.Input[dict[str, Any]] | None = None
    public_hosts: pulumi.Input[Sequence[str]] = ()
    extension: pulumi.Input[StackExtension] = field(default_factory=StackExtension)
    # Keys of further secret values mounted into the app's services as files of that name (a CA certificate).
    app_files: tuple[str, ...] = ()
    registry_auth: pulumi.Input[dict[str, str]] | None = None
    stack: str | None = None  # the swarm stack's name; default: the app's name
    protect_data: bool = False  # the database's volume refuses `pulumi destroy` (flightdeck:protectData)
    registry: Mapping[str, str] | None = None  # where the image comes from, for its garbage collection


def _plan(
    args: SwarmStackArgs,
    stack: str,
    image: str,
    hosts: Sequence[str],
    extension: StackExtension,
    values: Mapping[str, str],
) -> StackPlan:
    return plan_stack(
        StackSpec(
            stack=stack,
            image=image,
            app=args.app,
            swarm=args.swarm,
            processes=args.processes,
            values=values,
            bundled_database=args.bundled_database,
            public_hosts=hosts,
            extension=extension,
            app_files=args.app_files,
        )
    )


class SwarmStack(pulumi.ComponentResource):
    """Outputs: url, image (the one serving once the deployment succeeded), release, stack_file."""

    url: pulumi.Output[str]
    image: pulumi.Output[str]
    release: pulumi.Output[dict[str, Any]]
    stack_file: pulumi.Output[str]

    def __init__(self, name: str, args: SwarmStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:swarm:SwarmStack", name, None, opts)
        stack = args.stack or args.app.name
        keys = list(args.values)
        values = [pulumi.Output.secret(args.values[k]) for k in keys]
        plan = pulumi.Output.all(args.image, args.public_hosts, args.extension, *values).apply(
            lambda v: _plan(
                args,
                stack,
                str(v[0]),
                [str(h) for h in v[1]],
                v[2],
                dict(zip(keys, (str(x) for x in v[3:]), strict=True)),
            )
        )
        self.stack_file = pulumi.Output.unsecret(plan.apply(lambda p: p.stack_file))
        swarm = args.swarm
        data: list[pulumi.Resource] = []
        if args.bundled_database:
            # The database's data is a resource of its own: kept when the stack goes, protected on request.
            data.append(
                SwarmVolume(
                    f"{name}-database-volume",
                    SwarmVolumeArgs(engine=args.engine, stack=stack, volume=DB_VOLUME, ssh=args.ssh),
                    opts=pulumi.ResourceOptions(
                        parent=self, protect=args.protect_data, retain_on_delete=True
                    ),
                )
            )
        deployment = SwarmDeployment(
            f"{name}-deployment",
            SwarmDeploymentArgs(
                engine=args.engine,
                stack=stack,
                stack_file=self.stack_file,
                objects=pulumi.Output.unsecret(
                    plan.apply(lambda p: [{"kind": o.kind, "key": o.key, "name": o.name} for o in p.objects])
                ),
                configs=pulumi.Output.unsecret(plan.apply(lambda p: dict(p.configs))),
                secrets=pulumi.Output.secret(
                    pulumi.Output.all(*values).apply(
                        lambda v: dict(zip(keys, (str(x) for x in v), strict=True))
                    )
                ),
                release=pulumi.Output.unsecret(
                    plan.apply(
                        lambda p: {
                            "command": list(p.release.command),
                            "environment": dict(p.release.environment),
                            "secrets": dict(p.release.secrets),
                            "network": p.release.network,
                        }
                    )
                ),
                database=(
                    {"service": "db", "user": "app", "name": "app", "password_key": "postgres_password"}
                    if args.bundled_database
                    else None
                ),
                app_services=tuple(p.name for p in args.processes),
                health=pulumi.Output.from_input(args.health_host).apply(
                    lambda h: {"url": f"http://{h}:{swarm.http_port}{HEALTH_PATH}", "host": "localhost"}
                ),
                ssh=args.ssh,
                registry_auth=args.registry_auth,
                nodes=args.nodes,
                repository=pulumi.Output.from_input(args.image).apply(lambda i: split_ref(i).repository),
                keep_releases=swarm.keep_releases,
                registry=args.registry,
                ports={
                    str(swarm.http_port): "flightdeck:httpPort",
                    str(swarm.https_port): "flightdeck:httpsPort",
                },
                kept_volumes=(DB_VOLUME,) if args.bundled_database else (),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=data),
        )
        # The deployment succeeds only once every task runs this image and /healthz answers through the proxy.
        self.image = deployment.image
        self.release = deployment.last_release
        self.url = pulumi.Output.from_input(args.url_host).apply(lambda h: stack_url(args.app, swarm, str(h)))
        self.register_outputs(
            {"url": self.url, "image": self.image, "release": self.release, "stack_file": self.stack_file}
        )
