"""LinodeHosts: the Linode infrastructure of the iaas target.

One to ten VMs booted with cloud-init (components/cloud_init.py): the first is the swarm manager, the others
join it as workers over SSH once they are up. A Cloud Firewall drops all inbound traffic but HTTP(S), SSH from
the allow-list and, with several VMs, the swarm ports between their private addresses. With several VMs a
NodeBalancer spreads HTTP(S) over them. An Object Storage bucket with a key scoped to it holds the registry's
blobs and the database backups; a managed PostgreSQL is optional.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_linode as linode
from pulumi_command import remote

from components import cloud_init
from components.cloud_init import DEPLOY_USER, Role, VmConfig
from components.settings import LinodeSettings

ANYWHERE_V4 = "0.0.0.0/0"
ANYWHERE_V6 = "::/0"
# Docker's swarm ports: cluster management, node gossip, overlay network (VXLAN) traffic.
SWARM_PORTS = (
    ("swarm-manage", "TCP", "2377"),
    ("swarm-gossip-tcp", "TCP", "7946"),
    ("swarm-gossip-udp", "UDP", "7946"),
    ("swarm-overlay", "UDP", "4789"),
)
BACKUP_PREFIX = "backups/"
HEALTH_PATH = "/healthz"
POSTGRES_ENGINE = "postgresql/16"
# Linode's limit on firewall, NodeBalancer and database labels.
SHORT_LABEL = 32
_PRIVATE_NETWORK = ipaddress.ip_network(cloud_init.LINODE_PRIVATE_NETWORK)

# Prints the worker join token once cloud-init has made this VM a swarm manager.
MANAGER_READY = f"""set -e
{cloud_init.WAIT_FOR_CLOUD_INIT}
if [ "$(docker info --format '{{{{.Swarm.ControlAvailable}}}}')" != true ]; then
    echo "$(hostname) is not a swarm manager: see /var/log/cloud-init-output.log" >&2
    exit 1
fi
docker swarm join-token -q worker
"""


def join_script(worker_ip: str, manager_ip: str) -> str:
    """Joins this VM to the swarm as a worker; the token comes on stdin so it is in no command line
    Pulumi records. Does nothing on a VM that is already in a swarm."""
    return f"""set -e
{cloud_init.WAIT_FOR_CLOUD_INIT}
if [ "$(docker info --format '{{{{.Swarm.LocalNodeState}}}}')" = active ]; then
    exit 0
fi
read -r token
docker swarm join --token "$token" --advertise-addr {worker_ip} \\
    --listen-addr {worker_ip}:2377 {manager_ip}:2377
"""


LEAVE_SWARM = "docker swarm leave --force"


@dataclass(frozen=True)
class LinodeHostsArgs:
    app_name: str
    linode: LinodeSettings
    backup_retention_days: int
    domain: str | None = None
    # The deploy user's private key for the SSH steps (joining workers, deploying the stack). None uses the
    # SSH agent (SSH_AUTH_SOCK) of whoever runs `pulumi up`.
    ssh_private_key: pulumi.Input[str] | None = None
    # Protect the bucket and the managed database from deletion and keep them when the stack is destroyed.
    protect_data: bool = False


def label(app_name: str, suffix: str, limit: int = SHORT_LABEL) -> str:
    """`<app>-<suffix>`, the app part shortened to fit Linode's label limit."""
    return f"{app_name[: limit - len(suffix) - 1].rstrip('-')}-{suffix}"


def public_ipv4(addresses: Sequence[str]) -> str:
    """The public one of a Linode's IPv4 addresses (the others are in its private network)."""
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if ip.version == 4 and ip not in _PRIVATE_NETWORK:
            return address
    raise ValueError(f"no public IPv4 address among {list(addresses)}")


