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

# A path in the configuration: absolute, and nothing ssh would read differently (no whitespace, quotes, `#`,
# `=`, `%` (ssh expands %-tokens in these paths) or `~`).
_PATH = re.compile(r"/[A-Za-z0-9_./+@:-]*")
# The host field of a known_hosts line: an IP address or a DNS name. Never a pattern (`*`, `?`, `!`), a list
# (`,`), a marker (`@revoked`), a hashed name (`|1|`) or a bracket.
_ADDRESS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.:-]*[A-Za-z0-9])?")
_HOST_KEY = re.compile(r"(?P<type>[a-z0-9-]+(?:@openssh\.com)?) (?P<blob>[A-Za-z0-9+/]+={0,2})(?: [ -~]*)?")


@dataclass(frozen=True)
class PinnedHost:
    address: str  # IP address or DNS name, as the connection names it
    port: int
    host_key: str  # "<type> <base64>[ comment]"


def _path(value: str) -> str:
    if _PATH.fullmatch(value) is None:
        raise ValueError(f"{value!r} cannot be written into an ssh configuration as a path")
    return value


def _address(value: str) -> str:
    if _ADDRESS.fullmatch(value) is None:
        raise ValueError(f"{value!r} cannot be written into a known_hosts line as a host")
    return value


def known_hosts_line(host: PinnedHost) -> str:
    """`address key-type key` (`[address]:port` off port 22), without the key's comment."""
    match = _HOST_KEY.fullmatch(host.host_key.strip(" "))
    if match is None:
        raise ValueError(f"{host.host_key[:80]!r} is not an OpenSSH public key line")
    if not 1 <= host.port <= 65535:
        raise ValueError(f"{host.port} is not a TCP port")
    name = _address(host.address) if host.port == 22 else f"[{_address(host.address)}]:{host.port}"
    return f"{name} {match['type']} {match['blob']}\n"


def render_known_hosts(hosts: Iterable[PinnedHost]) -> str:
    return "".join(sorted({known_hosts_line(host) for host in hosts}))


def render_ssh_config(*, known_hosts: str, control_dir: str, identity_file: str | None) -> str:
    """The `ssh -F` file. identity_file None: only the agent's keys (SSH_AUTH_SOCK) are offered."""
    lines = [
        "Host *",
        f"  UserKnownHostsFile {_path(known_hosts)}",
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
        f"  ControlPath {_path(control_dir)}/%C",
        "  ControlPersist 60",
        "  LogLevel ERROR",
    ]
    if identity_file is not None:
        lines += [f"  IdentityFile {_path(identity_file)}", "  IdentitiesOnly yes"]
    return "\n".join(lines) + "\n"
