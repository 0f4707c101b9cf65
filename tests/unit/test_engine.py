"""The engine client the swarm providers share (providers/engine.py): engine addresses, the errors of an
engine that does not answer, and what the docker CLI gets to see (a stand-in `docker` records it)."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
from pathlib import Path

import docker
import pytest
from pulumi.runtime.rpc import UNKNOWN

from providers.engine import (
    CliError,
    Engine,
    EngineUnavailable,
    docker_config,
    engines,
    open_engine,
    ssh_host,
    unknown,
)
from providers.ssh import SshHost
from settings import DEPLOY_ENVIRONMENT


def test_an_ssh_engine_address_names_the_user_host_and_port() -> None:
    assert ssh_host("ssh://deploy@203.0.113.21:2222", "web1") == SshHost(
        "203.0.113.21", "deploy", 2222, "web1"
    )
    assert ssh_host("ssh://deploy@web1.example").port == 22
    assert ssh_host("ssh://deploy@[2001:db8::7]:22").address == "2001:db8::7"
    for bad in ("ssh://203.0.113.21", "unix:///var/run/docker.sock", "deploy@203.0.113.21", "ssh://deploy@"):
        with pytest.raises(ValueError, match="ssh://user@host"):
            ssh_host(bad)


def test_the_cli_config_holds_basic_auth_per_registry() -> None:
    config = json.loads(
        docker_config({"127.0.0.1:5000": ("flightdeck", "p:w"), "registry.heroku.com": ("_", "k")})
    )
    assert set(config) == {"auths"}
    assert base64.b64decode(config["auths"]["127.0.0.1:5000"]["auth"]).decode() == "flightdeck:p:w"
    assert base64.b64decode(config["auths"]["registry.heroku.com"]["auth"]).decode() == "_:k"


def test_an_engine_that_does_not_answer_is_named_with_what_to_do(tmp_path: Path) -> None:
    missing = f"unix://{tmp_path}/docker.sock"
    with pytest.raises(EngineUnavailable) as failure, open_engine(missing, label="this machine's engine"):
        pass
    message = str(failure.value)
    assert message.startswith(f"no Docker engine answers at this machine's engine ({missing})")
    assert "DOCKER_HOST" in message


def test_an_engine_address_of_another_kind_is_refused() -> None:
    with (
        pytest.raises(EngineUnavailable, match="not a Docker engine address"),
        open_engine("http://127.0.0.1:2375"),
    ):
        pass
    with pytest.raises(ValueError, match="pinned host keys"), open_engine("ssh://deploy@203.0.113.21:22"):
        pass


def test_local_engines_need_no_ssh_session() -> None:
    with engines(["unix:///var/run/docker.sock", "unix:///run/other.sock"], None) as session:
        assert session is None
    with pytest.raises(ValueError, match="pinned host keys"), engines(["ssh://deploy@203.0.113.21:22"], None):
        pass


def test_unknown_values_are_found_at_any_depth() -> None:
    assert unknown(UNKNOWN)
    assert unknown({"hosts": [{"address": UNKNOWN}]})
    assert not unknown({"hosts": [{"address": "203.0.113.21"}], "n": 3, "ssh": None})


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` on PATH that writes its arguments, stdin, environment and config file to a report."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, stat, sys\n"
        "config = os.path.join(os.environ.get('DOCKER_CONFIG', '/nonexistent'), 'config.json')\n"
        "report = {'args': sys.argv[1:], 'stdin': sys.stdin.read(), 'env': dict(os.environ)}\n"
        "if os.path.exists(config):\n"
        "    report['config'] = json.load(open(config))\n"
        "    report['config_mode'] = stat.S_IMODE(os.stat(config).st_mode)\n"
        "json.dump(report, open(os.environ['HOME'] + '/report.json', 'w'))\n"
        "if sys.argv[1] == 'fail':\n"
        "    print('Error response from daemon: this node is not a swarm manager', file=sys.stderr)\n"
        "    sys.exit(1)\n"
        "print('done')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "deployer-secret-0000")
    monkeypatch.setenv("HEROKU_API_KEY", "deployer-heroku-key")
    monkeypatch.setenv("FLIGHTDECK_PASSWORD", "interpolate-me")
    return home / "report.json"


def engine() -> Engine:
    client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")  # no call is made
    return Engine(
        url="ssh://deploy@203.0.113.21:22", socket_url="unix:///tmp/fd-ssh-x/docker-0.sock", client=client
    )


def test_the_cli_sees_only_its_own_variables_and_the_engines_socket(fake_docker: Path) -> None:
    out = engine().cli(["stack", "deploy", "--compose-file", "-", "airline"], input="version: '3.8'\n")
    assert out == "done\n"
    report = json.loads(fake_docker.read_text())
    assert report["args"] == ["stack", "deploy", "--compose-file", "-", "airline"]
    assert report["stdin"] == "version: '3.8'\n"
    env = report["env"]
    assert env["DOCKER_HOST"] == "unix:///tmp/fd-ssh-x/docker-0.sock"
    # The names whose empty value settings refuses (compose would fill it in from this environment).
    assert set(env) - {"LC_CTYPE"} <= DEPLOY_ENVIRONMENT
    assert "deployer-secret-0000" not in json.dumps(env) and "interpolate-me" not in json.dumps(env)
    assert "config" not in report  # no credentials asked for: none written


def test_registry_credentials_reach_the_cli_in_a_private_file_for_one_command(fake_docker: Path) -> None:
    engine().cli(["stack", "deploy"], auth={"127.0.0.1:5000": ("flightdeck", "registry-password")})
    report = json.loads(fake_docker.read_text())
    assert report["config_mode"] == 0o600
    token = base64.b64encode(b"flightdeck:registry-password").decode()
    assert report["config"] == {"auths": {"127.0.0.1:5000": {"auth": token}}}
    assert all("registry-password" not in arg for arg in report["args"])
    assert "registry-password" not in json.dumps(report["env"])
    assert not Path(report["env"]["DOCKER_CONFIG"]).exists()  # gone with the command


def test_a_failed_command_says_which_engine_and_what_docker_said(fake_docker: Path) -> None:
    with pytest.raises(CliError) as failure:
        engine().cli(["fail", "x", "y", "z"])
    message = str(failure.value)
    assert message == (
        "docker fail x y failed on ssh://deploy@203.0.113.21:22: Error response from daemon: this node is "
        "not a swarm manager"
    )


def test_a_closed_socket_is_not_an_engine(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()  # the file stays, nobody listens
    with pytest.raises(EngineUnavailable, match=str(path)), open_engine(f"unix://{path}"):
        pass
