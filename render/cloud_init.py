"""cloud-init user-data of the Linode VMs (pure functions).

Every VM gets Docker from Debian, unattended security upgrades with a reboot slot of its own, one non-root
`deploy` user (in the docker group, logging in with the stack's SSH key) and an sshd that accepts nothing
else and presents exactly the host key generated for the VM (providers/generated_ssh_key.py), so the deploy
pins it from the first connection. The swarm is not made here: providers/swarm_cluster.py inits and joins it
over SSH once the VMs answer.

Why the hardening holds from sshd's first start: `write_files`, `users-groups` and `ssh` (the host keys) are
modules of cloud-init's network stage, whose unit (cloud-init.service) is ordered Before=sshd.service
(Debian's ssh.service is aliased to it). sshd therefore never runs without the drop-in below or with another
host key.

The firewall is Linode's Cloud Firewall, outside the VM, so no host firewall is configured here. The rendered
document holds the host's private key: it is a secret wherever it goes.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import yaml

DEPLOY_USER = "deploy"
# Linode's Metadata service refuses user_data whose base64 form is longer than this.
MAX_USER_DATA_BASE64 = 65_535
HOST_KEY_FILE = "/etc/ssh/ssh_host_ed25519_key"

_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n"
)
_ED25519_PUBLIC = re.compile(r"ssh-ed25519 [A-Za-z0-9+/]+={0,2}")

# sshd keeps the first value it reads of most keywords, and Debian's sshd_config includes sshd_config.d/*.conf
# on its first line, so these win. HostKey: only the pinned key, even if a package upgrade makes the others.
# MaxSessions/MaxStartups: the providers multiplex many short docker calls over one connection per host
# (the values scripts/test-hosts gives the test hosts). TCP forwarding stays on: images reach the VM's
# registry through a forward of its loopback port.
SSHD_DROP_IN = f"""\
# flightdeck: key-only SSH for the deploy user, with the pinned host key.
HostKey {HOST_KEY_FILE}
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthenticationMethods publickey
AllowUsers {DEPLOY_USER}
MaxAuthTries 3
MaxSessions 50
MaxStartups 50:30:100
X11Forwarding no
AllowAgentForwarding no
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


class UserDataTooLarge(ValueError):
    """The rendered user-data does not fit Linode's Metadata service."""


@dataclass(frozen=True)
class HostKey:
    private: str  # OpenSSH PEM
    public: str  # "ssh-ed25519 <base64>"

    def __post_init__(self) -> None:
        if _PRIVATE_KEY.fullmatch(self.private) is None:
            raise ValueError("the host key's private half is not an OpenSSH private key")
        if _ED25519_PUBLIC.fullmatch(self.public) is None:
            raise ValueError(f"{self.public!r} is not an ssh-ed25519 public key line without a comment")


@dataclass(frozen=True)
class VmConfig:
    hostname: str
    ssh_public_key: str  # the deploy user's, validated by settings (flightdeck:sshPublicKey)
    host_key: HostKey
    # Local time at which unattended-upgrades may reboot the VM; staggered so the swarm never loses all
    # nodes at once.
    reboot_time: str = "04:00"

    def __post_init__(self) -> None:
        if _HOSTNAME.fullmatch(self.hostname) is None:
            raise ValueError(f"{self.hostname!r} is not a host name (a-z, 0-9 and -, at most 63)")
        if _TIME.fullmatch(self.reboot_time) is None:
            raise ValueError(f"{self.reboot_time!r} is not a time of day (HH:MM)")
        if "\n" in self.ssh_public_key:
            raise ValueError("flightdeck:sshPublicKey must be one line")


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
    return {
        "hostname": vm.hostname,
        "preserve_hostname": False,
        # The image's host keys go and the generated one is the only one: with ssh_keys given, cloud-init
        # generates none (ssh_genkeytypes applies only without them; its schema refuses an empty list).
        "ssh_deletekeys": True,
        "ssh_keys": {"ed25519_private": vm.host_key.private, "ed25519_public": vm.host_key.public},
        "disable_root": True,
        "ssh_pwauth": False,
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
        "write_files": [
            _file("/etc/ssh/sshd_config.d/10-flightdeck.conf", SSHD_DROP_IN),
            _file("/etc/apt/apt.conf.d/21flightdeck-auto-upgrades", AUTO_UPGRADES),
            _file(
                "/etc/apt/apt.conf.d/52flightdeck-unattended-upgrades", _unattended_upgrades(vm.reboot_time)
            ),
            _file("/etc/docker/daemon.json", DOCKER_DAEMON_JSON),
        ],
        "package_update": True,
        "package_upgrade": True,
        "packages": ["docker.io", "unattended-upgrades"],
        # runcmd runs after the packages are installed (scripts-user follows package-update-upgrade-install).
        "runcmd": [["systemctl", "enable", "--now", "docker.service", "unattended-upgrades.service"]],
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks so the files read as they land on disk (PyYAML falls back
    to a quoted scalar where a block cannot hold the text exactly)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(vm: VmConfig) -> str:
    """The VM's user-data: a YAML document with the #cloud-config header cloud-init looks for."""
    body = yaml.dump(cloud_config(vm), Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=1000)
    return "#cloud-config\n" + body


def encode(user_data: str) -> str:
    """Base64 of the user-data as Linode's `metadatas[].user_data` wants it, checked against the limit. The
    deploy user's key is the only part of it a stack sets freely."""
    encoded = base64.b64encode(user_data.encode()).decode()
    if len(encoded) > MAX_USER_DATA_BASE64:
        raise UserDataTooLarge(
            f"flightdeck:sshPublicKey: the VMs' user-data is {len(encoded)} bytes in base64 with this key; "
            f"Linode's Metadata service takes at most {MAX_USER_DATA_BASE64}. Use a shorter key "
            "(an ssh-ed25519 key is about 100 characters)."
        )
    return encoded
