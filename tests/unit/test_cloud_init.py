"""The VMs' user-data: its content, cloud-init's own schema check, the size limit, and the sshd it configures
(run for real on loopback: it presents exactly the generated host key and refuses what it should)."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from providers.generated_ssh_key import generate_ed25519
from render.cloud_init import (
    DEPLOY_USER,
    HOST_KEY_FILE,
    MAX_USER_DATA_BASE64,
    SSHD_DROP_IN,
    HostKey,
    UserDataTooLarge,
    VmConfig,
    cloud_config,
    encode,
    reboot_time,
    render,
)
from tests.support.linode_mocks import SSH_PUBLIC_KEY
from tests.support.required import unavailable

HOST_KEY = HostKey(*generate_ed25519())
FIRST = VmConfig("airline-1", SSH_PUBLIC_KEY, HOST_KEY, "04:00")
SECOND = VmConfig("airline-2", SSH_PUBLIC_KEY, HostKey(*generate_ed25519()), "04:20")
DROP_IN = "/etc/ssh/sshd_config.d/10-flightdeck.conf"


def _doc(vm: VmConfig) -> dict[str, Any]:
    text = render(vm)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def _files(doc: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


def _settings(text: str) -> dict[str, str]:
    return {line.split()[0]: " ".join(line.split()[1:]) for line in text.splitlines() if line[:1].isalpha()}


def test_rendered_yaml_is_the_cloud_config_document_byte_for_byte() -> None:
    for vm in (FIRST, SECOND):
        assert _doc(vm) == cloud_config(vm)
    assert _doc(FIRST)["ssh_keys"]["ed25519_private"] == HOST_KEY.private


def test_the_vm_presents_the_generated_host_key_and_no_other() -> None:
    doc = _doc(FIRST)
    assert doc["ssh_keys"] == {"ed25519_private": HOST_KEY.private, "ed25519_public": HOST_KEY.public}
    assert doc["ssh_deletekeys"] is True  # the image's own keys go
    assert "ssh_genkeytypes" not in doc  # with ssh_keys given cloud-init generates none
    assert _settings(_files(doc)[DROP_IN])["HostKey"] == HOST_KEY_FILE


def test_docker_from_debian_enabled_at_boot_and_no_swarm_made_here() -> None:
    doc = _doc(SECOND)
    assert doc["packages"] == ["docker.io", "unattended-upgrades"]
    assert doc["package_update"] is True and doc["package_upgrade"] is True
    assert doc["runcmd"] == [
        ["systemctl", "enable", "--now", "docker.service", "unattended-upgrades.service"]
    ]
    assert '"max-size"' in _files(doc)["/etc/docker/daemon.json"]
    assert "swarm" not in render(FIRST)  # made over SSH by providers/swarm_cluster.py


def test_only_the_deploy_user_logs_in_with_the_stack_key() -> None:
    doc = _doc(FIRST)
    (user,) = doc["users"]  # no distribution default user
    assert user["name"] == DEPLOY_USER
    assert user["ssh_authorized_keys"] == [SSH_PUBLIC_KEY]
    assert user["groups"] == ["docker"]
    assert user["lock_passwd"] is True
    assert "sudo" not in user
    assert doc["disable_root"] is True
    assert doc["ssh_pwauth"] is False
    assert render(FIRST).count(SSH_PUBLIC_KEY.split()[1]) == 1  # in no other place (root's keys)


def test_sshd_is_hardened_by_a_drop_in() -> None:
    lines = _settings(_files(_doc(SECOND))[DROP_IN])
    assert lines["PermitRootLogin"] == "no"
    assert lines["PasswordAuthentication"] == "no"
    assert lines["KbdInteractiveAuthentication"] == "no"
    assert lines["AuthenticationMethods"] == "publickey"
    assert lines["AllowUsers"] == DEPLOY_USER
    assert lines["X11Forwarding"] == "no" and lines["AllowAgentForwarding"] == "no"
    assert "AcceptEnv" not in lines  # the deploy passes nothing through the environment
    assert "AllowTcpForwarding" not in lines  # images reach the VM's registry through a forward


def test_unattended_upgrades_with_staggered_reboots() -> None:
    first, second = _doc(FIRST), _doc(SECOND)
    periodic = _files(first)["/etc/apt/apt.conf.d/21flightdeck-auto-upgrades"]
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    reboot = "/etc/apt/apt.conf.d/52flightdeck-unattended-upgrades"
    assert 'Automatic-Reboot-Time "04:00";' in _files(first)[reboot]
    assert 'Automatic-Reboot-Time "04:20";' in _files(second)[reboot]
    assert [reboot_time(i) for i in range(4)] == ["04:00", "04:20", "04:40", "05:00"]
    assert len({reboot_time(i) for i in range(10)}) == 10


def test_apt_reads_the_upgrade_settings(tmp_path: Path) -> None:
    files = _files(_doc(SECOND))
    for name in ("21flightdeck-auto-upgrades", "52flightdeck-unattended-upgrades"):
        (tmp_path / name).write_text(files[f"/etc/apt/apt.conf.d/{name}"])
    dump = subprocess.run(
        ["apt-config", "-c", str(tmp_path / "21flightdeck-auto-upgrades"),
         "-c", str(tmp_path / "52flightdeck-unattended-upgrades"), "dump"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "04:20";' in dump


def _tool(name: str, path: str | None = None) -> str:
    tool = path if path and Path(path).exists() else shutil.which(name)
    if tool is None:
        unavailable(name, "not installed (scripts/setup installs it)")
    return tool


@pytest.mark.parametrize("vm", [FIRST, SECOND], ids=["first", "second"])
def test_cloud_init_accepts_the_user_data(vm: VmConfig, tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    path.write_text(render(vm))
    checked = subprocess.run(
        [_tool("cloud-init"), "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid cloud-config" in checked.stdout


def test_cloud_init_schema_check_catches_a_broken_document(tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    broken = {**cloud_config(FIRST), "packages": "docker.io", "ssh_pwauth": "nope"}
    path.write_text("#cloud-config\n" + yaml.safe_dump(broken))
    checked = subprocess.run(
        [_tool("cloud-init"), "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode != 0


def test_the_hardening_lands_before_sshd_first_starts() -> None:
    """What the renderer's ordering argument rests on, as Debian 12's cloud-init and openssh ship it."""
    _tool("cloud-init")
    units = Path("/lib/systemd/system")
    config = yaml.safe_load(Path("/etc/cloud/cloud.cfg").read_text())
    early = config["cloud_init_modules"]
    assert {"write-files", "users-groups", "ssh"} <= set(early)
    assert "runcmd" not in early and "package-update-upgrade-install" not in early
    assert "Before=sshd.service" in (units / "cloud-init.service").read_text().splitlines()
    ssh_unit = units / "ssh.service"
    if not ssh_unit.exists():
        unavailable("openssh-server", "not installed (scripts/setup installs it)")
    assert "Alias=sshd.service" in ssh_unit.read_text().splitlines()


def _sshd_config(tmp_path: Path) -> Path:
    """The drop-in as the VM gets it (its host key moved here), under a main config that says the opposite of
    its first-value-wins settings, as a distribution's may."""
    key = tmp_path / "ssh_host_ed25519_key"
    key.write_text(HOST_KEY.private)
    key.chmod(0o600)
    drop_in = tmp_path / "10-flightdeck.conf"
    drop_in.write_text(SSHD_DROP_IN.replace(HOST_KEY_FILE, str(key)))
    main = tmp_path / "sshd_config"
    main.write_text(
        f"Include {drop_in}\nPermitRootLogin yes\nPasswordAuthentication yes\nX11Forwarding yes\n"
        f"MaxSessions 5\nPidFile {tmp_path / 'sshd.pid'}\n"
    )
    return main


