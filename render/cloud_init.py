"""cloud-init user-data for the swarm VMs (pure functions).

Every VM gets Docker from Debian, unattended security upgrades, one non-root `deploy` user (in the docker
group, logging in with the stack's SSH key) and an sshd that accepts nothing else. The first VM also runs
`docker swarm init` on its private address. Workers cannot join at boot: a join token exists only once the
manager has initialised its swarm, after every VM's user-data is fixed. `LinodeHosts` therefore joins them
over SSH once they are up (see components/linode.py).

The firewall is Linode's Cloud Firewall, outside the VM, so no host firewall is configured here.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

DEPLOY_USER = "deploy"
# Linode's Metadata service refuses user_data whose base64 form is longer than this.
MAX_USER_DATA_BASE64 = 65_535
# Linode hands out private IPv4 addresses from this network in every region.
LINODE_PRIVATE_NETWORK = "192.168.128.0/17"
# Shell line that blocks until cloud-init is done; `status --wait` exits 2 on recoverable warnings (newer
# releases), which is fine.
WAIT_FOR_CLOUD_INIT = (
    "cloud-init status --wait >/dev/null || [ $? -eq 2 ] || "
    '{ echo "cloud-init failed on $(hostname): see /var/log/cloud-init-output.log" >&2; exit 1; }'
)

SSHD_DROP_IN = f"""\
# flightdeck: key-only SSH for the deploy user. sshd keeps the first value it reads, and this file is
# included before the rest of sshd_config, so these lines win.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthenticationMethods publickey
AllowUsers {DEPLOY_USER}
MaxAuthTries 3
X11Forwarding no
AllowAgentForwarding no
# The swarm deploy over SSH hands its settings over as FLIGHTDECK_* environment variables.
AcceptEnv FLIGHTDECK_*
"""

# Named apart from 20auto-upgrades, which the package's postinst writes: a later file overrides it.
AUTO_UPGRADES = """\
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
"""

# Swarm mode does not support live-restore; log rotation keeps the disk from filling up.
DOCKER_DAEMON_JSON = """\
{
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m", "max-file": "5"}
}
"""

# Idempotent: a reboot or a re-run finds the swarm active and does nothing. The management port listens on
# the private address only; the Cloud Firewall admits it from the other VMs alone.
SWARM_INIT = """\
#!/bin/sh
# flightdeck: make this VM the swarm manager, advertising its Linode private address.
set -eu
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = active ]; then
    exit 0
fi
addr=$(ip -4 -o addr show scope global | awk '{split($4, a, "/"); print a[1]}' \\
    | grep -E '^192\\.168\\.(12[89]|1[3-9][0-9]|2[0-5][0-9])\\.' | head -n 1 || true)
if [ -z "$addr" ]; then
    echo "flightdeck-swarm-init: no private IPv4 address (192.168.128.0/17) on this VM" >&2
    exit 1
fi
docker swarm init --advertise-addr "$addr" --listen-addr "$addr:2377"
"""


class Role(StrEnum):
    MANAGER = "manager"
    WORKER = "worker"


class UserDataTooLarge(ValueError):
    """The rendered user-data does not fit Linode's Metadata service."""


@dataclass(frozen=True)
class VmConfig:
    hostname: str
    role: Role
    ssh_public_key: str
    # Local time at which unattended-upgrades may reboot the VM; staggered so the swarm never loses all
    # nodes at once.
    reboot_time: str = "04:00"


def reboot_time(index: int) -> str:
    """Reboot slot of the index-th VM: 20 minutes apart from 04:00."""
    minutes = 4 * 60 + 20 * index
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def _unattended_upgrades(reboot_at: str) -> str:
    return (
        'Unattended-Upgrade::Automatic-Reboot "true";\n'
        f'Unattended-Upgrade::Automatic-Reboot-Time "{reboot_at}";\n'
        'Unattended-Upgrade::Remove-Unused-Kernel-Packages "true";\n'
        'Unattended-Upgrade::Remove-Unused-Dependencies "true";\n'
    )


def _file(path: str, content: str, permissions: str = "0644") -> dict[str, str]:
    return {"path": path, "content": content, "owner": "root:root", "permissions": permissions}


def cloud_config(vm: VmConfig) -> dict[str, Any]:
    """The #cloud-config document of one VM as data."""
    files = [
        _file("/etc/ssh/sshd_config.d/10-flightdeck.conf", SSHD_DROP_IN),
        _file("/etc/apt/apt.conf.d/21flightdeck-auto-upgrades", AUTO_UPGRADES),
        _file("/etc/apt/apt.conf.d/52flightdeck-unattended-upgrades", _unattended_upgrades(vm.reboot_time)),
        _file("/etc/docker/daemon.json", DOCKER_DAEMON_JSON),
    ]
    # runcmd runs after the packages are installed (scripts-user comes after package-update-upgrade-install).
    commands: list[str | list[str]] = [
        ["systemctl", "enable", "--now", "docker.service", "unattended-upgrades.service"],
        ["sh", "-c", "sshd -t && systemctl reload ssh.service"],
    ]
    if vm.role is Role.MANAGER:
        files.append(_file("/usr/local/sbin/flightdeck-swarm-init", SWARM_INIT, "0755"))
        commands.append(["/usr/local/sbin/flightdeck-swarm-init"])
    return {
        "hostname": vm.hostname,
        "preserve_hostname": False,
        "package_update": True,
        "package_upgrade": True,
        "packages": ["docker.io", "curl", "unattended-upgrades"],  # curl: the deploy scripts' health checks
        "users": [
            {
                "name": DEPLOY_USER,
                "gecos": "flightdeck deploy",
                "shell": "/bin/bash",
                # cloud-init creates the group now; docker.io's postinst keeps an existing docker group. So
                # the user is in it from its first login, which may come before the packages are installed.
                "groups": ["docker"],
                "lock_passwd": True,
                "ssh_authorized_keys": [vm.ssh_public_key],
            }
        ],
        "disable_root": True,
        "ssh_pwauth": False,
        "write_files": files,
        "runcmd": commands,
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks so the files read as they land on disk."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(vm: VmConfig) -> str:
    """The VM's user-data: a YAML document with the #cloud-config header cloud-init looks for."""
    body = yaml.dump(cloud_config(vm), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=1000)
    return "#cloud-config\n" + body


def encode(user_data: str) -> str:
    """Base64 of the user-data as Linode's `metadatas[].user_data` wants it, checked against the limit."""
    encoded = base64.b64encode(user_data.encode()).decode()
    if len(encoded) > MAX_USER_DATA_BASE64:
        raise UserDataTooLarge(
            f"user-data is {len(encoded)} bytes in base64; Linode's Metadata service takes at most "
            f"{MAX_USER_DATA_BASE64}. Move large files out of cloud-init (copy them over SSH instead)."
        )
    return encoded
