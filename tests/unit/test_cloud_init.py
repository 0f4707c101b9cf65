"""The VMs' user-data: content, validity for cloud-init, size, and the swarm init script run for real."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cloud_init import (
    DEPLOY_USER,
    MAX_USER_DATA_BASE64,
    SWARM_INIT,
    Role,
    UserDataTooLarge,
    VmConfig,
    cloud_config,
    encode,
    reboot_time,
    render,
)
from components.settings import parse
from tests.support.stacks import stack_config

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHqQ4mFdIDy1v0cGbRZsJ5Cq9o3ZpkcVf2pTtZ3yS9x2 deploy@test"
MANAGER = VmConfig("airline-1", Role.MANAGER, KEY, "04:00")
WORKER = VmConfig("airline-2", Role.WORKER, KEY, "04:20")
REQUIRED = os.environ.get("REQUIRE_DOCKER") == "1"


def _doc(vm: VmConfig) -> dict[str, Any]:
    text = render(vm)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def _files(doc: dict[str, Any]) -> dict[str, str]:
    return {f["path"]: f["content"] for f in doc["write_files"]}


def test_rendered_yaml_is_the_cloud_config_document():
    for vm in (MANAGER, WORKER):
        assert _doc(vm) == cloud_config(vm)


def test_docker_from_debian_enabled_at_boot():
    doc = _doc(WORKER)
    assert "docker.io" in doc["packages"]
    assert doc["package_update"] is True
    enable = next(c for c in doc["runcmd"] if c[:2] == ["systemctl", "enable"])
    assert "--now" in enable and "docker.service" in enable
    assert '"max-size"' in _files(doc)["/etc/docker/daemon.json"]


def test_only_the_manager_initialises_the_swarm():
    manager, worker = _doc(MANAGER), _doc(WORKER)
    init = "/usr/local/sbin/flightdeck-swarm-init"
    assert _files(manager)[init] == SWARM_INIT
    assert [init] in manager["runcmd"]
    assert manager["runcmd"][-1] == [init]  # after docker is enabled
    assert init not in _files(worker)
    assert not any("swarm" in " ".join(c) for c in worker["runcmd"])


def test_deploy_user_logs_in_with_the_key_only():
    doc = _doc(MANAGER)
    (user,) = doc["users"]  # no distribution default user
    assert user["name"] == DEPLOY_USER
    assert user["ssh_authorized_keys"] == [KEY]
    assert user["groups"] == ["docker"]
    assert user["lock_passwd"] is True
    assert "sudo" not in user
    assert doc["disable_root"] is True
    assert doc["ssh_pwauth"] is False


def test_sshd_is_hardened_by_a_drop_in():
    doc = _doc(WORKER)
    drop_in = _files(doc)["/etc/ssh/sshd_config.d/10-flightdeck.conf"]
    lines = {
        line.split()[0]: " ".join(line.split()[1:]) for line in drop_in.splitlines() if line[:1].isalpha()
    }
    assert lines["PermitRootLogin"] == "no"
    assert lines["PasswordAuthentication"] == "no"
    assert lines["KbdInteractiveAuthentication"] == "no"
    assert lines["AuthenticationMethods"] == "publickey"
    assert lines["AllowUsers"] == DEPLOY_USER
    assert lines["AcceptEnv"] == "FLIGHTDECK_*"  # the swarm deploy's settings, and nothing else
    assert ["sh", "-c", "sshd -t && systemctl reload ssh.service"] in doc["runcmd"]


def test_unattended_upgrades_with_staggered_reboots():
    manager, worker = _doc(MANAGER), _doc(WORKER)
    assert "unattended-upgrades" in manager["packages"]
    periodic = _files(manager)["/etc/apt/apt.conf.d/21flightdeck-auto-upgrades"]
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    reboot = "/etc/apt/apt.conf.d/52flightdeck-unattended-upgrades"
    assert 'Automatic-Reboot-Time "04:00";' in _files(manager)[reboot]
    assert 'Automatic-Reboot-Time "04:20";' in _files(worker)[reboot]
    assert [reboot_time(i) for i in range(4)] == ["04:00", "04:20", "04:40", "05:00"]
    assert len({reboot_time(i) for i in range(10)}) == 10


def test_apt_reads_the_upgrade_settings(tmp_path: Path):
    files = _files(_doc(WORKER))
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


def _cloud_init() -> str:
    tool = shutil.which("cloud-init")
    if tool is None:
        message = "cloud-init is not installed (apt-get install -y cloud-init)"
        if REQUIRED:
            pytest.fail(f"{message}; REQUIRE_DOCKER=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    return tool


@pytest.mark.parametrize("vm", [MANAGER, WORKER], ids=["manager", "worker"])
def test_cloud_init_accepts_the_user_data(vm: VmConfig, tmp_path: Path):
    tool = _cloud_init()
    path = tmp_path / "user-data"
    path.write_text(render(vm))
    checked = subprocess.run(
        [tool, "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Valid cloud-config" in checked.stdout


def test_cloud_init_schema_check_catches_a_broken_document(tmp_path: Path):
    tool = _cloud_init()
    path = tmp_path / "user-data"
    broken = {**cloud_config(MANAGER), "packages": "docker.io", "ssh_pwauth": "nope"}
    path.write_text("#cloud-config\n" + yaml.safe_dump(broken))
    checked = subprocess.run(
        [tool, "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode != 0


@pytest.mark.parametrize("count", [1, 3, 10])
def test_user_data_fits_linodes_limit(count: int):
    settings = parse(*stack_config("iaas", linodeInstanceCount=count))
    assert settings.linode is not None
    for index in range(count):
        vm = VmConfig(
            f"{settings.app.name}-{index + 1}",
            Role.MANAGER if index == 0 else Role.WORKER,
            settings.linode.ssh_public_key,
            reboot_time(index),
        )
        text = render(vm)
        encoded = encode(text)
        assert base64.b64decode(encoded).decode() == text
        assert len(encoded) <= MAX_USER_DATA_BASE64


def test_too_large_user_data_is_refused_with_the_limit():
    huge = VmConfig("airline-1", Role.MANAGER, "ssh-ed25519 " + "A" * 60_000)
    with pytest.raises(UserDataTooLarge, match=r"at most 65535"):
        encode(render(huge))
    # Base64 comes in blocks of 4: 49,149 bytes encode to 65,532 characters, one byte more to 65,536.
    largest = "x" * (MAX_USER_DATA_BASE64 // 4 * 3)
    assert len(encode(largest)) == 65_532
    with pytest.raises(UserDataTooLarge):
        encode(largest + "x")


def _fake_tools(tmp_path: Path, addresses: str, swarm_state: str) -> tuple[dict[str, str], Path]:
    """`ip` and `docker` stand-ins on PATH: ip prints the given addresses, docker records its arguments."""
    calls = tmp_path / "docker-calls"
    tools = {
        "ip": f"#!/bin/sh\ncat <<'EOF'\n{addresses}\nEOF\n",
        "docker": (f'#!/bin/sh\necho "$*" >> {calls}\nif [ "$1" = info ]; then echo {swarm_state}; fi\n'),
    }
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in tools.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


LINODE_ADDRESSES = (
    "2: eth0    inet 203.0.113.7/24 brd 203.0.113.255 scope global eth0\\       valid_lft forever\n"
    "2: eth0    inet 192.168.141.9/17 scope global eth0:1\\       valid_lft forever"
)


def test_swarm_init_advertises_the_private_address(tmp_path: Path):
    env, calls = _fake_tools(tmp_path, LINODE_ADDRESSES, "inactive")
    subprocess.run(["sh", "-c", SWARM_INIT], env=env, check=True)
    assert calls.read_text().splitlines()[-1] == (
        "swarm init --advertise-addr 192.168.141.9 --listen-addr 192.168.141.9:2377"
    )


def test_swarm_init_does_nothing_in_an_active_swarm(tmp_path: Path):
    env, calls = _fake_tools(tmp_path, LINODE_ADDRESSES, "active")
    subprocess.run(["sh", "-c", SWARM_INIT], env=env, check=True)
    assert not any(line.startswith("swarm") for line in calls.read_text().splitlines())


def test_swarm_init_fails_without_a_private_address(tmp_path: Path):
    public_only = (
        "2: eth0    inet 203.0.113.7/24 scope global eth0\n3: docker0    inet 192.168.1.1/24 scope global"
    )
    env, calls = _fake_tools(tmp_path, public_only, "inactive")
    done = subprocess.run(["sh", "-c", SWARM_INIT], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "no private IPv4 address" in done.stderr
    assert not any(line.startswith("swarm") for line in calls.read_text().splitlines())


def test_swarm_init_script_passes_shellcheck(tmp_path: Path):
    script = tmp_path / "flightdeck-swarm-init"
    script.write_text(SWARM_INIT)
    checked = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout
