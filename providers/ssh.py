"""SSH for the providers: pinned host keys, key-only logins, one master connection per host.

`SshSession` keeps its ssh configuration and known_hosts in a private temporary directory
(render/ssh_config.py renders them), so nothing depends on the deploying user's own SSH files. It runs
commands on a host, forwards a remote port for the length of a block, and bridges a local socket to the
host's Docker engine through `docker system dial-stdio` (what the docker CLI does for ssh:// addresses), so
the Docker SDK and the docker CLI both reach a remote engine the same way. Every ssh command is an argument
list; no secret is ever on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from render.ssh_config import PinnedHost, render_known_hosts, render_ssh_config

CONNECT_TIMEOUT = 20.0


@dataclass(frozen=True)
class SshHost:
    """A host to log in to: address, port, user, and how errors name it (e.g. its config key)."""

    address: str
    user: str
    port: int = 22
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"{self.user}@{self.address}:{self.port}"


@dataclass(frozen=True)
class SshTrust:
    """What a session trusts: the pinned host keys, and the private key it logs in with (None: the agent)."""

    hosts: tuple[PinnedHost, ...]
    identity_file: str | None = None

    def to_props(self) -> dict[str, Any]:
        return {
            "hosts": [{"address": h.address, "port": h.port, "host_key": h.host_key} for h in self.hosts],
            "identity_file": self.identity_file,
        }

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> SshTrust:
        return cls(
            hosts=tuple(
                PinnedHost(address=str(h["address"]), port=int(h["port"]), host_key=str(h["host_key"]))
                for h in props["hosts"]
            ),
            identity_file=props.get("identity_file") or None,
        )


class SshError(RuntimeError):
    """An SSH connection failed; the message says which host and what to do."""


class HostKeyMismatch(SshError):
    """The host offered a key that is not the pinned one: nothing was sent to it."""


def _fingerprints(text: str) -> list[str]:
    """`ssh-keygen -lf -` of public key lines: the SHA256 fingerprints people compare."""
    result = subprocess.run(
        ["ssh-keygen", "-lf", "-"], input=text, capture_output=True, text=True, timeout=10, check=False
    )
    return [" ".join(line.split()[1:2] + line.split()[-1:]) for line in result.stdout.splitlines()]


def offered_keys(host: SshHost) -> str:
    """The host keys the host offers now (ssh-keyscan; for the error message only, never trusted)."""
    scan = subprocess.run(
        ["ssh-keyscan", "-T", "5", "-p", str(host.port), host.address],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    lines = [line.split(None, 1)[1] for line in scan.stdout.splitlines() if line and not line.startswith("#")]
    return ", ".join(_fingerprints("\n".join(lines) + "\n")) or "no key (the host did not answer ssh-keyscan)"


class SshSession:
    """A private ssh configuration for a set of hosts; use as a context manager."""

    def __init__(self, trust: SshTrust) -> None:
        self.trust = trust
        self._dir: Path | None = None
        self._bridges: list[socketserver.BaseServer] = []
        self._verified: set[SshHost] = set()

    def __enter__(self) -> SshSession:
        # Short: the ControlPath of a master connection is a socket path (at most 108 bytes).
        self._dir = Path(tempfile.mkdtemp(prefix="fd-ssh-"))
        self._dir.chmod(0o700)
        (self._dir / "cm").mkdir(mode=0o700)
        known_hosts = self._dir / "known_hosts"
        known_hosts.write_text(render_known_hosts(self.trust.hosts))
        self.config.write_text(
            render_ssh_config(
                known_hosts=str(known_hosts),
                control_dir=str(self._dir / "cm"),
                identity_file=self.trust.identity_file,
            )
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for bridge in self._bridges:
            bridge.shutdown()
            bridge.server_close()
        for host in self._verified:
            subprocess.run([*self._ssh(host, "-O", "exit")], capture_output=True, timeout=10, check=False)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def config(self) -> Path:
        assert self._dir is not None, "SshSession is used outside its with-block"
        return self._dir / "config"

    def _ssh(self, host: SshHost, *options: str) -> list[str]:
        return ["ssh", "-F", str(self.config), "-p", str(host.port), "-l", host.user, *options]

    def argv(self, host: SshHost, command: Sequence[str]) -> list[str]:
        """ssh running `command` on host (words the remote shell joins; flightdeck's are fixed words)."""
        return [*self._ssh(host), "--", host.address, *command]

    def verify(self, host: SshHost) -> None:
        """Log in once (the master connection later commands share), or raise an error that says whether
        the host key or the login failed, and what to do."""
        if host in self._verified:
            return
        if self.trust.identity_file is not None and not Path(self.trust.identity_file).is_file():
            raise SshError(
                f"{host.name}: the private key {self.trust.identity_file} (flightdeck:sshIdentityFile) does "
                "not "
                "exist on this machine; point the setting at the deploy user's key, or unset it to use the "
                "SSH agent"
            )
        result = subprocess.run(
            self.argv(host, ["true"]),
            capture_output=True,
            text=True,
            timeout=CONNECT_TIMEOUT + 10,
            check=False,
        )
        if result.returncode == 0:
            self._verified.add(host)
            return
        problem = result.stderr.strip().splitlines()[-1:] or [f"ssh exited {result.returncode}"]
        if "Host key verification failed" in result.stderr or "host key" in result.stderr.lower():
            pinned = [h for h in self.trust.hosts if h.address == host.address and h.port == host.port]
            expected = ", ".join(_fingerprints("".join(f"{h.host_key}\n" for h in pinned))) or "none pinned"
            raise HostKeyMismatch(
                f"{host.name}: the SSH host key of {host.address}:{host.port} is not the pinned one, so "
                f"flightdeck stopped before sending anything to it. Pinned: {expected}; offered now: "
                f"{offered_keys(host)}. If the host was rebuilt or its key rotated, check the new key on the "
                "host itself (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and pin it in the stack's "
                "config; if not, someone may be intercepting the connection."
            )
        if "Permission denied" in result.stderr:
            how = (
                f"the key {self.trust.identity_file}"
                if self.trust.identity_file
                else "the SSH agent's keys (SSH_AUTH_SOCK)"
            )
            raise SshError(
                f"{host.name}: {host.user}@{host.address} refused {how} ({problem[0]}). Add the deploy key "
                "to "
                f"{host.user}'s authorized_keys on the host, or set flightdeck:sshIdentityFile"
            )
        raise SshError(f"{host.name}: cannot reach {host.address}:{host.port} over SSH: {problem[0]}")

    def run(
        self, host: SshHost, command: Sequence[str], *, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        self.verify(host)
        return subprocess.run(
            self.argv(host, command),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @contextlib.contextmanager
    def forward(self, host: SshHost, remote: str) -> Iterator[int]:
        """Forward a free port of this machine's loopback to `remote` (host:port as the host sees it) for the
        length of the block; yields the local port."""
        self.verify(host)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        argv = [
            *self._ssh(host, "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ControlPath=none"),
            "-L",
            f"127.0.0.1:{port}:{remote}",
            "--",
            host.address,
        ]
        tunnel = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + CONNECT_TIMEOUT
            while True:
                if tunnel.poll() is not None:
                    stderr = tunnel.stderr.read().decode() if tunnel.stderr else ""
                    raise SshError(f"{host.name}: the SSH forward to {remote} failed: {stderr.strip()}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if time.monotonic() > deadline:
                    raise SshError(f"{host.name}: the SSH forward to {remote} did not open in time")
                time.sleep(0.1)
            yield port
        finally:
            tunnel.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                tunnel.wait(timeout=5)
            if tunnel.poll() is None:
                tunnel.kill()

    def docker_socket(self, host: SshHost) -> str:
        """A local unix socket that reaches the host's Docker engine (`docker system dial-stdio` over the
        master connection, one ssh channel per connection); valid for the session."""
        self.verify(host)
        assert self._dir is not None
        path = str(self._dir / f"docker-{len(self._bridges)}.sock")
        argv = self.argv(host, ["docker", "system", "dial-stdio"])

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                _pump(self.request, argv)

        server = socketserver.ThreadingUnixStreamServer(path, Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._bridges.append(server)
        return f"unix://{path}"


def _pump(connection: socket.socket, argv: list[str]) -> None:
    """Copy bytes both ways between a client connection and an ssh process's stdin/stdout."""
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    def upstream() -> None:
        with contextlib.suppress(OSError, ValueError):
            while data := connection.recv(65536):
                stdin.write(data)
                stdin.flush()
        with contextlib.suppress(OSError):
            stdin.close()

    sender = threading.Thread(target=upstream, daemon=True)
    sender.start()
    with contextlib.suppress(OSError, ValueError):
        while data := os.read(stdout.fileno(), 65536):
            connection.sendall(data)
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
    sender.join(timeout=5)
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
