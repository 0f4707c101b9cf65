"""The iaas target: Linode VMs in a Docker swarm with a private registry on the stack's bucket, images built
on the manager, and the app's swarm stack with its backup job."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_command as command
import pulumi_docker_build as docker_build
import pulumi_random as random

from components import swarm as swarm_stack
from components.backups import backup_service
from components.image import (
    ROOT,
    AppImage,
    AppImageArgs,
    RegistryLogin,
    git_head_sha,
    remote_builder_script,
    remove_builder_script,
)
from components.linode import LinodeHosts, LinodeHostsArgs, label
from components.promotion import split_ref
from components.registry import PrivateRegistry, PrivateRegistryArgs, S3Storage, bucket_credentials_file
from components.registry_stack import RegistryStack, RegistryStackArgs
from components.release_image import release_image
from components.settings import Settings
from components.swarm import SshTarget, StackExtension, SwarmStack, SwarmStackArgs

Outputs = dict[str, Any]


# On iaas the registry listens on each VM's loopback only: images are built on the manager's engine.
IAAS_REGISTRY = "127.0.0.1:5000"


def iaas_repository(app_name: str, image: str) -> str:
    return f"{IAAS_REGISTRY}/{app_name}/{image}"


def check_iaas_promotion(digest: str | None, repository: str) -> None:
    """A promotion on iaas can only name an image already in the stack's own registry (a rollback): the
    copy would run where `pulumi up` runs, which cannot reach the registry on the VMs' loopback."""
    if digest is None:
        return
    source, _ = split_ref(digest)
    if source != repository:
        raise pulumi.RunError(
            f"flightdeck:imageDigest: {digest} is not in {repository}. The iaas registry is reachable on "
            "the VMs' loopback only, so nothing can be copied into it from here: name an image this stack "
            f"pushed before ({repository}@sha256:...), or unset flightdeck:imageDigest to build on the "
            "manager."
        )


def managed_database_url(parts: list[Any]) -> str:
    """DATABASE_URL of a Linode managed PostgreSQL: [user, password, host, port], TLS required."""
    user, password, host, port = (str(p) for p in parts)
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"postgres://{credentials}@{host}:{port}/defaultdb?sslmode=require"


def _bucket_credentials(keys: list[Any]) -> str:
    return bucket_credentials_file(str(keys[0]), str(keys[1]))


def _unique(hosts: list[Any]) -> list[str]:
    return list(dict.fromkeys(str(h) for h in hosts))