def test_sshd_takes_the_drop_in_over_the_main_config(tmp_path: Path) -> None:
    sshd = _tool("sshd", "/usr/sbin/sshd")
    main = _sshd_config(tmp_path)
    effective = subprocess.run(
        [sshd, "-T", "-f", str(main)], capture_output=True, text=True, check=True
    ).stdout
    values: dict[str, list[str]] = {}
    for line in effective.splitlines():
        name, _, value = line.partition(" ")
        values.setdefault(name, []).append(value)
    assert values["hostkey"] == [str(tmp_path / "ssh_host_ed25519_key")]
    assert values["permitrootlogin"] == ["no"]
    assert values["passwordauthentication"] == ["no"]
    assert values["kbdinteractiveauthentication"] == ["no"]
    assert values["authenticationmethods"] == ["publickey"]
    assert values["allowusers"] == [DEPLOY_USER]
    assert values["x11forwarding"] == ["no"]
    assert values["maxsessions"] == ["50"]
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(tmp_path / "ssh_host_ed25519_key")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert derived == HOST_KEY.public


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_sshd_presents_exactly_the_generated_host_key(tmp_path: Path) -> None:
    sshd = _tool("sshd", "/usr/sbin/sshd")
    if os.geteuid() != 0 or not Path("/run/sshd").is_dir():
        unavailable("a listening sshd", "it needs root and its privilege separation directory /run/sshd")
    port = _free_port()
    main = _sshd_config(tmp_path)
    with main.open("a") as config:
        config.write(f"ListenAddress 127.0.0.1:{port}\n")
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(main)], stderr=subprocess.PIPE, text=True)
    try:
        offered: list[str] = []
        deadline = time.monotonic() + 10
        while not offered and time.monotonic() < deadline:
            scan = subprocess.run(
                ["ssh-keyscan", "-T", "2", "-p", str(port), "127.0.0.1"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            offered = [line.split(None, 1)[1] for line in scan.stdout.splitlines() if line[:1] != "#"]
            time.sleep(0.1)
        assert offered == [HOST_KEY.public]
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.parametrize("count", [1, 3, 10])
def test_user_data_fits_linodes_limit(count: int) -> None:
    for index in range(count):
        vm = VmConfig(
            f"flightdeck-iaas-{index + 1}", SSH_PUBLIC_KEY, HostKey(*generate_ed25519()), reboot_time(index)
        )
        text = render(vm)
        encoded = encode(text)
        assert base64.b64decode(encoded).decode() == text
        assert len(encoded) <= MAX_USER_DATA_BASE64


def test_too_large_user_data_is_refused_naming_the_key() -> None:
    huge = VmConfig("airline-1", "ssh-ed25519 " + "A" * 60_000, HOST_KEY)
    with pytest.raises(UserDataTooLarge, match=r"flightdeck:sshPublicKey: .* at most 65535"):
        encode(render(huge))
    # Base64 comes in blocks of 4: 49,149 bytes encode to 65,532 characters, one byte more to 65,536.
    largest = "x" * (MAX_USER_DATA_BASE64 // 4 * 3)
    assert len(encode(largest)) == 65_532
    with pytest.raises(UserDataTooLarge):
        encode(largest + "x")


@pytest.mark.parametrize(
    ("hostname", "key", "reboot", "error"),
    [
        ("Airline_1", SSH_PUBLIC_KEY, "04:00", "not a host name"),
        ("airline-1", SSH_PUBLIC_KEY, "25:00", "not a time of day"),
        ("airline-1", SSH_PUBLIC_KEY + "\nssh-ed25519 AAAA", "04:00", "one line"),
    ],
)
def test_values_that_would_break_out_of_their_place_are_refused(
    hostname: str, key: str, reboot: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        VmConfig(hostname, key, HOST_KEY, reboot)


def test_a_host_key_must_be_an_openssh_ed25519_pair() -> None:
    with pytest.raises(ValueError, match="not an OpenSSH private key"):
        HostKey("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n", HOST_KEY.public)
    with pytest.raises(ValueError, match="not an ssh-ed25519 public key"):
        HostKey(HOST_KEY.private, HOST_KEY.public + " root@evil\nPermitRootLogin yes")
