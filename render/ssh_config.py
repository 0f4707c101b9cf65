"""The OpenSSH client configuration of every connection flightdeck makes (a pure renderer).

Strict by construction: host keys come only from the pinned known_hosts file written next to it (never the
user's own files), an unknown or changed key is refused, authentication is by key only and never asks a
question. Connections to one host share one master connection, so the many short docker calls of a deploy
cost one SSH handshake.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# What may appear in a config value or a known_hosts line unquoted: paths, addresses, key material.
_SAFE = re.compile(r"[A-Za-z0-9_./%+=:@\[\]-]+")
_HOST_KEY = re.compile(r"(?P<type>[a-z0-9-]+(?:@openssh\.com)?) (?P<blob>[A-Za-z0-9+/]+={0,2})(?: .*)?")


@dataclass(frozen=True)
class PinnedHost:
    address: str  # IP address or DNS name, as the connection names it
    port: int
    host_key: str  # "<type> <base64>[ comment]"


def _value(value: str) -> str:
    if _SAFE.fullmatch(value) is None:
        raise ValueError(f"{value!r} cannot be written into an ssh configuration")
    return value


def known_hosts_line(host: PinnedHost) -> str:
    """`address key-type key` (`[address]:port` off port 22), without the key's comment."""
    match = _HOST_KEY.fullmatch(host.host_key.strip())
    if match is None:
        raise ValueError(f"{host.host_key!r} is not an OpenSSH public key line")
    name = _value(host.address) if host.port == 22 else f"[{_value(host.address)}]:{host.port}"
    return f"{name} {match['type']} {match['blob']}\n"


def render_known_hosts(hosts: Iterable[PinnedHost]) -> str:
    return "".join(sorted({known_hosts_line(host) for host in hosts}))


def render_ssh_config(*, known_hosts: str, control_dir: str, identity_file: str | None) -> str:
    """The `ssh -F` file. identity_file None: only the agent's keys (SSH_AUTH_SOCK) are offered."""
    lines = [
        "Host *",
        f"  UserKnownHostsFile {_value(known_hosts)}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  CheckHostIP no",
        "  HashKnownHosts no",
        "  BatchMode yes",
        "  PreferredAuthentications publickey",
        "  PubkeyAuthentication yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  ForwardAgent no",
        "  ForwardX11 no",
        "  ConnectTimeout 10",
        "  ServerAliveInterval 10",
        "  ServerAliveCountMax 3",
        "  ControlMaster auto",
        f"  ControlPath {_value(control_dir)}/%C",
        "  ControlPersist 60",
        "  LogLevel ERROR",
    ]
    if identity_file is not None:
        lines += [f"  IdentityFile {_value(identity_file)}", "  IdentitiesOnly yes"]
    return "\n".join(lines) + "\n"