def inbound_rules(
    ssh_allow_list: Sequence[str], swarm_peers: pulumi.Input[Sequence[str]] | None
) -> list[dict[str, Any]]:
    """Cloud Firewall inbound rules (the policy drops everything else): HTTP(S) from anywhere, SSH from the
    allow-list, and the swarm ports from swarm_peers (CIDRs of the VMs) when there is a swarm to join."""
    networks = [ipaddress.ip_network(cidr) for cidr in ssh_allow_list]
    ssh: dict[str, Any] = {"label": "allow-ssh", "action": "ACCEPT", "protocol": "TCP", "ports": "22"}
    if v4 := [str(n) for n in networks if n.version == 4]:
        ssh["ipv4s"] = v4
    if v6 := [str(n) for n in networks if n.version == 6]:
        ssh["ipv6s"] = v6
    rules: list[dict[str, Any]] = [
        {
            "label": f"allow-{name}",
            "action": "ACCEPT",
            "protocol": "TCP",
            "ports": port,
            "ipv4s": [ANYWHERE_V4],
            "ipv6s": [ANYWHERE_V6],
        }
        for name, port in (("http", "80"), ("https", "443"))
    ]
    rules.append(ssh)
    if swarm_peers is not None:
        rules.extend(
            {"label": name, "action": "ACCEPT", "protocol": protocol, "ports": port, "ipv4s": swarm_peers}
            for name, protocol, port in SWARM_PORTS
        )
    return rules


def lifecycle_rules(retention_days: int) -> list[dict[str, Any]]:
    """Backups expire after the retention; with versioning on, replaced or deleted objects (old backups,
    registry blobs removed by garbage collection) stay recoverable that long, then go."""
    return [
        {
            "id": "expire-backups",
            "enabled": True,
            "prefix": BACKUP_PREFIX,
            "expiration": {"days": retention_days},
        },
        {
            "id": "tidy-versions",
            "enabled": True,
            "abort_incomplete_multipart_upload_days": 1,
            "noncurrent_version_expiration": {"days": retention_days},
        },
    ]


def _as_int(value: str) -> int:
    return int(value)