def iaas(settings: Settings) -> Outputs:
    """Linode VMs in a Docker swarm: the registry stack on every node (blobs in the stack's bucket), then the
    images built on the manager and pushed to its 127.0.0.1:5000, then the app stack with its backup job."""
    assert settings.swarm is not None and settings.linode is not None  # parse() gives iaas both sections
    app, swarm, vms = settings.app, settings.swarm, settings.linode
    web_repository = iaas_repository(app.name, "web")
    check_iaas_promotion(settings.image.digest, web_repository)

    hosts = LinodeHosts(
        "linode",
        LinodeHostsArgs(
            app_name=app.name,
            linode=vms,
            backup_retention_days=swarm.backup_retention_days,
            domain=app.domain,
        ),
    )
    ssh = SshTarget(host=hosts.swarm_host, user=hosts.deploy_user)  # the runner's SSH agent authenticates
    # The bucket's name is LinodeHosts' label for it and its endpoint that of the region's Object Storage
    # cluster: both known before the bucket exists, so the rendered files stay plain text. (Linode ignores
    # the S3 region; S3Storage's default satisfies the clients.)
    storage = S3Storage(bucket=label(app.name, "data", 63), endpoint=f"{vms.region}-1.linodeobjects.com")
    bucket_credentials: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(hosts.bucket_access_key, hosts.bucket_secret_key).apply(_bucket_credentials)
    )

    registry = PrivateRegistry(
        "registry",
        PrivateRegistryArgs(
            domain=None, bucket=storage.bucket, endpoint=storage.endpoint, region=storage.region
        ),
    )
    registry_stack = RegistryStack(
        "registry-stack",
        RegistryStackArgs(
            app_name=app.name,
            image=swarm.registry_image,
            config=registry.config,
            htpasswd=registry.htpasswd,
            bucket_credentials=bucket_credentials,
            username=registry.username,
            password=registry.password,
            ssh=ssh,
        ),
    )

    # Builds run on the manager (over SSH, as the deploy user): BuildKit in a container on the VM's own
    # network, so its pushes to 127.0.0.1:5000 reach the VM's registry. The builder is kept in the buildx
    # store of the machine that runs `pulumi up`; the provider talks to the manager's engine too, so that
    # machine needs no Docker engine of its own.
    manager_host = pulumi.Output.concat("ssh://", hosts.deploy_user, "@", hosts.manager_ip)
    builder = f"{app.name}-manager"
    manager_builder = command.local.Command(
        "manager-builder",
        create=remote_builder_script(builder, IAAS_REGISTRY),
        delete=remove_builder_script(builder),
        environment={"FLIGHTDECK_BUILD_HOST": manager_host},
        interpreter=["/bin/sh", "-c"],
        add_previous_output_in_env=False,
        opts=pulumi.ResourceOptions(depends_on=[registry_stack]),
    )
    manager_docker = docker_build.Provider("manager-docker", host=manager_host)
    login = RegistryLogin(IAAS_REGISTRY, registry.username, registry.password)
    on_manager = pulumi.ResourceOptions(
        providers=[manager_docker], depends_on=[registry_stack, manager_builder]
    )
    image = release_image(
        "image",
        settings,
        web_repository,
        registry=login,
        insecure=True,
        builder=builder,
        opts=on_manager,
    )

    secret_key = random.RandomPassword("secret-key", length=64, special=False)
    database_password: pulumi.Output[str] | None = None
    database_url: pulumi.Output[str] | None = None
    extension = StackExtension()
    extra_secrets: dict[str, pulumi.Input[str]] = {}
    depends_on: list[pulumi.Resource] = [registry_stack]
    if vms.managed_database:
        # Linode backs managed databases up itself; the backup job serves the bundled database only.
        database_url = pulumi.Output.secret(
            pulumi.Output.all(
                hosts.database_username, hosts.database_password, hosts.database_host, hosts.database_port
            ).apply(managed_database_url)
        )
    else:
        database_password = random.RandomPassword("database-password", length=32, special=False).result
        # The stack's extension is plain text rendered before the build, so the job names the backup image
        # by its commit tag; `docker stack deploy` resolves that tag to a digest and pins it on the service.
        git_sha = git_head_sha()
        backup_repository = iaas_repository(app.name, "backup")
        backup_image = AppImage(
            "backup-image",
            AppImageArgs(
                repository=backup_repository,
                context=str(ROOT / "backup"),
                dockerfile=str(ROOT / "backup" / "Dockerfile"),
                python_image=None,
                build_args={"POSTGRES_IMAGE": swarm.postgres_image},
                git_sha=git_sha,
                registry=login,
                insecure=True,
                builder=builder,
            ),
            opts=on_manager,
        )
        depends_on.append(backup_image)
        extension = StackExtension(
            services={
                "backup": backup_service(
                    f"{backup_repository}:{git_sha}",
                    schedule=swarm.backup_schedule,
                    storage=storage,
                    networks=[swarm_stack.NETWORK],
                )
            },
            # SwarmStack names the docker secret (a keyed digest of its value).
            secrets={"bucket_credentials": ""},
        )
        extra_secrets = {"bucket_credentials": bucket_credentials}

    stack = SwarmStack(
        "swarm",
        SwarmStackArgs(
            app=app,
            swarm=swarm,
            image=image.ref,
            secret_key=secret_key.result,
            database_password=database_password,
            database_url=database_url,
            ssh=ssh,
            public_hosts=pulumi.Output.all(hosts.public_ips, hosts.public_address).apply(
                lambda v: _unique([*v[0], v[1]])
            ),
            extension=extension,
            extra_secrets=extra_secrets,
        ),
        opts=pulumi.ResourceOptions(depends_on=depends_on),
    )
    return {
        "url": hosts.url,
        "image_ref": stack.image,
        "image_digest": image.digest,
        "registry": registry_stack.address,
        "manager_ip": hosts.manager_ip,
        "public_address": hosts.public_address,
        "bucket": hosts.bucket_name,
    }
