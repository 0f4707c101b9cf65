"""SSH for the providers: the client configuration and known_hosts (render/ssh_config.py, as OpenSSH itself
reads them) and the session (providers/ssh.py): its private directory, its errors, its byte pump."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.ssh import HostKeyMismatch, SshError, SshHost, SshSession, SshTrust, _pump
from render.ssh_config import PinnedHost, known_hosts_line, render_known_hosts, render_ssh_config

# Pulumi.servers.yaml's first two hosts.
KEY_1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHMQX6dXz52fUk8uBNZV6t5EkScCAlgyW3aAEFu0ckaN"
KEY_2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII46uMoeafY60uV/5lAwY8fhbeE50VoGJMvEkqMN9WxC"
WEB1 = PinnedHost(address="203.0.113.21", port=22, host_key=f"{KEY_1} root@web1")
WEB2 = PinnedHost(address="203.0.113.22", port=2222, host_key=KEY_2)


def fingerprint(key: str) -> str:
    """`SHA256:<base64, unpadded>` of a public key line, as ssh-keygen -l prints it (computed here)."""
    blob = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def resolved(config: Path, host: str = "203.0.113.21", port: int = 22) -> dict[str, list[str]]:
    """What OpenSSH makes of the config for a connection (`ssh -G`), option -> values."""
    result = subprocess.run(
        ["ssh", "-G", "-F", str(config), "-p", str(port), "-l", "deploy", host],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    options: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value)
    return options


def closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening: connections are refused at once
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- render/ssh_config.py -----------------------------------------------------------------------------------


def test_known_hosts_lines_name_the_port_off_22_and_drop_the_comment() -> None:
    assert known_hosts_line(WEB1) == f"203.0.113.21 {KEY_1}\n"
    assert known_hosts_line(WEB2) == f"[203.0.113.22]:2222 {KEY_2}\n"
    v6 = PinnedHost(address="2001:db8::7", port=2200, host_key=KEY_1)
    assert known_hosts_line(v6) == f"[2001:db8::7]:2200 {KEY_1}\n"
    assert render_known_hosts([WEB2, WEB1, WEB1]) == known_hosts_line(WEB1) + known_hosts_line(WEB2)


def test_openssh_finds_each_pinned_key_for_its_address_and_port(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(render_known_hosts([WEB1, WEB2]))
    for name, key in (("203.0.113.21", KEY_1), ("[203.0.113.22]:2222", KEY_2)):
        found = subprocess.run(
            ["ssh-keygen", "-F", name, "-f", str(known)], capture_output=True, text=True, check=False
        )
        assert found.returncode == 0, name
        assert key in found.stdout
    # Port 22 of web2 is not pinned: a connection there would be refused.
    missing = subprocess.run(
        ["ssh-keygen", "-F", "203.0.113.22", "-f", str(known)], capture_output=True, check=False
    )
    assert missing.returncode != 0


@pytest.mark.parametrize(
    "address",
    ["203.0.113.21 evil", "host,other", "*", "!203.0.113.21", "a\nb", "", "host\t", "|1|hashed"],
)
def test_an_address_that_is_not_one_plain_name_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        known_hosts_line(PinnedHost(address=address, port=22, host_key=KEY_1))


@pytest.mark.parametrize(
    "key",
    [f"{KEY_1}\n203.0.113.66 {KEY_2}", "AAAAC3NzaC1lZDI1NTE5", "ssh-ed25519", "ssh-ed25519 not/base64!", ""],
)
def test_a_host_key_that_is_not_one_key_line_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not an OpenSSH public key line"):
        known_hosts_line(PinnedHost(address="203.0.113.21", port=22, host_key=key))


def test_the_config_is_strict_as_openssh_reads_it(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        render_ssh_config(known_hosts="/fd/known_hosts", control_dir="/fd/cm", identity_file=None)
    )
    options = resolved(config)
    assert options["userknownhostsfile"] == ["/fd/known_hosts"]  # never the user's own files
    assert options["globalknownhostsfile"] == ["/dev/null"]
    assert options["stricthostkeychecking"] == ["true"]  # an unknown or changed key is refused
    assert options["updatehostkeys"] == ["false"]
    assert options["batchmode"] == ["yes"]  # never asks a question
    assert options["preferredauthentications"] == ["publickey"]
    assert options["passwordauthentication"] == ["no"]
    assert options["kbdinteractiveauthentication"] == ["no"]
    assert options["forwardagent"] == ["no"] and options["forwardx11"] == ["no"]
    assert options["controlmaster"] == ["auto"]
    assert options["controlpath"][0].startswith("/fd/cm/")  # one master connection per host
    assert options["connecttimeout"] == ["10"]
    assert "identitiesonly" not in options or options["identitiesonly"] == ["no"]  # the agent's keys


def test_an_identity_file_is_the_only_key_offered(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        render_ssh_config(
            known_hosts="/fd/kh", control_dir="/fd/cm", identity_file="/home/me/.ssh/id_ed25519"
        )
    )
    options = resolved(config)
    assert options["identityfile"] == ["/home/me/.ssh/id_ed25519"]
    assert options["identitiesonly"] == ["yes"]


@pytest.mark.parametrize(
    "bad", ["/home/me/my key", "/k\nHost *\n  StrictHostKeyChecking no", '/k"', "/k#x", ""]
)
def test_a_path_that_would_change_the_config_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        render_ssh_config(known_hosts="/fd/kh", control_dir="/fd/cm", identity_file=bad)
    with pytest.raises(ValueError, match="cannot be written"):
        render_ssh_config(known_hosts=bad, control_dir="/fd/cm", identity_file=None)


def test_a_percent_sign_in_a_path_is_never_an_ssh_token() -> None:
    # ssh_config(5) expands %-tokens in these paths (`%d` is the home directory): a literal `%` is refused or
    # written as `%%`.
    try:
        config = render_ssh_config(known_hosts="/fd/kh", control_dir="/fd/cm", identity_file="/keys/100%done")
    except ValueError:
        return
    assert "  IdentityFile /keys/100%%done\n" in config


# -- providers/ssh.py ---------------------------------------------------------------------------------------


def test_the_trust_survives_the_state_round_trip() -> None:
    trust = SshTrust(hosts=(WEB1, WEB2), identity_file="/home/me/.ssh/id_ed25519")
    props = trust.to_props()
    assert (
        SshTrust.from_props({**props, "hosts": [{**h, "port": float(h["port"])} for h in props["hosts"]]})
        == trust
    )
    assert SshTrust.from_props({**props, "identity_file": ""}).identity_file is None


def test_a_session_keeps_its_files_in_a_private_directory_and_removes_them(tmp_path: Path) -> None:
    trust = SshTrust(hosts=(WEB1, WEB2), identity_file=None)
    with SshSession(trust) as session:
        directory = session.config.parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE((directory / "cm").stat().st_mode) == 0o700
        known = directory / "known_hosts"
        assert known.read_text().splitlines() == [f"203.0.113.21 {KEY_1}", f"[203.0.113.22]:2222 {KEY_2}"]
        options = resolved(session.config, "203.0.113.22", 2222)
        assert options["userknownhostsfile"] == [str(known)]
        assert options["controlpath"][0].startswith(str(directory / "cm") + "/")
        assert len(options["controlpath"][0]) < 108  # a unix socket path
    assert not directory.exists()


def test_commands_are_argument_lists_with_the_host_after_the_options() -> None:
    host = SshHost(address="203.0.113.21", user="deploy", port=2222)
    with SshSession(SshTrust(hosts=(WEB1,))) as session:
        argv = session.argv(host, ["docker", "system", "dial-stdio"])
        assert argv == [
            "ssh", "-F", str(session.config), "-p", "2222", "-l", "deploy", "--", "203.0.113.21",
            "docker", "system", "dial-stdio",
        ]  # fmt: skip
    assert host.name == "deploy@203.0.113.21:2222"
    assert (
        SshHost(address="a", user="b", label="web1 (flightdeck:servers[0])").name
        == "web1 (flightdeck:servers[0])"
    )


def test_an_unreachable_host_is_an_error_naming_it_in_bounded_time() -> None:
    port = closed_port()
    host = SshHost(address="127.0.0.1", user="deploy", port=port, label="web1 (flightdeck:servers[0])")
    started = time.monotonic()
    trust = SshTrust(hosts=(PinnedHost("127.0.0.1", port, KEY_1),))
    with SshSession(trust) as session, pytest.raises(SshError) as failure:
        session.verify(host)
    assert time.monotonic() - started < 15
    message = str(failure.value)
    assert message.startswith("web1 (flightdeck:servers[0]): cannot reach 127.0.0.1:")
    assert str(port) in message and "Connection refused" in message
    assert not isinstance(failure.value, HostKeyMismatch)


def test_a_missing_identity_file_is_named_before_any_connection(tmp_path: Path) -> None:
    missing = str(tmp_path / "id_ed25519")
    host = SshHost(address="203.0.113.21", user="deploy", label="web1")
    trust = SshTrust(hosts=(WEB1,), identity_file=missing)
    with (
        SshSession(trust) as session,
        pytest.raises(SshError, match=r"flightdeck:sshIdentityFile") as failure,
    ):
        session.verify(host)
    assert missing in str(failure.value)


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An `ssh` on PATH that fails as its FAKE_SSH_STDERR says (ssh-keygen and ssh-keyscan stay real)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text(
        '#!/bin/sh\necho "$*" >>"$FAKE_SSH_LOG"\nprintf "%s\\n" "$FAKE_SSH_STDERR" >&2\nexit 255\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SSH_LOG", str(tmp_path / "ssh.log"))
    yield tmp_path / "ssh.log"


def test_a_changed_host_key_stops_before_anything_is_sent(
    fake_ssh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "FAKE_SSH_STDERR",
        "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.",
    )
    port = closed_port()  # ssh-keyscan (for the message) finds nobody there
    host = SshHost(address="127.0.0.1", user="deploy", port=port, label="web1 (flightdeck:servers[0])")
    trust = SshTrust(hosts=(PinnedHost("127.0.0.1", port, KEY_1),))
    with SshSession(trust) as session, pytest.raises(HostKeyMismatch) as failure:
        session.verify(host)
    message = str(failure.value)
    assert message.startswith("web1 (flightdeck:servers[0]): the SSH host key of 127.0.0.1:")
    assert fingerprint(KEY_1) in message  # what was pinned, as people compare it
    assert "no key (the host did not answer ssh-keyscan)" in message
    assert fake_ssh.read_text().count("\n") == 1  # one login attempt, nothing after it


def test_a_refused_login_names_the_key_that_was_offered(
    fake_ssh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SSH_STDERR", "deploy@203.0.113.21: Permission denied (publickey).")
    host = SshHost(address="203.0.113.21", user="deploy", label="web1")
    agent = r"refused the SSH agent's keys \(SSH_AUTH_SOCK\)"
    with SshSession(SshTrust(hosts=(WEB1,))) as session, pytest.raises(SshError, match=agent):
        session.verify(host)
    key = fake_ssh.parent / "id_ed25519"
    key.write_text("not a key, but a file")
    trust = SshTrust(hosts=(WEB1,), identity_file=str(key))
    with (
        SshSession(trust) as session,
        pytest.raises(SshError, match=rf"refused the key {key}.*authorized_keys"),
    ):
        session.verify(host)


def test_the_bridge_pumps_bytes_both_ways_until_either_side_ends() -> None:
    ours, theirs = socket.socketpair()
    pump = threading.Thread(target=_pump, args=(theirs, ["cat"]), daemon=True)
    pump.start()
    payload = os.urandom(300_000)  # several reads' worth, binary
    sender = threading.Thread(target=lambda: (ours.sendall(payload), ours.shutdown(socket.SHUT_WR)))
    sender.start()
    received = bytearray()
    ours.settimeout(10)
    while chunk := ours.recv(65536):
        received += chunk
    sender.join(timeout=10)
    pump.join(timeout=10)
    assert bytes(received) == payload
    assert not pump.is_alive()
    ours.close()
    theirs.close()