class LinodeHosts(pulumi.ComponentResource):
    """VMs running a Docker swarm, their firewall, load balancer, bucket and optional managed database."""

    def __init__(self, name: str, args: LinodeHostsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flightdeck:linode:LinodeHosts", name, None, opts)
        settings = args.linode
        app = args.app_name
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(
            parent=self, protect=args.protect_data, retain_on_delete=args.protect_data
        )
        tags = ["flightdeck", app]
        self.deploy_user = DEPLOY_USER

        self.ssh_key = linode.SshKey(
            f"{name}-ssh-key", label=label(app, DEPLOY_USER, 64), ssh_key=settings.ssh_public_key, opts=child
        )

        self.instances: list[linode.Instance] = []
        for index in range(settings.instance_count):
            hostname = label(app, str(index + 1), 64)
            vm = VmConfig(
                hostname=hostname,
                role=Role.MANAGER if index == 0 else Role.WORKER,
                ssh_public_key=settings.ssh_public_key,
                reboot_time=cloud_init.reboot_time(index),
            )
            self.instances.append(
                linode.Instance(
                    f"{name}-vm-{index + 1}",
                    label=hostname,
                    region=settings.region,
                    type=settings.instance_type,
                    image=settings.image,
                    authorized_keys=[self.ssh_key.ssh_key],
                    private_ip=True,
                    backups_enabled=settings.backups,
                    metadatas=[
                        linode.InstanceMetadataArgs(user_data=cloud_init.encode(cloud_init.render(vm)))
                    ],
                    tags=[*tags, vm.role.value],
                    # cloud-init reads user-data on the first boot only: an edit must not replace (wipe) a
                    # running VM. New VMs get the current user-data.
                    opts=pulumi.ResourceOptions(parent=self, ignore_changes=["metadatas"]),
                )
            )

        self.public_ips: pulumi.Output[list[str]] = pulumi.Output.all(
            *[vm.ipv4s.apply(public_ipv4) for vm in self.instances]
        )
        self.private_ips: pulumi.Output[list[str]] = pulumi.Output.all(
            *[vm.private_ip_address for vm in self.instances]
        )
        manager, workers = self.instances[0], self.instances[1:]
        self.manager_ip: pulumi.Output[str] = manager.ipv4s.apply(public_ipv4)
        self.manager_private_ip: pulumi.Output[str] = manager.private_ip_address

        swarm_peers = self.private_ips.apply(lambda ips: [f"{ip}/32" for ip in ips]) if workers else None
        # Attached from the firewall's side: the rules name the VMs' private addresses, which exist only
        # once the VMs do.
        self.firewall = linode.Firewall(
            f"{name}-firewall",
            label=label(app, "firewall"),
            inbound_policy="DROP",
            outbound_policy="ACCEPT",
            inbounds=inbound_rules(settings.ssh_allow_list, swarm_peers),
            linodes=[vm.id.apply(_as_int) for vm in self.instances],
            tags=tags,
            opts=child,
        )

        self.node_balancer: linode.NodeBalancer | None = None
        if workers:
            self.node_balancer = self._node_balancer(name, app, settings.region, tags)
            self.public_address: pulumi.Output[str] = self.node_balancer.ipv4
        else:
            self.public_address = self.manager_ip
        self.url: pulumi.Output[str] = (
            pulumi.Output.from_input(f"https://{args.domain}")
            if args.domain
            else self.public_address.apply(lambda address: f"http://{address}")
        )

        self.ssh_connection = self._connection(self.manager_ip, args.ssh_private_key)
        manager_ready = remote.Command(
            f"{name}-swarm-manager",
            connection=self.ssh_connection,
            create=MANAGER_READY,
            triggers=[manager.id],
            logging=remote.Logging.STDERR,  # stdout is the join token
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[self.firewall], additional_secret_outputs=["stdout"]
            ),
        )
        # What the swarm deploy waits for: the manager is initialised and every worker has joined.
        self.swarm_ready: list[pulumi.CustomResource] = [manager_ready]
        for index, worker in enumerate(workers, start=2):
            self.swarm_ready.append(
                remote.Command(
                    f"{name}-swarm-join-{index}",
                    connection=self._connection(worker.ipv4s.apply(public_ipv4), args.ssh_private_key),
                    create=pulumi.Output.all(worker.private_ip_address, manager.private_ip_address).apply(
                        lambda ips: join_script(ips[0], ips[1])
                    ),
                    stdin=manager_ready.stdout,
                    delete=LEAVE_SWARM,
                    triggers=[worker.id, manager.id],
                    # Leave the old swarm before joining again; the default (create first) would join, then
                    # leave.
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[self.firewall], delete_before_replace=True
                    ),
                )
            )

        # The manager's address, known only once the swarm is complete: a deploy that connects to it waits.
        self.swarm_host: pulumi.Output[str] = pulumi.Output.all(
            self.manager_ip, *[step.id for step in self.swarm_ready]
        ).apply(lambda values: str(values[0]))

        self.bucket = linode.ObjectStorageBucket(
            f"{name}-bucket",
            label=label(app, "data", 63),
            region=settings.region,
            versioning=True,
            lifecycle_rules=lifecycle_rules(args.backup_retention_days),
            opts=data,
        )
        self.bucket_key = linode.ObjectStorageKey(
            f"{name}-bucket-key",
            label=label(app, "bucket", 50),
            bucket_accesses=[
                {"bucket_name": self.bucket.label, "region": self.bucket.region, "permissions": "read_write"}
            ],
            opts=child,
        )
        self.bucket_name: pulumi.Output[str] = self.bucket.label
        self.bucket_region: pulumi.Output[str] = self.bucket.region
        self.bucket_endpoint: pulumi.Output[str] = pulumi.Output.all(
            self.bucket.s3_endpoint, self.bucket.region
        ).apply(lambda parts: parts[0] or f"{parts[1]}-1.linodeobjects.com")
        self.bucket_access_key: pulumi.Output[str] = pulumi.Output.secret(self.bucket_key.access_key)
        self.bucket_secret_key: pulumi.Output[str] = pulumi.Output.secret(self.bucket_key.secret_key)

        self.database: linode.DatabasePostgresqlV2 | None = None
        self.database_host: pulumi.Output[str] | None = None
        self.database_port: pulumi.Output[int] | None = None
        self.database_username: pulumi.Output[str] | None = None
        self.database_password: pulumi.Output[str] | None = None
        self.database_ca_cert: pulumi.Output[str] | None = None
        if settings.managed_database:
            self.database = linode.DatabasePostgresqlV2(
                f"{name}-db",
                label=label(app, "db"),
                engine_id=POSTGRES_ENGINE,
                region=settings.region,
                type=settings.database_type,
                cluster_size=settings.database_cluster_size,
                allow_lists=self.public_ips.apply(lambda ips: [f"{ip}/32" for ip in ips]),
                opts=data,
            )
            self.database_host = self.database.host_primary
            self.database_port = self.database.port
            self.database_username = pulumi.Output.secret(self.database.root_username)
            self.database_password = pulumi.Output.secret(self.database.root_password)
            # base64 of the CA certificate that signs the database's TLS certificate
            self.database_ca_cert = pulumi.Output.secret(self.database.ca_cert)

        self.register_outputs(
            {
                "manager_ip": self.manager_ip,
                "manager_private_ip": self.manager_private_ip,
                "public_ips": self.public_ips,
                "private_ips": self.private_ips,
                "public_address": self.public_address,
                "url": self.url,
                "deploy_user": self.deploy_user,
                "swarm_host": self.swarm_host,
                "bucket_name": self.bucket_name,
                "bucket_region": self.bucket_region,
                "bucket_endpoint": self.bucket_endpoint,
                "bucket_access_key": self.bucket_access_key,
                "bucket_secret_key": self.bucket_secret_key,
                "database_host": self.database_host,
                "database_port": self.database_port,
                "database_username": self.database_username,
                "database_password": self.database_password,
                "database_ca_cert": self.database_ca_cert,
            }
        )

    def _node_balancer(self, name: str, app: str, region: str, tags: list[str]) -> linode.NodeBalancer:
        """Port 80 as HTTP with active checks of /healthz; port 443 passed through as TCP (TLS ends at each
        VM's proxy), where Linode can only check that the port accepts connections."""
        balancer = linode.NodeBalancer(
            f"{name}-lb",
            label=label(app, "lb"),
            region=region,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        balancer_id = balancer.id.apply(_as_int)
        for port, protocol, check in ((80, "http", "http"), (443, "tcp", "connection")):
            config = linode.NodeBalancerConfig(
                f"{name}-lb-{port}",
                nodebalancer_id=balancer_id,
                port=port,
                protocol=protocol,
                algorithm="roundrobin",
                stickiness="none",
                check=check,
                check_path=HEALTH_PATH if check == "http" else None,
                check_interval=10,
                check_timeout=5,
                check_attempts=3,
                check_passive=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, vm in enumerate(self.instances, start=1):
                linode.NodeBalancerNode(
                    f"{name}-lb-{port}-vm-{index}",
                    nodebalancer_id=balancer_id,
                    config_id=config.id.apply(_as_int),
                    label=f"vm-{index}",
                    # NodeBalancers reach their nodes over the private network only.
                    address=vm.private_ip_address.apply(lambda ip, port=port: f"{ip}:{port}"),
                    mode="accept",
                    opts=pulumi.ResourceOptions(parent=self),
                )
        return balancer

    @staticmethod
    def _connection(host: pulumi.Input[str], private_key: pulumi.Input[str] | None) -> remote.ConnectionArgs:
        # The VM answers SSH a minute or so after it is created; keep dialling while it boots.
        return remote.ConnectionArgs(
            host=host, user=DEPLOY_USER, private_key=private_key, dial_error_limit=60, per_dial_timeout=10
        )
